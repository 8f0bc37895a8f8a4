"""No tool destroys an input: an output path that is one of the run's inputs (the same path, a symbolic or a hard
link to it) is refused with one line before anything is written, whatever the file's permissions (the tools run as
root in containers); outputs are written through a temporary file, so a link at an output's path is replaced and the
file behind it kept, and a failed write leaves the earlier file and is recorded."""
import errno
import hashlib
import json
import os

import pytest
from toy_runs import DET_CONFIG, run_tool_in_process, tool_module, untrained_checkpoint

from mmmnv2.datasets import generate_detection
from mmmnv2.utils import refuse_overwriting_inputs, replace_when_written


def digest(path) -> str:
    return hashlib.sha256(open(path, 'rb').read()).hexdigest()


@pytest.fixture(scope='module')
def checkpoint(tmp_path_factory) -> str:
    return untrained_checkpoint(DET_CONFIG, str(tmp_path_factory.mktemp('outputs') / 'det.pth'))


def refusal(monkeypatch, tool, args) -> str:
    """The message of a tool run that must stop with one error line."""
    with pytest.raises(SystemExit) as stop:
        run_tool_in_process(monkeypatch, tool, args)
    message = str(stop.value.code)
    assert message.startswith('error: ') and '\n' not in message, message
    return message


def linked(tmp_path, target, how):
    """A second name for ``target``: 'same' (the path itself), 'symlink' or 'hardlink'."""
    if how == 'same':
        return str(target)
    link = tmp_path / f'{how}_to_{os.path.basename(target)}'
    (os.symlink if how == 'symlink' else os.link)(target, link)
    return str(link)


@pytest.mark.parametrize('how', ['same', 'symlink', 'hardlink'])
def test_export_does_not_replace_its_checkpoint(monkeypatch, tmp_path, checkpoint, how):
    before = digest(checkpoint)
    message = refusal(monkeypatch, 'deployment/pytorch2onnx.py',
                      [DET_CONFIG, checkpoint, '--output-file', linked(tmp_path, checkpoint, how)])
    assert f'would overwrite the input {checkpoint}' in message
    assert digest(checkpoint) == before


@pytest.mark.parametrize('fmt, extension', [('tflite', '.tflite'), ('executorch', '.pte')])
def test_mobile_export_does_not_replace_its_checkpoint(monkeypatch, tmp_path, checkpoint, fmt, extension):
    before = digest(checkpoint)
    out = tmp_path / f'model{extension}'
    os.symlink(checkpoint, out)  # an output name of the right type that is the checkpoint
    message = refusal(monkeypatch, 'deployment/export_mobile.py',
                      [DET_CONFIG, checkpoint, '--format', fmt, '--out', str(out)])
    assert f'would overwrite the input {checkpoint}' in message
    assert digest(checkpoint) == before and out.is_symlink()


def test_quantize_does_not_replace_its_model(monkeypatch, tmp_path):
    model = tmp_path / 'model.onnx'
    model.write_bytes(b'an fp32 model')
    model.chmod(0o444)  # read-only does not protect a file from a tool run as root
    message = refusal(monkeypatch, 'deployment/quantize.py', [DET_CONFIG, str(model), '--out', str(model)])
    assert f'would overwrite the input {model}' in message and model.read_bytes() == b'an fp32 model'


@pytest.mark.parametrize('tool, args', [
    ('model_converters/tf_to_openmmlab.py', []),
    ('model_converters/mobilenetv2_to_openmmlab.py', ['--source', 'torchvision']),
])
def test_converters_do_not_replace_their_source(monkeypatch, tmp_path, tool, args):
    source = tmp_path / 'model.tflite'
    source.write_bytes(b'a model file')
    source.chmod(0o444)
    message = refusal(monkeypatch, tool, [str(source), str(source), *args])
    assert f'would overwrite the input {source}' in message and source.read_bytes() == b'a model file'


def test_test_tool_does_not_write_its_predictions_over_the_checkpoint(monkeypatch, checkpoint):
    before = digest(checkpoint)
    message = refusal(monkeypatch, 'test.py', [DET_CONFIG, checkpoint, '--out', checkpoint])
    assert '--out file would overwrite the input' in message and digest(checkpoint) == before


def test_infer_replaces_a_planted_link_instead_of_writing_through_it(monkeypatch, tmp_path, checkpoint):
    generate_detection(str(tmp_path / 'data'), num_train=0, num_val=1)
    victim = tmp_path / 'victim.txt'
    victim.write_text('not to be overwritten')
    (tmp_path / 'out' / 'vis').mkdir(parents=True)
    (tmp_path / 'out' / 'vis' / '000000.jpg').symlink_to(victim)
    run_tool_in_process(monkeypatch, 'infer.py', [DET_CONFIG, checkpoint, str(tmp_path / 'data' / 'val'),
                                                  '--out-dir', str(tmp_path / 'out'), '--overwrite'])
    assert victim.read_text() == 'not to be overwritten'
    picture = tmp_path / 'out' / 'vis' / '000000.jpg'
    assert not picture.is_symlink() and picture.read_bytes()[:2] == b'\xff\xd8'  # a JPEG, in place of the link


def test_infer_records_a_failed_write(monkeypatch, tmp_path, checkpoint):
    """A full disk while writing the pictures: each image is recorded with the error, the exit status is 1."""
    generate_detection(str(tmp_path / 'data'), num_train=0, num_val=2)
    infer = tool_module('infer.py')

    def disk_full(image, path, *args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), path)

    monkeypatch.setattr('mmmnv2.utils.safe_output.mmcv.imwrite', disk_full)
    with pytest.raises(SystemExit) as stop:
        infer.main([DET_CONFIG, checkpoint, str(tmp_path / 'data' / 'val'), '--out-dir', str(tmp_path / 'out')])
    assert '2 of 2 images were skipped' in str(stop.value.code)
    manifest = json.loads((tmp_path / 'out' / 'manifest.json').read_text())
    assert [image['status'] for image in manifest['images']] == ['error', 'error']
    assert "out/vis/000000.jpg: No space left on device" in manifest['images'][0]['error']
    assert not list((tmp_path / 'out' / 'vis').iterdir())  # no partial picture, no temporary file left


def test_failed_write_keeps_the_earlier_file(tmp_path):
    target = tmp_path / 'result.json'
    target.write_text('earlier result')
    with pytest.raises(RuntimeError), replace_when_written(str(target)) as temporary:
        with open(temporary, 'w') as f:
            f.write('half a')
        raise RuntimeError('the writer failed')
    with pytest.raises(OSError, match='nothing was written'), replace_when_written(str(target)):
        pass
    assert target.read_text() == 'earlier result' and os.listdir(tmp_path) == ['result.json']


def test_a_missing_output_is_not_an_input(tmp_path):
    source = tmp_path / 'a.pth'
    source.write_bytes(b'x')
    refuse_overwriting_inputs([str(tmp_path / 'b.pth'), str(tmp_path / 'new' / 'a.pth')], [str(source), None])
    with pytest.raises(ValueError, match='would overwrite the input'):
        refuse_overwriting_inputs(str(tmp_path / '.' / 'a.pth'), [str(source)])


def test_infer_does_not_write_through_a_linked_results_folder(monkeypatch, tmp_path, checkpoint, capsys):
    generate_detection(str(tmp_path / 'data'), num_train=0, num_val=1)
    elsewhere = tmp_path / 'elsewhere'
    elsewhere.mkdir()
    (tmp_path / 'out').mkdir()
    (tmp_path / 'out' / 'vis').symlink_to(elsewhere)
    with pytest.raises(SystemExit):
        run_tool_in_process(monkeypatch, 'infer.py', [DET_CONFIG, checkpoint, str(tmp_path / 'data' / 'val'),
                                                      '--out-dir', str(tmp_path / 'out'), '--overwrite'])
    assert f'{tmp_path / "out" / "vis"} is a symbolic link' in capsys.readouterr().err
    assert not list(elsewhere.iterdir())
