"""Shared helpers of the tests that train the toy models through the tools users run."""
import functools
import glob
import json
import os
import os.path as osp
import re
import runpy
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from typing import TYPE_CHECKING, Dict, List, Optional, Tuple

from mmengine.config import Config

from mmmnv2.datasets import data_root_options

if TYPE_CHECKING:
    import torch

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
DET_CONFIG = osp.join(REPO, 'configs/ssdlite/ssdlite_mobilenetv2_1xb8-600i_toyshapes-192x192.py')
SEG_CONFIG = osp.join(REPO, 'configs/mobile_deeplabv3/mobile-deeplabv3_mobilenetv2-os16_1xb8-300i_toyshapes-192x192.py')
SEG_MAX_ITERS = Config.fromfile(SEG_CONFIG).train_cfg.max_iters
SEG_INTERRUPTED_AT = SEG_MAX_ITERS // 2  # where the segmentation fixture's first run is "killed"


def run_tool(*args: str, check: bool = True, env: Optional[Dict[str, str]] = None) -> subprocess.CompletedProcess:
    """Run a Python tool of the repository with one intra-op thread.

    The test runner itself holds threads; oversubscribed OpenMP threads spin instead of working on 2 cores.
    """
    env = dict(os.environ, OMP_NUM_THREADS='1', **(env or {}))
    result = subprocess.run([sys.executable, *args], cwd=REPO, env=env, capture_output=True, text=True)
    if check and result.returncode != 0:
        raise AssertionError(f'{args} failed:\n{result.stdout[-3000:]}\n{result.stderr[-5000:]}')
    return result


# ``--cfg-options`` pointing each toy config's loaders (and detection's evaluators) at a generated data set
det_data_options = functools.partial(data_root_options, DET_CONFIG)
seg_data_options = functools.partial(data_root_options, SEG_CONFIG)


def scalars(work_dir: str, metric: str) -> Tuple[List[dict], List[dict]]:
    """(training records, records with ``metric``) of every ``vis_data/scalars.json`` in ``work_dir``, by step."""
    records = []
    for path in glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json')):
        with open(path) as f:
            records += [json.loads(line) for line in f]
    train = sorted((r for r in records if 'loss' in r), key=lambda r: r['iter'])
    evaluated = sorted((r for r in records if metric in r), key=lambda r: r['step'])
    return train, evaluated


def reported(metric: str, output: str) -> float:
    """The last value of ``metric`` a tool logged (e.g. 'coco/bbox_mAP_50', 'mIoU')."""
    match = re.findall(rf'{re.escape(metric)}: ([0-9.]+)', output)
    assert match, output[-3000:]
    return float(match[-1])


def run_tool_in_process(monkeypatch, tool: str, args: List[str]) -> None:
    """``python tools/<tool> ARGS`` in this process (``__main__``, its own ``sys.argv``, the checkout as the
    current folder): no interpreter start, where a separate process proves nothing more. A refusal surfaces as
    SystemExit with the message."""
    monkeypatch.setattr(sys, 'argv', [f'{REPO}/tools/{tool}', *args])
    monkeypatch.chdir(REPO)
    runpy.run_path(f'{REPO}/tools/{tool}', run_name='__main__')


def untrained_checkpoint(config: str, path: str) -> str:
    """Save the config's model with its initial (untrained) weights as a checkpoint; return the path."""
    import torch

    from mmmnv2.apis import init_model
    model = init_model(config, device='cpu')
    torch.save({'state_dict': model.state_dict()}, path)
    return path


_TOOL_CHAIN = r'''
import json, runpy, sys, traceback
from mmengine.visualization import Visualizer
for index, argv in enumerate(json.loads(sys.argv[1])):
    print(f'=== tool {index} starts', flush=True)
    sys.argv = argv
    # each run builds its own visualizer, as in a fresh process (each subclass keeps its own instances)
    classes = [Visualizer]
    while classes:
        cls = classes.pop()
        cls._instance_dict.clear()
        classes += cls.__subclasses__()
    status = 0
    try:
        runpy.run_path(argv[0], run_name='__main__')
    except SystemExit as exit:  # what the interpreter would do with it
        if isinstance(exit.code, int) or exit.code is None:
            status = exit.code or 0
        else:
            print(exit.code, file=sys.stderr)
            status = 1
    except BaseException:
        traceback.print_exc()
        status = 1
    sys.stderr.flush()
    print(f'=== tool {index} exits {status}', flush=True)
'''


@dataclass
class ToolRun:
    """One tool run of ``run_tools_in_one_process``: its arguments, exit status and output (stdout and stderr)."""
    args: List[str]
    returncode: int
    output: str

    def check(self) -> str:
        """The output; AssertionError with its end if the tool failed."""
        assert self.returncode == 0, f'{self.args[:2]} failed:\n{self.output[-6000:]}'
        return self.output


class ToolChain:
    """Tools (``[script, *args]`` each) running one after the other in one Python process started in the
    background, each as ``python script args`` would (``__main__``, its own ``sys.argv``); a failing one does not
    stop the others. ``wait()`` gives their runs.

    One process saves starting Python with torch and the hosts once per tool (several seconds each on two cores).
    The tools share the process's imports: a tool that works only after another imported something is not caught
    here.
    """

    def __init__(self, invocations: List[List[str]]) -> None:
        self.invocations = invocations
        # a file, not a pipe: nobody reads while it runs, and a full pipe would stop the tools
        self._output = tempfile.TemporaryFile(mode='w+')
        env = dict(os.environ, OMP_NUM_THREADS='1')  # see run_tool
        self._process = subprocess.Popen([sys.executable, '-u', '-c', _TOOL_CHAIN, json.dumps(invocations)], cwd=REPO,
                                         env=env, stdout=self._output, stderr=subprocess.STDOUT, text=True)

    def running(self) -> bool:
        return self._process.poll() is None

    def stop(self) -> None:
        if self.running():
            self._process.kill()
            self._process.wait()

    def wait(self) -> List[ToolRun]:
        returncode = self._process.wait()
        self._output.seek(0)
        parts = re.split(r'^=== tool (\d+) (?:starts|exits (-?\d+))\n', self._output.read(), flags=re.M)
        outputs, statuses = {}, {}
        for i in range(1, len(parts) - 1, 3):
            index, status, text = int(parts[i]), parts[i + 1], parts[i + 2]
            if status is None:
                outputs[index] = text
            else:
                statuses[index] = int(status)
        # a tool that killed the process has no exit line: the process's status is its status
        return [ToolRun(args, statuses.get(index, returncode or 1), outputs.get(index, ''))
                for index, args in enumerate(self.invocations)]


def run_tools_in_one_process(invocations: List[List[str]]) -> List[ToolRun]:
    """The runs of ``ToolChain(invocations)``, once all have finished."""
    return ToolChain(invocations).wait()


def work_dir_of(run: ToolRun) -> str:
    """The ``--work-dir`` a tool run was given (where its outputs are)."""
    return run.args[run.args.index('--work-dir') + 1]


def logged_metrics(run: ToolRun) -> dict:
    """The metrics a test tool run saved (MMEngine writes ``<work dir>/<timestamp>/<timestamp>.json``)."""
    [path] = glob.glob(osp.join(work_dir_of(run), '*', '*.json'))
    with open(path) as f:
        return json.load(f)


def val_inputs(config: str, data_options: list, count: int = 8) -> 'torch.Tensor':
    """The first val images after the config's pipeline and data preprocessor: what the network sees."""
    from mmengine.dataset import pseudo_collate
    from mmengine.registry import DATASETS, init_default_scope

    from mmmnv2.apis import init_model
    cfg = Config.fromfile(config)
    cfg.merge_from_dict(dict(option.split('=', 1) for option in data_options))
    init_default_scope(cfg.default_scope)
    dataset = DATASETS.build(cfg.test_dataloader.dataset)
    model = init_model(cfg, device='cpu')
    return model.data_preprocessor(pseudo_collate([dataset[i] for i in range(count)]), False)['inputs']
