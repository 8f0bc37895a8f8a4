"""TF-slim's MobileNetV2 1.0/224 ImageNet weights in ``mmmnv2.MobileNetV2`` with TF's 'SAME' padding.

- the quantized classifier (``mobilenet_v2_1.0_224_quant.tflite``), dequantized: the same top-1 as LiteRT's int8
  model on every photo;
- the float TF-slim variables (one .npy each): layer_19 within 1e-4 (relative to its largest value) of Keras 3's
  ``keras.applications.MobileNetV2`` -- an independent implementation of TF's padding, run on its torch backend --
  given the same variables; with PyTorch's symmetric padding instead, far from it: the option matters at 224.
"""
import os

import numpy as np
import torch
from google_models import PHOTOS, resized_photos, rgb, run_litert
from reference_data import require

from mmmnv2.converters import MobileNetV2Classifier


def load_converted(path, **kwargs):
    checkpoint = torch.load(path, map_location='cpu', weights_only=True)
    model = MobileNetV2Classifier(**kwargs)
    model.load_state_dict(checkpoint['state_dict'], strict=True)
    return model.eval(), checkpoint['meta']


def to_input(image: np.ndarray) -> torch.Tensor:
    """TF-slim's preprocessing: RGB scaled to [-1, 1]."""
    return torch.from_numpy(image.astype(np.float32) / 127.5 - 1).permute(2, 0, 1)[None]


def test_quantized_classifier_top1_matches_litert(shared_data, tf_to_openmmlab, tmp_path):
    source = shared_data / 'tflite' / 'mobilenet_v2_1.0_224_quant.tflite'
    checkpoint = str(tmp_path / 'mobilenet_v2_1.0_224_quant.pth')
    tf_to_openmmlab.main([str(source), checkpoint, '--labels', str(shared_data / 'tflite' / 'imagenet_labels.txt')])
    model, meta = load_converted(checkpoint)
    classes = meta['dataset_meta']['classes']
    assert len(classes) == 1001 and classes[0] == 'background'
    symmetric, _ = load_converted(checkpoint, same_padding=False)
    for name, path in zip(PHOTOS, resized_photos(shared_data, tmp_path, 224)):
        probabilities = run_litert(source, rgb(path))  # uint8 softmax, dequantized
        with torch.no_grad():
            ours = model(to_input(rgb(path))).softmax(1)[0].numpy()
            theirs_symmetric = symmetric(to_input(rgb(path))).softmax(1)[0].numpy()
        print(f'{name}: LiteRT {classes[probabilities.argmax()]!r} {probabilities.max():.3f}; ours '
              f'{classes[ours.argmax()]!r} {ours.max():.3f}; with symmetric padding '
              f'{classes[theirs_symmetric.argmax()]!r} {theirs_symmetric.max():.3f}')
        # uint8 probabilities can tie: ours must be one of LiteRT's top classes
        assert probabilities[ours.argmax()] == probabilities.max(), name


def keras_mobilenet_v2(variables_dir):
    """Keras 3's MobileNetV2 1.0/224 (torch backend) with the TF-slim variables, set layer by layer by name."""
    os.environ.setdefault('KERAS_BACKEND', 'torch')
    keras = require('keras')
    assert keras.backend.backend() == 'torch', 'Keras must run on its torch backend here'
    model = keras.applications.MobileNetV2(input_shape=(224, 224, 3), alpha=1.0, include_top=False, weights=None)

    def variable(name):
        return np.load(variables_dir / f'{name}.npy')

    def batch_norm(scope):
        return [variable(f'{scope}_BatchNorm_{v}') for v in ('gamma', 'beta', 'moving_mean', 'moving_variance')]

    # Keras layer -> TF-slim scope (flattened as in the .npy names): Keras names blocks 1..16, TF-slim
    # expanded_conv_1..16; the first block is expanded_conv in both.
    scopes = {'Conv1': 'Conv', 'Conv_1': 'Conv_1', 'expanded_conv_depthwise': 'expanded_conv_depthwise',
              'expanded_conv_project': 'expanded_conv_project'}
    for block in range(1, 17):
        for part in ('expand', 'depthwise', 'project'):
            scopes[f'block_{block}_{part}'] = f'expanded_conv_{block}_{part}'
    batch_norms = {'bn_Conv1': 'Conv', 'Conv_1_bn': 'Conv_1'}
    batch_norms.update({f'{layer}_BN': scope for layer, scope in scopes.items() if layer not in ('Conv1', 'Conv_1')})
    used = 0
    for layer in model.layers:
        if layer.name in scopes:
            kernel = 'depthwise_weights' if 'depthwise' in layer.name else 'weights'
            layer.set_weights([variable(f'{scopes[layer.name]}_{kernel}')])
            used += 1
        elif layer.name in batch_norms:
            layer.set_weights(batch_norm(batch_norms[layer.name]))
            used += 1
        else:
            assert not layer.weights, f'Keras layer {layer.name} has weights this test does not set'
    assert used == 2 * 52  # 52 convs, each with its BN
    return model


def test_tf_slim_weights_match_keras_with_same_padding_only(shared_data, tf_to_openmmlab, tmp_path):
    variables_dir = shared_data / 'tf_slim_mobilenet_v2_1.0_224'
    checkpoint = str(tmp_path / 'mobilenet_v2_1.0_224_tf_slim.pth')
    tf_to_openmmlab.main([str(variables_dir), checkpoint])  # no classifier kernel in the folder: backbone only
    same, meta = load_converted(checkpoint, num_classes=None)
    assert 'backbone only' in meta['note']
    symmetric, _ = load_converted(checkpoint, num_classes=None, same_padding=False)
    keras_model = keras_mobilenet_v2(variables_dir)
    for name, path in zip(PHOTOS[:2], resized_photos(shared_data, tmp_path, 224)):
        image = to_input(rgb(path))
        reference = np.asarray(keras_model(image.permute(0, 2, 3, 1), training=False).detach()).transpose(0, 3, 1, 2)
        scale = np.abs(reference).max()
        with torch.no_grad():
            same_diff = np.abs(same.backbone(image)[0].numpy() - reference).max() / scale
            symmetric_diff = np.abs(symmetric.backbone(image)[0].numpy() - reference).max() / scale
        print(f'{name}: layer_19 max |diff| / max |Keras| with SAME padding {same_diff:.2e}, '
              f'with symmetric padding {symmetric_diff:.2e}')
        assert same_diff <= 1e-4, name
        assert symmetric_diff > 1e-2, name
