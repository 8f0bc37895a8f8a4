"""tools/model_converters/mobilenetv2_to_openmmlab.py against stand-ins for torchvision's and timm's MobileNetV2.

Neither library is installed here, so the test carries its own copies of their module trees (same state dict keys,
same forward pass), fills them with random weights and BN statistics, converts their checkpoints with the script and
checks that our backbone plus the converted classifier compute the same features and logits.
"""
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from mmmnv2.models.backbones import MobileNetV2

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / 'tools' / 'model_converters' / 'mobilenetv2_to_openmmlab.py'
NUM_CLASSES = 10

# Paper Table 2 rows 2..8 (t, c, n, s), copied here so the references do not depend on the code under test.
BLOCKS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))
STEM, HEAD = 32, 1280


def _conv_bn(cin, cout, kernel, stride=1, groups=1):
    return nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=False), nn.BatchNorm2d(cout)


def _block_units(cin, cout, t, stride):
    """(conv, bn, relu6?) of one inverted residual: [1x1 expansion], 3x3 depthwise, linear 1x1 projection."""
    hidden = cin * t
    units = [(*_conv_bn(cin, hidden, 1), True)] if t != 1 else []
    return units + [(*_conv_bn(hidden, hidden, 3, stride, hidden), True), (*_conv_bn(hidden, cout, 1), False)]


def _block_args():
    """(stage, index in stage, in, out, t, stride) for the 17 blocks."""
    cin = STEM
    for stage, (t, c, n, s) in enumerate(BLOCKS):
        for j in range(n):
            yield stage, j, cin, c, t, s if j == 0 else 1
            cin = c


class _Block(nn.Module):
    """Residual wrapper shared by both libraries' blocks; subclasses lay the units out under their own names."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.has_skip = stride == 1 and cin == cout

    def forward(self, x):
        out = self.body(x)
        return x + out if self.has_skip else out


class TorchvisionBlock(_Block):
    """torchvision.models.mobilenetv2.InvertedResidual: ``conv = [ConvBNReLU6, ...] + [Conv2d, BN]``."""

    def __init__(self, cin, cout, t, stride):
        super().__init__(cin, cout, stride)
        *activated, (conv, bn, _) = _block_units(cin, cout, t, stride)
        self.conv = nn.Sequential(*(nn.Sequential(c, b, nn.ReLU6()) for c, b, _ in activated), conv, bn)

    def body(self, x):
        return self.conv(x)


class TimmBlock(_Block):
    """timm DepthwiseSeparableConv (t=1: conv_dw, bn1, conv_pw, bn2) / InvertedResidual (conv_pw .. bn3)."""

    def __init__(self, cin, cout, t, stride):
        super().__init__(cin, cout, stride)
        names = ('conv_dw', 'conv_pw') if t == 1 else ('conv_pw', 'conv_dw', 'conv_pwl')
        self.units = []
        for k, (name, (conv, bn, act)) in enumerate(zip(names, _block_units(cin, cout, t, stride)), start=1):
            self.add_module(name, conv)
            self.add_module(f'bn{k}', bn)  # timm's BatchNormAct2d: the activation follows inside, no parameters
            self.units.append((name, f'bn{k}', act))

    def body(self, x):
        for conv, bn, act in self.units:
            x = getattr(self, bn)(getattr(self, conv)(x))
            x = nn.functional.relu6(x) if act else x
        return x


class _Classifier(nn.Module):
    """features -> global average pool -> (dropout) -> linear, as both libraries do."""

    def forward(self, x):
        return self.classifier(self.forward_features(x).mean((2, 3)))


class TorchvisionMobileNetV2(_Classifier):
    def __init__(self):
        super().__init__()
        layers = [nn.Sequential(*_conv_bn(3, STEM, 3, 2), nn.ReLU6())]
        layers += [TorchvisionBlock(*args) for _, _, *args in _block_args()]
        layers.append(nn.Sequential(*_conv_bn(BLOCKS[-1][1], HEAD, 1), nn.ReLU6()))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(HEAD, NUM_CLASSES))

    def forward_features(self, x):
        return self.features(x)


class TimmMobileNetV2(_Classifier):
    def __init__(self):
        super().__init__()
        self.conv_stem, self.bn1 = _conv_bn(3, STEM, 3, 2)
        stages = [[] for _ in BLOCKS]
        for stage, _, *args in _block_args():
            stages[stage].append(TimmBlock(*args))
        self.blocks = nn.Sequential(*(nn.Sequential(*stage) for stage in stages))
        self.conv_head, self.bn2 = _conv_bn(BLOCKS[-1][1], HEAD, 1)
        self.classifier = nn.Linear(HEAD, NUM_CLASSES)

    def forward_features(self, x):
        x = self.blocks(nn.functional.relu6(self.bn1(self.conv_stem(x))))
        return nn.functional.relu6(self.bn2(self.conv_head(x)))


REFERENCES = {'torchvision': TorchvisionMobileNetV2, 'timm': TimmMobileNetV2}


def _randomised(model):
    """Random weights and BN statistics (activations stay O(1)), so that every tensor shows in the output."""
    torch.manual_seed(0)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.Conv2d):
                fan_in = module.weight[0].numel()
                module.weight.normal_(0, (2 / fan_in) ** 0.5)
            elif isinstance(module, nn.BatchNorm2d):
                module.weight.uniform_(0.5, 1.5)
                module.bias.normal_(0, 0.1)
                module.running_mean.normal_(0, 0.1)
                module.running_var.uniform_(0.5, 1.5)
                module.num_batches_tracked.fill_(1234)
            elif isinstance(module, nn.Linear):
                module.weight.normal_(0, HEAD ** -0.5)
                module.bias.normal_(0, 0.1)
    return model.eval()


def _run_converter(*args):
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, args)], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)


def _load_converter():
    spec = importlib.util.spec_from_file_location('mobilenetv2_to_openmmlab', SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize('source,wrapper,with_counters', [
    ('torchvision', None, True),  # torchvision's published file: a bare state dict
    ('timm', 'state_dict', False),  # timm training checkpoint, without BN batch counters
])
def test_converted_checkpoint_reproduces_the_source_model(tmp_path, source, wrapper, with_counters):
    reference = _randomised(REFERENCES[source]())
    state = {k: v for k, v in reference.state_dict().items() if with_counters or 'num_batches_tracked' not in k}
    src, dst = tmp_path / f'{source}.pth', tmp_path / 'out' / 'openmmlab.pth'
    torch.save({wrapper: state} if wrapper else state, src)

    result = _run_converter(src, dst, '--source', source)
    assert result.returncode == 0, result.stderr

    converted = torch.load(dst, map_location='cpu', weights_only=True)
    assert set(converted) == {'state_dict'}
    converted = converted['state_dict']
    ours = MobileNetV2(out_endpoints=('layer_19',)).eval()
    backbone = {k[len('backbone.'):]: v for k, v in converted.items() if k.startswith('backbone.')}
    ours.load_state_dict(backbone, strict=True)
    assert set(converted) - {f'backbone.{k}' for k in backbone} == {'head.fc.weight', 'head.fc.bias'}
    if not with_counters:
        assert all(v.item() == 0 for k, v in converted.items() if k.endswith('num_batches_tracked'))

    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected_features, expected_logits = reference.forward_features(x), reference(x)
        features, = ours(x)
        logits = nn.functional.linear(features.mean((2, 3)), converted['head.fc.weight'], converted['head.fc.bias'])
    assert expected_features.std() > 0.1 and expected_logits.std() > 0.1  # a meaningful comparison, not zeros
    torch.testing.assert_close(features, expected_features, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(logits, expected_logits, rtol=1e-5, atol=1e-5)


def test_key_maps_cover_exactly_the_reference_layouts():
    converter = _load_converter()
    ours = {f'backbone.{k}' for k in MobileNetV2(out_endpoints=('layer_19',)).state_dict()}
    for source, reference in REFERENCES.items():
        mapping = converter.key_map(source)
        assert set(mapping) == set(reference().state_dict()), source
        assert set(mapping.values()) == ours | {'head.fc.weight', 'head.fc.bias'}, source
        assert len(set(mapping.values())) == len(mapping), source  # one-to-one


def test_unknown_and_missing_keys_are_named():
    converter = _load_converter()
    state = TorchvisionMobileNetV2().state_dict()
    state['features.19.0.weight'] = torch.zeros(1)
    del state['features.5.conv.1.1.running_var']
    with pytest.raises(converter.ConversionError) as error:
        converter.convert(state, 'torchvision')
    message = str(error.value)
    assert 'unexpected key(s): features.19.0.weight' in message
    assert 'missing key(s): features.5.conv.1.1.running_var' in message
    # The wrong --source is recognised.
    with pytest.raises(converter.ConversionError, match='use --source timm'):
        converter.convert(TimmMobileNetV2().state_dict(), 'torchvision')


def test_extra_key_fails_on_the_command_line(tmp_path):
    # In-process (the script's main) to spare a second interpreter start-up; the subprocess tests cover the rest.
    state = TimmMobileNetV2().state_dict()
    state['blocks.0.0.se.conv_reduce.weight'] = torch.zeros(4, 32, 1, 1)
    src, dst = tmp_path / 'timm.pth', tmp_path / 'out.pth'
    torch.save({'model': state}, src)
    with pytest.raises(SystemExit) as exit_info:
        _load_converter().main([str(src), str(dst), '--source', 'timm'])
    assert exit_info.value.code not in (0, None)
    assert 'unexpected key(s): blocks.0.0.se.conv_reduce.weight' in str(exit_info.value.code)
    assert not dst.exists()


def test_checkpoint_with_pickled_code_is_refused(tmp_path, malicious_payload):
    payload, marker = malicious_payload
    src, dst = tmp_path / 'evil.pth', tmp_path / 'out.pth'
    state = TorchvisionMobileNetV2().state_dict()
    torch.save({'state_dict': state, 'meta': payload}, src)
    result = _run_converter(src, dst, '--source', 'torchvision')
    assert result.returncode != 0
    assert 'Refused to load' in result.stderr
    assert not marker.exists() and not dst.exists()
    # Control: unpickling the file unsafely does run the payload, so the test above is not vacuous.
    torch.load(src, weights_only=False)
    assert marker.exists()
