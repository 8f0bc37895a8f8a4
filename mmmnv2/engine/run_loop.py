"""How ``tools/train.py`` and ``tools/test.py`` run a config: strict checkpoint loading, CPU-only distributed runs,
MMEngine's Runner, and a refused checkpoint reported as an error message rather than a traceback."""
import sys
from typing import Literal

from mmengine.config import Config
from mmengine.runner import Runner

from ..utils import CHECKPOINT_ERRORS, setup_cpu_distributed
from .hooks import StrictLoadHook


def run_loop(cfg: Config, launcher: str, loop: Literal['train', 'test'], partial_load: bool = False) -> None:
    """Build MMEngine's Runner from ``cfg`` and run its ``loop``; exit with the message if a checkpoint is refused.

    ``partial_load``: ``load_from`` loads the weights that fit and lists the rest, instead of refusing the file.
    """
    StrictLoadHook.add_to(cfg, partial=partial_load)
    setup_cpu_distributed(cfg, launcher)
    runner = Runner.from_cfg(cfg)
    try:
        getattr(runner, loop)()
    except CHECKPOINT_ERRORS as error:
        sys.exit(f'error: {error}')
