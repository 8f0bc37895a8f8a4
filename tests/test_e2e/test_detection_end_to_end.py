"""SSDLite end to end on the embedded toy data, through the tools users run: train, test, resume, inference.

The model trains from scratch on CPU in minutes and must really learn: val bbox mAP@0.5 >= 0.5 (an untrained model
scores ~0). ``tools/test.py`` on the saved checkpoint must reproduce the final validation mAP, MMDetection's own
``tools/test.py`` and ``DetInferencer`` must run our config, and ``--resume`` must continue an interrupted run.
"""
import glob
import os.path as osp
import pickle
import re

import pytest
import torch
from mmengine.config import Config
from toy_runs import DET_CONFIG as CONFIG
from toy_runs import LEARNED, logged_metrics, reported, run_tool, scalars, work_dir_of
from toy_runs import det_data_options as data_options

from mmmnv2.utils import HOSTS

LEARNED_MAP50 = LEARNED['det'] / 100  # mAP@0.5 as MMDetection logs it, a fraction; an untrained model scores ~0
UNTRAINED_MAP50 = 0.05
METRIC = 'coco/bbox_mAP_50'


def final_map50(work_dir: str) -> float:
    return scalars(work_dir, METRIC)[1][-1][METRIC]


def test_toy_detector_learns(trained_detector):
    train, val = scalars(trained_detector, METRIC)
    assert train[-1]['iter'] == 600
    train_cfg = Config.fromfile(CONFIG).train_cfg
    assert [r['step'] for r in val] == list(range(train_cfg.val_interval, 601, train_cfg.val_interval))
    assert val[-1]['coco/bbox_mAP_50'] >= LEARNED_MAP50, val


def test_test_tool_reproduces_final_validation(trained_detector, det_tool_runs):
    final = final_map50(trained_detector)
    run = det_tool_runs['test']
    assert reported(METRIC, run.check()) == pytest.approx(final, abs=1e-3)
    with open(osp.join(work_dir_of(run), 'predictions.pkl'), 'rb') as f:
        predictions = pickle.load(f)
    assert len(predictions) == 32 and 'pred_instances' in predictions[0]
    assert len(glob.glob(osp.join(work_dir_of(run), '*', 'pictures', '*.jpg'))) == 32


def test_host_record_names_the_logged_metric_and_its_scale(det_tool_runs):
    """``HOSTS['mmdet']``, which the main job's results table reads, names this metric and its unit."""
    host = HOSTS['mmdet']
    assert (host.metric, host.metric_to_percent) == (METRIC, 100.0)  # COCO metrics are fractions
    assert LEARNED_MAP50 * 100 <= logged_metrics(det_tool_runs['test'])[host.metric] * host.metric_to_percent <= 100


def test_untrained_detector_scores_near_zero(det_tool_runs):
    assert reported(METRIC, det_tool_runs['untrained'].check()) < UNTRAINED_MAP50


def test_mmdetection_test_tool_and_inferencer_run_our_config(trained_detector, det_toy_data, det_tool_runs, tmp_path):
    final = final_map50(trained_detector)
    assert reported(METRIC, det_tool_runs['host_test'].check()) == pytest.approx(final, abs=1e-3)

    from mmdet.apis import DetInferencer
    inferencer = DetInferencer(model=CONFIG, weights=osp.join(trained_detector, 'iter_600.pth'), device='cpu',
                               show_progress=False)
    images = sorted(glob.glob(osp.join(det_toy_data, 'val', '*.jpg')))[:8]
    output = inferencer(images, out_dir=str(tmp_path / 'inferencer'), no_save_pred=False)
    predictions = output['predictions']
    # A trained model: confident detections on the val images (single images may hold only hard objects).
    assert max(max(p['scores']) for p in predictions) > 0.5
    assert len(glob.glob(str(tmp_path / 'inferencer' / 'vis' / '*.jpg'))) == len(images)
    assert len(glob.glob(str(tmp_path / 'inferencer' / 'preds' / '*.json'))) == len(images)
    # The same detections as our own inference path with the same checkpoint.
    from mmmnv2.apis import inference, init_model
    model = init_model(CONFIG, osp.join(trained_detector, 'iter_600.pth'), 'cpu')
    for prediction, (_, sample) in zip(predictions, inference(model, images), strict=True):
        ours = sample.pred_instances
        assert prediction['labels'][:5] == ours.labels[:5].tolist()
        assert torch.allclose(torch.tensor(prediction['bboxes'][:5]), ours.bboxes[:5], atol=1e-2)


@pytest.mark.slow  # two more training runs; resuming is proven in the default run by the segmentation e2e test
def test_interrupted_training_resumes_from_last_checkpoint(det_toy_data, tmp_path):
    work_dir = str(tmp_path / 'work')
    common = ['--work-dir', work_dir, '--cfg-options', *data_options(det_toy_data), 'train_cfg.val_interval=1000',
              'default_hooks.checkpoint.interval=10', 'default_hooks.checkpoint.save_best=None',
              'default_hooks.logger.interval=5']
    # "Interrupted" at iteration 10: the first run stops there, as a killed job leaves its last checkpoint.
    run_tool('tools/train.py', CONFIG, *common, 'train_cfg.max_iters=10')
    assert osp.exists(osp.join(work_dir, 'iter_10.pth'))
    result = run_tool('tools/train.py', CONFIG, '--resume', *common, 'train_cfg.max_iters=20')
    log = result.stdout + result.stderr
    assert 'resumed epoch: 0, iter: 10' in log
    iterations = [int(i) for i in re.findall(r'Iter\(train\) \[\s*(\d+)/20\]', log)]
    assert iterations and min(iterations) > 10 and max(iterations) == 20
    resumed = torch.load(osp.join(work_dir, 'iter_20.pth'), map_location='cpu')  # weights_only, allow-listed
    assert resumed['meta']['iter'] == 20
    # The schedulers' state was restored too: the cosine schedule is 20 steps in, not 10.
    assert [s['last_step'] for s in resumed['param_schedulers']] == [20, 20]


@pytest.mark.slow  # two tool processes; the same refusals are proven in-process in tests/test_safety/
def test_malicious_checkpoint_is_refused(det_toy_data, tmp_path, malicious_payload):
    payload, marker = malicious_payload
    checkpoint = tmp_path / 'evil.pth'
    torch.save({'state_dict': {}, 'meta': payload}, checkpoint)
    for tool_args in (['tools/train.py', CONFIG, '--resume', str(checkpoint)],
                      ['tools/test.py', CONFIG, str(checkpoint)]):
        # The variable users set to load old checkpoints must not re-enable unpickling code.
        result = run_tool(*tool_args, '--work-dir', str(tmp_path / 'work'), '--cfg-options',
                          *data_options(det_toy_data), check=False, env={'TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD': '1'})
        assert result.returncode != 0
        assert f'Refused to load checkpoint {checkpoint}' in result.stderr
        assert not marker.exists()


def test_num_classes_mismatch_fails_before_training(det_toy_data, tmp_path):
    result = run_tool('tools/train.py', CONFIG, '--work-dir', str(tmp_path), '--cfg-options',
                      *data_options(det_toy_data), 'model.bbox_head.num_classes=4', check=False)
    assert result.returncode != 0
    # MMDetection's NumClassCheckHook names both counts (its message, typos included)
    assert re.search(r'The `num_classes` \(4\) in SSDLiteHead of SSDLite does not matches the length of '
                     r'`classes` 3\) in StrictCocoDataset', result.stderr), result.stderr[-2000:]
    assert not glob.glob(str(tmp_path / '*.pth'))
