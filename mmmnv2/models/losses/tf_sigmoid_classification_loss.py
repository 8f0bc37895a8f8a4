"""TF Object Detection API's ``weighted_sigmoid`` classification loss with a background class (SSDLite, Sec. 6.2).

``ssdlite_mobilenet_v2_coco.config`` classifies with ``weighted_sigmoid`` over 80 classes + background
(``add_background_class`` true, ``object_detection/core/losses.py`` ``WeightedSigmoidClassificationLoss``): an
independent sigmoid cross-entropy per output against one-hot targets, the background column set for unmatched
anchors, summed over the 81 outputs of an anchor (``ssd_meta_arch.py`` sums the trailing dimension before the hard
example miner). At test time TF converts scores with a sigmoid (``score_converter: SIGMOID``) and drops the
background column.

MMDetection's ``CrossEntropyLoss(use_sigmoid=True)`` has no background output (its one-hot target of a background
anchor is all zeros over the classes), and ``SSDHead`` trains a softmax over classes + background. The layout
here is MMDetection's SSD layout: the background is the *last* output (index ``num_classes``).
"""
import torch.nn.functional as F
from torch import Tensor, nn

from mmmnv2.registry import MODELS


@MODELS.register_module()
class TFSigmoidClassificationLoss(nn.Module):
    """Per-anchor sigmoid cross-entropy over classes + background (background last), summed over the outputs.

    Declares ``custom_cls_channels``: MMDetection's dense heads then take the test-time scores from
    ``get_activation`` (sigmoid, background column dropped) instead of a softmax.

    Args:
        loss_weight: Multiplier of the loss (TF ``classification_weight``, 1.0).
    """

    custom_cls_channels = True
    custom_activation = True
    custom_accuracy = False

    def __init__(self, loss_weight: float = 1.0) -> None:
        super().__init__()
        self.loss_weight = loss_weight

    def get_cls_channels(self, num_classes: int) -> int:
        return num_classes + 1

    def get_activation(self, cls_score: Tensor) -> Tensor:
        return cls_score.sigmoid()[..., :-1]

    def forward(self, cls_score: Tensor, labels: Tensor, weight: Tensor | None = None) -> Tensor:
        """(A,) loss of each anchor: ``cls_score`` (A, C + 1) logits, ``labels`` (A,) in 0..C (C = background)."""
        target = F.one_hot(labels, cls_score.shape[-1]).to(cls_score.dtype)
        loss = F.binary_cross_entropy_with_logits(cls_score, target, reduction='none').sum(-1)
        if weight is not None:
            loss = loss * weight
        return loss * self.loss_weight
