"""What the tests read but do not make: the reference data beside the checkout (``../shared/data``: Google's released
models, real photos, real COCO images) and the reference runtimes of the ``tests`` extra.

Where ``CI=true`` a missing folder or runtime fails the test (CI must run it); elsewhere the test skips, naming what
is missing.
"""
import importlib
import os
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / 'shared' / 'data'
COCO_MINI = SHARED_DATA / 'coco_mini_val2017'  # 79 real COCO val2017 images and their official annotations


def in_ci() -> bool:
    return os.environ.get('CI') == 'true'


def require_folder(path: Path, what: str) -> Path:
    """``path`` if it is a folder; otherwise fail in CI, skip elsewhere."""
    if not path.is_dir():
        if in_ci():
            pytest.fail(f'reference data folder {path} ({what}) is missing; CI needs it')
        pytest.skip(f'reference data folder {path} ({what}) is not present')
    return path


def require(module: str, extra: str = 'tests') -> ModuleType:
    """Import a reference runtime; outside CI a missing one skips the test."""
    if in_ci():
        return importlib.import_module(module)
    return pytest.importorskip(module, reason=f'{module} (the "{extra}" extra) is not installed')
