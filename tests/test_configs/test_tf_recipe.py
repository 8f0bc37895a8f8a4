"""The Table 6 / Table 7 configs carry TF's training recipe, read back from the built models and optimisers.

Expected values are TF's (deeplab/model.py, deeplab/utils/train_utils.py, TF-slim mobilenet_v2.training_scope;
object_detection samples/configs/ssdlite_mobilenet_v2_coco.config), written here, not read from the configs.
"""
import glob
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.model import revert_sync_batchnorm
from mmengine.optim import build_optim_wrapper
from mmengine.registry import init_default_scope
from torch import nn

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
VOC_CONFIGS = sorted(glob.glob(osp.join(REPO, 'configs', 'mobile_deeplabv3', 'mobile-deeplabv3*voc12aug*.py')))
SSD_TF = osp.join(REPO, 'configs', 'ssdlite', 'ssdlite_mobilenetv2_1xb24-200k_coco-320x320.py')
SSD_SGD = osp.join(REPO, 'configs', 'ssdlite', 'ssdlite_mobilenetv2_8xb24-600e_coco-320x320.py')
IDS = [osp.basename(c) for c in VOC_CONFIGS]


def build(cfg: Config, scope: str) -> nn.Module:
    init_default_scope(scope)
    model_cfg = cfg.model.copy()
    model_cfg.backbone.init_cfg = None  # no download
    if scope == 'mmseg':
        from mmseg.registry import MODELS
    else:
        from mmdet.registry import MODELS
    model = revert_sync_batchnorm(MODELS.build(model_cfg))
    model.init_weights()
    return model


def norm_layers(module: nn.Module):
    return [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


@pytest.fixture(scope='module', params=VOC_CONFIGS, ids=IDS)
def voc(request):
    cfg = Config.fromfile(request.param)
    return cfg, build(cfg, 'mmseg')


def test_segmentation_loss_is_the_mean_over_valid_pixels(voc):
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample
    cfg, model = voc
    head = model.decode_head
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 2, (2, 21, 24, 24))
    labels = rng.integers(0, 21, (2, 24, 24))
    labels[0, :, 16:] = 255  # padding of a small crop
    labels[1, 3:6, :] = 255  # VOC's boundary band
    samples = []
    for label in labels:
        sample = SegDataSample()
        sample.gt_sem_seg = PixelData(data=torch.tensor(label)[None])
        samples.append(sample)
    loss = float(head.loss_by_feat(torch.tensor(logits, dtype=torch.float32), samples)['loss_ce'])
    # TF: softmax cross-entropy with weight 0 on label 255, divided by the number of weighted (valid) pixels
    log_p = logits - np.log(np.exp(logits).sum(1, keepdims=True))
    valid = labels != 255
    picked = np.take_along_axis(log_p, np.where(valid, labels, 0)[:, None], 1)[:, 0]
    reference = -(picked * valid).sum() / valid.sum()
    assert loss == pytest.approx(reference, rel=1e-5)
    # MMSegmentation's default divides by every pixel: the check above tells them apart
    assert (-(picked * valid).sum() / valid.size) != pytest.approx(reference, rel=1e-3)


def test_segmentation_bn_follows_tf(voc):
    _, model = voc
    backbone, head = norm_layers(model.backbone), norm_layers(model.decode_head)
    assert backbone and head
    # TF-slim MobileNet training_scope: epsilon 1e-3, decay 0.997; DeepLab's head: epsilon 1e-5, decay 0.9997
    assert all(m.eps == 1e-3 and m.momentum == pytest.approx(0.003) for m in backbone)
    assert all(m.eps == 1e-5 and m.momentum == pytest.approx(0.0003) for m in head)


def test_segmentation_lr_and_decay_multipliers_follow_tf(voc):
    cfg, model = voc
    optimizer = build_optim_wrapper(model, cfg.optim_wrapper).optimizer
    base_lr, decay = 0.007, 4e-5  # TF base_learning_rate, weight_decay
    groups = {id(p): g for g in optimizer.param_groups for p in g['params']}
    classifier = model.decode_head.conv_seg
    assert groups[id(classifier.bias)]['lr'] == pytest.approx(2 * base_lr)  # TF: 'biases' learn x2
    assert groups[id(classifier.bias)]['weight_decay'] == 0
    assert groups[id(classifier.weight)]['lr'] == pytest.approx(base_lr)
    assert groups[id(classifier.weight)]['weight_decay'] == pytest.approx(decay)
    for name, module in model.named_modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            for p in (module.weight, module.bias):  # TF 'gamma'/'beta': x1, not decayed
                assert groups[id(p)]['lr'] == pytest.approx(base_lr) and groups[id(p)]['weight_decay'] == 0, name
        elif isinstance(module, nn.Conv2d) and module.groups == module.in_channels and module.groups > 1:
            assert groups[id(module.weight)]['weight_decay'] == 0, name  # TF-slim regularize_depthwise=False
        elif isinstance(module, nn.Conv2d):
            assert groups[id(module.weight)]['weight_decay'] == pytest.approx(decay), name


def test_segmentation_upsamples_with_align_corners(voc):
    _, model = voc
    assert model.decode_head.align_corners is True  # TF DeepLab resizes with align_corners=True


@pytest.fixture(scope='module')
def ssd_tf():
    cfg = Config.fromfile(SSD_TF)
    return cfg, build(cfg, 'mmdet')


def test_ssdlite_tf_recipe(ssd_tf):
    from mmmnv2.engine import RMSpropTF
    from mmmnv2.models.losses import TFSigmoidClassificationLoss
    from mmmnv2.models.task_modules import TFHardExampleMiner
    cfg, model = ssd_tf
    layers = norm_layers(model)
    assert layers and all(m.eps == 1e-3 and m.momentum == pytest.approx(0.0003) for m in layers)  # decay 0.9997
    head = model.bbox_head
    assert isinstance(head.loss_cls, TFSigmoidClassificationLoss)
    miner = head.hard_example_miner
    assert isinstance(miner, TFHardExampleMiner)
    assert (miner.num_hard_examples, miner.iou_threshold, miner.loss_type, miner.max_negatives_per_positive,
            miner.min_negatives_per_image) == (3000, 0.99, 'classification', 3, 3)
    # predictor convs: truncated normal, stddev 0.03, cut at 2 standard deviations
    weights = torch.cat([m.weight.detach().flatten() for m in head.modules() if isinstance(m, nn.Conv2d)])
    assert float(weights.abs().max()) <= 0.06 and float(weights.std()) == pytest.approx(0.03 * 0.88, rel=0.05)
    optimizer = build_optim_wrapper(model, cfg.optim_wrapper).optimizer
    assert isinstance(optimizer, RMSpropTF)
    assert {k: optimizer.defaults[k] for k in ('lr', 'momentum', 'decay', 'eps', 'weight_decay')} == dict(
        lr=0.004, momentum=0.9, decay=0.9, eps=1.0, weight_decay=4e-5)
    assert cfg.train_dataloader.batch_size == 24 and cfg.train_cfg.max_iters == 200_000
    assert any(t['type'] == 'mmmnv2.SSDRandomCrop' for t in cfg.train_dataloader.dataset.pipeline)
    test_cfg = cfg.model.test_cfg  # TF post_processing
    assert (test_cfg.score_thr, test_cfg.nms.iou_threshold, test_cfg.max_per_img) == (1e-8, 0.6, 100)


def test_ssdlite_sgd_config_keeps_mmdetection_recipe():
    cfg = Config.fromfile(SSD_SGD)
    head = cfg.model.bbox_head
    assert head.loss_cls == dict(type='CrossEntropyLoss', use_sigmoid=False) and head.hard_example_miner is None
    assert cfg.optim_wrapper.optimizer.type == 'SGD'
    assert any(t['type'] == 'MinIoURandomCrop' for t in cfg.train_dataloader.dataset.dataset.pipeline)
