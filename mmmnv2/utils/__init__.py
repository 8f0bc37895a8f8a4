from .complexity import config_input_size, count_macs, count_parameters, forward_macs, tta_area_factor
from .host import build_host_model, config_dataset_meta, drop_pretrained, setup_cpu_distributed, setup_host
from .inference import fuse_conv_bn_layers, optimize_for_inference
from .safe_checkpoint import UnsafeCheckpointError, allow_mmengine_checkpoint_types, refuse_unsafe_checkpoint

__all__ = ['config_input_size', 'count_macs', 'count_parameters', 'forward_macs', 'tta_area_factor',
           'build_host_model', 'config_dataset_meta', 'drop_pretrained', 'setup_cpu_distributed', 'setup_host',
           'UnsafeCheckpointError',
           'allow_mmengine_checkpoint_types', 'refuse_unsafe_checkpoint', 'fuse_conv_bn_layers',
           'optimize_for_inference']
