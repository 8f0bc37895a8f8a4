# Paper Table 7, "MNet V2*, OS 16, no ASPP, single scale": 75.32 mIoU on VOC 2012 val, 2.11M params, 2.75B MAdds.
# The paper's recommended mobile model. Departure: ImageNet initialisation instead of COCO pre-training.
_base_ = [
    '../_base_/models/mobile_deeplabv3_mobilenetv2.py',
    '../_base_/datasets/pascal_voc12_aug_tf-deeplab.py',
    'mmseg::_base_/default_runtime.py',
    '../_base_/schedules/schedule_30k_tf-deeplab.py',
]
