"""TF checkpoints (TF's "tensor bundle": ``model.ckpt.index`` + ``model.ckpt.data-*``) read without TensorFlow.

The index is a LevelDB-format table (TF ``tensorflow/core/util/tensor_bundle/tensor_bundle.cc``, ``table.cc``): data
blocks of prefix-compressed key/value entries, an index block pointing at them and a 48-byte footer ending in
LevelDB's magic number. The empty key holds the ``BundleHeaderProto``; every other key is a tensor name whose value
is a ``BundleEntryProto`` (``tensor_bundle.proto``: dtype, shape, shard, offset and size of its bytes in the data
file). TF writes these tables uncompressed; a compressed one is refused. Only whole (unsliced) float and integer
tensors are read, which is what TF's ``Saver`` writes for a model's variables.

This lets the converter read Google's checkpoints where TensorFlow is not installed (it conflicts with the OpenMMLab
stack's protobuf); ``read_bundle_shapes`` reads the names and shapes from the index alone, without the data file.
"""
import os.path as osp
import struct
from typing import Dict, Iterator, Tuple

import numpy as np

_MAGIC = 0xdb4775248b80fb57  # LevelDB's table magic number, which TF's tables keep
_FOOTER = 48
# TF DataType enum (types.proto) -> numpy
_DTYPES = {1: np.float32, 2: np.float64, 3: np.int32, 4: np.uint8, 6: np.int8, 9: np.int64, 10: np.bool_,
           19: np.float16}


class BundleError(ValueError):
    """A file that is not a readable TF tensor bundle."""


def _varint(data: bytes, pos: int) -> Tuple[int, int]:
    value, shift = 0, 0
    while True:
        if pos >= len(data):
            raise BundleError('truncated varint')
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7f) << shift
        if byte < 0x80:
            return value, pos
        shift += 7


def _fields(data: bytes) -> Iterator[Tuple[int, int, object]]:
    """(field number, wire type, value) of a protobuf message: ints for varints/fixed, bytes for length-delimited."""
    pos = 0
    while pos < len(data):
        tag, pos = _varint(data, pos)
        number, wire = tag >> 3, tag & 7
        if wire == 0:
            value, pos = _varint(data, pos)
        elif wire == 2:
            length, pos = _varint(data, pos)
            value, pos = data[pos:pos + length], pos + length
        elif wire == 5:
            value, pos = struct.unpack_from('<I', data, pos)[0], pos + 4
        elif wire == 1:
            value, pos = struct.unpack_from('<Q', data, pos)[0], pos + 8
        else:
            raise BundleError(f'unsupported protobuf wire type {wire}')
        yield number, wire, value


def _shape(data: bytes) -> Tuple[int, ...]:
    """TensorShapeProto: repeated Dim dim = 2 (int64 size = 1)."""
    dims = []
    for number, _, value in _fields(data):
        if number == 2:
            size = dict((n, v) for n, _, v in _fields(value)).get(1, 0)
            dims.append(size - (1 << 64) if size >= 1 << 63 else size)
    return tuple(dims)


def _block(data: bytes, handle: bytes) -> Iterator[Tuple[bytes, bytes]]:
    """Key/value entries of the block a BlockHandle (varint offset, varint size) points at."""
    offset, pos = _varint(handle, 0)
    size, _ = _varint(handle, pos)
    if offset + size + 5 > len(data):
        raise BundleError('a block lies beyond the end of the file (truncated)')
    if data[offset + size] != 0:
        raise BundleError('compressed table blocks (TF writes them uncompressed)')
    block = data[offset:offset + size]
    num_restarts = struct.unpack_from('<I', block, size - 4)[0]
    end = size - 4 - 4 * num_restarts
    pos, key = 0, b''
    while pos < end:
        shared, pos = _varint(block, pos)
        unshared, pos = _varint(block, pos)
        length, pos = _varint(block, pos)
        key = key[:shared] + block[pos:pos + unshared]
        pos += unshared
        yield key, block[pos:pos + length]
        pos += length


def _entries(index_path: str) -> Dict[str, bytes]:
    """Tensor name -> serialized BundleEntryProto of every tensor in the index (the header left out)."""
    with open(index_path, 'rb') as file:
        data = file.read()
    if len(data) < _FOOTER or struct.unpack_from('<Q', data, len(data) - 8)[0] != _MAGIC:
        raise BundleError('no table footer (not a TF checkpoint index, or truncated)')
    footer = data[-_FOOTER:]
    _, pos = _varint(footer, 0)  # metaindex handle: offset, size (unused)
    _, pos = _varint(footer, pos)
    entries = {}
    for _, handle in _block(data, footer[pos:]):
        for key, value in _block(data, handle):
            if key:
                entries[key.decode()] = value
    return entries


def _entry(value: bytes) -> dict:
    entry = dict(dtype=1, shape=(), shard_id=0, offset=0, size=0, sliced=False)
    for number, _, field in _fields(value):
        if number == 1:
            entry['dtype'] = field
        elif number == 2:
            entry['shape'] = _shape(field)
        elif number in (3, 4, 5):
            entry[{3: 'shard_id', 4: 'offset', 5: 'size'}[number]] = field
        elif number == 7:
            entry['sliced'] = True
    return entry


def read_bundle_shapes(prefix: str) -> Dict[str, Tuple[int, ...]]:
    """Name -> shape of every tensor in ``{prefix}.index`` (the data file is not needed)."""
    return {name: _entry(value)['shape'] for name, value in _entries(f'{prefix}.index').items()}


def read_bundle(prefix: str) -> Dict[str, np.ndarray]:
    """Name -> array of every tensor of the checkpoint ``prefix`` (``{prefix}.index`` and its data shards)."""
    arrays, shards = {}, {}
    for name, value in _entries(f'{prefix}.index').items():
        entry = _entry(value)
        if entry['sliced'] or entry['dtype'] not in _DTYPES:
            continue  # partitioned variables and strings: no model weights of the files read here
        shard = entry['shard_id']
        if shard not in shards:
            paths = [path for path in (f'{prefix}.data-{shard:05d}-of-{count:05d}' for count in range(1, 1000))
                     if osp.isfile(path)]
            if not paths:
                raise BundleError(f'the data file {prefix}.data-{shard:05d}-of-* is missing')
            with open(paths[0], 'rb') as file:
                shards[shard] = file.read()
        raw = shards[shard][entry['offset']:entry['offset'] + entry['size']]
        dtype = np.dtype(_DTYPES[entry['dtype']]).newbyteorder('<')
        if len(raw) != int(np.prod(entry['shape'])) * dtype.itemsize:
            raise BundleError(f'tensor {name} {entry["shape"]}: {len(raw)} bytes in the data file (truncated)')
        arrays[name] = np.frombuffer(raw, dtype).reshape(entry['shape']).copy()
    return arrays


__all__ = ['BundleError', 'read_bundle', 'read_bundle_shapes']
