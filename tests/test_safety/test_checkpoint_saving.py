"""Nothing lost: checkpoints are written atomically with a checksum, damage is detected and named, and resuming
skips a damaged latest checkpoint for the previous good one.

MMEngine's CheckpointHook writes in place and deletes the oldest checkpoint before writing the new one: a process
killed mid-save left a truncated file (and with ``max_keep_ckpts=1`` nothing else), and auto-resume then restarted
from iteration 1. Bytes flipped inside a tensor loaded silently.
"""
import glob
import io
import logging
import os
import os.path as osp
import signal
import struct
import sys

import pytest
import torch
from mmengine.logging import MMLogger
from toy_runs import DET_CONFIG, REPO, det_data_options, run_tool, run_tool_in_process

from mmmnv2.datasets import generate_detection
from mmmnv2.engine import AtomicLocalBackend, find_resumable_checkpoint
from mmmnv2.utils import CorruptCheckpointError, file_sha256, load_checkpoint_file

KILLER = osp.join(REPO, 'tests', 'test_safety', 'kill_during_save.py')


def logged(function, *args):
    """(result, what it logged): MMEngine's print_log(logger='current') writes through the current MMLogger, whose
    stream handler was bound to whatever stdout was when an earlier test created it (capsys cannot see it)."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    logger = MMLogger.get_current_instance()
    logger.addHandler(handler)
    try:
        return function(*args), stream.getvalue()
    finally:
        logger.removeHandler(handler)


def save(path: str, step: int) -> None:
    """A checkpoint (weights + iteration) written as VerifiedCheckpointHook writes it."""
    import io
    buffer = io.BytesIO()
    torch.save({'state_dict': {'w': torch.full((256, 256), float(step))}, 'meta': {'iter': step}}, buffer)
    AtomicLocalBackend().put(buffer.getvalue(), path)


def flip_a_byte_inside_the_tensor(path: str, value: float) -> None:
    data = bytearray(open(path, 'rb').read())
    offset = data.index(struct.pack('<f', value) * 4)  # inside the tensor of ``save``
    data[offset + 3] ^= 0x40  # the top exponent bit: 1.0 becomes inf
    open(path, 'wb').write(bytes(data))


def test_saved_checkpoint_records_its_checksum(tmp_path):
    path = str(tmp_path / 'iter_1.pth')
    save(path, 1)
    assert open(path + '.sha256').read().split() == [file_sha256(path), 'iter_1.pth']  # sha256sum's format
    assert load_checkpoint_file(path)['meta']['iter'] == 1
    AtomicLocalBackend().remove(path)
    assert not os.listdir(tmp_path)  # the checksum goes with its checkpoint, no temporary file is left


@pytest.mark.parametrize('damage', ['flipped byte', 'truncated'])
@pytest.mark.parametrize('checksum', [True, False])
def test_damaged_checkpoint_is_refused_naming_the_file(tmp_path, damage, checksum):
    path = str(tmp_path / 'iter_1.pth')
    save(path, 1)
    if not checksum:
        os.remove(path + '.sha256')
    if damage == 'flipped byte':
        flip_a_byte_inside_the_tensor(path, 1.0)
        # Control: torch itself loads the damaged weights without a word.
        assert torch.load(path, weights_only=True)['state_dict']['w'][0, 0] == float('inf')
    else:
        os.truncate(path, os.path.getsize(path) // 2)
    with pytest.raises(CorruptCheckpointError, match=path):
        load_checkpoint_file(path)


def test_resume_skips_a_damaged_latest_checkpoint_and_says_so(tmp_path):
    for step in (2, 4):
        save(str(tmp_path / f'iter_{step}.pth'), step)
    (tmp_path / 'last_checkpoint').write_text(str(tmp_path / 'iter_4.pth'))
    flip_a_byte_inside_the_tensor(str(tmp_path / 'iter_4.pth'), 4.0)
    found, output = logged(find_resumable_checkpoint, str(tmp_path))
    assert found == str(tmp_path / 'iter_2.pth')
    assert 'Resuming from ' + str(tmp_path / 'iter_2.pth') in output and str(tmp_path / 'iter_4.pth') in output


def test_resume_with_only_a_truncated_checkpoint_says_it_starts_over(tmp_path):
    save(str(tmp_path / 'iter_2.pth'), 2)
    os.remove(tmp_path / 'iter_2.pth.sha256')
    os.truncate(tmp_path / 'iter_2.pth', 1000)
    (tmp_path / 'last_checkpoint').write_text(str(tmp_path / 'iter_2.pth'))
    found, output = logged(find_resumable_checkpoint, str(tmp_path))
    assert found is None
    assert str(tmp_path / 'iter_2.pth') in output and 'starts from the beginning' in output


@pytest.mark.skipif(sys.platform != 'linux', reason='the kill helper finds file names through /proc')
def test_sigkill_during_a_save_loses_only_the_interval_and_resumes(tmp_path, monkeypatch, capsys):
    # Control: the helper kills a plain in-place write (MMEngine's LocalBackend.put, which its CheckpointHook uses)
    # halfway, leaving a truncated file under the final name.
    script = tmp_path / 'host_put.py'
    script.write_text('import sys\nfrom mmengine.fileio import LocalBackend\n'
                      'LocalBackend().put(b"x" * 200_000, sys.argv[1])\n')
    killed = run_tool(KILLER, 'iter_4.pth', str(script), str(tmp_path / 'iter_4.pth'), check=False)
    assert killed.returncode == -signal.SIGKILL and osp.getsize(tmp_path / 'iter_4.pth') == 100_000

    generate_detection(str(tmp_path / 'data'), num_train=4, num_val=1)
    work_dir = str(tmp_path / 'work')
    options = ['--work-dir', work_dir, '--cfg-options', *det_data_options(str(tmp_path / 'data')),
               'train_cfg.max_iters=6', 'train_dataloader.batch_size=2', 'train_dataloader.num_workers=0',
               'train_dataloader.persistent_workers=False', 'val_cfg=None', 'val_dataloader=None',
               'val_evaluator=None', 'default_hooks.checkpoint.interval=2', 'default_hooks.checkpoint.max_keep_ckpts=1']
    killed = run_tool(KILLER, 'iter_4.pth', 'tools/train.py', DET_CONFIG, *options, check=False)
    assert killed.returncode == -signal.SIGKILL
    # With max_keep_ckpts=1 MMEngine's hook would already have deleted iter_2.pth before writing iter_4.pth.
    assert sorted(osp.basename(p) for p in glob.glob(osp.join(work_dir, '*.pth'))) == ['iter_2.pth']
    assert len(glob.glob(osp.join(work_dir, '.iter_4.pth.*.partial'))) == 1  # killed while writing it
    assert load_checkpoint_file(osp.join(work_dir, 'iter_2.pth'))['meta']['iter'] == 2
    capsys.readouterr()
    # resumed in this process: what is checked is the files the killed process left (saves an interpreter start)
    run_tool_in_process(monkeypatch, 'train.py', [DET_CONFIG, '--resume', *options])
    assert 'resumed epoch: 0, iter: 2' in ''.join(capsys.readouterr())  # no manual step, 2 iterations lost
    assert sorted(osp.basename(p) for p in glob.glob(osp.join(work_dir, '*.pth'))) == ['iter_6.pth']
    assert not glob.glob(osp.join(work_dir, '.*.partial'))  # the unfinished save was cleaned up
    assert load_checkpoint_file(osp.join(work_dir, 'iter_6.pth'))['meta']['iter'] == 6
