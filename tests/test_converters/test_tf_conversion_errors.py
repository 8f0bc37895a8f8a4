"""Files that do not fit the target config, or are not models at all, fail naming what differs or the file."""
import shutil

import numpy as np
import pytest
import torch
from google_models import DM05_CONFIG, OS16_CONFIG, ROOT, checkpoint_name
from mmengine.config import Config
from reference_data import require

from mmmnv2.converters import ConversionError, convert_tf_file, tf_sources

FLOAT_DEEPLAB = 'tflite/deeplabv3_257_mv_gpu.tflite'


def dm05_config(**changes) -> Config:
    cfg = Config.fromfile(str(DM05_CONFIG))
    cfg.merge_from_dict(changes)
    return cfg


def conversion_error(shared_data, config, source=FLOAT_DEEPLAB) -> str:
    with pytest.raises(ConversionError) as error:
        convert_tf_file(str(shared_data / source), config)
    return str(error.value)


def test_float_deeplab_fits_its_config(shared_data):
    state, meta = convert_tf_file(str(shared_data / FLOAT_DEEPLAB), str(DM05_CONFIG))
    assert meta['tf_source']['architecture'] == ('width 0.5, layer_5 16 channels, output stride 8, DeepLab head '
                                                 'without ASPP, 21 classes, input 257x257')
    assert len(meta['dataset_meta']['classes']) == 21


def test_another_width_lists_expected_and_found_tensors(shared_data):
    message = conversion_error(shared_data, str(OS16_CONFIG))
    assert 'file:  width 0.5' in message and 'model: width 1' in message
    assert 'MobilenetV2/Conv/weights: expected (3, 3, 3, 32), found (3, 3, 3, 16)' in message


def test_tf_slim_rounding_of_widths_does_not_fit_tf_deeplab_file(shared_data):
    # divisible_by=8 makes layers 3-4 16 channels wide; Google's DM 0.5 file has 12
    message = conversion_error(shared_data, dm05_config(model=dict(backbone=dict(divisible_by=8))))
    assert 'MobilenetV2/expanded_conv_1/project/weights: expected (1, 1, 48, 16), found (1, 1, 48, 12)' in message


def test_another_output_stride_is_refused(shared_data):
    message = conversion_error(shared_data, dm05_config(
        model=dict(backbone=dict(output_stride=16), decode_head=dict(output_stride=16))))
    assert 'file:  width 0.5, layer_5 16 channels, output stride 8' in message
    assert 'output stride 16' in message
    assert 'MobilenetV2/expanded_conv_6/depthwise: file stride 1 dilation 1, model stride 2 dilation 1' in message
    assert 'MobilenetV2/expanded_conv_16/depthwise: file stride 1 dilation 4, model stride 1 dilation 2' in message


def test_aspp_and_class_count_are_checked(shared_data):
    message = conversion_error(shared_data, dm05_config(model=dict(decode_head=dict(with_aspp=True))))
    assert 'model: width 0.5, layer_5 16 channels, output stride 8, DeepLab head with ASPP' in message
    assert 'aspp1/weights (3, 3, 160, 256)' in message
    message = conversion_error(shared_data, dm05_config(model=dict(decode_head=dict(num_classes=19))))
    assert 'logits/semantic/weights: expected (1, 1, 256, 19), found (1, 1, 256, 21)' in message


def test_segmentation_file_needs_a_config(shared_data):
    assert 'give the config' in conversion_error(shared_data, None)


def test_truncated_and_foreign_files_are_named(shared_data, tmp_path):
    data = (shared_data / FLOAT_DEEPLAB).read_bytes()
    truncated = tmp_path / 'truncated.tflite'
    truncated.write_bytes(data[:len(data) // 2])
    message = conversion_error(tmp_path, str(DM05_CONFIG), 'truncated.tflite')
    assert str(truncated) in message and ('truncated' in message or 'damaged' in message)
    foreign = tmp_path / 'photo.tflite'
    shutil.copy(shared_data / 'images' / 'cat.bmp', foreign)
    assert f'{foreign}: not a TFLite flatbuffer' in conversion_error(tmp_path, None, 'photo.tflite')
    (tmp_path / 'notes.txt').write_text('no model here')
    assert 'not a model this converter reads' in conversion_error(tmp_path, None, 'notes.txt')
    empty = tmp_path / 'empty_folder'
    empty.mkdir()
    assert 'without .npy files' in conversion_error(tmp_path, None, 'empty_folder')


def test_damaged_tf_checkpoint_is_refused_naming_it(tmp_path):
    (tmp_path / 'model.ckpt-30000.index').write_bytes(b'')
    with pytest.raises(ConversionError, match=r'model.ckpt-30000: not a readable TF checkpoint \(no table footer'):
        convert_tf_file(str(tmp_path / 'model.ckpt-30000'))


@pytest.mark.parametrize('content', [b'', b'not a graph at all'])
def test_file_that_is_no_frozen_graph_is_refused_naming_it(tmp_path, content):
    require('tensorboard')  # its GraphDef protos read frozen graphs
    (tmp_path / 'frozen_inference_graph.pb').write_bytes(content)
    expected = r'frozen_inference_graph.pb: (not a TF GraphDef|an empty TF GraphDef|a TF graph without variables)'
    with pytest.raises(ConversionError, match=expected):
        convert_tf_file(str(tmp_path / 'frozen_inference_graph.pb'))


def test_classifier_without_labels_is_refused(shared_data):
    with pytest.raises(ConversionError, match='labels file'):
        convert_tf_file(str(shared_data / 'tflite' / 'mobilenet_v2_1.0_224_quant.tflite'))


def test_tool_exits_with_the_error(shared_data, tf_to_openmmlab, tmp_path):
    with pytest.raises(SystemExit, match=r'^error: .*does not fit the target model'):
        tf_to_openmmlab.main([str(shared_data / FLOAT_DEEPLAB), str(tmp_path / 'out.pth'),
                              '--config', str(OS16_CONFIG)])
    assert not (tmp_path / 'out.pth').exists()


def test_tf_checkpoint_reader_logic_with_a_stand_in_for_the_file(shared_data, tmp_path, monkeypatch):
    """A stand-in for the checkpoint file's reader serves the TF-slim variables under their checkpoint names, with a
    training checkpoint's extras (step counter, momentum slots, moving averages): the moving averages are taken, the
    rest left out. Real TF checkpoints: test_tf_ssdlite.py and test_tf_checkpoints.py (slow)."""
    folder = shared_data / 'tf_slim_mobilenet_v2_1.0_224'
    npy_state, _ = convert_tf_file(str(folder))
    variables = {}
    for file in folder.glob('*.npy'):
        name = checkpoint_name(file.stem)
        value = np.load(file)
        variables[name] = value + 1  # raw value: the moving average below must win
        variables[f'{name}/ExponentialMovingAverage'] = value
        variables[f'{name}/Momentum'] = np.zeros_like(value)
    variables['global_step'] = np.array(30000)

    monkeypatch.setattr(tf_sources, 'read_bundle', lambda prefix: variables)
    (tmp_path / 'model.ckpt-30000.index').write_bytes(b'')
    state, meta = convert_tf_file(str(tmp_path / 'model.ckpt-30000.index'))
    assert meta['tf_source']['kind'] == 'checkpoint'
    assert state.keys() == npy_state.keys()
    assert all(torch.equal(state[key], npy_state[key]) for key in state)



def test_config_given_with_a_classifier_is_refused(shared_data, tf_to_openmmlab, tmp_path):
    """The file decides the model of a classifier: a --config cannot be honoured, and is not silently ignored."""
    source, out = shared_data / 'tf_slim_mobilenet_v2_1.0_224', tmp_path / 'out.pth'
    with pytest.raises(SystemExit) as stop:
        tf_to_openmmlab.main([str(source), str(out), '--config', str(DM05_CONFIG)])
    message = str(stop.value.code)
    assert message.startswith(f'error: {source}: is ') and 'not a TF DeepLab segmentation model' in message
    assert str(DM05_CONFIG) in message and not out.exists()


def test_segmentation_file_with_a_detection_config_is_refused(shared_data, tf_to_openmmlab, tmp_path):
    config = str(ROOT / 'configs/ssdlite/ssdlite_mobilenetv2_1xb8-600i_toyshapes-192x192.py')
    with pytest.raises(SystemExit) as stop:
        tf_to_openmmlab.main([str(shared_data / FLOAT_DEEPLAB), str(tmp_path / 'out.pth'), '--config', config])
    assert str(stop.value.code).startswith(f'error: {config}: builds a SSDLite, not a Mobile DeepLabv3')
    assert not (tmp_path / 'out.pth').exists()
