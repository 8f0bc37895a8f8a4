# TF DeepLab's recipe for Mobile DeepLabv3 on PASCAL VOC train_aug (REFERENCE §3): SGD momentum 0.9, base lr 0.007,
# poly decay (power 0.9) to 0 over 30k steps, weight decay 4e-5, batch 16 in total.
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.007, momentum=0.9, weight_decay=4e-5),  # TF: base_learning_rate, momentum, wd
    # TF-slim MobileNet scopes put L2 on conv weights only (regularize_depthwise=False); BN and biases not decayed
    paramwise_cfg=dict(norm_decay_mult=0., bias_decay_mult=0., dwconv_decay_mult=0.))
param_scheduler = [
    # TF learning_policy 'poly', learning_power 0.9, end_learning_rate 0
    dict(type='PolyLR', eta_min=0., power=0.9, begin=0, end=30000, by_epoch=False),
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=30000, val_interval=3000)  # TF training_number_of_steps 30k
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='mmmnv2.VerifiedCheckpointHook', by_epoch=False, interval=3000, max_keep_ckpts=3,
                    save_best='mIoU'),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='SegVisualizationHook'))
auto_scale_lr = dict(enable=False, base_batch_size=16)  # TF recipe: batch 16 (4 GPUs x 4 images)
