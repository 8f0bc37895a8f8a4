# Not in the paper: our MobileNetV2 under MMSegmentation's UPerHead, to show the backbone serving any mmseg head over
# several taps. Taps named as in TF-slim: layer_4 (24 ch, stride 4), layer_7 (32, 8), layer_14 (96, 16), layer_18
# (320, 32); the head takes their channels from the backbone (mmmnv2.MobileDeepLabV3, the model base's segmentor,
# checks them against MobileNetV2(...).feature_info). Data, schedule and initialisation as in the
# Mobile DeepLabv3 configs (TF DeepLab recipe).
_base_ = [
    '../_base_/models/mobile_deeplabv3_mobilenetv2.py',
    '../_base_/datasets/pascal_voc12_aug_tf-deeplab.py',
    'mmseg::_base_/default_runtime.py',
    '../_base_/schedules/schedule_30k_tf-deeplab.py',
]
model = dict(
    backbone=dict(out_endpoints=('layer_4', 'layer_7', 'layer_14', 'layer_18'), output_stride=32),
    decode_head=dict(
        _delete_=True,
        type='UPerHead',
        in_index=[0, 1, 2, 3],
        pool_scales=(1, 2, 3, 6),
        channels=128,  # mmseg's ResNet UPerNets use 512; 128 keeps the head in proportion to a mobile backbone
        dropout_ratio=0.1,
        num_classes=21,
        norm_cfg=dict(type='SyncBN', requires_grad=True),  # as the model base: BN fine-tuned across 4 GPUs
        align_corners=False,
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)))
