"""The segmentation configs: Table 7's four rows as configs, the TF DeepLab recipe, and every config runs on CPU.

Values checked against the paper's Table 7 and TF DeepLab's recipe (``train.py`` flags and the model zoo's
``mobilenetv2_coco_voc_trainaug`` settings), not against the configs themselves.
"""
import glob
import os.path as osp
import re

import pytest
import torch
from mmengine.config import Config

from mmmnv2.apis import init_model
from mmmnv2.datasets import SEG_CLASSES, SEG_PALETTE
from mmmnv2.models.backbones import MobileNetV2

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG_DIR = osp.join(REPO, 'configs', 'mobile_deeplabv3')
# The configs evaluating Google's converted TF weights have no training recipe in their names; they are checked in
# tests/test_converters/test_tf_configs.py.
ALL_CONFIGS = sorted(osp.basename(p) for p in glob.glob(osp.join(CONFIG_DIR, '*.py')) if '_tf-weights_' not in p)
VOC_CONFIGS = [c for c in ALL_CONFIGS if 'voc12aug' in c]
TOY_CONFIGS = [c for c in ALL_CONFIGS if 'toyshapes' in c]
# Table 7 rows (MNet V2*): config -> (ASPP, output stride, MF evaluation)
TABLE7 = {
    'mobile-deeplabv3_mobilenetv2-os16_4xb4-30k_voc12aug-512x512.py': (False, 16, False),  # 75.32
    'mobile-deeplabv3-aspp_mobilenetv2-os16_4xb4-30k_voc12aug-512x512.py': (True, 16, False),  # 75.70
    'mobile-deeplabv3_mobilenetv2-os8_4xb4-30k_voc12aug-512x512.py': (False, 8, True),  # 77.33
    'mobile-deeplabv3-aspp_mobilenetv2-os8_4xb4-30k_voc12aug-512x512.py': (True, 8, True),  # 78.42
}
MF_SCALES = [0.5, 0.75, 1.0, 1.25, 1.5, 1.75]  # paper Table 7: "multi-scale inputs 0.5:0.25:1.75 + flip"
PRETRAINED = ('https://download.openmmlab.com/mmclassification/v0/mobilenet_v2/'
              'mobilenet_v2_batch256_imagenet_20200708-3b2dc3af.pth')
# OpenMMLab grammar: {algorithm}_{backbone}_{gpus}x{batch}-{schedule}_{dataset}-{size}.py
NAME_RE = re.compile(r'^(?P<algorithm>[a-z0-9-]+)_(?P<backbone>mobilenetv2(-os\d+)?)_(?P<gpus>\d+)xb(?P<batch>\d+)'
                     r'-(?P<schedule>\d+[ki])_(?P<dataset>[a-z0-9]+)-(?P<size>\d+x\d+)\.py$')


def load(name: str) -> Config:
    return Config.fromfile(osp.join(CONFIG_DIR, name))


def pipelines(cfg: Config):
    """Every data pipeline of the config: (where, list of transforms), TTA sub-transforms flattened."""
    found = []
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        dataset = cfg[loader]['dataset']
        for index, ds in enumerate(dataset.get('datasets', [dataset])):
            found.append((f'{loader}[{index}]', ds['pipeline']))
    if 'tta_pipeline' in cfg:
        flat = []
        for t in cfg.tta_pipeline:
            flat += [group[0] for group in t['transforms']] if t['type'] == 'TestTimeAug' else [t]
        found.append(('tta_pipeline', flat))
    return found


def build_model(cfg: Config):
    return init_model(cfg, device='cpu')  # initial weights, nothing downloaded


def test_table7_rows_all_have_a_config():
    assert set(TABLE7) <= set(ALL_CONFIGS)
    assert TOY_CONFIGS, 'the toy config is missing'


@pytest.mark.parametrize('name', ALL_CONFIGS)
def test_names_follow_openmmlab_grammar_and_match_the_content(name):
    match = NAME_RE.match(name)
    assert match, name
    cfg = load(name)
    assert cfg.default_scope == 'mmseg'
    assert cfg.custom_imports == dict(imports=['mmmnv2'], allow_failed_imports=False)
    assert cfg.train_dataloader.batch_size == int(match['batch'])
    schedule = match['schedule']
    iterations = int(schedule[:-1]) * (1000 if schedule.endswith('k') else 1)
    assert cfg.train_cfg.type == 'IterBasedTrainLoop' and cfg.train_cfg.max_iters == iterations
    backbone = cfg.model.backbone
    if '-os' in match['backbone']:
        assert backbone.output_stride == int(match['backbone'].split('-os')[1])
    if match['algorithm'].startswith('mobile-deeplabv3'):
        head = cfg.model.decode_head
        assert head.type == 'mmmnv2.MobileDeepLabV3Head'
        assert head.with_aspp == ('-aspp' in match['algorithm'])
        assert backbone.out_endpoints == ('layer_18',)  # paper: "MNet V2*", heads on layer_18


@pytest.mark.parametrize('name', sorted(TABLE7))
def test_table7_configs(name):
    with_aspp, output_stride, mf = TABLE7[name]
    cfg = load(name)
    model = cfg.model
    assert model.type == 'mmmnv2.MobileDeepLabV3' and 'auxiliary_head' not in model
    assert model.backbone.type == 'mmmnv2.MobileNetV2' and model.backbone.widen_factor == 1.0
    assert model.backbone.out_endpoints == ('layer_18',)
    assert model.backbone.output_stride == output_stride
    assert 'output_stride' not in model.decode_head  # stated once: the head takes the backbone's
    assert model.decode_head.with_aspp is with_aspp
    assert model.decode_head.num_classes == 21 and model.decode_head.channels == 256
    assert model.decode_head.dropout_ratio == pytest.approx(0.1)  # TF keep-prob 0.9
    assert model.decode_head.loss_decode.type == 'CrossEntropyLoss'
    # ImageNet init (the paper: COCO; a stated departure), TF [-1, 1] input
    assert model.backbone.init_cfg == dict(type='Pretrained', prefix='backbone.', checkpoint=PRETRAINED)
    preprocessor = model.data_preprocessor
    assert preprocessor.mean == [127.5] * 3 and preprocessor.std == [127.5] * 3 and preprocessor.bgr_to_rgb
    assert preprocessor.seg_pad_val == 255 and tuple(preprocessor.size) == (512, 512)
    # MF evaluation only for the OS 8 rows; single scale otherwise
    test_types = [t['type'] for t in cfg.test_dataloader.dataset.pipeline]
    assert 'TestTimeAug' not in test_types and 'Resize' not in test_types  # evaluated on the original image
    if mf:
        assert cfg.tta_model.type == 'SegTTAModel'
        tta = next(t for t in cfg.tta_pipeline if t['type'] == 'TestTimeAug')
        assert [t['scale_factor'] for t in tta['transforms'][0]] == MF_SCALES
        assert sorted(t['prob'] for t in tta['transforms'][1]) == [0.0, 1.0]
        assert all(t['direction'] == 'horizontal' for t in tta['transforms'][1])


@pytest.mark.parametrize('name', VOC_CONFIGS)
def test_tf_deeplab_recipe(name):
    cfg = load(name)
    optimizer = cfg.optim_wrapper.optimizer
    assert (optimizer.type, optimizer.lr, optimizer.momentum, optimizer.weight_decay) == ('SGD', 0.007, 0.9, 4e-5)
    [poly] = cfg.param_scheduler
    assert poly.type == 'PolyLR' and poly.power == 0.9 and poly.eta_min == 0 and poly.end == 30000
    assert not poly.by_epoch
    assert cfg.train_cfg.max_iters == 30000
    gpus, batch = map(int, NAME_RE.match(name).group('gpus', 'batch'))
    assert gpus * batch == 16 == cfg.auto_scale_lr.base_batch_size  # TF: batch 16
    assert cfg.model.backbone.norm_cfg.type == 'SyncBN' and cfg.model.backbone.norm_cfg.requires_grad
    train = cfg.train_dataloader.dataset
    assert train.type == 'ConcatDataset' and len(train.datasets) == 2  # VOC train + SBD aug = train_aug
    transforms = {t['type']: t for t in train.datasets[0].pipeline}
    scales = [group[0]['scale_factor'] for group in transforms['RandomChoice']['transforms']]
    assert scales == [0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0]  # TF: random scale 0.5..2.0, step 0.25
    assert tuple(transforms['RandomCrop']['crop_size']) == (512, 512)  # TF: 513
    assert transforms['RandomFlip']['prob'] == 0.5
    assert cfg.val_evaluator.type == 'IoUMetric' and cfg.val_evaluator.iou_metrics == ['mIoU']


@pytest.mark.parametrize('name', ALL_CONFIGS)
def test_label_maps_are_checked_after_loading(name):
    cfg = load(name)
    num_classes = cfg.model.decode_head.num_classes
    for where, pipeline in pipelines(cfg):
        types = [t['type'] for t in pipeline]
        assert 'LoadAnnotations' in types, where
        check = pipeline[types.index('LoadAnnotations') + 1]
        assert check['type'] == 'mmmnv2.CheckSegMap', where
        assert check['num_classes'] == num_classes and check.get('ignore_index', 255) == 255, where


@pytest.mark.parametrize('name', ALL_CONFIGS)
def test_head_channels_match_what_the_backbone_outputs(name):
    cfg = load(name)
    assert 'in_channels' not in cfg.model.decode_head  # stated once: the head takes the backbone's
    backbone_cfg = {k: v for k, v in cfg.model.backbone.items() if k not in ('type', 'init_cfg', 'norm_cfg')}
    backbone = MobileNetV2(**backbone_cfg)  # built on its own: what the backbone reports
    head = build_model(cfg).decode_head
    in_index = head.in_index if isinstance(head.in_index, (list, tuple)) else [head.in_index]
    in_channels = head.in_channels if isinstance(head.in_channels, (list, tuple)) else [head.in_channels]
    assert [backbone.out_channels[i] for i in in_index] == list(in_channels)


def test_os8_configs_evaluate_the_os16_weights():
    # TF DeepLab trains at OS 16 and evaluates the same checkpoint at OS 8: the parameters must be identical.
    pairs = [('mobile-deeplabv3_mobilenetv2-os16_4xb4-30k_voc12aug-512x512.py',
              'mobile-deeplabv3_mobilenetv2-os8_4xb4-30k_voc12aug-512x512.py'),
             ('mobile-deeplabv3-aspp_mobilenetv2-os16_4xb4-30k_voc12aug-512x512.py',
              'mobile-deeplabv3-aspp_mobilenetv2-os8_4xb4-30k_voc12aug-512x512.py')]
    for os16, os8 in pairs:
        shapes16 = {k: v.shape for k, v in build_model(load(os16)).state_dict().items()}
        shapes8 = {k: v.shape for k, v in build_model(load(os8)).state_dict().items()}
        assert shapes16 == shapes8


@pytest.mark.parametrize('name', ALL_CONFIGS)
def test_loss_and_predict_run_on_cpu(name):
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample
    cfg = load(name)
    model = build_model(cfg)
    size, num_classes = 64, cfg.model.decode_head.num_classes
    samples = []
    for _ in range(2):
        sample = SegDataSample(metainfo=dict(img_shape=(size, size), ori_shape=(size, size), pad_shape=(size, size)))
        sample.gt_sem_seg = PixelData(data=torch.randint(0, num_classes, (1, size, size)))
        samples.append(sample)
    inputs = torch.rand(2, 3, size, size) * 2 - 1
    model.train()
    losses = model.loss(inputs, samples)
    total = sum(v for k, v in losses.items() if 'loss' in k)
    assert torch.isfinite(total) and total > 0
    total.backward()
    model.eval()
    with torch.no_grad():
        predictions = model.predict(inputs, samples)
    assert len(predictions) == 2
    assert predictions[0].pred_sem_seg.data.shape == (1, size, size)
    assert predictions[0].seg_logits.data.shape == (num_classes, size, size)


@pytest.mark.parametrize('name', TOY_CONFIGS)
def test_toy_config_needs_no_download_and_no_gpu(name):
    cfg = load(name)
    assert tuple(cfg.metainfo['classes']) == SEG_CLASSES
    assert [list(c) for c in cfg.metainfo['palette']] == [list(c) for c in SEG_PALETTE]
    assert cfg.model.decode_head.num_classes == len(SEG_CLASSES)
    assert cfg.model.backbone.init_cfg is None  # nothing to download
    for part in (cfg.model.backbone, cfg.model.decode_head):
        assert part.norm_cfg.type == 'BN'  # one process: no SyncBN
    assert cfg.train_dataloader.dataset.data_root.rstrip('/') == 'data/toyshapes_seg'
    assert cfg.val_evaluator.type == 'IoUMetric'
    assert cfg.default_hooks.checkpoint.type == 'mmmnv2.VerifiedCheckpointHook'  # atomic, checksummed saves
    assert cfg.visualizer.type == 'SegLocalVisualizer'
    assert cfg.tta_model.type == 'SegTTAModel' and any(t['type'] == 'TestTimeAug' for t in cfg.tta_pipeline)
