"""Small helpers the rest of the package shares: the host records, configs, checkpoints, conv-BN fusion."""
from .command_line import (
    REFUSALS,
    add_debug_argument,
    add_export_arguments,
    add_run_arguments,
    check_export_arguments,
    describe_export_input,
    error_line,
    export_input_size,
    load_run_config,
    one_line_errors,
)
from .distributed import setup_cpu_distributed
from .fuse_conv_bn import fuse_conv_bn_layers, optimize_for_inference
from .host import HOSTS, Host, build_host_model, config_dataset_meta, config_host, model_dataset_meta
from .image_pipeline import image_file_transforms
from .input_size import config_input_size, fixed_input_size
from .optional_import import import_optional
from .pretrained import drop_pretrained
from .pytorch_model import init_pytorch_model
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
from .safe_output import make_output_folder, refuse_overwriting_inputs, replace_when_written, write_image
from .state_dict import CheckpointMismatchError, check_checkpoint_fits, load_checkpoint_into

__all__ = ['HOSTS', 'REFUSALS', 'CheckpointMismatchError', 'CorruptCheckpointError', 'Host',
           'UnsafeCheckpointError', 'add_debug_argument', 'add_export_arguments', 'add_run_arguments',
           'allow_mmengine_checkpoint_types', 'build_host_model', 'check_checkpoint_fits',
           'check_export_arguments', 'config_dataset_meta', 'config_host', 'config_input_size',
           'describe_export_input', 'drop_pretrained', 'error_line', 'export_input_size', 'file_sha256',
           'fixed_input_size', 'fuse_conv_bn_layers', 'import_optional', 'init_pytorch_model',
           'load_checkpoint_file', 'load_checkpoint_into', 'load_run_config', 'image_file_transforms',
           'make_output_folder', 'model_dataset_meta', 'one_line_errors', 'optimize_for_inference',
           'refuse_overwriting_inputs', 'refuse_unsafe_checkpoint', 'register_safe_checkpoint_loaders',
           'replace_when_written', 'setup_cpu_distributed', 'verify_checkpoint_file', 'write_image']
