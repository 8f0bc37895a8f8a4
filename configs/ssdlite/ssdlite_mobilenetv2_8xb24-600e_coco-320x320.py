# The paper's COCO detector: MobileNetV2 + SSDLite at 320x320 (Sec. 6.2, Table 6: 22.1 mAP test-dev, 4.3M params,
# 0.8B MAdds). COCO 2017 in MMDetection's layout under data/coco/.
_base_ = [
    '../_base_/models/ssdlite_mobilenetv2.py',
    'mmdet::_base_/datasets/coco_detection.py',
    'mmdet::_base_/default_runtime.py',
]
input_size = 320
backend_args = None

train_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(type='LoadAnnotations', with_bbox=True),
    # TF ssd_random_crop: crops that keep a minimum IoU with the objects, or the whole image
    dict(type='MinIoURandomCrop', min_ious=(0.1, 0.3, 0.5, 0.7, 0.9), min_crop_size=0.3),
    dict(type='Resize', scale=(input_size, input_size), keep_ratio=False),
    dict(type='RandomFlip', prob=0.5),  # TF random_horizontal_flip
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(type='Resize', scale=(input_size, input_size), keep_ratio=False),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PackDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]
train_dataloader = dict(
    batch_size=24,  # TF recipe: batch 24 (here per GPU, 8 GPUs)
    num_workers=4,
    batch_sampler=None,
    dataset=dict(
        _delete_=True,
        type='RepeatDataset',
        times=5,
        dataset=dict(
            type='mmmnv2.StrictCocoDataset',  # refuses annotation files whose categories do not match
            data_root={{_base_.data_root}},
            ann_file='annotations/instances_train2017.json',
            data_prefix=dict(img='train2017/'),
            filter_cfg=dict(filter_empty_gt=True, min_size=32),
            pipeline=train_pipeline,
            backend_args=backend_args)))
val_dataloader = dict(batch_size=8, dataset=dict(type='mmmnv2.StrictCocoDataset', pipeline=test_pipeline))
test_dataloader = val_dataloader

# Schedule: MMDetection's SSDLite recipe (SGD, cosine, 120 epochs x 5 repeats), which is known to reach ~21 AP in
# PyTorch from scratch; TF's RMSProp (eps 1.0 inside the square root) has no exact PyTorch equivalent. Weight decay
# 4e-5 is the TF recipe's. Unlike MMDetection's config, the backbone starts from ImageNet weights, as in the paper.
max_epochs = 120
train_cfg = dict(max_epochs=max_epochs, val_interval=5)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=500),
    dict(type='CosineAnnealingLR', begin=0, T_max=max_epochs, end=max_epochs, by_epoch=True, eta_min=0),
]
optim_wrapper = dict(type='OptimWrapper', optimizer=dict(type='SGD', lr=0.015, momentum=0.9, weight_decay=4.0e-5))
custom_hooks = [
    dict(type='NumClassCheckHook'),
    dict(type='CheckInvalidLossHook', interval=50, priority='VERY_LOW'),
]
auto_scale_lr = dict(base_batch_size=192)  # 8 GPUs x 24 images
# Checkpoints written atomically with a checksum (a crash mid-save leaves the previous one usable)
default_hooks = dict(checkpoint=dict(type='mmmnv2.VerifiedCheckpointHook'))
