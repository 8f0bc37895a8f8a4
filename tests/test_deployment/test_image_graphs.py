"""Image in, result out (``--preprocess``, ``--postprocess``): the test pipeline and post-processing inside exported
files, against the hosts' own pipeline, data preprocessors, heads and NMS, with random weights.

- ``ImageInput`` gives the network what the config's test pipeline (mmcv's OpenCV resize) and data preprocessor give
  it: equal where nothing is resized or only padded; within one grey level (OpenCV's 11-bit fixed point) where it
  resizes;
- ``LabelMap``'s matrices are the two bilinear resizings and the crop between them (``F.interpolate``);
- ``DetectionResults`` (the NMS in rounds of .tflite / .pte files) keeps what mmcv's ``batched_nms`` keeps, at the
  worst NMS load (score_thr 0);
- ONNX (ONNX Runtime, OpenVINO), .tflite and .pte files with both, run by the runners on toy images: the PyTorch
  model's detections and label maps; a file with the pre-processing only: the host's post-processing on its outputs.
"""
import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from deploy_helpers import assert_same_detections, randomised_checkpoint, toy_batch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.registry import init_default_scope
from toy_runs import DET_CONFIG, REPO, SEG_CONFIG

from mmmnv2.apis import init_model
from mmmnv2.deployment import export_mobile, export_onnx, init_exported_model
from mmmnv2.deployment.graph_format import META_PREPROCESS
from mmmnv2.deployment.image_graph import ImageInput, LabelMap, label_map_matrices, preprocess_settings

CONFIGS = {'det': DET_CONFIG, 'seg': SEG_CONFIG}
VOC_CONFIG = f'{REPO}/configs/mobile_deeplabv3/mobile-deeplabv3_mobilenetv2-os16_4xb4-30k_voc12aug-512x512.py'
TOY_IMAGE = (256, 256)  # the toy sets' images
EXTENSIONS = {'onnx': '.onnx', 'tflite': '.tflite', 'executorch': '.pte'}


@pytest.fixture(scope='module')
def toy_checkpoints(tmp_path_factory):
    folder = tmp_path_factory.mktemp('image_graph_checkpoints')
    return {task: (randomised_checkpoint(config, str(folder / f'{task}.pth')), str(folder / f'{task}.pth'))
            for task, config in CONFIGS.items()}


@pytest.fixture(scope='module')
def toy_batches(tmp_path_factory):
    """task -> (the toy data's folder, a batch of its val images through the config's pipeline)."""
    folder = tmp_path_factory.mktemp('image_graph_data')
    return {task: (str(folder / task), toy_batch(config, str(folder / task), task)) for task, config in CONFIGS.items()}


def pipeline_inputs(model, data: dict) -> torch.Tensor:
    """The network inputs of the config's pipeline and data preprocessor."""
    return model.data_preprocessor(data, False)['inputs']


def decoded_images(data: dict) -> torch.Tensor:
    """The batch's images as a decoder gives them to an app: uint8 (N, H, W, 3) RGB, at their own size."""
    import mmcv
    return torch.stack([torch.from_numpy(np.ascontiguousarray(mmcv.imread(sample.img_path)[..., ::-1]))
                        for sample in data['data_samples']])


@pytest.mark.parametrize('task', list(CONFIGS))
def test_image_input_is_the_test_pipeline(task, toy_checkpoints, toy_batches):
    model, _ = toy_checkpoints[task]
    _, data = toy_batches[task]
    settings = preprocess_settings(Config.fromfile(CONFIGS[task]), TOY_IMAGE)
    assert settings['resized_shape'] == [192, 192]  # both toys: 256 -> 192 (stretched, or by 0.75 keeping the ratio)
    images = decoded_images(data)
    ours = torch.cat([ImageInput(settings)(image[None]) for image in images])
    expected = pipeline_inputs(model, data)
    std = torch.tensor(settings['std']).view(1, 3, 1, 1)
    levels = ((ours - expected) * std).abs()  # in grey levels
    differing = float((levels > 1e-3).float().mean())
    print(f'{task}: largest difference {float(levels.max()):.3f} grey levels, on {differing:.4%} of the values')
    # OpenCV's uint8 resize weighs in 11-bit fixed point and rounds twice: one grey level apart on about one value in
    # eight (measured 12.6% for 256 -> 192), never more
    assert float(levels.max()) <= 1.0 + 1e-3
    assert float(levels.mean()) < 0.2


def test_image_input_pads_as_the_data_preprocessor(tmp_path):
    """VOC config: no resize in the test pipeline, the image padded to 512x512 after normalisation (as the runners of
    network-only files pad it, the data preprocessor's ``test_cfg`` size): equal."""
    import mmcv
    cfg = Config.fromfile(VOC_CONFIG)
    image = (np.random.default_rng(0).random((375, 500, 3)) * 255).astype(np.uint8)  # a VOC image's size, BGR
    path = str(tmp_path / 'image.png')
    mmcv.imwrite(image, path)
    init_default_scope('mmseg')
    from mmengine.dataset import Compose
    pipeline = Compose([t for t in cfg.test_dataloader.dataset.pipeline if t['type'] == 'LoadImageFromFile']
                       + [dict(type='PackSegInputs')])
    data = pseudo_collate([pipeline(dict(img_path=path))])
    model = init_model(VOC_CONFIG, device='cpu')
    model.data_preprocessor.test_cfg = dict(size=(512, 512))
    settings = preprocess_settings(cfg, (375, 500))
    assert settings['resized_shape'] == [375, 500] and settings['input_size'] == [512, 512]
    ours = ImageInput(settings)(torch.from_numpy(np.ascontiguousarray(image[..., ::-1]))[None])
    torch.testing.assert_close(ours, pipeline_inputs(model, data), rtol=0, atol=1e-5)


def test_a_pipeline_transform_the_graph_cannot_do_is_refused():
    cfg = Config.fromfile(DET_CONFIG)
    cfg.test_dataloader.dataset.pipeline.insert(1, dict(type='RandomFlip', prob=1.0))
    with pytest.raises(ValueError, match='RandomFlip is not reproduced in the graph'):
        preprocess_settings(cfg)


def test_nms_rounds_keep_what_greedy_nms_keeps(toy_checkpoints, toy_batches):
    """score_thr 0, every pair a candidate: the file's NMS against mmcv's batched_nms in MMDetection's head."""
    from mmmnv2.deployment.export import exportable_network
    cfg = Config.fromfile(DET_CONFIG)
    cfg.model.test_cfg.score_thr = 0.0
    model, _ = toy_checkpoints['det']
    _, data = toy_batches['det']
    model.bbox_head.test_cfg.score_thr = 0.0
    try:
        with torch.no_grad():
            expected = model.test_step(data)
    finally:
        model.bbox_head.test_cfg.score_thr = 0.01
    _, network, metadata, _ = exportable_network(cfg, toy_checkpoints['det'][1], True, TOY_IMAGE, True)
    actual = []
    with torch.no_grad():
        for image, sample in zip(decoded_images(data), expected):
            boxes, scores, labels, converged = network(image[None])
            assert int(converged) == 1
            found = labels[0] >= 0
            result = sample.clone()
            result.pred_instances.bboxes = boxes[0][found]
            result.pred_instances.scores = scores[0][found]
            result.pred_instances.labels = labels[0][found].long()
            actual.append(result)
    assert json.loads(metadata['mmmnv2_postprocess'])['candidates'] == 300
    assert_same_detections(expected, actual)


@pytest.fixture(scope='module')
def image_files(toy_checkpoints, tmp_path_factory):
    """(task, format, postprocess) -> a file with the pre-processing for the toy images' size; each written once."""
    folder = tmp_path_factory.mktemp('image_graphs')
    files = {}

    def export(task: str, fmt: str, postprocess: bool = True) -> str:
        key = task, fmt, postprocess
        if key not in files:
            out = str(folder / f'{task}_{int(postprocess)}{EXTENSIONS[fmt]}')
            checkpoint = toy_checkpoints[task][1]
            if fmt == 'onnx':
                files[key] = export_onnx(CONFIGS[task], checkpoint, out, preprocess=True, postprocess=postprocess,
                                         image_size=TOY_IMAGE)
            else:
                files[key] = export_mobile(CONFIGS[task], checkpoint, out, fmt, preprocess=True,
                                           postprocess=postprocess, image_size=TOY_IMAGE)
        return files[key]
    return export


@pytest.mark.parametrize('fmt, backend', [('onnx', None), ('onnx', 'openvino'), ('tflite', None),
                                          ('executorch', None)])
@pytest.mark.parametrize('task', list(CONFIGS))
def test_image_in_result_out_file_gives_the_pytorch_results(task, fmt, backend, toy_checkpoints, toy_batches,
                                                            image_files, tmp_path):
    model, _ = toy_checkpoints[task]
    _, data = toy_batches[task]
    with torch.no_grad():
        expected = model.test_step(data)
    runner = init_model(CONFIGS[task], image_files(task, fmt), device='cpu', backend=backend)
    assert runner.session.input_shape == [1, *TOY_IMAGE, 3]
    assert json.loads(runner.metadata[META_PREPROCESS])['image_size'] == list(TOY_IMAGE)
    # the runner's pipeline only loads the images (they already have the file's size), the file does the rest
    batch = toy_batch(runner.cfg, toy_batches[task][0], task)
    assert tuple(batch['inputs'][0].shape[1:]) == TOY_IMAGE
    actual = runner.test_step(batch)
    if task == 'det':
        assert_same_detections(expected, actual)
        return
    for e, a in zip(expected, actual, strict=True):
        agreement = float((a.pred_sem_seg.data == e.pred_sem_seg.data).float().mean())
        print(f'{fmt}: label maps agree on {agreement:.4%} of the pixels')
        assert a.pred_sem_seg.data.shape == e.pred_sem_seg.data.shape
        assert agreement >= 0.999  # the resize's rounding moves a few boundary pixels at most


@pytest.mark.parametrize('task', list(CONFIGS))
def test_file_with_the_preprocessing_only_gets_the_hosts_postprocessing(task, toy_checkpoints, toy_batches,
                                                                        image_files, tmp_path):
    model, _ = toy_checkpoints[task]
    with torch.no_grad():
        expected = model.test_step(toy_batches[task][1])
    runner = init_exported_model(CONFIGS[task], image_files(task, 'onnx', postprocess=False), num_threads=1)
    actual = runner.test_step(toy_batch(runner.cfg, toy_batches[task][0], task))
    if task == 'det':
        assert_same_detections(expected, actual)
        return
    for e, a in zip(expected, actual, strict=True):
        assert float((a.pred_sem_seg.data == e.pred_sem_seg.data).float().mean()) >= 0.999


def test_file_of_another_preprocessing_is_refused(image_files):
    cfg = Config.fromfile(SEG_CONFIG)
    cfg.model.data_preprocessor.mean = [0.0, 0.0, 0.0]
    cfg.model.data_preprocessor.std = [255.0, 255.0, 255.0]
    with pytest.raises(ValueError, match=r'another pre-processing than the config\'s \(mean: '):
        init_exported_model(cfg, image_files('seg', 'onnx', postprocess=False))


def test_segmentor_postprocessing_in_mobile_files_needs_the_preprocessing(tmp_path):
    with pytest.raises(ValueError, match='needs the pre-processing too'):
        export_mobile(SEG_CONFIG, None, str(tmp_path / 'seg.tflite'), 'tflite', postprocess=True)


@pytest.mark.parametrize('align_corners', [False, True])
def test_label_map_matrices_are_the_two_resizings_and_the_crop(align_corners):
    logits = torch.randn(1, 5, 9, 11, dtype=torch.float64)
    input_size, crop, output_size = (40, 44), (0, 0, 30, 37), (61, 53)
    padded = F.interpolate(logits, size=input_size, mode='bilinear', align_corners=align_corners)
    expected = F.interpolate(padded[:, :, crop[0]:crop[2], crop[1]:crop[3]], size=output_size, mode='bilinear',
                             align_corners=align_corners)
    rows, columns = label_map_matrices(align_corners, (9, 11), input_size, crop, output_size)
    assert rows.shape == (61, 9) and columns.shape == (53, 11)
    actual = rows.double() @ logits[0] @ columns.double().T
    assert torch.allclose(actual, expected[0], atol=1e-6)
    labels = LabelMap(dict(align_corners=align_corners), (9, 11), input_size, crop, output_size)(logits.float())
    assert labels.dtype == torch.uint8 and labels.shape == (1, 1, *output_size)
    assert torch.equal(labels.long(), expected.argmax(1, keepdim=True))
