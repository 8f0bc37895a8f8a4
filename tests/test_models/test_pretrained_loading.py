"""OpenMMLab's (mmcls/mmpretrain) MobileNetV2 ImageNet checkpoint loads into our backbone through ``init_cfg``.

The published file cannot be downloaded here, so a stand-in with the same keys is built: ``conv1`` and
``layer1``..``layer7`` from mmseg's MobileNetV2 (it shares mmcls's parameter layout), plus the 1280-channel
``conv2`` and the ``head.fc`` classifier that only mmcls has.
"""
import pytest
import torch

from mmmnv2.registry import MODELS

PREFIX = 'backbone.'


def _random_like(name, tensor):
    if name.endswith('num_batches_tracked'):
        return torch.randint_like(tensor, 1, 10_000)
    if name.endswith('running_var'):
        return torch.rand_like(tensor) + 0.5
    return torch.randn_like(tensor)


@pytest.fixture(scope='module')
def mmcls_checkpoint(tmp_path_factory):
    """(path, state_dict) of a fake mmcls ``mobilenet-v2_8xb32_in1k`` checkpoint with random values everywhere."""
    from mmseg.models.backbones import MobileNetV2 as MMSegMobileNetV2

    torch.manual_seed(0)
    backbone = MMSegMobileNetV2(out_indices=(6,)).state_dict()
    backbone.update({
        'conv2.conv.weight': torch.empty(1280, 320, 1, 1),
        **{f'conv2.bn.{name}': torch.empty(1280) for name in ('weight', 'bias', 'running_mean', 'running_var')},
        'conv2.bn.num_batches_tracked': torch.tensor(0),
    })
    state = {PREFIX + name: _random_like(name, tensor) for name, tensor in backbone.items()}
    state.update({'head.fc.weight': torch.randn(1000, 1280), 'head.fc.bias': torch.randn(1000)})
    meta = {'mmcls_version': '0.25.0', 'epoch': 300, 'CLASSES': ['tench', 'goldfish']}
    path = tmp_path_factory.mktemp('pretrained') / 'mobilenet_v2_imagenet.pth'
    torch.save({'meta': meta, 'state_dict': state}, path)
    return str(path), state


def _pretrained_backbone(checkpoint, **kwargs):
    model = MODELS.build(dict(type='mmmnv2.MobileNetV2', init_cfg=dict(type='Pretrained', checkpoint=checkpoint,
                                                                 prefix=PREFIX), **kwargs))
    model.init_weights()
    return model


def _assert_loaded(model, state):
    ours = model.state_dict()
    for name, value in ours.items():
        torch.testing.assert_close(value, state[PREFIX + name], rtol=0, atol=0, msg=name)


def test_full_network_loads_every_backbone_key(mmcls_checkpoint):
    path, state = mmcls_checkpoint
    model = _pretrained_backbone(path, out_endpoints=('layer_19',))
    # No missing and no unexpected keys: the backbone's keys are exactly the checkpoint's 'backbone.' keys.
    assert {PREFIX + name for name in model.state_dict()} == {k for k in state if k.startswith(PREFIX)}
    _assert_loaded(model, state)


def test_network_stopped_at_layer_18_leaves_only_conv2_unused(mmcls_checkpoint):
    path, state = mmcls_checkpoint
    model = _pretrained_backbone(path, out_endpoints=('layer_18',))
    ours = {PREFIX + name for name in model.state_dict()}
    assert ours <= set(state)  # nothing missing
    unused = {k for k in state if k.startswith(PREFIX)} - ours
    assert unused == {k for k in state if k.startswith(PREFIX + 'conv2.')}
    assert len(unused) == 6  # conv weight + 5 BN tensors
    _assert_loaded(model, state)
