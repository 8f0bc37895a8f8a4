# MobileNetV2 + SSDLite, the paper's detector (Sec. 6.2, Tables 5-6). Values from the TF Object Detection API's
# `samples/configs/ssdlite_mobilenet_v2_coco.config` unless noted.
custom_imports = dict(imports=['mmmnv2'], allow_failed_imports=False)

input_size = 320  # paper: 320x320 (the TF sample config says 300)
# TF batch_norm epsilon 0.001, decay 0.9997 (feature extractor and box predictor; PyTorch momentum = 1 - decay)
norm_cfg = dict(type='BN', eps=1e-3, momentum=1 - 0.9997)
# TF conv_hyperparams of the extra layers and predictors: truncated_normal_initializer stddev 0.03 (TF truncates at
# 2 standard deviations; MMEngine's bounds a, b are absolute)
trunc_normal_init = dict(type='TruncNormal', layer='Conv2d', std=0.03, a=-0.06, b=0.06, bias=0.)

model = dict(
    type='mmmnv2.SSDLite',
    data_preprocessor=dict(
        type='DetDataPreprocessor',
        # ImageNet mean/std (RGB): the normalisation OpenMMLab's ImageNet MobileNetV2 (the init_cfg below) was
        # trained with (mmpretrain mobilenet-v2_8xb32_in1k.py). TF-trained weights expect [-1, 1] (127.5, 127.5).
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True,
        pad_size_divisor=1),
    backbone=dict(
        type='mmmnv2.MobileNetV2',
        widen_factor=1.0,
        # paper Sec. 6.2: first prediction layer on layer_15's expansion (576 ch, OS 16), second on layer_19
        out_endpoints=('layer_15/expansion_output', 'layer_19'),
        norm_cfg=norm_cfg,
        init_cfg=dict(
            type='Pretrained',
            prefix='backbone.',
            # OpenMMLab's ImageNet MobileNetV2 (71.86 top-1); TF recipe: backbone initialised from ImageNet
            checkpoint='https://download.openmmlab.com/mmclassification/v0/mobilenet_v2/'
            'mobilenet_v2_batch256_imagenet_20200708-3b2dc3af.pth')),
    neck=dict(
        type='mmmnv2.SSDLiteNeck',  # in_channels: mmmnv2.SSDLite takes them from the backbone
        extra_depths=(512, 256, 256, 128),  # TF feature_map_layout layer_depth
        norm_cfg=norm_cfg,
        init_cfg=trunc_normal_init),
    bbox_head=dict(
        type='mmmnv2.SSDLiteHead',
        num_classes=80,  # in_channels: mmmnv2.SSDLite takes them from the neck
        anchor_generator=dict(
            type='mmmnv2.SSDLiteAnchorGenerator',
            input_size=input_size,
            num_layers=6,
            min_scale=0.2,
            max_scale=0.95,
            aspect_ratios=(1.0, 2.0, 0.5, 3.0, 1.0 / 3),
            reduce_boxes_in_lowest_layer=True),
        # TF faster_rcnn_box_coder scales 10, 10, 5, 5
        bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=[0., 0., 0., 0.], target_stds=[0.1, 0.1, 0.2, 0.2]),
        norm_cfg=norm_cfg,
        # TF weighted_sigmoid over 80 classes + background, background column trained too; sigmoid scores at test
        loss_cls=dict(type='mmmnv2.TFSigmoidClassificationLoss'),
        # TF hard_example_miner
        hard_example_miner=dict(type='mmmnv2.TFHardExampleMiner', num_hard_examples=3000, iou_threshold=0.99,
                                loss_type='classification', max_negatives_per_positive=3, min_negatives_per_image=3),
        init_cfg=trunc_normal_init),
    train_cfg=dict(
        # TF argmax_matcher: matched/unmatched threshold 0.5, force_match_for_each_row
        assigner=dict(type='MaxIoUAssigner', pos_iou_thr=0.5, neg_iou_thr=0.5, min_pos_iou=0., ignore_iof_thr=-1,
                      gt_max_assign_all=False),
        sampler=dict(type='PseudoSampler'),
        smoothl1_beta=1.,  # TF weighted_smooth_l1 (delta 1)
        allowed_border=-1,
        pos_weight=-1,
        neg_pos_ratio=3,  # MMDetection's top-k negatives, used only without hard_example_miner
        debug=False),
    # TF batch_non_max_suppression: class-wise NMS, score_threshold 1e-8, no cap before NMS, at most 100 per class
    # and 100 in total (keeping the top 100 after class-wise NMS keeps at most 100 of any class, so the per-class
    # cap changes nothing). Other evaluation protocols (the TF zoo's frozen graphs, MMDetection's): README.
    test_cfg=dict(
        nms_pre=1_000_000,  # no per-level cap (MMDetection's nms_pre=-1 would drop the last candidate)
        nms=dict(type='nms', iou_threshold=0.6),
        min_bbox_size=0,
        score_thr=1e-8,
        max_per_img=100))
