"""Helpers of the deployment tests: toy checkpoints with random weights, a toy val batch, the comparison of an
exported file's detections with the PyTorch model's, and the float convolutions of an int8 .tflite file."""
import copy
from typing import Union

import torch
from mmengine.config import Config
from torch import nn

from mmmnv2.apis import init_model


def randomised_checkpoint(config: str, path: str) -> nn.Module:
    """Save a checkpoint of the config's model with random weights *and* batch-norm statistics; return the model.

    Fresh batch norm (mean 0, variance 1, affine 1/0) would make folding trivially exact; random statistics test it.
    The prediction layers (the convolutions with a bias) start near zero; larger weights make the outputs differ
    between anchors and pixels, so that results can be compared box by box.
    """
    model = init_model(config, device='cpu')
    dataset_meta = model.dataset_meta
    generator = torch.Generator().manual_seed(0)
    for module in model.modules():
        if isinstance(module, nn.Conv2d) and module.bias is not None:
            module.weight.data.copy_(torch.randn(module.weight.shape, generator=generator) * 0.05)
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            for tensor, low, high in ((module.running_mean, -0.5, 0.5), (module.running_var, 0.5, 2.0),
                                      (module.weight, 0.5, 1.5), (module.bias, -0.2, 0.2)):
                tensor.data.copy_(torch.rand(tensor.shape, generator=generator) * (high - low) + low)
    torch.save({'state_dict': model.state_dict(), 'meta': {'dataset_meta': dataset_meta}}, path)
    return model.eval()


def toy_batch(config: Union[str, Config], root: str, task: str, count: int = 4) -> dict:
    """A batch of toy val images (generated under ``root``) through the config's own test pipeline, as the data
    loader gives it; ``config``: a config file or object (e.g. a runner's ``cfg``, whose pipeline suits its file)."""
    from mmengine.dataset import pseudo_collate
    from mmengine.registry import DATASETS, init_default_scope

    from mmmnv2.datasets import generate_detection, generate_segmentation
    (generate_detection if task == 'det' else generate_segmentation)(root, num_train=0, num_val=count)
    cfg = Config.fromfile(config) if isinstance(config, str) else copy.deepcopy(config)
    init_default_scope(cfg.default_scope)
    dataset_cfg = cfg.test_dataloader.dataset
    dataset_cfg.data_root = root
    if task == 'det':
        dataset_cfg.ann_file = 'annotations/instances_val.json'
    dataset = DATASETS.build(dataset_cfg)
    return pseudo_collate([dataset[i] for i in range(count)])


def assert_same_detections(expected: list, actual: list) -> None:
    """The detections of an exported file are the PyTorch model's, up to float32 noise."""
    for e, a in zip(expected, actual, strict=True):
        e, a = e.pred_instances, a.pred_instances
        assert len(e) >= 10 and abs(len(a) - len(e)) <= 1  # a box may sit on the score threshold
        # Each path's best 10 boxes are among the other's boxes (float32 noise may swap near-equal scores, so the
        # order and the set's tenth member can differ).
        rows = [torch.cat([i.bboxes, 100 * i.scores[:, None], 1000 * i.labels[:, None]], 1) for i in (e, a)]
        distances = torch.cdist(*rows)
        # Half a pixel: the random prediction layers give large box deltas, whose exp() in decoding magnifies the
        # float32 differences (measured up to 0.125 px; scores agree to 1e-6).
        assert distances[:10].min(1).values.max() < 0.5 and distances[:, :10].min(0).values.max() < 0.5


def float_convolutions(tflite_file: str) -> int:
    """The (depthwise) convolutions of a .tflite file whose weights are float32, read with LiteRT's schema."""
    from ai_edge_litert import schema_py_generated as schema
    with open(tflite_file, 'rb') as file:
        model = schema.Model.GetRootAs(file.read(), 0)
    graph, count = model.Subgraphs(0), 0
    for i in range(graph.OperatorsLength()):
        operator = graph.Operators(i)
        code = model.OperatorCodes(operator.OpcodeIndex())
        if (max(code.BuiltinCode(), code.DeprecatedBuiltinCode()) in
                (schema.BuiltinOperator.CONV_2D, schema.BuiltinOperator.DEPTHWISE_CONV_2D)):
            count += graph.Tensors(operator.Inputs(1)).Type() == schema.TensorType.FLOAT32
    return count
