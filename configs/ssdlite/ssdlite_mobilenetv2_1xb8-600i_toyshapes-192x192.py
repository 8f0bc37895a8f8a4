# SSDLite on the embedded synthetic shapes (configs/_base_/datasets/toyshapes_det.py), so the paper's detector trains
# and evaluates on a fresh CPU machine in minutes. Same model as the COCO configs; what differs is data, input size,
# schedule, BN momentum (TF's decay 0.9997 would leave the running statistics at their initial values after 600
# steps), MMDetection's loss, initialisation and post-processing (below) and no ImageNet initialisation (nothing can
# be downloaded).
_base_ = [
    '../_base_/models/ssdlite_mobilenetv2.py',
    '../_base_/datasets/toyshapes_det.py',
    'mmdet::_base_/default_runtime.py',
]
toy_norm_cfg = dict(type='BN', eps=1e-3, momentum=0.03)  # TF's epsilon; momentum sized for 600 steps
# The toy recipe measured in the main README (Results): MMDetection's softmax loss with top-k negatives, its
# initialisation and its post-processing, inputs mapped to [-1, 1] (trained from scratch: any fixed normalisation
# serves). With TF's SSD pieces one run reached 0.43 mAP@0.5 at 600 iterations (threshold 0.5).
model = dict(
    data_preprocessor=dict(mean=[127.5, 127.5, 127.5], std=[127.5, 127.5, 127.5]),
    backbone=dict(init_cfg=None, norm_cfg=toy_norm_cfg),
    neck=dict(norm_cfg=toy_norm_cfg, init_cfg=dict(_delete_=True, type='TruncNormal', layer='Conv2d', std=0.03)),
    bbox_head=dict(
        num_classes=3, anchor_generator=dict(input_size={{_base_.image_size}}), norm_cfg=toy_norm_cfg,
        loss_cls=dict(_delete_=True, type='CrossEntropyLoss', use_sigmoid=False), hard_example_miner=None,
        init_cfg=dict(_delete_=True, type='Normal', layer='Conv2d', std=0.001)),
    test_cfg=dict(nms_pre=1000, score_thr=0.01))

max_iters = 600
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=100)  # 6 points on the validation curve
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
optim_wrapper = dict(type='OptimWrapper', optimizer=dict(type='AdamW', lr=3e-3, weight_decay=4e-5))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=100),
    dict(type='CosineAnnealingLR', by_epoch=False, begin=0, T_max=max_iters, end=max_iters, eta_min=0),
]
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),  # validation logged by iteration
    checkpoint=dict(type='mmmnv2.VerifiedCheckpointHook', by_epoch=False, interval=200, max_keep_ckpts=2,
                    save_best='coco/bbox_mAP_50'))
custom_hooks = [dict(type='NumClassCheckHook')]  # the model's num_classes must match the data set's classes
log_processor = dict(by_epoch=False)
visualizer = dict(type='DetLocalVisualizer', vis_backends=[dict(type='LocalVisBackend')], name='visualizer')
