# Paper Table 7, "MNet V2*, OS 8, ASPP, MF": 78.42 mIoU on VOC 2012 val, 4.52M params, 387B MAdds.
# As in TF DeepLab, the network trained at OS 16 is evaluated at OS 8 (same weights; atrous rates doubled to
# 12, 24, 36), with MF = scales 0.5:0.25:1.75 and left-right flip:
#   python tools/test.py <this config> <checkpoint of the -aspp...-os16 config> --tta
# Training with this config also works, at OS 8 (not the paper's recipe).
# Departure: ImageNet initialisation instead of COCO pre-training.
_base_ = [
    '../_base_/models/mobile_deeplabv3_mobilenetv2.py',
    '../_base_/datasets/pascal_voc12_aug_tf-deeplab.py',
    'mmseg::_base_/default_runtime.py',
    '../_base_/schedules/schedule_30k_tf-deeplab.py',
]
model = dict(
    backbone=dict(output_stride=8),  # TF eval output_stride 8
    decode_head=dict(with_aspp=True))  # paper: ASPP rates doubled at OS 8 (the head takes the backbone's stride)
tta_model = dict(type='SegTTAModel')  # paper "MF": softmax averaged over the scales and flips of tta_pipeline
