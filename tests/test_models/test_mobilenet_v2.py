"""MobileNetV2 backbone: the paper's numbers, strides, parity with the hosts' implementations, training knobs."""
import re

import pytest
import torch
from torch import nn

from mmmnv2.analysis import count_macs, count_parameters
from mmmnv2.converters import MobileNetV2Classifier
from mmmnv2.models.backbones import MobileNetV2
from mmmnv2.models.backbones.mobilenet_v2 import layer_specs, make_divisible

ALL_LAYERS = tuple(f'layer_{n}' for n in range(1, 20))
ALL_EXPANSIONS = tuple(f'layer_{n}/expansion_output' for n in range(3, 19))


def test_parameter_counts_match_an_independent_count():
    # Table 2 at w=1.0, BN parameters included, counted by an independent rebuild (and torchvision's features).
    assert count_parameters(MobileNetV2()) == 2_223_872
    assert count_parameters(MobileNetV2(out_endpoints=('layer_18',))) == 1_811_712
    # The whole classifier of Table 4 (3.4M): the backbone, pooling and a 1000-class linear layer.
    assert count_parameters(MobileNetV2Classifier(num_classes=1000)) == 3_504_872


def test_multiply_adds_match_paper_table4():
    backbone = MobileNetV2(out_endpoints=('layer_19',)).eval()
    fc = nn.Linear(1280, 1000)

    def classify():
        features = backbone(torch.zeros(1, 3, 224, 224))[0]
        return fc(features.mean((2, 3)))

    macs = count_macs(nn.ModuleList([backbone, fc]), classify)
    assert macs == pytest.approx(300e6, rel=0.01)  # paper Table 4: 300M at 224x224


@pytest.mark.parametrize('widen_factor,channels', [
    # Table 2's c (32, 16, 24, 32, 64, 96, 160, 320, 1280) through the TF rounding rule, worked by hand.
    (0.35, (16, 8, 8, 16, 24, 32, 56, 112, 1280)),
    (0.5, (16, 8, 16, 16, 32, 48, 80, 160, 1280)),
    (0.75, (24, 16, 24, 24, 48, 72, 120, 240, 1280)),
    (1.0, (32, 16, 24, 32, 64, 96, 160, 320, 1280)),
    (1.4, (48, 24, 32, 48, 88, 136, 224, 448, 1792)),
])
def test_width_multiplier_follows_tf_rounding(widen_factor, channels):
    model = MobileNetV2(widen_factor=widen_factor, out_endpoints=('layer_1', 2, 4, 7, 11, 14, 17, 18, 19))
    assert model.out_channels == channels
    # Expansion widths are multiples of 8, and what the conv modules really have.
    for spec in model.layer_specs:
        if spec.expanded_channels:
            assert spec.expanded_channels % 8 == 0
            assert model.get_submodule(spec.module).conv[0].conv.out_channels == spec.expanded_channels


def test_make_divisible_rule():
    assert make_divisible(5.6) == 8  # never below 8
    assert make_divisible(11.2) == 16  # never more than 10% below: 8 < 0.9 * 11.2
    assert make_divisible(33.6) == 32
    assert make_divisible(37.0) == 40


@pytest.mark.parametrize('output_stride', [8, 16, 32])
def test_every_output_has_the_channels_and_stride_it_reports(output_stride):
    model = MobileNetV2(out_endpoints=ALL_LAYERS + ALL_EXPANSIONS, output_stride=output_stride).eval()
    size = 64
    with torch.no_grad():
        outs = model(torch.rand(1, 3, size, size))
    assert len(outs) == len(model.feature_info) == 19 + 16
    for out, info in zip(outs, model.feature_info):
        assert out.shape[1] == info.channels, info
        assert size // out.shape[-1] == info.stride, info
        assert info.stride <= output_stride
    assert model.feature_info[ALL_LAYERS.index('layer_19')].stride == output_stride
    # SSDLite's tap (paper Sec. 6.2): layer_15's expansion, 96 * 6 = 576 channels, at stride 16.
    tap = model.feature_info[19 + ALL_EXPANSIONS.index('layer_15/expansion_output')]
    assert (tap.channels, tap.stride) == (576, min(16, output_stride))


def _measured_pattern(model):
    """(stride, dilation) of each layer's spatial conv (the 3x3; layer_19's 1x1), read from the modules themselves."""
    pattern = []
    for spec in model.layer_specs:
        convs = [m for m in model.get_submodule(spec.module).modules() if isinstance(m, nn.Conv2d)]
        spatial = [c for c in convs if c.kernel_size != (1, 1)] or convs
        pattern.append((spatial[0].stride[0], spatial[0].dilation[0]))
    return pattern


@pytest.mark.parametrize('output_stride,pattern', [
    # TF-slim mobilenet.py's output_stride semantics (stride, rate) for layer_1 .. layer_19: once the target stride
    # is reached, a downsampling layer gets stride 1 and every later layer's rate is multiplied by that stride.
    (16, [(2, 1), (1, 1), (2, 1), (1, 1), (2, 1), (1, 1), (1, 1), (2, 1), (1, 1), (1, 1), (1, 1), (1, 1), (1, 1),
          (1, 1), (1, 1), (1, 2), (1, 2), (1, 2), (1, 2)]),
    (8, [(2, 1), (1, 1), (2, 1), (1, 1), (2, 1), (1, 1), (1, 1), (1, 1), (1, 2), (1, 2), (1, 2), (1, 2), (1, 2),
         (1, 2), (1, 2), (1, 4), (1, 4), (1, 4), (1, 4)]),
    (32, [(2, 1), (1, 1), (2, 1), (1, 1), (2, 1), (1, 1), (1, 1), (2, 1), (1, 1), (1, 1), (1, 1), (1, 1), (1, 1),
          (1, 1), (2, 1), (1, 1), (1, 1), (1, 1), (1, 1)]),
])
def test_stride_and_rate_pattern(output_stride, pattern):
    model = MobileNetV2(out_endpoints=('layer_19',), output_stride=output_stride)
    assert [(s.stride, s.dilation) for s in model.layer_specs] == pattern
    measured = _measured_pattern(model)
    assert measured[:-1] == pattern[:-1]  # layer_1 .. layer_18: the 3x3 convs' strides and dilations
    # layer_19 is a 1x1 conv: TF-slim still passes it the rate, which has no effect on a 1x1 kernel.
    assert model.conv2.conv.kernel_size == (1, 1) and measured[-1] == (pattern[-1][0], 1)
    assert [s.stride for s in layer_specs(output_stride=output_stride)] == [p[0] for p in pattern]


def _host_backbone(host, out_indices):
    if host == 'mmdet':
        from mmdet.models.backbones import MobileNetV2 as HostMobileNetV2
    else:
        from mmseg.models.backbones import MobileNetV2 as HostMobileNetV2
    return HostMobileNetV2(out_indices=out_indices)


def _mmdet_to_mmcls_layout(state):
    """mmdet's InvertedResidual names its convs expand_conv / depthwise_conv / linear_conv; mmcls (and ours) index
    them in a Sequential, starting after the expansion when the block has none (t=1)."""
    pattern = re.compile(r'^(layer\d+\.\d+)\.(expand_conv|depthwise_conv|linear_conv)\.(.*)$')
    renamed = {}
    for key, value in state.items():
        match = pattern.match(key)
        if match:
            block, name, rest = match.groups()
            index = ('expand_conv', 'depthwise_conv', 'linear_conv').index(name)
            if f'{block}.expand_conv.conv.weight' not in state:
                index -= 1
            key = f'{block}.conv.{index}.{rest}'
        renamed[key] = value
    return renamed


@pytest.mark.parametrize('host,out_indices,endpoints', [
    # mmdet counts stages 0..7 with the 1280 conv as 7; mmseg 0..6 without it. Same parameter layout as mmcls.
    ('mmdet', (0, 1, 2, 3, 4, 5, 6, 7), ('layer_2', 'layer_4', 'layer_7', 'layer_11', 'layer_14', 'layer_17',
                                         'layer_18', 'layer_19')),
    ('mmseg', (0, 1, 2, 3, 4, 5, 6), ('layer_2', 'layer_4', 'layer_7', 'layer_11', 'layer_14', 'layer_17',
                                      'layer_18')),
])
def test_numerical_parity_with_host_mobilenet_v2(host, out_indices, endpoints):
    torch.manual_seed(0)
    reference = _host_backbone(host, out_indices)
    # Random weights and BN statistics so the comparison exercises every parameter and buffer.
    for name, tensor in reference.state_dict().items():
        if tensor.is_floating_point():
            tensor.copy_(torch.rand_like(tensor) + 0.5 if 'running_var' in name else torch.randn_like(tensor) * 0.1)
    ours = MobileNetV2(out_endpoints=endpoints)
    if host == 'mmseg':
        # mmseg's copy has no 1280 conv: ours stops at layer_18 too.
        assert not hasattr(ours, 'conv2')
    state = reference.state_dict()
    if host == 'mmdet':
        state = _mmdet_to_mmcls_layout(state)
    result = ours.load_state_dict(state, strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    reference.eval()
    ours.eval()
    x = torch.randn(2, 3, 96, 96)
    with torch.no_grad():
        expected, actual = reference(x), ours(x)
    assert len(expected) == len(actual)
    for e, a in zip(expected, actual):
        torch.testing.assert_close(a, e, rtol=1e-5, atol=1e-5)


def test_frozen_stages_freeze_exactly_those_stages():
    model = MobileNetV2(frozen_stages=3)
    model.train()
    frozen = [model.conv1, model.layer1, model.layer2, model.layer3]
    for module in frozen:
        assert all(not p.requires_grad for p in module.parameters())
        assert all(not m.training for m in module.modules())
    for module in (model.layer4, model.layer5, model.layer6, model.layer7, model.conv2):
        assert all(p.requires_grad for p in module.parameters())
        assert all(m.training for m in module.modules())


def test_norm_eval_keeps_bn_statistics():
    model = MobileNetV2(norm_eval=True, out_endpoints=('layer_7',))
    model.train()
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert bns and all(not bn.training for bn in bns)
    before = [bn.running_mean.clone() for bn in bns]
    model(torch.randn(2, 3, 32, 32))
    assert all(torch.equal(b, bn.running_mean) for b, bn in zip(before, bns))
    # Other layers stay in training mode, and parameters still train.
    assert model.training and all(p.requires_grad for p in model.parameters())


def test_every_trainable_parameter_receives_a_gradient():
    model = MobileNetV2(out_endpoints=ALL_LAYERS + ALL_EXPANSIONS, frozen_stages=1)
    model.train()
    outs = model(torch.randn(2, 3, 64, 64))
    sum(o.mean() for o in outs).backward()
    for name, param in model.named_parameters():
        if param.requires_grad:
            assert param.grad is not None and param.grad.abs().sum() > 0, name
        else:
            assert param.grad is None, name


def test_with_cp_gives_same_output_and_gradients():
    torch.manual_seed(0)
    endpoints = ('layer_4', 'layer_15/expansion_output', 'layer_19')
    plain = MobileNetV2(out_endpoints=endpoints)
    checkpointed = MobileNetV2(out_endpoints=endpoints, with_cp=True)
    checkpointed.load_state_dict(plain.state_dict())
    x = torch.randn(2, 3, 64, 64)
    grads = []
    for model in (plain, checkpointed):
        inputs = x.clone().requires_grad_(True)
        outs = model(inputs)
        sum(o.square().mean() for o in outs).backward()
        grads.append((outs, inputs.grad, {n: p.grad for n, p in model.named_parameters()}))
    (outs_a, in_a, params_a), (outs_b, in_b, params_b) = grads
    for a, b in zip(outs_a, outs_b):
        torch.testing.assert_close(a, b)
    torch.testing.assert_close(in_a, in_b)
    for name in params_a:
        torch.testing.assert_close(params_a[name], params_b[name], msg=name)


@pytest.mark.parametrize('kwargs,argument', [
    (dict(widen_factor=0), 'widen_factor'),
    (dict(widen_factor=-1.0), 'widen_factor'),
    (dict(out_endpoints=('layer_20',)), 'out_endpoints'),
    (dict(out_endpoints=(0,)), 'out_endpoints'),
    (dict(out_endpoints=('layer_2/expansion_output',)), 'out_endpoints'),
    (dict(out_endpoints=('layer_19/expansion_output',)), 'out_endpoints'),
    (dict(out_endpoints=('conv2',)), 'out_endpoints'),
    (dict(out_endpoints=()), 'out_endpoints'),
    (dict(out_endpoints=('layer_4', 4)), 'out_endpoints'),
    (dict(output_stride=4), 'output_stride'),
    (dict(output_stride=64), 'output_stride'),
    (dict(frozen_stages=8), 'frozen_stages'),
    (dict(frozen_stages=-2), 'frozen_stages'),
    (dict(frozen_stages=6, out_endpoints=('layer_14',)), 'frozen_stages'),
    (dict(divisible_by=0), 'divisible_by'),
    (dict(divisible_by=2.0), 'divisible_by'),
    (dict(same_padding=True, conv_cfg=dict(type='DCN')), 'conv_cfg'),
])
def test_bad_arguments_name_the_argument(kwargs, argument):
    with pytest.raises(ValueError, match=argument):
        MobileNetV2(**kwargs)


def test_widen_factor_type_is_checked():
    with pytest.raises(TypeError, match='widen_factor'):
        MobileNetV2(widen_factor='1.0')


def test_network_is_built_only_as_deep_as_requested():
    model = MobileNetV2(out_endpoints=('layer_15/expansion_output',))
    assert hasattr(model, 'layer6') and not hasattr(model, 'layer7') and not hasattr(model, 'conv2')
    assert len(model.layer6) == 1
    out, = model(torch.randn(1, 3, 64, 64))
    assert out.shape == (1, 576, 4, 4)


def test_zero_init_residual_makes_residual_blocks_start_as_identity():
    model = MobileNetV2(zero_init_residual=True, out_endpoints=('layer_7',))
    model.init_weights()
    residual = [b for b in model.modules() if getattr(b, 'use_res_connect', False)]
    assert len(residual) == 3  # layer_4, layer_6, layer_7 (the repeats of stages 2 and 3)
    model.eval()
    x = torch.randn(1, 24, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(model.layer2[1](x), x)
    plain = MobileNetV2(out_endpoints=('layer_7',))
    plain.init_weights()
    assert all(b.conv[-1].bn.weight.abs().sum() > 0 for b in plain.modules() if getattr(b, 'use_res_connect', False))


def test_divisible_by_one_gives_tf_deeplab_widths():
    # TF DeepLab at depth multiplier 0.5: c * 0.5 unrounded (layers 3-4: 12 channels, not 16); expansions 6 * 8 = 48
    # and 6 * 12 = 72 (TF-slim rounds expansions to 8 whatever divisible_by is). Worked by hand from Table 2.
    model = MobileNetV2(widen_factor=0.5, divisible_by=1, out_endpoints=(1, 2, 3, 4, 7, 11, 14, 17, 18))
    assert model.out_channels == (16, 8, 12, 12, 16, 32, 48, 80, 160)
    assert [s.expanded_channels for s in model.layer_specs[2:5]] == [48, 72, 72]
    # The default keeps TF-slim's rule: 16 channels there.
    assert MobileNetV2(widen_factor=0.5, out_endpoints=(4,)).out_channels == (16,)


@pytest.mark.parametrize('size', [224, 225])
def test_same_padding_pads_stride_2_convs_like_tf(size):
    """TF 'SAME' at stride 2: total padding max((ceil(n / 2) - 1) * 2 + 3 - n, 0), the odd pixel after the image."""
    torch.manual_seed(0)
    model = MobileNetV2(same_padding=True, out_endpoints=('layer_4',)).eval()
    image = torch.randn(1, 3, size, size)
    total = max((-(-size // 2) - 1) * 2 + 3 - size, 0)
    before, after = total // 2, total - total // 2
    stem = model.conv1
    expected = stem.activate(stem.bn(nn.functional.conv2d(nn.functional.pad(image, (before, after, before, after)),
                                                          stem.conv.weight, stride=2)))
    with torch.no_grad():
        assert torch.allclose(stem(image), expected, atol=1e-6)
        # Depthwise stride-2 conv of layer_3, on an even map of the stem's output size.
        block = model.layer2[0]
        hidden = block.conv[0](model.layer1(stem(image)))
        depthwise = block.conv[1]
        n = hidden.shape[-1]
        total = max((-(-n // 2) - 1) * 2 + 3 - n, 0)
        padded = nn.functional.pad(hidden, (total // 2, total - total // 2, total // 2, total - total // 2))
        reference = nn.functional.conv2d(padded, depthwise.conv.weight, stride=2, groups=hidden.shape[1])
        assert torch.allclose(depthwise.conv(hidden), reference, atol=1e-6)
    symmetric = MobileNetV2(out_endpoints=('layer_4',)).eval()
    symmetric.load_state_dict(model.state_dict())
    with torch.no_grad():
        same_as_symmetric = torch.allclose(symmetric(image)[0], model(image)[0], atol=1e-6)
    assert same_as_symmetric == (size % 2 == 1)  # odd sizes: TF pads 1 on both sides, as PyTorch does


def test_tf_options_keep_parameters_and_default_layers():
    default, tf_exact = MobileNetV2(), MobileNetV2(same_padding=True, norm_cfg=dict(type='BN', eps=1e-3))
    assert count_parameters(default) == count_parameters(tf_exact)
    assert [type(m).__name__ for m in default.modules()].count('Conv2dAdaptivePadding') == 0
    # The stem and the four stride-2 depthwise convs pad TF's way.
    assert [type(m).__name__ for m in tf_exact.modules()].count('Conv2dAdaptivePadding') == 5
