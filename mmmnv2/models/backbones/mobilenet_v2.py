"""MobileNetV2 backbone, exactly as in the paper (Sandler et al., CVPR 2018, Table 2).

What is reproduced:
- Table 2 written once as data (``ARCH_SETTINGS``); ReLU6, linear bottlenecks, residuals where the paper has them.
- Width multiplier with the TF-slim rounding rule (multiples of 8, never below 8 nor more than 10% below c*w); the
  last 1x1 conv stays at 1280 for w <= 1 and scales for w > 1 (paper Sec. 6.1).
- Outputs named like TF-slim endpoints: ``'layer_N'`` (N = 1..19, the paper's rows unrolled) and
  ``'layer_N/expansion_output'`` (the ReLU6 output of layer N's 1x1 expansion; ``layer_15/expansion_output`` is
  SSDLite's first tap). The network is built only as deep as the deepest requested output, so stopping at
  ``layer_18`` gives the paper's "MNet V2*" used for segmentation without an unused 1280 conv.
- ``output_stride`` 8/16/32 with TF atrous semantics (TF-slim ``mobilenet.py``: once the target stride is reached,
  the layer that would downsample keeps stride 1 and every later depthwise conv is dilated by the skipped stride).

Where TF differs, as options whose defaults suit PyTorch-trained weights:
- Padding: PyTorch convs pad symmetrically, as every PyTorch MobileNetV2 does. TF pads 'SAME', which at stride 2 on
  an even input size puts the one padding row/column after the image only (0 before, 1 after), so the sampled grid
  shifts by one pixel. ``same_padding=True`` pads the stride-2 convs TF's way (mmcv's ``Conv2dAdaptivePadding``);
  it is needed for TF's weights at even sizes (the ImageNet classifier at 224) and changes nothing at odd sizes such
  as DeepLab's 257 and 513.
- Width rounding: ``divisible_by`` (default 8, TF-slim's rule). TF DeepLab builds MobileNetV2 with
  ``divisible_by=1`` and ``min_depth=1`` for depth multipliers other than 1 (``deeplab/core/feature_extractor.py``,
  ``_mobilenet_v2``), so its depth-multiplier-0.5 models have 12-channel layers 3-4 where rounding to 8 gives 16.
  Expansion widths stay multiples of 8 either way (TF-slim's ``expand_input_by_factor`` always rounds to 8).
- BN: PyTorch's eps/momentum by default; TF's eps 1e-3 through ``norm_cfg=dict(type='BN', eps=1e-3)``.

Module names follow OpenMMLab's MobileNetV2 (``conv1``, ``layer1``..``layer7``, ``conv2``) so the published
mmcls/mmpretrain ImageNet checkpoint loads with ``init_cfg=dict(type='Pretrained', prefix='backbone.', ...)``.
"""
import re
import warnings
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple, Union

from mmcv.cnn import ConvModule
from mmengine.model import BaseModule
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _BatchNorm

from mmmnv2.models.layers import InvertedResidual, same_padding_conv_cfg
from mmmnv2.registry import MODELS

# Paper Table 2, rows 2..8 (TF layer_2 .. layer_18): expansion t, channels c, repeats n, stride of the first s.
ARCH_SETTINGS = (
    # t, c, n, s
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)
STEM_CHANNELS, STEM_STRIDE = 32, 2  # Table 2 row 1: conv2d 3x3, layer_1
HEAD_CHANNELS = 1280  # Table 2 row 9: conv2d 1x1, layer_19
NUM_LAYERS = 1 + sum(n for _, _, n, _ in ARCH_SETTINGS) + 1  # 19
OUTPUT_STRIDES = (8, 16, 32)
EXPANSION_SUFFIX = '/expansion_output'


def make_divisible(value: float, divisor: int = 8, min_value: Optional[int] = None) -> int:
    """Round ``value`` to a multiple of ``divisor``, never below ``min_value`` nor more than 10% below ``value``.

    The TF-slim rule (``mobilenet._make_divisible``) the paper's width multipliers use.
    """
    min_value = divisor if min_value is None else min_value
    rounded = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


class LayerSpec(NamedTuple):
    """One TF ``layer_N`` of the network: where it lives and how it is configured."""
    name: str  # 'layer_N'
    module: str  # attribute path in the backbone: 'conv1', 'layer3.1', 'conv2'
    stage: int  # 0 = conv1, 1..7 = layer1..layer7, 8 = conv2
    in_channels: int
    out_channels: int
    expanded_channels: Optional[int]  # None where the layer has no 1x1 expansion conv
    stride: int  # stride the layer applies (after output-stride rewriting)
    dilation: int  # atrous rate of its 3x3 conv
    output_stride: int  # accumulated stride of its output

    @property
    def conv_modules(self) -> Tuple[str, ...]:
        """Attribute paths of the layer's conv modules (conv + BN), in order: expansion, depthwise, projection."""
        if '.' not in self.module:  # conv1 / conv2: a single conv
            return (self.module,)
        count = 2 if self.expanded_channels is None else 3
        return tuple(f'{self.module}.conv.{k}' for k in range(count))


class FeatureSpec(NamedTuple):
    """What one selected output is: its endpoint name, channels and stride relative to the input."""
    name: str
    channels: int
    stride: int


def layer_specs(widen_factor: float = 1.0, output_stride: int = 32, divisible_by: int = 8) -> List[LayerSpec]:
    """All 19 layers of MobileNetV2 at ``widen_factor``, with TF atrous semantics for ``output_stride``.

    Layer widths are rounded to multiples of ``divisible_by`` (and never below it); expansions to multiples of 8.
    """
    specs = []
    current_stride, rate = 1, 1

    def place(stride: int) -> Tuple[int, int]:
        # TF-slim mobilenet.mobilenet_base: once the target stride is reached, a downsampling layer keeps stride
        # 1 at the current rate, and the rate of every later layer grows by the stride it skipped.
        nonlocal current_stride, rate
        if current_stride == output_stride:
            layer_stride, layer_rate = 1, rate
            rate *= stride
        else:
            layer_stride, layer_rate = stride, 1
            current_stride *= stride
        return layer_stride, layer_rate

    in_channels = make_divisible(STEM_CHANNELS * widen_factor, divisible_by)
    specs.append(LayerSpec('layer_1', 'conv1', 0, 3, in_channels, None, *place(STEM_STRIDE), current_stride))
    for stage, (t, c, n, s) in enumerate(ARCH_SETTINGS, start=1):
        out_channels = make_divisible(c * widen_factor, divisible_by)
        for j in range(n):
            expanded = make_divisible(in_channels * t) if t != 1 else None
            stride, dilation = place(s if j == 0 else 1)
            specs.append(LayerSpec(f'layer_{len(specs) + 1}', f'layer{stage}.{j}', stage, in_channels, out_channels,
                                   expanded, stride, dilation, current_stride))
            in_channels = out_channels
    # Paper Sec. 6.1: the last conv is not thinned for multipliers below one.
    head_channels = HEAD_CHANNELS if widen_factor <= 1.0 else make_divisible(HEAD_CHANNELS * widen_factor, divisible_by)
    specs.append(LayerSpec(f'layer_{NUM_LAYERS}', 'conv2', len(ARCH_SETTINGS) + 1, in_channels, head_channels, None,
                           *place(1), current_stride))
    return specs


Endpoint = Union[int, str]
_ENDPOINT_RE = re.compile(r'^layer_(\d+)(/expansion_output)?$')


@MODELS.register_module()
class MobileNetV2(BaseModule):
    """MobileNetV2 backbone (paper Table 2) with TF-style endpoints and output stride.

    Args:
        widen_factor: Width multiplier (paper: 0.35 .. 1.4).
        out_endpoints: Outputs to return, in this order. Each is ``'layer_N'`` (N = 1..19, the paper's rows
            unrolled as in TF-slim), an integer N (same as ``'layer_N'``), or ``'layer_N/expansion_output'`` (N = 3..18,
            layers with an expansion conv). The default is the usual 4-level pyramid: strides 4, 8, 16, 32 with 24,
            32, 96 and 1280 channels at w=1. The network is built only up to the deepest requested layer.
        output_stride: 8, 16 or 32: the stride of the last layer, with dilated depthwise convs after it.
        frozen_stages: Freeze ``conv1`` (0) and ``layer1`` .. ``layer{frozen_stages}``; -1 freezes nothing.
        norm_eval: Keep BN layers in eval mode (frozen statistics) while training.
        zero_init_residual: Start every residual block as the identity (zero scale in the BN after its linear
            projection), as for ResNets trained from scratch; not applied when ``init_cfg`` loads pretrained weights.
        with_cp: Gradient checkpointing in the inverted residual blocks.
        divisible_by: Layer widths are rounded to multiples of this (TF-slim: 8; TF DeepLab: 1 for width
            multipliers other than 1).
        same_padding: Pad the stride-2 convs as TF's 'SAME' (at even input sizes 0 before, 1 after) instead of
            PyTorch's symmetric padding; for weights trained in TF.
        conv_cfg, norm_cfg, act_cfg: mmcv layer configs (default: Conv2d, BN, ReLU6); ``norm_cfg=dict(type='BN',
            eps=1e-3)`` is TF's BN.
        init_cfg: MMEngine initialisation config; use ``dict(type='Pretrained', checkpoint=..., prefix='backbone.')``
            for OpenMMLab's ImageNet checkpoint.
        pretrained: Deprecated, as in the hosts' backbones (MMSegmentation's ``EncoderDecoder`` passes its
            ``model.pretrained`` here): a checkpoint path or URL, taken as
            ``init_cfg=dict(type='Pretrained', checkpoint=pretrained)`` with a DeprecationWarning.
    """

    def __init__(self,
                 widen_factor: float = 1.0,
                 out_endpoints: Sequence[Endpoint] = ('layer_4', 'layer_7', 'layer_14', 'layer_19'),
                 output_stride: int = 32,
                 frozen_stages: int = -1,
                 norm_eval: bool = False,
                 zero_init_residual: bool = False,
                 with_cp: bool = False,
                 divisible_by: int = 8,
                 same_padding: bool = False,
                 conv_cfg: Optional[dict] = None,
                 norm_cfg: Optional[dict] = None,
                 act_cfg: Optional[dict] = None,
                 init_cfg: Optional[Union[dict, List[dict]]] = None,
                 pretrained: Optional[str] = None) -> None:
        if pretrained is not None:
            if not isinstance(pretrained, str):
                raise TypeError(f'pretrained must be a checkpoint path or URL (str) or None, got {pretrained!r}')
            if init_cfg is not None:
                raise ValueError('pretrained and init_cfg cannot both be set; set only init_cfg=dict('
                                 f"type='Pretrained', checkpoint={pretrained!r}) (with prefix='backbone.' for an "
                                 'ImageNet classifier checkpoint)')
            warnings.warn('DeprecationWarning: pretrained is deprecated, please use init_cfg=dict(type='
                          f"'Pretrained', checkpoint={pretrained!r}) instead (prefix='backbone.' for an ImageNet "
                          'classifier checkpoint)', DeprecationWarning, stacklevel=2)
            init_cfg = dict(type='Pretrained', checkpoint=pretrained)
        if init_cfg is None:
            init_cfg = [dict(type='Kaiming', layer=['Conv2d']),
                        dict(type='Constant', val=1, layer=['_BatchNorm', 'GroupNorm'])]
        super().__init__(init_cfg=init_cfg)
        if isinstance(widen_factor, bool) or not isinstance(widen_factor, (int, float)):
            raise TypeError(f'widen_factor must be a number > 0, got {widen_factor!r}')
        if not widen_factor > 0:
            raise ValueError(f'widen_factor must be > 0 (the paper uses 0.35 .. 1.4), got {widen_factor!r}')
        if output_stride not in OUTPUT_STRIDES:
            raise ValueError(f'output_stride must be one of {OUTPUT_STRIDES}, got {output_stride!r}')
        if isinstance(divisible_by, bool) or not isinstance(divisible_by, int) or divisible_by < 1:
            raise ValueError(f'divisible_by must be an integer >= 1 (TF-slim: 8, TF DeepLab below width 1: 1), '
                             f'got {divisible_by!r}')
        self.widen_factor = widen_factor
        self.output_stride = output_stride
        self.divisible_by = divisible_by
        self.same_padding = same_padding
        self.out_endpoints = self._parse_endpoints(out_endpoints)
        depth = max(int(_ENDPOINT_RE.match(name).group(1)) for name in self.out_endpoints)
        self.layer_specs = layer_specs(widen_factor, output_stride, divisible_by)[:depth]
        num_stages = self.layer_specs[-1].stage
        if not isinstance(frozen_stages, int) or not -1 <= frozen_stages <= min(num_stages, len(ARCH_SETTINGS)):
            raise ValueError(f'frozen_stages must be an integer in [-1, {min(num_stages, len(ARCH_SETTINGS))}] '
                             f'for this network (-1: none, 0: conv1, k: conv1 and layer1..layer{{k}}), '
                             f'got {frozen_stages!r}')
        self.frozen_stages = frozen_stages
        self.norm_eval = norm_eval
        self.zero_init_residual = zero_init_residual
        self.with_cp = with_cp

        norm_cfg = norm_cfg if norm_cfg is not None else dict(type='BN', requires_grad=True)
        act_cfg = act_cfg if act_cfg is not None else dict(type='ReLU6')
        layer_cfg = dict(conv_cfg=conv_cfg, norm_cfg=norm_cfg, act_cfg=act_cfg)
        stem = self.layer_specs[0]
        stem_conv_cfg = same_padding_conv_cfg(conv_cfg) if same_padding else conv_cfg  # the stem has stride 2
        self.conv1 = ConvModule(3, stem.out_channels, 3, stride=stem.stride, padding=1,
                                **dict(layer_cfg, conv_cfg=stem_conv_cfg))
        for stage in range(1, min(num_stages, len(ARCH_SETTINGS)) + 1):
            blocks = [InvertedResidual(s.in_channels, s.out_channels, s.expanded_channels or s.in_channels,
                                       stride=s.stride, dilation=s.dilation, with_cp=with_cp,
                                       same_padding=same_padding, **layer_cfg)
                      for s in self.layer_specs if s.stage == stage]
            self.add_module(f'layer{stage}', nn.Sequential(*blocks))
        if depth == NUM_LAYERS:
            head = self.layer_specs[-1]
            self.conv2 = ConvModule(head.in_channels, head.out_channels, 1, **layer_cfg)
        self._freeze_stages()

    @staticmethod
    def _parse_endpoints(out_endpoints: Sequence[Endpoint]) -> Tuple[str, ...]:
        allowed = (f"integers 1..{NUM_LAYERS}, 'layer_1'..'layer_{NUM_LAYERS}', "
                   f"'layer_3{EXPANSION_SUFFIX}'..'layer_{NUM_LAYERS - 1}{EXPANSION_SUFFIX}'")
        if isinstance(out_endpoints, (str, int)) or not out_endpoints:
            raise ValueError(f'out_endpoints must be a non-empty sequence of {allowed}; got {out_endpoints!r}')
        names = []
        for endpoint in out_endpoints:
            name = f'layer_{endpoint}' if isinstance(endpoint, int) and not isinstance(endpoint, bool) else endpoint
            match = _ENDPOINT_RE.match(name) if isinstance(name, str) else None
            index = int(match.group(1)) if match else 0
            expansion = bool(match and match.group(2))
            # layer_1, layer_2 (t=1) and layer_19 have no expansion conv.
            valid = 1 <= index <= NUM_LAYERS and (not expansion or 3 <= index <= NUM_LAYERS - 1)
            if not valid:
                raise ValueError(f'out_endpoints: unknown endpoint {endpoint!r}; allowed: {allowed}')
            if name in names:
                raise ValueError(f'out_endpoints: {name!r} is requested twice')
            names.append(name)
        return tuple(names)

    @property
    def feature_info(self) -> List[FeatureSpec]:
        """Channels and stride of every output, in ``out_endpoints`` order."""
        by_name = {s.name: s for s in self.layer_specs}
        info = []
        for name in self.out_endpoints:
            layer, _, _ = name.partition('/')
            spec = by_name[layer]
            if name.endswith(EXPANSION_SUFFIX):
                # The expansion precedes the layer's depthwise conv: it is at the stride of the layer's input.
                info.append(FeatureSpec(name, spec.expanded_channels, spec.output_stride // spec.stride))
            else:
                info.append(FeatureSpec(name, spec.out_channels, spec.output_stride))
        return info

    @property
    def out_channels(self) -> Tuple[int, ...]:
        return tuple(f.channels for f in self.feature_info)

    @property
    def out_strides(self) -> Tuple[int, ...]:
        return tuple(f.stride for f in self.feature_info)

    def forward(self, x: Tensor) -> Tuple[Tensor, ...]:
        wanted = set(self.out_endpoints)
        found: Dict[str, Tensor] = {}
        for spec in self.layer_specs:
            layer = self.get_submodule(spec.module)
            expansion_name = spec.name + EXPANSION_SUFFIX
            if expansion_name in wanted:
                x, found[expansion_name] = layer.forward_with_expansion(x)
            else:
                x = layer(x)
            if spec.name in wanted:
                found[spec.name] = x
        return tuple(found[name] for name in self.out_endpoints)

    def init_weights(self) -> None:
        super().init_weights()
        pretrained = isinstance(self.init_cfg, dict) and self.init_cfg.get('type') == 'Pretrained'
        if self.zero_init_residual and not pretrained:
            for module in self.modules():
                if isinstance(module, InvertedResidual) and module.use_res_connect:
                    nn.init.zeros_(module.conv[-1].bn.weight)

    def _frozen_modules(self) -> List[nn.Module]:
        if self.frozen_stages < 0:
            return []
        return [self.conv1] + [getattr(self, f'layer{i}') for i in range(1, self.frozen_stages + 1)]

    def _freeze_stages(self) -> None:
        for module in self._frozen_modules():
            module.eval()
            for param in module.parameters():
                param.requires_grad = False

    def train(self, mode: bool = True) -> 'MobileNetV2':
        super().train(mode)
        self._freeze_stages()
        if mode and self.norm_eval:
            for module in self.modules():
                if isinstance(module, _BatchNorm):
                    module.eval()
        return self
