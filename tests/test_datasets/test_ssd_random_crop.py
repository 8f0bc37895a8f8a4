"""``mmmnv2.SSDRandomCrop`` obeys TF's ``ssd_random_crop`` constraints over many draws.

The constraints are TF's (``object_detection/core/preprocessor.py`` ``ssd_random_crop`` / ``random_crop_image``,
``tf.image.sample_distorted_bounding_box``, ``box_list_ops.prune_non_overlapping_boxes``), checked here with their own
arithmetic: one of 7 operations drawn uniformly; the image kept with probability 0.15; otherwise a crop with area
0.1..1 of the image and width / height 0.5..2 that covers at least min_object_covered of some box's area; boxes
kept exactly when they are not entirely outside the crop and keep at least overlap_thresh of their area in it,
shifted into the crop and clipped to it.
"""
import numpy as np
import pytest
import torch
from mmdet.structures.bbox import HorizontalBoxes

from mmmnv2.datasets.transforms import SSDRandomCrop

MIN_COVERED = (0.0, 0.1, 0.3, 0.5, 0.7, 0.9, 1.0)
OVERLAP = (0.0, 0.1, 0.3, 0.5, 0.7, 0.9, 1.0)
H, W = 200, 300
BOXES = np.array([[10., 20., 60., 90.], [100., 50., 280., 190.], [200., 5., 230., 30.], [150., 100., 152., 101.]])
DRAWS = 3000


def fraction_inside(box, window):
    x, y, w, h = window
    iw = max(0.0, min(box[2], x + w) - max(box[0], x))
    ih = max(0.0, min(box[3], y + h) - max(box[1], y))
    return iw * ih / ((box[2] - box[0]) * (box[3] - box[1]))


@pytest.fixture(scope='module')
def draws():
    np.random.seed(0)
    image = np.random.randint(0, 255, (H, W, 3), dtype=np.uint8)
    transform = SSDRandomCrop()
    out = []
    for _ in range(DRAWS):
        results = transform(dict(img=image.copy(), img_shape=(H, W), gt_bboxes=HorizontalBoxes(torch.tensor(BOXES)),
                                 gt_bboxes_labels=np.arange(len(BOXES)), gt_ignore_flags=np.zeros(len(BOXES), bool)))
        out.append(results)
    return image, out


def test_operations_are_drawn_uniformly_and_the_image_kept_with_probability_0_15(draws):
    _, results = draws
    kept = [r['crop_operation'] is None for r in results]
    assert abs(np.mean(kept) - 0.15) < 4 * np.sqrt(0.15 * 0.85 / DRAWS)
    operations = np.bincount([r['crop_operation'] for r in results if r['crop_operation'] is not None], minlength=7)
    expected = operations.sum() / 7
    assert len(operations) == 7 and np.all(np.abs(operations - expected) < 4 * np.sqrt(expected))


def test_every_crop_obeys_tf_constraints(draws):
    image, results = draws
    whole_image_crops = 0
    for r in results:
        x, y, w, h = r['crop_window']
        np.testing.assert_array_equal(r['img'], image[y:y + h, x:x + w])
        if r['crop_operation'] is None:
            np.testing.assert_allclose(r['gt_bboxes'].numpy(), BOXES)
            continue
        operation = r['crop_operation']
        whole_image_crops += (x, y, w, h) == (0, 0, W, H)  # TF's fall-back after 100 failed attempts
        assert 0.1 * W * H <= w * h <= W * H
        assert 0.5 - 1.0 / h <= w / h <= 2.0 + 1.0 / h  # width = round(height * ratio)
        # covers min_object_covered of some box of at least one pixel of area
        assert any(fraction_inside(b, (x, y, w, h)) >= MIN_COVERED[operation] for b in BOXES
                   if (b[2] - b[0]) * (b[3] - b[1]) >= 1)
        expected = []
        for box in BOXES:
            outside = box[1] >= y + h or box[0] >= x + w or box[3] <= y or box[2] <= x
            if not outside and fraction_inside(box, (x, y, w, h)) >= OVERLAP[operation]:
                expected.append(np.clip(box - [x, y, x, y], 0, [w, h, w, h]))
        np.testing.assert_allclose(r['gt_bboxes'].numpy().reshape(-1, 4), np.array(expected).reshape(-1, 4),
                                   atol=1e-4)
        assert len(r['gt_bboxes_labels']) == len(r['gt_ignore_flags']) == len(expected)
    assert whole_image_crops < 0.1 * DRAWS


def test_crops_spread_over_the_allowed_sizes(draws):
    _, results = draws
    cropped = [r['crop_window'] for r in results if r['crop_operation'] is not None]
    areas = np.array([w * h / (W * H) for _, _, w, h in cropped])
    ratios = np.array([w / h for _, _, w, h in cropped])
    assert areas.min() < 0.15 and areas.max() > 0.9
    assert ratios.min() < 0.6 and ratios.max() > 1.8


@pytest.mark.parametrize('kwargs', [dict(min_object_covered=(0.1,), overlap_thresh=(0.1, 0.3)),
                                    dict(area_range=(0.1, 1.5)), dict(random_coef=2.0)])
def test_bad_arguments_are_refused(kwargs):
    with pytest.raises(ValueError):
        SSDRandomCrop(**kwargs)
