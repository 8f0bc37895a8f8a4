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
    paths = []
    for name in PHOTOS:
        image = mmcv.imread(str(shared_data / 'images' / name))  # BGR
        path = out_dir / f'{Path(name).stem}_{size}.png'
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
