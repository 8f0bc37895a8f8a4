from .toy_data import CLASSES, SEG_CLASSES, SEG_PALETTE, generate_detection, generate_segmentation

__all__ = ['CLASSES', 'SEG_CLASSES', 'SEG_PALETTE', 'generate_detection', 'generate_segmentation']
