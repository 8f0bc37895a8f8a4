"""Pictures of detection and segmentation results that read at a glance, one layout for both tasks.

A picture is one panel per thing drawn, side by side, each titled: ``ground truth`` (when the data sample has it)
and ``prediction``, then a legend of the classes (colour and name) below. Images smaller than ``MIN_PANEL_SIDE``
are enlarged so the text stays readable.

- Detection: a box per object in its class's colour, its class name (and score, for predictions) on a tag kept
  inside the frame; predictions below ``score_thr`` are not drawn.
- Segmentation: each class's pixels tinted with its colour and outlined, the image left as it is elsewhere: a class
  named ``background`` and the ignore index (255) are transparent, so the picture is not darkened where nothing is.
  Each region's class name is written inside the frame.

The hosts' visualizers (``DetLocalVisualizer``, ``SegLocalVisualizer``) lay out and name their pictures
differently; ``SegLocalVisualizer`` also blends the background class's colour (black in PASCAL VOC's palette) over the
whole image, and writes region names where they can fall off the image's edge.
"""
from typing import List, Optional, Sequence, Tuple

import cv2
import numpy as np
from mmengine.structures import BaseDataElement

MIN_PANEL_SIDE = 384  # pixels: smaller images are enlarged (an integer or half-integer factor) for legible text
ALPHA = 0.5  # opacity of the segmentation tint
TITLE_HEIGHT = 28
FONT = cv2.FONT_HERSHEY_SIMPLEX
FONT_SCALE = 0.5
IGNORE_INDEX = 255
TRANSPARENT_CLASSES = ('background',)

Colour = Tuple[int, int, int]


def class_palette(classes: Sequence[str], palette: Optional[Sequence[Sequence[int]]] = None) -> List[Colour]:
    """One RGB colour per class: ``palette`` if given, else fixed random colours (seed 42)."""
    if palette is None or len(palette) == 0:
        palette = np.random.default_rng(42).integers(0, 256, (len(classes), 3))
    if len(palette) < len(classes):
        raise ValueError(f'palette has {len(palette)} colours for {len(classes)} classes')
    return [tuple(int(v) for v in colour) for colour in palette[:len(classes)]]


def draw_sample(image: np.ndarray, sample: BaseDataElement, classes: Sequence[str],
                palette: Optional[Sequence[Sequence[int]]] = None, *, score_thr: float = 0.3,
                draw_gt: bool = True) -> np.ndarray:
    """The picture of ``sample`` (an MMDetection ``DetDataSample`` or MMSegmentation ``SegDataSample``) on ``image``.

    ``image``: RGB, uint8, at the size the results are in (the original image). Returns an RGB uint8 array: a
    ``ground truth`` panel (when ``draw_gt`` and the sample holds ``gt_instances`` / ``gt_sem_seg``) and a
    ``prediction`` panel (when it holds ``pred_instances`` / ``pred_sem_seg``), titled, with the legend below.
    """
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f'image must be an RGB uint8 array (H, W, 3), got {image.dtype} {image.shape}')
    colours = class_palette(classes, palette)
    scale = _scale(image.shape[:2])
    big = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_LINEAR) if scale != 1 else image
    panels = []
    for kind, title in (('gt', 'ground truth'), ('pred', 'prediction')):
        if kind == 'gt' and not draw_gt:
            continue
        if f'{kind}_instances' in sample:
            instances = sample.get(f'{kind}_instances')
            scores = instances.scores.cpu().numpy() if kind == 'pred' and 'scores' in instances else None
            keep = scores >= score_thr if scores is not None else slice(None)
            panel = _draw_boxes(big, instances.bboxes.cpu().numpy()[keep] * scale,
                                instances.labels.cpu().numpy()[keep], None if scores is None else scores[keep],
                                classes, colours)
            if scores is not None:
                title += f' (score >= {score_thr:g})'
        elif f'{kind}_sem_seg' in sample:
            label_map = sample.get(f'{kind}_sem_seg').data[0].cpu().numpy()
            if label_map.shape != image.shape[:2]:
                raise ValueError(f'{kind}_sem_seg is {label_map.shape}, the image {image.shape[:2]}')
            if scale != 1:
                label_map = cv2.resize(label_map.astype(np.int32), None, fx=scale, fy=scale,
                                       interpolation=cv2.INTER_NEAREST)
            panel = _draw_label_map(big, label_map, classes, colours)
        else:
            continue
        panels.append(_titled(panel, title))
    if not panels:
        raise ValueError('sample holds no gt_instances / pred_instances / gt_sem_seg / pred_sem_seg to draw')
    gap = np.full((panels[0].shape[0], 8, 3), 255, np.uint8)
    row = np.concatenate([p for panel in panels for p in (panel, gap)][:-1], axis=1)
    return np.concatenate([row, _legend(row.shape[1], classes, colours)], axis=0)


def _scale(shape: Tuple[int, int]) -> float:
    side = min(shape)
    if side >= MIN_PANEL_SIDE:
        return 1.0
    return float(np.ceil(2 * MIN_PANEL_SIDE / side) / 2)


def _text_colour(background: Colour) -> Colour:
    """Black on light colours, white on dark ones (ITU-R BT.601 luma)."""
    r, g, b = background
    return (0, 0, 0) if 0.299 * r + 0.587 * g + 0.114 * b > 128 else (255, 255, 255)


def _tag(canvas: np.ndarray, text: str, x: int, y: int, colour: Colour) -> None:
    """Write ``text`` on a tag of ``colour`` whose top-left corner is near (x, y), moved inside the canvas."""
    (w, h), baseline = cv2.getTextSize(text, FONT, FONT_SCALE, 1)
    w, h = w + 4, h + baseline + 4
    x = int(min(max(x, 0), max(canvas.shape[1] - w, 0)))
    y = int(min(max(y, 0), max(canvas.shape[0] - h, 0)))
    cv2.rectangle(canvas, (x, y), (x + w - 1, y + h - 1), colour, -1)
    cv2.putText(canvas, text, (x + 2, y + h - baseline - 2), FONT, FONT_SCALE, _text_colour(colour), 1, cv2.LINE_AA)


def _draw_boxes(image: np.ndarray, bboxes: np.ndarray, labels: np.ndarray, scores: Optional[np.ndarray],
                classes: Sequence[str], colours: List[Colour]) -> np.ndarray:
    canvas = image.copy()
    order = np.argsort(scores) if scores is not None else np.arange(len(labels))  # best boxes drawn last, on top
    for i in order:
        x1, y1, x2, y2 = (int(round(v)) for v in bboxes[i])
        label = int(labels[i])
        cv2.rectangle(canvas, (x1, y1), (x2, y2), colours[label], 2)
        text = classes[label] if scores is None else f'{classes[label]} {scores[i]:.2f}'
        _tag(canvas, text, x1, y1, colours[label])
    return canvas


def _draw_label_map(image: np.ndarray, label_map: np.ndarray, classes: Sequence[str],
                    colours: List[Colour]) -> np.ndarray:
    canvas = image.copy()
    min_area = 0.002 * label_map.size  # regions smaller than this get no name (it would cover them)
    for label in np.unique(label_map):
        if label == IGNORE_INDEX or label >= len(classes) or classes[label].lower() in TRANSPARENT_CLASSES:
            continue
        mask = (label_map == label).astype(np.uint8)
        colour = np.array(colours[label], np.float32)
        canvas[mask > 0] = ((1 - ALPHA) * canvas[mask > 0] + ALPHA * colour).astype(np.uint8)
        contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        cv2.drawContours(canvas, contours, -1, colours[label], 2)
        count, _, stats, centroids = cv2.connectedComponentsWithStats(mask)
        for component in range(1, count):
            if stats[component, cv2.CC_STAT_AREA] >= min_area:
                cx, cy = centroids[component]
                _tag(canvas, classes[label], int(cx) - 20, int(cy) - 8, colours[label])
    return canvas


def _titled(panel: np.ndarray, title: str) -> np.ndarray:
    bar = np.full((TITLE_HEIGHT, panel.shape[1], 3), 255, np.uint8)
    cv2.putText(bar, title, (6, TITLE_HEIGHT - 9), FONT, 0.6, (0, 0, 0), 1, cv2.LINE_AA)
    return np.concatenate([bar, panel], axis=0)


def _legend(width: int, classes: Sequence[str], colours: List[Colour]) -> np.ndarray:
    """Rows of (colour swatch, class name), wrapped to ``width``; transparent classes are named as such."""
    entries = []
    for name, colour in zip(classes, colours):
        transparent = name.lower() in TRANSPARENT_CLASSES
        entries.append((f'{name} (not drawn)' if transparent else name, None if transparent else colour))
    rows, row, x = [], [], 6
    for text, colour in entries:
        w = 22 + cv2.getTextSize(text, FONT, FONT_SCALE, 1)[0][0] + 14
        if row and x + w > width:
            rows.append(row)
            row, x = [], 6
        row.append((x, text, colour))
        x += w
    rows.append(row)
    legend = np.full((24 * len(rows) + 6, width, 3), 255, np.uint8)
    for r, row in enumerate(rows):
        y = 6 + 24 * r
        for x, text, colour in row:
            if colour is None:
                cv2.rectangle(legend, (x, y + 2), (x + 15, y + 17), (128, 128, 128), 1)
            else:
                cv2.rectangle(legend, (x, y + 2), (x + 15, y + 17), colour, -1)
            cv2.putText(legend, text, (x + 22, y + 15), FONT, FONT_SCALE, (0, 0, 0), 1, cv2.LINE_AA)
    return legend
