"""TF checkpoints (``model.ckpt-N.index`` / ``.data-00000-of-00001``) written by real TensorFlow, read by ours.

The checkpoints are written here with TensorFlow's TF1 ``Saver`` (the format of Google's TF-slim and TF DeepLab
releases), under the names those code bases give their variables, filled with TF-slim's float MobileNetV2 1.0/224
variables from ``../shared/data``:

- an ImageNet classifier as TF-slim trains it: every model variable with its ``ExponentialMovingAverage`` shadow,
  RMSProp slots and ``global_step`` (the file's logits kernel is absent from the shared variables: a made-up one);
- the paper's Table 7 Mobile DeepLabv3 (1.0, output stride 16, no ASPP) as TF DeepLab trains it: backbone up to
  ``layer_18``, a head (``image_pooling``, ``aspp0``, ``concat_projection``, ``logits/semantic``) of random values,
  ``Momentum`` slots and ``global_step``.

This checks our reading of TF's checkpoint format (``mmmnv2.converters.tf_bundle``, without TensorFlow) and naming,
not Google's own files (not available here). Writing them needs TensorFlow in the test process (``pip install
"mmmnv2[tf]"``), which no extra the test environment installs has: marked ``slow``; see README "The paper's own
weights" for the command. (``test_tf_ssdlite.py`` reads checkpoints that TensorFlow writes in its own environment.)
"""
import numpy as np
import pytest
import torch
from google_models import BN_KEYS, DEEPLAB_MODULES, OS16_CONFIG, deeplab_table7_variables, slim_checkpoint_variables

from mmmnv2.apis import inference, init_model
from mmmnv2.converters import convert_tf_file

pytestmark = pytest.mark.slow
STEP = 30000


@pytest.fixture(scope='module')
def tf():
    return pytest.importorskip('tensorflow', reason='TensorFlow is not installed (extra "mmmnv2[tf]"); these tests '
                                                    'write real TF checkpoints with it')


@pytest.fixture(scope='module')
def slim_variables(shared_data):
    """TF-slim's float MobileNetV2 1.0/224 variables under their checkpoint names."""
    return slim_checkpoint_variables(shared_data)


def write_tf1_checkpoint(tf, prefix, variables) -> str:
    """Save ``variables`` (name -> array) with TF's TF1 Saver as ``{prefix}-{STEP}``; returns that prefix."""
    with tf.Graph().as_default(), tf.compat.v1.Session() as session:
        saver = tf.compat.v1.train.Saver({name: tf.compat.v1.Variable(value) for name, value in variables.items()},
                                         write_version=tf.compat.v1.train.SaverDef.V2)
        session.run(tf.compat.v1.global_variables_initializer())
        return saver.save(session, str(prefix), global_step=STEP, write_meta_graph=False)


def trainable(name: str) -> bool:
    return not name.endswith(('moving_mean', 'moving_variance'))


def to_torch(array: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(array, np.float32))


def assert_all_equal(state, reference, keys):
    assert keys, 'nothing compared'
    different = [key for key in keys if not torch.equal(state[key], reference[key])]
    assert not different, different[:10]


def test_tf_slim_classifier_checkpoint_takes_the_moving_averages(tf, shared_data, slim_variables, tmp_path,
                                                                 tf_to_openmmlab):
    rng = np.random.default_rng(0)
    model_variables = dict(slim_variables)
    model_variables['MobilenetV2/Logits/Conv2d_1c_1x1/weights'] = rng.normal(0, 0.01, (1, 1, 1280, 1001)).astype(
        np.float32)
    saved = {'global_step': np.int64(STEP)}
    for name, value in model_variables.items():
        saved[name] = value + 1  # the raw training value: the moving average must win over it
        saved[f'{name}/ExponentialMovingAverage'] = value
        if trainable(name):
            saved[f'{name}/RMSProp'] = np.full_like(value, 7)
            saved[f'{name}/RMSProp_1'] = np.full_like(value, 9)
    prefix = write_tf1_checkpoint(tf, tmp_path / 'model.ckpt', saved)
    assert prefix.endswith(f'model.ckpt-{STEP}')
    assert tf.train.load_checkpoint(prefix).get_variable_to_shape_map().keys() == saved.keys()

    labels = tmp_path / 'labels.txt'
    labels.write_text('\n'.join(['background'] + [f'class {i}' for i in range(1, 1001)]) + '\n')
    # The backbone as converted from the .npy folder (checked against Keras in test_tf_classifier.py).
    npy_state, _ = convert_tf_file(str(shared_data / 'tf_slim_mobilenet_v2_1.0_224'))
    for source in (prefix, prefix + '.index'):  # both forms the README gives
        out = tmp_path / 'cls.pth'
        tf_to_openmmlab.main([source, str(out), '--labels', str(labels)])
        checkpoint = torch.load(out, weights_only=True)
        state = checkpoint['state_dict']
        assert checkpoint['meta']['tf_source']['kind'] == 'checkpoint'
        assert checkpoint['meta']['dataset_meta']['classes'][0] == 'background'
        assert set(state) == set(npy_state) | {'head.fc.weight', 'head.fc.bias'}
        assert_all_equal(state, npy_state, sorted(npy_state))
        logits = model_variables['MobilenetV2/Logits/Conv2d_1c_1x1/weights']
        assert torch.equal(state['head.fc.weight'], to_torch(logits[0, 0].T))
        assert torch.equal(state['head.fc.bias'], to_torch(model_variables['MobilenetV2/Logits/Conv2d_1c_1x1/biases']))
        # written out from TF's layouts by hand: HWIO -> OIHW, BN statistics as they are (moving averages)
        assert torch.equal(state['backbone.conv1.conv.weight'],
                           to_torch(model_variables['MobilenetV2/Conv/weights'].transpose(3, 2, 0, 1)))
        assert torch.equal(state['backbone.conv1.bn.running_var'],
                           to_torch(model_variables['MobilenetV2/Conv/BatchNorm/moving_variance']))


def test_tf_deeplab_checkpoint_loads_strictly_into_the_table7_config(tf, shared_data, slim_variables, tmp_path,
                                                                    tf_to_openmmlab):
    model_variables = deeplab_table7_variables(slim_variables, seed=1)
    saved = {'global_step': np.int64(STEP), **model_variables}
    saved.update({f'{name}/Momentum': np.full_like(value, 5) for name, value in model_variables.items()
                  if trainable(name)})
    prefix = write_tf1_checkpoint(tf, tmp_path / 'model.ckpt', saved)

    npy_state, _ = convert_tf_file(str(shared_data / 'tf_slim_mobilenet_v2_1.0_224'))
    for source in (prefix, prefix + '.index'):
        out = tmp_path / 'mnv2_voc.pth'
        tf_to_openmmlab.main([source, str(out), '--config', str(OS16_CONFIG)])
        state = torch.load(out, weights_only=True)['state_dict']
        backbone = sorted(key for key in state if key.startswith('backbone.'))
        assert set(backbone) == {key for key in npy_state if not key.startswith('backbone.conv2.')}
        assert_all_equal(state, npy_state, backbone)
        for scope, module in DEEPLAB_MODULES.items():
            assert torch.equal(state[f'{module}.conv.weight'],
                               to_torch(model_variables[f'{scope}/weights'].transpose(3, 2, 0, 1)))
            for variable, key in BN_KEYS.items():
                assert torch.equal(state[f'{module}.bn.{key}'],
                                   to_torch(model_variables[f'{scope}/BatchNorm/{variable}'])), (scope, variable)
        assert torch.equal(state['decode_head.conv_seg.weight'],
                           to_torch(model_variables['logits/semantic/weights'].transpose(3, 2, 0, 1)))
        assert torch.equal(state['decode_head.conv_seg.bias'], to_torch(model_variables['logits/semantic/biases']))

    # init_model loads strictly; the config's test pipeline and inference run on a real photo.
    model = init_model(str(OS16_CONFIG), str(out), device='cpu')
    assert torch.equal(model.state_dict()['decode_head.conv_seg.bias'], state['decode_head.conv_seg.bias'])
    [(_, sample)] = inference(model, [str(shared_data / 'images' / 'bird_segmentation.bmp')])
    logits = sample.seg_logits.data
    assert logits.shape[0] == 21 and torch.isfinite(logits).all()
    assert sample.pred_sem_seg.data.shape[-2:] == logits.shape[-2:]
