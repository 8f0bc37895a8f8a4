# Mobile DeepLabv3 on "MNet V2*" (paper Sec. 6.3, Table 7): MobileNetV2 stopped at layer_18 (320 ch, the 1280 conv
# dropped) at output stride 16, with the paper's DeepLabv3 head (no ASPP by default: 2.11M params, 2.75B MAdds).
# Values from REFERENCE §3 / TF DeepLab unless noted. Departures: ImageNet initialisation (the paper pre-trains on
# COCO); PyTorch BN eps/momentum (the ImageNet weights were trained with them); 512 crops instead of TF's 513
# (TF's odd sizes serve align_corners=True resizing; mmseg resizes with align_corners=False).
custom_imports = dict(imports=['mmmnv2'], allow_failed_imports=False)

norm_cfg = dict(type='SyncBN', requires_grad=True)  # TF recipe: BN fine-tuned with batch >= 16 (here 4 GPUs x 4)
data_preprocessor = dict(
    type='SegDataPreProcessor',
    # TF preprocessing maps pixels to [-1, 1]
    mean=[127.5, 127.5, 127.5],
    std=[127.5, 127.5, 127.5],
    bgr_to_rgb=True,
    # padding after normalisation: 0 is TF's mean-pixel padding; labels padded with the ignore index
    size=(512, 512),  # the train crop (TF: 513)
    pad_val=0,
    seg_pad_val=255)
model = dict(
    type='mmmnv2.MobileDeepLabV3',  # EncoderDecoder whose head takes in_channels and output_stride from the backbone
    data_preprocessor=data_preprocessor,
    backbone=dict(
        type='mmmnv2.MobileNetV2',
        widen_factor=1.0,
        out_endpoints=('layer_18',),  # paper: "MNet V2*", heads on the second-last feature map
        output_stride=16,  # TF recipe: train at OS 16
        norm_cfg=norm_cfg,
        init_cfg=dict(
            type='Pretrained',
            prefix='backbone.',
            # OpenMMLab's ImageNet MobileNetV2 (71.86 top-1); the paper starts from COCO pre-training
            checkpoint='https://download.openmmlab.com/mmclassification/v0/mobilenet_v2/'
            'mobilenet_v2_batch256_imagenet_20200708-3b2dc3af.pth')),
    decode_head=dict(
        type='mmmnv2.MobileDeepLabV3Head',
        in_index=0,
        channels=256,  # paper: 256-channel branches and projection
        with_aspp=False,  # paper's mobile choice (Table 7, 75.32); the ASPP configs switch it on
        dropout_ratio=0.1,  # TF DeepLab: dropout keep-prob 0.9 before the classifier
        num_classes=21,  # PASCAL VOC: 20 classes + background
        norm_cfg=norm_cfg,
        align_corners=False,
        # TF DeepLab: softmax cross-entropy, ignore label 255, no class weights
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)),
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))  # TF DeepLab evaluates the whole (padded) image in one pass
