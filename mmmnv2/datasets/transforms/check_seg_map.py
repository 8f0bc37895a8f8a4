"""Refuse label maps that would make the mIoU silently wrong.

MMSegmentation's ``IoUMetric`` drops every label value outside ``0 .. num_classes - 1`` (its histograms have
``num_classes`` bins) and reads label maps without checking they match their image. A data set converted with the
wrong palette, or a label map from another image, therefore trains and evaluates without complaint and reports a
wrong mIoU. ``CheckSegMap``, placed right after ``LoadAnnotations``, turns both cases into an error naming the file.

Not from the paper: a data-safety check for the PASCAL VOC pipelines of Mobile DeepLabv3 (Sec. 6.3) and the toy set.
"""
from typing import Optional

import numpy as np
from mmcv.transforms import BaseTransform

from mmmnv2.registry import TRANSFORMS


@TRANSFORMS.register_module()
class CheckSegMap(BaseTransform):
    """Check ``gt_seg_map`` holds only class indices or the ignore index, at the size of its image.

    Put it right after ``LoadAnnotations`` (after any ``label_map``/``reduce_zero_label`` remapping, before any
    resizing of the label map). The map's size is compared with the original image size (``ori_shape``), so the
    check also holds in test pipelines that resize the image before loading the annotation. A pipeline without
    annotations (inference) passes through unchanged.

    Args:
        num_classes: Number of classes of the data set (PASCAL VOC: 21); in configs, e.g.
            ``len(metainfo['classes'])``. Valid labels are ``0 .. num_classes - 1``.
        ignore_index: The label that marks pixels to ignore (PASCAL VOC: 255 on object boundaries).

    Raises:
        ValueError: on a label map with other values, or of another size than its image; the message names the
            label map file (``seg_map_path``) and the image file.
    """

    def __init__(self, num_classes: int, ignore_index: int = 255) -> None:
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
            raise ValueError(f'num_classes must be a positive integer, got {num_classes!r}')
        if isinstance(ignore_index, bool) or not isinstance(ignore_index, int):
            raise ValueError(f'ignore_index must be an integer, got {ignore_index!r}')
        self.num_classes = num_classes
        self.ignore_index = ignore_index

    def transform(self, results: dict) -> dict:
        seg_map: Optional[np.ndarray] = results.get('gt_seg_map')
        if seg_map is None:
            return results
        seg_map_path = results.get('seg_map_path', '<unknown label map file>')
        img_path = results.get('img_path', '<unknown image file>')
        image_shape = results.get('ori_shape', results.get('img_shape'))
        if image_shape is not None and tuple(seg_map.shape[:2]) != tuple(image_shape[:2]):
            raise ValueError(f'Label map {seg_map_path} is {seg_map.shape[0]}x{seg_map.shape[1]} (HxW) but its '
                             f'image {img_path} is {image_shape[0]}x{image_shape[1]}: every label map must have '
                             f'the size of its image')
        invalid = ((seg_map < 0) | (seg_map >= self.num_classes)) & (seg_map != self.ignore_index)
        if invalid.any():
            values = np.unique(seg_map[invalid])
            shown = ', '.join(str(v) for v in values[:10]) + (', ...' if len(values) > 10 else '')
            raise ValueError(f'Label map {seg_map_path} holds values {shown} ({int(invalid.sum())} pixels) outside '
                             f'the {self.num_classes} classes 0..{self.num_classes - 1} and the ignore index '
                             f'{self.ignore_index}; the mIoU would silently ignore them. Check the data set '
                             f'conversion (palette images must be converted to class indices) and num_classes.')
        return results

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(num_classes={self.num_classes}, ignore_index={self.ignore_index})'
