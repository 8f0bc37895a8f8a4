"""Converters of other libraries' weights into mmmnv2's models (TF / TFLite: Google's released MobileNetV2 models)."""
from .tf_conversion import convert_tf_file, default_ssd_config
from .tf_mobilenet_v2 import (
    MobileNetV2Classifier,
    convert_tf_variables,
    describe_file,
    describe_model,
    read_labels,
    tf_targets,
)
from .tf_sources import ConversionError, TFVariables, read_tf_variables
from .tf_ssd import COCO_CATEGORY_IDS, convert_tf_ssd, ssd_targets

__all__ = ['COCO_CATEGORY_IDS', 'ConversionError', 'MobileNetV2Classifier', 'TFVariables', 'convert_tf_file',
           'convert_tf_ssd', 'convert_tf_variables', 'default_ssd_config', 'describe_file', 'describe_model',
           'read_labels', 'read_tf_variables', 'ssd_targets', 'tf_targets']
