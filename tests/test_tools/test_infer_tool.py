"""tools/infer.py and mmmnv2.apis: pictures and JSON results for detection and segmentation, from a checkpoint or
an ONNX file; bad inputs and crafted checkpoints are refused.

Models are the toy configs' with random weights (what is checked is what the tool writes, not accuracy); the last
test runs the trained toy SSDLite of the session fixtures.
"""
import importlib.util
import json
import os
import os.path as osp
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from mmengine.config import Config

from mmmnv2.apis import init_model
from mmmnv2.datasets import CLASSES, SEG_CLASSES, generate_detection, generate_segmentation
from mmmnv2.utils import UnsafeCheckpointError, build_host_model
from mmmnv2.visualization.pictures import TITLE_HEIGHT

ROOT = Path(__file__).resolve().parents[2]
DET_CONFIG = str(ROOT / 'configs/ssdlite/ssdlite_mobilenetv2_1xb8-600i_toyshapes-192x192.py')
SEG_CONFIG = str(ROOT / 'configs/mobile_deeplabv3/mobile-deeplabv3_mobilenetv2-os16_1xb8-300i_toyshapes-192x192.py')


def load_tool():
    spec = importlib.util.spec_from_file_location('infer_tool', ROOT / 'tools' / 'infer.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


infer_tool = load_tool()


def random_checkpoint(config: str, path: Path, with_meta: bool = True) -> str:
    cfg = Config.fromfile(config)
    torch.manual_seed(0)
    model = build_host_model(cfg)
    meta = {'dataset_meta': dict(cfg.metainfo)} if with_meta else {}
    torch.save({'state_dict': model.state_dict(), 'meta': meta}, path)
    return str(path)


def add_wide_copy(image: str, out: Path) -> str:
    """A non-square copy of ``image`` (160x320), so sizes cannot come from the config or the square toy data."""
    cv2.imwrite(str(out), cv2.resize(cv2.imread(image), (320, 160)))
    return str(out)


def toy_case(root: Path, task: str):
    """(random-weight checkpoint, [folder of toy val images, a non-square image]) for 'det' or 'seg'."""
    if task == 'det':
        generate_detection(str(root / 'data'), num_train=0, num_val=3)
        config, folder, first = DET_CONFIG, str(root / 'data' / 'val'), '000000.jpg'
    else:
        generate_segmentation(str(root / 'data'), num_train=0, num_val=2)
        config, folder, first = SEG_CONFIG, str(root / 'data' / 'JPEGImages'), 'val_000000.jpg'
    wide = add_wide_copy(osp.join(folder, first), root / 'wide.jpg')
    return random_checkpoint(config, root / f'{task}.pth'), [folder, wide]


@pytest.fixture(scope='module')
def det_case(tmp_path_factory):
    return toy_case(tmp_path_factory.mktemp('det'), 'det')


@pytest.fixture(scope='module')
def seg_case(tmp_path_factory):
    return toy_case(tmp_path_factory.mktemp('seg'), 'seg')


def images_of(inputs):
    return sorted(osp.join(p, f) for p in inputs if osp.isdir(p) for f in os.listdir(p)) + \
        [p for p in inputs if not osp.isdir(p)]


def read_results(out_dir: Path, image: str):
    name = osp.splitext(osp.basename(image))[0]
    with open(out_dir / 'preds' / f'{name}.json') as f:
        record = json.load(f)
    return cv2.imread(str(out_dir / 'vis' / osp.basename(image))), record


def check_picture_size(picture: np.ndarray, height: int, width: int) -> None:
    """The picture is the image, enlarged by a factor when small, below a title and above a legend."""
    scale = picture.shape[1] / width
    assert scale >= 1 and picture.shape[0] > scale * height


def check_detections(out_dir: Path, inputs, classes=CLASSES) -> None:
    for image in images_of(inputs):
        height, width = cv2.imread(image).shape[:2]
        picture, record = read_results(out_dir, image)
        check_picture_size(picture, height, width)
        assert (record['img_path'], record['height'], record['width']) == (image, height, width)
        boxes = np.array(record['bboxes'])
        assert len(boxes) == len(record['labels']) == len(record['label_names']) == len(record['scores']) > 0
        assert (boxes[:, :2] >= 0).all() and (boxes[:, 2] <= width).all() and (boxes[:, 3] <= height).all()
        assert (boxes[:, 2:] >= boxes[:, :2]).all()
        assert record['label_names'] == [classes[i] for i in record['labels']]
        assert all(0 <= s <= 1 for s in record['scores'])


def check_segmentation(out_dir: Path, inputs) -> None:
    for image in images_of(inputs):
        height, width = cv2.imread(image).shape[:2]
        picture, record = read_results(out_dir, image)
        check_picture_size(picture, height, width)
        label_map = cv2.imread(record['sem_seg_path'], cv2.IMREAD_UNCHANGED)
        assert label_map.shape == (height, width) and label_map.max() < len(SEG_CLASSES)
        counts = np.bincount(label_map.ravel(), minlength=len(SEG_CLASSES))
        assert record['pixel_counts'] == dict(zip(SEG_CLASSES, counts.tolist()))


def test_detection_pictures_and_json(det_case, tmp_path):
    checkpoint, inputs = det_case
    infer_tool.main([DET_CONFIG, checkpoint, *inputs, '--out-dir', str(tmp_path), '--device', 'cpu',
                     '--score-thr', '0.05', '--batch-size', '2'])
    check_detections(tmp_path, inputs)
    # boxes above the threshold are drawn: the picture is not the image
    picture, _ = read_results(tmp_path, inputs[1])
    image = cv2.imread(inputs[1])
    height, width = image.shape[:2]
    panel = picture[TITLE_HEIGHT:TITLE_HEIGHT + round(height * picture.shape[1] / width)]  # below the title
    assert np.abs(cv2.resize(panel, (width, height)).astype(int) - image.astype(int)).mean() > 1


def test_segmentation_pictures_label_maps_and_json(seg_case, tmp_path):
    checkpoint, inputs = seg_case
    infer_tool.main([SEG_CONFIG, checkpoint, *inputs, '--out-dir', str(tmp_path)])
    check_segmentation(tmp_path, inputs)


@pytest.mark.parametrize('with_meta', [True, False])
def test_class_names_from_checkpoint_else_config(tmp_path, with_meta):
    checkpoint = tmp_path / 'ssdlite.pth'
    random_checkpoint(DET_CONFIG, checkpoint, with_meta=False)
    if with_meta:  # a checkpoint's names win over the config's
        state = torch.load(checkpoint)
        state['meta'] = {'dataset_meta': {'classes': ('ball', 'box', 'cone')}}
        torch.save(state, checkpoint)
    model = init_model(DET_CONFIG, str(checkpoint), 'cpu')
    assert tuple(model.dataset_meta['classes']) == (('ball', 'box', 'cone') if with_meta else CLASSES)
    assert model.cfg.default_scope == 'mmdet'


@pytest.mark.parametrize('case', ['missing input', 'empty folder', 'not an image', 'same names', 'model extension',
                                  'missing model'])
def test_bad_inputs_are_refused_naming_the_path(det_case, tmp_path, capsys, case):
    checkpoint, (folder, wide) = det_case
    (tmp_path / 'empty').mkdir()
    (tmp_path / 'empty' / 'notes.txt').write_text('no images here')
    (tmp_path / 'other').mkdir()
    (tmp_path / 'other' / 'wide.jpg').write_bytes(Path(wide).read_bytes())
    (tmp_path / 'model.bin').write_bytes(b'')
    inputs, model, named = {
        'missing input': ([str(tmp_path / 'nowhere.jpg')], checkpoint, str(tmp_path / 'nowhere.jpg')),
        'empty folder': ([str(tmp_path / 'empty')], checkpoint, str(tmp_path / 'empty')),
        'not an image': ([str(tmp_path / 'empty' / 'notes.txt')], checkpoint, 'notes.txt'),
        'same names': ([wide, str(tmp_path / 'other')], checkpoint, str(tmp_path / 'other' / 'wide.jpg')),
        'model extension': ([folder], str(tmp_path / 'model.bin'), str(tmp_path / 'model.bin')),
        'missing model': ([folder], str(tmp_path / 'none.pth'), str(tmp_path / 'none.pth')),
    }[case]
    with pytest.raises(SystemExit):
        infer_tool.main([DET_CONFIG, model, *inputs, '--out-dir', str(tmp_path / 'out')])
    assert named in capsys.readouterr().err
    assert not (tmp_path / 'out').exists()


def test_crafted_checkpoint_is_refused(det_case, tmp_path, malicious_payload):
    _, (folder, _) = det_case
    payload, marker = malicious_payload
    torch.save({'state_dict': {}, 'meta': payload}, tmp_path / 'evil.pth')
    with pytest.raises(SystemExit, match='^error: Refused to load checkpoint'):
        infer_tool.main([DET_CONFIG, str(tmp_path / 'evil.pth'), folder, '--out-dir', str(tmp_path / 'out')])
    with pytest.raises(UnsafeCheckpointError, match='Refused to load checkpoint'):  # the traceback with --debug
        infer_tool.main([DET_CONFIG, str(tmp_path / 'evil.pth'), folder, '--out-dir', str(tmp_path / 'out'),
                         '--debug'])
    assert not marker.exists()


@pytest.mark.parametrize('task', ['detection', 'segmentation'])
def test_onnx_model_gives_the_checkpoints_results(det_case, seg_case, tmp_path, task):
    from mmmnv2.deployment import export_onnx
    config, (checkpoint, inputs) = (DET_CONFIG, det_case) if task == 'detection' else (SEG_CONFIG, seg_case)
    inputs = inputs[:1]  # the toy images (the ONNX network has the config's fixed input size)
    onnx_file = export_onnx(config, checkpoint, str(tmp_path / 'model.onnx'))
    for model, out in ((checkpoint, 'pytorch'), (onnx_file, 'onnx')):
        infer_tool.main([config, model, *inputs, '--out-dir', str(tmp_path / out)])
    for image in images_of(inputs):
        (_, expected), (_, actual) = read_results(tmp_path / 'pytorch', image), read_results(tmp_path / 'onnx', image)
        if task == 'detection':
            check_detections(tmp_path / 'onnx', inputs)
            top, expected_top = (int(np.argmax(r['scores'])) for r in (actual, expected))  # the top detections
            assert actual['label_names'][top] == expected['label_names'][expected_top]
            np.testing.assert_allclose(actual['bboxes'][top], expected['bboxes'][expected_top], atol=0.5)
            assert actual['scores'][top] == pytest.approx(expected['scores'][expected_top], abs=1e-3)
        else:
            check_segmentation(tmp_path / 'onnx', inputs)
            onnx_map, torch_map = (cv2.imread(r['sem_seg_path'], cv2.IMREAD_UNCHANGED) for r in (actual, expected))
            assert (onnx_map == torch_map).mean() > 0.99


def box_iou(a, b) -> float:
    width = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    height = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - width * height
    return width * height / union


def test_infer_tool_finds_the_toy_objects(trained_detector, det_toy_data, tmp_path):
    """The trained toy SSDLite: on most val images the top box is a ground-truth object of its class (IoU > 0.5).

    A model of val mAP@0.5 0.79 gets 26 of the 32 images, one of 0.43 gets 17, an untrained one none.
    """
    with open(osp.join(det_toy_data, 'annotations', 'instances_val.json')) as f:
        coco = json.load(f)
    names = {c['id']: c['name'] for c in coco['categories']}
    files = {image['id']: image['file_name'] for image in coco['images']}
    truth = {}  # file name -> [(class name, x1, y1, x2, y2)]
    for ann in coco['annotations']:
        x, y, w, h = ann['bbox']
        truth.setdefault(files[ann['image_id']], []).append((names[ann['category_id']], x, y, x + w, y + h))
    images = [osp.join(det_toy_data, 'val', name) for name in sorted(truth)]
    infer_tool.main([DET_CONFIG, osp.join(trained_detector, 'iter_600.pth'), *images, '--out-dir', str(tmp_path)])
    found = 0
    for image in images:
        _, record = read_results(tmp_path, image)
        top = int(np.argmax(record['scores']))
        top_name, top_box = record['label_names'][top], record['bboxes'][top]
        found += any(name == top_name and box_iou(top_box, box) > 0.5 for name, *box in truth[osp.basename(image)])
    assert found >= 0.6 * len(images), f'the top detection is a ground-truth object on {found} of {len(images)} images'
