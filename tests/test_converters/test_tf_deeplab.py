"""Google's Mobile DeepLabv3 models converted and run through our configs, against LiteRT on real photos.

- float, depth multiplier 0.5, output stride 8, 257x257 (``deeplabv3_257_mv_gpu.tflite``): our logits (PyTorch, and
  our ONNX, .tflite and .pte exports in our runner) within 1e-4 of LiteRT's relative to the largest logit, argmax
  identical on >= 99.9% of the pixels of every photo;
- the paper's Table 7 model (1.0, output stride 16) after 8-bit quantization-aware training
  (``deeplabv3_mnv2_pascal_quant.tflite``), dequantized and run in float: argmax the same as LiteRT's int8 argmax on
  >= 98.5% of the pixels of every photo, the same classes found, the bird (class 3) on ``bird_segmentation.bmp``;
  and ``tools/test.py`` on that photo with its reference mask;
- that converted model exported again as an int8 ``.tflite`` through our int8 path (LiteRT's PT2E quantizer,
  calibrated on real COCO photos, not the compared ones; the first convolution and the classifier kept in float, the
  accuracy guard's fallback) and run by our runner in LiteRT: argmax the same as Google's int8 file's on >= 98% of
  the pixels of every photo.
"""
import re
import subprocess
import sys

import mmcv
import numpy as np
import pytest
import torch
from deploy_helpers import float_convolutions
from google_models import DM05_CONFIG, OS16_CONFIG, PHOTOS, ROOT, resized_images, resized_photos, rgb, run_litert
from reference_data import require

from mmmnv2.apis import inference, init_model

BIRD = 3  # PASCAL VOC class index
# The int8 export of Google's quantized model: calibration photos (the first COCO val2017 photos, sorted); the layers
# the accuracy guard keeps in float on its fallback (``sensitive_mobile_modules``: the first convolution and the
# classifier) stay float: fully int8, the cat photo's agreement fell to 97.7% (16 photos) and 94.1% (32).
INT8_CALIBRATION_PHOTOS = 32


@pytest.fixture(scope='module')
def float_deeplab(shared_data, tf_to_openmmlab, tmp_path_factory):
    """(TFLite file, converted checkpoint, photos at 257x257)."""
    tmp = tmp_path_factory.mktemp('tf_deeplab_float')
    source = shared_data / 'tflite' / 'deeplabv3_257_mv_gpu.tflite'
    checkpoint = str(tmp / 'deeplab_dm05.pth')
    tf_to_openmmlab.main([str(source), checkpoint])  # the config is chosen from the file: width 0.5
    return source, checkpoint, resized_photos(shared_data, tmp, 257)


def compare_logits(model, source, photos):
    """(relative max difference, argmax agreement, classes) per photo, ours vs LiteRT."""
    rows = []
    for path, sample in inference(model, photos):
        ours = sample.seg_logits.data.numpy()  # (21, 257, 257), upsampled with align_corners=True
        reference = run_litert(source, (rgb(path).astype(np.float32) / 127.5 - 1)).transpose(2, 0, 1)
        relative = float(np.abs(ours - reference).max() / np.abs(reference).max())
        agreement = float((ours.argmax(0) == reference.argmax(0)).mean())
        rows.append((relative, agreement, set(np.unique(reference.argmax(0)).tolist())))
    print('\n'.join(f'{name}: max |diff| / max |logit| {r:.2e}, argmax agreement {a:.4%}, LiteRT classes {c}'
                    for name, (r, a, c) in zip(PHOTOS, rows)))
    return rows


def check_float_parity(rows):
    for name, (relative, agreement, _) in zip(PHOTOS, rows):
        assert relative <= 1e-4, name
        assert agreement >= 0.999, name
    assert BIRD in rows[PHOTOS.index('bird_segmentation.bmp')][2]


def test_float_deeplab_logits_match_litert(float_deeplab):
    source, checkpoint, photos = float_deeplab
    model = init_model(str(DM05_CONFIG), checkpoint, device='cpu')
    assert model.dataset_meta['classes'][BIRD] == 'bird' and len(model.dataset_meta['classes']) == 21
    check_float_parity(compare_logits(model, source, photos))


def test_float_deeplab_onnx_export_matches_litert(float_deeplab, tmp_path):
    require('onnxruntime')
    from mmmnv2.deployment import export_onnx
    source, checkpoint, photos = float_deeplab
    onnx_file = export_onnx(str(DM05_CONFIG), checkpoint, str(tmp_path / 'deeplab_dm05.onnx'))
    model = init_model(str(DM05_CONFIG), onnx_file)  # our onnxruntime runner, the config's pre/post-processing
    check_float_parity(compare_logits(model, source, photos))


@pytest.mark.parametrize('fmt,extension,runtime', [('tflite', '.tflite', 'litert_torch'),
                                                    ('executorch', '.pte', 'executorch')])
def test_float_deeplab_mobile_export_matches_litert(fmt, extension, runtime, float_deeplab, tmp_path):
    """Google's .tflite converted into ours and exported again as .tflite (litert-torch) or .pte (ExecuTorch):
    Google's file's logits in our runner, on the real photos."""
    require(runtime, 'mobile')
    from mmmnv2.deployment import export_mobile
    source, checkpoint, photos = float_deeplab
    exported = export_mobile(str(DM05_CONFIG), checkpoint, str(tmp_path / f'deeplab_dm05{extension}'), fmt)
    model = init_model(str(DM05_CONFIG), exported)  # LiteRT / ExecuTorch, the config's pre/post-processing
    check_float_parity(compare_logits(model, source, photos))


def test_mmseg_inferencer_runs_the_converted_model(float_deeplab):
    from mmseg.apis import MMSegInferencer
    source, checkpoint, photos = float_deeplab
    inferencer = MMSegInferencer(model=str(DM05_CONFIG), weights=checkpoint, device='cpu')
    prediction = inferencer(photos[0])['predictions']
    reference = run_litert(source, (rgb(photos[0]).astype(np.float32) / 127.5 - 1)).argmax(-1)
    assert (prediction == reference).mean() >= 0.999 and BIRD in np.unique(prediction)


def test_same_padding_exports_as_conv_pads_at_even_sizes(float_deeplab, tmp_path):
    """At an even size TF's 'SAME' pads stride-2 convs 0 before, 1 after: static pads of the ONNX Conv, no Pad."""
    onnx = require('onnx')
    onnxruntime = require('onnxruntime')
    from mmmnv2.deployment import export_onnx
    _, checkpoint, _ = float_deeplab
    onnx_file = export_onnx(str(DM05_CONFIG), checkpoint, str(tmp_path / 'even.onnx'), input_size=(256, 256))
    graph = onnx.load(onnx_file).graph
    assert not [node.name for node in graph.node if node.op_type == 'Pad']
    strided_pads = []
    for node in graph.node:
        attributes = {attribute.name: list(attribute.ints) for attribute in node.attribute}
        if node.op_type == 'Conv' and attributes.get('strides') == [2, 2]:
            strided_pads.append(attributes['pads'])
    assert strided_pads == [[0, 0, 1, 1]] * 3  # stem, layer_3, layer_5 (output stride 8: no more downsampling)
    torch_model = init_model(str(DM05_CONFIG), checkpoint, device='cpu')
    image = torch.rand(1, 3, 256, 256) * 2 - 1
    with torch.no_grad():
        expected = torch_model(image, mode='tensor').numpy()
    session = onnxruntime.InferenceSession(onnx_file, providers=['CPUExecutionProvider'])
    actual = session.run(None, {session.get_inputs()[0].name: image.numpy()})[0]
    assert np.abs(actual - expected).max() <= 1e-4 * np.abs(expected).max()


@pytest.fixture(scope='module')
def quantized_deeplab(shared_data, tf_to_openmmlab, tmp_path_factory):
    tmp = tmp_path_factory.mktemp('tf_deeplab_quant')
    source = shared_data / 'tflite' / 'deeplabv3_mnv2_pascal_quant.tflite'
    checkpoint = str(tmp / 'deeplab_mnv2_quant.pth')
    tf_to_openmmlab.main([str(source), checkpoint, '--config', str(OS16_CONFIG)])
    return source, checkpoint, tmp


def test_quantized_deeplab_argmax_matches_litert(quantized_deeplab, shared_data):
    source, checkpoint, tmp = quantized_deeplab
    photos = resized_photos(shared_data, tmp, 513)
    model = init_model(str(OS16_CONFIG), checkpoint, device='cpu')
    for name, (path, sample) in zip(PHOTOS, inference(model, photos)):
        ours = sample.pred_sem_seg.data[0].numpy()
        reference = run_litert(source, rgb(path))  # uint8 in, int64 argmax out
        agreement = float((ours == reference).mean())
        print(f'{name}: argmax agreement with LiteRT int8 {agreement:.4%}, classes ours {np.unique(ours).tolist()} '
              f'LiteRT {np.unique(reference).tolist()}')
        assert agreement >= 0.985, name
        assert set(np.unique(ours).tolist()) == set(np.unique(reference).tolist()), name
        if name == 'bird_segmentation.bmp':
            assert BIRD in np.unique(ours)


def test_tools_test_evaluates_the_converted_model(quantized_deeplab, shared_data):
    """tools/test.py with the 513 config and the converted checkpoint on a one-image VOC-layout set."""
    _, checkpoint, tmp = quantized_deeplab
    root = tmp / 'VOC2012'
    for folder in ('JPEGImages', 'SegmentationClass', 'ImageSets/Segmentation'):
        (root / folder).mkdir(parents=True)
    mmcv.imwrite(mmcv.imread(str(shared_data / 'images' / 'bird_segmentation.bmp')),
                 str(root / 'JPEGImages' / 'bird.png'))
    mask = mmcv.imread(str(shared_data / 'images' / 'bird_segmentation_mask.bmp'), flag='unchanged')
    mask = mask if mask.ndim == 2 else mask[..., 0]
    assert {0, BIRD} <= set(np.unique(mask).tolist())
    mmcv.imwrite(mask.astype(np.uint8), str(root / 'SegmentationClass' / 'bird.png'))
    (root / 'ImageSets/Segmentation/val.txt').write_text('bird\n')
    result = subprocess.run(
        [sys.executable, 'tools/test.py', str(OS16_CONFIG), checkpoint, '--work-dir', str(tmp / 'work'),
         '--cfg-options', f'test_dataloader.dataset.data_root={root}', 'test_dataloader.dataset.img_suffix=.png'],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    log = result.stdout + result.stderr
    accuracy = float(re.search(r'aAcc: ([\d.]+)', log).group(1))
    iou = {name: float(re.search(rf'\|\s*{name}\s*\|\s*([\d.]+)', log).group(1)) for name in ('background', 'bird')}
    print(f'tools/test.py, bird_segmentation.bmp vs its reference mask: pixel accuracy {accuracy}, IoU {iou}')
    # The reference mask comes from another run of the quantized model (98% of its pixels are LiteRT's argmax; it
    # also has about 1,200 pixels of aeroplane and bicycle, which neither LiteRT nor we find).
    assert accuracy > 97
    assert iou['background'] > 95 and iou['bird'] > 85


def test_quantized_deeplab_exported_as_int8_tflite_matches_google_int8(quantized_deeplab, shared_data, tmp_path):
    """Google's quantized Table 7 model converted into ours and exported as int8 ``.tflite`` by our int8 path, run
    in LiteRT by our runner (the config's pre- and post-processing): Google's int8 file's label maps."""
    require('litert_torch', 'mobile')
    from mmmnv2.deployment.mobile_quantization import quantize_mobile_on_images, sensitive_mobile_modules
    source, checkpoint, tmp = quantized_deeplab
    kept = sensitive_mobile_modules(str(OS16_CONFIG), checkpoint, (513, 513))
    assert set(kept) == {'backbone.conv1.conv', 'decode_head.conv_seg'}
    # resized to the graph's 513x513 as the compared photos are (the config's pipeline does not resize)
    coco = sorted((shared_data / 'coco_mini_val2017' / 'val2017').glob('*.jpg'))
    calibration = resized_images(coco[:INT8_CALIBRATION_PHOTOS], tmp_path, 513)
    int8_file = quantize_mobile_on_images(str(OS16_CONFIG), checkpoint, 'tflite', str(tmp_path / 'deeplab_int8.tflite'),
                                          calibration, list(kept))
    # read in the flatbuffer: the kept layers are the only float convolutions, all others have int8 weights
    assert float_convolutions(int8_file) == len(kept)
    model = init_model(str(OS16_CONFIG), int8_file)
    assert model.backend == 'litert'
    photos = resized_photos(shared_data, tmp, 513)
    for name, (path, sample) in zip(PHOTOS, inference(model, photos)):
        ours = sample.pred_sem_seg.data[0].numpy()
        reference = run_litert(source, rgb(path))  # Google's int8 file: uint8 in, argmax out
        agreement = float((ours == reference).mean())
        print(f'{name}: our int8 .tflite vs Google\'s int8 file, argmax agreement {agreement:.4%}, classes ours '
              f'{np.unique(ours).tolist()} Google {np.unique(reference).tolist()}')
        assert agreement >= 0.98, name
