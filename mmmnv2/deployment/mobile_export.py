"""Export a detector or segmentor of an mmmnv2 config for phones: LiteRT (``.tflite``) or ExecuTorch (``.pte``).

The exported network is the one ``export_onnx`` writes (``export.Network``: batch norm folded, images in, the model's
``mode='tensor'`` outputs out, at a fixed input size), converted by the formats' own tools: ``litert_torch.convert``
(PyTorch -> LiteRT) and ``torch.export`` -> ``executorch.exir.to_edge_transform_and_lower`` with the XNNPACK
partitioner (ExecuTorch's CPU backend on Android, iOS and Linux). Inputs and outputs keep PyTorch's NCHW layout, so the
runners (``ExportedDetector`` / ``ExportedSegmentor``) treat the files as they treat an ``.onnx``.

The metadata an ONNX file holds in ``metadata_props`` (``graph_format.META_*``: host, data set meta) travels inside
each file, where each format has room for it:

- ``.tflite``: the flatbuffer's ``metadata`` table (name -> buffer), one entry per key, the value's UTF-8 bytes (the
  place TFLite's own metadata, ``TFLITE_METADATA``, lives; interpreters ignore unknown entries);
- ``.pte``: a constant method ``MOBILE_METADATA_METHOD`` returning the JSON of the key -> value map as a uint8 tensor
  (ExecuTorch programs have no free-form metadata table; constant methods are its way to ship values with a model).
"""
import copy
import json
from typing import Dict, Optional, Tuple, Union

import torch
from mmengine.config import Config

from ..utils import fixed_input_size, make_output_folder, refuse_overwriting_inputs, replace_when_written
from .export import exportable_network
from .graph_format import import_mobile_dependency

# format -> the file extension it writes
MOBILE_FORMATS = {'tflite': '.tflite', 'executorch': '.pte'}
MOBILE_METADATA_METHOD = 'mmmnv2_metadata'


def check_format(fmt: str) -> str:
    if fmt not in MOBILE_FORMATS:
        raise ValueError(f'format must be one of {tuple(MOBILE_FORMATS)}, got {fmt!r}')
    return fmt


def export_mobile(config: Union[str, Config], checkpoint: Optional[str], out_file: str, fmt: str,
                  input_size: Optional[Tuple[int, int]] = None, preprocess: bool = False, postprocess: bool = False,
                  image_size: Optional[Tuple[int, int]] = None, candidates: int = 0) -> str:
    """Export the config's model with the checkpoint's weights to ``out_file`` in ``fmt`` ('tflite' or
    'executorch'); returns ``out_file``. ``input_size``: (height, width), by default the config's test size.
    ``checkpoint=None`` exports the initial weights (benchmarks).

    ``preprocess``: the file takes one uint8 RGB image (1, H, W, 3) of ``image_size`` (default: the input size) and
    resizes, normalises and pads it as the config's test pipeline; ``postprocess``: it returns boxes / scores /
    labels (detection: NMS over the best ``candidates`` (anchor, class) pairs, default ``DEFAULT_CANDIDATES``) or the
    uint8 label map (segmentation, with ``preprocess``); see ``image_graph``.
    """
    check_format(fmt)
    if not out_file.endswith(MOBILE_FORMATS[fmt]):
        raise ValueError(f'out_file of a {fmt} export must end with {MOBILE_FORMATS[fmt]}, got {out_file}')
    cfg = Config.fromfile(config) if isinstance(config, str) else copy.deepcopy(config)
    if preprocess and input_size and tuple(input_size) != fixed_input_size(cfg):
        raise ValueError(f'preprocess=True exports at the config\'s input size {fixed_input_size(cfg)}; got '
                         f'input_size {tuple(input_size)}')
    refuse_overwriting_inputs(out_file, (checkpoint, cfg.filename), f'{fmt} file')
    make_output_folder(out_file)  # fail before the export, not after it
    model, network, metadata, example = exportable_network(cfg, checkpoint, preprocess, image_size, postprocess,
                                                           candidates)
    if not preprocess:
        example = torch.zeros(1, 3, *(input_size or fixed_input_size(cfg)))
    return write_file(out_file, (tflite_bytes if fmt == 'tflite' else executorch_bytes)(network, (example,),
                                                                                         metadata))


def write_file(out_file: str, content: bytes) -> str:
    """Write ``content`` through a temporary file (never through a link at ``out_file``); returns ``out_file``."""
    with replace_when_written(out_file) as temporary, open(temporary, 'wb') as file:
        file.write(content)
    return out_file


def tflite_bytes(network: torch.nn.Module, example: Tuple[torch.Tensor, ...], metadata: Dict[str, str]) -> bytes:
    """``network`` converted by litert_torch, with ``metadata`` in the flatbuffer's metadata table."""
    litert_torch = import_mobile_dependency('litert_torch')
    with torch.no_grad():
        content = litert_torch.convert(network, example).model_content()
    return with_tflite_metadata(content, metadata)


def with_tflite_metadata(content: bytes, metadata: Dict[str, str]) -> bytes:
    """The TFLite flatbuffer ``content`` with one metadata entry (and buffer) per key of ``metadata``."""
    flatbuffer_utils = import_mobile_dependency('ai_edge_litert.tools.flatbuffer_utils')
    schema = import_mobile_dependency('ai_edge_litert.schema_py_generated')
    model = flatbuffer_utils.read_model_from_bytearray(bytearray(content))
    model.metadata = [entry for entry in (model.metadata or []) if entry.name.decode() not in metadata]
    for key, value in metadata.items():
        buffer = schema.BufferT()
        buffer.data = list(value.encode())
        model.buffers.append(buffer)
        entry = schema.MetadataT()
        entry.name, entry.buffer = key, len(model.buffers) - 1
        model.metadata.append(entry)
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def executorch_bytes(network: torch.nn.Module, example: Tuple[torch.Tensor, ...], metadata: Dict[str, str]) -> bytes:
    """``network`` through ``torch.export`` lowered to XNNPACK, with ``metadata`` as a constant method."""
    exir = import_mobile_dependency('executorch.exir')
    xnnpack = import_mobile_dependency('executorch.backends.xnnpack.partition.xnnpack_partitioner')
    with torch.no_grad():
        program = torch.export.export(network, example, strict=False)
    encoded = torch.tensor(list(json.dumps(metadata).encode()), dtype=torch.uint8)
    edge = exir.to_edge_transform_and_lower(program, partitioner=[xnnpack.XnnpackPartitioner()],
                                            constant_methods={MOBILE_METADATA_METHOD: encoded})
    return edge.to_executorch().buffer
