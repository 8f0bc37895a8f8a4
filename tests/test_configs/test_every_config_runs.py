"""Every config of ``configs/`` trains, resumes and tests through our tools and through the hosts' own tools.

Each config runs a few iterations on real data where it exists (the 79 real COCO val2017 images with the official
annotations, ``../shared/data/coco_mini_val2017``, for every COCO config) and on a small generated set in the
data set's own layout otherwise (PASCAL VOC + SBD folders for the VOC configs; the toy layouts for the toy
configs). Per config, in this order: our ``tools/train.py`` (2 iterations or 1 epoch of 2 images, then validation
on 1 image), the host's ``tools/train.py --resume`` (one more iteration or epoch), the host's ``tools/test.py`` and
our ``tools/test.py`` (``--tta`` where the config has a ``tta_model``), each test on 1 image. Pretrained weights that
cannot be downloaded are swapped for a locally made checkpoint of the same backbone through ``--cfg-options``; the
configs themselves are run as written otherwise, apart from what keeps the runs CPU-sized: batch size, subset size,
iterations, loader workers, and smaller inputs where a config's are large (RetinaNet's 1333x800 resize becomes
256x256, Mobile DeepLabv3's 512 crop and 512 / 513 / 257 padding 128 on 64-pixel images).

The tool runs of every config share one Python process (``toy_runs.run_tools_in_one_process``): on two cores,
starting Python with torch and the hosts costs several seconds a run, more than most runs themselves. Each config's
test checks its own runs' exit status and output.
"""
import glob
import os.path as osp
import re
import shutil

import pytest
import torch
from mmengine.config import Config
from reference_data import COCO_MINI, require_folder
from toy_runs import REPO, host_tool, run_tools_in_one_process

from mmmnv2.datasets import data_root_options, generate_detection, generate_segmentation
from mmmnv2.datasets.data_root_options import LOADERS, dataset_keys

CONFIGS = sorted(p for p in glob.glob(osp.join(REPO, 'configs', '**', '*.py'), recursive=True)
                 if '_base_' not in p)
# Normalisation each weights source was trained with (RGB): OpenMMLab's, torchvision's and timm's ImageNet
# MobileNetV2s use ImageNet mean/std; TF-slim's and the TF model zoo's map pixels to [-1, 1].
IMAGENET = ([123.675, 116.28, 103.53], [58.395, 57.12, 57.375])
TF_RANGE = ([127.5] * 3, [127.5] * 3)
WEIGHTS_NORMALISATION = {
    'download.openmmlab.com/mmclassification/v0/mobilenet_v2/': IMAGENET,
    'download.pytorch.org/models/mobilenet_v2': IMAGENET,
    'timm/': IMAGENET,
    'tf_': TF_RANGE,
}


def pretrained_checkpoint(cfg: Config) -> str:
    init = cfg.model.backbone.get('init_cfg') or {}
    return init.get('checkpoint') if init.get('type') == 'Pretrained' else None


@pytest.fixture(scope='module')
def local_imagenet_checkpoint(tmp_path_factory) -> str:
    """A stand-in for OpenMMLab's ImageNet MobileNetV2 (same keys: ``backbone.*``), made here: nothing downloads."""
    from mmmnv2.models.backbones import MobileNetV2
    backbone = MobileNetV2(out_endpoints=('layer_19',))
    path = str(tmp_path_factory.mktemp('weights') / 'mobilenet_v2_imagenet_stand_in.pth')
    torch.save({'state_dict': {f'backbone.{k}': v for k, v in backbone.state_dict().items()}}, path)
    return path


@pytest.fixture(scope='module')
def coco_mini() -> str:
    return str(require_folder(COCO_MINI, '79 real COCO val2017 images with their official annotations'))


@pytest.fixture(scope='module')
def voc_layout(tmp_path_factory) -> str:
    """A small set in PASCAL VOC 2012 + SBD's layout (train.txt, aug.txt, val.txt; SegmentationClass(Aug))."""
    root = str(tmp_path_factory.mktemp('VOC2012'))
    generate_segmentation(root, num_train=4, num_val=2, size=64)
    shutil.copy(osp.join(root, 'ImageSets', 'Segmentation', 'train.txt'),
                osp.join(root, 'ImageSets', 'Segmentation', 'aug.txt'))
    shutil.copytree(osp.join(root, 'SegmentationClass'), osp.join(root, 'SegmentationClassAug'))
    return root


@pytest.fixture(scope='module')
def toy_det(tmp_path_factory) -> str:
    root = str(tmp_path_factory.mktemp('toyshapes_det'))
    generate_detection(root, num_train=4, num_val=2)
    return root


@pytest.fixture(scope='module')
def toy_seg(tmp_path_factory) -> str:
    root = str(tmp_path_factory.mktemp('toyshapes_seg'))
    generate_segmentation(root, num_train=4, num_val=2)
    return root


SMALL_RESIZE = 256  # RetinaNet's 1333x800 resize, on CPU
SMALL_CROP = 128  # Mobile DeepLabv3's 512 crop and padding, on CPU (with 64-pixel images, at most 128 after scaling)


def dataset_at(cfg: Config, key: str) -> dict:
    node = cfg
    for part in key.split('.'):
        node = node[int(part)] if isinstance(node, list) else node[part]
    return node


def short_run_options(cfg: Config, data_root: str, coco: bool) -> list:
    """Data at ``data_root``, 2 training images (batch 2: BN needs 2 samples on 1x1 maps) and 1 test image, no
    worker processes, CPU-sized inputs."""
    options = data_root_options(cfg, data_root)
    for loader in LOADERS:
        training = loader == 'train_dataloader'
        options += [f'{loader}.batch_size={2 if training else 1}',
                    f'{loader}.num_workers=0', f'{loader}.persistent_workers=False']
        for key in dataset_keys(cfg[loader]['dataset'], f'{loader}.dataset'):
            options.append(f'{key}.indices={2 if training else 1}')
            if coco:  # the real images are COCO val2017: train on them too
                options += [f'{key}.ann_file=annotations/instances_val2017.json', f'{key}.data_prefix.img=val2017/']
            for index, transform in enumerate(dataset_at(cfg, key).get('pipeline', [])):
                if transform['type'] == 'Resize' and max(transform.get('scale') or (0,)) > 512:
                    options.append(f'{key}.pipeline.{index}.scale=({SMALL_RESIZE},{SMALL_RESIZE})')
                if transform['type'] == 'RandomCrop':
                    options.append(f'{key}.pipeline.{index}.crop_size=({SMALL_CROP},{SMALL_CROP})')
        if cfg[loader]['dataset'].get('type') == 'RepeatDataset':
            options.append(f'{loader}.dataset.times=1')
    if cfg.model.data_preprocessor.get('size'):
        options.append(f'model.data_preprocessor.size=({SMALL_CROP},{SMALL_CROP})')
    if coco:
        options += [f'{e}.ann_file={data_root}/annotations/instances_val2017.json'
                    for e in ('val_evaluator', 'test_evaluator')]
    return options


def data_root_of(config: str, cfg: Config, request) -> str:
    """The data set a config runs on here (a fixture's value; skips or fails as that fixture does)."""
    name = osp.basename(config)
    if '_coco' in name:
        return request.getfixturevalue('coco_mini')
    if '_voc12' in name:
        return request.getfixturevalue('voc_layout')
    if 'toyshapes' in name:
        return request.getfixturevalue('toy_det' if cfg.default_scope == 'mmdet' else 'toy_seg')
    pytest.fail(f'no test data for {name}: add its data set to this test')


def tool_invocations(config: str, data_root: str, local_imagenet_checkpoint: str, tmp_path: str) -> list:
    """The four tool runs of one config: our train, the host's train --resume, the host's test, our test."""
    cfg = Config.fromfile(config)
    options = short_run_options(cfg, data_root, '_coco' in osp.basename(config))
    if pretrained_checkpoint(cfg):
        options.append(f'model.backbone.init_cfg.checkpoint={local_imagenet_checkpoint}')
    by_epoch = cfg.train_cfg.get('type') == 'EpochBasedTrainLoop'
    length = 'max_epochs' if by_epoch else 'max_iters'
    work_dir = osp.join(tmp_path, 'work')
    last = osp.join(work_dir, 'epoch_2.pth' if by_epoch else 'iter_3.pth')
    tta = ['--tta'] if 'tta_model' in cfg else []
    return [
        ['tools/train.py', config, '--work-dir', work_dir, '--cfg-options', *options,
         f'train_cfg.{length}={1 if by_epoch else 2}', f'train_cfg.val_interval={1 if by_epoch else 2}'],
        [host_tool(cfg.default_scope, 'train'), config, '--work-dir', work_dir, '--resume', '--cfg-options', *options,
         f'train_cfg.{length}={2 if by_epoch else 3}', 'train_cfg.val_interval=100'],
        [host_tool(cfg.default_scope, 'test'), config, last, '--work-dir', osp.join(tmp_path, 'host_test'),
         '--cfg-options', *options],
        ['tools/test.py', config, last, '--work-dir', osp.join(tmp_path, 'our_test'), *tta, '--cfg-options', *options],
    ]


@pytest.fixture(scope='module')
def tool_runs(request, local_imagenet_checkpoint, tmp_path_factory) -> dict:
    """config -> its four tool runs (``toy_runs.ToolRun``), or the skip / failure of its data fixture; for every
    config this session tests, all in one Python process."""
    selected = sorted({item.callspec.params['config'] for item in request.session.items
                       if item.originalname == 'test_config_trains_resumes_and_tests_through_both_toolsets'})
    runs, invocations = {}, {}
    for config in selected:
        try:
            data_root = data_root_of(config, Config.fromfile(config), request)
        except (pytest.skip.Exception, pytest.fail.Exception) as outcome:  # no data: the config's test says so
            runs[config] = outcome
            continue
        tmp_path = str(tmp_path_factory.mktemp(osp.splitext(osp.basename(config))[0][:40]))
        invocations[config] = tool_invocations(config, data_root, local_imagenet_checkpoint, tmp_path)
    results = iter(run_tools_in_one_process([args for group in invocations.values() for args in group]))
    for config, group in invocations.items():
        runs[config] = [next(results) for _ in group]
    return runs


@pytest.mark.parametrize('config', CONFIGS, ids=[osp.relpath(c, osp.join(REPO, 'configs')) for c in CONFIGS])
def test_config_trains_resumes_and_tests_through_both_toolsets(config, tool_runs):
    runs = tool_runs[config]
    if isinstance(runs, pytest.skip.Exception):
        pytest.skip(str(runs))
    if isinstance(runs, pytest.fail.Exception):
        pytest.fail(str(runs))
    log = ''.join(run.check() for run in runs)
    train = runs[0].args
    work_dir = train[train.index('--work-dir') + 1]
    by_epoch = Config.fromfile(config).train_cfg.get('type') == 'EpochBasedTrainLoop'
    first = osp.join(work_dir, 'epoch_1.pth' if by_epoch else 'iter_2.pth')
    last = osp.join(work_dir, 'epoch_2.pth' if by_epoch else 'iter_3.pth')
    assert osp.exists(first) and osp.exists(last), log[-3000:]
    assert re.search(r'resumed epoch: \d+, iter: \d+', runs[1].output), runs[1].output[-3000:]
    # validation during training, then both test tools, each over its one image (an untrained detector may have
    # nothing above its score threshold, so CocoMetric reports no number: the loops' own lines are counted)
    assert re.search(r'\(val\) (?:\[\d+\])?\[1/1\]', runs[0].output), runs[0].output[-3000:]
    for run in runs[2:]:
        assert re.search(r'\(test\) \[1/1\]', run.output), run.output[-3000:]


@pytest.mark.parametrize('config', CONFIGS, ids=[osp.relpath(c, osp.join(REPO, 'configs')) for c in CONFIGS])
def test_preprocessing_matches_the_weights_it_starts_from(config):
    cfg = Config.fromfile(config)
    preprocessor = cfg.model.data_preprocessor
    assert preprocessor.get('bgr_to_rgb') is True, 'every weights source here was trained on RGB'
    checkpoint = pretrained_checkpoint(cfg)
    if '_tf-weights_' in osp.basename(config):  # evaluates Google's converted weights (load_from / tools/test.py)
        checkpoint = 'tf_weights'
    if checkpoint is None:  # trained from scratch: any fixed normalisation serves
        return
    sources = [norm for marker, norm in WEIGHTS_NORMALISATION.items() if marker in checkpoint]
    assert len(sources) == 1, f'unknown weights source {checkpoint}: state its normalisation in this test'
    mean, std = sources[0]
    assert list(preprocessor.mean) == pytest.approx(mean) and list(preprocessor.std) == pytest.approx(std)


@pytest.mark.parametrize('config', CONFIGS, ids=[osp.relpath(c, osp.join(REPO, 'configs')) for c in CONFIGS])
def test_iteration_based_configs_log_validation_by_iteration(config):
    """MMEngine logs validation metrics at the epoch (always 0 in iteration-based training) unless told otherwise,
    which puts every point of a validation curve at step 0."""
    cfg = Config.fromfile(config)
    if cfg.train_cfg.get('type') != 'IterBasedTrainLoop':
        return
    assert cfg.default_hooks.logger.get('log_metric_by_epoch') is False
    assert cfg.log_processor.get('by_epoch') is False
