# COCO 2017 in MMDetection's layout under data/coco/ (MMDetection's coco_detection base), evaluated as both COCO
# SSDLite configs evaluate it: each image resized to the model's square input (TF fixed_shape_resizer), batches of
# 8, mmmnv2.StrictCocoDataset refusing annotation files whose categories do not match. The input size is the model
# base's, so this base builds on it; the leaf configs set the training data.
_base_ = [
    '../models/ssdlite_mobilenetv2.py',
    'mmdet::_base_/datasets/coco_detection.py',
]
test_pipeline = [
    dict(type='LoadImageFromFile', backend_args={{_base_.backend_args}}),
    dict(type='Resize', scale=({{_base_.input_size}}, {{_base_.input_size}}), keep_ratio=False),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PackDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]
val_dataloader = dict(batch_size=8, dataset=dict(type='mmmnv2.StrictCocoDataset', pipeline=test_pipeline))
test_dataloader = val_dataloader
