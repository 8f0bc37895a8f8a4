"""The main job: train and evaluate the toy SSDLite and Mobile DeepLabv3 on the embedded synthetic data.

    python tools/misc/toy_experiments.py [--work-dir work_dirs/toy] [--data data] [--tasks det seg]

For each task: generate the data set (once), train with ``tools/train.py``, evaluate the last checkpoint with
``tools/test.py``, plot the loss and validation curves (``<task>/curves.png``) and draw ground truth beside
prediction on the val images (``<task>/pictures/<image>.jpg``). Everything goes through the same tools and configs a
user runs. Ends with a results table (metric in percent, the range the README states, whether the run fell in it,
wall time, where the curves and pictures are), also written to ``results.md`` and ``results.json`` in the work dir.
"""
import argparse
import glob
import json
import os
import os.path as osp
import re
import subprocess
import sys
import time
import warnings
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
for _message, _category in KNOWN_WARNINGS:
    warnings.filterwarnings('ignore', message=re.escape(_message), category=_category)

TASKS = {
    # task: (config pattern, data folder under --data); the metric is the host's (mmmnv2.utils.HOSTS)
    'det': ('configs/ssdlite/*toyshapes*.py', 'toyshapes_det'),
    'seg': ('configs/mobile_deeplabv3/*toyshapes*.py', 'toyshapes_seg'),
}
SAMPLE_PICTURES = 2  # listed in the results table per task


def python_warnings_env() -> str:
    """``PYTHONWARNINGS`` value ignoring ``KNOWN_WARNINGS`` (message prefixes) in the processes this job starts."""
    filters = [os.environ['PYTHONWARNINGS']] if os.environ.get('PYTHONWARNINGS') else []
    # PYTHONWARNINGS cannot hold ':' or ',' inside a message: cut the prefix before the first one.
    filters += [f'ignore:{re.split("[:,]", message)[0]}:{category.__name__}' for message, category in KNOWN_WARNINGS]
    return ','.join(filters)


def run(args: List[str], log_path: str) -> None:
    """Run a tool, showing its progress lines in full and keeping its whole output in ``log_path``."""
    env = dict(os.environ, OMP_NUM_THREADS=os.environ.get('OMP_NUM_THREADS', '1'),
               PYTHONWARNINGS=python_warnings_env())
    with open(log_path, 'w') as log:
        process = subprocess.Popen([sys.executable, *args], cwd=REPO, env=env, stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, text=True)
        for line in process.stdout:
            log.write(line)
            evaluating = 'Iter(val)' in line or 'Iter(test)' in line
            if (' - mmengine - INFO - Iter(' in line and not (evaluating and 'eta: ' in line)) or 'Error' in line:
                print('   ', line.split(' - INFO - ')[-1].rstrip(), flush=True)  # training progress, metrics
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--work-dir', default='work_dirs/toy')
    parser.add_argument('--data', default='data', help='parent directory of the toy data sets')
    parser.add_argument('--tasks', nargs='+', choices=sorted(TASKS), default=['det', 'seg'])
    args = parser.parse_args()
    env = dict(os.environ, PYTHONWARNINGS=python_warnings_env())

    rows = []
    for task in args.tasks:
        pattern, folder = TASKS[task]
        config = sorted(glob.glob(osp.join(REPO, pattern)))[0]
        host = config_host(Config.fromfile(config))
        key, name = host.metric, host.metric_name
        work_dir = osp.abspath(osp.join(args.work_dir, task))
        os.makedirs(work_dir, exist_ok=True)
        start = time.time()
        data_root = osp.join(args.data, folder)
        if not osp.isdir(data_root):
            print(f'[{task}] generating {data_root}', flush=True)
            subprocess.run([sys.executable, 'tools/misc/generate_toy_data.py', '--task', task, '--out',
                            osp.abspath(args.data)], cwd=REPO, env=env, check=True)
        print(f'[{task}] training {osp.relpath(config, REPO)} -> {work_dir}', flush=True)
        options = data_root_options(config, data_root)
        run(['tools/train.py', config, '--work-dir', work_dir, '--cfg-options', *options],
            osp.join(work_dir, 'train_output.log'))
        with open(osp.join(work_dir, 'last_checkpoint')) as f:
            checkpoint = f.read().strip()
        print(f'[{task}] testing {checkpoint}', flush=True)
        run(['tools/test.py', config, checkpoint, '--work-dir', work_dir, '--cfg-options', *options],
            osp.join(work_dir, 'test_output.log'))
        value = latest_metrics(work_dir)[key] * host.metric_to_percent
        curves = plot_curves(work_dir, key)
        pictures = draw_pictures(config, checkpoint, options, osp.join(work_dir, 'pictures'))
        print(f'[{task}] {name} {value:.1f}%; curves: {curves}; pictures: {osp.dirname(pictures[0])}/', flush=True)
        expected = readme_range(config)
        rows.append(dict(task=task, config=osp.relpath(config, REPO), metric=name, value=round(value, 2),
                         expected=expected, verdict=verdict(value, expected), seconds=round(time.time() - start, 1),
                         checkpoint=shown(checkpoint), curves=shown(curves),
                         pictures=[shown(p) for p in pictures[:SAMPLE_PICTURES]],
                         pictures_dir=shown(osp.dirname(pictures[0]))))

    table = results_table(rows)
    with open(osp.join(args.work_dir, 'results.md'), 'w') as f:
        f.write(table + '\n')
    with open(osp.join(args.work_dir, 'results.json'), 'w') as f:
        json.dump(rows, f, indent=2)
    print(f'\nResults (also in {osp.join(args.work_dir, "results.md")} and results.json)\n\n{table}')


if __name__ == '__main__':
    main()
