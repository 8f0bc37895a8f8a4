# Our MobileNetV2 under a detector MMDetection users already know: RetinaNet with an FPN over three of our taps.
# Everything but the backbone (FPN, RetinaHead, losses, schedule, COCO data) is MMDetection's own config.
_base_ = 'mmdet::retinanet/retinanet_r50_fpn_1x_coco.py'
custom_imports = dict(imports=['mmmnv2'], allow_failed_imports=False)

model = dict(
    data_preprocessor=dict(mean=[127.5, 127.5, 127.5], std=[127.5, 127.5, 127.5]),  # ImageNet weights expect [-1, 1]
    backbone=dict(
        _delete_=True,
        type='mmmnv2.MobileNetV2',
        out_endpoints=('layer_7', 'layer_14', 'layer_19'),  # strides 8, 16, 32
        norm_cfg=dict(type='BN', requires_grad=True),
        init_cfg=dict(
            type='Pretrained',
            prefix='backbone.',
            checkpoint='https://download.openmmlab.com/mmclassification/v0/mobilenet_v2/'
            'mobilenet_v2_batch256_imagenet_20200708-3b2dc3af.pth')),
    neck=dict(in_channels=[32, 96, 1280], start_level=0, add_extra_convs='on_input', num_outs=5))
# Checkpoints written atomically with a checksum (a crash mid-save leaves the previous one usable)
default_hooks = dict(checkpoint=dict(type='mmmnv2.VerifiedCheckpointHook'))
