from .inverted_residual import InvertedResidual

__all__ = ['InvertedResidual']
