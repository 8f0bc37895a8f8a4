"""ONNX export and the onnxruntime runners, with random weights (the trained-model parity is in test_e2e).

Batch norm must be folded, the input fixed at the config's test size (or given), the raw outputs equal to PyTorch's,
the runners' results equal to the PyTorch model's ``test_step``, and every kind of bad input refused clearly.
"""
import os.path as osp
import re
import sys

import numpy as np
import onnx
import pytest
import torch
from deploy_helpers import assert_same_detections, randomised_checkpoint, toy_batch
from mmengine.config import Config
from mmengine.registry import MODELS as MMENGINE_MODELS
from torch import nn
from toy_runs import DET_CONFIG, REPO, SEG_CONFIG, run_tool_in_process

from mmmnv2.apis import init_model
from mmmnv2.deployment import (
    UnsupportedOperatorError,
    export_onnx,
    init_exported_model,
    relative_difference,
)
from mmmnv2.deployment.quantization import quantize_nncf, quantize_onnxruntime
from mmmnv2.utils import config_dataset_meta, fixed_input_size

COCO_CONFIG = osp.join(REPO, 'configs/ssdlite/ssdlite_mobilenetv2_8xb24-600e_coco-320x320.py')
VOC_CONFIG = osp.join(REPO, 'configs/mobile_deeplabv3/mobile-deeplabv3_mobilenetv2-os16_4xb4-30k_voc12aug-512x512.py')
TOLERANCE = 1e-4  # float32, batch norm folded: measured differences are ~1e-6 of the largest output


def input_shape(onnx_file: str):
    dims = onnx.load(onnx_file).graph.input[0].type.tensor_type.shape.dim
    return [d.dim_param or d.dim_value for d in dims]


# One config per architecture, at the paper's sizes; the toy configs (the same architectures) are exported by the
# runner tests below.
@pytest.mark.parametrize('config', [COCO_CONFIG, VOC_CONFIG], ids=['coco-ssdlite', 'voc-deeplab'])
def test_export_folds_batch_norm_and_matches_pytorch(config, tmp_path):
    checkpoint = str(tmp_path / 'model.pth')
    model = randomised_checkpoint(config, checkpoint)
    cfg = Config.fromfile(config)
    onnx_file = export_onnx(cfg, checkpoint, str(tmp_path / 'model.onnx'))
    graph = onnx.load(onnx_file).graph
    assert 'BatchNormalization' not in {node.op_type for node in graph.node}
    height, width = fixed_input_size(cfg)
    assert input_shape(onnx_file) == [1, 3, height, width]
    assert (height, width) == ((320, 320) if config == COCO_CONFIG else (512, 512))
    runner = init_exported_model(cfg, onnx_file, num_threads=1)
    inputs = torch.rand(2, 3, height, width) * 2 - 1  # a static batch of 1 runs image by image
    with torch.no_grad():
        expected = model(inputs, mode='tensor')
    assert relative_difference(expected, runner(inputs, mode='tensor')) < TOLERANCE
    assert list(runner.dataset_meta['classes']) == list(config_dataset_meta(cfg)['classes'])


@pytest.fixture(scope='module')
def det_toy_export(tmp_path_factory):
    """(toy SSDLite with randomised weights, its ONNX file with a dynamic batch): one export for the tests that
    only read the file (an export takes seconds)."""
    tmp_path = tmp_path_factory.mktemp('det_toy_export')
    checkpoint = str(tmp_path / 'model.pth')
    model = randomised_checkpoint(DET_CONFIG, checkpoint)
    return model, export_onnx(DET_CONFIG, checkpoint, str(tmp_path / 'model.onnx'), dynamic_batch=True)


@pytest.fixture(scope='module')
def seg_toy_export(tmp_path_factory):
    """(toy Mobile DeepLabv3 with randomised weights, its ONNX file): one export for the tests that only read it."""
    tmp_path = tmp_path_factory.mktemp('seg_toy_export')
    checkpoint = str(tmp_path / 'model.pth')
    model = randomised_checkpoint(SEG_CONFIG, checkpoint)
    return model, export_onnx(SEG_CONFIG, checkpoint, str(tmp_path / 'model.onnx'))


def test_detector_runner_gives_the_pytorch_detections(det_toy_export, tmp_path):
    model, onnx_file = det_toy_export
    runner = init_exported_model(Config.fromfile(DET_CONFIG), onnx_file)
    assert input_shape(runner.model_file)[0] == 'batch'
    data = toy_batch(DET_CONFIG, str(tmp_path / 'data'), 'det')
    with torch.no_grad():
        expected = model.test_step(data)
    assert_same_detections(expected, runner.test_step(data))


def test_segmentor_runner_gives_the_pytorch_label_maps(seg_toy_export, tmp_path):
    model, onnx_file = seg_toy_export
    runner = init_exported_model(Config.fromfile(SEG_CONFIG), onnx_file)
    data = toy_batch(SEG_CONFIG, str(tmp_path / 'data'), 'seg')
    with torch.no_grad():
        expected = model.test_step(data)
    actual = runner.test_step(data)
    for e, a in zip(expected, actual, strict=True):
        assert a.pred_sem_seg.data.shape == e.pred_sem_seg.data.shape == (1, *e.ori_shape)
        agree = (a.pred_sem_seg.data == e.pred_sem_seg.data).float().mean()
        assert agree > 0.999, agree  # argmax ties between near-equal logits may flip a pixel
        assert relative_difference(e.seg_logits.data, a.seg_logits.data) < TOLERANCE


def test_segmentor_runner_pads_smaller_images_and_refuses_larger(seg_toy_export):
    _, onnx_file = seg_toy_export
    runner = init_exported_model(Config.fromfile(SEG_CONFIG), onnx_file)
    from mmseg.structures import SegDataSample
    small = {'inputs': [torch.randint(0, 255, (3, 150, 170), dtype=torch.uint8)],
             'data_samples': [SegDataSample(metainfo=dict(ori_shape=(150, 170), img_shape=(150, 170)))]}
    result = runner.test_step(small)[0]
    assert result.pred_sem_seg.data.shape == (1, 150, 170)
    assert result.pred_sem_seg.data.max() < len(runner.dataset_meta['classes'])
    large = {'inputs': [torch.randint(0, 255, (3, 200, 170), dtype=torch.uint8)],
             'data_samples': [SegDataSample(metainfo=dict(ori_shape=(200, 170), img_shape=(200, 170)))]}
    with pytest.raises(ValueError, match='200x192.*192x192'):
        runner.test_step(large)


def test_runner_refuses_a_file_of_another_input_size(tmp_path):
    checkpoint = str(tmp_path / 'model.pth')
    randomised_checkpoint(DET_CONFIG, checkpoint)
    onnx_file = export_onnx(Config.fromfile(DET_CONFIG), checkpoint, str(tmp_path / 'model.onnx'),
                            input_size=(160, 160))
    assert input_shape(onnx_file) == [1, 3, 160, 160]
    with pytest.raises(ValueError, match='160x160.*192x192'):
        init_exported_model(DET_CONFIG, onnx_file)


def test_runner_refuses_a_file_of_the_other_task(seg_toy_export):
    _, onnx_file = seg_toy_export
    with pytest.raises(ValueError, match='exported from a mmseg model, but the config is mmdet'):
        init_exported_model(DET_CONFIG, onnx_file)


def test_mismatched_checkpoint_fails_before_export_listing_the_keys(tmp_path):
    checkpoint = str(tmp_path / 'toy.pth')
    model = randomised_checkpoint(DET_CONFIG, checkpoint)  # 3 classes; the COCO config has 80
    with pytest.raises(ValueError, match=r'mis-shaped keys[\s\S]*mis-shaped\s+bbox_head\.cls_convs'):
        export_onnx(COCO_CONFIG, checkpoint, str(tmp_path / 'coco.onnx'))
    state = model.state_dict()
    state['extra.weight'] = torch.zeros(1)
    del state['backbone.conv1.conv.weight']
    torch.save({'state_dict': state}, checkpoint)
    with pytest.raises(ValueError, match=r'1 missing, 1 unexpected keys[\s\S]*missing\s+backbone\.conv1\.conv\.weight'
                                         r'[\s\S]*unexpected\s+extra\.weight'):
        export_onnx(DET_CONFIG, checkpoint, str(tmp_path / 'toy.onnx'))
    assert not osp.exists(tmp_path / 'coco.onnx') and not osp.exists(tmp_path / 'toy.onnx')


class KthValueActivation(nn.Module):
    """An activation using an operator (aten.kthvalue) ONNX cannot express."""

    def __init__(self, inplace: bool = False) -> None:  # ConvModule passes ``inplace``
        super().__init__()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x - torch.kthvalue(x, 2, dim=1, keepdim=True)[0]


def test_unexportable_operator_is_named_with_its_module(tmp_path):
    MMENGINE_MODELS.register_module('KthValueActivationForTest', module=KthValueActivation, force=True)
    cfg = Config.fromfile(DET_CONFIG)
    cfg.model.neck.act_cfg = dict(type='KthValueActivationForTest')
    with pytest.raises(UnsupportedOperatorError, match=r'operator aten\.kthvalue\.default in module '
                                                       r'neck\.extra_layers\.0\.0\.activate \(KthValueActivation\)'):
        export_onnx(cfg, None, str(tmp_path / 'model.onnx'))


@pytest.mark.parametrize('module', ['onnxruntime', 'openvino', 'onnxruntime.quantization', 'nncf'])
def test_missing_runtime_names_the_deploy_extra(module, det_toy_export, tmp_path, monkeypatch):
    _, onnx_file = det_toy_export
    out = str(tmp_path / 'int8.onnx')
    call = {'onnxruntime': lambda: init_exported_model(DET_CONFIG, onnx_file),
            'openvino': lambda: init_exported_model(DET_CONFIG, onnx_file, backend='openvino'),
            'onnxruntime.quantization': lambda: quantize_onnxruntime(onnx_file, out, []),
            'nncf': lambda: quantize_nncf(onnx_file, out, [])}[module]
    monkeypatch.setitem(sys.modules, module, None)  # import fails as if not installed
    package = module.split('.')[0]
    with pytest.raises(ImportError, match=rf'^{package} is needed .*`pip install "mmmnv2\[deploy\]"` \(or `pip '
                                          rf'install {package}`\)$'):
        call()


def test_unknown_backend_is_refused_naming_the_choices(det_toy_export):
    _, onnx_file = det_toy_export
    with pytest.raises(ValueError, match=r"backend must be one of \('onnxruntime', 'openvino', 'litert', "
                                         r"'executorch'\), got 'tensorrt'"):
        init_exported_model(DET_CONFIG, onnx_file, backend='tensorrt')


def test_backend_with_a_checkpoint_is_refused(tmp_path):
    checkpoint = str(tmp_path / 'model.pth')
    randomised_checkpoint(DET_CONFIG, checkpoint)
    with pytest.raises(ValueError, match='backend=.openvino. runs an exported file'):
        init_model(DET_CONFIG, checkpoint, 'cpu', backend='openvino')


def test_openvino_runner_refuses_a_file_of_the_other_host(det_toy_export):
    """The runner's checks read the file's metadata and shapes in OpenVINO as in onnxruntime."""
    _, onnx_file = det_toy_export
    with pytest.raises(ValueError, match='exported from a mmdet model, but the config is mmseg'):
        init_exported_model(SEG_CONFIG, onnx_file, backend='openvino')


def test_export_tool_writes_and_verifies(tmp_path, monkeypatch, capsys):
    checkpoint = str(tmp_path / 'model.pth')
    randomised_checkpoint(SEG_CONFIG, checkpoint)
    capsys.readouterr()
    # in this process (the tool as a separate process is run by the e2e and README tests)
    run_tool_in_process(monkeypatch, 'deployment/pytorch2onnx.py', [SEG_CONFIG, checkpoint, '--dynamic-batch',
                                                                     '--verify'])
    assert osp.exists(tmp_path / 'model.onnx') and input_shape(str(tmp_path / 'model.onnx'))[0] == 'batch'
    difference = float(capsys.readouterr().out.strip().split()[-1])
    assert 0 <= difference < TOLERANCE
    assert np.isfinite(difference)


@pytest.mark.parametrize('tool, out', [('deployment/pytorch2onnx.py', ['--output-file', 'x.onnx']),
                                       ('deployment/export_mobile.py', ['--format', 'tflite', '--out', 'x.tflite'])])
@pytest.mark.parametrize('options, message', [
    (['--verify', '--preprocess'], '--verify compares the network outputs; export without --preprocess and '
                                   '--postprocess to verify'),
    (['--verify', '--postprocess'], '--verify compares the network outputs'),
    (['--image-size', '100', '120'], '--image-size is the size of the image a --preprocess file takes; add '
                                     '--preprocess'),
    (['--verify', '--shape', '96', '96'], r"--verify runs the config's pre-processing; it needs the config's input "
                                          r'size \(192, 192\), got --shape \[96, 96\]')])
def test_export_tools_refuse_arguments_that_do_not_go_together(tool, out, options, message, tmp_path, monkeypatch,
                                                               capsys):
    """Both export tools' shared arguments (``mmmnv2.utils.add_export_arguments``), refused before any export:
    argument conflicts as argparse refuses them (status 2, the usage), a size --verify cannot check in one line."""
    out = [str(tmp_path / name) if name.startswith('x.') else name for name in out]
    with pytest.raises(SystemExit) as stop:
        run_tool_in_process(monkeypatch, tool, [SEG_CONFIG, str(tmp_path / 'absent.pth'), *out, *options])
    if '--shape' in options:
        assert re.fullmatch(rf'error: {re.escape(SEG_CONFIG)}: {message}', str(stop.value.code))
    else:
        assert stop.value.code == 2 and re.search(message, capsys.readouterr().err)
    assert not list(tmp_path.iterdir())  # nothing written
