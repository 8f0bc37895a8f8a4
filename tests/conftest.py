"""Session fixtures: the toy data sets and the toy models trained once through ``tools/train.py``.

Several test files check what a trained model does (the tools, the ONNX path, the inference entry point); they share
one training run per task instead of training again.
"""
import os
import os.path as osp
from pathlib import Path
from typing import Callable, Tuple

import pytest
import torch
from torch.nn.modules.batchnorm import _BatchNorm
from toy_runs import (
    DET_CONFIG,
    REPO,
    SEG_CONFIG,
    SEG_INTERRUPTED_AT,
    det_data_options,
    run_tool,
    run_tools_in_one_process,
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


@pytest.fixture(scope='session')
def trained_detector(det_toy_data, tmp_path_factory) -> str:
    """Work dir of the toy SSDLite trained for its full schedule (``iter_600.pth``)."""
    work_dir = str(tmp_path_factory.mktemp('ssdlite_work'))
    run_tool('tools/train.py', DET_CONFIG, '--work-dir', work_dir, '--cfg-options', *det_data_options(det_toy_data))
    return work_dir


@pytest.fixture(scope='session')
def trained_segmentor_run(seg_toy_data, tmp_path_factory):
    """The toy Mobile DeepLabv3 trained to SEG_INTERRUPTED_AT ("killed" there), then resumed to the end.

    Returns (work dir, log of the first run, log of the resumed run).
    """
    work_dir = str(tmp_path_factory.mktemp('mobile_deeplabv3_work'))
    common = ['--work-dir', work_dir, '--cfg-options', *seg_data_options(seg_toy_data)]
    # One process (the second run reads only what the first left on disk): saves an interpreter start.
    first, resumed = run_tools_in_one_process([
        ['tools/train.py', SEG_CONFIG, *common, f'train_cfg.max_iters={SEG_INTERRUPTED_AT}'],
        ['tools/train.py', SEG_CONFIG, '--resume', *common]])
    first.check()
    assert osp.exists(osp.join(work_dir, f'iter_{SEG_INTERRUPTED_AT}.pth'))
    return work_dir, first.output, resumed.check()


@pytest.fixture(scope='session')
def trained_segmentor(trained_segmentor_run) -> str:
    """Work dir of the trained toy Mobile DeepLabv3 (``iter_<max_iters>.pth``)."""
    return trained_segmentor_run[0]
