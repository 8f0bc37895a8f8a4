"""Pictures of results: ground truth and prediction side by side, titled, with a legend, for both hosts."""
from .dataset_pictures import save_dataset_pictures
from .pictures import class_palette, draw_sample

__all__ = ['class_palette', 'draw_sample', 'save_dataset_pictures']
