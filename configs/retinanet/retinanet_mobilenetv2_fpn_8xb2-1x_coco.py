# Our MobileNetV2 under a detector MMDetection users already know: RetinaNet with an FPN over three of our taps.
# Everything but the backbone (FPN, RetinaHead, losses, schedule, COCO data) is MMDetection's own config; the data
# sets are mmmnv2.StrictCocoDataset, which refuses annotation files whose categories do not match the classes.
_base_ = 'mmdet::retinanet/retinanet_r50_fpn_1x_coco.py'
custom_imports = dict(imports=['mmmnv2'], allow_failed_imports=False)

model = dict(
    # ImageNet mean/std (RGB), as MMDetection's base: OpenMMLab's ImageNet MobileNetV2 (the init_cfg below) was
    # trained with it (mmpretrain mobilenet-v2_8xb32_in1k.py); only TF-trained weights expect [-1, 1].
    data_preprocessor=dict(mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375], bgr_to_rgb=True),
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
train_dataloader = dict(dataset=dict(type='mmmnv2.StrictCocoDataset'))
val_dataloader = dict(dataset=dict(type='mmmnv2.StrictCocoDataset'))
test_dataloader = val_dataloader
# Checkpoints written atomically with a checksum (a crash mid-save leaves the previous one usable)
default_hooks = dict(checkpoint=dict(type='mmmnv2.VerifiedCheckpointHook'))
