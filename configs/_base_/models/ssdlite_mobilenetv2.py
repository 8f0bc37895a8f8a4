# MobileNetV2 + SSDLite, the paper's detector (Sec. 6.2, Tables 5-6). Values from REFERENCE §2 / TF OD API
# `ssdlite_mobilenet_v2_coco.config` unless noted.
custom_imports = dict(imports=['mmmnv2'], allow_failed_imports=False)

input_size = 320  # paper: 320x320 (the TF sample config says 300)
norm_cfg = dict(type='BN', eps=1e-3, momentum=3e-4)  # TF batch_norm epsilon 0.001, decay 0.9997

model = dict(
    type='mmmnv2.SSDLite',
    data_preprocessor=dict(
        type='DetDataPreprocessor',
        # TF preprocessing maps pixels to [-1, 1]
        mean=[127.5, 127.5, 127.5],
        std=[127.5, 127.5, 127.5],
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
        norm_cfg=norm_cfg),
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
        norm_cfg=norm_cfg),
    train_cfg=dict(
        # TF argmax_matcher: matched/unmatched threshold 0.5, force_match_for_each_row
        assigner=dict(type='MaxIoUAssigner', pos_iou_thr=0.5, neg_iou_thr=0.5, min_pos_iou=0., ignore_iof_thr=-1,
                      gt_max_assign_all=False),
        sampler=dict(type='PseudoSampler'),
        smoothl1_beta=1.,  # TF weighted_smooth_l1 (delta 1)
        allowed_border=-1,
        pos_weight=-1,
        neg_pos_ratio=3,  # TF hard_example_miner max_negatives_per_positive 3
        debug=False),
    test_cfg=dict(
        nms_pre=1000,
        nms=dict(type='nms', iou_threshold=0.6),  # TF batch_non_max_suppression iou_threshold 0.6
        min_bbox_size=0,
        score_thr=0.01,  # TF keeps scores above 1e-8; 0.01 drops only boxes that cannot change COCO AP visibly
        max_per_img=100))  # TF max_total_detections 100
