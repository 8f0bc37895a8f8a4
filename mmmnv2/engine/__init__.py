"""Training-loop pieces: checkpoints written atomically with a checksum, strict checkpoint loading, resuming, and
TF's RMSProp for the SSDLite recipe."""
from .atomic_local_backend import AtomicLocalBackend
from .checkpoint_resume import check_training_state, checkpoint_problem, find_resumable_checkpoint
from .hooks import StrictLoadHook, VerifiedCheckpointHook
from .optimizers import RMSpropTF
from .run_loop import run_loop

__all__ = ['AtomicLocalBackend', 'RMSpropTF', 'StrictLoadHook', 'VerifiedCheckpointHook', 'check_training_state',
           'checkpoint_problem', 'find_resumable_checkpoint', 'run_loop']
