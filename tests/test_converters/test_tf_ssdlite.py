"""Google's SSDLite (TF Object Detection API, ``ssdlite_mobilenet_v2_coco_2018_05_09``) against its own inference graph.

The reference is Google's exported graph itself (``../shared/data/tf_od_api/.../model.ckpt.meta``: preprocessing,
MobileNetV2, extra layers, box predictors, anchors, box decoding, sigmoid, per-class NMS), run by TensorFlow in its own
environment (``tools/misc/setup_tf_venv.sh``; ``tf_side/ssdlite_reference.py``). The official weights are not
available here, so the graph's 405 variables get seeded random values (batch norm randomised, class scores spread
over (0, 1)), written as a TF1 checkpoint and as a frozen graph the way TF's exporter writes them; both convert with
our converter, and our model (the config ``ssdlite_mobilenetv2_tf-weights_coco-300x300.py``) must compute what the
graph computes on the 79 real COCO val2017 images of ``../shared/data/coco_mini_val2017``:

- anchors equal to the graph's ``Concatenate/concat`` within 1e-6;
- raw box encodings (``concat``) and class logits (``concat_1``), on the first images, within 1e-4 of the largest
  value (box order and class columns mapped);
- through ``tools/test.py`` (and, on the first images, our ONNX export with its in-graph post-processing in
  onnxruntime and OpenVINO, and MMDetection's ``DetInferencer``): every detection of TF's top 100 of every image
  matched by one of ours with the same COCO class, box IoU >= 0.99 and score within 1e-4; the bbox mAP
  ``tools/test.py`` reports equal to pycocotools' mAP of TF's detections, against COCO's annotations (random weights
  find nothing there: both 0) and against TF's own 20 highest-scored detections of each image taken as ground truth
  (the sensitive one: class map, box scaling back to the image, scores and order all enter).

The TF graph runs once per session (the outputs are shared by the tests here).
"""
import json
import pickle
import re
import subprocess
import sys
import time

import mmcv
import numpy as np
import pytest
import torch
from google_models import ROOT
from mmengine.config import Config
from reference_data import require

from mmmnv2.apis import inference, init_model
from mmmnv2.converters import COCO_CATEGORY_IDS, ConversionError, TFVariables, convert_tf_file, convert_tf_ssd
from mmmnv2.converters.tf_bundle import read_bundle_shapes
from mmmnv2.utils import build_host_model

SSD_CONFIG = ROOT / 'configs/ssdlite/ssdlite_mobilenetv2_tf-weights_coco-300x300.py'
OS16_CONFIG = ROOT / 'configs/mobile_deeplabv3/mobile-deeplabv3_mobilenetv2-os16_tf-weights_voc12-513x513.py'
OFFICIAL = 'tf_od_api/ssdlite_mobilenet_v2_coco_2018_05_09/model.ckpt'
COCO_MINI = 'coco_mini_val2017'
ANNOTATIONS = 'annotations/instances_val2017.json'
RAW_IMAGES = 8  # images whose raw outputs are compared (every image's detections are)
PSEUDO_GROUND_TRUTH = 20  # TF's highest-scored detections per image taken as ground truth


@pytest.fixture(scope='session')
def tf_ssdlite(shared_data, tf_python, tmp_path_factory):
    """Google's graph with seeded random variables, run on the 79 COCO images: (output folder, outputs)."""
    tmp = tmp_path_factory.mktemp('tf_ssdlite')
    images = tmp / 'images'
    images.mkdir()
    for path in sorted((shared_data / COCO_MINI / 'val2017').glob('*.jpg')):
        # the pixels LoadImageFromFile decodes (cv2), in TF's channel order
        np.save(images / f'{path.stem}.npy', mmcv.imfrombytes(path.read_bytes(), channel_order='rgb'))
    start = time.perf_counter()
    result = subprocess.run([tf_python, str(ROOT / 'tests/test_converters/tf_side/ssdlite_reference.py'),
                             str(shared_data / f'{OFFICIAL}.meta'), str(images), str(tmp / 'tf')],
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    run = json.loads((tmp / 'tf' / 'run.json').read_text())
    print(f'TF {run["tensorflow"]}: {run["variables"]} variables, the graph on {run["images"]} images in '
          f'{run["seconds"]:.1f} s; the whole TF side {time.perf_counter() - start:.1f} s; frozen graph vs '
          f'checkpoint graph on the first image: {run["frozen_difference"]:.1e}')
    assert run['images'] == 79 and run['variables'] == 405
    with np.load(tmp / 'tf' / 'outputs.npz') as outputs:
        return tmp / 'tf', {key: outputs[key] for key in outputs.files}


@pytest.fixture(scope='module')
def converted(tf_ssdlite, tf_to_openmmlab, tmp_path_factory):
    """The checkpoint and the frozen graph converted with tools/model_converters/tf_to_openmmlab.py."""
    folder, _ = tf_ssdlite
    tmp = tmp_path_factory.mktemp('tf_ssdlite_converted')
    from_checkpoint, from_frozen_graph = tmp / 'from_checkpoint.pth', tmp / 'from_frozen_graph.pth'
    tf_to_openmmlab.main([str(folder / 'checkpoint' / 'model.ckpt'), str(from_checkpoint)])  # config from the file
    tf_to_openmmlab.main([str(folder / 'frozen_inference_graph.pb'), str(from_frozen_graph)])
    return from_checkpoint, from_frozen_graph


def test_official_index_maps_one_to_one(shared_data):
    """The 405 tensors of Google's checkpoint index (names and shapes) fill the config's model, each used once."""
    shapes = read_bundle_shapes(str(shared_data / OFFICIAL))
    assert len(shapes) == 405 and shapes['global_step'] == ()
    variables = TFVariables(str(shared_data / OFFICIAL), 'checkpoint',
                            {name: np.zeros(shape, np.float32) for name, shape in shapes.items()})
    model = build_host_model(Config.fromfile(str(SSD_CONFIG)))
    state, meta = convert_tf_ssd(variables, model)
    assert set(state) == set(model.state_dict())
    assert meta['tf_class_ids'] == list(COCO_CATEGORY_IDS)
    assert meta['tf_class_ids_left_out'] == [12, 26, 29, 30, 45, 66, 68, 69, 71, 83]


def test_checkpoint_and_frozen_graph_convert_to_the_same_weights(converted):
    from_checkpoint, from_frozen_graph = (torch.load(path, weights_only=True) for path in converted)
    assert from_checkpoint['state_dict'].keys() == from_frozen_graph['state_dict'].keys()
    assert all(torch.equal(value, from_frozen_graph['state_dict'][key])
               for key, value in from_checkpoint['state_dict'].items())
    assert from_frozen_graph['meta']['tf_source']['kind'] == 'frozen_graph'
    assert len(from_checkpoint['meta']['dataset_meta']['classes']) == 80


def test_anchors_are_the_graphs(tf_ssdlite):
    _, outputs = tf_ssdlite
    generator = build_host_model(Config.fromfile(str(SSD_CONFIG))).bbox_head.prior_generator
    anchors = torch.cat(generator.grid_priors([(size, size) for size in generator.feature_sizes], device='cpu'))
    ours = (anchors.double() / 300).numpy()[:, [1, 0, 3, 2]]  # (x1, y1, x2, y2) pixels -> TF's normalised y, x
    print(f'anchors: max |ours - TF| {np.abs(ours - outputs["anchors"]).max():.1e}')
    assert ours.shape == outputs['anchors'].shape == (1917, 4)
    assert np.abs(ours - outputs['anchors']).max() <= 1e-6


def test_raw_outputs_match_the_graph(tf_ssdlite, converted, shared_data):
    """Box encodings and class logits, through the config's test pipeline and data preprocessor."""
    _, outputs = tf_ssdlite
    model = init_model(str(SSD_CONFIG), str(converted[0]), device='cpu')
    captured = []
    model.bbox_head.register_forward_hook(lambda module, args, result: captured.append(result))
    names = outputs['names'][:RAW_IMAGES]
    list(inference(model, [str(shared_data / COCO_MINI / 'val2017' / f'{name}.jpg') for name in names]))
    class_logits = torch.cat([torch.cat([level.permute(0, 2, 3, 1).reshape(len(level), -1, 81) for level in cls], 1)
                              for cls, _ in captured]).numpy()
    box_encodings = torch.cat([torch.cat([level.permute(0, 2, 3, 1).reshape(len(level), -1, 4) for level in box], 1)
                               for _, box in captured]).numpy()
    tf_logits = outputs['class_logits'][:RAW_IMAGES][..., [*COCO_CATEGORY_IDS, 0]]  # background last, as ours
    tf_boxes = outputs['box_encodings'][:RAW_IMAGES, :, 0][..., [1, 0, 3, 2]]  # (ty, tx, th, tw) -> (dx, dy, dw, dh)
    for index, name in enumerate(names):
        logits = np.abs(class_logits[index] - tf_logits[index]).max() / np.abs(tf_logits[index]).max()
        boxes = np.abs(box_encodings[index] - tf_boxes[index]).max() / np.abs(tf_boxes[index]).max()
        print(f'{name}: max |diff| / max |value|: class logits {logits:.1e}, box encodings {boxes:.1e}')
        assert logits <= 1e-4 and boxes <= 1e-4, name


def tf_detections(outputs: dict, images: dict, top: int = 100) -> list:
    """TF's detections in COCO's result format (boxes from normalised (y1, x1, y2, x2) to pixels (x, y, w, h))."""
    results = []
    for index, name in enumerate(outputs['names']):
        image = images[f'{name}.jpg']
        scale = np.array([image['height'], image['width']] * 2)
        for box, score, label in list(zip(outputs['detection_boxes'][index] * scale, outputs['detection_scores'][index],
                                          outputs['detection_classes'][index]))[:top]:
            y1, x1, y2, x2 = box.tolist()
            results.append(dict(image_id=image['id'], category_id=int(label), bbox=[x1, y1, x2 - x1, y2 - y1],
                                score=float(score)))
    return results


def coco_map(annotation_file: str, results: list) -> float:
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval
    ground_truth = COCO(annotation_file)
    evaluation = COCOeval(ground_truth, ground_truth.loadRes(results), 'bbox')
    evaluation.evaluate()
    evaluation.accumulate()
    evaluation.summarize()
    return float(evaluation.stats[0])


@pytest.fixture(scope='module')
def tools_test_run(tf_ssdlite, converted, shared_data, tmp_path_factory):
    """tools/test.py on the 79 images with two COCO metrics: COCO's annotations, and TF's own top detections as
    ground truth. Returns (log, our predictions from --out, COCO's annotation file, the pseudo ground truth file)."""
    _, outputs = tf_ssdlite
    tmp = tmp_path_factory.mktemp('tf_ssdlite_test')
    root = shared_data / COCO_MINI
    coco = json.loads((root / ANNOTATIONS).read_text())
    images = {image['file_name']: image for image in coco['images']}
    pseudo = dict(coco, annotations=[
        dict(detection, id=index + 1, area=detection['bbox'][2] * detection['bbox'][3], iscrowd=0)
        for index, detection in enumerate(tf_detections(outputs, images, PSEUDO_GROUND_TRUTH))])
    (tmp / 'tf_detections_as_ground_truth.json').write_text(json.dumps(pseudo))
    config = tmp / 'two_metrics.py'
    config.write_text(
        f"_base_ = [{str(SSD_CONFIG)!r}]\n"
        f"test_dataloader = dict(dataset=dict(data_root={str(root) + '/'!r}))\n"
        f"test_evaluator = [dict(type='CocoMetric', metric='bbox', ann_file={str(root / ANNOTATIONS)!r}),\n"
        f"                  dict(type='CocoMetric', metric='bbox', prefix='tf_detections',\n"
        f"                       ann_file={str(tmp / 'tf_detections_as_ground_truth.json')!r})]\n")
    start = time.perf_counter()
    result = subprocess.run([sys.executable, 'tools/test.py', str(config), str(converted[1]), '--work-dir',
                             str(tmp / 'work'), '--out', str(tmp / 'predictions.pkl')],
                            cwd=ROOT, capture_output=True, text=True, timeout=1200)
    print(f'tools/test.py on 79 images: {time.perf_counter() - start:.1f} s')
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    with open(tmp / 'predictions.pkl', 'rb') as file:
        predictions = pickle.load(file)
    return (result.stdout + result.stderr, predictions, str(root / ANNOTATIONS),
            str(tmp / 'tf_detections_as_ground_truth.json'))


def box_iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """IoU of one (x1, y1, x2, y2) box with each of ``boxes``."""
    width = np.clip(np.minimum(box[2], boxes[:, 2]) - np.maximum(box[0], boxes[:, 0]), 0, None)
    height = np.clip(np.minimum(box[3], boxes[:, 3]) - np.maximum(box[1], boxes[:, 1]), 0, None)
    intersection = width * height
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return intersection / ((box[2] - box[0]) * (box[3] - box[1]) + areas - intersection)


def match_tf_detections(outputs: dict, index: int, ours, height: int, width: int) -> tuple:
    """(lowest IoU, largest score difference) of TF's detections of image ``index`` with their best match among
    ``ours`` (an InstanceData or a dict of bboxes / scores / labels in the original image); asserts the criteria."""
    name = outputs['names'][index]
    our_boxes, our_scores = np.asarray(ours['bboxes']), np.asarray(ours['scores'])
    our_ids = np.array(COCO_CATEGORY_IDS)[np.asarray(ours['labels'])]
    assert len(our_boxes) == 100, name
    worst_iou, worst_score = 1.0, 0.0
    for box, score, label in zip(outputs['detection_boxes'][index], outputs['detection_scores'][index],
                                 outputs['detection_classes'][index]):
        y1, x1, y2, x2 = box * [height, width, height, width]
        same_class = np.flatnonzero(our_ids == int(label))
        assert same_class.size, f'{name}: TF detects COCO id {int(label)}, we do not'
        ious = box_iou(np.array([x1, y1, x2, y2]), our_boxes[same_class])
        best = same_class[ious.argmax()]
        assert ious.max() >= 0.99 and abs(our_scores[best] - score) <= 1e-4, (name, int(label), score, ious.max())
        worst_iou = min(worst_iou, float(ious.max()))
        worst_score = max(worst_score, abs(float(our_scores[best]) - float(score)))
    return worst_iou, worst_score


def test_every_tf_detection_is_matched(tf_ssdlite, tools_test_run):
    _, outputs = tf_ssdlite
    _, predictions, _, _ = tools_test_run
    ours_by_name = {prediction['img_path'].rsplit('/', 1)[-1][:-len('.jpg')]: prediction for prediction in predictions}
    worst = [match_tf_detections(outputs, index, ours_by_name[name]['pred_instances'],
                                 *ours_by_name[name]['ori_shape']) for index, name in enumerate(outputs['names'])]
    print(f'{outputs["detection_scores"].size} TF detections matched by tools/test.py\'s: lowest IoU '
          f'{min(iou for iou, _ in worst):.6f}, largest score difference {max(score for _, score in worst):.1e}')


@pytest.fixture(scope='module')
def onnx_file(converted, tmp_path_factory) -> str:
    """Our ONNX export of the converted model: the network and the post-processing as ONNX operators."""
    require('onnxruntime', 'deploy')
    from mmmnv2.deployment import export_onnx
    return export_onnx(str(SSD_CONFIG), str(converted[0]), str(tmp_path_factory.mktemp('onnx') / 'ssdlite_tf.onnx'))


@pytest.mark.parametrize('backend', ['onnxruntime', 'openvino'])
def test_onnx_export_with_postprocessing_matches_the_graph(tf_ssdlite, onnx_file, shared_data, backend):
    """The export in our runner, in onnxruntime and in OpenVINO, on the first images."""
    require(backend, 'deploy')
    _, outputs = tf_ssdlite
    model = init_model(str(SSD_CONFIG), onnx_file, backend=backend)
    names = outputs['names'][:RAW_IMAGES]
    paths = [str(shared_data / COCO_MINI / 'val2017' / f'{name}.jpg') for name in names]
    worst = [match_tf_detections(outputs, index, sample.pred_instances.numpy(), *sample.ori_shape)
             for index, (_, sample) in enumerate(inference(model, paths))]
    print(f'ONNX export in {backend}, {len(names)} images: lowest IoU {min(iou for iou, _ in worst):.6f}, largest '
          f'score difference {max(score for _, score in worst):.1e}')


def test_tools_test_map_equals_pycocotools_map_of_tf_detections(tf_ssdlite, tools_test_run):
    _, outputs = tf_ssdlite
    log, _, annotations, pseudo = tools_test_run
    images = {image['file_name']: image for image in json.loads(open(annotations).read())['images']}
    detections = tf_detections(outputs, images)
    for prefix, ground_truth in (('coco', annotations), ('tf_detections', pseudo)):
        ours = float(re.search(rf'{prefix}/bbox_mAP: ([\d.]+)', log).group(1))  # printed with 3 decimals
        reference = coco_map(ground_truth, detections)
        print(f'bbox mAP against {prefix} ground truth: tools/test.py {ours:.3f}, pycocotools on TF\'s {reference:.4f}')
        assert abs(ours - reference) <= 6e-4, prefix
    assert float(re.search(r'tf_detections/bbox_mAP: ([\d.]+)', log).group(1)) > 0.5  # a test that can tell


def test_mmdet_inferencer_runs_the_converted_model(tf_ssdlite, converted, shared_data):
    """MMDetection's own DetInferencer with the config and the converted checkpoint, on two images."""
    from mmdet.apis import DetInferencer
    _, outputs = tf_ssdlite
    inferencer = DetInferencer(model=str(SSD_CONFIG), weights=str(converted[1]), device='cpu', show_progress=False)
    for index, name in enumerate(outputs['names'][:2]):
        path = shared_data / COCO_MINI / 'val2017' / f'{name}.jpg'
        sample = inferencer(str(path), return_datasamples=True)['predictions'][0]
        match_tf_detections(outputs, index, sample.pred_instances.numpy(), *sample.ori_shape)


def test_frozen_graph_of_another_architecture_fails_listing_names(tf_ssdlite):
    folder, _ = tf_ssdlite
    with pytest.raises(ConversionError) as error:
        convert_tf_file(str(folder / 'frozen_inference_graph.pb'), str(OS16_CONFIG))
    message = str(error.value)
    print(message)
    assert 'file:  width 1, layer_5 32 channels, SSD, 6 box predictors, 91 classes' in message
    assert 'model: width 1, layer_5 32 channels, output stride 16, DeepLab head without ASPP, 21 classes' in message
    # every variable of the DeepLab model expected (272), every one of the graph's 404 found, the first of each named
    assert 'expected by the model, not in the file (272):\n    MobilenetV2/Conv/weights (3, 3, 3, 32)' in message
    assert re.search(r'in the file, not expected by the model \(404\):\n    FeatureExtractor/MobilenetV2/', message)
