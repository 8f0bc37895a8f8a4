"""SSDLite's TF loss (sigmoid classification + hard example miner + normalisation) against TF's algorithm.

The reference below is written in numpy from TF's documented algorithm (``object_detection/core/losses.py``:
``WeightedSigmoidClassificationLoss``, ``WeightedSmoothL1LocalizationLoss``, ``HardExampleMiner``; ``ssd_meta_arch.py``
``normalize_loss_by_num_matches``; the ``faster_rcnn_box_coder`` decoding): it shares no code with the head.
"""
import numpy as np
import pytest
import torch
from mmengine.registry import init_default_scope

from mmmnv2.models.dense_heads import SSDLiteHead

NUM_CLASSES = 3
STDS = (0.1, 0.1, 0.2, 0.2)  # TF box coder scales 10, 10, 5, 5


def sigmoid_ce(logits, targets):  # tf.nn.sigmoid_cross_entropy_with_logits
    return np.maximum(logits, 0) - logits * targets + np.log1p(np.exp(-np.abs(logits)))


def huber(diff, delta=1.0):
    a = np.abs(diff)
    return np.where(a <= delta, 0.5 * a * a, delta * (a - 0.5 * delta))


def decode(anchors, deltas):  # TF faster_rcnn_box_coder, in x1y1x2y2 pixels
    wa, ha = anchors[:, 2] - anchors[:, 0], anchors[:, 3] - anchors[:, 1]
    xa, ya = anchors[:, 0] + wa / 2, anchors[:, 1] + ha / 2
    tx, ty, tw, th = (deltas[:, i] * STDS[i] for i in range(4))
    w, h = np.exp(tw) * wa, np.exp(th) * ha
    x, y = tx * wa + xa, ty * ha + ya
    return np.stack([x - w / 2, y - h / 2, x + w / 2, y + h / 2], 1)


def iou(a, b):
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union


def tf_mined_losses(logits, deltas, anchors, labels, targets, num_hard=3000, iou_thr=0.99, neg_per_pos=3, min_neg=3):
    """(sum of mined classification losses, sum of mined localisation losses) of one image, as TF computes them."""
    positive = labels < NUM_CLASSES
    one_hot = np.eye(NUM_CLASSES + 1)[labels]
    cls = sigmoid_ce(logits, one_hot).sum(1)
    loc = huber(deltas - targets).sum(1) * positive
    boxes = decode(anchors, deltas)
    selected = []
    for i in np.argsort(-cls, kind='stable'):  # tf.image.non_max_suppression, scores = classification losses
        if len(selected) == num_hard:
            break
        if all(iou(boxes[i], boxes[j]) <= iou_thr for j in selected):
            selected.append(i)
    selected = np.array(selected)
    pos, neg = positive[selected], ~positive[selected]
    max_neg = max(min_neg, int(neg_per_pos * pos.sum()))
    keep = selected[pos | (np.cumsum(neg) <= max_neg)]
    return cls[keep].sum(), loc[keep].sum(), int(positive.sum())


def random_image(rng, num_anchors, num_positive):
    centres = rng.uniform(20, 300, (num_anchors, 2))
    sizes = rng.uniform(10, 80, (num_anchors, 2))
    anchors = np.concatenate([centres - sizes / 2, centres + sizes / 2], 1)
    anchors[1] = anchors[0]  # two identical anchors with identical predictions: IoU 1 > 0.99, NMS drops one
    deltas = rng.normal(0, 0.5, (num_anchors, 4))
    deltas[1] = deltas[0]
    logits = rng.normal(0, 2, (num_anchors, NUM_CLASSES + 1))
    logits[0] = logits[1] = [6.0, 6.0, 6.0, -6.0]  # the two duplicates: the hardest negatives of the image
    labels = np.full(num_anchors, NUM_CLASSES)
    labels[rng.choice(np.arange(2, num_anchors), num_positive, replace=False)] = rng.integers(0, NUM_CLASSES,
                                                                                          num_positive)
    targets = rng.normal(0, 1, (num_anchors, 4))
    return logits, deltas, anchors, labels, targets


def build_head(**kwargs):
    init_default_scope('mmdet')
    train_cfg = dict(assigner=dict(type='MaxIoUAssigner', pos_iou_thr=0.5, neg_iou_thr=0.5, min_pos_iou=0.),
                     sampler=dict(type='PseudoSampler'), smoothl1_beta=1.0, neg_pos_ratio=3)
    return SSDLiteHead(num_classes=NUM_CLASSES, in_channels=(576, 1280, 512, 256, 256, 128), train_cfg=train_cfg,
                       **kwargs)


TF_HEAD = dict(loss_cls=dict(type='mmmnv2.TFSigmoidClassificationLoss'),
               hard_example_miner=dict(type='mmmnv2.TFHardExampleMiner'))


def head_losses(head, images, total_positives):
    cls_total, loc_total = 0.0, 0.0
    for logits, deltas, anchors, labels, targets in images:
        positive = labels < NUM_CLASSES
        cls, loc = head.loss_by_feat_single(
            torch.tensor(logits), torch.tensor(deltas), torch.tensor(anchors), torch.tensor(labels),
            torch.ones(len(labels), dtype=torch.float64), torch.tensor(targets),
            torch.tensor(np.repeat(positive[:, None], 4, 1), dtype=torch.float64), avg_factor=total_positives)
        cls_total += float(cls.sum())
        loc_total += float(loc)
    return cls_total, loc_total


@pytest.mark.parametrize('positives', [(4, 7), (0, 2), (0, 0)])
def test_tf_loss_equals_tf_algorithm(positives):
    rng = np.random.default_rng(sum(positives))
    images = [random_image(rng, 60, n) for n in positives]
    reference = [tf_mined_losses(*image) for image in images]
    total_positives = sum(r[2] for r in reference)
    normaliser = max(total_positives, 1)  # TF normalize_loss_by_num_matches, at least 1
    expected_cls = sum(r[0] for r in reference) / normaliser
    expected_loc = sum(r[1] for r in reference) / normaliser
    cls, loc = head_losses(build_head(**TF_HEAD), images, total_positives)
    assert cls == pytest.approx(expected_cls, rel=1e-9)
    assert loc == pytest.approx(expected_loc, rel=1e-9, abs=1e-12)


def test_the_reference_can_tell_the_recipes_apart():
    # MMDetection's softmax + top-k recipe gives another value on the same inputs: the test above can fail
    rng = np.random.default_rng(11)
    images = [random_image(rng, 60, n) for n in (4, 7)]
    reference = [tf_mined_losses(*image) for image in images]
    total = sum(r[2] for r in reference)
    mmdet_cls, _ = head_losses(build_head(), images, total)
    assert mmdet_cls != pytest.approx(sum(r[0] for r in reference) / total, rel=1e-3)


def test_sigmoid_scores_at_test_time():
    head = build_head(**TF_HEAD).eval()
    logits = torch.full((1, NUM_CLASSES + 1), -10.0)
    logits[0, 1], logits[0, NUM_CLASSES] = 2.0, 5.0  # a confident background would crush a softmax score
    scores = head.loss_cls.get_activation(logits)
    assert scores.shape == (1, NUM_CLASSES)
    assert float(scores[0, 1]) == pytest.approx(1 / (1 + np.exp(-2.0)))


def test_miner_refuses_bad_arguments():
    from mmmnv2.models.task_modules import TFHardExampleMiner
    with pytest.raises(ValueError, match='loss_type'):
        TFHardExampleMiner(loss_type='focal')
    with pytest.raises(ValueError, match='iou_threshold'):
        TFHardExampleMiner(iou_threshold=0)
