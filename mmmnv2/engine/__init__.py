"""Training-loop pieces: checkpoints written atomically with a checksum, strict checkpoint loading, resuming."""
from .atomic_local_backend import AtomicLocalBackend
from .checkpoint_resume import checkpoint_problem, find_resumable_checkpoint
from .hooks import StrictLoadHook, VerifiedCheckpointHook
from .run_tool import run_config

__all__ = ['AtomicLocalBackend', 'StrictLoadHook', 'VerifiedCheckpointHook', 'checkpoint_problem',
           'find_resumable_checkpoint', 'run_config']
