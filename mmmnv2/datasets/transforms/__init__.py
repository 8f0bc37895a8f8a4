from .check_seg_map import CheckSegMap
from .ssd_random_crop import SSDRandomCrop
from .tf_legacy_resize import TFLegacyResize

__all__ = ['CheckSegMap', 'SSDRandomCrop', 'TFLegacyResize']
