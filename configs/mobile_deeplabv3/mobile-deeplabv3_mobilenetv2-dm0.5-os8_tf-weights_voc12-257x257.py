# Google's float Mobile DeepLabv3 with depth multiplier 0.5 at output stride 8, as released for mobile
# (deeplabv3_257_mv_gpu.tflite: TF DeepLab's mobilenetv2_dm05_coco_voc_trainaug, 70.19 mIoU on VOC 2012 val at
# 513), evaluated through MMSegmentation with the weights converted by tools/model_converters/tf_to_openmmlab.py.
# Its graph is fixed at 257x257: images are resized to fit 257x257 and padded to it. TF-exact inference: widths
# rounded with divisible_by=1, TF's BN eps, logits upsampled with align_corners=True (deeplab/model.py).
_base_ = [
    '../_base_/models/mobile_deeplabv3_mobilenetv2.py',
    '../_base_/datasets/pascal_voc12_aug_tf-deeplab.py',
    'mmseg::_base_/default_runtime.py',
    '../_base_/schedules/schedule_30k_tf-deeplab.py',
]
size = (257, 257)
backbone_norm_cfg = dict(type='BN', eps=1e-3, requires_grad=True)  # TF-slim batch_norm epsilon
head_norm_cfg = dict(type='BN', eps=1e-5, requires_grad=True)  # TF DeepLab model.py: batch_norm_epsilon 1e-5
model = dict(
    # TF weights: pixels mapped to [-1, 1], as TF DeepLab's preprocessing (the model base's ImageNet mean/std
    # belongs to OpenMMLab's weights); pads with 0 after [-1, 1] scaling: TF's mean-pixel padding
    data_preprocessor=dict(size=size, mean=[127.5, 127.5, 127.5], std=[127.5, 127.5, 127.5]),
    backbone=dict(
        widen_factor=0.5,
        divisible_by=1,  # TF DeepLab: divisible_by=1, min_depth=1 for depth multipliers other than 1
        output_stride=8,
        same_padding=True,  # TF 'SAME' (the same as symmetric at 257's odd sizes; right at any even size)
        norm_cfg=backbone_norm_cfg,
        init_cfg=None),  # weights come from the converted checkpoint
    decode_head=dict(norm_cfg=head_norm_cfg, align_corners=True))  # channels and stride: the backbone's
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=size, keep_ratio=True),  # the longer side to 257, as the graph's input
    dict(type='LoadAnnotations'),
    dict(type='mmmnv2.CheckSegMap', num_classes=21, ignore_index=255),
    dict(type='PackSegInputs'),
]
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
