"""Broken detection data gets a clear error naming the file, or MMDetection's documented handling."""
import json
import os.path as osp

import pytest
from mmengine.dataset import Compose
from mmengine.registry import init_default_scope

from mmmnv2.datasets import CLASSES, StrictCocoDataset, generate_detection


@pytest.fixture(scope='module')
def coco_root(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('coco'))
    generate_detection(root, num_train=4, num_val=2)
    return root


def write_annotations(root: str, name: str, edit) -> str:
    with open(osp.join(root, 'annotations', 'instances_train.json')) as f:
        data = json.load(f)
    edit(data)
    path = osp.join(root, 'annotations', name)
    with open(path, 'w') as f:
        json.dump(data, f)
    return path


def build(root: str, ann_file: str, **kwargs) -> StrictCocoDataset:
    init_default_scope('mmdet')
    return StrictCocoDataset(data_root=root, ann_file=ann_file, data_prefix=dict(img='train/'),
                             metainfo=dict(classes=CLASSES), pipeline=[], **kwargs)


def test_matching_file_loads(coco_root):
    dataset = build(coco_root, 'annotations/instances_train.json')
    assert len(dataset) == 4


def test_class_missing_from_file_is_refused(coco_root):
    def rename(data):
        data['categories'][1]['name'] = 'rectangle'  # 'square' is gone: 'triangle' would become label 1
    path = write_annotations(coco_root, 'renamed.json', rename)
    with pytest.raises(ValueError, match=r"renamed.json.*classes without a category: \['square'\]"):
        build(coco_root, path)


def test_annotations_outside_the_classes_are_refused_unless_allowed(coco_root):
    def add_category(data):
        data['categories'].append(dict(id=4, name='star', supercategory='shape'))
        data['annotations'][0]['category_id'] = 4
    path = write_annotations(coco_root, 'extra.json', add_category)
    with pytest.raises(ValueError, match=r"extra.json.*annotated categories that are not classes.*'star \(id 4\)'"):
        build(coco_root, path)
    assert len(build(coco_root, path, allow_unlisted_categories=True)) == 4


def test_degenerate_box_is_refused_or_dropped_with_a_count(coco_root):
    """MMDetection skips boxes under a pixel without a word; here they are refused, or dropped on request and
    counted."""
    def flatten(data):
        data['annotations'][0]['bbox'][2] = 0  # zero width
    path = write_annotations(coco_root, 'degenerate.json', flatten)
    first = json.load(open(path))['annotations'][0]
    with pytest.raises(ValueError, match=rf"degenerate.json: 1 invalid annotation\(s\): annotation {first['id']}: "
                                         r'bbox .* has a width or height <= 0'):
        build(coco_root, path)
    sound = build(coco_root, 'annotations/instances_train.json')
    with pytest.warns(UserWarning, match=r'degenerate.json: dropped 1 invalid annotation\(s\)'):
        flat = build(coco_root, path, drop_invalid_annotations=True)
    count = {d['img_id']: len(d['instances']) for d in sound}
    assert {d['img_id']: len(d['instances']) for d in flat}[first['image_id']] == count[first['image_id']] - 1


def test_unreadable_image_error_names_the_file(coco_root, tmp_path):
    dataset = build(coco_root, 'annotations/instances_train.json')
    info = dataset.get_data_info(0)
    broken = tmp_path / 'broken.jpg'
    broken.write_bytes(b'not a jpeg')
    init_default_scope('mmdet')
    load = Compose([dict(type='LoadImageFromFile')])
    with pytest.raises(Exception, match='broken.jpg'):
        load(dict(info, img_path=str(broken)))
    with pytest.raises(FileNotFoundError, match='missing.jpg'):
        load(dict(info, img_path=str(tmp_path / 'missing.jpg')))
