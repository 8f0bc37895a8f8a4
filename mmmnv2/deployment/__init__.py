"""Deployment: export SSDLite / Mobile DeepLabv3 to ONNX and run the exported file in onnxruntime.

``export_onnx`` writes one ONNX file (batch norm folded into the convolutions, fixed input size). The runners
(``ONNXRuntimeDetector``, ``ONNXRuntimeSegmentor``) are MMEngine models: the config's pre-processing, the ONNX network
in onnxruntime, then the host's own post-processing, so ``tools/test.py``, the evaluators, the visualisers and
``tools/infer.py`` work on either backend. onnx and onnxruntime come with ``pip install 'mmmnv2[deploy]'``.
"""
from ..utils import fixed_input_size
from .export import UnsupportedOperatorError, export_onnx
from .onnx_interface import relative_difference
from .onnx_runtime_detector import ONNXRuntimeDetector
from .onnx_runtime_segmentor import ONNXRuntimeSegmentor
from .runtime import init_onnx_model, onnx_model_cfg

__all__ = ['ONNXRuntimeDetector', 'ONNXRuntimeSegmentor', 'UnsupportedOperatorError', 'fixed_input_size',
           'export_onnx', 'init_onnx_model', 'onnx_model_cfg', 'relative_difference']
