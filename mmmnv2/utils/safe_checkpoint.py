"""Checkpoint loading that never runs code from a file, whatever the environment says.

torch >= 2.6 unpickles with ``weights_only=True`` only when the caller leaves ``weights_only`` unset *and*
``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD`` is not set, and MMEngine 0.10.7 leaves it unset (its URL loader, through
``torch.hub``, even passes ``weights_only=False``). So a user who sets that variable to load an old checkpoint also
lets every crafted checkpoint run code through ``load_from``, ``--resume``, a ``Pretrained`` init_cfg or a test.

``load_checkpoint_file`` passes ``weights_only=True`` explicitly; importing mmmnv2 registers it (and a URL loader
built on it) in MMEngine's ``CheckpointLoader`` for local paths, ``http(s)://`` and the model-zoo schemes, so every
MMEngine load in a process that imported mmmnv2 goes through it. The few types MMEngine writes into checkpoints
(the message hub's ``HistoryBuffer``, numpy values) are allow-listed, so ``--resume`` still works; any other global
is refused with ``UnsafeCheckpointError``. A checkpoint with a ``.sha256`` file beside it (``VerifiedCheckpointHook``
writes one) is checked against it first; a damaged file raises ``CorruptCheckpointError``. Both name the file.
"""
import contextlib
import hashlib
import io
import os
import os.path as osp
import pickle
import re
import zipfile
from typing import IO, Iterator, List, Optional, Union

import numpy as np
import torch
from mmengine.logging import HistoryBuffer

CHECKSUM_SUFFIX = '.sha256'

_NUMPY_DTYPES = (np.bool_, np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64,
                 np.float16, np.float32, np.float64, np.str_)


def _numpy_globals() -> List[object]:
    # numpy 2 moved the pickling helpers to numpy._core; numpy 1 keeps them in numpy.core.
    core = np._core if hasattr(np, '_core') else np.core
    return [core.multiarray._reconstruct, core.multiarray.scalar, np.ndarray, np.dtype,
            *(type(np.dtype(t)) for t in _NUMPY_DTYPES)]


_HISTORY_BUFFER_STATISTICS = ('min', 'max', 'mean', 'current')


def _history_buffer_statistic(owner: object, name: str) -> object:
    """What checkpoints may get from ``getattr``: a ``HistoryBuffer``'s statistics methods, nothing else.

    A pickled ``HistoryBuffer`` stores its statistics functions by qualified name, as ``getattr(HistoryBuffer,
    'min')``; allow-listing the real ``getattr`` would let a checkpoint reach any attribute of any allowed object.
    """
    allowed = set(_HISTORY_BUFFER_STATISTICS) | set(HistoryBuffer._statistics_methods)
    if (owner is HistoryBuffer or isinstance(owner, HistoryBuffer)) and name in allowed:
        return getattr(owner, name)
    raise pickle.UnpicklingError(f'Unsupported global: getattr({owner!r}, {name!r}) is not allowed')


def allow_mmengine_checkpoint_types() -> None:
    """Allow-list, for ``torch.load(weights_only=True)``, the types MMEngine writes into checkpoints."""
    torch.serialization.add_safe_globals(
        [HistoryBuffer, *_numpy_globals(), (_history_buffer_statistic, 'builtins.getattr')])


class UnsafeCheckpointError(RuntimeError):
    """A checkpoint holds objects that could run code when unpickled; it was not loaded."""


class CorruptCheckpointError(RuntimeError):
    """A checkpoint file is truncated, damaged, or differs from the checksum recorded when it was written."""


def file_sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()


def recorded_sha256(path: str) -> Optional[str]:
    """The checksum recorded beside ``path`` (``<path>.sha256``, ``sha256sum`` format), or None if there is none."""
    checksum_file = path + CHECKSUM_SUFFIX
    if not osp.isfile(checksum_file):
        return None
    with open(checksum_file) as f:
        found = re.match(r'\s*([0-9a-f]{64})\b', f.read())
    if found is None:
        raise CorruptCheckpointError(f'{checksum_file} holds no SHA-256 checksum; the checkpoint {path} cannot be '
                                     f'verified')
    return found.group(1)


def verify_checkpoint_file(path: str) -> None:
    """Raise ``CorruptCheckpointError`` naming ``path`` if its bytes changed since it was written.

    With a recorded checksum (``<path>.sha256``) the file's SHA-256 must match it; without one, every entry of the
    zip archive torch writes must match its CRC-32 (``torch.load`` checks neither). A file that is not a complete
    zip archive is left to ``torch.load`` (legacy format, or truncated: reported when it is read).
    """
    expected = recorded_sha256(path)
    if expected is not None:
        if file_sha256(path) != expected:
            raise CorruptCheckpointError(
                f'Checkpoint {path} does not match the SHA-256 recorded in {path + CHECKSUM_SUFFIX} when it was '
                f'saved: the file was damaged or changed after saving. Use an earlier checkpoint.')
        return
    if zipfile.is_zipfile(path):
        try:
            with zipfile.ZipFile(path) as archive:
                damaged = archive.testzip()
        except (zipfile.BadZipFile, OSError, EOFError) as error:
            raise CorruptCheckpointError(f'Checkpoint {path} is damaged ({error})') from None
        if damaged is not None:
            raise CorruptCheckpointError(f'Checkpoint {path} is damaged: its entry {damaged} fails the CRC-32 check '
                                         f'(bytes changed after it was written). Use an earlier checkpoint.')


def load_checkpoint_file(source: Union[str, IO[bytes]], map_location: Optional[object] = 'cpu',
                         name: Optional[str] = None) -> dict:
    """``torch.load`` of a checkpoint file (or stream) with weights-only unpickling, always.

    Raises FileNotFoundError, ``CorruptCheckpointError`` (checksum mismatch, truncated or not a checkpoint) or
    ``UnsafeCheckpointError``, each naming the file (``name`` for a stream).
    """
    if isinstance(source, str):
        source = osp.expanduser(source)
        name = name or source
        if not osp.isfile(source):
            raise FileNotFoundError(f'Checkpoint not found: {source}')
        verify_checkpoint_file(source)
        _check_checkpoint_format(source)
    name = name or '<stream>'
    try:
        # Explicit: an unset weights_only follows TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD back to full unpickling.
        return torch.load(source, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as error:
        raise _refusal(name, error) from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError, OSError) as error:
        if isinstance(error, FileNotFoundError):
            raise
        # torch's reader adds paragraphs of advice after the first sentence
        first_line = str(error).strip().splitlines()[0].split('. ')[0] if str(error).strip() else type(error).__name__
        raise CorruptCheckpointError(f'Checkpoint {name} cannot be read: it is truncated or not a PyTorch '
                                     f'checkpoint ({first_line})') from error


# torch.save writes a zip archive; files of torch < 1.6 (legacy format) start with a pickle's PROTO opcode.
_CHECKPOINT_STARTS = (b'PK\x03\x04', b'\x80')
# An ONNX file is a serialized ModelProto, starting with its field 1 (ir_version, a varint): the byte 0x08.
_ONNX_START = b'\x08'


def _check_checkpoint_format(path: str) -> None:
    """Raise ``CorruptCheckpointError`` naming ``path`` if it does not start as any file torch writes (torch's own
    error for, e.g., an ONNX file named ``.pth`` says nothing useful)."""
    with open(path, 'rb') as f:
        start = f.read(4)
    if start.startswith(_CHECKPOINT_STARTS):
        return
    looks = ('; it starts as an ONNX model does: run it as one under an .onnx name' if start.startswith(_ONNX_START)
             else ' (neither a zip archive nor a pickle)')
    raise CorruptCheckpointError(f'{path}: not a PyTorch checkpoint{looks}')


def _refusal(name: str, error: pickle.UnpicklingError) -> UnsafeCheckpointError:
    """The refusal for ``name``: the global torch blocked, without torch's advice to turn safe loading off."""
    message = str(error)
    # torch names the global as "GLOBAL module.name" (its wording varies between versions); the HistoryBuffer
    # getattr guard names its own.
    found = re.search(r'Unsupported global: (getattr\([^\n]*\))', message) or re.search(r'GLOBAL ([\w.]+)', message)
    blocked = f'the global {found.group(1)}' if found else 'objects torch refused to unpickle'
    return UnsafeCheckpointError(
        f'Refused to load checkpoint {name}: it holds {blocked}, which is neither a tensor nor part of MMEngine\'s '
        f'training state. Unpickling it could run code, so the file was not loaded. Load only checkpoints from '
        f'sources you trust; to keep the weights of a trusted file, re-save its state_dict of tensors.')


@contextlib.contextmanager
def refuse_unsafe_checkpoint(name: str = 'checkpoint') -> Iterator[None]:
    """Turn torch's weights-only unpickling failure inside the block into ``UnsafeCheckpointError`` naming ``name``."""
    try:
        yield
    except pickle.UnpicklingError as error:
        raise _refusal(name, error) from None


def load_checkpoint_url(url: str, map_location: Optional[object] = 'cpu', model_dir: Optional[str] = None) -> dict:
    """Download ``url`` into torch's hub cache (rank 0 first in distributed runs), then ``load_checkpoint_file``."""
    from mmengine.dist import barrier, get_dist_info
    from torch.hub import download_url_to_file, get_dir
    model_dir = model_dir or osp.join(get_dir(), 'checkpoints')
    cached = osp.join(model_dir, osp.basename(url.split('?')[0]))

    def download() -> None:
        if not osp.isfile(cached):
            os.makedirs(model_dir, exist_ok=True)
            download_url_to_file(url, cached, progress=False)

    rank, world_size = get_dist_info()
    if rank == 0:
        download()
    if world_size > 1:
        barrier()
        download()
    return load_checkpoint_file(cached, map_location, name=f'{cached} (downloaded from {url})')


def _load_local(filename: str, map_location: Optional[object] = None) -> dict:
    return load_checkpoint_file(filename, map_location)


def _load_http(filename: str, map_location: Optional[object] = None) -> dict:
    return load_checkpoint_url(filename, map_location)


def _load_model_zoo(filename: str, map_location: Optional[object] = None) -> dict:
    """``torchvision://``, ``open-mmlab://``, ``openmmlab://``, ``mmcls://`` names, resolved as MMEngine does."""
    from mmengine.runner import checkpoint as host
    scheme, model_name = filename.split('://', 1)
    if scheme in ('torchvision', 'modelzoo'):
        location = host.get_torchvision_models()[model_name]
    elif scheme == 'mmcls':
        location = host.get_mmcls_models()[model_name]
    else:
        model_name = host.get_deprecated_model_names().get(model_name, model_name)
        location = host.get_external_models()[model_name]
    if location.startswith(('http://', 'https://')):
        checkpoint = load_checkpoint_url(location, map_location)
    else:
        checkpoint = load_checkpoint_file(osp.join(host._get_mmengine_home(), location), map_location)
    return host._process_mmcls_checkpoint(checkpoint) if scheme == 'mmcls' else checkpoint


def _load_file_backend(filename: str, map_location: Optional[object] = None) -> dict:
    """``s3://`` / ``petrel://``: the bytes through MMEngine's file backend, unpickled weights-only."""
    from mmengine.fileio import get_file_backend
    data = get_file_backend(filename, backend_args={'backend': 'petrel'}).get(filename)
    return load_checkpoint_file(io.BytesIO(data), map_location, name=filename)


def _refuse_pavi(filename: str, map_location: Optional[object] = None) -> dict:
    raise UnsafeCheckpointError(f'{filename}: pavi:// checkpoints are not loaded (mmmnv2 loads local files and '
                                f'URLs weights-only); download the file and give its local path')


def register_safe_checkpoint_loaders() -> None:
    """Make MMEngine's ``CheckpointLoader`` (``load_from``, ``--resume``, ``Pretrained``) load weights-only."""
    from mmengine.runner import CheckpointLoader
    for prefixes, loader in (('', _load_local), (('http://', 'https://'), _load_http),
                             (('modelzoo://', 'torchvision://', 'open-mmlab://', 'openmmlab://', 'mmcls://'),
                              _load_model_zoo),
                             ((r'(\S+\:)?s3://', r'(\S+\:)?petrel://'), _load_file_backend),
                             ('pavi://', _refuse_pavi)):
        # MMEngine logs the loader's name minus its first 10 characters ("load_from_"): keep that form.
        loader.__name__ = f'load_from_mmmnv2_safe_{loader.__name__.strip("_").removeprefix("load_")}'
        CheckpointLoader.register_scheme(prefixes, loader, force=True)
