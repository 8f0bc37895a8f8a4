"""MMEngine's ``CheckpointHook``, saving so that a kill during a save loses nothing but the time since the last one.

Two departures from the host hook (MMEngine 0.10.7), which writes in place and deletes the oldest checkpoint
*before* writing the new one, so that a process killed while saving can be left with a truncated file and, with
``max_keep_ckpts=1``, no good checkpoint at all:

- checkpoints are written through ``AtomicLocalBackend``: temporary file, flushed, renamed, with a ``.sha256``
  checksum beside it that loading verifies;
- checkpoints beyond ``max_keep_ckpts`` are deleted only after the new one is in place;
- temporary files left by a killed save are removed when training starts again.

Checkpoints saved to a remote ``out_dir`` (``s3://`` ...) or with explicit ``backend_args`` are saved as the host
hook does. ``tools/train.py --resume`` resumes from the newest checkpoint that verifies
(``find_resumable_checkpoint``).
"""
import glob
import os
import os.path as osp
from typing import Optional

from mmengine.dist import is_main_process
from mmengine.hooks import CheckpointHook
from mmengine.utils import is_str

from mmmnv2.registry import HOOKS

from ..atomic_local_backend import BACKEND_NAME, PARTIAL_PATTERN


@HOOKS.register_module()
class VerifiedCheckpointHook(CheckpointHook):
    """``CheckpointHook`` with atomic, checksummed saves and deletion of old checkpoints after the new one is saved.

    Args: those of MMEngine's ``CheckpointHook``.
    """

    def __init__(self, *args, out_dir: Optional[str] = None, backend_args: Optional[dict] = None,
                 file_client_args: Optional[dict] = None, **kwargs) -> None:
        local = out_dir is None or (is_str(out_dir) and '://' not in str(out_dir))
        if backend_args is None and file_client_args is None and local:
            backend_args = dict(backend=BACKEND_NAME)
        super().__init__(*args, out_dir=out_dir, backend_args=backend_args, file_client_args=file_client_args,
                         **kwargs)

    def before_train(self, runner) -> None:
        super().before_train(runner)
        if self.backend_args == dict(backend=BACKEND_NAME) and is_main_process():
            # Temporary files of saves a killed run did not finish: never renamed, so never used.
            for stale in glob.glob(osp.join(glob.escape(self.out_dir), PARTIAL_PATTERN)):
                os.remove(stale)
                runner.logger.info(f'Removed {stale}, an unfinished save of an earlier run')

    def _save_checkpoint_with_step(self, runner, step: int, meta: dict) -> None:
        keep = self.max_keep_ckpts
        dropped = None
        if keep > 0 and not (self.keep_ckpt_ids and self.keep_ckpt_ids[-1] == step):
            # The list goes into the checkpoint being saved (as the host hook does); the deletion waits.
            dropped = self.keep_ckpt_ids.popleft() if len(self.keep_ckpt_ids) == keep else None
            self.keep_ckpt_ids.append(step)
            runner.message_hub.update_info('keep_ckpt_ids', list(self.keep_ckpt_ids))
        self.max_keep_ckpts = -1  # the host hook would delete the oldest checkpoint before saving the new one
        try:
            super()._save_checkpoint_with_step(runner, step, meta)
        finally:
            self.max_keep_ckpts = keep
        if dropped is not None and is_main_process():
            path = self.file_backend.join_path(self.out_dir, self.filename_tmpl.format(dropped))
            if self.file_backend.isfile(path):
                self.file_backend.remove(path)
