"""Small helpers the rest of the package shares: the host records, configs, checkpoints, conv-BN fusion."""
from .distributed import setup_cpu_distributed
from .fuse_conv_bn import fuse_conv_bn_layers, optimize_for_inference
from .host import HOSTS, Host, build_host_model, config_dataset_meta, config_host
from .input_size import config_input_size, fixed_input_size
from .pretrained import drop_pretrained
from .run_config import add_run_arguments, load_run_config
from .safe_checkpoint import UnsafeCheckpointError, allow_mmengine_checkpoint_types, refuse_unsafe_checkpoint

__all__ = ['HOSTS', 'Host', 'UnsafeCheckpointError', 'add_run_arguments', 'allow_mmengine_checkpoint_types',
           'load_run_config', 'build_host_model',
           'config_dataset_meta', 'config_host', 'config_input_size', 'drop_pretrained', 'fixed_input_size',
           'fuse_conv_bn_layers', 'optimize_for_inference', 'refuse_unsafe_checkpoint', 'setup_cpu_distributed']
