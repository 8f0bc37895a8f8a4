"""What the exporter and the runners share: the config's input size, the graph's interface, the optional imports."""
import importlib
from types import ModuleType
from typing import Dict, List, Sequence, Tuple, Union

import torch
from mmengine.config import Config

from ..utils import setup_host

NetworkOutputs = Union[torch.Tensor, Sequence[Sequence[torch.Tensor]]]

INPUT_NAME = 'input'
SEG_OUTPUT_NAME = 'seg_logits'
# Metadata the exporter writes into the ONNX file and the runners read back.
META_HOST = 'mmmnv2_host'
META_DATASET_META = 'mmmnv2_dataset_meta'


def detection_output_names(num_levels: int) -> Tuple[str, ...]:
    """Per-level classification scores, then box deltas, as the detector's ``mode='tensor'`` returns them."""
    return (*(f'cls_score_{i}' for i in range(num_levels)), *(f'bbox_pred_{i}' for i in range(num_levels)))


def import_deploy_dependency(name: str) -> ModuleType:
    """Import onnx / onnxruntime, or say how to install them."""
    try:
        return importlib.import_module(name)
    except ImportError as error:
        raise ImportError(f'{name} is needed for ONNX export and inference; install it with '
                          f'`pip install "mmmnv2[deploy]"` (or `pip install onnx onnxruntime onnxscript`)') from error


def config_input_size(cfg: Config) -> Tuple[int, int]:
    """The fixed (height, width) a model of this config sees at test time.

    Detection: the test pipeline's ``Resize`` without ratio keeping (SSDLite: 320x320). Segmentation: the data
    preprocessor's ``size`` (the training crop, 512x512); test images are padded to it, as TF DeepLab pads to 513.
    """
    host = setup_host(cfg)
    if host == 'mmdet':
        pipeline = cfg.test_dataloader.dataset.get('pipeline', None) or cfg.get('test_pipeline', [])
        for transform in pipeline:
            if transform['type'] in ('Resize', 'mmdet.Resize') and not transform.get('keep_ratio', False):
                width, height = _pair(transform['scale'])
                return height, width
        raise ValueError('the test pipeline has no fixed-size Resize (keep_ratio=False); give the input size '
                         'explicitly (--shape H W)')
    size = cfg.model.get('data_preprocessor', {}).get('size', None)
    if size is None:
        raise ValueError('model.data_preprocessor.size is not set; give the input size explicitly (--shape H W)')
    return _pair(size)


def config_dataset_meta(cfg: Config) -> Dict:
    """Class names and palette of the config's test data set (its ``metainfo``, else its dataset class's)."""
    dataset = cfg.test_dataloader.dataset
    meta = dataset.get('metainfo', None) or cfg.get('metainfo', None)
    if meta:
        return dict(meta)
    from mmengine.registry import DATASETS
    with DATASETS.switch_scope_and_registry(setup_host(cfg)) as registry:
        return dict(getattr(registry.get(dataset.type), 'METAINFO', {}))


def relative_difference(expected: NetworkOutputs, actual: NetworkOutputs) -> float:
    """Largest absolute difference between two ``mode='tensor'`` outputs, relative to the largest expected value."""
    def flatten(outputs: NetworkOutputs) -> List[torch.Tensor]:
        return [outputs] if torch.is_tensor(outputs) else [t for level in outputs for t in level]

    pairs = list(zip(flatten(expected), flatten(actual), strict=True))
    scale = max(float(e.abs().max()) for e, _ in pairs)
    return max(float((e - a).abs().max()) for e, a in pairs) / max(scale, float(torch.finfo(torch.float32).tiny))


def _pair(value) -> Tuple[int, int]:
    if isinstance(value, int):
        return value, value
    return int(value[0]), int(value[1])
