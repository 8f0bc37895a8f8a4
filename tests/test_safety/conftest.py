"""What the safety tests share: a checkpoint whose unpickling runs a shell command (the payload of tests/conftest.py),
and the variable that asks torch to unpickle without restrictions."""
import pytest
import torch


@pytest.fixture
def unsafe_environment(monkeypatch):
    """TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1: torch then unpickles freely wherever weights_only is left unset."""
    monkeypatch.setenv('TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD', '1')


@pytest.fixture
def crafted(tmp_path, malicious_payload):
    """(crafted checkpoint, marker file its payload would create)."""
    payload, marker = malicious_payload
    path = tmp_path / 'crafted.pth'
    torch.save({'state_dict': {}, 'meta': payload}, path)
    return str(path), marker
