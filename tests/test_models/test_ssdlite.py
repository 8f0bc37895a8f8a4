"""SSDLite: the paper's numbers (Table 6), the TF anchor layout, and build-time channel checks."""
import copy
import math

import numpy as np
import pytest
import torch
from mmdet.registry import MODELS
from mmengine.config import Config
from mmengine.registry import init_default_scope

from mmmnv2.analysis import count_parameters, forward_macs
from mmmnv2.apis import init_model
from mmmnv2.models.task_modules import SSDLiteAnchorGenerator

COCO_CONFIG = 'configs/ssdlite/ssdlite_mobilenetv2_8xb24-600e_coco-320x320.py'


def build_detector(config: str = COCO_CONFIG):
    return init_model(config, device='cpu')  # initial weights, nothing downloaded: the structure is measured


@pytest.fixture(scope='module')
def coco_detector():
    return build_detector().eval()


def test_parameters_match_paper_table6(coco_detector):
    params = count_parameters(coco_detector)
    # Paper Table 6: 4.3M. An independent rebuild (80 classes + background, 3 anchors on the first map
    # and 6 elsewhere) has exactly 4,337,013.
    assert params == pytest.approx(4.30e6, rel=0.015)
    assert params == 4_337_013


def test_multiply_adds_match_paper_table6(coco_detector):
    macs = forward_macs(coco_detector, 320, 320)
    assert macs == pytest.approx(0.80e9, rel=0.05)  # paper Table 6: 0.8B
    assert macs == pytest.approx(0.789e9, rel=1e-3)  # an independent rebuild's conv multiply-accumulates


def test_six_maps_and_anchors_per_location(coco_detector):
    with torch.no_grad():
        feats = coco_detector.extract_feat(torch.zeros(1, 3, 320, 320))
    assert [f.shape[1] for f in feats] == [576, 1280, 512, 256, 256, 128]
    assert [f.shape[-1] for f in feats] == [20, 10, 5, 3, 2, 1]
    assert [f.shape[-2] for f in feats] == [20, 10, 5, 3, 2, 1]
    head = coco_detector.bbox_head
    assert head.prior_generator.num_base_priors == [3, 6, 6, 6, 6, 6]
    # The predictors are depthwise-separable: 3x3 depthwise (+BN+ReLU6), then a 1x1 conv with bias.
    for convs, per_anchor in ((head.cls_convs, 81), (head.reg_convs, 4)):
        for level, (branch, anchors) in enumerate(zip(convs, [3, 6, 6, 6, 6, 6])):
            depthwise, predictor = branch[0], branch[1]
            assert depthwise.conv.groups == depthwise.conv.in_channels == feats[level].shape[1]
            assert depthwise.conv.kernel_size == (3, 3) and depthwise.activate.__class__.__name__ == 'ReLU6'
            assert predictor.kernel_size == (1, 1) and predictor.bias is not None
            assert predictor.out_channels == anchors * per_anchor


def tf_tile_anchors(grid_size: int, scales, aspect_ratios) -> np.ndarray:
    """TF OD API ``grid_anchor_generator.tile_anchors`` for a square normalised grid, as (x1, y1, x2, y2)."""
    scales, aspect_ratios = np.asarray(scales, np.float64), np.asarray(aspect_ratios, np.float64)
    ratio_sqrts = np.sqrt(aspect_ratios)
    heights, widths = scales / ratio_sqrts, scales * ratio_sqrts
    stride = 1.0 / grid_size
    centers = np.arange(grid_size) * stride + 0.5 * stride
    x_centers, y_centers = np.meshgrid(centers, centers)
    widths_grid, x_grid = np.meshgrid(widths, x_centers)
    heights_grid, y_grid = np.meshgrid(heights, y_centers)
    cx, cy = x_grid.reshape(-1), y_grid.reshape(-1)
    w, h = widths_grid.reshape(-1), heights_grid.reshape(-1)
    return np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)


def test_first_two_levels_equal_tf_recipe_anchors():
    generator = SSDLiteAnchorGenerator(input_size=320)
    anchors = generator.grid_priors([(20, 20), (10, 10), (5, 5), (3, 3), (2, 2), (1, 1)], device='cpu')
    # TF create_ssd_anchors(num_layers=6, min_scale=0.2, max_scale=0.95, aspect_ratios=(1, 2, 1/2, 3, 1/3),
    # reduce_boxes_in_lowest_layer=True): layer 0 has (0.1, 1), (0.2, 2), (0.2, 1/2); layer 1 has scale 0.35 at the
    # five ratios plus sqrt(0.35 * 0.5) at ratio 1.
    expected = [
        tf_tile_anchors(20, [0.1, 0.2, 0.2], [1.0, 2.0, 0.5]),
        tf_tile_anchors(10, [0.35] * 5 + [math.sqrt(0.35 * 0.5)], [1.0, 2.0, 0.5, 3.0, 1.0 / 3, 1.0]),
    ]
    for level in range(2):
        np.testing.assert_allclose(anchors[level].numpy() / 320, expected[level], rtol=0, atol=1e-6)


def test_anchor_generator_rejects_other_map_sizes():
    generator = SSDLiteAnchorGenerator(input_size=320)
    with pytest.raises(ValueError, match='input_size'):
        generator.grid_priors([(16, 16), (8, 8), (4, 4), (2, 2), (1, 1), (1, 1)], device='cpu')


@pytest.mark.parametrize('overrides,numbers', [
    (dict(neck=dict(in_channels=(96, 1280))), ('96', '576')),  # MMDetection's own tap is the 96-channel stage
    (dict(bbox_head=dict(in_channels=(576, 1280, 512, 256, 256, 64))), ('64', '128')),
])
def test_channel_mismatch_fails_at_build_naming_both_numbers(overrides, numbers):
    init_default_scope('mmdet')
    cfg = copy.deepcopy(Config.fromfile(COCO_CONFIG).model)
    cfg.backbone.init_cfg = None
    for part, values in overrides.items():
        cfg[part].update(values)
    with pytest.raises(ValueError) as error:
        MODELS.build(cfg)
    for number in numbers:
        assert number in str(error.value)


def test_neck_and_head_take_their_channels_from_the_part_before(coco_detector):
    cfg = Config.fromfile(COCO_CONFIG).model
    assert 'in_channels' not in cfg.neck and 'in_channels' not in cfg.bbox_head  # stated once: by the backbone
    # Paper Sec. 6.2: layer_15's expansion (96 * 6 = 576) and layer_19 (1280), then the extra layers' depths.
    assert coco_detector.neck.in_channels == coco_detector.backbone.out_channels == (576, 1280)
    assert coco_detector.bbox_head.in_channels == coco_detector.neck.out_channels == (576, 1280, 512, 256, 256, 128)


def test_uncapped_predictions_equal_mmdetections_computation():
    """TF's post-processing settings (the TF-recipe config: no cap before NMS, 100 per image): the head's predictions
    on the best (anchor, class) pairs equal MMDetection's own computation over every pair. The score threshold is
    raised from TF's 1e-8 to 0.8, which leaves some 10,000 candidates of the 150,000 (MMDetection's computation takes
    seconds per image at 1e-8); the first round takes 100 pairs here (1000 by default), too few to keep 100 boxes, so
    the prefix grows."""
    from mmdet.models.dense_heads import SSDHead
    detector = build_detector('configs/ssdlite/ssdlite_mobilenetv2_1xb24-200k_coco-320x320.py').eval()
    head = detector.bbox_head
    generator = torch.Generator().manual_seed(0)
    maps = [torch.randn(2, channels, size, size, generator=generator)
            for channels, size in zip(head.in_channels, head.prior_generator.feature_sizes)]
    with torch.no_grad():
        cls_scores, bbox_preds = head(maps)
        cls_scores = [scores * 25 for scores in cls_scores]  # initial logits (std 0.04) spread over (0, 1)
        head.test_cfg.score_thr = 0.8
        candidates = sum(int((score.permute(0, 2, 3, 1).reshape(2, -1, 81)[..., :80].sigmoid() > 0.8).sum())
                         for score in cls_scores)
        assert 10_000 < candidates < 40_000
        metas = [dict(img_shape=(320, 320), scale_factor=(0.5, 0.8))] * 2
        rounds = []
        head.nms_prefix = 100
        post_process = head._bbox_post_process
        head._bbox_post_process = lambda results, *args: rounds.append(len(results)) or post_process(results, *args)
        ours = head.predict_by_feat(cls_scores, bbox_preds, batch_img_metas=metas, rescale=True)
        del head._bbox_post_process
        assert rounds[:2] == [100, 400]  # the first image's rounds
        original = head._predict_by_feat_single
        head._predict_by_feat_single = lambda *args, **kwargs: SSDHead._predict_by_feat_single(head, *args, **kwargs)
        theirs = head.predict_by_feat(cls_scores, bbox_preds, batch_img_metas=metas, rescale=True)
        head._predict_by_feat_single = original
    for our, their in zip(ours, theirs):
        assert len(our) == len(their) == 100
        assert torch.equal(our.labels, their.labels) and torch.equal(our.scores, their.scores)
        assert torch.allclose(our.bboxes, their.bboxes, atol=1e-4)
