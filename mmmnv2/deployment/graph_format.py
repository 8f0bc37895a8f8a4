"""The format of an exported file, which the exporter writes and the runners read: the graph's input and output names,
its metadata keys, what a file must be before a runtime opens it; and the comparison of a file's outputs with the
PyTorch model's."""
import json
import os.path as osp
from types import ModuleType
from typing import Any, Dict, List, Sequence, Tuple, Union

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
# The pre-processing in the graph (``preprocess=True``: uint8 image in, ``image_graph.preprocess_settings``): JSON of
# its settings; absent: the graph takes the network's normalised float input.
META_PREPROCESS = 'mmmnv2_preprocess'
# The settings of the config's model an exported file was made with and is only right with (JSON): the anchors and
# the box coder its box outputs are relative to, the class count, the input normalisation it was trained with, the
# segmentation head's resizing. The runners compare them with the config's; files without them are not checked.
META_MODEL_SETTINGS = 'mmmnv2_model_settings'
MODEL_SETTINGS = ('bbox_head.anchor_generator', 'bbox_head.bbox_coder', 'bbox_head.num_classes',
                  'decode_head.num_classes', 'decode_head.align_corners', 'data_preprocessor.mean',
                  'data_preprocessor.std', 'data_preprocessor.bgr_to_rgb', 'data_preprocessor.rgb_to_bgr')
# Operator domains of the files the exporter and the quantizers write: ONNX's own, and onnxruntime's contrib
# operators its quantizer may use. Anything else is a custom operator that would need a library loaded to run.
KNOWN_DOMAINS = ('', 'ai.onnx', 'ai.onnx.ml', 'com.microsoft')


def check_onnx_file(onnx_file: str) -> Dict[str, str]:
    """Read ``onnx_file``'s graph (not its external data) and return its metadata; raise ValueError naming the file
    if it is not an ONNX model, reads external data from outside its folder or from a file that is not there, or
    uses operators of a custom domain."""
    onnx = import_deploy_dependency('onnx')
    try:
        model = onnx.load(onnx_file, load_external_data=False)
    except Exception as error:  # protobuf's DecodeError and friends
        raise ValueError(f'{onnx_file}: not an ONNX model ({str(error).strip() or type(error).__name__})') from None
    folder = osp.realpath(osp.dirname(osp.abspath(onnx_file)))
    for tensor in model.graph.initializer:
        if tensor.data_location != onnx.TensorProto.EXTERNAL:
            continue
        location = {entry.key: entry.value for entry in tensor.external_data}.get('location', '')
        data_file = osp.realpath(osp.join(folder, location))
        if osp.isabs(location) or osp.commonpath([folder, data_file]) != folder:
            raise ValueError(f'{onnx_file}: its tensor {tensor.name} reads external data from {location}, outside '
                             f'the model\'s folder; refused')
        if not osp.isfile(data_file):
            raise ValueError(f'{onnx_file}: the external data file {location} of its tensor {tensor.name} is missing')
    custom = sorted({opset.domain for opset in model.opset_import} - set(KNOWN_DOMAINS))
    if custom:
        raise ValueError(f'{onnx_file}: uses operators of the custom domain(s) {", ".join(custom)}, which no '
                         f'exported or quantized model of ours has; refused')
    return {entry.key: entry.value for entry in model.metadata_props}


def metadata_json(onnx_file: str, metadata: Dict[str, str], key: str, default: Any = None) -> Any:
    """The JSON value of ``metadata[key]`` (``default`` if absent); ValueError naming the file and the key if it is
    not JSON."""
    if key not in metadata:
        return default
    try:
        return json.loads(metadata[key])
    except json.JSONDecodeError as error:
        raise ValueError(f'{onnx_file}: its metadata {key} is not JSON ({error})') from None


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


def _plain(value: Any) -> Any:
    """``value`` as JSON gives it back (tuples as lists), registry types without their scope ('mmdet.X' -> 'X')."""
    value = json.loads(json.dumps(value, default=list))
    if isinstance(value, dict) and isinstance(value.get('type'), str):
        value['type'] = value['type'].rsplit('.', 1)[-1]
    return value


def model_settings(model_cfg: Dict) -> Dict[str, Any]:
    """The ``MODEL_SETTINGS`` the model config ``model_cfg`` sets, by their dotted key."""
    settings = {}
    for key in MODEL_SETTINGS:
        value: Any = model_cfg
        for part in key.split('.'):
            value = value.get(part) if isinstance(value, dict) else None
        if value is not None:
            settings[key] = _plain(value)
    return settings


def check_model_settings(onnx_file: str, found: Dict[str, Any], model_cfg: Dict) -> None:
    """Raise ValueError naming the file and each key whose setting in the file (``found``) is not the config's."""
    expected = model_settings(model_cfg)
    differing = [key for key in MODEL_SETTINGS if (key in found or key in expected)
                 and found.get(key) != expected.get(key)]
    if differing:
        described = '; '.join(f'{key}: {found.get(key)!r} in the file, {expected.get(key)!r} in the config'
                              for key in differing)
        raise ValueError(f'{onnx_file}: was exported with other model settings than the config\'s ({described}); '
                         f'export it again with this config, or use the config it was exported from')
