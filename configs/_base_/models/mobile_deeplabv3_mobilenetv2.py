# Mobile DeepLabv3 on "MNet V2*" (paper Sec. 6.3, Table 7): MobileNetV2 stopped at layer_18 (320 ch, the 1280 conv
# dropped) at output stride 16, with the paper's DeepLabv3 head (no ASPP by default: 2.11M params, 2.75B MAdds).
# Values from TF DeepLab (deeplab/train.py, deeplab/model.py, deeplab/core/feature_extractor.py) unless noted.
# Departures: ImageNet initialisation (the paper pre-trains on COCO); 512 crops (TF: 513, see the dataset base).
custom_imports = dict(imports=['mmmnv2'], allow_failed_imports=False)

# BN as TF DeepLab trains it, fine-tuned with batch >= 16 (here 4 GPUs x 4, synchronised):
# backbone: TF-slim mobilenet_v2.training_scope, epsilon 1e-3, decay 0.997 (PyTorch momentum = 1 - decay);
backbone_norm_cfg = dict(type='SyncBN', eps=1e-3, momentum=1 - 0.997, requires_grad=True)
# head: deeplab/model.py batch_norm_params, epsilon 1e-5, decay 0.9997.
head_norm_cfg = dict(type='SyncBN', eps=1e-5, momentum=1 - 0.9997, requires_grad=True)
data_preprocessor = dict(
    type='SegDataPreProcessor',
    # ImageNet mean/std (RGB): the normalisation OpenMMLab's ImageNet MobileNetV2 (the init_cfg below) was trained
    # with (mmpretrain mobilenet-v2_8xb32_in1k.py). TF-trained weights expect [-1, 1] (mean = std = 127.5) instead.
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    bgr_to_rgb=True,
    # padding after normalisation: 0 is the mean pixel, as TF pads with the mean; labels padded with the ignore index
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
        norm_cfg=backbone_norm_cfg,
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
        norm_cfg=head_norm_cfg,
        align_corners=True,  # TF DeepLab resizes logits and labels with align_corners=True
        # TF DeepLab (utils/train_utils.py add_softmax_cross_entropy_loss_for_each_scale): softmax cross-entropy,
        # ignore label 255 weighted 0, no class weights, averaged over the *valid* pixels. MMSegmentation's default
        # (avg_non_ignore=False) divides by every pixel, ignored and padded ones included, so the effective learning
        # rate would change with the share of padding in each batch.
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0, avg_non_ignore=True)),
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))  # TF DeepLab evaluates the whole (padded) image in one pass
