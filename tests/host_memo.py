"""Memos of two slow host functions whose results depend only on their arguments, for the test processes that
run many tools.

MMEngine formats a config's text with yapf each time a run logs, dumps, visualizes or checkpoints its config (4-6
times a tool run, the same text each time; about a second a call for our configs on two cores), and reads every
metafile of MMDetection / MMSegmentation again to resolve each ``mmdet::`` / ``mmseg::`` base of a config (about half
a second a base). A tool run gives the same output with the memos: the formatted text is a function of the text,
a base's path a function of the installed packages' files, which do not change during a test session.
"""
import functools
from typing import Any, Callable, Dict, Tuple

_INSTALLED = False


def memo_with_value_errors(function: Callable) -> Callable:
    """``function`` memoized by its positional arguments, its ValueError included (MMEngine resolves a base that
    no metafile lists by catching ValueError)."""
    results: Dict[Tuple, Tuple[bool, Any]] = {}

    @functools.wraps(function)
    def memo(*args):
        if args not in results:
            try:
                results[args] = True, function(*args)
            except ValueError as error:
                results[args] = False, str(error)
        returned, value = results[args]
        if not returned:
            raise ValueError(value)
        return value
    return memo


def install() -> None:
    """Memoize ``FormatCode`` and ``_get_external_cfg_path`` where ``mmengine.config.config`` calls them."""
    global _INSTALLED
    if _INSTALLED:
        return
    from mmengine.config import config

    format_code = config.FormatCode

    @functools.lru_cache(maxsize=256)
    def formatted(text: str, style: tuple) -> tuple:
        return format_code(text, style_config=dict(style))

    def format_code_memo(text: str, style_config=None, **kwargs):
        if kwargs or not isinstance(style_config, dict):
            return format_code(text, style_config=style_config, **kwargs)
        return formatted(text, tuple(sorted(style_config.items())))

    config.FormatCode = format_code_memo
    config._get_external_cfg_path = memo_with_value_errors(config._get_external_cfg_path)
    _INSTALLED = True
