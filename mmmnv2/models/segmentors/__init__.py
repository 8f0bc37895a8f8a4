from .mobile_deeplabv3 import MobileDeepLabV3

__all__ = ['MobileDeepLabV3']
