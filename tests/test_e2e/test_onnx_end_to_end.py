"""The trained toy models through ONNX: exported by the tool, evaluated by ``tools/test.py`` in onnxruntime and
OpenVINO.

The ONNX path's bbox mAP and mIoU must equal the PyTorch path's within 0.5 points (OpenVINO's within 0.05 points
of onnxruntime's), and the raw network outputs on the val images must agree to float32 precision. A file with the
post-processing in the graph (``--postprocess``) must score what the PyTorch model scores in both runtimes (its
predictions equal the Python post-processing's: test_onnx_postprocess.py).
"""
import glob
import os.path as osp

import pytest
import torch
from toy_runs import (
    DET_CONFIG,
    SEG_CONFIG,
    SEG_MAX_ITERS,
    det_data_options,
    reported,
    run_tool,
    run_tools_in_one_process,
    seg_data_options,
    val_inputs,
)

from mmmnv2.apis import init_model
from mmmnv2.deployment import init_onnx_model, relative_difference

OUTPUT_TOLERANCE = 1e-4  # of the largest output; measured ~1e-6
METRIC_TOLERANCE = {'coco/bbox_mAP_50': 0.005, 'mIoU': 0.5}  # 0.5 points (mAP is a fraction, mIoU a percentage)
# A post-processed file: the same predictions up to float32 noise, so the metric as logged (mAP to 4 decimals, mIoU
# to 2).
POSTPROCESS_TOLERANCE = {'coco/bbox_mAP_50': 1e-4, 'mIoU': 0.01}


@pytest.mark.parametrize('task', ['det', 'seg'])
def test_onnx_model_scores_as_the_pytorch_model(task, request, tmp_path):
    if task == 'det':
        config, metric, work_dir = DET_CONFIG, 'coco/bbox_mAP_50', request.getfixturevalue('trained_detector')
        options, checkpoint = det_data_options(request.getfixturevalue('det_toy_data')), 'iter_600.pth'
    else:
        config, metric, work_dir = SEG_CONFIG, 'mIoU', request.getfixturevalue('trained_segmentor')
        options, checkpoint = seg_data_options(request.getfixturevalue('seg_toy_data')), f'iter_{SEG_MAX_ITERS}.pth'
    checkpoint = osp.join(work_dir, checkpoint)
    onnx_file = str(tmp_path / 'model.onnx')
    run_tool('tools/deployment/pytorch2onnx.py', config, checkpoint, '--output-file', onnx_file, '--dynamic-batch')

    pytorch = run_tool('tools/test.py', config, checkpoint, '--work-dir', str(tmp_path / 'pytorch'),
                       '--cfg-options', *options)
    # --show-dir: MMDetection puts it in the run's folder, MMSegmentation takes it as given.
    show_dir = 'pictures' if task == 'det' else str(tmp_path / 'pictures')
    postprocessed_file = str(tmp_path / 'postprocessed.onnx')
    # onnxruntime, then OpenVINO (float32), then the post-processed file in both, in one process
    _, onnx, openvino, *postprocessed = run_tools_in_one_process([
        ['tools/deployment/pytorch2onnx.py', config, checkpoint, '--output-file', postprocessed_file, '--postprocess'],
        ['tools/test.py', config, onnx_file, '--work-dir', str(tmp_path / 'onnx'), '--num-threads', '1',
         '--show-dir', show_dir, '--cfg-options', *options],
        ['tools/test.py', config, onnx_file, '--backend', 'openvino', '--work-dir', str(tmp_path / 'openvino'),
         '--num-threads', '1', '--cfg-options', *options],
        *(['tools/test.py', config, postprocessed_file, '--backend', backend, '--work-dir',
           str(tmp_path / f'postprocessed_{backend}'), '--num-threads', '1', '--cfg-options', *options]
          for backend in ('onnxruntime', 'openvino'))]).split('=== running')[1:]
    expected = reported(metric, pytorch.stdout + pytorch.stderr)
    actual, openvino_metric = reported(metric, onnx), reported(metric, openvino)
    assert expected >= (0.5 if task == 'det' else 50)  # a trained model, not a degenerate one
    assert actual == pytest.approx(expected, abs=METRIC_TOLERANCE[metric])
    assert openvino_metric == pytest.approx(actual, abs=METRIC_TOLERANCE[metric] / 10)  # same file, same float32
    for log in postprocessed:
        assert reported(metric, log) == pytest.approx(expected, abs=POSTPROCESS_TOLERANCE[metric])
    pictures = glob.glob(str(tmp_path / '**' / 'pictures' / '**' / '*.[jp][pn]g'), recursive=True)
    assert len(pictures) == 32  # the host visualiser drew every ONNX prediction

    model = init_model(config, checkpoint, 'cpu')
    inputs = val_inputs(config, options)
    with torch.no_grad():
        reference = model(inputs, mode='tensor')
    assert relative_difference(reference, init_onnx_model(config, onnx_file)(inputs, mode='tensor')) < OUTPUT_TOLERANCE
