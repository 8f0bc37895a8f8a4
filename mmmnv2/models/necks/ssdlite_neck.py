"""SSDLite's feature pyramid (paper Sec. 6.2; TF ``ssd_mobilenet_v2_feature_extractor``).

The first two maps come straight from the backbone: ``layer_15/expansion_output`` (576 channels, stride 16) and
``layer_19`` (1280, stride 32). Four extra layers follow, each 1x1 conv to depth/2 (+BN+ReLU6) -> 3x3 depthwise
stride 2 (+BN+ReLU6) -> 1x1 conv to depth (+BN+ReLU6), with depths 512, 256, 256, 128 scaled by the width multiplier
and floored at 16 (TF ``min_depth``). That is MMDetection's ``SSDNeck`` with ``use_depthwise=True``, which this class
configures with the paper's values. Departure: the 1x1 depth/2 conv takes half the *scaled* depth, where TF floors
depth/2 itself at 16; the two differ only for width multipliers below 0.25.

``same_padding=True`` pads the stride-2 depthwise convs as TF's 'SAME' (at even sizes 0 before, 1 after: the
official 300x300 model's 10 -> 5 and 2 -> 1 maps), for weights trained in TF; PyTorch's symmetric padding otherwise.
"""
from typing import Optional, Sequence

from mmdet.models.necks import SSDNeck

from mmmnv2.models.layers import same_padding_conv_cfg
from mmmnv2.models.utils import TF_SSD_NORM_CFG
from mmmnv2.registry import MODELS


@MODELS.register_module()
class SSDLiteNeck(SSDNeck):
    """The paper's SSDLite extra layers on top of MobileNetV2's two taps.

    Args:
        in_channels: Channels of the backbone maps, in order (576 and 1280 at width 1); in a config under
            ``mmmnv2.SSDLite``, leave it out: the detector takes it from the backbone.
        extra_depths: Depths of the extra layers before width scaling (TF recipe: 512, 256, 256, 128).
        widen_factor: Width multiplier applied to ``extra_depths``.
        min_depth: Floor of every scaled depth (TF: 16).
        norm_cfg, act_cfg: Layer configs (default TF's: BN with eps 1e-3 and momentum 3e-4, ReLU6).
        same_padding: Pad the stride-2 convs as TF's 'SAME' instead of symmetrically.
        init_cfg: MMEngine initialisation config.
    """

    def __init__(self,
                 in_channels: Sequence[int],
                 extra_depths: Sequence[int] = (512, 256, 256, 128),
                 widen_factor: float = 1.0,
                 min_depth: int = 16,
                 norm_cfg: Optional[dict] = None,
                 act_cfg: Optional[dict] = None,
                 same_padding: bool = False,
                 init_cfg: Optional[dict] = None) -> None:
        if not widen_factor > 0:
            raise ValueError(f'widen_factor must be > 0, got {widen_factor!r}')
        self.in_channels = tuple(in_channels)
        depths = tuple(max(int(depth * widen_factor), min_depth) for depth in extra_depths)
        self.out_channels = self.in_channels + depths
        super().__init__(
            in_channels=self.in_channels,
            out_channels=self.out_channels,
            level_strides=(2,) * len(depths),
            level_paddings=(1,) * len(depths),
            l2_norm_scale=None,
            use_depthwise=True,
            # mmcv's Conv2dAdaptivePadding for every conv of the extra layers: 'SAME' is no padding at 1x1
            conv_cfg=same_padding_conv_cfg() if same_padding else None,
            norm_cfg=norm_cfg if norm_cfg is not None else dict(TF_SSD_NORM_CFG),
            act_cfg=act_cfg if act_cfg is not None else dict(type='ReLU6'),
            init_cfg=init_cfg if init_cfg is not None else dict(type='TruncNormal', layer='Conv2d', std=0.03))
