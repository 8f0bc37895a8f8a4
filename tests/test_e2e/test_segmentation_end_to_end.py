"""Mobile DeepLabv3 end to end on the embedded toy data, through the tools users run: train, resume, test, TTA.

The paper's segmentor (no ASPP, OS 16) trains from scratch on CPU in minutes and must really learn: val mIoU >= 50
(an untrained model scores ~11; background everywhere would score ~21). A short training interrupted half-way and
resumed with ``--resume`` must continue from the checkpoint, not from iteration 0; ``tools/test.py`` on the final
checkpoint must reproduce the final validation mIoU, and ``--tta`` must run the config's multi-scale + flip TTA.
"""
import glob
import os.path as osp
import re

import pytest
import torch
from mmengine.config import Config
from toy_runs import (
    LEARNED,
    RESUME_INTERRUPTED_AT,
    RESUME_MAX_ITERS,
    SEG_CONFIG,
    SEG_MAX_ITERS,
    logged_metrics,
    reported,
    scalars,
    work_dir_of,
)

from mmmnv2.utils import HOSTS

LEARNED_MIOU = LEARNED['seg']
UNTRAINED_MIOU = 30.0  # measured ~11; predicting background everywhere would score ~21


def val_records(work_dir: str):
    """Every validation record MMEngine wrote to ``vis_data/scalars.json``, by iteration."""
    return scalars(work_dir, 'mIoU')[1]


def test_interrupted_training_resumes_from_its_checkpoint(resumed_segmentor_run):
    work_dir, first_log, resumed_log = resumed_segmentor_run
    interrupted_at, max_iters = RESUME_INTERRUPTED_AT, RESUME_MAX_ITERS
    first = [int(i) for i in re.findall(rf'Iter\(train\) \[\s*(\d+)/{interrupted_at}\]', first_log)]
    assert first and max(first) == interrupted_at
    assert f'resumed epoch: 0, iter: {interrupted_at}' in resumed_log
    iterations = [int(i) for i in re.findall(rf'Iter\(train\) \[\s*(\d+)/{max_iters}\]', resumed_log)]
    assert iterations and min(iterations) > interrupted_at and max(iterations) == max_iters
    final = torch.load(osp.join(work_dir, f'iter_{max_iters}.pth'), map_location='cpu')  # weights_only
    assert final['meta']['iter'] == max_iters
    # The schedulers continued too: the cosine schedule (the last one, ending at the config's full length) made one
    # step per iteration of an uninterrupted run (capped at its end - 1); restarted, it would count only the
    # iterations after the restart (max_iters - interrupted_at).
    cosine_end = Config.fromfile(SEG_CONFIG).param_scheduler[-1]['end']
    assert final['param_schedulers'][-1]['last_step'] == min(max_iters, cosine_end - 1) != max_iters - interrupted_at


def test_toy_segmentor_learns(trained_segmentor):
    work_dir = trained_segmentor
    records = val_records(work_dir)
    assert [r['step'] for r in records][-1] == SEG_MAX_ITERS, records
    assert records[-1]['mIoU'] >= LEARNED_MIOU, records


def test_test_tool_reproduces_final_validation(trained_segmentor, seg_toy_data, seg_tool_runs):
    final = val_records(trained_segmentor)[-1]['mIoU']
    run = seg_tool_runs['test']
    assert reported('mIoU', run.check()) == pytest.approx(final, abs=0.01)
    with open(osp.join(seg_toy_data, 'ImageSets', 'Segmentation', 'val.txt')) as f:
        num_val = len(f.read().split())
    assert len(glob.glob(osp.join(work_dir_of(run), 'label_maps', '*.png'))) == num_val


def test_tta_runs_the_configs_scales_and_flips(trained_segmentor, seg_tool_runs):
    single = val_records(trained_segmentor)[-1]['mIoU']  # the same checkpoint without TTA (reproduced above)
    tta = reported('mIoU', seg_tool_runs['tta'].check())
    assert tta >= LEARNED_MIOU
    # The scales and flips ran: averaging them changes the predictions, so the mIoU is not the single pass's (which
    # the test above reproduces with the same checkpoint to 0.01).
    assert tta != pytest.approx(single, abs=0.01), (tta, single)


def test_host_record_names_the_logged_metric_and_its_scale(seg_tool_runs):
    """``HOSTS['mmseg']``, which the main job's results table reads, names this metric and its unit."""
    host = HOSTS['mmseg']
    assert (host.metric, host.metric_to_percent) == ('mIoU', 1.0)  # MMSegmentation's IoUMetric logs percent
    assert LEARNED_MIOU <= logged_metrics(seg_tool_runs['test'])[host.metric] * host.metric_to_percent <= 100


def test_untrained_segmentor_scores_far_below(seg_tool_runs):
    assert reported('mIoU', seg_tool_runs['untrained'].check()) < UNTRAINED_MIOU
