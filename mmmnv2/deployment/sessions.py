"""The runtimes an exported file runs in, behind one small session interface: onnxruntime or OpenVINO for ``.onnx``,
LiteRT for ``.tflite``, ExecuTorch for ``.pte``.

An ``.onnx`` file (fp32, or int8 with QuantizeLinear/DequantizeLinear pairs) runs in onnxruntime or OpenVINO; the
``.tflite`` and ``.pte`` files of ``mobile_export`` in LiteRT's interpreter and ExecuTorch's runtime. The runners
(``ExportedDetector``, ``ExportedSegmentor``) see only ``BackendSession``: the input shape, the outputs' names and
shapes, the file's metadata, and ``run``.
"""
import json
import os.path as osp
from typing import Dict, List, Optional, Sequence, Union

import numpy as np

from .graph_format import INPUT_NAME, check_onnx_file, import_deploy_dependency, import_mobile_dependency

# The runtimes of each exported format (the first is the default).
FILE_BACKENDS = {'.onnx': ('onnxruntime', 'openvino'), '.tflite': ('litert',), '.pte': ('executorch',)}
EXPORTED_EXTENSIONS = tuple(FILE_BACKENDS)
BACKENDS = tuple(backend for backends in FILE_BACKENDS.values() for backend in backends)
ONNX_BACKENDS = FILE_BACKENDS['.onnx']
Dim = Optional[int]  # None: a dynamic dimension


def check_backend(backend: str, choices: Sequence[str] = BACKENDS) -> str:
    """``backend`` if it is one of ``choices`` (default: every runtime), else ValueError naming them."""
    if backend not in choices:
        raise ValueError(f'backend must be one of {tuple(choices)}, got {backend!r}')
    return backend


def file_backend(model_file: str, backend: Optional[str] = None) -> str:
    """The runtime for ``model_file``: ``backend`` if it runs the file's format, by default the format's first
    (``FILE_BACKENDS``); ValueError for a file that is not an exported format or a runtime that cannot run it."""
    extension = osp.splitext(model_file)[1].lower()
    if extension not in FILE_BACKENDS:
        raise ValueError(f'an exported model file must be one of {EXPORTED_EXTENSIONS}, got {model_file}')
    if backend is None:
        return FILE_BACKENDS[extension][0]
    if check_backend(backend) not in FILE_BACKENDS[extension]:
        raise ValueError(f'backend {backend!r} does not run {extension} files; backend for {model_file} must be one '
                         f'of {FILE_BACKENDS[extension]}')
    return backend


def check_num_threads(num_threads: Optional[int]) -> None:
    if num_threads is not None and (not isinstance(num_threads, int) or isinstance(num_threads, bool)
                                    or num_threads < 1):
        raise ValueError(f'num_threads must be a positive integer or None, got {num_threads!r}')


class BackendSession:
    """One compiled network: ``backend`` (the runtime it runs in), ``input_shape`` (N, C, H, W; None where dynamic),
    ``output_shapes`` (name -> shape, in graph output order), ``metadata`` (the file's metadata) and ``run`` (one
    array per output)."""

    backend: str
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


class LiteRTSession(BackendSession):
    """A ``.tflite`` file in LiteRT's interpreter (``ai_edge_litert``, XNNPACK delegate), through its signature.

    The outputs are the signature's ``output_<i>`` in the order of the exported network's outputs; the metadata is
    the flatbuffer's metadata table (``mobile_export.with_tflite_metadata``). An int8 file whose converter made the
    input and outputs int8 too (litert_torch folds the first quantize and last dequantize into them) gets its input
    quantized and its outputs dequantized here, with the tensors' own scale and zero point, as an app does; tensors
    without quantization parameters (a uint8 image input, int32 labels) pass as they are.
    """

    def __init__(self, model_file: str, num_threads: Optional[int] = None) -> None:
        interpreter = import_mobile_dependency('ai_edge_litert.interpreter')
        self.interpreter = interpreter.Interpreter(model_path=model_file, num_threads=num_threads)
        self.runner = self.interpreter.get_signature_runner()
        details = self.runner.get_input_details()
        if len(details) != 1:
            raise ValueError(f'{model_file} has inputs {list(details)}; an exported network has one image input')
        (self.input_name, self.input_detail), = details.items()
        self.input_shape = [int(d) for d in self.input_detail['shape']]
        outputs = self.output_details = self.runner.get_output_details()
        # litert_torch names the outputs output_<i> (i: position in the PyTorch output tuple)
        self.output_order = sorted(outputs, key=lambda name: int(name.rsplit('_', 1)[1]))
        self.output_shapes = {name: [int(d) for d in outputs[name]['shape']] for name in self.output_order}
        with open(model_file, 'rb') as file:
            self.metadata = read_tflite_metadata(file.read())

    def run(self, inputs: np.ndarray, extra_inputs: Optional[Dict[str, np.ndarray]] = None) -> List[np.ndarray]:
        if extra_inputs:
            raise ValueError(f'a .tflite network takes one image input, got extra inputs {list(extra_inputs)}')
        detail = self.input_detail
        scale, zero_point = detail['quantization']
        if scale:  # an int8 input (a uint8 image input has no quantization parameters: scale 0)
            limits = np.iinfo(detail['dtype'])
            inputs = np.clip(np.round(inputs / scale) + zero_point, limits.min, limits.max).astype(detail['dtype'])
        results = self.runner(**{self.input_name: inputs})
        outputs = []
        for name in self.output_order:
            output, detail = results[name], self.output_details[name]
            scale, zero_point = detail['quantization']
            if scale:  # an int8 output (labels and flags have no quantization parameters)
                output = (output.astype(np.float32) - zero_point) * np.float32(scale)
            outputs.append(output)
        return outputs


def read_tflite_metadata(content: bytes) -> Dict[str, str]:
    """The text entries of a TFLite flatbuffer's metadata table (TFLite's own binary entries are left out)."""
    schema = import_mobile_dependency('ai_edge_litert.schema_py_generated')
    model = schema.Model.GetRootAs(content, 0)
    entries = {}
    for i in range(model.MetadataLength()):
        entry = model.Metadata(i)
        data = model.Buffers(entry.Buffer()).DataAsNumpy()
        try:
            entries[entry.Name().decode()] = bytes(data).decode() if not isinstance(data, int) else ''
        except UnicodeDecodeError:
            continue
    return entries


class ExecuTorchSession(BackendSession):
    """A ``.pte`` file in ExecuTorch's runtime (its Python bindings; the XNNPACK delegate runs the network).

    ``num_threads`` sizes ExecuTorch's one process-wide thread pool (``_unsafe_reset_threadpool``: the bindings have
    no per-program setting), so the last session opened with a thread count sets it for all.
    """

    def __init__(self, model_file: str, num_threads: Optional[int] = None) -> None:
        from .mobile_export import MOBILE_METADATA_METHOD
        runtime = import_mobile_dependency('executorch.runtime')
        if num_threads is not None:
            import_mobile_dependency('executorch.extension.pybindings.portable_lib')._unsafe_reset_threadpool(
                num_threads)
        program = runtime.Runtime.get().load_program(model_file)
        self.method = program.load_method('forward')
        meta = program.metadata('forward')
        if meta.num_inputs() != 1:
            raise ValueError(f'{model_file} has {meta.num_inputs()} inputs; an exported network has one image input')
        self.input_shape = list(meta.input_tensor_meta(0).sizes())
        self.output_shapes = {f'output_{i}': list(meta.output_tensor_meta(i).sizes())
                              for i in range(meta.num_outputs())}
        self.metadata = {}
        if MOBILE_METADATA_METHOD in program.method_names:
            encoded, = program.load_method(MOBILE_METADATA_METHOD).execute([])
            self.metadata = json.loads(bytes(encoded.numpy()).decode())

    def run(self, inputs: np.ndarray, extra_inputs: Optional[Dict[str, np.ndarray]] = None) -> List[np.ndarray]:
        import torch
        if extra_inputs:
            raise ValueError(f'a .pte network takes one image input, got extra inputs {list(extra_inputs)}')
        return [output.numpy() for output in self.method.execute([torch.from_numpy(inputs)])]


def read_metadata(model_file: str) -> Dict[str, str]:
    """The metadata of the exported ``model_file`` (``.onnx``, ``.tflite`` or ``.pte``), read without compiling it."""
    extension = osp.splitext(model_file)[1].lower()
    file_backend(model_file)  # an exported format
    try:
        if extension == '.onnx':
            return check_onnx_file(model_file)
        if extension == '.tflite':
            with open(model_file, 'rb') as file:
                return read_tflite_metadata(file.read())
        from .mobile_export import MOBILE_METADATA_METHOD
        program = import_mobile_dependency('executorch.runtime').Runtime.get().load_program(model_file)
        if MOBILE_METADATA_METHOD not in program.method_names:
            return {}
        encoded, = program.load_method(MOBILE_METADATA_METHOD).execute([])
        return json.loads(bytes(encoded.numpy()).decode())
    except (ImportError, ValueError, FileNotFoundError):
        raise
    except Exception as error:  # each reader raises its own error types for a file that is not its format
        raise ValueError(f'{model_file}: cannot read its metadata ({str(error).strip() or type(error).__name__})'
                         ) from error


def open_session(model_file: str, backend: Optional[str] = None, num_threads: Optional[int] = None
                 ) -> BackendSession:
    """``model_file`` compiled in ``backend`` (default: the format's first runtime, ``FILE_BACKENDS``) with
    ``num_threads`` threads.

    An ONNX file ``graph_format.check_onnx_file`` refuses, or a file the runtime cannot load, raises ValueError naming
    it.
    """
    check_num_threads(num_threads)
    backend = file_backend(model_file, backend)
    session_class = {'onnxruntime': OnnxRuntimeSession, 'openvino': OpenVINOSession, 'litert': LiteRTSession,
                     'executorch': ExecuTorchSession}[backend]
    if model_file.lower().endswith('.onnx'):
        check_onnx_file(model_file)  # before a runtime reads it: external data, custom operators
    try:
        session = session_class(model_file, num_threads)
    except ImportError:  # the runtime is not installed: its own message says which extra to install
        raise
    except Exception as error:  # each runtime raises its own error types for a file it cannot load
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ValueError(f'{model_file}: {backend} cannot load it ({reason})') from error
    session.backend = backend
    return session
