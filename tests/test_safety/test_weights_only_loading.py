"""No checkpoint runs code: every load mmmnv2 reaches is weights-only, even with TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1.

Each entry point gets the same crafted file under that variable; the control shows the payload does run when the
file is unpickled the way MMEngine 0.10.7 calls ``torch.load`` (``weights_only`` unset), so the refusals are real.
"""
import http.server
import os
import threading
from functools import partial

import pytest
import torch
from mmengine.runner import CheckpointLoader, load_checkpoint
from toy_runs import DET_CONFIG

from mmmnv2.apis import init_model
from mmmnv2.models import MobileNetV2
from mmmnv2.utils import UnsafeCheckpointError, load_checkpoint_file

pytestmark = pytest.mark.usefixtures('unsafe_environment')


def test_control_the_payload_runs_when_weights_only_is_left_unset(crafted):
    checkpoint, marker = crafted
    torch.load(checkpoint, map_location='cpu')  # what MMEngine's own local loader does
    assert marker.exists()


def check_refusal(error: pytest.ExceptionInfo, checkpoint: str) -> None:
    message = str(error.value)
    assert checkpoint in message and 'posix.system' in message  # the file and the global torch blocked
    assert 'weights_only' not in message  # no advice to turn safe loading off


@pytest.mark.parametrize('entry', ['load_checkpoint_file', 'CheckpointLoader (load_from, --resume)',
                                   'mmengine load_checkpoint', 'Pretrained init_cfg', 'init_model'])
def test_crafted_checkpoint_is_refused(crafted, entry):
    checkpoint, marker = crafted
    load = {
        'load_checkpoint_file': lambda: load_checkpoint_file(checkpoint),
        # Runner.load_checkpoint and Runner.resume read files through CheckpointLoader
        'CheckpointLoader (load_from, --resume)': lambda: CheckpointLoader.load_checkpoint(checkpoint, 'cpu'),
        'mmengine load_checkpoint': lambda: load_checkpoint(MobileNetV2(), checkpoint),
        'Pretrained init_cfg': lambda: MobileNetV2(init_cfg=dict(type='Pretrained', checkpoint=checkpoint))
        .init_weights(),
        'init_model': lambda: init_model(DET_CONFIG, checkpoint, 'cpu'),
    }[entry]
    with pytest.raises(UnsafeCheckpointError) as error:
        load()
    check_refusal(error, checkpoint)
    assert not marker.exists()


def test_crafted_checkpoint_from_a_url_is_refused(crafted, tmp_path, monkeypatch):
    """MMEngine downloads through torch.hub, which unpickles with weights_only=False whatever the environment."""
    checkpoint, marker = crafted
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch_home'))
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=os.path.dirname(checkpoint))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f'http://127.0.0.1:{server.server_address[1]}/{os.path.basename(checkpoint)}'
        with pytest.raises(UnsafeCheckpointError) as error:
            MobileNetV2(init_cfg=dict(type='Pretrained', checkpoint=url)).init_weights()
    finally:
        server.shutdown()
    assert url in str(error.value) and 'posix.system' in str(error.value)
    assert not marker.exists()


def test_getattr_reaches_only_history_buffer_statistics(tmp_path):
    """MMEngine's HistoryBuffer pickles its statistics as getattr(HistoryBuffer, name): only those are allowed."""
    from mmengine.logging import HistoryBuffer

    class ReachesAttribute:
        def __reduce__(self):
            return getattr, (HistoryBuffer, '__init__')

    torch.save({'state_dict': {}, 'meta': ReachesAttribute()}, tmp_path / 'attribute.pth')
    with pytest.raises(UnsafeCheckpointError, match=r"getattr\(<class 'mmengine.logging.history_buffer.HistoryBuffer'"
                                                    r">, '__init__'\)"):
        load_checkpoint_file(str(tmp_path / 'attribute.pth'))


def test_mmengine_training_state_still_loads(tmp_path):
    """The allow-list keeps --resume working: the message hub's HistoryBuffer and numpy values load."""
    import numpy as np
    from mmengine.logging import HistoryBuffer
    buffer = HistoryBuffer()
    for value in (1.0, 2.0, 3.0):
        buffer.update(value)
    state = {'message_hub': {'log_scalars': {'train/loss': buffer}, 'runtime_info': {'iter': np.int64(10)}},
             'meta': {'seed': np.array([1, 2, 3])}, 'state_dict': {'w': torch.ones(2)}}
    torch.save(state, tmp_path / 'ckpt.pth')
    loaded = load_checkpoint_file(str(tmp_path / 'ckpt.pth'))
    assert loaded['message_hub']['log_scalars']['train/loss'].mean() == pytest.approx(2.0)
    assert loaded['message_hub']['runtime_info']['iter'] == 10
