"""Imports of the optional runtimes and readers, each named with the ``pip install`` extra that provides it."""
import importlib
from types import ModuleType


def import_optional(name: str, extra: str, needed_for: str) -> ModuleType:
    """Import module ``name``, or raise ImportError saying what it is ``needed_for`` and the extra that installs it."""
    try:
        return importlib.import_module(name)
    except ImportError as error:
        package = name.split('.')[0]
        raise ImportError(f'{package} is needed for {needed_for}; install it with `pip install "mmmnv2[{extra}]"` '
                          f'(or `pip install {package}`)') from error
