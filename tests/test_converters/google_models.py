"""Google's released MobileNetV2 files and real photos, read from ``../shared/data`` beside the repository.

The folder comes in through the ``shared_data`` fixture and the reference runtimes (``ai-edge-litert``, ``keras``,
the ``tests`` extra) through ``reference_data.require``: both fail in CI when missing, and skip elsewhere.
"""
import re
from pathlib import Path

import mmcv
import numpy as np
from reference_data import require

ROOT = Path(__file__).resolve().parents[2]
PHOTOS = ('bird_segmentation.bmp', 'bird.bmp', 'cat.bmp', 'grace_hopper.bmp')
DM05_CONFIG = ROOT / 'configs/mobile_deeplabv3/mobile-deeplabv3_mobilenetv2-dm0.5-os8_tf-weights_voc12-257x257.py'
OS16_CONFIG = ROOT / 'configs/mobile_deeplabv3/mobile-deeplabv3_mobilenetv2-os16_tf-weights_voc12-513x513.py'


def resized_photos(shared_data: Path, out_dir: Path, size: int) -> list:
    """Each photo resized to size x size (bilinear) and written losslessly, so every model reads the same pixels."""
    return resized_images([shared_data / 'images' / name for name in PHOTOS], out_dir, size)


def resized_images(images: list, out_dir: Path, size: int) -> list:
    """Each image file resized to size x size (bilinear), written losslessly as ``out_dir/<stem>_<size>.png``."""
    paths = []
    for source in images:
        image = mmcv.imread(str(source))  # BGR
        path = out_dir / f'{Path(source).stem}_{size}.png'
        mmcv.imwrite(mmcv.imresize(image, (size, size), interpolation='bilinear'), str(path))
        paths.append(str(path))
    return paths


def rgb(path: str) -> np.ndarray:
    return mmcv.imread(path, channel_order='rgb')


def run_litert(model_path: Path, image: np.ndarray) -> np.ndarray:
    """The file's first output for one input image (batch of one), with LiteRT on one thread; a quantized output
    (uint8 probabilities) is dequantized, an integer one (argmax) returned as it is."""
    interpreter_module = require('ai_edge_litert.interpreter')
    interpreter = interpreter_module.Interpreter(model_path=str(model_path), num_threads=1)
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]['index'], image[None])
    interpreter.invoke()
    output = interpreter.get_output_details()[0]
    values = interpreter.get_tensor(output['index'])[0]
    scale, zero_point = output['quantization']
    return (values.astype(np.float32) - zero_point) * scale if scale else values


def checkpoint_name(stem: str) -> str:
    """A TF-slim .npy file's variable name: 'expanded_conv_3_expand_BatchNorm_gamma' ->
    'MobilenetV2/expanded_conv_3/expand/BatchNorm/gamma'."""
    name = 'MobilenetV2/' + stem.replace('_BatchNorm_', '/BatchNorm/')
    name = re.sub(r'(expanded_conv(_\d+)?)_(expand|depthwise|project)', r'\1/\3', name)
    name = re.sub(r'/(depthwise)_(depthwise_weights)$', r'/\1/\2', name)
    name = re.sub(r'/(expand|project|Conv|Conv_1)_(weights)$', r'/\1/\2', name)
    return re.sub(r'^MobilenetV2/(Logits)_(Conv2d_1c_1x1)_(biases)$', r'MobilenetV2/\1/\2/\3', name)


# TF DeepLab's head at width 1.0, output stride 16, no ASPP (deeplab/model.py): scope -> kernel shape (HWIO)
DEEPLAB_HEAD = {'image_pooling': (1, 1, 320, 256), 'aspp0': (1, 1, 320, 256),
                'concat_projection': (1, 1, 512, 256), 'logits/semantic': (1, 1, 256, 21)}
# our module of each DeepLab head scope, written from mmseg's ASPPHead layout
DEEPLAB_MODULES = {'image_pooling': 'decode_head.image_pool.1', 'aspp0': 'decode_head.aspp_modules.0',
                   'concat_projection': 'decode_head.bottleneck'}
BN_KEYS = {'gamma': 'weight', 'beta': 'bias', 'moving_mean': 'running_mean', 'moving_variance': 'running_var'}


def deeplab_table7_variables(slim_variables: dict, seed: int) -> dict:
    """The variables of TF DeepLab's Table 7 model under its names: the backbone up to layer_18 from TF-slim's
    variables (no Conv_1, no ImageNet logits), the head (``DEEPLAB_HEAD``) random from ``seed``."""
    rng = np.random.default_rng(seed)
    variables = {name: value for name, value in slim_variables.items()
                 if not name.startswith(('MobilenetV2/Conv_1/', 'MobilenetV2/Logits/'))}
    for scope, shape in DEEPLAB_HEAD.items():
        variables[f'{scope}/weights'] = rng.normal(0, 0.05, shape).astype(np.float32)
        if scope == 'logits/semantic':
            variables[f'{scope}/biases'] = rng.normal(0, 0.1, shape[-1:]).astype(np.float32)
            continue
        variables[f'{scope}/BatchNorm/gamma'] = rng.uniform(0.5, 1.5, shape[-1:]).astype(np.float32)
        variables[f'{scope}/BatchNorm/beta'] = rng.normal(0, 0.1, shape[-1:]).astype(np.float32)
        variables[f'{scope}/BatchNorm/moving_mean'] = rng.normal(0, 0.1, shape[-1:]).astype(np.float32)
        variables[f'{scope}/BatchNorm/moving_variance'] = rng.uniform(0.5, 2, shape[-1:]).astype(np.float32)
    return variables


def deeplab_dm05_variables(shared_data: Path, seed: int) -> dict:
    """The variables of TF DeepLab's DM 0.5 output stride 8 model under its names, as its graph had them before
    TFLite folded BatchNorm: Google's folded kernels (``deeplabv3_257_mv_gpu.tflite``) with each folded bias unfolded
    into BN variables with random statistics (variance, mean from ``seed``) and the affine parameters that give back
    Google's function: gamma = sqrt(variance + eps), beta = bias + mean, with TF's eps of the layer (backbone 1e-3,
    head 1e-5). ``logits/semantic`` keeps its biases."""
    from mmmnv2.converters import read_tf_variables
    rng = np.random.default_rng(seed)
    folded = read_tf_variables(str(shared_data / 'tflite' / 'deeplabv3_257_mv_gpu.tflite')).arrays
    variables = {}
    for name, value in folded.items():
        scope, leaf = name.rsplit('/', 1)
        if leaf != 'biases' or scope == 'logits/semantic':
            variables[name] = value.astype(np.float32)
            continue
        eps = 1e-3 if scope.startswith('MobilenetV2/') else 1e-5
        variance = rng.uniform(0.5, 2, value.shape)
        mean = rng.normal(0, 0.3, value.shape)
        variables[f'{scope}/BatchNorm/gamma'] = np.sqrt(variance + eps).astype(np.float32)
        variables[f'{scope}/BatchNorm/beta'] = (value + mean).astype(np.float32)
        variables[f'{scope}/BatchNorm/moving_mean'] = mean.astype(np.float32)
        variables[f'{scope}/BatchNorm/moving_variance'] = variance.astype(np.float32)
    return variables


def slim_checkpoint_variables(shared_data: Path) -> dict:
    """TF-slim's float MobileNetV2 1.0/224 variables (``../shared/data``) under their checkpoint names."""
    folder = shared_data / 'tf_slim_mobilenet_v2_1.0_224'
    return {checkpoint_name(file.stem): np.load(file, allow_pickle=False) for file in sorted(folder.glob('*.npy'))}
