from .optimizers import RMSpropTF

__all__ = ['RMSpropTF']
