from .complexity import config_input_size, count_macs, count_parameters, forward_macs, tta_area_factor
from .host import build_host_model, config_dataset_meta, drop_pretrained, setup_cpu_distributed, setup_host
from .inference import fuse_conv_bn_layers, optimize_for_inference
from .safe_checkpoint import (
    CorruptCheckpointError,
    UnsafeCheckpointError,
    allow_mmengine_checkpoint_types,
    file_sha256,
    load_checkpoint_file,
    refuse_unsafe_checkpoint,
    register_safe_checkpoint_loaders,
    verify_checkpoint_file,
)
from .state_dict import CheckpointMismatchError, check_checkpoint_fits, load_checkpoint_into

# What a refused checkpoint raises: the tools report these as errors without a traceback.
CHECKPOINT_ERRORS = (UnsafeCheckpointError, CorruptCheckpointError, CheckpointMismatchError)

__all__ = ['config_input_size', 'count_macs', 'count_parameters', 'forward_macs', 'tta_area_factor',
           'build_host_model', 'config_dataset_meta', 'drop_pretrained', 'setup_cpu_distributed', 'setup_host',
           'CHECKPOINT_ERRORS', 'CheckpointMismatchError', 'CorruptCheckpointError', 'UnsafeCheckpointError',
           'allow_mmengine_checkpoint_types', 'check_checkpoint_fits', 'file_sha256', 'load_checkpoint_file',
           'load_checkpoint_into', 'refuse_unsafe_checkpoint', 'register_safe_checkpoint_loaders',
           'verify_checkpoint_file', 'fuse_conv_bn_layers',
           'optimize_for_inference']
