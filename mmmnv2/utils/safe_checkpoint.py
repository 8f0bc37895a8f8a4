"""Safe checkpoint loading on current torch.

torch >= 2.6 unpickles checkpoints with ``weights_only=True``, and MMEngine 0.10.7 does not say otherwise, so
``--resume`` fails on the objects MMEngine itself writes (the message hub's ``HistoryBuffer`` and numpy values).
Switching ``weights_only`` off would let a crafted checkpoint run code. Instead the few types MMEngine writes are
allow-listed (importing mmmnv2 does it), and any other global in a checkpoint is refused with a clear error.
"""
import contextlib
import pickle
from typing import Iterator, List

import numpy as np
import torch
from mmengine.logging import HistoryBuffer

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


@contextlib.contextmanager
def refuse_unsafe_checkpoint() -> Iterator[None]:
    """Turn torch's weights-only unpickling failure into a clear refusal (never a fallback to unsafe loading)."""
    try:
        yield
    except pickle.UnpicklingError as error:
        detail = next((line.strip() for line in str(error).splitlines() if 'Unsupported global' in line), str(error))
        raise UnsafeCheckpointError(
            f'Refused to load a checkpoint: it holds objects outside the types model weights and MMEngine '
            f'training state use ({detail}). Unpickling them could run code, so the file was not loaded. '
            f'Load only checkpoints from sources you trust.') from error
