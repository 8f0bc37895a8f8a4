"""LiteRT (.tflite) and ExecuTorch (.pte) export and their runners, with random weights.

The files are written by the formats' own converters (litert-torch, ExecuTorch's XNNPACK lowering) and run in the
formats' own runtimes (LiteRT's interpreter, ExecuTorch's runtime); their raw outputs must be PyTorch's to 1e-4 of the
largest output, and the runners' detections and label maps the PyTorch model's ``test_step``'s. Needs the ``mobile``
extra (tools/setup_env.sh installs it).
"""
import json
import os.path as osp
import sys
from typing import Dict, List

import numpy as np
import pytest
import torch
from deploy_helpers import assert_same_detections, float_convolutions, randomised_checkpoint, toy_batch
from mmengine.config import Config
from toy_runs import DET_CONFIG, SEG_CONFIG, run_tool_in_process

from mmmnv2.apis import init_model
from mmmnv2.deployment import export_mobile, init_exported_model, relative_difference
from mmmnv2.deployment.graph_format import META_DATASET_META, META_HOST
from mmmnv2.utils import config_dataset_meta, fixed_input_size

TOLERANCE = 1e-4  # of the largest output; float32 with batch norm folded (measured ~1e-6)
FORMATS = {'tflite': '.tflite', 'executorch': '.pte'}
CONFIGS = {'det': DET_CONFIG, 'seg': SEG_CONFIG}
TOY_IMAGE = (256, 256)  # the toy sets' images


@pytest.fixture(scope='module')
def toy_checkpoints(tmp_path_factory):
    """task -> (toy model with randomised weights and batch norms, its checkpoint)."""
    folder = tmp_path_factory.mktemp('mobile_checkpoints')
    checkpoints = {}
    for task, config in CONFIGS.items():
        checkpoint = str(folder / f'{task}.pth')
        checkpoints[task] = randomised_checkpoint(config, checkpoint), checkpoint
    return checkpoints


@pytest.fixture(scope='module')
def mobile_exports(toy_checkpoints, tmp_path_factory):
    """(task, format) -> the exported file; each written once (an export takes 15-30 s)."""
    folder = tmp_path_factory.mktemp('mobile_exports')
    exports = {}

    def export(task: str, fmt: str) -> str:
        if (task, fmt) not in exports:
            exports[task, fmt] = export_mobile(CONFIGS[task], toy_checkpoints[task][1],
                                               str(folder / f'{task}{FORMATS[fmt]}'), fmt)
        return exports[task, fmt]
    return export


@pytest.mark.parametrize('fmt', list(FORMATS))
@pytest.mark.parametrize('task', list(CONFIGS))
def test_exported_network_matches_pytorch(task, fmt, toy_checkpoints, mobile_exports):
    model, _ = toy_checkpoints[task]
    cfg = Config.fromfile(CONFIGS[task])
    runner = init_exported_model(cfg, mobile_exports(task, fmt), num_threads=1)
    assert runner.backend == {'tflite': 'litert', 'executorch': 'executorch'}[fmt]
    assert runner.session.input_shape == [1, 3, *fixed_input_size(cfg)]
    # the metadata written into the file, read back by the format's own reader
    assert runner.metadata[META_HOST] == cfg.default_scope
    assert json.loads(runner.metadata[META_DATASET_META])['classes'] == list(config_dataset_meta(cfg)['classes'])
    inputs = torch.rand(2, 3, *fixed_input_size(cfg)) * 2 - 1  # a batch of 1 in the file: run image by image
    with torch.no_grad():
        expected = model(inputs, mode='tensor')
    assert relative_difference(expected, runner(inputs, mode='tensor')) < TOLERANCE


@pytest.mark.parametrize('fmt', list(FORMATS))
def test_detector_file_gives_the_pytorch_detections(fmt, toy_checkpoints, mobile_exports, tmp_path):
    model, _ = toy_checkpoints['det']
    runner = init_model(DET_CONFIG, mobile_exports('det', fmt))  # the one entry point, as for .onnx
    data = toy_batch(DET_CONFIG, str(tmp_path / 'data'), 'det')
    with torch.no_grad():
        expected = model.test_step(data)
    assert_same_detections(expected, runner.test_step(data))


@pytest.mark.parametrize('fmt', list(FORMATS))
def test_segmentor_file_gives_the_pytorch_label_maps(fmt, toy_checkpoints, mobile_exports, tmp_path):
    model, _ = toy_checkpoints['seg']
    runner = init_model(SEG_CONFIG, mobile_exports('seg', fmt))
    data = toy_batch(SEG_CONFIG, str(tmp_path / 'data'), 'seg')
    with torch.no_grad():
        expected = model.test_step(data)
    for e, a in zip(expected, runner.test_step(data), strict=True):
        assert a.pred_sem_seg.data.shape == e.pred_sem_seg.data.shape == (1, *e.ori_shape)
        assert torch.equal(a.pred_sem_seg.data, e.pred_sem_seg.data)
        assert relative_difference(e.seg_logits.data, a.seg_logits.data) < TOLERANCE


@pytest.mark.parametrize('fmt', list(FORMATS))
def test_file_of_the_other_task_is_refused(fmt, mobile_exports):
    with pytest.raises(ValueError, match='exported from a mmseg model, but the config is mmdet'):
        init_exported_model(DET_CONFIG, mobile_exports('seg', fmt))


def test_runtime_of_another_format_is_refused(mobile_exports):
    with pytest.raises(ValueError, match=r"backend 'onnxruntime' does not run \.tflite files.*\('litert',\)"):
        init_exported_model(SEG_CONFIG, mobile_exports('seg', 'tflite'), backend='onnxruntime')


def test_export_refuses_a_wrong_format_or_extension(tmp_path):
    with pytest.raises(ValueError, match=r"format must be one of \('tflite', 'executorch'\), got 'coreml'"):
        export_mobile(SEG_CONFIG, None, str(tmp_path / 'model.mlpackage'), 'coreml')
    with pytest.raises(ValueError, match=r'out_file of a executorch export must end with \.pte'):
        export_mobile(SEG_CONFIG, None, str(tmp_path / 'model.tflite'), 'executorch')


@pytest.mark.parametrize('module', ['litert_torch', 'executorch.exir', 'ai_edge_litert.interpreter',
                                    'executorch.runtime'])
def test_missing_runtime_names_the_mobile_extra(module, mobile_exports, tmp_path, monkeypatch):
    call = {'litert_torch': lambda: export_mobile(SEG_CONFIG, None, str(tmp_path / 'm.tflite'), 'tflite'),
            'executorch.exir': lambda: export_mobile(SEG_CONFIG, None, str(tmp_path / 'm.pte'), 'executorch'),
            'ai_edge_litert.interpreter': lambda: init_exported_model(SEG_CONFIG, mobile_exports('seg', 'tflite')),
            'executorch.runtime': lambda: init_exported_model(SEG_CONFIG, mobile_exports('seg', 'executorch'))}[module]
    monkeypatch.setitem(sys.modules, module, None)  # import fails as if not installed
    package = module.split('.')[0]
    with pytest.raises(ImportError, match=rf'^{package} is needed .*`pip install "mmmnv2\[mobile\]"`'):
        call()


@pytest.mark.parametrize('fmt', ['executorch'])  # the README's toy block runs the tool with --verify for tflite
def test_export_tool_writes_and_verifies(fmt, toy_checkpoints, tmp_path, monkeypatch, capsys):
    _, checkpoint = toy_checkpoints['seg']
    out = str(tmp_path / f'model{FORMATS[fmt]}')
    capsys.readouterr()
    run_tool_in_process(monkeypatch, 'deployment/export_mobile.py', [SEG_CONFIG, checkpoint, '--format', fmt,
                                                                      '--out', out, '--verify'])
    difference = float(capsys.readouterr().out.strip().split()[-1])
    assert 0 <= difference < TOLERANCE


@pytest.fixture(scope='module')
def seg_data_cfg(tmp_path_factory) -> Config:
    """The toy segmentation config reading a small generated data set (calibration: train; guard: val)."""
    from mmmnv2.datasets import data_root_options, generate_segmentation
    root = str(tmp_path_factory.mktemp('mobile_seg_data'))
    generate_segmentation(root, num_train=4, num_val=4)
    cfg = Config.fromfile(SEG_CONFIG)
    cfg.merge_from_dict(dict(option.split('=', 1) for option in data_root_options(cfg, root)))
    return cfg


# The fallback (two int8 conversions) on the faster converter, LiteRT's; ExecuTorch's file image in, result out
@pytest.mark.parametrize('fmt,max_drop', [('tflite', -1.0), ('executorch', 100.0)])
def test_int8_through_the_format_quantizer_with_the_guard(fmt, max_drop, seg_data_cfg, toy_checkpoints, tmp_path):
    """int8 from the checkpoint: the fp32 file written beside it, calibrated on the train set, scored against fp32
    on the val set; a negative margin takes the guard's fallback (first convolution and classifier in float) and
    is reported as missed. The .pte takes the image and returns the label map (``preprocess``, ``postprocess``):
    calibrated on the train images and scored on the val images resized to its image size, by the runners."""
    from mmmnv2.deployment import quantize_model
    model, checkpoint = toy_checkpoints['seg']
    out = str(tmp_path / f'model_int8{FORMATS[fmt]}')
    image_in = fmt == 'executorch'
    report = quantize_model(seg_data_cfg, checkpoint, out, calib_images=4, max_drop=max_drop, num_threads=1,
                            preprocess=image_in, image_size=TOY_IMAGE if image_in else None, postprocess=image_in)
    assert report['backend'] == {'tflite': 'litert', 'executorch': 'executorch'}[fmt]
    assert report['fp32_model'] == str(tmp_path / f'model_int8_fp32{FORMATS[fmt]}')
    assert report['calibration'] == dict(split='train', images=4)
    assert len(report['attempts']) == (1 if max_drop > 0 else 2)
    assert report['within_margin'] == (max_drop > 0)
    if max_drop < 0:
        assert set(report['kept_fp32']) == {'backbone.conv1.conv', 'decode_head.conv_seg'}
    if fmt == 'tflite':  # read in the flatbuffer: the kept layers are the only float convolutions
        assert float_convolutions(out) == (2 if max_drop < 0 else 0)
    with open(out.replace(FORMATS[fmt], '.json')) as f:
        assert json.load(f) == report
    # int8 weights: a quarter of the float file's size, give or take the float layers and scales
    assert osp.getsize(out) < 0.4 * osp.getsize(report['fp32_model'])
    runner = init_exported_model(seg_data_cfg, out, num_threads=1)
    if image_in:
        assert runner.session.input_shape == [1, *TOY_IMAGE, 3] and runner.postprocess['task'] == 'segmentation'
        fp32_runner = init_exported_model(seg_data_cfg, report['fp32_model'], num_threads=1)
        data = toy_batch(runner.cfg, str(tmp_path / 'data'), 'seg')
        for e, a in zip(fp32_runner.test_step(data), runner.test_step(data), strict=True):
            assert a.pred_sem_seg.data.shape == e.pred_sem_seg.data.shape == (1, *TOY_IMAGE)
            # random weights: one class wins almost everywhere, so this shows a working file, not int8's accuracy
            # (the network's int8 noise is measured on the logits of the network-only file above)
            assert float((a.pred_sem_seg.data == e.pred_sem_seg.data).float().mean()) >= 0.99
        return
    inputs = torch.rand(1, 3, *fixed_input_size(seg_data_cfg)) * 2 - 1
    with torch.no_grad():
        expected = model(inputs, mode='tensor')
    # int8 noise, not another network: measured 4-5% of the largest logit with random weights
    assert relative_difference(expected, runner(inputs, mode='tensor')) < 0.15


def test_calibration_images_through_the_test_pipeline(tmp_path):
    """``image_inputs``: image files without annotations through the config's test pipeline (the toy config resizes
    by 0.75) and data preprocessor ([-1, 1]); an image not coming out at the graph's size, or none, is refused."""
    import mmcv
    import numpy as np

    from mmmnv2.deployment.mobile_quantization import image_inputs
    random = np.random.default_rng(0)
    fits, too_large = str(tmp_path / 'fits.png'), str(tmp_path / 'too_large.png')
    mmcv.imwrite(random.integers(0, 256, (256, 256, 3), dtype=np.uint8), fits)
    mmcv.imwrite(random.integers(0, 256, (512, 512, 3), dtype=np.uint8), too_large)
    [inputs] = image_inputs(SEG_CONFIG, [fits])
    assert inputs.shape == (1, 3, 192, 192) and inputs.dtype == np.float32
    assert -1 <= inputs.min() < -0.9 and 0.9 < inputs.max() <= 1
    with pytest.raises(ValueError, match=r'too_large\.png: comes out of the test pipeline at 384x384, not at the '
                                         r"config's input size 192x192"):
        image_inputs(SEG_CONFIG, [fits, too_large])
    with pytest.raises(ValueError, match='images must name at least one image file'):
        image_inputs(SEG_CONFIG, [])


def decoded_images(data: dict) -> List[np.ndarray]:
    """The batch's images as a decoder gives them to an app: uint8 (1, H, W, 3) RGB, at their own size."""
    import mmcv
    return [np.ascontiguousarray(mmcv.imread(sample.img_path)[None, ..., ::-1]) for sample in data['data_samples']]


@pytest.mark.parametrize('fmt', list(FORMATS))
def test_quantizers_leave_the_pre_and_post_processing_in_float(fmt):
    """The image-in, result-out graph as the PT2E quantizers see it: the format's own quantizer annotates the box
    decoding's arithmetic (the hazard), ``float_modules_quantizer`` with ``PIPELINE_MODULES`` annotates only the
    network's operators."""
    from mmmnv2.deployment.export import exportable_network
    from mmmnv2.deployment.mobile_quantization import (
        ANNOTATION_KEY,
        PIPELINE_MODULES,
        float_modules_quantizer,
        format_quantizer,
        in_modules,
    )
    _, network, _, example = exportable_network(DET_CONFIG, None, True, TOY_IMAGE, True)

    def annotated(quantizer) -> Dict[str, int]:
        """'pipeline' / 'network' -> the operators the quantizer annotated there."""
        with torch.no_grad():
            graph = torch.export.export(network, (example,), strict=False).module()
        graph = quantizer.annotate(quantizer.transform_for_annotation(graph))
        nodes = [node for node in graph.graph.nodes if node.op == 'call_function' and ANNOTATION_KEY in node.meta]
        return {'pipeline': sum(in_modules(node, PIPELINE_MODULES) for node in nodes),
                'network': sum(not in_modules(node, PIPELINE_MODULES) for node in nodes)}
    alone = annotated(format_quantizer(fmt))
    assert alone['pipeline'] > 0  # measured: 7 multiplications (tflite); 22 operators (executorch)
    kept = annotated(float_modules_quantizer(format_quantizer(fmt), PIPELINE_MODULES))
    assert kept == dict(pipeline=0, network=alone['network'])


def test_int8_image_in_result_out_file_gives_the_pytorch_detections(toy_checkpoints, tmp_path):
    """``quantize_mobile`` with ``preprocess`` / ``postprocess``: a .tflite that takes the decoded uint8 image and
    returns the detections, calibrated on those images; run by the runner on toy images, its detections are the
    PyTorch model's within int8 noise: the box decoding and NMS in float (quantized, the best boxes were measured
    40-46 px off, in a .pte)."""
    from mmmnv2.deployment.mobile_quantization import quantize_mobile
    model, checkpoint = toy_checkpoints['det']
    data = toy_batch(DET_CONFIG, str(tmp_path / 'data'), 'det')
    out = quantize_mobile(DET_CONFIG, checkpoint, 'tflite', str(tmp_path / 'det_int8.tflite'), decoded_images(data),
                          preprocess=True, image_size=TOY_IMAGE, postprocess=True)
    runner = init_model(DET_CONFIG, out)
    assert runner.session.input_shape == [1, *TOY_IMAGE, 3] and runner.postprocess['task'] == 'detection'
    with torch.no_grad():
        expected = model.test_step(data)
    actual = runner.test_step(toy_batch(runner.cfg, str(tmp_path / 'data'), 'det'))
    for e, a in zip(expected, actual, strict=True):
        print('int8 image in, result out: best scores', e.pred_instances.scores[:3], a.pred_instances.scores[:3])
    assert_same_detections(expected, actual)


def test_export_tool_hands_the_image_options_to_int8(tmp_path, monkeypatch, capsys):
    """``--int8 --preprocess --postprocess --image-size``: the tool quantizes the image-in, result-out file (the
    quantization itself is tested above; here what the tool passes on, and refuses)."""
    import mmmnv2.deployment
    calls = []

    def quantize_model(config, model_file, out_file, **options):
        calls.append(options)
        return dict(metric='mIoU', backend='executorch', fp32=50.0, int8=49.5, drop=0.5, max_drop=1.0,
                    kept_fp32={}, within_margin=True, int8_model=out_file,
                    attempts=[dict(int8=49.5, drop=0.5, kept_fp32={})])
    monkeypatch.setattr(mmmnv2.deployment, 'quantize_model', quantize_model)
    out = str(tmp_path / 'seg_int8.pte')
    run_tool_in_process(monkeypatch, 'deployment/export_mobile.py',
                        [SEG_CONFIG, 'seg.pth', '--format', 'executorch', '--out', out, '--int8', '--calib-images',
                         '8', '--preprocess', '--postprocess', '--image-size', '480', '640'])
    assert calls == [dict(calib_images=8, max_drop=1.0, num_threads=None, preprocess=True, image_size=(480, 640),
                          postprocess=True)]
    assert f'Wrote {out}' in capsys.readouterr().out
    with pytest.raises(SystemExit) as stop:
        run_tool_in_process(monkeypatch, 'deployment/export_mobile.py',
                            [SEG_CONFIG, 'seg.pth', '--format', 'executorch', '--out', out, '--int8', '--shape', '96',
                             '96'])
    assert stop.value.code == 2 and 'it takes neither --verify nor --shape' in capsys.readouterr().err


def test_int8_onnx_file_refuses_the_image_options(tmp_path):
    from mmmnv2.deployment import quantize_model
    checkpoint = tmp_path / 'model.pth'
    checkpoint.write_bytes(b'')
    with pytest.raises(ValueError, match=r'preprocess, image_size and postprocess are for int8 \.tflite / \.pte '
                                         r'files .*an int8 \.onnx file is the network only'):
        quantize_model(SEG_CONFIG, str(checkpoint), str(tmp_path / 'int8.onnx'), preprocess=True, postprocess=True)
