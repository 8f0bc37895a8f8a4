"""SSDLite's prediction layers (paper Sec. 6.2, Table 5): SSD with depthwise-separable predictors.

On each of the six maps, a 3x3 depthwise conv (+BN+ReLU6) then a 1x1 conv with bias, once for class scores and once
for box deltas. That is MMDetection's ``SSDHead`` with ``use_depthwise=True``; this class sets the paper's defaults:
the TF Object Detection API anchors (``SSDLiteAnchorGenerator``: 3 boxes on the first map, 6 elsewhere), box coder
stds (0.1, 0.1, 0.2, 0.2) (TF scales 10, 10, 5, 5), BN eps 1e-3 and momentum 3e-4 (TF decay 0.9997), ReLU6.

Training uses ``SSDHead``'s loss: IoU-0.5 matching with each ground truth forced to its best anchor (from
``train_cfg``), hard negative mining at 3 negatives per positive, smooth-L1 box loss, normalised by the number of
matches. Departure: classification is softmax cross-entropy over 80 classes + background (MMDetection's SSD loss);
the TF recipe uses a sigmoid per class with the same 81 outputs.

Fix: MMDetection 3.3.0's ``BaseDenseHead._predict_by_feat_single`` reads ``self.loss_cls`` (for custom class
channels), which ``SSDHead`` never defines, so validation crashed with ``'SSDHead' object has no attribute
'loss_cls'``. This head declares the cross-entropy it trains with as ``loss_cls``.
"""
from typing import Optional, Sequence

from mmdet.models.dense_heads import SSDHead
from mmdet.registry import MODELS as MMDET_MODELS

from mmmnv2.models.utils import TF_SSD_NORM_CFG
from mmmnv2.registry import MODELS


@MODELS.register_module()
class SSDLiteHead(SSDHead):
    """SSDLite head with the paper's prediction layers and TF anchors.

    Args:
        num_classes: Object classes, background excluded (COCO: 80).
        in_channels: Channels of the six input maps (SSDLiteNeck at width 1: 576, 1280, 512, 256, 256, 128); in a
            config under ``mmmnv2.SSDLite``, leave it out: the detector takes it from the neck.
        anchor_generator: Prior generator config; TF's SSD anchors at 320x320 by default.
        bbox_coder: Box coder config; centre/size deltas with TF's scales by default.
        norm_cfg, act_cfg: Layer configs of the depthwise convs.
        train_cfg, test_cfg, init_cfg: As for MMDetection's ``SSDHead``.
    """

    def __init__(self,
                 num_classes: int = 80,
                 in_channels: Optional[Sequence[int]] = None,
                 anchor_generator: Optional[dict] = None,
                 bbox_coder: Optional[dict] = None,
                 norm_cfg: Optional[dict] = None,
                 act_cfg: Optional[dict] = None,
                 train_cfg: Optional[dict] = None,
                 test_cfg: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        if not isinstance(num_classes, int) or num_classes < 1:
            raise ValueError(f'num_classes must be a positive integer, got {num_classes!r}')
        if in_channels is None:
            raise ValueError('in_channels is needed: the channels of the six input maps (under mmmnv2.SSDLite, the '
                             'detector sets them from the neck)')
        super().__init__(
            num_classes=num_classes,
            in_channels=tuple(in_channels),
            stacked_convs=0,
            use_depthwise=True,
            norm_cfg=norm_cfg if norm_cfg is not None else dict(TF_SSD_NORM_CFG),
            act_cfg=act_cfg if act_cfg is not None else dict(type='ReLU6'),
            anchor_generator=anchor_generator if anchor_generator is not None else dict(
                type='mmmnv2.SSDLiteAnchorGenerator', input_size=320),
            bbox_coder=bbox_coder if bbox_coder is not None else dict(
                type='DeltaXYWHBBoxCoder', target_means=[0., 0., 0., 0.], target_stds=[0.1, 0.1, 0.2, 0.2]),
            train_cfg=train_cfg,
            test_cfg=test_cfg,
            init_cfg=init_cfg if init_cfg is not None else dict(type='Normal', layer='Conv2d', std=0.001))
        if len(self.in_channels) != self.prior_generator.num_levels:
            raise ValueError(f'in_channels has {len(self.in_channels)} maps but the anchor generator has '
                             f'{self.prior_generator.num_levels} levels')
        self.loss_cls = MMDET_MODELS.build(dict(type='CrossEntropyLoss', use_sigmoid=False))
