"""Converters of other libraries' weights into mmmnv2's models (TF / TFLite: Google's released MobileNetV2 models)."""
from .tf_mobilenet_v2 import (
    MobileNetV2Classifier,
    convert_tf_file,
    convert_tf_variables,
    describe_file,
    describe_model,
    read_labels,
    tf_targets,
)
from .tf_sources import ConversionError, TFVariables, read_tf_variables

__all__ = ['ConversionError', 'MobileNetV2Classifier', 'TFVariables', 'convert_tf_file', 'convert_tf_variables',
           'describe_file', 'describe_model', 'read_labels', 'read_tf_variables', 'tf_targets']
