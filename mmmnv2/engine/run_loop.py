"""How ``tools/train.py`` and ``tools/test.py`` run a config: strict checkpoint loading, CPU-only distributed runs,
MMEngine's Runner (a refused checkpoint raises; the tools report it through ``mmmnv2.utils.one_line_errors``)."""
from typing import Literal

from mmengine.config import Config
from mmengine.runner import Runner

from ..utils import setup_cpu_distributed
from .hooks import StrictLoadHook


def run_loop(cfg: Config, launcher: str, loop: Literal['train', 'test'], partial_load: bool = False) -> None:
    """Build MMEngine's Runner from ``cfg`` and run its ``loop``.

    ``partial_load``: ``load_from`` loads the weights that fit and lists the rest, instead of refusing the file.
    """
    StrictLoadHook.add_to(cfg, partial=partial_load)
    setup_cpu_distributed(cfg, launcher)
    getattr(Runner.from_cfg(cfg), loop)()
