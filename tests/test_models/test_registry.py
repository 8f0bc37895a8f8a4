"""Our components are reachable from the hosts' scopes, and the hosts' own names still mean the hosts' classes."""
import pytest
from mmengine.registry import DefaultScope

from mmmnv2.models.backbones import MobileNetV2


@pytest.mark.parametrize('scope', ['mmdet', 'mmseg'])
def test_plugin_backbone_builds_from_host_scope(scope):
    if scope == 'mmdet':
        from mmdet.models.backbones import MobileNetV2 as HostMobileNetV2
        from mmdet.registry import MODELS
    else:
        from mmseg.models.backbones import MobileNetV2 as HostMobileNetV2
        from mmseg.registry import MODELS
    with DefaultScope.overwrite_default_scope(scope):
        ours = MODELS.build(dict(type='mmmnv2.MobileNetV2', out_endpoints=('layer_7',)))
        host = MODELS.build(dict(type='MobileNetV2'))
    assert type(ours) is MobileNetV2
    assert type(host) is HostMobileNetV2  # no shadowing of the host's class


@pytest.mark.parametrize('name', ['SSDLite', 'SSDLiteNeck', 'SSDLiteHead', 'MobileDeepLabV3Head', 'MobileNetV2'])
def test_components_are_registered_in_plugin_scope(name):
    from mmmnv2.registry import MODELS
    assert MODELS.scope == 'mmmnv2'
    assert MODELS.get(name) is not None
    # Not registered in the hosts' own registries under the same name by us.
    from mmdet.registry import MODELS as MMDET_MODELS
    host = MMDET_MODELS.module_dict.get(name)
    assert host is None or not host.__module__.startswith('mmmnv2')
