"""Fixtures of the tests against Google's released models: the converter tool and the TensorFlow environment of
the reference side (the reference data folder is the suite's ``shared_data`` fixture)."""
import importlib.util
import subprocess
from types import ModuleType

import pytest
from google_models import ROOT
from reference_data import in_ci


@pytest.fixture(scope='session')
def tf_to_openmmlab() -> ModuleType:
    """tools/model_converters/tf_to_openmmlab.py as a module (its ``main`` takes the command line's arguments)."""
    spec = importlib.util.spec_from_file_location('tf_to_openmmlab', ROOT / 'tools/model_converters/tf_to_openmmlab.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope='session')
def tf_python() -> str:
    """The python of the TensorFlow environment the reference side runs in (``tools/misc/setup_tf_venv.sh``: built
    from PyPI on first use, reused afterwards). Where it cannot be built, the tests skip; with ``CI=true`` they fail."""
    result = subprocess.run(['bash', str(ROOT / 'tools/misc/setup_tf_venv.sh')], capture_output=True, text=True)
    if result.returncode != 0:
        message = f'tools/misc/setup_tf_venv.sh could not build the TensorFlow environment:\n{result.stderr[-3000:]}'
        if in_ci():
            pytest.fail(message)
        pytest.skip(message)
    return result.stdout.strip().splitlines()[-1]
