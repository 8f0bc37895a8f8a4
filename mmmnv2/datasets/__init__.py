from . import transforms  # noqa: F401
from .data_root_options import data_root_options
from .strict_coco_dataset import StrictCocoDataset
from .toy_data import CLASSES, SEG_CLASSES, SEG_PALETTE, generate_detection, generate_segmentation

__all__ = ['data_root_options', 'StrictCocoDataset', 'CLASSES', 'SEG_CLASSES', 'SEG_PALETTE', 'generate_detection',
           'generate_segmentation']
