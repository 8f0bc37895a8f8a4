from .check_seg_map import CheckSegMap
from .ssd_random_crop import SSDRandomCrop

__all__ = ['CheckSegMap', 'SSDRandomCrop']
