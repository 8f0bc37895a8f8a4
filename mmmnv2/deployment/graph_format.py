"""The format of an exported file, which the exporter writes and the runners read: the graph's input and output names,
its metadata keys; and the comparison of a file's outputs with the PyTorch model's."""
from types import ModuleType
from typing import List, Sequence, Tuple, Union

import torch

from ..utils.optional_import import import_optional

NetworkOutputs = Union[torch.Tensor, Sequence[Sequence[torch.Tensor]]]

INPUT_NAME = 'input'
SEG_OUTPUT_NAME = 'seg_logits'
# Metadata the exporter writes into the ONNX file and the runners read back.
META_HOST = 'mmmnv2_host'
META_DATASET_META = 'mmmnv2_dataset_meta'
# The post-processing in the graph (``export_onnx(..., postprocess=True)``): JSON of its settings; absent: network only.
META_POSTPROCESS = 'mmmnv2_postprocess'


def output_names(outputs: NetworkOutputs) -> Tuple[str, ...]:
    """Names of the graph outputs for a model's ``mode='tensor'`` outputs.

    A segmentor returns one tensor (the decode head's logits); a detector returns (class scores per level, box
    deltas per level), flattened into the graph's outputs in that order.
    """
    if torch.is_tensor(outputs):
        return (SEG_OUTPUT_NAME,)
    cls_scores, bbox_preds = outputs
    return (*(f'cls_score_{i}' for i in range(len(cls_scores))), *(f'bbox_pred_{i}' for i in range(len(bbox_preds))))


def flatten_outputs(outputs: NetworkOutputs) -> List[torch.Tensor]:
    """The ``mode='tensor'`` outputs as the flat list of graph outputs (``output_names`` order)."""
    return [outputs] if torch.is_tensor(outputs) else [t for level in outputs for t in level]


def import_deploy_dependency(name: str) -> ModuleType:
    """Import onnx / onnxruntime / openvino / nncf / onnxscript, or say how to install them (the ``deploy`` extra)."""
    return import_optional(name, 'deploy', 'ONNX export, inference and quantization')


def import_mobile_dependency(name: str) -> ModuleType:
    """Import litert_torch / ai_edge_litert / executorch, or say how to install them (the ``mobile`` extra)."""
    return import_optional(name, 'mobile', 'LiteRT (.tflite) and ExecuTorch (.pte) export and inference')


def relative_difference(expected: NetworkOutputs, actual: NetworkOutputs) -> float:
    """Largest absolute difference between two ``mode='tensor'`` outputs, relative to the largest expected value."""
    pairs = list(zip(flatten_outputs(expected), flatten_outputs(actual), strict=True))
    scale = max(float(e.abs().max()) for e, _ in pairs)
    return max(float((e - a).abs().max()) for e, a in pairs) / max(scale, float(torch.finfo(torch.float32).tiny))
