"""The main job: train and evaluate the toy SSDLite and Mobile DeepLabv3 on the embedded synthetic data.

    python tools/misc/toy_experiments.py [--work-dir work_dirs/toy] [--data data] [--tasks det seg]

For each task: generate the data set (once), train with ``tools/train.py``, evaluate the last checkpoint with
``tools/test.py`` (the tasks side by side, one process each), then plot the loss and validation curves
(``<task>/curves.png``) and draw ground truth beside prediction on the val images (``<task>/pictures/<image>.jpg``).
Everything goes through the same tools and configs a user runs. Ends with a results table (metric in percent, the
range the README states, whether the run fell in it, wall time, where the curves and pictures are), also written to
``results.md`` and ``results.json`` in the work dir; the exit status is 1 when a metric is outside the README's range.
``results.json`` also records the fingerprint of the code that trained the models (``code_fingerprint``), by which
the test suite knows it may test these models instead of training its own.
"""
import argparse
import glob
import hashlib
import json
import os
import os.path as osp
import re
import subprocess
import sys
import threading
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from typing import Dict, List, Optional, Tuple

from mmengine.config import Config

from mmmnv2.datasets import data_root_options
from mmmnv2.utils import config_host

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))

# Deprecation notices of the third-party stack that say nothing about this run (printed once per process, tens of
# lines): setuptools' pkg_resources (imported by mmengine / mmcv), mmseg's own build_loss and avg_non_ignore notes,
# torch's meshgrid indexing. Filtered here and in the tools this job starts (PYTHONWARNINGS), not in the hosts.
KNOWN_WARNINGS = (
    ('pkg_resources is deprecated', UserWarning),
    ('Deprecated call to `pkg_resources', DeprecationWarning),
    ('``build_loss`` would be deprecated', Warning),
    ('Default ``avg_non_ignore`` is False', Warning),
    ('torch.meshgrid: in an upcoming release', UserWarning),
)
TASKS = {
    # task: (config pattern, data folder under --data); the metric is the host's (mmmnv2.utils.HOSTS)
    'det': ('configs/ssdlite/*toyshapes*.py', 'toyshapes_det'),
    'seg': ('configs/mobile_deeplabv3/*toyshapes*.py', 'toyshapes_seg'),
}
SAMPLE_PICTURES = 2  # listed in the results table per task
# What the trained models depend on besides the data: the package, the configs, the tools, the host stack's versions.
FINGERPRINTED = ('setup.py', 'mmmnv2/**/*.py', 'configs/**/*.py', 'tools/**/*.py')
_PRINT = threading.Lock()  # one line at a time from the tasks running side by side


def code_fingerprint() -> str:
    """SHA-256 of the checkout's code that trains and tests the toy models, and of the host stack's versions."""
    import mmcv
    import mmdet
    import mmengine
    import mmseg
    import torch
    digest = hashlib.sha256()
    files = sorted({path for pattern in FINGERPRINTED for path in glob.glob(osp.join(REPO, pattern), recursive=True)})
    for path in files:
        digest.update(osp.relpath(path, REPO).encode())
        with open(path, 'rb') as f:
            digest.update(hashlib.sha256(f.read()).digest())
    for module in (torch, mmengine, mmcv, mmdet, mmseg):
        digest.update(f'{module.__name__} {module.__version__}'.encode())
    return digest.hexdigest()


def python_warnings_env() -> str:
    """``PYTHONWARNINGS`` value ignoring ``KNOWN_WARNINGS`` (message prefixes) in the processes this job starts."""
    filters = [os.environ['PYTHONWARNINGS']] if os.environ.get('PYTHONWARNINGS') else []
    # PYTHONWARNINGS cannot hold ':' or ',' inside a message: cut the prefix before the first one.
    filters += [f'ignore:{re.split("[:,]", message)[0]}:{category.__name__}' for message, category in KNOWN_WARNINGS]
    return ','.join(filters)


def say(text: str) -> None:
    with _PRINT:
        print(text, flush=True)


def run(args: List[str], log_path: str, task: str) -> None:
    """Run a tool, showing its progress lines (prefixed by the task) and keeping its whole output in ``log_path``."""
    env = dict(os.environ, OMP_NUM_THREADS=os.environ.get('OMP_NUM_THREADS', '1'),
               PYTHONWARNINGS=python_warnings_env())
    with open(log_path, 'w') as log:
        process = subprocess.Popen([sys.executable, *args], cwd=REPO, env=env, stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, text=True)
        for line in process.stdout:
            log.write(line)
            evaluating = 'Iter(val)' in line or 'Iter(test)' in line
            if (' - mmengine - INFO - Iter(' in line and not (evaluating and 'eta: ' in line)) or 'Error' in line:
                say(f'  [{task}] ' + line.split(' - INFO - ')[-1].rstrip())  # training progress, metrics
        if process.wait() != 0:
            raise SystemExit(f'{args[0]} failed; see {log_path}')


def latest_metrics(work_dir: str) -> Dict[str, float]:
    """Metrics of the newest test run in ``work_dir`` (MMEngine writes ``<timestamp>/<timestamp>.json``)."""
    paths = sorted(glob.glob(osp.join(work_dir, '*', '*.json')))
    if not paths:
        raise SystemExit(f'no metrics found under {work_dir}')
    with open(paths[-1]) as f:
        return json.load(f)


def readme_range(config: str, readme: str = osp.join(REPO, 'README.md')) -> Optional[Tuple[float, float]]:
    """The trained range (low, high) the README's results table gives for ``config``, in percent; None if absent.

    The row naming the config holds it as ``LOW - HIGH``; fractions (both at most 1) are taken as such.
    """
    if not osp.exists(readme):
        return None
    name = osp.relpath(config, REPO)
    with open(readme, encoding='utf-8') as f:
        rows = [line for line in f if line.startswith('|') and name in line]
    for row in rows:
        match = re.search(r'([0-9]+(?:\.[0-9]+)?) ?- ?([0-9]+(?:\.[0-9]+)?)', row.replace(name, ''))
        if match:
            low, high = float(match.group(1)), float(match.group(2))
            return (low * 100, high * 100) if high <= 1 else (low, high)
    return None


def verdict(value: float, expected: Optional[Tuple[float, float]]) -> str:
    if expected is None:
        return 'no range stated'
    if value < expected[0]:
        return 'BELOW the range'
    return 'ABOVE the range' if value > expected[1] else 'OK'


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
    figure, (loss_axis, metric_axis) = plt.subplots(1, 2, figsize=(10, 4))
    loss_axis.plot([r['iter'] for r in train], [r['loss'] for r in train])
    loss_axis.set(xlabel='iteration', ylabel='training loss', title='loss')
    metric_axis.plot([r['step'] for r in val], [r[metric] for r in val], marker='o')
    metric_axis.set(xlabel='iteration', ylabel=metric, title='validation')
    figure.tight_layout()
    path = osp.join(work_dir, 'curves.png')
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


def draw_pictures(config: str, checkpoint: str, options: List[str], out_dir: str) -> List[str]:
    """Ground truth beside prediction for every val image, from the checkpoint (``mmmnv2.visualization``)."""
    from mmmnv2.apis import init_model
    from mmmnv2.visualization import save_dataset_pictures

    cfg = Config.fromfile(config)
    cfg.merge_from_dict(dict(option.split('=', 1) for option in options))
    return save_dataset_pictures(init_model(cfg, checkpoint, 'cpu'), out_dir)


def shown(path: str) -> str:
    """``path`` relative to the current folder when inside it, else absolute."""
    relative = osp.relpath(path)
    return osp.abspath(path) if relative.startswith('..') else relative


def results_table(rows: List[Dict]) -> str:
    """The rows as a Markdown table (what is printed and written to ``results.md``)."""
    lines = ['| task | metric | ours (%) | README range (%) | verdict | wall time | curves | sample pictures |',
             '|---|---|---|---|---|---|---|---|']
    for r in rows:
        expected = '-' if r['expected'] is None else f'{r["expected"][0]:.1f} - {r["expected"][1]:.1f}'
        lines.append(f'| {r["task"]} | {r["metric"]} | {r["value"]:.1f} | {expected} | {r["verdict"]} | '
                     f'{r["seconds"] / 60:.1f} min | {r["curves"]} | {", ".join(r["pictures"])} |')
    return '\n'.join(lines)


def train_and_test(task: str, args: argparse.Namespace, env: Dict[str, str]) -> Dict:
    """Generate the task's data (once), train, and test the last checkpoint; returns what the results row needs."""
    pattern, folder = TASKS[task]
    config = sorted(glob.glob(osp.join(REPO, pattern)))[0]
    work_dir = osp.abspath(osp.join(args.work_dir, task))
    os.makedirs(work_dir, exist_ok=True)
    start = time.time()
    data_root = osp.abspath(osp.join(args.data, folder))
    if not osp.isdir(data_root):
        say(f'[{task}] generating {data_root}')
        subprocess.run([sys.executable, 'tools/misc/generate_toy_data.py', '--task', task, '--out',
                        osp.abspath(args.data)], cwd=REPO, env=env, check=True, stdout=subprocess.DEVNULL)
    say(f'[{task}] training {osp.relpath(config, REPO)} -> {work_dir}')
    options = data_root_options(config, data_root)
    run(['tools/train.py', config, '--work-dir', work_dir, '--cfg-options', *options],
        osp.join(work_dir, 'train_output.log'), task)
    with open(osp.join(work_dir, 'last_checkpoint')) as f:
        checkpoint = f.read().strip()
    say(f'[{task}] testing {checkpoint}')
    run(['tools/test.py', config, checkpoint, '--work-dir', work_dir, '--cfg-options', *options],
        osp.join(work_dir, 'test_output.log'), task)
    return dict(config=config, work_dir=work_dir, data_root=data_root, options=options, checkpoint=checkpoint,
                seconds=time.time() - start)


def results_row(task: str, trained: Dict) -> Dict:
    """The task's row: its metric against the README's range, its curves and pictures (drawn here)."""
    start = time.time()
    config, work_dir, checkpoint = trained['config'], trained['work_dir'], trained['checkpoint']
    host = config_host(Config.fromfile(config))
    value = latest_metrics(work_dir)[host.metric] * host.metric_to_percent
    curves = plot_curves(work_dir, host.metric)
    pictures = draw_pictures(config, checkpoint, trained['options'], osp.join(work_dir, 'pictures'))
    say(f'[{task}] {host.metric_name} {value:.1f}%; curves: {curves}; pictures: {osp.dirname(pictures[0])}/')
    expected = readme_range(config)
    seconds = round(trained['seconds'] + time.time() - start, 1)
    return dict(task=task, config=osp.relpath(config, REPO), metric=host.metric_name, value=round(value, 2),
                expected=expected, verdict=verdict(value, expected), seconds=seconds, checkpoint=shown(checkpoint),
                curves=shown(curves), pictures=[shown(p) for p in pictures[:SAMPLE_PICTURES]],
                pictures_dir=shown(osp.dirname(pictures[0])), work_dir=work_dir,
                checkpoint_file=osp.abspath(checkpoint), data_root=trained['data_root'])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--work-dir', default='work_dirs/toy')
    parser.add_argument('--data', default='data', help='parent directory of the toy data sets')
    parser.add_argument('--tasks', nargs='+', choices=sorted(TASKS), default=['det', 'seg'])
    args = parser.parse_args()
    for message, category in KNOWN_WARNINGS:
        warnings.filterwarnings('ignore', message=re.escape(message), category=category)
    env = dict(os.environ, PYTHONWARNINGS=python_warnings_env())

    # the trainings side by side (each a single-threaded process), then the pictures one task after the other
    with ThreadPoolExecutor(len(args.tasks)) as pool:
        trained = {task: pool.submit(train_and_test, task, args, env) for task in args.tasks}
        trained = {task: future.result() for task, future in trained.items()}
    fingerprint = code_fingerprint()
    rows = [dict(results_row(task, trained[task]), code_fingerprint=fingerprint) for task in args.tasks]

    table = results_table(rows)
    with open(osp.join(args.work_dir, 'results.md'), 'w') as f:
        f.write(table + '\n')
    with open(osp.join(args.work_dir, 'results.json'), 'w') as f:
        json.dump(rows, f, indent=2)
    print(f'\nResults (also in {osp.join(args.work_dir, "results.md")} and results.json)\n\n{table}')
    outside = [f'{row["task"]} {row["metric"]} {row["value"]:.1f}% ({row["verdict"]})' for row in rows
               if row['verdict'] != 'OK']
    if outside:
        raise SystemExit(f'error: outside the README\'s range: {", ".join(outside)}')


if __name__ == '__main__':
    main()
