from .strict_load_hook import StrictLoadHook
from .verified_checkpoint_hook import VerifiedCheckpointHook

__all__ = ['StrictLoadHook', 'VerifiedCheckpointHook']
