"""Post-processing inside the exported graph (``export_onnx(..., postprocess=True)``) on the trained toy models.

The runners' results from a post-processed file must be the hosts' Python post-processing of the same network:
detections with the same labels and scores, best first (tied scores in any order), boxes within float tolerance, also
at score_thr 0 (every anchor a candidate for NMS); identical segmentation label maps (also for a padded image); in
onnxruntime and OpenVINO.
The files are the tool chain's exports (``toy_runs.toy_tool_invocations``: ``--postprocess``; score_thr 0 by
``add_postprocess`` on the network-only export). The metric through ``tools/test.py`` is in test_onnx_end_to_end.py.
"""
import copy
import os.path as osp

import onnx
import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.registry import DATASETS, init_default_scope
from toy_runs import DET_CONFIG, SEG_CONFIG, SEG_MAX_ITERS, det_data_options, seg_data_options

from mmmnv2.apis import init_model
from mmmnv2.deployment import add_postprocess, init_exported_model

BOX_TOLERANCE = 1e-3  # pixels; measured up to 5e-5 (float32 decoding in another order)
SCORE_TOLERANCE = 1e-5  # measured up to 7e-7


def toy_config(config: str, options: list) -> Config:
    cfg = Config.fromfile(config)
    cfg.merge_from_dict(dict(option.split('=', 1) for option in options))
    return cfg


def val_batch(cfg: Config, count: int = 8) -> dict:
    """The first val images through the config's test pipeline, as the data loader gives them."""
    init_default_scope(cfg.default_scope)
    dataset = DATASETS.build(cfg.test_dataloader.dataset)
    return pseudo_collate([dataset[i] for i in range(count)])


def graph_ops(onnx_file: str) -> set:
    return {node.op_type for node in onnx.load(onnx_file).graph.node}


BACKENDS = ('onnxruntime', 'openvino')


def exported_file(run) -> str:
    run.check()
    return run.args[run.args.index('--output-file') + 1]


def assert_same_detections(actual, expected, full: bool, backend: str) -> None:
    """The same scores rank by rank, and each detection's label and box among the host's of the same score.

    Detections whose scores tie (within float tolerance) have no defined order: the host's NMS and the runtime's
    may list them differently. Where the list is full (``max_per_img``), a tie at its last score may also keep
    different members of the tied group; only such detections may be missing from the other side.
    """
    torch.testing.assert_close(actual.scores, expected.scores, atol=SCORE_TOLERANCE, rtol=0)
    assert bool((actual.scores[1:] <= actual.scores[:-1]).all()), backend  # best first, as the host sorts
    unmatched = list(range(len(expected)))
    last_score = expected.scores[-1]
    for i in range(len(actual)):
        candidates = [j for j in unmatched
                      if abs(float(expected.scores[j] - actual.scores[i])) <= SCORE_TOLERANCE
                      and int(expected.labels[j]) == int(actual.labels[i])
                      and float((expected.bboxes[j] - actual.bboxes[i]).abs().max()) <= BOX_TOLERANCE]
        if candidates:
            unmatched.remove(candidates[0])
        else:
            assert full and abs(float(actual.scores[i] - last_score)) <= SCORE_TOLERANCE, (
                f'{backend}: detection {i} (label {int(actual.labels[i])}, score {float(actual.scores[i]):.6f}, '
                f'box {actual.bboxes[i].tolist()}) is not among the host\'s detections of that score')
    for j in unmatched:
        assert full and abs(float(expected.scores[j] - last_score)) <= SCORE_TOLERANCE, (
            f'{backend}: the host\'s detection {j} is missing')


def test_detection_postprocessing_in_the_graph_equals_the_hosts(trained_detector, det_toy_data, det_tool_runs,
                                                               tmp_path):
    cfg = toy_config(DET_CONFIG, det_data_options(det_toy_data))
    checkpoint = osp.join(trained_detector, 'iter_600.pth')
    model = init_model(cfg, checkpoint, 'cpu')
    data = val_batch(cfg)
    # The config's test_cfg, then score_thr 0: every (anchor, class) pair a candidate, the largest NMS load.
    for score_thr in (cfg.model.test_cfg.score_thr, 0.0):
        if score_thr == cfg.model.test_cfg.score_thr:
            onnx_file = exported_file(det_tool_runs['export_postprocessed'])
        else:
            cfg.model.test_cfg.score_thr = model.bbox_head.test_cfg.score_thr = score_thr
            onnx_file = add_postprocess(cfg, exported_file(det_tool_runs['export']),
                                        str(tmp_path / 'postprocessed.onnx'))
        assert 'NonMaxSuppression' in graph_ops(onnx_file)
        assert [o.name for o in onnx.load(onnx_file).graph.output] == ['boxes', 'scores', 'labels']
        with torch.no_grad():
            expected = model.test_step(copy.deepcopy(data))
        max_per_img = cfg.model.test_cfg.max_per_img
        for backend in BACKENDS:
            actual = init_exported_model(cfg, onnx_file, num_threads=1, backend=backend).test_step(copy.deepcopy(data))
            for e, a in zip(expected, actual, strict=True):
                e, a = e.pred_instances, a.pred_instances
                assert 1 <= len(e) <= max_per_img and len(a) == len(e), backend
                if score_thr == 0:
                    assert len(e) == max_per_img  # thousands of candidates: NMS leaves more than max_per_img
                assert_same_detections(a, e, full=len(e) == max_per_img, backend=backend)

    other = copy.deepcopy(cfg)
    other.model.test_cfg.score_thr = 0.5
    with pytest.raises(ValueError, match=r'score_thr: 0\.0 in the file, 0\.5 in the config'):
        init_exported_model(other, onnx_file)
    with pytest.raises(ValueError, match='already ends with its post-processing'):
        add_postprocess(cfg, onnx_file, str(tmp_path / 'twice.onnx'))


def test_segmentation_postprocessing_in_the_graph_equals_the_hosts(trained_segmentor, seg_toy_data, seg_tool_runs):
    cfg = toy_config(SEG_CONFIG, seg_data_options(seg_toy_data))
    checkpoint = osp.join(trained_segmentor, f'iter_{SEG_MAX_ITERS}.pth')
    onnx_file = exported_file(seg_tool_runs['export_postprocessed'])
    assert {'ArgMax', 'Resize'} <= graph_ops(onnx_file)
    output, = onnx.load(onnx_file).graph.output
    assert output.type.tensor_type.elem_type == onnx.TensorProto.UINT8

    model = init_model(cfg, checkpoint, 'cpu')
    runners = [init_exported_model(cfg, onnx_file, num_threads=1, backend=backend) for backend in BACKENDS]
    from mmseg.structures import SegDataSample
    generator = torch.Generator().manual_seed(0)
    padded = {'inputs': [torch.randint(0, 255, (3, 150, 170), dtype=torch.uint8, generator=generator)],
              'data_samples': [SegDataSample(metainfo=dict(ori_shape=(150, 170), img_shape=(150, 170)))]}
    agreement, val_labels = [], []
    for data in (val_batch(cfg), padded):
        # The Python post-processing of the same padded network input the runner feeds the graph.
        batch = runners[0].data_preprocessor(copy.deepcopy(data), False)
        with torch.no_grad():
            logits = model(batch['inputs'], mode='tensor')
        samples = batch['data_samples']
        expected = model.postprocess_result(
            model.decode_head.predict_by_feat(logits, [s.metainfo for s in samples]), samples)
        for runner in runners:
            actual = runner.test_step(copy.deepcopy(data))
            for e, a in zip(expected, actual, strict=True):
                assert a.pred_sem_seg.data.dtype == e.pred_sem_seg.data.dtype
                assert a.pred_sem_seg.data.shape == e.pred_sem_seg.data.shape == (1, *e.ori_shape)
                agreement.append(float((a.pred_sem_seg.data == e.pred_sem_seg.data).float().mean()))
                if data is not padded:
                    val_labels.append(e.pred_sem_seg.data.unique())
    assert min(agreement) == 1.0, agreement  # measured: identical label maps
    assert len(torch.cat(val_labels).unique()) > 1  # a model that tells classes apart

