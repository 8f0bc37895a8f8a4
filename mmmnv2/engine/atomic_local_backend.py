"""A local file backend whose writes are atomic and whose binary writes record a SHA-256 checksum.

MMEngine's ``LocalBackend.put`` opens the target with 'wb' and writes in place: a process killed during a save
leaves a truncated checkpoint under the final name. Here data goes to a temporary file in the same folder, is
flushed to disk, and is renamed over the target (``os.replace`` is atomic on POSIX and Windows), so a reader sees
the old file or the new one, never half of one. Binary writes (checkpoints) also write ``<file>.sha256`` in
``sha256sum`` format, which ``mmmnv2.utils.load_checkpoint_file`` verifies before loading.
"""
import hashlib
import os
import os.path as osp
import tempfile
from pathlib import Path
from typing import Union

from mmengine.fileio import LocalBackend, register_backend

from mmmnv2.utils.safe_checkpoint import CHECKSUM_SUFFIX

BACKEND_NAME = 'mmmnv2_atomic_local'
PARTIAL_PATTERN = '.*.partial'  # the temporary files of write_atomically


def write_atomically(path: str, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder, flushed, then renamed."""
    folder = osp.dirname(osp.abspath(path))
    os.makedirs(folder, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f'.{osp.basename(path)}.', suffix='.partial', dir=folder)
    try:
        with open(handle, 'wb') as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, path)
    except BaseException:
        if osp.exists(temporary):
            os.remove(temporary)
        raise
    if hasattr(os, 'O_DIRECTORY'):  # make the rename itself durable (POSIX)
        directory = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)


class AtomicLocalBackend(LocalBackend):
    """``LocalBackend`` with atomic ``put``/``put_text``; ``put`` records ``<file>.sha256``, ``remove`` drops it."""

    def put(self, obj: bytes, filepath: Union[str, Path]) -> None:
        filepath = str(filepath)
        # The checksum first: a kill before the rename leaves a checksum that the old file (if any) fails, so the
        # name is never trusted with content that was not completely written.
        checksum = f'{hashlib.sha256(obj).hexdigest()}  {osp.basename(filepath)}\n'
        write_atomically(filepath + CHECKSUM_SUFFIX, checksum.encode())
        write_atomically(filepath, obj)

    def put_text(self, obj: str, filepath: Union[str, Path], encoding: str = 'utf-8') -> None:
        write_atomically(str(filepath), obj.encode(encoding))

    def remove(self, filepath: Union[str, Path]) -> None:
        super().remove(filepath)
        if osp.isfile(str(filepath) + CHECKSUM_SUFFIX):
            os.remove(str(filepath) + CHECKSUM_SUFFIX)


register_backend(BACKEND_NAME, AtomicLocalBackend, force=True)
