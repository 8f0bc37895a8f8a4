# The paper's Table 7 model with Google's weights: MobileNetV2 1.0, output stride 16, no ASPP, evaluated as TF DeepLab
# evaluates it (images padded to 513x513 with the mean pixel, whole-image inference) through MMSegmentation. Weights
# converted by tools/model_converters/tf_to_openmmlab.py from TF DeepLab's float checkpoint
# deeplabv3_mnv2_pascal_train_aug (75.32 mIoU on VOC 2012 val, the paper's number) or its 8-bit
# quantization-aware version deeplabv3_mnv2_pascal_quant.tflite (74.26). TF-exact inference: TF's BN eps, logits
# upsampled with align_corners=True (deeplab/model.py).
_base_ = [
    '../_base_/models/mobile_deeplabv3_mobilenetv2.py',
    '../_base_/datasets/pascal_voc12_aug_tf-deeplab.py',
    'mmseg::_base_/default_runtime.py',
    '../_base_/schedules/schedule_30k_tf-deeplab.py',
]
backbone_norm_cfg = dict(type='BN', eps=1e-3, requires_grad=True)  # TF-slim batch_norm epsilon
head_norm_cfg = dict(type='BN', eps=1e-5, requires_grad=True)  # TF DeepLab model.py: batch_norm_epsilon 1e-5
model = dict(
    # TF weights: pixels mapped to [-1, 1], as TF DeepLab's preprocessing (the model base's ImageNet mean/std
    # belongs to OpenMMLab's weights); TF eval_crop_size 513x513, padded with the mean pixel (0 here)
    data_preprocessor=dict(size=(513, 513), mean=[127.5, 127.5, 127.5], std=[127.5, 127.5, 127.5]),
    backbone=dict(
        divisible_by=8,  # TF DeepLab at depth multiplier 1: TF-slim's rounding (1 only for other multipliers)
        same_padding=True,  # TF 'SAME' (the same as symmetric at 513's odd sizes; right at any even size)
        norm_cfg=backbone_norm_cfg,
        init_cfg=None),  # weights come from the converted checkpoint
    decode_head=dict(norm_cfg=head_norm_cfg, align_corners=True))
