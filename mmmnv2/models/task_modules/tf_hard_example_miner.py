"""The TF Object Detection API's hard example miner, as SSDLite trains with it (paper Sec. 6.2).

``ssdlite_mobilenet_v2_coco.config``: ``hard_example_miner { num_hard_examples: 3000 iou_threshold: 0.99
loss_type: CLASSIFICATION max_negatives_per_positive: 3 min_negatives_per_image: 3 }``. Per image
(``object_detection/core/losses.py``, ``HardExampleMiner.__call__`` and
``_subsample_selection_to_desired_neg_pos_ratio``):

1. score every anchor by its loss (classification, localisation, or their weighted sum: ``loss_type``);
2. greedy non-maximum suppression over the anchors' *predicted* (decoded) boxes with those scores: at most
   ``num_hard_examples`` anchors, dropping any whose IoU with an already chosen one exceeds ``iou_threshold``
   (``tf.image.non_max_suppression``); the result is ordered by decreasing loss;
3. keep every matched (positive) anchor of that selection, and, in that order, the anchors up to the one where the
   running count of unmatched (negative) anchors reaches ``max(min_negatives_per_image,
   floor(max_negatives_per_positive * num_positives))``.

The losses of the kept anchors are summed. MMDetection's SSD loss instead keeps every positive and the
``neg_pos_ratio * num_positives`` negatives of highest loss, with no NMS and no per-image minimum.
"""
import torch
from mmcv.ops import nms
from torch import Tensor

from mmmnv2.registry import TASK_UTILS

LOSS_TYPES = ('classification', 'loc', 'both')


@TASK_UTILS.register_module()
class TFHardExampleMiner:
    """Select the anchors whose losses count, as TF's ``HardExampleMiner`` does for one image.

    Args:
        num_hard_examples: Most anchors kept by the NMS step (TF 3000; None: all).
        iou_threshold: NMS IoU above which an anchor is dropped (TF 0.99).
        loss_type: Loss that ranks the anchors: 'classification', 'loc' or 'both'.
        cls_loss_weight, loc_loss_weight: Weights of the two losses for ``loss_type='both'``.
        max_negatives_per_positive: Negatives kept per positive (TF 3; None: no ratio is enforced).
        min_negatives_per_image: Negatives kept even in an image without positives (TF 3).
    """

    def __init__(self, num_hard_examples: int | None = 3000, iou_threshold: float = 0.99,
                 loss_type: str = 'classification', cls_loss_weight: float = 1.0, loc_loss_weight: float = 1.0,
                 max_negatives_per_positive: float | None = 3, min_negatives_per_image: int = 3) -> None:
        if loss_type not in LOSS_TYPES:
            raise ValueError(f'loss_type must be one of {LOSS_TYPES}, got {loss_type!r}')
        if num_hard_examples is not None and num_hard_examples < 1:
            raise ValueError(f'num_hard_examples must be >= 1 or None, got {num_hard_examples!r}')
        if not 0 < iou_threshold <= 1:
            raise ValueError(f'iou_threshold must be in (0, 1], got {iou_threshold!r}')
        self.num_hard_examples = num_hard_examples
        self.iou_threshold = iou_threshold
        self.loss_type = loss_type
        self.cls_loss_weight = cls_loss_weight
        self.loc_loss_weight = loc_loss_weight
        self.max_negatives_per_positive = max_negatives_per_positive
        self.min_negatives_per_image = min_negatives_per_image

    def __call__(self, cls_losses: Tensor, loc_losses: Tensor, boxes: Tensor, positive: Tensor,
                 negative: Tensor) -> Tensor:
        """Indices of the selected anchors of one image.

        Args:
            cls_losses, loc_losses: (A,) per-anchor losses.
            boxes: (A, 4) decoded predicted boxes (x1, y1, x2, y2).
            positive, negative: (A,) bool, matched and unmatched anchors (ignored ones are neither).
        """
        if self.loss_type == 'classification':
            scores = cls_losses
        elif self.loss_type == 'loc':
            scores = loc_losses
        else:
            scores = cls_losses * self.cls_loss_weight + loc_losses * self.loc_loss_weight
        _, selected = nms(boxes.detach().float(), scores.detach().float(), self.iou_threshold)
        if self.num_hard_examples is not None:
            selected = selected[:self.num_hard_examples]
        if self.max_negatives_per_positive is None:
            return selected
        is_positive, is_negative = positive[selected], negative[selected]
        max_negatives = max(self.min_negatives_per_image,
                            int(self.max_negatives_per_positive * int(is_positive.sum())))
        within_quota = torch.cumsum(is_negative.long(), 0) <= max_negatives
        return selected[is_positive | within_quota]
