"""TF Object Detection API's ``ssd_random_crop``, the crop of the paper's SSDLite training (Sec. 6.2).

``ssdlite_mobilenet_v2_coco.config`` augments with ``random_horizontal_flip`` and ``ssd_random_crop`` (defaults).
``ssd_random_crop`` (``object_detection/core/preprocessor.py``) picks one of seven operations uniformly; each is
``random_crop_image`` with its own ``min_object_covered`` (0, 0.1, 0.3, 0.5, 0.7, 0.9, 1), ``aspect_ratio_range``
(0.5, 2), ``area_range`` (0.1, 1), ``overlap_thresh`` (0, 0.1, 0.3, 0.5, 0.7, 0.9, 1), ``clip_boxes`` True and
``random_coef`` 0.15, the probability of keeping the image as it is. A crop comes from
``tf.image.sample_distorted_bounding_box`` (``tensorflow/core/kernels/image/sample_distorted_bounding_box_op.cc``):
up to 100 attempts, each drawing an aspect ratio (width / height) uniformly, then an integer height such that the
area lies in the area range, then an integer position; a crop is accepted when it covers at least
``min_object_covered`` of the area of *some* box (boxes under one pixel of area do not count); after 100 failures
the whole image is the crop. Boxes entirely outside the crop are dropped, then boxes with less than
``overlap_thresh`` of their own area inside the crop (TF ``prune_non_overlapping_boxes``, intersection over the
box's area); the rest are clipped to the crop.

MMDetection's ``MinIoURandomCrop`` (Caffe SSD's sampler) differs: it constrains the IoU of crop and boxes, the crop's
side lengths (>= 0.3 of the image) and aspect ratio (0.5..2 of the sides, not of a drawn ratio), keeps boxes by
their centres, and keeps the image with probability 1/6.
"""
from typing import Optional, Sequence, Tuple

import numpy as np
from mmcv.transforms import BaseTransform

from mmmnv2.registry import TRANSFORMS

MIN_OBJECT_COVERED = (0.0, 0.1, 0.3, 0.5, 0.7, 0.9, 1.0)
OVERLAP_THRESH = (0.0, 0.1, 0.3, 0.5, 0.7, 0.9, 1.0)


def _round(value: float) -> int:
    return int(np.rint(value))  # C's lrintf: round half to even


def generate_random_crop(rng: np.random.Generator, width: int, height: int, aspect_ratio: float,
                         area_range: Tuple[float, float]) -> Optional[Tuple[int, int, int, int]]:
    """One attempt of TF's ``GenerateRandomCrop``: (x, y, w, h) in pixels, or None when the ranges cannot be met."""
    min_area, max_area = area_range[0] * width * height, area_range[1] * width * height
    crop_h = _round(np.sqrt(min_area / aspect_ratio))
    max_h = _round(np.sqrt(max_area / aspect_ratio))
    if _round(max_h * aspect_ratio) > width:
        max_h = int((width + 0.5 - 1e-7) / aspect_ratio)
        if _round(max_h * aspect_ratio) > width:
            max_h -= 1
    max_h = min(max_h, height)
    crop_h = min(crop_h, max_h)
    if crop_h < max_h:
        crop_h += int(rng.integers(0, max_h - crop_h + 1))
    crop_w = _round(crop_h * aspect_ratio)
    area = crop_w * crop_h
    if area < min_area:
        crop_h += 1
        crop_w = _round(crop_h * aspect_ratio)
        area = crop_w * crop_h
    if area > max_area:
        crop_h -= 1
        crop_w = _round(crop_h * aspect_ratio)
        area = crop_w * crop_h
    if (area < min_area or area > max_area or crop_w > width or crop_h > height or crop_w <= 0 or crop_h <= 0):
        return None
    y = int(rng.integers(0, height - crop_h)) if crop_h < height else 0
    x = int(rng.integers(0, width - crop_w)) if crop_w < width else 0
    return x, y, crop_w, crop_h


def covered_fraction(crop: Tuple[int, int, int, int], boxes: np.ndarray) -> np.ndarray:
    """Fraction of each box's area (x1, y1, x2, y2) inside the crop (x, y, w, h): TF's intersection over area."""
    x, y, w, h = crop
    iw = np.clip(np.minimum(boxes[:, 2], x + w) - np.maximum(boxes[:, 0], x), 0, None)
    ih = np.clip(np.minimum(boxes[:, 3], y + h) - np.maximum(boxes[:, 1], y), 0, None)
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return np.where(area > 0, iw * ih / np.maximum(area, 1e-12), 0.0)


@TRANSFORMS.register_module()
class SSDRandomCrop(BaseTransform):
    """TF's ``ssd_random_crop`` for MMDetection pipelines (after ``LoadAnnotations``, before ``Resize``).

    Args:
        min_object_covered: Per operation, the fraction of some box's area a crop must cover.
        aspect_ratio_range: (min, max) width / height of a crop, shared by the operations.
        area_range: (min, max) crop area as a fraction of the image, shared by the operations.
        overlap_thresh: Per operation, the fraction of its area a box must keep inside the crop to stay.
        random_coef: Probability of returning the image unchanged (TF ``random_coef``).
        max_attempts: Crops drawn before falling back to the whole image (TF: 100).

    Writes ``results['crop_window']`` = (x, y, w, h) of the crop in the input image (the whole image when kept) and
    ``results['crop_operation']``, the index of the operation drawn (None when the image was kept).
    """

    def __init__(self,
                 min_object_covered: Sequence[float] = MIN_OBJECT_COVERED,
                 aspect_ratio_range: Tuple[float, float] = (0.5, 2.0),
                 area_range: Tuple[float, float] = (0.1, 1.0),
                 overlap_thresh: Sequence[float] = OVERLAP_THRESH,
                 random_coef: float = 0.15,
                 max_attempts: int = 100) -> None:
        if len(min_object_covered) != len(overlap_thresh) or not len(min_object_covered):
            raise ValueError('min_object_covered and overlap_thresh must list the same, non-zero number of '
                             f'operations, got {len(min_object_covered)} and {len(overlap_thresh)}')
        for name, (low, high) in (('aspect_ratio_range', aspect_ratio_range), ('area_range', area_range)):
            if not 0 < low <= high:
                raise ValueError(f'{name} must be (min, max) with 0 < min <= max, got {(low, high)}')
        if area_range[1] > 1:
            raise ValueError(f'area_range must lie in (0, 1], got {area_range}')
        if not 0 <= random_coef <= 1:
            raise ValueError(f'random_coef must be in [0, 1], got {random_coef!r}')
        self.min_object_covered = tuple(min_object_covered)
        self.overlap_thresh = tuple(overlap_thresh)
        self.aspect_ratio_range = tuple(aspect_ratio_range)
        self.area_range = tuple(area_range)
        self.random_coef = random_coef
        self.max_attempts = max_attempts

    def sample_crop(self, rng: np.random.Generator, width: int, height: int, boxes: np.ndarray,
                    min_object_covered: float) -> Tuple[int, int, int, int]:
        """TF's ``sample_distorted_bounding_box`` (``use_image_if_no_bounding_boxes=True``): (x, y, w, h)."""
        areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
        boxes = boxes[areas >= 1.0]  # TF skips boxes under one pixel of area
        if not len(boxes):
            boxes = np.array([[0, 0, width, height]], np.float64)
        for _ in range(self.max_attempts):
            aspect_ratio = rng.uniform(*self.aspect_ratio_range)
            crop = generate_random_crop(rng, width, height, aspect_ratio, self.area_range)
            if crop is not None and (covered_fraction(crop, boxes) >= min_object_covered).any():
                return crop
        return 0, 0, width, height

    def transform(self, results: dict) -> dict:
        rng = np.random.default_rng(np.random.randint(2**31))  # follows np.random's seed, as mmcv's transforms
        height, width = results['img'].shape[:2]
        operation = int(rng.integers(len(self.min_object_covered)))
        if rng.uniform() < self.random_coef:
            results['crop_window'], results['crop_operation'] = (0, 0, width, height), None
            return results
        boxes = results['gt_bboxes'].numpy().astype(np.float64) if 'gt_bboxes' in results else np.zeros((0, 4))
        # TF clips the boxes to the image before sampling
        clipped = np.clip(boxes, 0, [width, height, width, height])
        x, y, w, h = self.sample_crop(rng, width, height, clipped, self.min_object_covered[operation])
        results['img'] = results['img'][y:y + h, x:x + w]
        results['img_shape'] = results['img'].shape[:2]
        results['crop_window'], results['crop_operation'] = (x, y, w, h), operation
        if 'gt_bboxes' in results:
            outside = ((boxes[:, 1] >= y + h) | (boxes[:, 0] >= x + w) | (boxes[:, 3] <= y) | (boxes[:, 2] <= x))
            keep = ~outside & (covered_fraction((x, y, w, h), boxes) >= self.overlap_thresh[operation])
            bboxes = results['gt_bboxes'][keep]
            bboxes.translate_([-x, -y])
            bboxes.clip_((h, w))
            results['gt_bboxes'] = bboxes
            for key in ('gt_bboxes_labels', 'gt_ignore_flags'):
                if key in results:
                    results[key] = results[key][keep]
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(min_object_covered={self.min_object_covered}, '
                f'aspect_ratio_range={self.aspect_ratio_range}, area_range={self.area_range}, '
                f'overlap_thresh={self.overlap_thresh}, random_coef={self.random_coef})')
