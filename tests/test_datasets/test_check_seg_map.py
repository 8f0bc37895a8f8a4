"""mmmnv2.CheckSegMap: corrupt label maps fail loudly, naming the file, in the pipelines the configs really use."""
import glob
import os.path as osp

import cv2
import numpy as np
import pytest
from mmengine.config import Config
from mmengine.registry import init_default_scope

from mmmnv2.datasets import SEG_CLASSES, generate_segmentation
from mmmnv2.datasets.transforms import CheckSegMap

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOY_CONFIG = sorted(glob.glob(osp.join(REPO, 'configs', 'mobile_deeplabv3', '*toyshapes*.py')))[0]


@pytest.fixture
def toy_root(tmp_path):
    root = str(tmp_path / 'toyshapes_seg')
    generate_segmentation(root, num_train=2, num_val=2, size=64)
    return root


def build_dataset(root: str, loader: str = 'train_dataloader', tta: bool = False):
    from mmseg.registry import DATASETS
    init_default_scope('mmseg')
    cfg = Config.fromfile(TOY_CONFIG)
    dataset = cfg[loader].dataset
    dataset.data_root = root
    if tta:
        dataset.pipeline = cfg.tta_pipeline
    return DATASETS.build(dataset)


def label_path(root: str, split: str, index: int = 0) -> str:
    return osp.join(root, 'SegmentationClass', f'{split}_{index:06d}.png')


@pytest.mark.parametrize('loader,split', [('train_dataloader', 'train'), ('val_dataloader', 'val')])
def test_clean_toy_data_passes(toy_root, loader, split):
    dataset = build_dataset(toy_root, loader)
    assert any(isinstance(t, CheckSegMap) for t in dataset.pipeline.transforms)  # the check does run
    valid = set(range(len(SEG_CLASSES))) | {255}
    loaded = set()
    for index in range(len(dataset)):  # no error: the check lets valid label maps through
        loaded |= set(dataset[index]['data_samples'].gt_sem_seg.data.unique().tolist())
    assert loaded <= valid and loaded - {0, 255}, loaded  # the labels reached the sample, objects included
    labels = cv2.imread(label_path(toy_root, split), cv2.IMREAD_UNCHANGED)
    assert set(np.unique(labels).tolist()) <= valid  # the generator's own contract


@pytest.mark.parametrize('loader,split,tta', [('train_dataloader', 'train', False), ('val_dataloader', 'val', False),
                                              ('test_dataloader', 'val', True)])
def test_label_value_outside_the_classes_names_the_file(toy_root, loader, split, tta):
    path = label_path(toy_root, split)
    labels = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    labels[10:20, 10:20] = 7  # 4 classes: 0..3, and 255 for boundaries
    cv2.imwrite(path, labels)
    dataset = build_dataset(toy_root, loader, tta=tta)
    with pytest.raises(ValueError, match='outside') as error:
        dataset[0]
    assert path in str(error.value) and '7' in str(error.value)


@pytest.mark.parametrize('loader,split,tta', [('train_dataloader', 'train', False), ('val_dataloader', 'val', False),
                                              ('test_dataloader', 'val', True)])
def test_label_map_of_another_size_names_the_file(toy_root, loader, split, tta):
    path = label_path(toy_root, split)
    cv2.imwrite(path, np.zeros((32, 48), np.uint8))  # the image is 64x64
    dataset = build_dataset(toy_root, loader, tta=tta)
    with pytest.raises(ValueError, match='32x48') as error:
        dataset[0]
    assert path in str(error.value)


def test_transform_directly():
    check = CheckSegMap(num_classes=21)
    seg = np.full((4, 5), 255, np.uint8)
    seg[0, 0] = 20
    results = dict(gt_seg_map=seg, ori_shape=(4, 5), seg_map_path='a.png', img_path='a.jpg')
    assert check(results) is results  # valid: classes 0..20 and 255
    seg[1, 1] = 21
    with pytest.raises(ValueError, match=r'a\.png holds values 21 '):
        check(dict(results))
    assert check(dict(ori_shape=(4, 5))) == dict(ori_shape=(4, 5))  # inference pipelines: no label map, no check
    custom_ignore = CheckSegMap(num_classes=4, ignore_index=0)
    with pytest.raises(ValueError, match='255'):
        custom_ignore(dict(gt_seg_map=np.full((2, 2), 255, np.uint8), ori_shape=(2, 2)))


@pytest.mark.parametrize('kwargs,argument', [
    (dict(num_classes=0), 'num_classes'), (dict(num_classes=2.5), 'num_classes'),
    (dict(num_classes=True), 'num_classes'), (dict(num_classes=4, ignore_index='255'), 'ignore_index')])
def test_bad_arguments_name_the_argument(kwargs, argument):
    with pytest.raises(ValueError, match=argument):
        CheckSegMap(**kwargs)


def test_registered_for_configs():
    from mmseg.registry import TRANSFORMS
    init_default_scope('mmseg')
    check = TRANSFORMS.build(dict(type='mmmnv2.CheckSegMap', num_classes=4))
    assert isinstance(check, CheckSegMap)
