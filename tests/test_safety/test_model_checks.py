"""Models refuse what does not fit, naming the numbers or keys: ONNX files exported with another class count, and
the hosts' deprecated ``pretrained`` argument (accepted as MMSegmentation's own backbones accept it)."""
import warnings

import pytest
import torch
from mmengine.config import Config
from toy_runs import DET_CONFIG, SEG_CONFIG

from mmmnv2.apis import init_model
from mmmnv2.models import MobileNetV2


def onnx_file(path, host: str, channels) -> str:
    """An ONNX file with the exporter's interface (input name and size, output names, host metadata) whose outputs
    have ``channels``: what a file exported from a model with another class count presents to the runner. (A real
    export takes ~15 s; the runner's check reads only this interface.)"""
    import onnx  # the deploy extra, installed with the tests
    from onnx import TensorProto, helper
    names = ['seg_logits'] if host == 'mmseg' else [f'{kind}_{i}' for kind in ('cls_score', 'bbox_pred')
                                                    for i in range(len(channels) // 2)]
    nodes = [helper.make_node('GlobalAveragePool', ['input'], ['pooled'])]
    weights = []
    for name, count in zip(names, channels):
        weights.append(helper.make_tensor(f'{name}_w', TensorProto.FLOAT, [count, 3, 1, 1], [0.0] * count * 3))
        nodes.append(helper.make_node('Conv', ['pooled', f'{name}_w'], [name]))
    graph = helper.make_graph(
        nodes, 'network', [helper.make_tensor_value_info('input', TensorProto.FLOAT, [1, 3, 192, 192])],
        [helper.make_tensor_value_info(name, TensorProto.FLOAT, [1, count, 1, 1])
         for name, count in zip(names, channels)], initializer=weights)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', 17)])
    model.ir_version = 8
    helper.set_model_props(model, {'mmmnv2_host': host})
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return str(path)


TOY_ANCHORS = (3, 6, 6, 6, 6, 6)  # TF's SSD layout: 3 anchors on the first feature map, 6 on the others


def test_detection_onnx_file_of_another_class_count_is_refused_at_load(tmp_path):
    toy = [anchors * 4 for anchors in TOY_ANCHORS] + [anchors * 4 for anchors in TOY_ANCHORS]  # 3 classes + bg
    assert init_model(DET_CONFIG, onnx_file(tmp_path / 'toy.onnx', 'mmdet', toy)).model_file  # control: it fits
    cfg = Config.fromfile(DET_CONFIG)
    cfg.model.bbox_head.num_classes = 5
    with pytest.raises(ValueError) as error:
        init_model(cfg, str(tmp_path / 'toy.onnx'))
    message = str(error.value)
    assert str(tmp_path / 'toy.onnx') in message and 'output cls_score_0 has 12 channels' in message
    assert 'expects 18 (3 anchors x 6 class scores (num_classes=5))' in message


def test_segmentation_onnx_file_of_another_class_count_is_refused_at_load(tmp_path):
    assert init_model(SEG_CONFIG, onnx_file(tmp_path / 'toy.onnx', 'mmseg', [4])).model_file  # control: it fits
    cfg = Config.fromfile(SEG_CONFIG)  # 4 classes
    cfg.model.decode_head.num_classes = 6
    with pytest.raises(ValueError) as error:
        init_model(cfg, str(tmp_path / 'toy.onnx'))
    assert str(tmp_path / 'toy.onnx') in str(error.value)
    assert 'has 4 channels' in str(error.value) and 'has 6 (num_classes=6)' in str(error.value)


def test_model_pretrained_of_a_segmentation_config_reaches_the_backbone(tmp_path):
    """MMSegmentation's ``EncoderDecoder`` passes ``model.pretrained`` to the backbone, as its own backbones take it."""
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS
    init_default_scope('mmseg')
    cfg = Config.fromfile(SEG_CONFIG)
    cfg.model.backbone.init_cfg = None
    source = MODELS.build(cfg.model.backbone)
    torch.nn.init.normal_(source.conv1.conv.weight)
    torch.save({'state_dict': source.state_dict()}, tmp_path / 'backbone.pth')
    cfg.model.pretrained = str(tmp_path / 'backbone.pth')
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        model = MODELS.build(cfg.model)
    assert any('pretrained is deprecated' in str(w.message) and "init_cfg=dict(type='Pretrained'" in str(w.message)
               for w in caught)
    model.init_weights()
    assert torch.equal(model.backbone.conv1.conv.weight, source.conv1.conv.weight)


def test_pretrained_and_init_cfg_together_are_refused_saying_what_to_write():
    with pytest.raises(ValueError, match=r"set only init_cfg=dict\(type='Pretrained', checkpoint='a.pth'\)"):
        MobileNetV2(pretrained='a.pth', init_cfg=dict(type='Pretrained', checkpoint='b.pth'))
    with pytest.raises(TypeError, match='pretrained must be a checkpoint path or URL'):
        MobileNetV2(pretrained=True)
