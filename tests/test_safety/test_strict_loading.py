"""Nothing silently wrong: a checkpoint that does not fit the config's model stops the run, listing the keys.

MMEngine loads ``load_from`` and test checkpoints non-strictly and only logs what it skipped, so a segmentation
checkpoint evaluated with a detection config printed an mAP with exit status 0, and ``load_from`` a checkpoint of
another model trained on from random weights.
"""
import glob
import re

import pytest
import torch
from mmengine.config import Config
from toy_runs import DET_CONFIG, SEG_CONFIG, det_data_options, run_tool_in_process, untrained_checkpoint

from mmmnv2.apis import init_model
from mmmnv2.datasets import generate_detection
from mmmnv2.utils import CheckpointMismatchError

FAST = ['train_cfg.max_iters=1', 'train_dataloader.num_workers=0', 'train_dataloader.persistent_workers=False',
        'train_dataloader.batch_size=2', 'val_dataloader.num_workers=0', 'val_dataloader.persistent_workers=False',
        'val_cfg=None', 'val_dataloader=None', 'val_evaluator=None']


@pytest.fixture(scope='module')
def toy(tmp_path_factory):
    """(small toy detection data, checkpoint of the toy segmentation config, checkpoint of a 5-class detector)."""
    root = tmp_path_factory.mktemp('strict')
    generate_detection(str(root / 'data'), num_train=4, num_val=2)
    seg = untrained_checkpoint(SEG_CONFIG, str(root / 'seg.pth'))
    cfg = Config.fromfile(DET_CONFIG)
    cfg.model.bbox_head.num_classes = 5
    torch.save({'state_dict': init_model(cfg, device='cpu').state_dict()}, root / 'det5.pth')
    return str(root / 'data'), seg, str(root / 'det5.pth')


def test_test_tool_refuses_another_models_checkpoint_before_evaluating(toy, tmp_path, monkeypatch, capsys):
    data, seg_checkpoint, _ = toy
    with pytest.raises(SystemExit) as stop:
        run_tool_in_process(monkeypatch, 'test.py', [DET_CONFIG, seg_checkpoint, '--work-dir', str(tmp_path),
                                                     '--cfg-options', *det_data_options(data)])
    message = str(stop.value.code)
    assert seg_checkpoint in message and 'does not fit' in message
    assert 'missing' in message and 'backbone.' in message and 'unexpected' in message and 'decode_head.' in message
    output = ''.join(capsys.readouterr())
    assert not re.search(r'\(test\) \[|bbox_mAP: -?[0-9]', output)  # stopped before the evaluation


def test_load_from_another_model_stops_before_training(toy, tmp_path, monkeypatch):
    data, seg_checkpoint, _ = toy
    with pytest.raises(SystemExit) as stop:
        run_tool_in_process(monkeypatch, 'train.py', [DET_CONFIG, '--work-dir', str(tmp_path), '--cfg-options',
                                                      *det_data_options(data), *FAST, f'load_from={seg_checkpoint}'])
    assert seg_checkpoint in str(stop.value.code) and '--partial-load' in str(stop.value.code)
    assert not glob.glob(str(tmp_path / '*.pth'))


def test_partial_load_is_opt_in_and_prints_the_skipped_keys(toy, tmp_path, monkeypatch, capsys):
    data, _, det5 = toy
    args = [DET_CONFIG, '--work-dir', str(tmp_path), '--cfg-options', *det_data_options(data), *FAST,
            f'load_from={det5}']
    with pytest.raises(SystemExit) as stop:  # 5 classes vs the toy's 3: the classifier convs are mis-shaped
        run_tool_in_process(monkeypatch, 'train.py', args)
    assert 'mis-shaped' in str(stop.value.code) and 'bbox_head.cls_convs.0' in str(stop.value.code)
    run_tool_in_process(monkeypatch, 'train.py', [*args, '--partial-load'])
    output = ''.join(capsys.readouterr())
    assert 'Partial load of ' + det5 in output
    table = output[output.index('Partial load of'):]
    assert 'mis-shaped  bbox_head.cls_convs.0' in ' '.join(table.split(' ' * 3))
    assert glob.glob(str(tmp_path / '*' / '*.log'))  # it trained


def test_init_model_lists_missing_unexpected_and_mis_shaped_keys(toy, tmp_path):
    _, _, det5 = toy
    state = torch.load(det5)['state_dict']
    state['extra.weight'] = torch.zeros(1)
    del state['backbone.conv1.conv.weight']
    torch.save({'state_dict': state}, tmp_path / 'edited.pth')
    with pytest.raises(CheckpointMismatchError) as error:
        init_model(DET_CONFIG, str(tmp_path / 'edited.pth'), 'cpu')
    rows = [line.split() for line in str(error.value).splitlines()]
    assert ['missing', 'backbone.conv1.conv.weight', '-', '(32,', '3,', '3,', '3)'] in rows
    assert ['unexpected', 'extra.weight', '(1,)', '-'] in rows
    assert any(row[:2] == ['mis-shaped', 'bbox_head.cls_convs.0.1.weight'] for row in rows)


def test_test_time_augmentation_model_is_checked_as_the_model_it_wraps(toy):
    """``tools/test.py --tta`` tests a TTA wrapper; MMEngine loads into the wrapped model, and so is it checked."""
    from types import SimpleNamespace

    from mmseg.models import SegTTAModel

    from mmmnv2.engine import StrictLoadHook
    _, seg_checkpoint, det5 = toy
    model = init_model(SEG_CONFIG, device='cpu')
    runner = SimpleNamespace(model=SegTTAModel(module=model), _load_from=seg_checkpoint)
    StrictLoadHook().after_load_checkpoint(runner, torch.load(seg_checkpoint))  # fits: no error
    runner._load_from = det5
    with pytest.raises(CheckpointMismatchError, match=det5):
        StrictLoadHook().after_load_checkpoint(runner, torch.load(det5))
