"""Two training processes on CPU (torchrun, gloo) through tools/dist_train.sh and tools/dist_test.sh.

Two processes x 300 iterations x 8 images see the same number of images as the single-process toy schedule
(600 x 8), so the accuracy must land within noise of the single-process run's (val mAP@0.5 0.79 at 600 iterations;
threshold 0.5 as in the single-process test).
"""
import os
import os.path as osp
import re
import subprocess
import sys

import pytest

from mmmnv2.datasets import generate_detection

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG = 'configs/ssdlite/ssdlite_mobilenetv2_1xb8-600i_toyshapes-192x192.py'


@pytest.mark.slow
def test_two_process_training_and_evaluation(tmp_path):
    data = str(tmp_path / 'data') + '/'
    generate_detection(data)
    options = [f'{loader}.dataset.data_root={data}' for loader in ('train_dataloader', 'val_dataloader',
                                                                    'test_dataloader')]
    options += [f'{evaluator}.ann_file={data}annotations/instances_val.json' for evaluator in ('val_evaluator',
                                                                                                'test_evaluator')]
    # Half the iterations per process; the schedule (cosine over max_iters) is shortened with it.
    options += ['train_cfg.max_iters=300', 'train_cfg.val_interval=300', 'param_scheduler.1.T_max=300',
                'param_scheduler.1.end=300', 'default_hooks.checkpoint.interval=300']
    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHON=sys.executable, PORT='29517')
    work_dir = str(tmp_path / 'work')
    train = subprocess.run(['bash', 'tools/dist_train.sh', CONFIG, '2', '--work-dir', work_dir, '--cfg-options',
                            *options], cwd=REPO, env=env, capture_output=True, text=True)
    assert train.returncode == 0, train.stdout[-3000:] + train.stderr[-3000:]
    log = train.stdout + train.stderr
    assert 'Distributed launcher: pytorch' in log or 'world_size: 2' in log or 'World size: 2' in log, log[-3000:]
    maps = [float(v) for v in re.findall(r'coco/bbox_mAP_50: ([0-9.]+)', log)]
    assert maps and maps[-1] >= 0.5, maps

    test = subprocess.run(['bash', 'tools/dist_test.sh', CONFIG, osp.join(work_dir, 'iter_300.pth'), '2',
                           '--work-dir', work_dir, '--cfg-options', *options], cwd=REPO, env=env,
                          capture_output=True, text=True)
    assert test.returncode == 0, test.stdout[-3000:] + test.stderr[-3000:]
    tested = [float(v) for v in re.findall(r'coco/bbox_mAP_50: ([0-9.]+)', test.stdout + test.stderr)]
    assert tested and tested[-1] == pytest.approx(maps[-1], abs=1e-3)
