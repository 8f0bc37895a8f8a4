"""Run tools/train.py or tools/test.py inside the test process (a refusal needs no subprocess to be proven)."""
import runpy
import sys
from typing import List

from toy_runs import REPO


def run_tool_in_process(monkeypatch, tool: str, args: List[str]) -> None:
    """``python tools/<tool> ARGS`` in this process; a refusal surfaces as SystemExit with the message."""
    monkeypatch.setattr(sys, 'argv', [f'{REPO}/tools/{tool}', *args])
    monkeypatch.chdir(REPO)
    runpy.run_path(f'{REPO}/tools/{tool}', run_name='__main__')
