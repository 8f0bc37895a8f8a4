"""Mobile DeepLabv3's decode head (paper Sec. 6.3, Table 7).

Branches on the backbone's last map (layer_18, 320 channels: "MNet V2*"): an image-level branch (global average
pool -> 1x1 conv 256 +BN+ReLU -> upsample) and a 1x1 conv branch (256 +BN+ReLU); with ``with_aspp=True`` also three
regular 3x3 atrous convs (256 each) at rates 6, 12, 18 for output stride 16, doubled at output stride 8. The branches
are concatenated and projected by a **1x1** conv to 256 (+BN+ReLU), then dropout (TF keep-prob 0.9) and a 1x1
classifier with bias. By default the light "no-ASPP" head the paper recommends for mobile (75.32 mIoU, 2.11M params).

MMSegmentation's ``ASPPHead`` builds the same branches but projects with a 3x3 conv (a 2.4x larger head); this
subclass swaps in the paper's 1x1 projection and derives the rates from ``output_stride``. In a config under
``mmmnv2.MobileDeepLabV3`` the head takes ``in_channels`` and ``output_stride`` from the backbone.
"""
from typing import Optional, Sequence

from mmcv.cnn import ConvModule
from mmseg.models.decode_heads import ASPPHead

from mmmnv2.registry import MODELS

ASPP_RATES_AT_OS16 = (6, 12, 18)  # DeepLabv3 atrous rates at output stride 16


@MODELS.register_module()
class MobileDeepLabV3Head(ASPPHead):
    """DeepLabv3 head of the paper's Table 7, an MMSegmentation decode head.

    Args:
        in_channels: Channels of the backbone map (layer_18: 320 at width 1).
        channels: Width of every branch and of the projection (256).
        num_classes: Segmentation classes, 1 or more (PASCAL VOC: 21).
        with_aspp: Add the three 3x3 atrous branches (the paper's "ASPP" column).
        output_stride: Output stride of the backbone map, 8 or 16; sets the atrous rates.
        atrous_rates: Rates at ``output_stride`` 16; scaled by 16 / ``output_stride``.
        dropout_ratio: Dropout before the classifier (TF keep-prob 0.9 -> 0.1).
        **kwargs: Other ``BaseDecodeHead`` arguments (``norm_cfg``, ``align_corners``, ``loss_decode``, ...).
    """

    def __init__(self,
                 in_channels: int,
                 channels: int = 256,
                 num_classes: int = 21,
                 with_aspp: bool = False,
                 output_stride: int = 16,
                 atrous_rates: Sequence[int] = ASPP_RATES_AT_OS16,
                 dropout_ratio: float = 0.1,
                 norm_cfg: Optional[dict] = None,
                 **kwargs) -> None:
        if output_stride not in (8, 16) or isinstance(output_stride, bool):
            raise ValueError(f'output_stride must be 8 or 16, got {output_stride!r}')
        if not isinstance(num_classes, int) or isinstance(num_classes, bool) or num_classes < 1:
            raise ValueError(f'num_classes must be a positive integer, got {num_classes!r}')
        self.with_aspp = with_aspp
        self.output_stride = output_stride
        rates = tuple(rate * 16 // output_stride for rate in atrous_rates) if with_aspp else ()
        norm_cfg = norm_cfg if norm_cfg is not None else dict(type='BN', requires_grad=True)
        super().__init__(dilations=(1,) + rates, in_channels=in_channels, channels=channels,
                         num_classes=num_classes, dropout_ratio=dropout_ratio, norm_cfg=norm_cfg, **kwargs)
        # The paper's projection is a 1x1 conv (MMSegmentation's ASPPHead uses 3x3).
        self.bottleneck = ConvModule((len(self.dilations) + 1) * channels, channels, 1, conv_cfg=self.conv_cfg,
                                     norm_cfg=self.norm_cfg, act_cfg=self.act_cfg)
