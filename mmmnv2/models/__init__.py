from .backbones import MobileNetV2
from .decode_heads import MobileDeepLabV3Head
from .dense_heads import SSDLiteHead
from .detectors import SSDLite
from .necks import SSDLiteNeck
from .segmentors import MobileDeepLabV3
from .task_modules import SSDLiteAnchorGenerator

__all__ = ['MobileDeepLabV3', 'MobileDeepLabV3Head', 'MobileNetV2', 'SSDLite', 'SSDLiteAnchorGenerator', 'SSDLiteHead',
           'SSDLiteNeck']
