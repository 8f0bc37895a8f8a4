"""One error path for every tool: a refused input stops the tool with one line ``error: <file>: <reason>`` and exit
status 1, never a traceback; ``--debug`` shows the traceback. Each case is a file the tools used to crash on."""
import json
import shutil

import onnx
import pytest
import torch
from onnx import TensorProto, helper
from toy_runs import DET_CONFIG, REPO, run_tool_in_process, untrained_checkpoint

from mmmnv2.apis import init_model
from mmmnv2.datasets import generate_detection
from mmmnv2.deployment import export_onnx
from mmmnv2.deployment.graph_format import META_DATASET_META, META_HOST


@pytest.fixture(scope='module')
def files(tmp_path_factory):
    """(untrained detection checkpoint, its ONNX export, folder of one toy image)."""
    root = tmp_path_factory.mktemp('tool_errors')
    checkpoint = untrained_checkpoint(DET_CONFIG, str(root / 'det.pth'))
    generate_detection(str(root / 'data'), num_train=0, num_val=1)
    return checkpoint, export_onnx(DET_CONFIG, checkpoint, str(root / 'det.onnx')), str(root / 'data' / 'val')


def error_line(monkeypatch, tool, args) -> str:
    """The one line a tool run stops with; the same run with ``--debug`` raises the exception instead."""
    with pytest.raises(SystemExit) as stop:
        run_tool_in_process(monkeypatch, tool, args)
    message = str(stop.value.code)
    assert message.startswith('error: ') and '\n' not in message, message
    with pytest.raises(Exception) as debug:
        run_tool_in_process(monkeypatch, tool, [*args, '--debug'])
    assert not isinstance(debug.value, SystemExit)
    return message


def infer_args(model, images, tmp_path):
    return [DET_CONFIG, str(model), images, '--out-dir', str(tmp_path / 'out')]


def edited_onnx(source, path, metadata=None, external=None):
    """A copy of the ONNX file ``source`` with changed metadata (None values removed), or its first weight moved to
    the external data file ``external``."""
    model = onnx.load(source)
    if metadata is not None:
        props = {p.key: p.value for p in model.metadata_props}
        props.update(metadata)
        del model.metadata_props[:]
        for key, value in props.items():
            if value is not None:
                entry = model.metadata_props.add()
                entry.key, entry.value = key, value
    if external is not None:
        tensor = model.graph.initializer[0]
        tensor.ClearField('raw_data')
        del tensor.float_data[:]
        tensor.data_location = TensorProto.EXTERNAL
        entry = tensor.external_data.add()
        entry.key, entry.value = 'location', external
    onnx.save(model, str(path))
    return str(path)


@pytest.mark.parametrize('tool', ['infer.py', 'deployment/pytorch2onnx.py', 'deployment/quantize.py'])
def test_refused_checkpoint(monkeypatch, tmp_path, crafted, files, tool):
    checkpoint, marker = crafted
    args = {'infer.py': infer_args(checkpoint, files[2], tmp_path),
            'deployment/pytorch2onnx.py': [DET_CONFIG, checkpoint, '--output-file', str(tmp_path / 'x.onnx')],
            'deployment/quantize.py': [DET_CONFIG, checkpoint, '--out', str(tmp_path / 'x.onnx')]}[tool]
    assert f'Refused to load checkpoint {checkpoint}' in error_line(monkeypatch, tool, args)
    assert not marker.exists()


def test_checkpoint_that_is_an_onnx_file(monkeypatch, tmp_path, files):
    renamed = tmp_path / 'model.pth'
    shutil.copy(files[1], renamed)
    message = error_line(monkeypatch, 'infer.py', infer_args(renamed, files[2], tmp_path))
    assert message == f'error: {renamed}: not a PyTorch checkpoint; it starts as an ONNX model does: run it as one ' \
                      f'under an .onnx name'


def test_truncated_checkpoint_in_the_converter(monkeypatch, tmp_path, files):
    truncated = tmp_path / 'truncated.pth'
    truncated.write_bytes(open(files[0], 'rb').read()[:5000])
    message = error_line(monkeypatch, 'model_converters/mobilenetv2_to_openmmlab.py',
                         [str(truncated), str(tmp_path / 'out.pth'), '--source', 'torchvision'])
    assert str(truncated) in message and 'truncated' in message


def test_resume_from_weights_only(monkeypatch, tmp_path, files):
    message = error_line(monkeypatch, 'train.py', [DET_CONFIG, '--resume', files[0], '--work-dir', str(tmp_path)])
    assert message.startswith(f'error: {files[0]}: holds no training state')
    assert f'--cfg-options load_from={files[0]}' in message


def test_output_folder_that_cannot_be_created(monkeypatch, tmp_path, files):
    """A folder that cannot be made (here below a file; a read-only file system fails the same way)."""
    (tmp_path / 'file').write_text('')
    message = error_line(monkeypatch, 'deployment/pytorch2onnx.py',
                         [DET_CONFIG, files[0], '--output-file', str(tmp_path / 'file' / 'x.onnx')])
    assert message == f'error: {tmp_path / "file"}: Not a directory'


@pytest.mark.parametrize('case', ['not ONNX', 'external data outside', 'custom domain', 'metadata not JSON',
                                  'wrong class count'])
def test_malformed_onnx_files(monkeypatch, tmp_path, files, case):
    path = tmp_path / 'model.onnx'
    if case == 'not ONNX':
        path.write_bytes(b'\x00\xff not a protobuf')
        expected = 'not an ONNX model'
    elif case == 'external data outside':
        edited_onnx(files[1], path, external='../../etc/passwd')
        expected = 'reads external data from ../../etc/passwd, outside the model\'s folder'
    elif case == 'custom domain':
        node = helper.make_node('Payload', ['input'], ['output'], domain='evil.ops')
        graph = helper.make_graph([node], 'g', [helper.make_tensor_value_info('input', TensorProto.FLOAT, [1])],
                                  [helper.make_tensor_value_info('output', TensorProto.FLOAT, [1])])
        onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid('', 17),
                                                          helper.make_opsetid('evil.ops', 1)]), str(path))
        expected = 'uses operators of the custom domain(s) evil.ops'
    elif case == 'metadata not JSON':
        edited_onnx(files[1], path, {META_DATASET_META: '{classes: circle'})
        expected = f'its metadata {META_DATASET_META} is not JSON'
    else:
        edited_onnx(files[1], path, {META_DATASET_META: json.dumps({'classes': ['circle', 'square']})})
        expected = "holds 2 class names ['circle', 'square'], but the config has 3 classes"
    message = error_line(monkeypatch, 'infer.py', infer_args(path, files[2], tmp_path))
    assert message.startswith(f'error: {path}: ') and expected in message, message


def test_different_class_names_are_warned_with_both_lists(tmp_path, files):
    checkpoint = tmp_path / 'renamed.pth'
    state = torch.load(files[0], weights_only=True)
    torch.save(dict(state, meta={'dataset_meta': {'classes': ('disc', 'box', 'wedge')}}), checkpoint)
    with pytest.warns(UserWarning) as warned:
        model = init_model(DET_CONFIG, str(checkpoint), device='cpu')
    message = next(str(w.message) for w in warned if str(checkpoint) in str(w.message))
    assert "file:   ['disc', 'box', 'wedge']" in message and "config: ['circle', 'square', 'triangle']" in message
    assert model.dataset_meta['classes'] == ('disc', 'box', 'wedge')
    # ONNX files too; a file without a host or class names is run with the config's
    renamed = edited_onnx(files[1], tmp_path / 'renamed.onnx',
                          {META_DATASET_META: json.dumps({'classes': ['disc', 'box', 'wedge']}), META_HOST: None})
    with pytest.warns(UserWarning, match=r"file:   \['disc', 'box', 'wedge'\]"):
        init_model(DET_CONFIG, renamed)


@pytest.mark.parametrize('option, key', [
    ('model.bbox_head.anchor_generator.min_scale=0.1', 'bbox_head.anchor_generator'),
    ('model.bbox_head.bbox_coder.target_stds=[0.1,0.1,0.1,0.1]', 'bbox_head.bbox_coder'),
    ('model.data_preprocessor.mean=[0,0,0]', 'data_preprocessor.mean'),
])
def test_onnx_file_with_other_model_settings_is_refused(monkeypatch, tmp_path, files, option, key):
    """Anchors, box coder and normalisation are not in the network graph: a file run with a config that changes
    them would give wrong boxes. The settings it was exported with are in its metadata and compared."""
    message = error_line(monkeypatch, 'test.py', [DET_CONFIG, files[1], '--work-dir', str(tmp_path),
                                                  '--cfg-options', option])
    assert message.startswith(f'error: {files[1]}: was exported with other model settings than the config\'s')
    assert f'{key}: ' in message and message.count(' in the file, ') == 1


def test_postprocess_cannot_be_added_with_other_anchors(tmp_path, files):
    from mmengine.config import Config

    from mmmnv2.deployment import add_postprocess
    cfg = Config.fromfile(DET_CONFIG)
    cfg.model.bbox_head.anchor_generator.min_scale = 0.1
    with pytest.raises(ValueError, match='bbox_head.anchor_generator: .* in the file, .*0.1'):
        add_postprocess(cfg, files[1], str(tmp_path / 'post.onnx'))
    assert not (tmp_path / 'post.onnx').exists()


def test_benchmark_tool_reports_a_missing_file_in_one_line(monkeypatch, tmp_path):
    monkeypatch.syspath_prepend(f'{REPO}/tools/analysis_tools')  # the tool imports its reports module from there
    missing = tmp_path / 'deploy_benchmark.json'
    assert error_line(monkeypatch, 'analysis_tools/benchmark.py', ['--from-json', str(missing)]) == \
        f'error: {missing}: No such file or directory'
