"""Read the variables of Google's MobileNetV2 models from the files Google released.

Four kinds of source, told apart by what ``path`` is:

- a TFLite flatbuffer (``.tflite``), read with the ``tflite`` schema package: every CONV_2D / DEPTHWISE_CONV_2D
  operator gives its layer's weights and bias, named by the TF scope found in the weight tensor's name (TFLite joins
  the names of fused TF ops with ';'; the scope is that of ``<scope>/weights``, ``<scope>/depthwise_weights`` or
  ``<scope>/weights_quant/FakeQuantWithMinMaxVars``). uint8/int8/int32 tensors are dequantized with their per-tensor
  or per-axis scales and zero points. BatchNorm is folded into these weights, so a layer has ``<scope>/biases``
  instead of ``<scope>/BatchNorm/*``. The stride and dilation of every conv are kept, to check the output stride;
- a folder of ``.npy`` files, one per TF-slim variable, named as the variable with the leading ``MobilenetV2/``
  dropped and '/' replaced by '_' (``expanded_conv_3_expand_weights.npy``);
- a TF checkpoint (``model.ckpt-30000`` with its ``.index`` and ``.data-*`` files), read without TensorFlow
  (``tf_bundle``); a variable's exponential moving average is taken where the checkpoint has one, optimizer slots
  and ``global_step`` are left out;
- a frozen graph (``frozen_inference_graph.pb``, TF's ``GraphDef`` with the variables turned into constants by
  ``convert_variables_to_constants``, as the Object Detection API's and TF DeepLab's exporters write it), read with
  the GraphDef protos ``tensorboard`` ships (``pip install "mmmnv2[tf-graph]"``): a variable is a ``Const`` node that
  an ``Identity`` node ``<name>/read`` reads (the variable's read op, which freezing keeps), or, where a graph was
  stripped of those, a float ``Const`` named as a TF-slim variable (``.../weights``, ``.../BatchNorm/gamma``, ...).

Arrays keep TF's layout: conv kernels HWIO, depthwise kernels HW(C)(1).
"""
import glob
import os.path as osp
import re
from dataclasses import dataclass, field
from typing import Dict, Optional, Tuple

import numpy as np

from .tf_bundle import BundleError, read_bundle

TF_SLIM_ROOT = 'MobilenetV2/'
# Optimizer slots and counters a training checkpoint holds besides the model's variables.
TRAINING_VARIABLE = re.compile(r'(^global_step$|/(Momentum|ExponentialMovingAverage|RMSProp(_1)?|Adam(_1)?)$)')
_VARIABLE_LEAF = re.compile(r'/(weights|depthwise_weights|biases|gamma|beta|moving_mean|moving_variance)$')
_WEIGHT_NAME = re.compile(r'^(?P<scope>.+)/(weights_quant/FakeQuantWithMinMaxVars|depthwise_weights|weights)$')


class ConversionError(ValueError):
    """A source file that cannot be read, or whose variables do not fit the target model."""


@dataclass
class TFVariables:
    """The variables of one source file, keyed by TF name (``MobilenetV2/Conv/weights``).

    ``folded``: BatchNorm is folded into the convs (TFLite). ``geometry``: TF scope -> (stride, dilation) of its
    conv, where the file records it (TFLite). ``input_size``: the (height, width) the graph was built for (TFLite).
    """
    path: str
    kind: str
    arrays: Dict[str, np.ndarray]
    folded: bool = False
    geometry: Dict[str, Tuple[int, int]] = field(default_factory=dict)
    input_size: Optional[Tuple[int, int]] = None
    # A .npy folder's names are flattened: look them up the same way.
    flat_names: bool = False

    def key(self, tf_name: str) -> str:
        """The key ``tf_name`` has in ``arrays``."""
        return flat_name(tf_name) if self.flat_names else tf_name

    def model_keys(self) -> Dict[str, Tuple[int, ...]]:
        """Key -> shape of every variable but the optimizer's and the step counter."""
        return {key: array.shape for key, array in self.arrays.items() if not TRAINING_VARIABLE.search(key)}


def flat_name(tf_name: str) -> str:
    """The name of a TF-slim variable's .npy file (without '.npy')."""
    return tf_name.removeprefix(TF_SLIM_ROOT).replace('/', '_')


def read_tf_variables(path: str) -> TFVariables:
    """The variables in ``path``: a .tflite file, a folder of .npy files or a TF checkpoint (prefix or .index)."""
    if osp.isdir(path):
        return _read_npy_folder(path)
    prefix = path[:-len('.index')] if path.endswith('.index') else path
    if osp.isfile(prefix + '.index'):
        return _read_tf_checkpoint(prefix)
    if not osp.isfile(path):
        raise ConversionError(f'{path}: no such file or folder')
    with open(path, 'rb') as file:
        head = file.read(8)
    if path.endswith('.tflite') or head[4:8] == b'TFL3':
        return _read_tflite(path)
    if path.endswith('.pb'):
        return _read_frozen_graph(path)
    raise ConversionError(f'{path}: not a model this converter reads; give a TFLite flatbuffer (.tflite), a folder '
                          f'of TF-slim .npy variables, a TF checkpoint (its prefix or .index file) or a frozen '
                          f'graph (.pb)')


def _read_npy_folder(path: str) -> TFVariables:
    files = sorted(glob.glob(osp.join(path, '*.npy')))
    if not files:
        raise ConversionError(f'{path}: a folder without .npy files (one per TF-slim variable expected)')
    arrays = {}
    for file in files:
        try:
            arrays[osp.basename(file)[:-len('.npy')]] = np.load(file, allow_pickle=False)
        except (ValueError, OSError, EOFError) as error:
            raise ConversionError(f'{file}: not a readable .npy array ({error})') from error
    return TFVariables(path, 'npy', arrays, flat_names=True)


def _read_tf_checkpoint(prefix: str) -> TFVariables:
    try:
        stored = read_bundle(prefix)
    except (BundleError, OSError) as error:
        raise ConversionError(f'{prefix}: not a readable TF checkpoint ({error})') from error
    # TF evaluates with the moving averages where training kept them (slim's variables_to_restore with EMA).
    arrays = {name: stored.get(f'{name}/ExponentialMovingAverage', value) for name, value in stored.items()
              if not TRAINING_VARIABLE.search(name)}
    return TFVariables(prefix, 'checkpoint', arrays)


def _read_frozen_graph(path: str) -> TFVariables:
    try:
        from tensorboard.compat.proto import graph_pb2
        from tensorboard.util import tensor_util
    except ImportError as error:
        raise ConversionError(f'{path}: reading frozen graphs needs the GraphDef protos of the `tensorboard` '
                              f'package; install it with `pip install "mmmnv2[tf-graph]"`') from error
    graph = graph_pb2.GraphDef()
    try:
        with open(path, 'rb') as file:
            graph.ParseFromString(file.read())
    except Exception as error:  # protobuf's DecodeError, or a file that is no GraphDef at all
        raise ConversionError(f'{path}: not a TF GraphDef ({type(error).__name__}: {error})') from error
    read_ops = {node.input[0] for node in graph.node
                if node.op == 'Identity' and node.input and node.name == f'{node.input[0]}/read'}
    arrays = {}
    for node in graph.node:
        if node.op != 'Const' or not (node.name in read_ops or _VARIABLE_LEAF.search(node.name)):
            continue
        value = tensor_util.make_ndarray(node.attr['value'].tensor)
        if value.dtype.kind == 'f':
            arrays[node.name] = value
    if not graph.node:
        raise ConversionError(f'{path}: an empty TF GraphDef')
    if not arrays:
        raise ConversionError(f'{path}: a TF graph without variables (not a frozen graph)')
    return TFVariables(path, 'frozen_graph', arrays)


def _read_tflite(path: str) -> TFVariables:
    try:
        import tflite
    except ImportError as error:
        raise ConversionError(f'{path}: reading TFLite files needs the `tflite` package; install it with '
                              f'`pip install "mmmnv2[tflite]"`') from error
    with open(path, 'rb') as file:
        data = file.read()
    if len(data) < 8 or not tflite.Model.ModelBufferHasIdentifier(data, 0):
        raise ConversionError(f'{path}: not a TFLite flatbuffer (no "TFL3" identifier)')
    try:
        return _tflite_variables(path, data, tflite)
    except ConversionError:
        raise
    except Exception as error:  # the flatbuffer accessors fail in many ways on a damaged file
        raise ConversionError(f'{path}: damaged or truncated TFLite file ({type(error).__name__}: {error})') from error


def _tflite_variables(path: str, data: bytes, tflite) -> TFVariables:
    model = tflite.Model.GetRootAsModel(data, 0)
    graph = model.Subgraphs(0)
    dtypes = {tflite.TensorType.FLOAT32: np.float32, tflite.TensorType.FLOAT16: np.float16,
              tflite.TensorType.INT32: np.int32, tflite.TensorType.UINT8: np.uint8, tflite.TensorType.INT8: np.int8}

    def tensor_array(index: int) -> Tuple[str, np.ndarray]:
        tensor = graph.Tensors(index)
        name = tensor.Name().decode()
        shape = tuple(int(d) for d in tensor.ShapeAsNumpy())
        if tensor.Type() not in dtypes:
            raise ConversionError(f'{path}: tensor {name} has a type this converter does not read ({tensor.Type()})')
        dtype = np.dtype(dtypes[tensor.Type()]).newbyteorder('<')
        buffer = model.Buffers(tensor.Buffer())
        offset = buffer.Offset() if hasattr(buffer, 'Offset') else 0  # schema field of newer `tflite` packages
        if offset > 1:  # large models keep buffers after the flatbuffer
            raw = data[offset:offset + buffer.Size()]
        else:
            raw = buffer.DataAsNumpy().tobytes() if buffer.DataLength() else b''
        needed = int(np.prod(shape)) * dtype.itemsize
        if len(raw) != needed:
            raise ConversionError(f'{path}: truncated or damaged: tensor {name} {shape} needs {needed} bytes, the '
                                  f'file holds {len(raw)}')
        values = np.frombuffer(raw, dtype).reshape(shape)
        quantization = tensor.Quantization()
        if quantization is not None and quantization.ScaleLength() and values.dtype.kind in 'iu':
            values = _dequantize(values, quantization.ScaleAsNumpy(), quantization.ZeroPointAsNumpy(),
                                 quantization.QuantizedDimension())
        return name, values.astype(np.float32)

    arrays: Dict[str, np.ndarray] = {}
    geometry: Dict[str, Tuple[int, int]] = {}
    for op_index in range(graph.OperatorsLength()):
        op = graph.Operators(op_index)
        code = model.OperatorCodes(op.OpcodeIndex())
        builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
        if builtin == tflite.BuiltinOperator.CONV_2D:
            options, depthwise = tflite.Conv2DOptions(), False
        elif builtin == tflite.BuiltinOperator.DEPTHWISE_CONV_2D:
            options, depthwise = tflite.DepthwiseConv2DOptions(), True
        else:
            continue
        table = op.BuiltinOptions()
        options.Init(table.Bytes, table.Pos)
        inputs = op.InputsAsNumpy()
        weight_name, weights = tensor_array(int(inputs[1]))
        scope = _scope_of(weight_name)
        if scope is None:
            raise ConversionError(f'{path}: cannot tell which TF layer the conv weights {weight_name!r} belong to')
        if scope in geometry:
            raise ConversionError(f'{path}: two convs of the TF layer {scope}')
        if depthwise:  # TFLite [1, H, W, C] -> TF's [H, W, C, 1]
            arrays[f'{scope}/depthwise_weights'] = weights[0][..., None]
        else:  # TFLite [O, H, W, I] -> TF's HWIO
            arrays[f'{scope}/weights'] = weights.transpose(1, 2, 3, 0)
        if len(inputs) > 2 and inputs[2] >= 0:
            arrays[f'{scope}/biases'] = tensor_array(int(inputs[2]))[1]
        geometry[scope] = (options.StrideH(), options.DilationHFactor())
    if not arrays:
        raise ConversionError(f'{path}: a TFLite file without convolutions')
    input_shape = graph.Tensors(int(graph.InputsAsNumpy()[0])).ShapeAsNumpy()
    return TFVariables(path, 'tflite', arrays, folded=True, geometry=geometry,
                       input_size=(int(input_shape[1]), int(input_shape[2])))


def _scope_of(weight_name: str) -> Optional[str]:
    """The TF scope of a conv's weight tensor; TFLite joins the names of the TF ops it fused with ';'."""
    for part in weight_name.split(';'):
        match = _WEIGHT_NAME.match(part)
        if match:
            return match.group('scope')
    return None


def _dequantize(values: np.ndarray, scales: np.ndarray, zero_points, axis: int) -> np.ndarray:
    """Real values of a quantized tensor: (q - zero_point) * scale, per tensor or per ``axis``."""
    scales = np.asarray(scales, np.float64)
    zero_points = np.zeros_like(scales) if np.isscalar(zero_points) else np.asarray(zero_points, np.float64)
    if scales.size > 1:
        shape = [1] * values.ndim
        shape[axis] = -1
        scales, zero_points = scales.reshape(shape), zero_points.reshape(shape)
    return (values.astype(np.float64) - zero_points) * scales


__all__ = ['ConversionError', 'TFVariables', 'flat_name', 'read_tf_variables']
