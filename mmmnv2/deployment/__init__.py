"""Deployment: export SSDLite / Mobile DeepLabv3 to ONNX, run the file in onnxruntime or OpenVINO, quantize it.

``export_onnx`` writes one ONNX file (batch norm folded into the convolutions, fixed input size), optionally ending
with the post-processing (``postprocess=True``, or ``add_postprocess`` on a network-only file). The runners
(``ONNXDetector``, ``ONNXSegmentor``) are MMEngine models: the config's pre-processing, the ONNX network
in onnxruntime or OpenVINO (``backend``), then the host's own post-processing, so ``tools/test.py``, the evaluators,
the visualisers and ``tools/infer.py`` work on every runtime. onnx, onnxruntime, openvino and nncf come with
``pip install 'mmmnv2[deploy]'``.
"""
from ..utils import fixed_input_size
from .backends import BACKENDS, open_session
from .export import UnsupportedOperatorError, add_postprocess, export_onnx
from .onnx_detector import ONNXDetector
from .onnx_interface import relative_difference
from .onnx_segmentor import ONNXSegmentor
from .quantization import quantize_model, sensitive_layers
from .runtime import init_onnx_model, onnx_model_cfg

__all__ = ['BACKENDS', 'ONNXDetector', 'ONNXSegmentor', 'UnsupportedOperatorError', 'fixed_input_size',
           'add_postprocess', 'export_onnx', 'init_onnx_model', 'onnx_model_cfg', 'open_session', 'quantize_model',
           'relative_difference', 'sensitive_layers']
