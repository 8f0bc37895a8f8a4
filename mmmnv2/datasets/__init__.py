from . import transforms  # noqa: F401
from .strict_coco_dataset import StrictCocoDataset
from .toy_data import CLASSES, SEG_CLASSES, SEG_PALETTE, generate_detection, generate_segmentation

__all__ = ['StrictCocoDataset', 'CLASSES', 'SEG_CLASSES', 'SEG_PALETTE', 'generate_detection', 'generate_segmentation']
