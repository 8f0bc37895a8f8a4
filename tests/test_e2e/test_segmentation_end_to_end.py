"""Mobile DeepLabv3 end to end on the embedded toy data, through the tools users run: train, resume, test, TTA.

The paper's segmentor (no ASPP, OS 16) trains from scratch on CPU in minutes and must really learn: val mIoU >= 50
(an untrained model scores ~11; background everywhere would score ~21). Training is interrupted half-way and resumed
with ``--resume``, which must continue from the checkpoint, not from iteration 0; ``tools/test.py`` on the final
checkpoint must reproduce the final validation mIoU, and ``--tta`` must run the config's multi-scale + flip TTA.
"""
import glob
import json
import os
import os.path as osp
import re
import subprocess
import sys

import pytest
import torch
from mmengine.config import Config

from mmmnv2.datasets import generate_segmentation

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG = sorted(glob.glob(osp.join(REPO, 'configs', 'mobile_deeplabv3', '*toyshapes*.py')))[0]
LEARNED_MIOU = 50.0  # threshold the toy model must reach
UNTRAINED_MIOU = 30.0  # measured ~11; predicting background everywhere would score ~21
MAX_ITERS = Config.fromfile(CONFIG).train_cfg.max_iters
INTERRUPTED_AT = MAX_ITERS // 2


def data_options(root: str):
    return [f'{loader}.dataset.data_root={root}' for loader in ('train_dataloader', 'val_dataloader',
                                                                 'test_dataloader')]


def run_tool(*args, check: bool = True) -> subprocess.CompletedProcess:
    # One intra-op thread: oversubscribed OpenMP threads spin instead of working when the 2 cores are shared.
    env = dict(os.environ, OMP_NUM_THREADS='1')
    result = subprocess.run([sys.executable, *args], cwd=REPO, env=env, capture_output=True, text=True)
    if check and result.returncode != 0:
        raise AssertionError(f'{args} failed:\n{result.stdout[-3000:]}\n{result.stderr[-5000:]}')
    return result


def val_records(work_dir: str):
    """Every validation record MMEngine wrote to ``vis_data/scalars.json``, by iteration."""
    records = []
    for path in glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json')):
        with open(path) as f:
            records += [json.loads(line) for line in f if '"mIoU"' in line]
    return sorted(records, key=lambda r: r['step'])


def reported_miou(output: str) -> float:
    match = re.findall(r'Iter\(test\).*?mIoU: ([0-9.]+)', output)
    assert match, output[-3000:]
    return float(match[-1])


@pytest.fixture(scope='module')
def toy_data(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('toyshapes_seg'))
    generate_segmentation(root)
    return root


@pytest.fixture(scope='module')
def trained(toy_data, tmp_path_factory):
    """Train the toy config to INTERRUPTED_AT ("killed" there), then ``--resume`` it to the end of its schedule."""
    work_dir = str(tmp_path_factory.mktemp('mobile_deeplabv3_work'))
    common = ['--work-dir', work_dir, '--cfg-options', *data_options(toy_data)]
    first = run_tool('tools/train.py', CONFIG, *common, f'train_cfg.max_iters={INTERRUPTED_AT}')
    assert osp.exists(osp.join(work_dir, f'iter_{INTERRUPTED_AT}.pth'))
    resumed = run_tool('tools/train.py', CONFIG, '--resume', *common)
    return work_dir, first.stdout + first.stderr, resumed.stdout + resumed.stderr


def test_interrupted_training_resumes_from_its_checkpoint(trained):
    work_dir, first_log, resumed_log = trained
    first = [int(i) for i in re.findall(rf'Iter\(train\) \[\s*(\d+)/{INTERRUPTED_AT}\]', first_log)]
    assert first and max(first) == INTERRUPTED_AT
    assert f'resumed epoch: 0, iter: {INTERRUPTED_AT}' in resumed_log
    iterations = [int(i) for i in re.findall(rf'Iter\(train\) \[\s*(\d+)/{MAX_ITERS}\]', resumed_log)]
    assert iterations and min(iterations) > INTERRUPTED_AT and max(iterations) == MAX_ITERS
    final = torch.load(osp.join(work_dir, f'iter_{MAX_ITERS}.pth'), map_location='cpu')  # weights_only
    assert final['meta']['iter'] == MAX_ITERS
    # The schedulers continued too: the cosine schedule (the last one, ending at MAX_ITERS) made every step of an
    # uninterrupted run (its last step is MAX_ITERS - 1); restarted, it would stop at MAX_ITERS - INTERRUPTED_AT - 1.
    assert final['param_schedulers'][-1]['last_step'] == MAX_ITERS - 1


def test_toy_segmentor_learns(trained):
    work_dir, _, _ = trained
    records = val_records(work_dir)
    assert [r['step'] for r in records][-1] == MAX_ITERS, records
    assert records[-1]['mIoU'] >= LEARNED_MIOU, records


def test_test_tool_reproduces_final_validation(trained, toy_data, tmp_path):
    work_dir, _, _ = trained
    final = val_records(work_dir)[-1]['mIoU']
    out = str(tmp_path / 'label_maps')
    result = run_tool('tools/test.py', CONFIG, osp.join(work_dir, f'iter_{MAX_ITERS}.pth'), '--work-dir',
                      str(tmp_path), '--out', out, '--cfg-options', *data_options(toy_data))
    assert reported_miou(result.stdout + result.stderr) == pytest.approx(final, abs=0.01)
    with open(osp.join(toy_data, 'ImageSets', 'Segmentation', 'val.txt')) as f:
        num_val = len(f.read().split())
    assert len(glob.glob(osp.join(out, '*.png'))) == num_val


def test_tta_runs_the_configs_scales_and_flips(trained, toy_data, tmp_path):
    work_dir, _, _ = trained
    result = run_tool('tools/test.py', CONFIG, osp.join(work_dir, f'iter_{MAX_ITERS}.pth'), '--tta', '--work-dir',
                      str(tmp_path), '--cfg-options', *data_options(toy_data))
    assert reported_miou(result.stdout + result.stderr) >= LEARNED_MIOU


def test_untrained_segmentor_scores_far_below(toy_data, tmp_path):
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS
    init_default_scope('mmseg')
    model = MODELS.build(Config.fromfile(CONFIG).model)
    model.init_weights()
    checkpoint = str(tmp_path / 'untrained.pth')
    torch.save({'state_dict': model.state_dict()}, checkpoint)
    result = run_tool('tools/test.py', CONFIG, checkpoint, '--work-dir', str(tmp_path),
                      '--cfg-options', *data_options(toy_data))
    assert reported_miou(result.stdout + result.stderr) < UNTRAINED_MIOU
