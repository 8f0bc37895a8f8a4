from .complexity import count_macs, count_parameters
from .host import setup_cpu_distributed, setup_host
from .safe_checkpoint import UnsafeCheckpointError, allow_mmengine_checkpoint_types, refuse_unsafe_checkpoint

__all__ = ['count_macs', 'count_parameters', 'setup_cpu_distributed', 'setup_host', 'UnsafeCheckpointError',
           'allow_mmengine_checkpoint_types', 'refuse_unsafe_checkpoint']
