"""The SSDLite detector (paper Sec. 6.2): MMDetection's single-stage detector whose parts take their channels in turn.

MMDetection configs copy channel lists by hand from backbone to neck to head, and a mismatch surfaces as a shape
error deep inside the first forward pass. Here, as torchvision's SSDLite builder does with
``retrieve_out_channels``, the neck takes its ``in_channels`` from what the backbone reports (``out_channels``, from
its ``feature_info``) and the head from the neck, when the config leaves them out; channels a config does give are
checked when the model is built, with the config keys named.
"""
from typing import Optional

from mmdet.models.detectors import SingleStageDetector
from mmdet.models.detectors.base import BaseDetector
from mmdet.registry import MODELS as MMDET_MODELS

from mmmnv2.models.utils import check_channels, with_in_channels
from mmmnv2.registry import MODELS


@MODELS.register_module()
class SSDLite(SingleStageDetector):
    """Single-stage detector whose neck and head channels follow from the backbone (``SingleStageDetector``'s args).

    The parts are built as ``SingleStageDetector`` builds them, one after the other, so that each can take the
    channels of the one before.
    """

    def __init__(self,
                 backbone: dict,
                 neck: dict,
                 bbox_head: dict,
                 train_cfg: Optional[dict] = None,
                 test_cfg: Optional[dict] = None,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        BaseDetector.__init__(self, data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.backbone = MMDET_MODELS.build(backbone)
        backbone_channels = getattr(self.backbone, 'out_channels', None)
        self.neck = MMDET_MODELS.build(with_in_channels(neck, backbone_channels))
        names = [f.name for f in getattr(self.backbone, 'feature_info', [])] or None
        check_channels('model.backbone', backbone_channels, 'model.neck.in_channels',
                       getattr(self.neck, 'in_channels', None), names)
        neck_channels = getattr(self.neck, 'out_channels', None)
        self.bbox_head = MMDET_MODELS.build(
            dict(with_in_channels(bbox_head, neck_channels), train_cfg=train_cfg, test_cfg=test_cfg))
        check_channels('model.neck', neck_channels, 'model.bbox_head.in_channels',
                       getattr(self.bbox_head, 'in_channels', None))
        self.train_cfg = train_cfg
        self.test_cfg = test_cfg
