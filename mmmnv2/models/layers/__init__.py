from .inverted_residual import InvertedResidual, same_padding_conv_cfg

__all__ = ['InvertedResidual', 'same_padding_conv_cfg']
