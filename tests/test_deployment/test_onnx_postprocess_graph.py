"""The ONNX post-processing graphs (``postprocess_graph``) against the hosts' Python post-processing, on random
network outputs (no export: the graph is appended to a pass-through "network"), in onnxruntime and OpenVINO.

Detection: MMDetection's ``predict_by_feat`` of the same head (softmax and TF's sigmoid scores; with and without the
``nms_pre`` cap; at score_thr 0, every (anchor, class) pair a candidate). Segmentation: MMSegmentation's
``predict_by_feat`` + ``postprocess_result`` (padding crop, resize to the image, argmax) with either
``align_corners``. The exported models are compared in tests/test_e2e/test_onnx_postprocess.py.
"""
import copy

import numpy as np
import onnx
import onnxruntime
import pytest
import torch
from mmengine.config import Config
from onnx import TensorProto, helper
from toy_runs import DET_CONFIG, SEG_CONFIG

from mmmnv2.apis import init_model
from mmmnv2.deployment.postprocess_graph import (
    append_detection_postprocess,
    append_segmentation_postprocess,
    detection_settings,
    segmentation_settings,
)

BOX_TOLERANCE = 1e-3  # pixels
SCORE_TOLERANCE = 1e-5


def pass_through_network(outputs: dict) -> onnx.ModelProto:
    """A graph whose outputs are its inputs ('in/NAME' -> NAME): the network's outputs fed in directly."""
    nodes = [helper.make_node('Identity', [f'in/{name}'], [name]) for name in outputs]
    graph = helper.make_graph(
        nodes, 'network',
        [helper.make_tensor_value_info(f'in/{name}', TensorProto.FLOAT, list(a.shape)) for name, a in outputs.items()],
        [helper.make_tensor_value_info(name, TensorProto.FLOAT, list(a.shape)) for name, a in outputs.items()])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid('', 20)], ir_version=10)


def run_both(model: onnx.ModelProto, feeds: dict) -> list:
    """The graph's outputs in onnxruntime, after checking that OpenVINO gives the same."""
    onnx.checker.check_model(model)
    expected = onnxruntime.InferenceSession(model.SerializeToString(),
                                            providers=['CPUExecutionProvider']).run(None, feeds)
    import openvino
    core = openvino.Core()
    compiled = core.compile_model(core.read_model(model.SerializeToString()), 'CPU',
                                  {'INFERENCE_PRECISION_HINT': 'f32'})
    results = compiled(feeds)
    for e, output in zip(expected, compiled.outputs, strict=True):
        found = results[output]
        assert found.dtype == e.dtype and found.shape == e.shape
        if e.dtype == np.float32:
            np.testing.assert_allclose(found, e, atol=BOX_TOLERANCE, rtol=0)
        else:
            np.testing.assert_array_equal(found, e)
    return expected


@pytest.mark.parametrize('scores, score_thr, nms_pre', [('softmax', None, None), ('softmax', 0.0, 50),
                                                        ('tf_sigmoid', 0.0, 1_000_000)],
                         ids=['toy-test-cfg', 'score-thr-0-nms-pre-50', 'tf-sigmoid-score-thr-0'])
def test_detection_graph_equals_predict_by_feat(scores, score_thr, nms_pre):
    cfg = Config.fromfile(DET_CONFIG)
    if scores == 'tf_sigmoid':
        cfg.model.bbox_head.loss_cls = dict(type='mmmnv2.TFSigmoidClassificationLoss')
    for key, value in (('score_thr', score_thr), ('nms_pre', nms_pre)):
        if value is not None:
            cfg.model.test_cfg[key] = value
    model = init_model(cfg, device='cpu')
    head = model.bbox_head
    height, width = 192, 192
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        shapes = model(torch.zeros(1, 3, height, width), mode='tensor')
    # Random network outputs of two images: logits that make scores differ, moderate box deltas.
    cls_scores = [torch.randn((2, *s.shape[1:]), generator=generator) * 3 for s in shapes[0]]
    bbox_preds = [torch.randn((2, *s.shape[1:]), generator=generator) for s in shapes[1]]
    outputs = {f'cls_score_{i}': t.numpy() for i, t in enumerate(cls_scores)}
    outputs.update({f'bbox_pred_{i}': t.numpy() for i, t in enumerate(bbox_preds)})
    graph = pass_through_network(outputs)
    settings = detection_settings(head, head.test_cfg)
    assert settings['activation'] == ('sigmoid_background' if scores == 'tf_sigmoid' else 'softmax')
    append_detection_postprocess(graph, head, settings, (height, width), [tuple(t.shape[-2:]) for t in cls_scores])
    assert 'NonMaxSuppression' in {node.op_type for node in graph.graph.node}
    assert [o.name for o in graph.graph.output] == ['boxes', 'scores', 'labels']
    boxes, found_scores, labels = run_both(graph, {f'in/{name}': a for name, a in outputs.items()})

    metas = [dict(img_shape=(height, width), scale_factor=(1.0, 1.0))] * 2
    expected = head.predict_by_feat(cls_scores, bbox_preds, batch_img_metas=metas, rescale=False)
    max_per_img = head.test_cfg.max_per_img
    for i, e in enumerate(expected):
        found = labels[i] >= 0
        assert 0 < len(e) <= max_per_img and found.sum() == len(e) and not found[len(e):].any()
        if score_thr == 0:
            assert len(e) == max_per_img
        np.testing.assert_array_equal(labels[i][found], e.labels.numpy())
        np.testing.assert_allclose(found_scores[i][found], e.scores.numpy(), atol=SCORE_TOLERANCE, rtol=0)
        np.testing.assert_allclose(boxes[i][found], e.bboxes.numpy(), atol=BOX_TOLERANCE, rtol=0)


@pytest.mark.parametrize('align_corners', [False, True])
@pytest.mark.parametrize('image', [(150, 170, 150, 170), (192, 192, 256, 256), (120, 192, 90, 144)],
                         ids=['padded', 'upscaled', 'padded-downscaled'])
def test_segmentation_graph_equals_postprocess_result(align_corners, image):
    """``image``: the valid height and width inside the 192x192 input, then the original image's."""
    from mmseg.structures import SegDataSample
    model = init_model(SEG_CONFIG, device='cpu')
    model.align_corners = model.decode_head.align_corners = align_corners
    settings = segmentation_settings(model)
    valid_h, valid_w, ori_h, ori_w = image
    size = 192
    logits = torch.randn((1, settings['num_classes'], 12, 12), generator=torch.Generator().manual_seed(0))
    graph = pass_through_network({'seg_logits': logits.numpy()})
    append_segmentation_postprocess(graph, settings, (size, size))
    assert {'ArgMax', 'Resize'} <= {node.op_type for node in graph.graph.node}
    assert graph.graph.output[0].type.tensor_type.elem_type == TensorProto.UINT8
    feeds = {'in/seg_logits': logits.numpy(), 'crop': np.array([0, 0, valid_h, valid_w]),
             'output_size': np.array([ori_h, ori_w])}
    labels, = run_both(graph, feeds)

    meta = dict(ori_shape=(ori_h, ori_w), img_shape=(valid_h, valid_w), pad_shape=(size, size),
                padding_size=[0, size - valid_w, 0, size - valid_h])
    samples = [SegDataSample(metainfo=meta)]
    expected = model.postprocess_result(model.decode_head.predict_by_feat(logits, [meta]), copy.deepcopy(samples))
    expected = expected[0].pred_sem_seg.data.numpy()
    assert labels.shape == (1, 1, ori_h, ori_w) and len(np.unique(expected)) == settings['num_classes']
    np.testing.assert_array_equal(labels[0], expected)


def test_postprocess_refuses_what_the_graph_does_not_reproduce():
    model = init_model(DET_CONFIG, device='cpu')
    head = model.bbox_head
    for change, message in ((dict(min_bbox_size=1), 'min_bbox_size 0 or none, got 1'),
                            (dict(nms_pre=-1), r'nms_pre >= 1 \(a large value for no cap\), got -1'),
                            (dict(nms=dict(type='nms', iou_threshold=0.5, class_agnostic=True)), 'class-aware'),
                            (dict(nms=dict(type='soft_nms', iou_threshold=0.5)), 'of type "nms"')):
        test_cfg = copy.deepcopy(head.test_cfg)
        test_cfg.update(change)
        with pytest.raises(ValueError, match=message):
            detection_settings(head, test_cfg)
