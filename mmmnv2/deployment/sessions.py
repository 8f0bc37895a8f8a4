"""The runtimes an exported ONNX file runs in: onnxruntime or OpenVINO, behind one small session interface.

Both read the same ``.onnx`` file (fp32, or int8 with QuantizeLinear/DequantizeLinear pairs); the runners
(``ONNXDetector``, ``ONNXSegmentor``) see only ``BackendSession``: the input shape, the outputs' names and shapes,
the file's metadata, and ``run``.
"""
from typing import Dict, List, Optional, Union

import numpy as np

from .graph_format import INPUT_NAME, check_onnx_file, import_deploy_dependency

BACKENDS = ('onnxruntime', 'openvino')
Dim = Optional[int]  # None: a dynamic dimension


def check_backend(backend: str) -> str:
    """``backend`` if it is one of ``BACKENDS``, else ValueError naming the choices."""
    if backend not in BACKENDS:
        raise ValueError(f'backend must be one of {BACKENDS}, got {backend!r}')
    return backend


def check_num_threads(num_threads: Optional[int]) -> None:
    if num_threads is not None and (not isinstance(num_threads, int) or isinstance(num_threads, bool)
                                    or num_threads < 1):
        raise ValueError(f'num_threads must be a positive integer or None, got {num_threads!r}')


class BackendSession:
    """One compiled network: ``input_shape`` (N, C, H, W; None where dynamic), ``output_shapes`` (name -> shape,
    in graph output order), ``metadata`` (the ONNX file's metadata_props) and ``run`` (one array per output)."""

    input_shape: List[Dim]
    output_shapes: Dict[str, List[Dim]]
    metadata: Dict[str, str]

    def run(self, inputs: np.ndarray, extra_inputs: Optional[Dict[str, np.ndarray]] = None) -> List[np.ndarray]:
        """The outputs for the image batch ``inputs`` (and the graph's other inputs by name, if it has any)."""
        raise NotImplementedError


def _dim(value: Union[int, str, None]) -> Dim:
    return value if isinstance(value, int) else None


class OnnxRuntimeSession(BackendSession):
    """The file in onnxruntime's CPU execution provider, all graph optimisations on."""

    def __init__(self, onnx_file: str, num_threads: Optional[int] = None) -> None:
        onnxruntime = import_deploy_dependency('onnxruntime')
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = num_threads or 0  # 0: onnxruntime's default, one per core
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        # Idle onnxruntime threads would spin on the cores the pre- and post-processing need next.
        options.add_session_config_entry('session.intra_op.allow_spinning', '0')
        self.session = onnxruntime.InferenceSession(onnx_file, options, providers=['CPUExecutionProvider'])
        self.input_shape = [_dim(d) for d in self.session.get_inputs()[0].shape]
        self.output_shapes = {o.name: [_dim(d) for d in o.shape] for o in self.session.get_outputs()}
        self.metadata = dict(self.session.get_modelmeta().custom_metadata_map)

    def run(self, inputs: np.ndarray, extra_inputs: Optional[Dict[str, np.ndarray]] = None) -> List[np.ndarray]:
        return self.session.run(list(self.output_shapes), {INPUT_NAME: inputs, **(extra_inputs or {})})


class OpenVINOSession(BackendSession):
    """The file read by OpenVINO's ONNX frontend and compiled for its CPU plugin, in float32.

    OpenVINO's CPU plugin defaults to bfloat16 inference where the processor has bf16 instructions (outputs then
    differ from float32 by ~0.5% of the largest value); ``INFERENCE_PRECISION_HINT=f32`` keeps float32, so results
    match onnxruntime's to float32 precision. An int8 (QuantizeLinear/DequantizeLinear) file runs its quantized
    layers in int8 either way (OpenVINO's low-precision transformations). ``INFERENCE_NUM_THREADS``: the threads
    (None: OpenVINO's default); ``PERFORMANCE_HINT=LATENCY``: one stream, one image at a time (as onnxruntime).
    """

    def __init__(self, onnx_file: str, num_threads: Optional[int] = None) -> None:
        openvino = import_deploy_dependency('openvino')
        onnx = import_deploy_dependency('onnx')
        core = openvino.Core()
        config = {'INFERENCE_PRECISION_HINT': 'f32', 'PERFORMANCE_HINT': 'LATENCY'}
        if num_threads is not None:
            config['INFERENCE_NUM_THREADS'] = num_threads
        self.compiled = core.compile_model(core.read_model(onnx_file), 'CPU', config)
        self.request = self.compiled.create_infer_request()
        shape = self.compiled.inputs[0].get_partial_shape()
        self.input_shape = [d.get_length() if d.is_static else None for d in shape]
        self.output_shapes = {o.get_any_name(): [d.get_length() if d.is_static else None
                                                 for d in o.get_partial_shape()] for o in self.compiled.outputs}
        # OpenVINO's ONNX frontend does not carry metadata_props; read them with onnx (the graph is not loaded).
        self.metadata = {p.key: p.value for p in onnx.load(onnx_file, load_external_data=False).metadata_props}

    def run(self, inputs: np.ndarray, extra_inputs: Optional[Dict[str, np.ndarray]] = None) -> List[np.ndarray]:
        # infer() copies the outputs out of the request's buffers
        results = self.request.infer({INPUT_NAME: inputs, **(extra_inputs or {})})
        return [results[output] for output in self.compiled.outputs]


def open_session(onnx_file: str, backend: str = 'onnxruntime', num_threads: Optional[int] = None) -> BackendSession:
    """``onnx_file`` compiled in ``backend`` ('onnxruntime' or 'openvino') with ``num_threads`` threads.

    A file ``graph_format.check_onnx_file`` refuses, or one the runtime cannot load, raises ValueError naming it.
    """
    check_num_threads(num_threads)
    session_class = {'onnxruntime': OnnxRuntimeSession, 'openvino': OpenVINOSession}[check_backend(backend)]
    check_onnx_file(onnx_file)  # before a runtime reads it: external data, custom operators
    try:
        return session_class(onnx_file, num_threads)
    except ImportError:  # the runtime is not installed: its own message says which extra to install
        raise
    except Exception as error:  # each runtime raises its own error types for a file it cannot load
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ValueError(f'{onnx_file}: {backend} cannot load it ({reason})') from error
