"""What the safety tests share: a checkpoint whose unpickling runs a shell command, and the variable that asks torch
to unpickle without restrictions."""
import os
from pathlib import Path

import pytest
import torch


class RunsCommand:
    """Unpickling this runs a shell command (the classic malicious-checkpoint trick)."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


def crafted_checkpoint(path: Path, marker: Path, state_dict=None) -> str:
    """A checkpoint that creates ``marker`` when it is unpickled without restrictions."""
    torch.save({'state_dict': state_dict or {}, 'meta': RunsCommand(f'touch "{marker}"')}, path)
    return str(path)


@pytest.fixture
def unsafe_environment(monkeypatch):
    """TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1: torch then unpickles freely wherever weights_only is left unset."""
    monkeypatch.setenv('TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD', '1')


@pytest.fixture
def crafted(tmp_path):
    """(crafted checkpoint, marker file its payload would create)."""
    marker = tmp_path / 'payload_ran'
    return crafted_checkpoint(tmp_path / 'crafted.pth', marker), marker
