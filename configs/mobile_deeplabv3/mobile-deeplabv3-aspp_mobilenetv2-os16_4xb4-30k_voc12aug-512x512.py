# Paper Table 7, "MNet V2*, OS 16, ASPP, single scale": 75.70 mIoU on VOC 2012 val, 4.52M params, 5.8B MAdds.
# Departure: ImageNet initialisation instead of COCO pre-training.
_base_ = [
    '../_base_/models/mobile_deeplabv3_mobilenetv2.py',
    '../_base_/datasets/pascal_voc12_aug_tf-deeplab.py',
    'mmseg::_base_/default_runtime.py',
    '../_base_/schedules/schedule_30k_tf-deeplab.py',
]
model = dict(decode_head=dict(with_aspp=True))  # paper: three 3x3 atrous branches, rates 6, 12, 18
