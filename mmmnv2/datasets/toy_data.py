"""Deterministic synthetic data sets, so training and evaluation run on a fresh machine with nothing downloaded.

- Detection: COCO format (``annotations/instances_{train,val}.json`` + ``{train,val}/*.jpg``), the layout
  MMDetection's ``CocoDataset`` reads.
- Segmentation: PASCAL VOC format (``JPEGImages/*.jpg``, ``SegmentationClass/*.png``,
  ``ImageSets/Segmentation/{train,val}.txt``), with 255 on a thin band around every object as VOC marks
  uncertain boundaries: the layout MMSegmentation's ``PascalVOCDataset`` reads. The val images are also copied
  to ``val/``, a folder of only val images (as detection's) for ``tools/infer.py``.

Each image shows a few filled shapes (the classes) in random colours on a cluttered background (colour gradient,
noise and distractor strokes). The same seed gives byte-identical files.
"""
import json
import os
import os.path as osp
from typing import Dict, List, Tuple

import cv2
import numpy as np

CLASSES = ('circle', 'square', 'triangle')
SEG_CLASSES = ('background',) + CLASSES
SEG_PALETTE = [[0, 0, 0], [128, 0, 0], [0, 128, 0], [128, 128, 0]]
BOUNDARY_WIDTH = 3  # pixels of 255 ("ignore") around each object, as in VOC's SegmentationClass maps
IGNORE_INDEX = 255


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32) / size
    start, end = rng.uniform(0, 255, (2, 3))
    direction = rng.uniform(-1, 1, 2)
    t = np.clip((xs * direction[0] + ys * direction[1] + 1) / 2, 0, 1)[..., None]
    image = start * (1 - t) + end * t + rng.normal(0, 12, (size, size, 3))
    for _ in range(rng.integers(2, 6)):  # distractor strokes: clutter that belongs to no class
        p1, p2 = rng.integers(0, size, (2, 2))
        cv2.line(image, tuple(int(v) for v in p1), tuple(int(v) for v in p2), rng.uniform(0, 255, 3).tolist(),
                 int(rng.integers(1, 4)))
    return image


def _shape_mask(rng: np.random.Generator, label: int, size: int, box: Tuple[int, int, int, int]) -> np.ndarray:
    x0, y0, w, h = box
    mask = np.zeros((size, size), np.uint8)
    name = CLASSES[label]
    if name == 'circle':
        cv2.ellipse(mask, (x0 + w // 2, y0 + h // 2), (w // 2, h // 2), 0, 0, 360, 1, -1)
    elif name == 'square':
        mask[y0:y0 + h, x0:x0 + w] = 1
    else:
        apex = x0 + int(rng.integers(0, w))
        points = np.array([[apex, y0], [x0, y0 + h - 1], [x0 + w - 1, y0 + h - 1]], np.int32)
        cv2.fillPoly(mask, [points], 1)
    return mask


def _sample_image(rng: np.random.Generator, size: int, max_objects: int
                  ) -> Tuple[np.ndarray, List[Tuple[int, np.ndarray]]]:
    """An image and its objects (label, binary mask); objects do not overlap."""
    image = _background(rng, size)
    occupied = np.zeros((size, size), bool)
    objects = []
    for _ in range(int(rng.integers(1, max_objects + 1))):
        for _attempt in range(20):
            w, h = (int(v) for v in rng.integers(size // 6, size // 2, 2))
            x0, y0 = int(rng.integers(0, size - w)), int(rng.integers(0, size - h))
            label = int(rng.integers(len(CLASSES)))
            mask = _shape_mask(rng, label, size, (x0, y0, w, h)).astype(bool)
            grown = cv2.dilate(mask.astype(np.uint8), np.ones((7, 7), np.uint8)).astype(bool)
            if mask.sum() > 16 and not (grown & occupied).any():
                break
        else:
            continue
        occupied |= mask
        colour = rng.uniform(0, 255, 3)
        image[mask] = colour + rng.normal(0, 8, (int(mask.sum()), 3))
        objects.append((label, mask))
    return np.clip(image, 0, 255).astype(np.uint8), objects


def generate_detection(root: str, *, num_train: int = 512, num_val: int = 32, size: int = 256,
                       max_objects: int = 4, seed: int = 0) -> Dict[str, str]:
    """Write a COCO-format detection set under ``root``; return the paths of its two annotation files."""
    rng = np.random.default_rng(seed)
    os.makedirs(osp.join(root, 'annotations'), exist_ok=True)
    categories = [dict(id=i + 1, name=name, supercategory='shape') for i, name in enumerate(CLASSES)]
    paths = {}
    for split, count in (('train', num_train), ('val', num_val)):
        os.makedirs(osp.join(root, split), exist_ok=True)
        images, annotations = [], []
        for index in range(count):
            image, objects = _sample_image(rng, size, max_objects)
            file_name = f'{index:06d}.jpg'
            cv2.imwrite(osp.join(root, split, file_name), image)
            images.append(dict(id=index + 1, file_name=file_name, width=size, height=size))
            for label, mask in objects:
                ys, xs = np.nonzero(mask)
                x, y, w, h = int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1)
                annotations.append(dict(id=len(annotations) + 1, image_id=index + 1, category_id=label + 1,
                                        bbox=[x, y, w, h], area=float(mask.sum()), iscrowd=0))
        paths[split] = osp.join(root, 'annotations', f'instances_{split}.json')
        with open(paths[split], 'w') as f:
            json.dump(dict(images=images, annotations=annotations, categories=categories), f)
    return paths


def generate_segmentation(root: str, *, num_train: int = 512, num_val: int = 32, size: int = 256,
                          max_objects: int = 4, seed: int = 0) -> Dict[str, str]:
    """Write a VOC-format segmentation set under ``root``; return the paths of its two split files."""
    rng = np.random.default_rng(seed)
    for folder in ('JPEGImages', 'SegmentationClass', osp.join('ImageSets', 'Segmentation')):
        os.makedirs(osp.join(root, folder), exist_ok=True)
    paths = {}
    for split, count in (('train', num_train), ('val', num_val)):
        names = []
        for index in range(count):
            image, objects = _sample_image(rng, size, max_objects)
            label_map = np.zeros((size, size), np.uint8)
            boundary = np.zeros((size, size), bool)
            for label, mask in objects:
                label_map[mask] = label + 1
                kernel = np.ones((BOUNDARY_WIDTH, BOUNDARY_WIDTH), np.uint8)
                m = mask.astype(np.uint8)
                boundary |= (cv2.dilate(m, kernel) - cv2.erode(m, kernel)).astype(bool)
            label_map[boundary] = IGNORE_INDEX
            name = f'{split}_{index:06d}'
            cv2.imwrite(osp.join(root, 'JPEGImages', name + '.jpg'), image)
            if split == 'val':
                os.makedirs(osp.join(root, 'val'), exist_ok=True)
                cv2.imwrite(osp.join(root, 'val', name + '.jpg'), image)
            cv2.imwrite(osp.join(root, 'SegmentationClass', name + '.png'), label_map)
            names.append(name)
        paths[split] = osp.join(root, 'ImageSets', 'Segmentation', f'{split}.txt')
        with open(paths[split], 'w') as f:
            f.write('\n'.join(names) + '\n')
    return paths
