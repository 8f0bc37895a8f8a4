"""mmmnv2.visualization: one layout for both tasks (titled panels, legend), a transparent segmentation background,
names kept inside the frame; on the trained toy models, pictures no darker than their images.

The expected pixels are written from what the picture must show (the image itself where nothing is drawn, a known
box), not taken from the drawing code.
"""
import os.path as osp

import cv2
import numpy as np
import pytest
import torch
from mmdet.structures import DetDataSample
from mmengine.structures import InstanceData, PixelData
from mmseg.structures import SegDataSample
from toy_runs import DET_CONFIG, SEG_CONFIG, SEG_MAX_ITERS, det_data_options, seg_data_options

from mmmnv2.visualization import draw_sample, save_dataset_pictures
from mmmnv2.visualization.pictures import TITLE_HEIGHT

SEG_CLASSES = ('background', 'circle', 'square')
SEG_PALETTE = [(0, 0, 0), (128, 0, 0), (0, 128, 0)]
DET_CLASSES = ('circle', 'square')
DET_PALETTE = [(220, 20, 60), (0, 128, 255)]


def textured_image(size=400, seed=0) -> np.ndarray:
    """A mid-grey image with noise, large enough (>= 384) not to be enlarged."""
    rng = np.random.default_rng(seed)
    return np.clip(rng.normal(150, 30, (size, size, 3)), 0, 255).astype(np.uint8)


def seg_sample(label_map: np.ndarray, gt: bool = True) -> SegDataSample:
    sample = SegDataSample()
    sample.pred_sem_seg = PixelData(data=torch.from_numpy(label_map)[None])
    if gt:
        sample.gt_sem_seg = PixelData(data=torch.from_numpy(label_map)[None])
    return sample


def panels(picture: np.ndarray, size: int, count: int):
    """The image areas of the ``count`` side-by-side panels (below their title bars), 8-pixel gaps between."""
    return [picture[TITLE_HEIGHT:TITLE_HEIGHT + size, i * (size + 8):i * (size + 8) + size] for i in range(count)]


def test_segmentation_background_is_transparent_and_classes_tinted():
    image = textured_image()
    label_map = np.zeros((400, 400), np.int64)
    label_map[100:200, 100:200] = 1
    label_map[250:350, 50:150] = 255  # ignore index: drawn as nothing
    picture = draw_sample(image, seg_sample(label_map), SEG_CLASSES, SEG_PALETTE)
    assert picture.shape[1] == 2 * 400 + 8 and picture.shape[0] > TITLE_HEIGHT + 400  # two panels + legend below
    for panel in panels(picture, 400, 2):
        far = np.ones((400, 400), bool)
        far[90:210, 90:210] = False  # away from the object, its outline and its name
        np.testing.assert_array_equal(panel[far], image[far])  # background and ignored pixels: the image itself
        inside = panel[105:138, 105:195].astype(float)  # object interior, above the name tag at its centre
        expected = 0.5 * image[105:138, 105:195] + 0.5 * np.array(SEG_PALETTE[1])
        assert np.abs(inside - expected).max() <= 1.0
    # titles say which panel is which: white bars with dark text over each panel
    bar = picture[:TITLE_HEIGHT, :400]
    assert (bar == 255).mean() > 0.8 and (bar < 100).any()


def test_detection_panels_boxes_threshold_and_names_inside_frame():
    image = textured_image()
    sample = DetDataSample()
    # the kept box is 60 pixels wide at the right edge: its name tag ("square 0.90", ~90 pixels) cannot start at x1
    sample.gt_instances = InstanceData(bboxes=torch.tensor([[340., 50., 399., 150.]]), labels=torch.tensor([1]))
    sample.pred_instances = InstanceData(bboxes=torch.tensor([[340., 50., 399., 150.], [10., 10., 100., 100.]]),
                                         labels=torch.tensor([1, 0]), scores=torch.tensor([0.9, 0.1]))
    picture = draw_sample(image, sample, DET_CLASSES, DET_PALETTE, score_thr=0.3)
    gt, pred = panels(picture, 400, 2)
    blue = np.all(pred == DET_PALETTE[1], axis=-1)
    assert blue[100, 339:342].any()  # the left edge of the kept box, in its class's colour
    np.testing.assert_array_equal(pred[20:90, 20:90], image[20:90, 20:90])  # the 0.1 box is not drawn
    assert not np.all(pred == DET_PALETTE[0], axis=-1).any()
    # the name tag is moved left to fit the frame
    (text_width, _), _ = cv2.getTextSize('square 0.90', cv2.FONT_HERSHEY_SIMPLEX, 0.5, 1)
    # rows of the tag between the box's top edge (y 49-51) and the letters: the whole tag (text width + 4) inside the
    # frame, ending at its right edge, and nothing of the tag's colour just left of it
    tag_left = 400 - text_width - 4
    assert blue[52:55, tag_left:400].all() and not blue[52:55, tag_left - 1].any()
    assert np.all(gt == DET_PALETTE[1], axis=-1)[100, 339:342].any()


def test_detection_without_ground_truth_has_one_panel_and_small_images_are_enlarged():
    image = textured_image(size=128)
    sample = DetDataSample()
    sample.pred_instances = InstanceData(bboxes=torch.zeros(0, 4), labels=torch.zeros(0, dtype=torch.long),
                                         scores=torch.zeros(0))
    picture = draw_sample(image, sample, DET_CLASSES, DET_PALETTE)
    assert picture.shape[1] == 384  # 128 pixels enlarged 3x: names stay legible
    with pytest.raises(ValueError, match='RGB uint8'):
        draw_sample(image[..., 0], sample, DET_CLASSES, DET_PALETTE)


def dark_fraction(image: np.ndarray) -> float:
    return float((image.max(axis=-1) < 40).mean())


def check_pictures_not_darker_than_images(config: str, checkpoint: str, options: list, images: str, out: str) -> None:
    """Each picture's panels are about as bright as the image they show (the hosts' segmentation overlay was not)."""
    from mmengine.config import Config

    from mmmnv2.apis import init_model

    cfg = Config.fromfile(config)
    cfg.merge_from_dict(dict(option.split('=', 1) for option in options))
    paths = save_dataset_pictures(init_model(cfg, checkpoint, 'cpu'), out, max_images=6)
    assert len(paths) == 6
    for path in paths:
        picture = cv2.imread(path)[..., ::-1]
        source = cv2.imread(osp.join(images, osp.basename(path)))[..., ::-1]
        size = picture.shape[1] // 2 - 4  # two enlarged panels, an 8-pixel gap
        big = cv2.resize(source, (size, size))
        for panel in panels(picture, size, 2):
            assert dark_fraction(panel) <= dark_fraction(big) + 0.05, path
            assert panel.mean() >= 0.6 * big.mean(), path  # a black background overlay gives ~0.2-0.3


def test_pictures_of_the_trained_toy_detector_are_not_mostly_black(trained_detector, det_toy_data, tmp_path):
    check_pictures_not_darker_than_images(DET_CONFIG, osp.join(trained_detector, 'iter_600.pth'),
                                          det_data_options(det_toy_data), osp.join(det_toy_data, 'val'), str(tmp_path))


def test_pictures_of_the_trained_toy_segmentor_are_not_mostly_black(trained_segmentor, seg_toy_data, tmp_path):
    check_pictures_not_darker_than_images(SEG_CONFIG, osp.join(trained_segmentor, f'iter_{SEG_MAX_ITERS}.pth'),
                                          seg_data_options(seg_toy_data), osp.join(seg_toy_data, 'JPEGImages'),
                                          str(tmp_path))
