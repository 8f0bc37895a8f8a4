"""Session fixtures: the toy data sets and the toy models trained once through ``tools/train.py``.

Several test files check what a trained model does (the tools, the ONNX path, the inference entry point); they share
one training run per task instead of training again. The trainings start in the background with the session and
the tests needing them run last (``ToyTrainings``); those tests must request the trained toys as arguments.
"""
import os
import os.path as osp
from pathlib import Path
from typing import Callable, Dict, List, Set, Tuple

import pytest
import torch
from torch.nn.modules.batchnorm import _BatchNorm
from toy_runs import (
    DET_CONFIG,
    REPO,
    SEG_CONFIG,
    SEG_INTERRUPTED_AT,
    ToolChain,
    ToolRun,
    det_data_options,
    seg_data_options,
)

from mmmnv2.datasets import generate_detection, generate_segmentation


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
def det_toy_data(tmp_path_factory) -> str:
    root = str(tmp_path_factory.mktemp('toyshapes_det'))
    generate_detection(root)
    return root


@pytest.fixture(scope='session')
def seg_toy_data(tmp_path_factory) -> str:
    root = str(tmp_path_factory.mktemp('toyshapes_seg'))
    generate_segmentation(root)
    return root


# The session fixture of each trained toy (its training: a tool run, or for segmentation two).
TRAINED_TOYS = {'det': 'trained_detector', 'seg': 'trained_segmentor_run'}


def trained_toys_needed(item: pytest.Item) -> Set[str]:
    """The toy models ('det', 'seg') a test needs trained, from the fixtures it requests."""
    names = set(getattr(item, 'fixturenames', ()))
    return {task for task, fixture in TRAINED_TOYS.items() if fixture in names}


def pytest_collection_modifyitems(items: List[pytest.Item]) -> None:
    """The tests of the trained toy models last, in their order: the toys train in the background meanwhile."""
    items[:] = [i for i in items if not trained_toys_needed(i)] + [i for i in items if trained_toys_needed(i)]


class ToyTrainings:
    """The toy trainings through ``tools/train.py``, one process for all, started when the session starts.

    On two cores the trainings (about 7 and 4.5 minutes) take one core while the tests that do not need them run
    on the other; the test process then uses one intra-op thread (two threads on a shared core spin instead of
    working) and gets both back once the trainings have finished. A training a test requests only dynamically
    (``request.getfixturevalue``) is not known at the start: it runs when requested.
    """

    def __init__(self, tasks: Set[str], request: pytest.FixtureRequest, tmp_path_factory) -> None:
        self._request, self._tmp_path_factory = request, tmp_path_factory
        self.work_dirs: Dict[str, str] = {}
        names, invocations = [], []
        for task in sorted(tasks):
            task_names, task_invocations = self._plan(task)
            names += task_names
            invocations += task_invocations
        self._threads = torch.get_num_threads()
        self._chain = ToolChain(invocations) if invocations else None
        self._names = names
        self._runs: Dict[str, ToolRun] = {}
        if self._chain:
            torch.set_num_threads(1)

    def _plan(self, task: str) -> Tuple[List[str], List[List[str]]]:
        """(run names, tool invocations) of a task's training; sets its work dir."""
        if task == 'det':
            self.work_dirs['det'] = str(self._tmp_path_factory.mktemp('ssdlite_work'))
            options = det_data_options(self._request.getfixturevalue('det_toy_data'))
            return ['det'], [['tools/train.py', DET_CONFIG, '--work-dir', self.work_dirs['det'], '--cfg-options',
                              *options]]
        # trained to SEG_INTERRUPTED_AT ("killed" there), then resumed to the end: the second run reads only what
        # the first left on disk
        self.work_dirs['seg'] = str(self._tmp_path_factory.mktemp('mobile_deeplabv3_work'))
        common = ['--work-dir', self.work_dirs['seg'], '--cfg-options',
                  *seg_data_options(self._request.getfixturevalue('seg_toy_data'))]
        return ['seg_first', 'seg_resumed'], [
            ['tools/train.py', SEG_CONFIG, *common, f'train_cfg.max_iters={SEG_INTERRUPTED_AT}'],
            ['tools/train.py', SEG_CONFIG, '--resume', *common]]

    def check_finished(self) -> None:
        """Give the test process its threads back once the trainings have finished."""
        if self._chain and not self._chain.running() and torch.get_num_threads() != self._threads:
            torch.set_num_threads(self._threads)

    def runs(self, task: str) -> Dict[str, ToolRun]:
        """The training runs, by name ('det', 'seg_first', 'seg_resumed'), once the task's have finished."""
        if task not in self.work_dirs:  # requested dynamically: trained now
            names, invocations = self._plan(task)
            self._runs.update(zip(names, ToolChain(invocations).wait(), strict=True))
        elif self._chain and not self._runs.keys() & set(self._names):
            self._runs.update(zip(self._names, self._chain.wait(), strict=True))
            self.check_finished()
        return self._runs

    def stop(self) -> None:
        if self._chain:
            self._chain.stop()
        torch.set_num_threads(self._threads)


_TRAININGS: List[ToyTrainings] = []


@pytest.fixture(scope='session', autouse=True)
def toy_trainings(request, tmp_path_factory) -> ToyTrainings:
    """The trainings the session's tests need, started before the first test."""
    tasks = set().union(*(trained_toys_needed(item) for item in request.session.items))
    trainings = ToyTrainings(tasks, request, tmp_path_factory)
    _TRAININGS.append(trainings)
    yield trainings
    trainings.stop()


def pytest_runtest_setup(item: pytest.Item) -> None:
    for trainings in _TRAININGS:
        trainings.check_finished()


@pytest.fixture(scope='session')
def trained_detector(toy_trainings) -> str:
    """Work dir of the toy SSDLite trained for its full schedule (``iter_600.pth``)."""
    toy_trainings.runs('det')['det'].check()
    return toy_trainings.work_dirs['det']


@pytest.fixture(scope='session')
def trained_segmentor_run(toy_trainings):
    """The toy Mobile DeepLabv3 trained to SEG_INTERRUPTED_AT ("killed" there), then resumed to the end.

    Returns (work dir, log of the first run, log of the resumed run).
    """
    runs = toy_trainings.runs('seg')
    work_dir = toy_trainings.work_dirs['seg']
    runs['seg_first'].check()
    assert osp.exists(osp.join(work_dir, f'iter_{SEG_INTERRUPTED_AT}.pth'))
    return work_dir, runs['seg_first'].output, runs['seg_resumed'].check()


@pytest.fixture(scope='session')
def trained_segmentor(trained_segmentor_run) -> str:
    """Work dir of the trained toy Mobile DeepLabv3 (``iter_<max_iters>.pth``)."""
    return trained_segmentor_run[0]
