"""Bad data fails when the data set is built, naming the file: not a JSON or numpy error without a file name, not a
read error after training iterations, not an mAP of -1 with exit status 0."""
import json
import os
import shutil

import pytest
from toy_runs import DET_CONFIG, run_tool_in_process, untrained_checkpoint

from mmmnv2.datasets import (
    CLASSES,
    SEG_CLASSES,
    StrictCocoDataset,
    StrictSegDataset,
    data_root_options,
    generate_detection,
    generate_segmentation,
)


@pytest.fixture(scope='module')
def det_root(tmp_path_factory):
    root = tmp_path_factory.mktemp('det_checks')
    generate_detection(str(root), num_train=3, num_val=1)
    return root


@pytest.fixture(scope='module')
def seg_root(tmp_path_factory):
    root = tmp_path_factory.mktemp('seg_checks')
    generate_segmentation(str(root), num_train=3, num_val=1)
    return root


def coco(det_root, ann_file, classes=CLASSES, **kwargs):
    return StrictCocoDataset(data_root=str(det_root), ann_file=str(ann_file), data_prefix=dict(img='train/'),
                             metainfo=dict(classes=classes), pipeline=[], **kwargs)


def edited_annotations(det_root, tmp_path, edit):
    with open(det_root / 'annotations' / 'instances_train.json') as f:
        annotations = json.load(f)
    edit(annotations)
    path = tmp_path / 'edited.json'
    path.write_text(json.dumps(annotations))
    return path


def test_valid_toy_data_builds(det_root, seg_root):
    assert len(coco(det_root, det_root / 'annotations' / 'instances_train.json')) == 3
    assert len(StrictSegDataset(data_root=str(seg_root), ann_file='ImageSets/Segmentation/train.txt',
                                data_prefix=dict(img_path='JPEGImages', seg_map_path='SegmentationClass'),
                                img_suffix='.jpg', seg_map_suffix='.png', metainfo=dict(classes=SEG_CLASSES),
                                pipeline=[])) == 3


@pytest.mark.parametrize('content, expected', [(b'', 'is empty'), (b'{"images": [', 'not a valid COCO JSON'),
                                               (b'{"images": [], "annotations": [], "categories": []}',
                                                'holds no images')])
def test_empty_or_unparsable_annotation_file(det_root, tmp_path, content, expected):
    (tmp_path / 'ann.json').write_bytes(content)
    with pytest.raises(ValueError, match=expected) as error:
        coco(det_root, tmp_path / 'ann.json')
    assert str(tmp_path / 'ann.json') in str(error.value)


def test_duplicate_category_names(det_root, tmp_path):
    def duplicate(annotations):
        annotations['categories'].append(dict(annotations['categories'][0], id=99))
    path = edited_annotations(det_root, tmp_path, duplicate)
    with pytest.raises(ValueError, match="names of several categories: \\['circle'\\]") as error:
        coco(det_root, path)
    assert str(path) in str(error.value)
    with pytest.raises(ValueError, match="class names must be unique, \\['circle'\\]"):
        coco(det_root, det_root / 'annotations' / 'instances_train.json', classes=('circle', 'circle', 'square'))


def square_twice(annotations):
    """Categories 1 'square', 2 'square', 3 'triangle': pycocotools' getCatIds finds three ids for the three
    classes, so MMDetection would map 'circle' to category 1."""
    annotations['categories'][0]['name'] = 'square'


def test_categories_must_match_the_classes_one_to_one(det_root, tmp_path):
    with pytest.raises(ValueError) as error:
        coco(det_root, edited_annotations(det_root, tmp_path, square_twice))
    message = str(error.value)
    assert "the categories [1 'square', 2 'square', 3 'triangle'] do not match the classes" in message
    assert "names of several categories: ['square']" in message and "classes without a category: ['circle']" in message


def test_test_tool_refuses_categories_that_do_not_match(monkeypatch, det_root, tmp_path):
    data = tmp_path / 'data'
    shutil.copytree(det_root, data)
    edit = data / 'annotations' / 'instances_val.json'
    annotations = json.loads(edit.read_text())
    square_twice(annotations)
    edit.write_text(json.dumps(annotations))
    checkpoint = untrained_checkpoint(DET_CONFIG, str(tmp_path / 'det.pth'))
    with pytest.raises(SystemExit) as stop:
        run_tool_in_process(monkeypatch, 'test.py', [DET_CONFIG, checkpoint, '--work-dir', str(tmp_path / 'work'),
                                                      '--cfg-options', *data_root_options(DET_CONFIG, str(data))])
    assert str(stop.value.code).startswith(f'error: {edit}: the categories [1 \'square\', 2 \'square\'')


def set_box(index, box):
    def edit(annotations):
        annotations['annotations'][index]['bbox'] = box
    return edit


@pytest.mark.parametrize('edit, reason', [
    (set_box(0, [10, 10, -5, 8]), 'has a width or height <= 0'),
    (set_box(0, [10, 10, 8, 0]), 'has a width or height <= 0'),
    (set_box(0, [float('nan'), 10, 8, 8]), 'is not 4 finite numbers'),
    (set_box(0, [10, 10, float('inf'), 8]), 'is not 4 finite numbers'),
    (set_box(0, [10, 10, 8]), 'is not 4 finite numbers'),
    (set_box(0, [10000, 10, 8, 8]), 'leaves its'),
    (set_box(0, [10, -20, 8, 8]), 'leaves its'),
    (lambda annotations: annotations['annotations'][0].update(image_id=12345), 'image_id 12345 is not an image'),
])
def test_invalid_annotations_are_refused_by_id_or_dropped_with_a_count(det_root, tmp_path, edit, reason):
    path = edited_annotations(det_root, tmp_path, edit)
    first = json.loads(path.read_text())['annotations'][0]['id']
    with pytest.raises(ValueError, match=f'{path}: 1 invalid annotation\\(s\\): annotation {first}: ') as error:
        coco(det_root, path)
    assert reason in str(error.value)
    sound = sum(len(d['instances']) for d in coco(det_root, det_root / 'annotations' / 'instances_train.json'))
    with pytest.warns(UserWarning, match=f'{path}: dropped 1 invalid annotation\\(s\\)'):
        dropped = coco(det_root, path, drop_invalid_annotations=True)
    assert sum(len(d['instances']) for d in dropped) == sound - 1


@pytest.mark.parametrize('edit, expected', [
    (lambda a: a['annotations'][1].pop('bbox'), 'annotation {id} has no bbox'),
    (lambda a: a['images'][0].pop('file_name'), 'image {image} has no file_name'),
    (lambda a: a.pop('categories'), 'no "categories" list'),
])
def test_missing_fields_are_named(det_root, tmp_path, edit, expected):
    original = json.loads((det_root / 'annotations' / 'instances_train.json').read_text())
    path = edited_annotations(det_root, tmp_path, edit)
    with pytest.raises(ValueError) as error:
        coco(det_root, path)
    assert str(error.value).startswith(f'{path}: ' + expected.format(id=original['annotations'][1]['id'],
                                                                       image=original['images'][0]['id']))


def test_missing_image_is_found_when_the_data_set_is_built(det_root, tmp_path):
    def rename(annotations):
        annotations['images'][1]['file_name'] = 'gone.jpg'
    path = edited_annotations(det_root, tmp_path, rename)
    with pytest.raises(FileNotFoundError, match='1 listed files do not exist') as error:
        coco(det_root, path)
    assert str(det_root / 'train' / 'gone.jpg') in str(error.value) and str(path) in str(error.value)
    assert len(coco(det_root, path, check_files=False)) == 3  # the check can be turned off for huge sets


def test_test_set_without_annotations_is_refused(det_root, tmp_path):
    path = edited_annotations(det_root, tmp_path, lambda annotations: annotations.update(annotations=[]))
    with pytest.raises(ValueError, match='without a single annotation.*mAP -1') as error:
        coco(det_root, path, test_mode=True)
    assert str(path) in str(error.value)
    assert len(coco(det_root, path, test_mode=True, allow_no_annotations=True)) == 3


@pytest.mark.parametrize('split, expected', [('', 'is empty'), ('\n', 'do not exist'), ('train_000000\nnone_1\n',
                                                                                       'do not exist')])
def test_empty_split_file_or_missing_files_in_segmentation(seg_root, tmp_path, split, expected):
    (tmp_path / 'split.txt').write_text(split)
    with pytest.raises((ValueError, FileNotFoundError), match=expected) as error:
        StrictSegDataset(data_root=str(seg_root), ann_file=str(tmp_path / 'split.txt'),
                         data_prefix=dict(img_path='JPEGImages', seg_map_path='SegmentationClass'),
                         img_suffix='.jpg', seg_map_suffix='.png', metainfo=dict(classes=SEG_CLASSES), pipeline=[])
    assert str(tmp_path / 'split.txt') in str(error.value)
    if 'none_1' in split:
        assert os.path.join(str(seg_root), 'JPEGImages', 'none_1.jpg') in str(error.value)
