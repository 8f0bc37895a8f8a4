"""The inverted residual block with a linear bottleneck (paper Sec. 3.3, Fig. 3b, Table 1).

1x1 expansion conv (+BN+ReLU6) -> 3x3 depthwise conv (+BN+ReLU6, stride s, dilation r) -> 1x1 *linear* projection
(+BN, no activation), with a residual connection when the block keeps resolution and width. The t=1 block has no
expansion conv. Module names follow OpenMMLab's MobileNetV2 (``conv.{k}.conv``/``conv.{k}.bn``) so the public
mmcls/mmpretrain ImageNet checkpoint loads without renaming.

``same_padding=True`` pads a stride-2 depthwise conv as TF's 'SAME' does (at even sizes 0 before, 1 after) for
weights trained in TF; at stride 1 'SAME' is PyTorch's symmetric padding, so nothing changes there.
"""
from typing import Optional, Tuple

import torch.utils.checkpoint as cp
from mmcv.cnn import ConvModule
from mmengine.model import BaseModule
from torch import Tensor, nn


def same_padding_conv_cfg(conv_cfg: Optional[dict] = None) -> dict:
    """The conv config of a conv that pads as TF's 'SAME': the host's ``Conv2dAdaptivePadding`` (mmcv).

    It computes the padding from the input size at run time; the size is a constant once a graph is exported at a
    fixed size, so the padding is static there.
    """
    if conv_cfg is not None and conv_cfg.get('type', 'Conv2d') not in ('Conv2d', 'Conv', 'Conv2dAdaptivePadding'):
        raise ValueError(f"same_padding needs plain 2-d convs (conv_cfg None or type 'Conv2d'), got conv_cfg="
                         f"{conv_cfg!r}")
    return dict(conv_cfg or {}, type='Conv2dAdaptivePadding')


class InvertedResidual(BaseModule):
    """Inverted residual block.

    Args:
        in_channels: Input width.
        out_channels: Output width of the linear projection.
        expanded_channels: Width of the expansion (``in_channels * t`` rounded); equal to ``in_channels`` when
            the block has no expansion conv (t=1).
        stride: Stride of the depthwise conv.
        dilation: Dilation (atrous rate) of the depthwise conv.
        conv_cfg, norm_cfg, act_cfg: mmcv layer configs; ``act_cfg`` is used after expansion and depthwise only.
        with_cp: Trade compute for memory with gradient checkpointing.
        same_padding: At stride 2, pad the depthwise conv as TF's 'SAME' instead of symmetrically.
        init_cfg: MMEngine initialisation config.
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 expanded_channels: int,
                 *,
                 stride: int = 1,
                 dilation: int = 1,
                 conv_cfg: Optional[dict] = None,
                 norm_cfg: Optional[dict] = None,
                 act_cfg: Optional[dict] = None,
                 with_cp: bool = False,
                 same_padding: bool = False,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        norm_cfg = norm_cfg if norm_cfg is not None else dict(type='BN')
        act_cfg = act_cfg if act_cfg is not None else dict(type='ReLU6')
        self.with_expansion = expanded_channels != in_channels
        self.use_res_connect = stride == 1 and in_channels == out_channels
        self.with_cp = with_cp
        common = dict(conv_cfg=conv_cfg, norm_cfg=norm_cfg)
        layers = []
        if self.with_expansion:
            layers.append(ConvModule(in_channels, expanded_channels, 1, act_cfg=act_cfg, **common))
        depthwise_conv_cfg = same_padding_conv_cfg(conv_cfg) if same_padding and stride > 1 else conv_cfg
        layers += [
            ConvModule(expanded_channels, expanded_channels, 3, stride=stride, padding=dilation, dilation=dilation,
                       groups=expanded_channels, act_cfg=act_cfg, conv_cfg=depthwise_conv_cfg, norm_cfg=norm_cfg),
            # Linear bottleneck: no non-linearity after the projection (paper Sec. 3.2).
            ConvModule(expanded_channels, out_channels, 1, act_cfg=None, **common),
        ]
        self.conv = nn.Sequential(*layers)

    def _forward(self, x: Tensor) -> Tuple[Tensor, Tensor]:
        expansion = self.conv[0](x) if self.with_expansion else x
        out = expansion
        for layer in self.conv[1 if self.with_expansion else 0:]:
            out = layer(out)
        if self.use_res_connect:
            out = x + out
        return out, expansion

    def forward_with_expansion(self, x: Tensor) -> Tuple[Tensor, Tensor]:
        """Return the block output and its expansion output (TF ``layer_N/expansion_output``)."""
        if self.with_cp and x.requires_grad:
            return cp.checkpoint(self._forward, x, use_reentrant=False)
        return self._forward(x)

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_with_expansion(x)[0]


__all__ = ['InvertedResidual', 'same_padding_conv_cfg']
