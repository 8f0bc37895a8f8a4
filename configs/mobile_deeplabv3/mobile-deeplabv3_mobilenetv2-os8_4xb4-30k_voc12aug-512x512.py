# Paper Table 7, "MNet V2*, OS 8, no ASPP, MF": 77.33 mIoU on VOC 2012 val, 2.11M params, 152.6B MAdds.
# As in TF DeepLab, the network trained at OS 16 is evaluated at OS 8 (the weights are the same; only the atrous
# rates change), with MF = scales 0.5:0.25:1.75 and left-right flip:
#   python tools/test.py <this config> <checkpoint of the -os16 config> --tta
# Training with this config also works, at OS 8 (about 3.2x the cost of OS 16; not the paper's recipe).
# Departure: ImageNet initialisation instead of COCO pre-training.
_base_ = [
    '../_base_/models/mobile_deeplabv3_mobilenetv2.py',
    '../_base_/datasets/pascal_voc12_aug_tf-deeplab.py',
    'mmseg::_base_/default_runtime.py',
    '../_base_/schedules/schedule_30k_tf-deeplab.py',
]
model = dict(backbone=dict(output_stride=8))  # TF eval output_stride 8; the head's atrous rates follow
tta_model = dict(type='SegTTAModel')  # paper "MF": softmax averaged over the scales and flips of tta_pipeline
