from . import transforms  # noqa: F401
from .strict_coco_dataset import StrictCocoDataset
from .strict_pascal_voc_dataset import StrictPascalVOCDataset
from .strict_seg_dataset import StrictSegDataset
from .toy_data import CLASSES, SEG_CLASSES, SEG_PALETTE, generate_detection, generate_segmentation

__all__ = ['StrictCocoDataset', 'StrictPascalVOCDataset', 'StrictSegDataset', 'CLASSES', 'SEG_CLASSES', 'SEG_PALETTE',
           'generate_detection', 'generate_segmentation']
