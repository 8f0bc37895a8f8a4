# The paper's COCO detector (Sec. 6.2, Table 6: 22.1 mAP test-dev, 4.3M params, 0.8B MAdds), MobileNetV2 + SSDLite
# at 320x320, trained with MMDetection's SSDLite recipe instead of TF's (for TF's, see
# ssdlite_mobilenetv2_1xb24-200k_coco-320x320.py): SGD with cosine decay over 120 epochs x 5 repeats, softmax
# cross-entropy with top-k negatives (3 per positive), MinIoURandomCrop, normal(0.001) head initialisation and
# MMDetection's pre-NMS cap (1000 per level) and score threshold (0.01); known to reach ~21 AP in PyTorch from
# scratch (MMDetection's ssdlite_mobilenetv2-scratch_8xb24-600e_coco.py). As in the paper and unlike MMDetection's
# config, the backbone starts from ImageNet weights. COCO 2017 in MMDetection's layout under data/coco/.
_base_ = [
    '../_base_/datasets/coco_ssdlite.py',  # the model base, COCO and its test pipeline
    'mmdet::_base_/default_runtime.py',
]
input_size = {{_base_.input_size}}
backend_args = {{_base_.backend_args}}

model = dict(
    bbox_head=dict(
        loss_cls=dict(_delete_=True, type='CrossEntropyLoss', use_sigmoid=False),  # softmax over 80 + background
        hard_example_miner=None,  # top train_cfg.neg_pos_ratio negatives per positive
        init_cfg=dict(_delete_=True, type='Normal', layer='Conv2d', std=0.001)),
    test_cfg=dict(nms_pre=1000, score_thr=0.01))

train_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='MinIoURandomCrop', min_ious=(0.1, 0.3, 0.5, 0.7, 0.9), min_crop_size=0.3),  # Caffe SSD's sampler
    dict(type='Resize', scale=(input_size, input_size), keep_ratio=False),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
train_dataloader = dict(
    batch_size=24,  # per GPU, 8 GPUs
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

max_epochs = 120
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=5)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=500),
    dict(type='CosineAnnealingLR', begin=0, T_max=max_epochs, end=max_epochs, by_epoch=True, eta_min=0),
]
# weight decay 4e-5 is TF's
optim_wrapper = dict(type='OptimWrapper', optimizer=dict(type='SGD', lr=0.015, momentum=0.9, weight_decay=4.0e-5))
custom_hooks = [
    dict(type='NumClassCheckHook'),
    dict(type='CheckInvalidLossHook', interval=50, priority='VERY_LOW'),
]
auto_scale_lr = dict(base_batch_size=192)  # 8 GPUs x 24 images
# Checkpoints written atomically with a checksum (a crash mid-save leaves the previous one usable)
default_hooks = dict(checkpoint=dict(type='mmmnv2.VerifiedCheckpointHook'))
