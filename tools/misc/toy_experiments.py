"""The main job: train and evaluate the toy SSDLite and Mobile DeepLabv3 on the embedded synthetic data.

    python tools/misc/toy_experiments.py [--work-dir work_dirs/toy] [--tasks det seg]

For each task: generate the data set (once), train with ``tools/train.py``, evaluate the last checkpoint with
``tools/test.py`` (drawing the predictions on the val images), then print a summary: metric, wall time, where the
files are. Everything goes through the same tools and configs a user runs.
"""
import argparse
import glob
import json
import os
import os.path as osp
import subprocess
import sys
import time
from typing import Dict, List

from mmmnv2.datasets import data_root_options

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))

TASKS = {
    # task: (config pattern, data folder under --data, metric key, metric name)
    'det': ('configs/ssdlite/*toyshapes*.py', 'toyshapes_det', 'coco/bbox_mAP_50', 'bbox mAP@0.5'),
    'seg': ('configs/mobile_deeplabv3/*toyshapes*.py', 'toyshapes_seg', 'mIoU', 'mIoU'),
}


def run(args: List[str], log_path: str) -> None:
    """Run a tool, showing its progress lines and keeping its full output in ``log_path``."""
    env = dict(os.environ, OMP_NUM_THREADS=os.environ.get('OMP_NUM_THREADS', '1'))
    with open(log_path, 'w') as log:
        process = subprocess.Popen([sys.executable, *args], cwd=REPO, env=env, stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, text=True)
        for line in process.stdout:
            log.write(line)
            if ' - mmengine - INFO - Iter(' in line or 'Error' in line:
                print('   ', line.split(' - INFO - ')[-1].rstrip()[:150], flush=True)
        if process.wait() != 0:
            raise SystemExit(f'{args[0]} failed; see {log_path}')


def latest_metrics(work_dir: str) -> Dict[str, float]:
    """Metrics of the newest test run in ``work_dir`` (MMEngine writes ``<timestamp>/<timestamp>.json``)."""
    paths = sorted(glob.glob(osp.join(work_dir, '*', '*.json')))
    if not paths:
        raise SystemExit(f'no metrics found under {work_dir}')
    with open(paths[-1]) as f:
        return json.load(f)


def plot_curves(work_dir: str, metric: str) -> str:
    """Loss and validation-metric curves of the training run in ``work_dir``, saved as ``curves.png``."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    paths = sorted(glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json')))
    with open(paths[0]) as f:  # the first run is the training run; later ones are tests
        records = [json.loads(line) for line in f]
    train = [r for r in records if 'loss' in r]
    val = [r for r in records if metric in r]
    val_iters = [train[-1]['iter'] * (i + 1) // len(val) for i in range(len(val))]  # validation is periodic
    figure, (loss_axis, metric_axis) = plt.subplots(1, 2, figsize=(10, 4))
    loss_axis.plot([r['iter'] for r in train], [r['loss'] for r in train])
    loss_axis.set(xlabel='iteration', ylabel='training loss', title='loss')
    metric_axis.plot(val_iters, [r[metric] for r in val], marker='o')
    metric_axis.set(xlabel='iteration', ylabel=metric, title='validation')
    figure.tight_layout()
    path = osp.join(work_dir, 'curves.png')
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--work-dir', default='work_dirs/toy')
    parser.add_argument('--data', default='data', help='parent directory of the toy data sets')
    parser.add_argument('--tasks', nargs='+', choices=sorted(TASKS), default=['det', 'seg'])
    args = parser.parse_args()

    summary = []
    for task in args.tasks:
        pattern, folder, key, name = TASKS[task]
        config = sorted(glob.glob(osp.join(REPO, pattern)))[0]
        work_dir = osp.abspath(osp.join(args.work_dir, task))
        os.makedirs(work_dir, exist_ok=True)
        start = time.time()
        data_root = osp.join(args.data, folder)
        if not osp.isdir(data_root):
            print(f'[{task}] generating {data_root}', flush=True)
            subprocess.run([sys.executable, 'tools/misc/generate_toy_data.py', '--task', task, '--out', args.data],
                           cwd=REPO, check=True)
        print(f'[{task}] training {osp.relpath(config, REPO)} -> {work_dir}', flush=True)
        options = ['--cfg-options', *data_root_options(config, data_root)]
        run(['tools/train.py', config, '--work-dir', work_dir, *options], osp.join(work_dir, 'train_output.log'))
        with open(osp.join(work_dir, 'last_checkpoint')) as f:
            checkpoint = f.read().strip()
        print(f'[{task}] testing {checkpoint}', flush=True)
        pictures = osp.join(work_dir, 'predictions')  # absolute: MMSegmentation takes --show-dir from the cwd
        run(['tools/test.py', config, checkpoint, '--work-dir', work_dir, '--show-dir', pictures, *options],
            osp.join(work_dir, 'test_output.log'))
        metrics = latest_metrics(work_dir)
        print(f'[{task}] curves: {plot_curves(work_dir, key)}', flush=True)
        summary.append((task, name, metrics[key], time.time() - start, work_dir))

    print('\nSummary')
    for task, name, value, seconds, work_dir in summary:
        print(f'  {task}: {name} = {value:.3f}   ({seconds / 60:.1f} min)   files: {work_dir}')


if __name__ == '__main__':
    main()
