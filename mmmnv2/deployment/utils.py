"""What the exporter and the runners share: the config's input size, the graph's interface, the optional imports."""
import importlib
from types import ModuleType
from typing import List, Sequence, Tuple, Union

import torch
from mmengine.config import Config

from ..utils import config_input_size, setup_host

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


def fixed_input_size(cfg: Config) -> Tuple[int, int]:
    """The fixed (height, width) a model of this config sees at test time, which an ONNX graph is exported for.

    Detection: the test pipeline's ``Resize`` without ratio keeping (SSDLite: 320x320); a ratio-keeping resize gives
    no fixed size. Segmentation: the data preprocessor's ``size`` (the training crop, 512x512); test images are
    padded to it, as TF DeepLab pads to 513.
    """
    if setup_host(cfg) == 'mmdet' and not any(
            transform['type'].split('.')[-1] == 'Resize' and not transform.get('keep_ratio', False)
            for transform in cfg.test_dataloader.dataset.pipeline):
        raise ValueError('the test pipeline resizes keeping the aspect ratio, so inputs have no fixed size; give '
                         'the input size explicitly (--shape H W)')
    return config_input_size(cfg)


def relative_difference(expected: NetworkOutputs, actual: NetworkOutputs) -> float:
    """Largest absolute difference between two ``mode='tensor'`` outputs, relative to the largest expected value."""
    def flatten(outputs: NetworkOutputs) -> List[torch.Tensor]:
        return [outputs] if torch.is_tensor(outputs) else [t for level in outputs for t in level]

    pairs = list(zip(flatten(expected), flatten(actual), strict=True))
    scale = max(float(e.abs().max()) for e, _ in pairs)
    return max(float((e - a).abs().max()) for e, a in pairs) / max(scale, float(torch.finfo(torch.float32).tiny))
