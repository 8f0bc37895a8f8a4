"""Session fixtures: the toy data sets, the toy models trained once through ``tools/train.py``, and the tool runs on
them.

Several test files check what a trained model does (the tools, the ONNX path, int8, the inference entry point);
they share one trained model per task and one run of each tool instead of running them again. The trained models are
the main job's (``bash tools/run_main.sh``: ``work_dirs/toy/``, with its data sets in ``data/``) where it ran on this
checkout's code (``toy_runs.main_job_toys``), so that CI, which runs the main job first, tests what a newcomer gets
without training twice; otherwise the session trains them. The trainings and tool runs start in the background with
the session and the tests needing them run last (``ToyRuns``); those tests must request the trained toys or their
tool runs as arguments.
"""
import gc
import os
import os.path as osp
from pathlib import Path
from typing import Callable, Dict, List, Tuple

import host_memo
import pytest
import torch
from reference_data import SHARED_DATA, require_folder
from torch.nn.modules.batchnorm import _BatchNorm
from toy_runs import (
    DET_CONFIG,
    REPO,
    RESUME_INTERRUPTED_AT,
    RESUME_MAX_ITERS,
    SEG_CONFIG,
    SEG_MAX_ITERS,
    ToolChain,
    ToolRun,
    det_data_options,
    det_int8_data,
    main_job_toys,
    seg_data_options,
    toy_tool_invocations,
)

from mmmnv2.datasets import generate_detection, generate_segmentation

host_memo.install()


def pytest_collection_finish(session: pytest.Session) -> None:
    """What the imports and the collection made, frozen: the collections MMEngine's datasets ask for when they build
    then skip it (as in a fresh process), not pass over it each time."""
    gc.collect()
    gc.freeze()


@pytest.fixture(scope='session')
def repo_root() -> Path:
    """The checkout's root folder (configs/, tools/)."""
    return Path(REPO)


class RunsShellCommand:
    """Unpickling this runs ``touch MARKER`` through ``os.system`` (the classic malicious-checkpoint trick)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f'touch "{self.marker}"',)


@pytest.fixture
def malicious_payload(tmp_path) -> Tuple[RunsShellCommand, Path]:
    """(an object whose unpickling creates a marker file, the marker's path); the marker does not exist yet."""
    marker = tmp_path / 'payload_ran'
    return RunsShellCommand(marker), marker


def randomise_batch_norms(model: torch.nn.Module, seed: int = 0) -> None:
    """Batch norm statistics and affine parameters far from (0, 1), so that a wrongly folded or wrongly loaded batch
    norm shows in the outputs (a fresh one is the identity up to eps)."""
    generator = torch.Generator().manual_seed(seed)
    for module in model.modules():
        if isinstance(module, _BatchNorm):
            for tensor, low, high in ((module.running_mean, -0.5, 0.5), (module.running_var, 0.5, 2.0),
                                      (module.weight, 0.5, 1.5), (module.bias, -0.5, 0.5)):
                tensor.data.copy_(torch.rand(tensor.shape, generator=generator) * (high - low) + low)


@pytest.fixture
def randomise_bn() -> Callable[..., None]:
    """``randomise_batch_norms(model, seed=0)``."""
    return randomise_batch_norms


@pytest.fixture(scope='session')
def main_job() -> Dict[str, dict]:
    """task -> the main job's results row ('work_dir', 'checkpoint_file', 'data_root', ...) for each toy model it
    trained with this checkout's code; empty where it has not run (``toy_runs.main_job_toys``)."""
    return main_job_toys()


@pytest.fixture(scope='session')
def det_toy_data(main_job, tmp_path_factory) -> str:
    """The toy detection set: the main job's (tests only read it), else generated for the session."""
    if 'det' in main_job:
        return main_job['det']['data_root']
    root = str(tmp_path_factory.mktemp('toyshapes_det'))
    generate_detection(root)
    return root


@pytest.fixture(scope='session')
def seg_toy_data(main_job, tmp_path_factory) -> str:
    """The toy segmentation set: the main job's (tests only read it), else generated for the session."""
    if 'seg' in main_job:
        return main_job['seg']['data_root']
    root = str(tmp_path_factory.mktemp('toyshapes_seg'))
    generate_segmentation(root)
    return root


# The session fixtures of each toy model: its training (a tool run; none where the main job's model is tested), and
# the tool runs on the trained model (``toy_runs.toy_tool_invocations``); 'seg_resume': a short segmentation
# training interrupted and resumed.
TRAINED_TOYS = {'det': 'trained_detector', 'seg': 'trained_segmentor', 'seg_resume': 'resumed_segmentor_run'}
TOOL_RUNS = {'det': 'det_tool_runs', 'seg': 'seg_tool_runs'}
TRAINING_RUNS = {'det': ['det'], 'seg': ['seg'], 'seg_resume': ['seg_first', 'seg_resumed']}


def toys_needed(item: pytest.Item) -> Dict[str, bool]:
    """The toy models a test needs trained ('det', 'seg', 'seg_resume'), each with whether it needs their tool runs,
    from the fixtures it requests."""
    names = set(getattr(item, 'fixturenames', ()))
    return {task: TOOL_RUNS.get(task) in names for task, fixture in TRAINED_TOYS.items()
            if fixture in names or TOOL_RUNS.get(task) in names}


def pytest_collection_modifyitems(items: List[pytest.Item]) -> None:
    """The tests of the trained toy models last, in their order, those needing the tool runs on them at the very
    end: the toys train and then go through the tools in the background meanwhile."""
    def stage(item: pytest.Item) -> int:
        needed = toys_needed(item)
        return 2 if any(needed.values()) else 1 if needed else 0
    items.sort(key=stage)  # stable: the order within a stage stays


class ToyRuns:
    """Each toy model's training through ``tools/train.py`` (unless the main job's model is tested) and then the tool
    runs on the trained model, one background process per toy (``toy_runs.ToolChain``), started when the session
    starts.

    On two cores the processes share the cores with the tests that do not need them; the test process then uses
    one intra-op thread (threads on a shared core spin instead of working) and gets its threads back once the
    processes have finished. A test waits only for the runs it needs: those of the training, or also the tool runs.
    Runs a test requests only dynamically (``request.getfixturevalue``) are not known at the start: they run when
    requested.
    """

    def __init__(self, needs: Dict[str, bool], request: pytest.FixtureRequest, tmp_path_factory) -> None:
        self._request, self._tmp_path_factory = request, tmp_path_factory
        main_job = request.getfixturevalue('main_job')
        # task -> work dir and checkpoint of its trained model; the main job's are there from the start
        self.work_dirs: Dict[str, str] = {task: row['work_dir'] for task, row in main_job.items()}
        self.checkpoints: Dict[str, str] = {task: row['checkpoint_file'] for task, row in main_job.items()}
        self.training_runs = {task: [] if task in main_job else names for task, names in TRAINING_RUNS.items()}
        # task -> [(run names, their process)]: the training, then the tool runs
        self._chains: Dict[str, List[Tuple[List[str], ToolChain]]] = {}
        self._threads = torch.get_num_threads()
        for task, with_tool_runs in sorted(needs.items()):
            self._start(task, with_tool_runs)

    def _start(self, task: str, with_tool_runs: bool) -> None:
        """Start the task's training (unless started or the main job's) and, if asked, the tool runs on its
        result."""
        names: List[str] = []
        invocations: List[List[str]] = []
        if task not in self.work_dirs:
            names, invocations = list(self.training_runs[task]), self._training(task)
        if with_tool_runs:
            int8_options = None
            if task == 'det':
                int8_options = det_data_options(det_int8_data(str(self._tmp_path_factory.mktemp('det_int8_data'))))
            tools = toy_tool_invocations(task, self.checkpoints[task], self._data_options(task),
                                         str(self._tmp_path_factory.mktemp(f'{task}_tool_runs')), int8_options)
            if not invocations:  # the training runs in another process (or ran in the main job): wait for it
                self.runs(task, self.training_runs[task])
            names += list(tools)
            invocations += list(tools.values())
        if invocations:
            self._chains.setdefault(task, []).append((names, ToolChain(invocations)))
            torch.set_num_threads(1)

    def _data_options(self, task: str) -> List[str]:
        if task == 'det':
            return det_data_options(self._request.getfixturevalue('det_toy_data'))
        return seg_data_options(self._request.getfixturevalue('seg_toy_data'))

    def _training(self, task: str) -> List[List[str]]:
        """The tool invocations of a task's training; sets its work dir and checkpoint."""
        work_dir = self.work_dirs[task] = str(self._tmp_path_factory.mktemp(f'{task}_training'))
        common = ['--work-dir', work_dir, '--cfg-options', *self._data_options(task)]
        if task == 'det':
            self.checkpoints[task] = osp.join(work_dir, 'iter_600.pth')
            return [['tools/train.py', DET_CONFIG, *common]]
        if task == 'seg':
            self.checkpoints[task] = osp.join(work_dir, f'iter_{SEG_MAX_ITERS}.pth')
            return [['tools/train.py', SEG_CONFIG, *common]]
        # 'seg_resume': trained to RESUME_INTERRUPTED_AT ("killed" there), then resumed to RESUME_MAX_ITERS: the
        # second run reads only what the first left on disk
        short = ['default_hooks.logger.interval=1', f'default_hooks.checkpoint.interval={RESUME_INTERRUPTED_AT}']
        self.checkpoints[task] = osp.join(work_dir, f'iter_{RESUME_MAX_ITERS}.pth')
        return [['tools/train.py', SEG_CONFIG, *common, *short, f'train_cfg.max_iters={RESUME_INTERRUPTED_AT}'],
                ['tools/train.py', SEG_CONFIG, '--resume', *common, *short, f'train_cfg.max_iters={RESUME_MAX_ITERS}']]

    def check_finished(self) -> None:
        """Give the test process its threads back once the background processes have finished."""
        running = any(chain.running() for chains in self._chains.values() for _, chain in chains)
        if not running and torch.get_num_threads() != self._threads:
            torch.set_num_threads(self._threads)

    def runs(self, task: str, names: List[str]) -> Dict[str, ToolRun]:
        """The named runs of a task (a training run of ``TRAINING_RUNS``, or a tool run's name) once they have
        finished."""
        known = {name for chain_names, _ in self._chains.get(task, ()) for name in chain_names}
        if not set(names) <= known:  # requested dynamically: run now
            self._start(task, with_tool_runs=not set(names) <= set(self.training_runs[task]))
        found: Dict[str, ToolRun] = {}
        for chain_names, chain in self._chains.get(task, ()):
            wanted = [chain_names.index(name) for name in names if name in chain_names]
            if wanted:
                found.update(zip(chain_names, chain.wait(max(wanted) + 1)))
        self.check_finished()
        return {name: found[name] for name in names}

    def trained(self, task: str) -> str:
        """The work dir of the task's trained model, once its training (if the session trains it) succeeded."""
        for run in self.runs(task, self.training_runs[task]).values():
            run.check()
        return self.work_dirs[task]

    def tool_runs(self, task: str) -> Dict[str, ToolRun]:
        """Every tool run on the trained toy model, by name (``toy_runs.toy_tool_invocations``)."""
        def names() -> List[str]:
            return [name for chain_names, _ in self._chains.get(task, ()) for name in chain_names
                    if name not in self.training_runs[task]]
        if not names():  # requested dynamically: run now
            self._start(task, with_tool_runs=True)
        return self.runs(task, names())

    def stop(self) -> None:
        for chains in self._chains.values():
            for _, chain in chains:
                chain.stop()
        torch.set_num_threads(self._threads)


_TOY_RUNS: List[ToyRuns] = []


@pytest.fixture(scope='session', autouse=True)
def background_toy_runs(request, tmp_path_factory) -> ToyRuns:
    """The toy trainings and tool runs the session's tests need, started before the first test."""
    needs: Dict[str, bool] = {}
    for item in request.session.items:
        for task, with_tool_runs in toys_needed(item).items():
            needs[task] = needs.get(task, False) or with_tool_runs
    runs = ToyRuns(needs, request, tmp_path_factory)
    _TOY_RUNS.append(runs)
    yield runs
    runs.stop()


def pytest_runtest_setup(item: pytest.Item) -> None:
    for runs in _TOY_RUNS:
        runs.check_finished()


@pytest.fixture(scope='session')
def trained_detector(background_toy_runs) -> str:
    """Work dir of the toy SSDLite trained for its full schedule (``iter_600.pth``; the main job's where it ran)."""
    return background_toy_runs.trained('det')


@pytest.fixture(scope='session')
def trained_segmentor(background_toy_runs) -> str:
    """Work dir of the trained toy Mobile DeepLabv3 (``iter_<max_iters>.pth``; the main job's where it ran)."""
    return background_toy_runs.trained('seg')


@pytest.fixture(scope='session')
def resumed_segmentor_run(background_toy_runs):
    """The toy Mobile DeepLabv3 trained to RESUME_INTERRUPTED_AT ("killed" there), then resumed to RESUME_MAX_ITERS
    with ``--resume``. Returns (work dir, output of the first run, output of the resumed run)."""
    runs = background_toy_runs.runs('seg_resume', TRAINING_RUNS['seg_resume'])
    work_dir = background_toy_runs.work_dirs['seg_resume']
    runs['seg_first'].check()
    assert osp.exists(osp.join(work_dir, f'iter_{RESUME_INTERRUPTED_AT}.pth'))
    return work_dir, runs['seg_first'].output, runs['seg_resumed'].check()


@pytest.fixture(scope='session')
def det_tool_runs(trained_detector, background_toy_runs) -> Dict[str, ToolRun]:
    """The tool runs on the trained toy SSDLite, by name (``toy_runs.toy_tool_invocations``)."""
    return background_toy_runs.tool_runs('det')


@pytest.fixture(scope='session')
def seg_tool_runs(trained_segmentor, background_toy_runs) -> Dict[str, ToolRun]:
    """The tool runs on the trained toy Mobile DeepLabv3, by name (``toy_runs.toy_tool_invocations``)."""
    return background_toy_runs.tool_runs('seg')


@pytest.fixture(scope='session')
def shared_data() -> Path:
    """``../shared/data`` beside the checkout: Google's released models, real photos, real COCO images."""
    return require_folder(SHARED_DATA, "Google's released models, real photos")
