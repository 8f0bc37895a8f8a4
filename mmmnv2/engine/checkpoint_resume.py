"""Which checkpoint of a work dir to resume from: the newest that is complete and matches its checksum; whether a
checkpoint named for ``--resume`` holds the training state resuming needs."""
import glob
import logging
import os.path as osp
import zipfile
from typing import List, Optional

from mmengine.logging import print_log

from mmmnv2.utils.safe_checkpoint import CorruptCheckpointError, load_checkpoint_file, verify_checkpoint_file


def checkpoint_problem(path: str) -> Optional[str]:
    """Why ``path`` cannot be resumed from (missing, incomplete, changed since it was saved), or None.

    Reads the whole file (``verify_checkpoint_file``), but does not unpickle it.
    """
    if not osp.isfile(path):
        return 'file not found'
    if not zipfile.is_zipfile(path):
        return 'not a complete checkpoint archive (truncated?)'
    try:
        verify_checkpoint_file(path)
    except CorruptCheckpointError as error:
        return str(error)
    return None


def find_resumable_checkpoint(work_dir: str) -> Optional[str]:
    """The checkpoint named in ``<work_dir>/last_checkpoint`` if usable, else the newest usable ``*.pth`` there.

    Says in the log which checkpoint was skipped and why. None (also logged) when nothing there can be resumed.
    ``best_*.pth`` files hold no optimizer state and are not resumed from.
    """
    pointer = osp.join(work_dir, 'last_checkpoint')
    latest = None
    if osp.isfile(pointer):
        with open(pointer) as f:
            latest = f.read().strip() or None
    others = sorted((path for path in glob.glob(osp.join(work_dir, '*.pth'))
                     if not osp.basename(path).startswith('best_')), key=osp.getmtime, reverse=True)
    candidates: List[str] = ([latest] if latest else []) + [p for p in others if not latest or
                                                             not osp.exists(latest) or not osp.samefile(p, latest)]
    skipped = []
    for path in candidates:
        problem = checkpoint_problem(path)
        if problem is None:
            if skipped:
                print_log(f'Resuming from {path}, the newest usable checkpoint; skipped: ' + '; '.join(skipped),
                          logger='current', level=logging.WARNING)
            return path
        skipped.append(f'{path} ({problem})')
    print_log(f'No checkpoint in {work_dir} can be resumed from' + (': ' + '; '.join(skipped) if skipped else '')
              + '. Training starts from the beginning.', logger='current', level=logging.WARNING)
    return None


def check_training_state(path: str) -> None:
    """Raise ValueError naming ``path`` unless it holds what MMEngine's ``Runner.resume`` reads: ``meta.epoch``,
    ``meta.iter`` and the optimizer's state (a weights-only file would fail there with ``KeyError: 'epoch'``)."""
    checkpoint = load_checkpoint_file(path)
    meta = checkpoint.get('meta') if isinstance(checkpoint, dict) else None
    missing = [key for key in ('epoch', 'iter') if not isinstance(meta, dict) or key not in meta]
    missing += [] if isinstance(checkpoint, dict) and 'optimizer' in checkpoint else ['optimizer']
    if missing:
        raise ValueError(f'{path}: holds no training state (no {", ".join(missing)}), only weights, so training '
                         f'cannot resume from it; to start training from its weights, use load_from instead: '
                         f'--cfg-options load_from={path}')
