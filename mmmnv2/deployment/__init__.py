"""Deployment: export SSDLite / Mobile DeepLabv3 to ONNX, LiteRT (.tflite) or ExecuTorch (.pte), run the file in
onnxruntime, OpenVINO, LiteRT or ExecuTorch, quantize it.

- ``export.py``: ``export_onnx`` writes one ONNX file (batch norm folded into the convolutions, fixed input size),
  optionally ending with the post-processing (``postprocess=True``, or ``add_postprocess`` on a network-only file);
- ``mobile_export.py``: ``export_mobile`` writes the same network as ``.tflite`` (litert_torch) or ``.pte``
  (ExecuTorch, XNNPACK), with the same metadata;
- ``postprocess_graph.py``: that post-processing as ONNX operators;
- ``graph_format.py``: what an exported file holds (input and output names, metadata keys);
- ``sessions.py``: the runtimes (onnxruntime, OpenVINO, LiteRT, ExecuTorch) behind one small session interface;
- ``runner.py``, ``exported_detector.py``, ``exported_segmentor.py``: the runners (``ExportedDetector``,
  ``ExportedSegmentor``), MMEngine models doing the config's pre-processing, the network in a session, then the
  host's own post-processing, so ``tools/test.py``, the evaluators, the visualisers and ``tools/infer.py`` work on
  every runtime;
- ``quantization.py``: int8 with an accuracy guard.

onnx, onnxruntime, openvino and nncf come with ``pip install 'mmmnv2[deploy]'``; litert-torch, ai-edge-litert and
executorch with ``pip install 'mmmnv2[mobile]'``.
"""
from .export import UnsupportedOperatorError, add_postprocess, export_onnx
from .exported_detector import ExportedDetector
from .exported_segmentor import ExportedSegmentor
from .graph_format import relative_difference
from .mobile_export import MOBILE_FORMATS, export_mobile
from .quantization import quantize_model, sensitive_layers
from .runner import compare_with_pytorch, exported_config, exported_model_cfg, init_exported_model
from .sessions import BACKENDS, EXPORTED_EXTENSIONS, FILE_BACKENDS, ONNX_BACKENDS, file_backend, open_session

__all__ = ['BACKENDS', 'EXPORTED_EXTENSIONS', 'ExportedDetector', 'ExportedSegmentor', 'FILE_BACKENDS',
           'MOBILE_FORMATS', 'ONNX_BACKENDS', 'UnsupportedOperatorError', 'add_postprocess', 'compare_with_pytorch',
           'export_mobile', 'export_onnx', 'exported_config', 'exported_model_cfg', 'file_backend',
           'init_exported_model', 'open_session', 'quantize_model', 'relative_difference', 'sensitive_layers']
