"""The TF Object Detection API's SSDLite (``ssdlite_mobilenet_v2_coco``, the paper's Table 6 model) -> mmmnv2.SSDLite.

TF's names (``models/research/object_detection``: ``ssd_mobilenet_v2_feature_extractor.py``,
``feature_map_generators.py``, ``convolutional_box_predictor.py``) and ours:

- the backbone under ``FeatureExtractor/MobilenetV2`` (TF-slim's names, see ``backbone_scopes``);
- extra layer ``i`` (0..3; TF counts them from 2) in ``neck.extra_layers.i``: the 1x1 conv to half the depth
  ``layer_19_1_Conv2d_{i+2}_1x1_{depth/2}``, the stride-2 depthwise conv
  ``layer_19_2_Conv2d_{i+2}_3x3_s2_{depth}_depthwise`` and the 1x1 conv to the depth
  ``layer_19_2_Conv2d_{i+2}_3x3_s2_{depth}``;
- predictor ``k`` (0..5) ``BoxPredictor_k``: ``ClassPredictor_depthwise`` / ``BoxEncodingPredictor_depthwise`` (3x3
  depthwise + BN + ReLU6) in ``bbox_head.cls_convs.k.0`` / ``reg_convs.k.0``, the 1x1 convs with bias
  ``ClassPredictor`` / ``BoxEncodingPredictor`` in ``cls_convs.k.1`` / ``reg_convs.k.1``.

The last two differ in their outputs' meaning, per anchor: TF's box encodings are (ty, tx, th, tw), MMDetection's
deltas (dx, dy, dw, dh) (same scales, 10, 10, 5, 5 in TF = stds 0.1, 0.1, 0.2, 0.2); TF's 91 class logits are the
background (column 0) and COCO's category ids 1..90, ten of which (12, 26, ...) have no category, where our head has
80 classes and the background last (``TFSigmoidClassificationLoss``'s layout). So each of our output channels takes
TF's channel of its coordinate, or of its class's COCO id; the ten columns without a category are left out (the
official model never scores them: no training box has their ids) and named in the checkpoint's meta, with the COCO
id of each class. Everything else is strict as for the other TF files: every variable used once, shapes checked.
"""
from typing import Dict, List, Sequence, Tuple

from torch import Tensor, nn

from .tf_mobilenet_v2 import TFTarget, backbone_targets, convert_tf_variables
from .tf_sources import ConversionError, TFVariables

SSD_ROOT = 'FeatureExtractor/MobilenetV2'
# COCO 2017's category ids of its 80 classes, in the order of MMDetection's CocoDataset classes (sorted by id)
COCO_CATEGORY_IDS = (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 27, 28,
                     31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 46, 47, 48, 49, 50, 51, 52, 53, 54, 55,
                     56, 57, 58, 59, 60, 61, 62, 63, 64, 65, 67, 70, 72, 73, 74, 75, 76, 77, 78, 79, 80, 81, 82, 84,
                     85, 86, 87, 88, 89, 90)
NUM_TF_CLASS_COLUMNS = 91  # background + COCO ids 1..90
TF_BOX_COLUMNS = (1, 0, 3, 2)  # our (dx, dy, dw, dh) <- TF's (ty, tx, th, tw)


def is_tf_ssd(variables: TFVariables) -> bool:
    """Whether the file holds the Object Detection API's SSD box predictors."""
    return any(key.startswith('BoxPredictor_0/') for key in variables.arrays)


def ssd_targets(model: nn.Module, category_ids: Sequence[int] = COCO_CATEGORY_IDS) -> List[TFTarget]:
    """Every conv of an SSDLite detector with its TF scope; ``category_ids``: TF's class column of each class."""
    head, neck = model.bbox_head, model.neck
    if len(category_ids) != head.num_classes:
        raise ConversionError(f'the model has {head.num_classes} classes, the class map {len(category_ids)}')
    if head.cls_out_channels != head.num_classes + 1:
        raise ConversionError('the model\'s head has no background output; TF\'s SSD scores classes and background '
                              'with sigmoids: loss_cls=dict(type=\'mmmnv2.TFSigmoidClassificationLoss\')')
    targets = backbone_targets(model, SSD_ROOT)
    for i, layer in enumerate(getattr(neck, 'extra_layers', ())):
        if len(layer) != 2 or not hasattr(layer[1], 'depthwise_conv'):
            raise ConversionError(f'neck.extra_layers.{i} is not a 1x1 conv + depthwise separable conv (SSDLite)')
        half, depth = layer[0].conv.out_channels, layer[1].pointwise_conv.conv.out_channels
        name = f'{SSD_ROOT}/layer_19_2_Conv2d_{i + 2}_3x3_s2_{depth}'
        targets += [TFTarget(f'neck.extra_layers.{i}.0', f'{SSD_ROOT}/layer_19_1_Conv2d_{i + 2}_1x1_{half}', 'conv_bn'),
                    TFTarget(f'neck.extra_layers.{i}.1.depthwise_conv', f'{name}_depthwise', 'conv_bn'),
                    TFTarget(f'neck.extra_layers.{i}.1.pointwise_conv', name, 'conv_bn')]
    class_columns = (*category_ids, 0)  # background last in our head, first in TF's
    for level, anchors in enumerate(head.num_base_priors):
        scope = f'BoxPredictor_{level}'
        classes = tuple(anchor * NUM_TF_CLASS_COLUMNS + column for anchor in range(anchors) for column in class_columns)
        boxes = tuple(anchor * 4 + column for anchor in range(anchors) for column in TF_BOX_COLUMNS)
        targets += [
            TFTarget(f'bbox_head.cls_convs.{level}.0', f'{scope}/ClassPredictor_depthwise', 'conv_bn'),
            TFTarget(f'bbox_head.cls_convs.{level}.1', f'{scope}/ClassPredictor', 'conv_bias', classes,
                     anchors * NUM_TF_CLASS_COLUMNS),
            TFTarget(f'bbox_head.reg_convs.{level}.0', f'{scope}/BoxEncodingPredictor_depthwise', 'conv_bn'),
            TFTarget(f'bbox_head.reg_convs.{level}.1', f'{scope}/BoxEncodingPredictor', 'conv_bias', boxes,
                     anchors * 4)]
    return targets


def convert_tf_ssd(variables: TFVariables, model: nn.Module,
                   category_ids: Sequence[int] = COCO_CATEGORY_IDS) -> Tuple[Dict[str, Tensor], dict]:
    """The detector's state dict from TF SSD variables, and the class map for the checkpoint's meta."""
    state = convert_tf_variables(variables, model, targets=ssd_targets(model, category_ids))
    unused = sorted(set(range(1, NUM_TF_CLASS_COLUMNS)) - set(category_ids))
    return state, dict(tf_class_ids=list(category_ids), tf_class_ids_left_out=unused,
                       tf_box_order='TF (ty, tx, th, tw) -> (dx, dy, dw, dh)')


__all__ = ['COCO_CATEGORY_IDS', 'convert_tf_ssd', 'is_tf_ssd', 'ssd_targets']
