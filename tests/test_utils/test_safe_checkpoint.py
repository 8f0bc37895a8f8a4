"""Checkpoints load with torch's weights-only unpickler plus MMEngine's own types; anything else is refused."""
import numpy as np
import pytest
import torch
from mmengine.logging import HistoryBuffer

from mmmnv2.utils import UnsafeCheckpointError, refuse_unsafe_checkpoint


def test_mmengine_training_state_loads_with_weights_only(tmp_path):
    buffer = HistoryBuffer()
    for value in (1.0, 2.0, 3.0):
        buffer.update(value)
    state = {'message_hub': {'log_scalars': {'train/loss': buffer}, 'runtime_info': {'iter': np.int64(10),
                                                                                     'best': np.float64(0.5)}},
             'meta': {'seed': np.array([1, 2, 3])}, 'state_dict': {'w': torch.ones(2)}}
    torch.save(state, tmp_path / 'ckpt.pth')
    loaded = torch.load(tmp_path / 'ckpt.pth', map_location='cpu')  # weights_only=True is torch's default
    assert loaded['message_hub']['log_scalars']['train/loss'].mean() == pytest.approx(2.0)
    assert loaded['message_hub']['runtime_info']['iter'] == 10


class _ReachesAttribute:
    def __reduce__(self):  # getattr on an allowed class, but not one of its statistics
        return (getattr, (HistoryBuffer, '__init__'))


@pytest.mark.parametrize('payload', ['code', 'attribute'])
def test_crafted_checkpoints_are_refused(tmp_path, payload, malicious_payload):
    runs_code, marker = malicious_payload
    obj = runs_code if payload == 'code' else _ReachesAttribute()
    torch.save({'state_dict': {}, 'meta': obj}, tmp_path / 'evil.pth')
    with pytest.raises(UnsafeCheckpointError, match='Refused to load a checkpoint'):
        with refuse_unsafe_checkpoint():
            torch.load(tmp_path / 'evil.pth', map_location='cpu')
    assert not marker.exists()
