"""The trained toy models in OpenVINO and in int8: OpenVINO's fp32 outputs against onnxruntime's, and int8 models
(onnxruntime's static QDQ quantization, NNCF) within 1.0 point of fp32 on the val set, with the accuracy guard's
fallback (sensitive layers kept in float) taken and checked against the graph.

The detector (onnxruntime) and the segmentor (OpenVINO) go through ``tools/deployment/quantize.py`` in the session's
tool runs on the trained toys (``toy_runs.toy_tool_invocations``), the detector also with the default margin (the
success path: exit 0); the detector's int8 file is scored again by ``tools/test.py``, independently of the
quantization tool's own evaluation. The two other task/backend pairs run
``quantize_model`` here and are ``slow``: ``python -m pytest tests/test_e2e/test_int8_end_to_end.py -m slow``.
"""
import json

import numpy as np
import onnx
import pytest
from mmengine.config import Config
from toy_runs import (
    CALIB_IMAGES,
    DET_CONFIG,
    FORCE_FALLBACK,
    LEARNED,
    SEG_CONFIG,
    ToolRun,
    det_data_options,
    reported,
    seg_data_options,
    val_inputs,
)

from mmmnv2.deployment import init_exported_model, quantize_model

OUTPUT_TOLERANCE = 1e-4  # of the largest output; float32 (bfloat16, OpenVINO's default on some CPUs: ~5e-3)
MAX_DROP = 1.0  # points: mAP@0.5 in percent, mIoU
# The first convolution and the convolutions that produce the graph outputs, as the toy configs build them.
SENSITIVE = {'det': {'backbone.conv1.conv', *(f'bbox_head.{kind}_convs.{level}.1' for kind in ('cls', 'reg')
                                              for level in range(6))},
             'seg': {'backbone.conv1.conv', 'decode_head.conv_seg'}}
METRIC = {'det': 'coco/bbox_mAP_50', 'seg': 'mIoU'}


@pytest.fixture
def toy(det_tool_runs, seg_tool_runs, det_toy_data, seg_toy_data):
    """task -> (config, data options, fp32 ONNX file of the trained toy model): the file the export tool wrote in the
    session's tool runs on the trained toys (``det_tool_runs`` / ``seg_tool_runs``, dynamic batch).

    Both tasks' runs are requested by name, not looked up when called: the session then knows at collection that
    these tests need the trained toys, trains them in the background and runs these tests last."""
    tool_runs = dict(det=det_tool_runs, seg=seg_tool_runs)
    toy_data = dict(det=det_toy_data, seg=seg_toy_data)

    def get(task: str):
        export = tool_runs[task]['export']
        export.check()
        config, options = (DET_CONFIG, det_data_options) if task == 'det' else (SEG_CONFIG, seg_data_options)
        return config, options(toy_data[task]), export.args[export.args.index('--output-file') + 1]
    return get


def relative_difference(expected, actual) -> float:
    scale = max(float(np.abs(e).max()) for e in expected)
    return max(float(np.abs(e - a).max()) for e, a in zip(expected, actual, strict=True)) / scale


@pytest.mark.parametrize('task', ['det', 'seg'])
def test_openvino_outputs_equal_onnxruntime(task, toy):
    config, options, onnx_file = toy(task)
    inputs = val_inputs(config, options).numpy()
    onnxruntime = init_exported_model(config, onnx_file, num_threads=1).forward_network(inputs)
    openvino = init_exported_model(config, onnx_file, num_threads=1, backend='openvino').forward_network(inputs)
    assert [a.shape for a in openvino] == [a.shape for a in onnxruntime]
    assert relative_difference(onnxruntime, openvino) < OUTPUT_TOLERANCE


def quantized_convs(onnx_file: str) -> dict:
    """Conv node name -> whether its weight comes out of a DequantizeLinear (int8) or is a float initializer."""
    graph = onnx.load(onnx_file).graph
    producer = {output: node for node in graph.node for output in node.output}
    return {node.name: getattr(producer.get(node.input[1]), 'op_type', None) == 'DequantizeLinear'
            for node in graph.node if node.op_type == 'Conv'}


def check_report(task: str, report: dict, fp32_file: str, int8_file: str) -> None:
    first, fallback = report['attempts']  # the forced fallback ran
    # int8 within a point of fp32, with everything quantized and with the sensitive layers in float
    assert first['drop'] <= MAX_DROP and fallback['drop'] <= MAX_DROP, report
    assert report['fp32'] >= LEARNED[task]  # a trained model (mAP@0.5 in percent, mIoU)
    assert first['kept_fp32'] == {} and not report['within_margin']
    assert set(report['kept_fp32'].values()) == SENSITIVE[task]
    # The written int8 file keeps exactly those layers in float: every other convolution has int8 weights.
    fp32_convs = {node.name for node in onnx.load(fp32_file).graph.node if node.op_type == 'Conv'}
    int8 = quantized_convs(int8_file)
    assert set(int8) == fp32_convs
    assert {name for name, quantized in int8.items() if not quantized} == set(report['kept_fp32'])


def int8_file(run: ToolRun) -> str:
    """The int8 file a ``tools/deployment/quantize.py`` run wrote (its ``--out``)."""
    return run.args[run.args.index('--out') + 1]


def quantization_report(run: ToolRun) -> dict:
    """The report a ``tools/deployment/quantize.py`` run wrote (beside its int8 file)."""
    with open(int8_file(run).replace('.onnx', '.json')) as f:
        return json.load(f)


def test_detector_int8_onnxruntime_through_the_tool(det_tool_runs):
    """The command line: the guard's fallback named, exit status 1 (the margin is never met), the report written;
    the int8 file then scored by ``tools/test.py`` as the report says."""
    run = det_tool_runs['int8_onnxruntime']
    assert run.returncode == 1, run.output[-3000:]
    assert 'more than --max-drop' in run.output and 'bbox_head.cls_convs.0.1' in run.output
    report = quantization_report(run)
    check_report('det', report, run.args[2], int8_file(run))
    tested = det_tool_runs['int8_test']
    assert tested.args[2] == int8_file(run)
    assert reported(METRIC['det'], tested.check()) * 100 == pytest.approx(report['int8'], abs=1e-6)


def test_detector_int8_within_the_default_margin_exits_0_after_one_attempt(det_tool_runs):
    """The command line as a user runs it (default ``--max-drop`` 1.0): the forced run above measured the fully
    quantized model's drop within a point, so the guard keeps it at the first attempt and the tool succeeds."""
    forced, run = det_tool_runs['int8_onnxruntime'], det_tool_runs['int8_default']
    assert '--max-drop' not in run.args and run.returncode == 0, run.output[-3000:]
    report = quantization_report(run)
    assert quantization_report(forced)['attempts'][0]['drop'] <= MAX_DROP  # the premise, measured on the same model
    assert report['within_margin'] and report['max_drop'] == MAX_DROP, report
    assert len(report['attempts']) == 1 and report['kept_fp32'] == {}, report
    int8 = quantized_convs(int8_file(run))
    assert int8 and all(int8.values())  # every convolution with int8 weights


def test_segmentor_int8_openvino_through_the_tool(seg_tool_runs):
    """NNCF through the command line, calibrated on the train set: within a point of fp32 with everything
    quantized and with the guard's fallback."""
    run = seg_tool_runs['int8_openvino']
    assert run.returncode == 1 and 'more than --max-drop' in run.output, run.output[-3000:]
    report = quantization_report(run)
    check_report('seg', report, run.args[2], int8_file(run))
    assert report['calibration'] == dict(split='train', images=CALIB_IMAGES)


@pytest.mark.slow
@pytest.mark.parametrize('task,backend', [('det', 'openvino'), ('seg', 'onnxruntime')])
def test_int8_within_a_point(task, backend, toy, tmp_path):
    config, options, onnx_file = toy(task)
    cfg = Config.fromfile(config)
    cfg.merge_from_dict(dict(option.split('=', 1) for option in options))
    out = str(tmp_path / 'model_int8.onnx')
    report = quantize_model(cfg, onnx_file, out, backend, calib_images=CALIB_IMAGES, max_drop=float(FORCE_FALLBACK),
                            num_threads=1)
    check_report(task, report, onnx_file, out)
    assert report['calibration'] == dict(split='train', images=CALIB_IMAGES)
