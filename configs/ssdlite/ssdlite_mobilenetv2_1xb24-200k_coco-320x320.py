# The paper's COCO detector (Sec. 6.2, Table 6: 22.1 mAP test-dev, 4.3M params, 0.8B MAdds), MobileNetV2 + SSDLite
# at 320x320, with the TF Object Detection API's recipe (samples/configs/ssdlite_mobilenet_v2_coco.config):
# sigmoid classification + hard example miner, truncated-normal head initialisation, BN decay 0.9997 / epsilon 1e-3
# and TF's post-processing (model base), horizontal flip + ssd_random_crop, RMSProp (TF's update) at lr 0.004,
# batch 24, 200k steps. COCO 2017 in MMDetection's layout under data/coco/.
# Departures, each for a reason:
# - ImageNet weights: OpenMMLab's (PyTorch-trained) instead of TF-slim's, with their ImageNet normalisation;
# - symmetric padding (PyTorch) instead of TF's 'SAME' at stride 2 (weights trained here are unaffected);
# - depthwise kernels of the extra layers and predictors are not weight-decayed (dwconv_decay_mult 0, as TF's
#   backbone scope); TF's conv_hyperparams decay them with 4e-5;
# - images without objects are skipped (MMDetection's filter_empty_gt); TF trains on them as all-negative;
# - TF resizes to 300x300 in its sample config; the paper reports 320x320.
_base_ = [
    '../_base_/datasets/coco_ssdlite.py',  # the model base, COCO and its test pipeline
    'mmdet::_base_/default_runtime.py',
]
input_size = {{_base_.input_size}}
backend_args = {{_base_.backend_args}}
batch_size = 24  # TF train_config batch_size (in total)
max_iters = 200_000  # TF num_steps

train_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='RandomFlip', prob=0.5),  # TF random_horizontal_flip (before the crop, as in TF's list)
    dict(type='mmmnv2.SSDRandomCrop'),  # TF ssd_random_crop with its defaults
    dict(type='Resize', scale=(input_size, input_size), keep_ratio=False),  # TF fixed_shape_resizer
    dict(type='PackDetInputs'),
]
train_dataloader = dict(
    batch_size=batch_size,
    num_workers=4,
    batch_sampler=None,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        type='mmmnv2.StrictCocoDataset',  # refuses annotation files whose categories do not match
        filter_cfg=dict(filter_empty_gt=True, min_size=32),
        pipeline=train_pipeline))

train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=10_000)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
optim_wrapper = dict(
    type='OptimWrapper',
    # TF rms_prop_optimizer: momentum_optimizer_value 0.9, decay 0.9, epsilon 1.0 (inside the square root, the
    # squared-gradient average starting at 1); l2_regularizer weight 4e-5
    optimizer=dict(type='mmmnv2.RMSpropTF', lr=0.004, momentum=0.9, decay=0.9, eps=1.0, weight_decay=4e-5),
    # TF regularises conv weights only: no decay on BN, biases (and depthwise kernels, see above)
    paramwise_cfg=dict(norm_decay_mult=0., bias_decay_mult=0., dwconv_decay_mult=0.))
param_scheduler = [
    # TF exponential_decay_learning_rate: x0.95 every 800,720 steps (staircase); with num_steps 200k it never
    # decays, as TF's config notes
    dict(type='StepLR', step_size=800_720, gamma=0.95, by_epoch=False),
]
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=100, log_metric_by_epoch=False),  # validation logged by iteration
    checkpoint=dict(type='mmmnv2.VerifiedCheckpointHook', by_epoch=False, interval=10_000, max_keep_ckpts=3))
log_processor = dict(by_epoch=False)
custom_hooks = [
    dict(type='NumClassCheckHook'),
    dict(type='CheckInvalidLossHook', interval=50, priority='VERY_LOW'),
]
auto_scale_lr = dict(base_batch_size=batch_size)
