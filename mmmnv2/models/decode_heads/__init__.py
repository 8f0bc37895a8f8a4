from .mobile_deeplabv3_head import MobileDeepLabV3Head

__all__ = ['MobileDeepLabV3Head']
