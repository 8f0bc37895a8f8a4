"""Fixture of the tests against Google's released models: the converter tool (the reference data folder is the
suite's ``shared_data`` fixture)."""
import importlib.util
from types import ModuleType

import pytest
from google_models import ROOT


@pytest.fixture(scope='session')
def tf_to_openmmlab() -> ModuleType:
    """tools/model_converters/tf_to_openmmlab.py as a module (its ``main`` takes the command line's arguments)."""
    spec = importlib.util.spec_from_file_location('tf_to_openmmlab', ROOT / 'tools/model_converters/tf_to_openmmlab.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
