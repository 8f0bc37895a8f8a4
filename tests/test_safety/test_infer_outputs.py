"""tools/infer.py loses nothing and records what it wrote: it never writes over an input, does not mix two runs in
one folder without --overwrite, skips undecodable images with a per-image error, handles 1x1 images, and writes a
manifest naming the config, the model file and its SHA-256, and the status of every image."""
import hashlib
import importlib.util
import json
import os.path as osp
import shutil

import cv2
import numpy as np
import pytest
from toy_runs import DET_CONFIG, REPO, SEG_CONFIG, untrained_checkpoint

from mmmnv2.datasets import generate_detection


def load_tool():
    spec = importlib.util.spec_from_file_location('infer_tool_safety', f'{REPO}/tools/infer.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


infer_tool = load_tool()


@pytest.fixture(scope='module')
def case(tmp_path_factory):
    """(detection checkpoint, segmentation checkpoint, folder of two toy images)."""
    root = tmp_path_factory.mktemp('infer_safety')
    generate_detection(str(root / 'data'), num_train=0, num_val=2)
    return (untrained_checkpoint(DET_CONFIG, str(root / 'det.pth')),
            untrained_checkpoint(SEG_CONFIG, str(root / 'seg.pth')), str(root / 'data' / 'val'))


def run(args, capsys):
    try:
        infer_tool.main(args)
        status = 0
    except SystemExit as stop:
        status = stop.code
    return status, ''.join(capsys.readouterr())


@pytest.mark.parametrize('task, sub_dir', [('det', 'vis'), ('seg', 'vis'), ('seg', 'preds')])
def test_inputs_inside_the_output_folder_are_not_overwritten(case, tmp_path, capsys, task, sub_dir):
    det, seg, images = case
    inputs = tmp_path / 'out' / sub_dir
    shutil.copytree(images, inputs)
    if sub_dir == 'preds':  # a label map next to the results, named as the result of an image of the same name
        for name in ('000000', '000001'):
            shutil.copy(inputs / f'{name}.jpg', inputs / f'{name}.png')
            (inputs / f'{name}.jpg').unlink()
    before = {path.name: path.read_bytes() for path in inputs.iterdir()}
    status, output = run([SEG_CONFIG if task == 'seg' else DET_CONFIG, seg if task == 'seg' else det, str(inputs),
                          '--out-dir', str(tmp_path / 'out'), '--overwrite'], capsys)
    assert status and 'would overwrite the input' in str(status) and str(status).startswith('error: ')
    assert {path.name: path.read_bytes() for path in inputs.iterdir()} == before


def test_non_empty_output_folder_needs_overwrite(case, tmp_path, capsys):
    det, _, images = case
    (tmp_path / 'earlier.txt').write_text('results of another run')
    status, output = run([DET_CONFIG, det, images, '--out-dir', str(tmp_path)], capsys)
    assert status == 2 and f'--out-dir {tmp_path} is not empty' in output and '--overwrite' in output
    assert sorted(p.name for p in tmp_path.iterdir()) == ['earlier.txt']
    status, _ = run([DET_CONFIG, det, images, '--out-dir', str(tmp_path), '--overwrite'], capsys)
    assert status == 0 and (tmp_path / 'manifest.json').exists()


def test_manifest_and_undecodable_and_tiny_images(case, tmp_path, capsys):
    det, seg, images = case
    inputs = tmp_path / 'inputs'
    shutil.copytree(images, inputs)
    (inputs / 'broken.jpg').write_bytes(b'not an image at all')
    cv2.imwrite(str(inputs / 'tiny.png'), np.full((1, 1, 3), 200, np.uint8))
    for config, checkpoint, task in ((DET_CONFIG, det, 'det'), (SEG_CONFIG, seg, 'seg')):
        out = tmp_path / task
        status, output = run([config, checkpoint, str(inputs), '--out-dir', str(out)], capsys)
        assert status and '1 of 4 images were skipped' in str(status) and 'broken.jpg' in str(status)
        assert str(inputs / 'broken.jpg') in output  # the per-image error, when it happens
        manifest = json.loads((out / 'manifest.json').read_text())
        assert manifest['config'] == config and manifest['model'] == checkpoint
        assert manifest['model_sha256'] == hashlib.sha256(open(checkpoint, 'rb').read()).hexdigest()
        assert manifest['started'] <= manifest['finished']
        statuses = {record['image'].rsplit('/', 1)[1]: record for record in manifest['images']}
        assert [statuses[name]['status'] for name in ('000000.jpg', '000001.jpg', 'broken.jpg', 'tiny.png')] == \
            ['ok', 'ok', 'error', 'ok']
        assert 'cannot be read as an image' in statuses['broken.jpg']['error']
        for name, record in statuses.items():  # each image read lists its files, and each was written
            if record['status'] != 'ok':
                assert 'outputs' not in record
                continue
            stem = osp.splitext(name)[0]
            expected = [out / 'vis' / name, out / 'preds' / f'{stem}.json']
            assert record['outputs'] == [str(path) for path in expected + ([out / 'preds' / f'{stem}.png']
                                                                             if task == 'seg' else [])]
            for path in record['outputs']:
                assert open(path, 'rb').read(1)
        assert cv2.imread(str(out / 'vis' / 'tiny.png')) is not None  # drawn (enlarged, with title and legend)
