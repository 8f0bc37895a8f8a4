"""The trained toy models through ONNX: exported by the tool, evaluated by ``tools/test.py`` in onnxruntime and
OpenVINO.

The ONNX path's bbox mAP and mIoU must equal the PyTorch path's within 0.5 points (OpenVINO's within 0.05 points
of onnxruntime's), and the raw network outputs on the val images must agree to float32 precision. A file with the
post-processing in the graph (``--postprocess``) must score what the PyTorch model scores in both runtimes (its
predictions equal the Python post-processing's: test_onnx_postprocess.py); files taking the decoded image and
returning results (``--preprocess --postprocess``: detection as .tflite and .onnx, segmentation as .pte) within
0.5 points of it.
"""
import glob
import os.path as osp

import pytest
import torch
from toy_runs import (
    DET_CONFIG,
    LEARNED,
    SEG_CONFIG,
    SEG_MAX_ITERS,
    det_data_options,
    reported,
    seg_data_options,
    val_inputs,
    work_dir_of,
)

from mmmnv2.apis import init_model
from mmmnv2.deployment import init_exported_model, relative_difference

OUTPUT_TOLERANCE = 1e-4  # of the largest output; measured ~1e-6
METRIC_TOLERANCE = {'coco/bbox_mAP_50': 0.005, 'mIoU': 0.5}  # 0.5 points (mAP is a fraction, mIoU a percentage)
# A post-processed file: the same predictions up to float32 noise, so the metric as logged (mAP to 4 decimals, mIoU
# to 2).
POSTPROCESS_TOLERANCE = {'coco/bbox_mAP_50': 1e-4, 'mIoU': 0.01}


def check_onnx_scores_as_pytorch(config: str, metric: str, checkpoint: str, options: list, runs: dict,
                                 learned: float) -> None:
    """The export tool's file scores as the checkpoint through ``tools/test.py`` in onnxruntime and OpenVINO, and
    so does the file with the post-processing in the graph (the session's tool runs on the trained toy,
    ``toy_runs.toy_tool_invocations``); the host visualiser draws the predictions, and the raw outputs on val
    images are PyTorch's."""
    onnx_file = runs['export'].args[runs['export'].args.index('--output-file') + 1]
    runs['export'].check()
    runs['export_postprocessed'].check()
    expected, actual, openvino = (reported(metric, runs[name].check()) for name in ('test', 'onnx', 'openvino'))
    assert expected >= learned  # a trained model, not a degenerate one
    assert actual == pytest.approx(expected, abs=METRIC_TOLERANCE[metric])
    assert openvino == pytest.approx(actual, abs=METRIC_TOLERANCE[metric] / 10)  # same file, same float32
    for backend in ('onnxruntime', 'openvino'):
        postprocessed = reported(metric, runs[f'postprocessed_{backend}'].check())
        assert postprocessed == pytest.approx(expected, abs=POSTPROCESS_TOLERANCE[metric]), backend
    # image in, result out: the pre-processing in the file (one grey level from OpenCV's resize on some pixels)
    for name in [name for name in runs if name.startswith('image_')]:
        runs[f'export_{name}'].check()
        image_in = reported(metric, runs[name].check())
        print(f'{name}: {metric} {image_in} (PyTorch {expected})')
        assert image_in == pytest.approx(expected, abs=METRIC_TOLERANCE[metric]), name
    pictures = glob.glob(osp.join(work_dir_of(runs['onnx']), '**', 'pictures', '**', '*.[jp][pn]g'), recursive=True)
    assert len(pictures) == 32  # the host visualiser drew every ONNX prediction

    model = init_model(config, checkpoint, 'cpu')
    inputs = val_inputs(config, options)
    with torch.no_grad():
        reference = model(inputs, mode='tensor')
    runner = init_exported_model(config, onnx_file)
    assert relative_difference(reference, runner(inputs, mode='tensor')) < OUTPUT_TOLERANCE


def test_onnx_detector_scores_as_the_pytorch_model(trained_detector, det_toy_data, det_tool_runs):
    check_onnx_scores_as_pytorch(DET_CONFIG, 'coco/bbox_mAP_50', osp.join(trained_detector, 'iter_600.pth'),
                                 det_data_options(det_toy_data), det_tool_runs, learned=LEARNED['det'] / 100)


def test_onnx_segmentor_scores_as_the_pytorch_model(trained_segmentor, seg_toy_data, seg_tool_runs):
    check_onnx_scores_as_pytorch(SEG_CONFIG, 'mIoU', osp.join(trained_segmentor, f'iter_{SEG_MAX_ITERS}.pth'),
                                 seg_data_options(seg_toy_data), seg_tool_runs, learned=LEARNED['seg'])
