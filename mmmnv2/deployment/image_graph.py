"""Image in, result out: the config's test pre-processing and post-processing as PyTorch modules that an exported
file holds around the network (``--preprocess``, and ``--postprocess`` for ``.tflite`` / ``.pte``).

Pre-processing (``ImageInput``, every format): the file takes one decoded uint8 image, (1, H, W, 3) RGB, of the size
fixed at export (``image_size``, by default the network's input size) and does in the graph what the config's test
pipeline and data preprocessor do to an image of that size:

- the test pipeline's ``Resize`` (mmcv's bilinear resize, half-pixel centres, no antialiasing, rounded to uint8 as
  OpenCV's uint8 resize rounds): the resized shape is found by running the host's own ``Resize`` transform on an
  image of ``image_size`` (``preprocess_settings``), so ``keep_ratio``, ``scale`` and ``scale_factor`` mean what
  they mean to the host;
- the data preprocessor's channel order, ``mean`` and ``std``;
- its padding (bottom and right, after normalisation, with its pad value) to the network's input size.

OpenCV resizes uint8 images in 11-bit fixed point, rounding twice; the graph interpolates in float32, then rounds.
The two differ by one grey level on about one value in eight where the image is resized (measured: 12.6% for
256 -> 192), never more; an image that is not resized (only normalised and padded) reaches the network exactly as
through the pipeline.

Post-processing for the formats without ONNX's ``NonMaxSuppression`` (``DetectionResults``, ``LabelMap``):

- detection: the class scores (softmax / sigmoid, background dropped) of every (anchor, class) pair, the best
  ``candidates`` pairs above ``score_thr`` (MMDetection's ``filter_scores_and_topk``: the best pairs overall are within
  each level's best ``nms_pre`` as long as ``candidates <= nms_pre``), decoded with the head's own box coder, then
  class-aware greedy NMS over them in score order (IoU above the threshold suppresses, as mmcv's ``nms``) and the
  ``max_per_img`` best kept boxes. Greedy NMS is sequential; the graph computes it in ``rounds`` parallel rounds
  instead (Cluster-NMS, Zheng et al., "Enhancing Geometric Factors in Model Learning and Inference for Object
  Detection and Instance Segmentation", 2021): each round keeps the valid candidates that no candidate kept in the
  round before suppresses. The greedy result is the only keep vector that reproduces itself, so a round that changes
  nothing has reached it; round r is right for at least the best r candidates, and chains of suppression are
  short in practice. The file's ``nms_converged`` output says whether the last round changed nothing (the runner
  warns where it did not). The result is MMDetection's as long as it converged and at least ``max_per_img`` boxes
  survive among the candidates or no pair beyond them scores above ``score_thr``. The file records ``candidates``
  and ``rounds``;
- segmentation: the decode head's logits resized to the padded input, the padding cropped, resized to the image and
  the argmax taken (MMSegmentation's ``predict_by_feat`` + ``postprocess_result``), as uint8 labels; the resizings
  and the crop as one matrix product per axis (``LabelMap``).

With the pre-processing in the file, boxes come out in the pixels of the file's input image; without it, in the
network input's (as the ONNX post-processing graph).
"""
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from mmengine.config import Config
from torch import nn

from ..utils import config_host, fixed_input_size

# Test pipeline transforms that leave the image alone (loading, annotations, checks, packing) and those reproduced.
IMAGE_NEUTRAL = ('LoadImageFromFile', 'LoadAnnotations', 'CheckSegMap', 'PackDetInputs', 'PackSegInputs')
RESIZE = 'Resize'
IMAGE_LAYOUT = 'NHWC uint8 RGB'  # what a file with the pre-processing takes (an Android bitmap's / camera's order)


def _transform_name(transform: Dict) -> str:
    return str(transform['type']).rsplit('.', 1)[-1]


def preprocess_settings(cfg: Config, image_size: Optional[Tuple[int, int]] = None) -> Dict:
    """What the config's test pipeline and data preprocessor do to an image of ``image_size`` (height, width;
    default the network's input size), as the numbers the graph is built from and the file records.

    Raises ValueError naming a test pipeline transform the graph does not reproduce, a non-bilinear ``Resize``, or an
    image the network's input size cannot hold once resized.
    """
    from mmengine.registry import TRANSFORMS, init_default_scope
    input_size = fixed_input_size(cfg)
    image_size = tuple(int(s) for s in (image_size or input_size))
    if len(image_size) != 2 or min(image_size) < 1:
        raise ValueError(f'image_size must be (height, width) of positive integers, got {image_size}')
    init_default_scope(config_host(cfg).scope)
    results = dict(img=np.zeros((*image_size, 3), np.uint8), img_shape=image_size, ori_shape=image_size)
    for transform in cfg.test_dataloader.dataset.pipeline:
        name = _transform_name(transform)
        if name in IMAGE_NEUTRAL:
            continue
        if name != RESIZE:
            raise ValueError(f'the test pipeline\'s {name} is not reproduced in the graph (in-graph pre-processing '
                             f'covers {RESIZE} and {", ".join(IMAGE_NEUTRAL)}); export without preprocess')
        if transform.get('interpolation', 'bilinear') != 'bilinear':
            raise ValueError(f'in-graph pre-processing resizes bilinearly; the test pipeline\'s {RESIZE} uses '
                             f'interpolation={transform["interpolation"]!r}')
        results = TRANSFORMS.build(transform)(results)
    resized = tuple(int(s) for s in results['img'].shape[:2])
    if resized[0] > input_size[0] or resized[1] > input_size[1]:
        raise ValueError(f'an image of {image_size[0]}x{image_size[1]} is {resized[0]}x{resized[1]} after the test '
                         f'pipeline, larger than the network\'s {input_size[0]}x{input_size[1]} input')
    preprocessor = cfg.model.get('data_preprocessor') or {}
    mean, std = preprocessor.get('mean'), preprocessor.get('std')
    return dict(
        image_size=list(image_size), resized_shape=list(resized), input_size=list(input_size),
        scale_factor=[resized[1] / image_size[1], resized[0] / image_size[0]],  # (w, h), as mmcv's Resize
        mean=[float(m) for m in mean] if mean is not None else None,
        std=[float(s) for s in std] if std is not None else None,
        # the model's channel order: RGB when the preprocessor converts loaded BGR images to RGB
        model_rgb=bool(preprocessor.get('bgr_to_rgb', False)) or bool(preprocessor.get('rgb_to_bgr', False)),
        pad_value=float(preprocessor.get('pad_val', preprocessor.get('pad_value', 0))),
        layout=IMAGE_LAYOUT)


def image_test_pipeline(pipeline: Sequence[Dict], image_size: Sequence[int]) -> List[Dict]:
    """``pipeline`` for a file with the pre-processing: its resizing replaced by a resize to the file's
    ``image_size`` right after loading (annotations keep their size)."""
    height, width = image_size
    transforms = [dict(transform) for transform in pipeline if _transform_name(transform) != RESIZE]
    load = next((i for i, t in enumerate(transforms) if _transform_name(t) == 'LoadImageFromFile'), None)
    if load is None:
        raise ValueError('the test pipeline has no LoadImageFromFile to resize the images after')
    transforms.insert(load + 1, dict(type=RESIZE, scale=(width, height), keep_ratio=False))
    return transforms


class ImageInput(nn.Module):
    """uint8 (1, H, W, 3) RGB image -> the network's normalised, padded (1, 3, h, w) float input (see module)."""

    def __init__(self, settings: Dict) -> None:
        super().__init__()
        self.image_size = tuple(settings['image_size'])
        self.resized_shape = tuple(settings['resized_shape'])
        height, width = settings['input_size']
        self.padding = (0, width - self.resized_shape[1], 0, height - self.resized_shape[0])  # F.pad's order
        self.pad_value = settings['pad_value']
        self.flip = not settings['model_rgb']  # the graph takes RGB; a BGR model gets BGR
        mean = settings['mean'] if settings['mean'] is not None else [0.0] * 3
        std = settings['std'] if settings['std'] is not None else [1.0] * 3
        self.register_buffer('mean', torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer('std', torch.tensor(std).view(1, 3, 1, 1), persistent=False)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        x = image.permute(0, 3, 1, 2).float()
        if self.flip:
            x = x.flip(1)
        if self.resized_shape != self.image_size:
            # mmcv's bilinear resize is OpenCV's INTER_LINEAR: half-pixel centres, no antialiasing, uint8 result
            x = torch.round(F.interpolate(x, size=self.resized_shape, mode='bilinear', align_corners=False))
        x = (x - self.mean) / self.std
        if any(self.padding):
            x = F.pad(x, self.padding, value=self.pad_value)
        return x


class DetectionResults(nn.Module):
    """(class scores per level, box deltas per level) -> boxes (1, K, 4), scores (1, K), labels (1, K) int32, best
    first; slots without a box have label -1 and score 0 (the ONNX post-processing graph's outputs; see module); and
    ``nms_converged`` (1,) int32: 1 when the NMS rounds reached greedy NMS's result."""

    def __init__(self, head: nn.Module, settings: Dict, input_size: Tuple[int, int],
                 featmap_sizes: Sequence[Tuple[int, int]], candidates: int, rounds: int,
                 box_scale: Optional[Sequence[float]] = None) -> None:
        super().__init__()
        self.head, self.settings = head, settings
        self.input_size = tuple(input_size)
        priors = torch.cat(head.prior_generator.grid_priors(list(featmap_sizes), device='cpu'))
        self.register_buffer('priors', priors, persistent=False)
        pairs = priors.shape[0] * settings['num_classes']
        self.candidates = min(candidates, settings['nms_pre'], pairs)
        self.max_per_img = min(settings['max_per_img'], self.candidates)
        self.rounds = rounds
        scale = torch.tensor(list(box_scale) * 2 if box_scale is not None else [1.0] * 4)
        self.register_buffer('box_scale', scale, persistent=False)  # (w, h, w, h) from network input to image
        # later[j, i]: candidate j scores above candidate i (candidates are sorted), so j may suppress i
        later = torch.ones(self.candidates, self.candidates, dtype=torch.bool).triu(1)
        self.register_buffer('later', later, persistent=False)

    def scores(self, cls_scores: Sequence[torch.Tensor]) -> torch.Tensor:
        """(anchors, classes) scores of image 0, levels concatenated as the priors are."""
        channels = self.head.cls_out_channels
        logits = torch.cat([level[0].permute(1, 2, 0).reshape(-1, channels) for level in cls_scores])
        activation = self.settings['activation']
        scores = logits.softmax(-1) if activation == 'softmax' else logits.sigmoid()
        return scores if activation == 'sigmoid' else scores[:, :self.settings['num_classes']]

    def forward(self, cls_scores: List[torch.Tensor], bbox_preds: List[torch.Tensor]
                ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        settings, num_classes = self.settings, self.settings['num_classes']
        flat = self.scores(cls_scores).reshape(-1)  # pair = anchor * classes + class
        above = flat > settings['score_thr']
        top_scores, pairs = torch.where(above, flat, torch.full_like(flat, -1.0)).topk(self.candidates)
        anchors, labels = pairs // num_classes, pairs % num_classes
        deltas = torch.cat([level[0].permute(1, 2, 0).reshape(-1, 4) for level in bbox_preds])
        boxes = self.head.bbox_coder.decode(self.priors[anchors], deltas[anchors],
                                            max_shape=self.input_size if settings['clip_border'] else None)
        valid = top_scores > settings['score_thr']
        if settings['min_bbox_size'] >= 0:  # MMDetection drops boxes of width or height <= min_bbox_size
            sizes = boxes[:, 2:] - boxes[:, :2]
            valid = valid & (sizes > settings['min_bbox_size']).all(1)
        suppresses = (pairwise_iou(boxes) > settings['iou_threshold']) & (labels[:, None] == labels[None, :])
        suppresses = suppresses & self.later
        # Greedy NMS's result is the one keep vector that keeps exactly the valid candidates no kept candidate
        # suppresses: rounds of "valid and not suppressed by the kept" reach it (see module)
        keep, previous = valid, valid
        for _ in range(self.rounds):
            previous, keep = keep, valid & ~(suppresses & keep[:, None]).any(0)
        converged = (keep == previous).all().reshape(1).to(torch.int32)
        # the first max_per_img kept candidates, in score order
        order = torch.arange(self.candidates, 0, -1, dtype=torch.float32)
        key, chosen = torch.where(keep, order, torch.zeros_like(order)).topk(self.max_per_img)
        found = key > 0
        boxes = torch.where(found[:, None], boxes[chosen] / self.box_scale, torch.zeros_like(boxes[chosen]))
        scores = torch.where(found, top_scores[chosen], torch.zeros_like(top_scores[chosen]))
        labels = torch.where(found, labels[chosen].to(torch.int32), torch.full_like(chosen, -1).to(torch.int32))
        return boxes[None], scores[None], labels[None], converged


def pairwise_iou(boxes: torch.Tensor) -> torch.Tensor:
    """IoU of every pair of (x1, y1, x2, y2) boxes, as mmcv's ``nms`` computes it (no +1 on sizes)."""
    area = (boxes[:, 2] - boxes[:, 0]).clamp(min=0) * (boxes[:, 3] - boxes[:, 1]).clamp(min=0)
    top_left = torch.maximum(boxes[:, None, :2], boxes[None, :, :2])
    bottom_right = torch.minimum(boxes[:, None, 2:], boxes[None, :, 2:])
    overlap = (bottom_right - top_left).clamp(min=0).prod(-1)
    return overlap / (area[:, None] + area[None, :] - overlap).clamp(min=torch.finfo(torch.float32).tiny)


def interpolation_matrix(size_in: int, size_out: int, align_corners: bool) -> torch.Tensor:
    """(size_out, size_in): ``F.interpolate``'s linear resizing along one axis as a matrix (its bilinear resizing is
    this along each axis)."""
    signals = torch.eye(size_in, dtype=torch.float64).unsqueeze(1)  # one signal per input position
    return F.interpolate(signals, size=size_out, mode='linear', align_corners=align_corners)[:, 0].T


def label_map_matrices(align_corners: bool, logits_size: Sequence[int], input_size: Sequence[int],
                       crop: Sequence[int], output_size: Sequence[int]) -> Tuple[torch.Tensor, torch.Tensor]:
    """(rows, columns) float32 matrices of the logits' resizing to the padded input, the crop and the resizing to the
    output size, composed: the resized logits of class c are ``rows @ logits[c] @ columns.T``."""
    top, left, bottom, right = crop
    matrices = []
    for axis, (start, stop) in enumerate(((top, bottom), (left, right))):
        padded = interpolation_matrix(logits_size[axis], input_size[axis], align_corners)[start:stop]
        matrices.append((interpolation_matrix(stop - start, output_size[axis], align_corners) @ padded).float())
    return matrices[0], matrices[1]


class LabelMap(nn.Module):
    """Decode head logits (1, C, h, w) -> uint8 labels (1, 1, H, W) of the image (see module).

    The two bilinear resizings and the crop between them are linear along each axis, so they are computed as one
    matrix product per axis, channels last (``label_map_matrices``): the argmax then runs over contiguous class
    scores. Measured in ONNX Runtime on 2 threads, 21 classes 32x32 -> 512x512: 5.0 ms against 10.0 ms for
    ``Resize`` + ``ArgMax`` over channels. The sums are those of the resizings in another order (float32 rounding:
    a label can differ only where two classes' resized logits are within ~1e-6).
    """

    def __init__(self, settings: Dict, logits_size: Tuple[int, int], input_size: Tuple[int, int],
                 crop: Sequence[int], output_size: Tuple[int, int]) -> None:
        super().__init__()
        rows, columns = label_map_matrices(settings['align_corners'], logits_size, input_size, crop, output_size)
        self.register_buffer('rows', rows, persistent=False)
        self.register_buffer('columns', columns, persistent=False)

    def forward(self, logits: torch.Tensor) -> torch.Tensor:
        classes, height, width = logits.shape[1:]
        x = logits[0].permute(1, 2, 0).reshape(height, width * classes)  # (h, w x C), channels last
        x = (self.rows @ x).reshape(-1, width, classes)  # (H, w, C)
        x = self.columns @ x  # (H, W, C)
        return x.argmax(-1).to(torch.uint8)[None, None]
