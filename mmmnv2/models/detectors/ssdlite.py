"""The SSDLite detector (paper Sec. 6.2): MMDetection's single-stage detector whose parts are checked to fit.

MMDetection configs copy channel lists by hand between backbone, neck and head; a mismatch used to surface as a
shape error deep inside the first forward pass. This detector compares what the backbone and neck report
(``out_channels``) with what the next part expects (``in_channels``) when the model is built.
"""
from typing import Optional

from mmdet.models.detectors import SingleStageDetector

from mmmnv2.models.utils import check_channels
from mmmnv2.registry import MODELS


@MODELS.register_module()
class SSDLite(SingleStageDetector):
    """Single-stage detector with build-time channel checks (same arguments as ``SingleStageDetector``)."""

    def __init__(self,
                 backbone: dict,
                 neck: dict,
                 bbox_head: dict,
                 train_cfg: Optional[dict] = None,
                 test_cfg: Optional[dict] = None,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(backbone=backbone, neck=neck, bbox_head=bbox_head, train_cfg=train_cfg, test_cfg=test_cfg,
                         data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        names = [f.name for f in getattr(self.backbone, 'feature_info', [])] or None
        check_channels('backbone', getattr(self.backbone, 'out_channels', None),
                       'neck', getattr(self.neck, 'in_channels', None), names)
        check_channels('neck', getattr(self.neck, 'out_channels', None),
                       'bbox_head', getattr(self.bbox_head, 'in_channels', None))
