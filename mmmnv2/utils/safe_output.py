"""Writing a tool's outputs without harming its inputs or leaving half-written files.

Every file the tools write goes through ``replace_when_written``: the content is written to a temporary file in the
destination's folder and renamed over the destination (``os.replace``) only once it is complete. A crash or a full
disk therefore leaves the previous file, never a truncated one, and a destination that is a symbolic link is
replaced by the new file: the file the link points to is never written through. ``refuse_overwriting_inputs``
refuses, before any work, an output path that is one of the run's inputs (the same path, or the same file reached
through links).
"""
import contextlib
import errno
import os
import os.path as osp
import tempfile
from typing import Iterable, Iterator, Optional, Tuple, Union

import mmcv
import numpy as np


def _identity(path: str) -> Optional[Tuple[int, int]]:
    """(device, inode) of the file ``path`` reaches, links followed; None if there is none."""
    try:
        status = os.stat(path)
    except OSError:
        return None
    return status.st_dev, status.st_ino


def refuse_overwriting_inputs(outputs: Union[str, Iterable[str]], inputs: Iterable[Optional[str]],
                              what: str = 'output') -> None:
    """Raise ValueError naming both paths if writing one of ``outputs`` would replace one of ``inputs`` (None
    skipped): the same path once links are resolved, or the same file (hard links).

    ``what``: how the message names the output (e.g. the option that set it).
    """
    by_path, by_identity = {}, {}
    for source in inputs:
        if source is not None:
            by_path.setdefault(osp.realpath(source), source)
            identity = _identity(source)
            if identity is not None:
                by_identity.setdefault(identity, source)
    for output in [outputs] if isinstance(outputs, str) else outputs:
        source = by_path.get(osp.realpath(output))
        if source is None and by_identity:
            source = by_identity.get(_identity(output))
        if source is not None:
            raise ValueError(f'{output}: the {what} would overwrite the input {source}; choose another path')


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def make_output_folder(path: str) -> str:
    """Create the folder of the output file ``path`` if needed and return it; OSError naming the folder where that
    cannot be done (a file in the way, no permission), so a tool can fail before its work rather than after."""
    folder = osp.dirname(osp.abspath(path))
    if osp.exists(folder) and not osp.isdir(folder):  # makedirs would only say 'File exists'
        raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), folder)
    os.makedirs(folder, exist_ok=True)
    return folder


@contextlib.contextmanager
def replace_when_written(path: str) -> Iterator[str]:
    """Yield a temporary path in ``path``'s folder (same extension, so writers that go by it still do); rename it
    to ``path`` when the block ends without an error, else delete it.

    The folder is created if needed. ``os.replace`` renames over the destination itself: an existing symbolic link
    at ``path`` is replaced, the file it points to is left as it was. Raises OSError naming ``path`` if the
    temporary file was not written.
    """
    folder = make_output_folder(path)
    name = osp.basename(path)
    descriptor, temporary = tempfile.mkstemp(prefix=f'.{name}.', suffix=f'.partial{osp.splitext(name)[1]}',
                                             dir=folder)
    os.close(descriptor)
    try:
        try:
            yield temporary
        except OSError as error:  # name the destination, not the temporary file
            if error.filename != temporary or error.errno is None:
                raise
            raise type(error)(error.errno, error.strerror, path) from None
        if not osp.isfile(temporary) or osp.getsize(temporary) == 0:
            raise OSError(f'{path}: nothing was written')
        os.chmod(temporary, 0o666 & ~_umask())  # mkstemp's 0600 -> what a plain open() would have given
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(temporary)
        raise


def write_image(image: np.ndarray, path: str) -> None:
    """``mmcv.imwrite`` through ``replace_when_written``; raise OSError naming ``path`` when the image is not
    written (encoding failed, full disk, no permission)."""
    with replace_when_written(path) as temporary:
        if not mmcv.imwrite(image, temporary):
            raise OSError(f'{path}: the image could not be encoded or written')
