"""SSDLite's prediction layers (paper Sec. 6.2, Table 5): SSD with depthwise-separable predictors.

On each of the six maps, a 3x3 depthwise conv (+BN+ReLU6) then a 1x1 conv with bias, once for class scores and once
for box deltas. That is MMDetection's ``SSDHead`` with ``use_depthwise=True``; this class sets the paper's defaults:
the TF Object Detection API anchors (``SSDLiteAnchorGenerator``: 3 boxes on the first map, 6 elsewhere), box coder
stds (0.1, 0.1, 0.2, 0.2) (TF scales 10, 10, 5, 5), BN eps 1e-3 and momentum 3e-4 (TF decay 0.9997), ReLU6.

Training: IoU-0.5 matching with each ground truth forced to its best anchor (from ``train_cfg``), smooth-L1 box
loss, both losses summed over the selected anchors and divided by the number of matches in the batch (TF
``normalize_loss_by_num_matches``, at least 1). Two recipes, chosen by ``loss_cls`` and ``hard_example_miner``:

- TF's (``ssdlite_mobilenet_v2_coco.config``): ``loss_cls=dict(type='mmmnv2.TFSigmoidClassificationLoss')`` (a
  sigmoid per output, background included) and ``hard_example_miner=dict(type='mmmnv2.TFHardExampleMiner')`` (NMS
  over the anchors ranked by loss, 3 negatives per positive, at least 3 per image); the scores at test time are
  sigmoids;
- MMDetection's (the default): softmax cross-entropy over classes + background and its top-k negatives
  (``train_cfg.neg_pos_ratio``); softmax scores at test time.

Post-processing: TF's settings (score threshold 1e-8, no cap before NMS, class-wise NMS, 100 in all) put every
anchor of every class into MMDetection's ``batched_nms``: 1917 x 80 boxes, seconds per image on a CPU. Greedy NMS
decides a box by the higher-scored boxes of its class alone, so NMS of the highest-scored boxes (a prefix in score
order) keeps exactly the boxes NMS of all keeps within that prefix; once the prefix holds ``max_per_img`` kept boxes
these are the final ones. Without a cap before NMS (``nms_pre`` at least every pair of a level), the head scores
every (anchor, class) pair, decodes only the 1000 best and runs MMDetection's own ``_bbox_post_process`` on them,
then on 4x as many until ``max_per_img`` are kept: the same detections as NMS of every pair, as TF's per-class NMS
stops after 100 kept boxes. With a cap (MMDetection's protocol), MMDetection's computation runs unchanged.

Fix: MMDetection 3.3.0's ``BaseDenseHead._predict_by_feat_single`` reads ``self.loss_cls`` (for custom class
channels), which ``SSDHead`` never defines, so validation crashed with ``'SSDHead' object has no attribute
'loss_cls'``. This head declares the loss it trains with as ``loss_cls``.
"""
import copy
from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmdet.models.dense_heads import SSDHead
from mmdet.models.losses import smooth_l1_loss
from mmdet.registry import MODELS as MMDET_MODELS
from mmdet.registry import TASK_UTILS as MMDET_TASK_UTILS
from mmengine.config import ConfigDict
from mmengine.structures import InstanceData
from torch import Tensor

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
        loss_cls: Classification loss: softmax ``CrossEntropyLoss`` (MMDetection's SSD, the default) or
            ``mmmnv2.TFSigmoidClassificationLoss`` (TF's).
        hard_example_miner: ``mmmnv2.TFHardExampleMiner`` config to select the anchors as TF does; None keeps
            MMDetection's top-k negatives (``train_cfg.neg_pos_ratio``).
        train_cfg, test_cfg, init_cfg: As for MMDetection's ``SSDHead``.
    """

    def __init__(self,
                 num_classes: int = 80,
                 in_channels: Optional[Sequence[int]] = None,
                 anchor_generator: Optional[dict] = None,
                 bbox_coder: Optional[dict] = None,
                 norm_cfg: Optional[dict] = None,
                 act_cfg: Optional[dict] = None,
                 loss_cls: Optional[dict] = None,
                 hard_example_miner: Optional[dict] = None,
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
        self.loss_cls = MMDET_MODELS.build(loss_cls if loss_cls is not None else dict(
            type='CrossEntropyLoss', use_sigmoid=False))
        self.hard_example_miner = (MMDET_TASK_UTILS.build(hard_example_miner) if hard_example_miner is not None
                                   else None)
        self.nms_prefix = 1000  # (anchor, class) pairs the first NMS round of the uncapped predictions takes
        self.tf_loss = self.hard_example_miner is not None or getattr(self.loss_cls, 'custom_cls_channels', False)

    def loss_by_feat_single(self, cls_score: Tensor, bbox_pred: Tensor, anchor: Tensor, labels: Tensor,
                            label_weights: Tensor, bbox_targets: Tensor, bbox_weights: Tensor,
                            avg_factor: int) -> Tuple[Tensor, Tensor]:
        """Losses of one image over all its anchors: (classification (1,), box regression).

        MMDetection's computation unless ``loss_cls`` or ``hard_example_miner`` asks for TF's (see the module).
        """
        if not self.tf_loss:
            return super().loss_by_feat_single(cls_score, bbox_pred, anchor, labels, label_weights, bbox_targets,
                                               bbox_weights, avg_factor)
        if getattr(self.loss_cls, 'custom_cls_channels', False):
            cls_losses = self.loss_cls(cls_score, labels, label_weights)
        else:
            cls_losses = F.cross_entropy(cls_score, labels, reduction='none') * label_weights
        loc_losses = smooth_l1_loss(bbox_pred, bbox_targets, bbox_weights, beta=self.train_cfg['smoothl1_beta'],
                                    reduction='none').sum(-1)
        positive = (labels >= 0) & (labels < self.num_classes)
        negative = (labels == self.num_classes) & (label_weights > 0)
        if self.hard_example_miner is not None:
            boxes = self.bbox_coder.decode(anchor, bbox_pred.detach())
            selected = self.hard_example_miner(cls_losses.detach(), loc_losses.detach(), boxes, positive, negative)
        else:  # MMDetection's choice: every positive and the neg_pos_ratio x as many negatives of highest loss
            num_negatives = min(int(self.train_cfg['neg_pos_ratio'] * int(positive.sum())), int(negative.sum()))
            hardest = cls_losses.detach().masked_fill(~negative, -1).topk(num_negatives).indices
            selected = torch.cat([positive.nonzero().view(-1), hardest])
        normaliser = max(float(avg_factor), 1.0)  # TF: number of matches in the batch, at least 1
        return cls_losses[selected].sum()[None] / normaliser, loc_losses[selected].sum() / normaliser

    def _class_scores(self, cls_score: Tensor) -> Tensor:
        """(anchors, classes) scores of one level's (A * channels, H, W) map, as MMDetection's predictions take them."""
        cls_score = cls_score.permute(1, 2, 0).reshape(-1, self.cls_out_channels)
        if getattr(self.loss_cls, 'custom_cls_channels', False):
            return self.loss_cls.get_activation(cls_score)
        return cls_score.sigmoid() if self.use_sigmoid_cls else cls_score.softmax(-1)[:, :-1]

    def _predict_by_feat_single(self, cls_score_list: List[Tensor], bbox_pred_list: List[Tensor],
                                score_factor_list: List[Optional[Tensor]], mlvl_priors: List[Tensor],
                                img_meta: dict, cfg: Optional[ConfigDict] = None, rescale: bool = False,
                                with_nms: bool = True) -> InstanceData:
        """MMDetection's predictions of one image; without a cap before NMS (TF's settings), computed on the fewest
        highest-scored (anchor, class) pairs that decide them (see the module)."""
        cfg = self.test_cfg if cfg is None else cfg
        max_per_img = cfg.get('max_per_img', -1)
        pairs_per_level = max(len(priors) for priors in mlvl_priors) * self.num_classes
        if (not with_nms or max_per_img is None or max_per_img <= 0 or cfg.get('nms_pre', -1) < pairs_per_level
                or score_factor_list[0] is not None):
            return super()._predict_by_feat_single(cls_score_list, bbox_pred_list, score_factor_list, mlvl_priors,
                                                   img_meta, cfg, rescale, with_nms)
        scores = torch.cat([self._class_scores(cls_score) for cls_score in cls_score_list]).flatten()
        bbox_preds = torch.cat([pred.permute(1, 2, 0).reshape(-1, self.bbox_coder.encode_size)
                                for pred in bbox_pred_list])
        priors = torch.cat(mlvl_priors)
        candidates = int((scores > cfg.get('score_thr', 0)).sum())  # filter_scores_and_topk's threshold
        size = min(self.nms_prefix, candidates)
        while True:
            top_scores, pairs = scores.topk(size)
            anchors = pairs // self.num_classes
            results = InstanceData(
                bboxes=self.bbox_coder.decode(priors[anchors], bbox_preds[anchors], max_shape=img_meta['img_shape']),
                scores=top_scores, labels=pairs % self.num_classes)
            kept = self._bbox_post_process(results, copy.deepcopy(cfg), rescale, with_nms, img_meta)
            if len(kept) >= max_per_img or size >= candidates:
                return kept
            size = min(size * 4, candidates)
