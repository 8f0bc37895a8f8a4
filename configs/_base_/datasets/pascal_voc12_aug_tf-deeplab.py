# PASCAL VOC 2012 + SBD ("train_aug", 10,582 images) -> VOC 2012 val (1,449), MMSegmentation's layout, with TF
# DeepLab's augmentation (REFERENCE §3) instead of MMSegmentation's: random scale 0.5..2.0 of the original image in
# steps of 0.25, random 512 crop (TF 513), left-right flip, no photometric distortion; evaluation on the original
# image (no resize). Crops smaller than 512 are padded by the model's data preprocessor with the mean pixel and the
# ignore label, as TF does. mmmnv2.CheckSegMap refuses label maps with values outside the 21 classes + 255.
_base_ = 'mmseg::_base_/datasets/pascal_voc12_aug.py'

num_classes = 21
crop_size = (512, 512)
check_seg_map = dict(type='mmmnv2.CheckSegMap', num_classes=num_classes, ignore_index=255)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    check_seg_map,
    # TF min_scale_factor 0.5, max_scale_factor 2.0, scale_factor_step_size 0.25
    dict(type='RandomChoice',
         transforms=[[dict(type='Resize', scale_factor=s / 4, keep_ratio=True)] for s in range(2, 9)]),
    dict(type='RandomCrop', crop_size=crop_size),  # TF crop_size 513x513
    dict(type='RandomFlip', prob=0.5),  # TF: random left-right flip
    dict(type='PackSegInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    check_seg_map,
    dict(type='PackSegInputs'),
]
# MF evaluation (paper Table 7): input scales 0.5:0.25:1.75 and left-right flip; used with tools/test.py --tta
tta_scales = [0.5, 0.75, 1.0, 1.25, 1.5, 1.75]
tta_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='TestTimeAug',
         transforms=[
             [dict(type='Resize', scale_factor=s, keep_ratio=True) for s in tta_scales],
             [dict(type='RandomFlip', prob=0., direction='horizontal'),
              dict(type='RandomFlip', prob=1., direction='horizontal')],
             [dict(type='LoadAnnotations')],
             [check_seg_map],
             [dict(type='PackSegInputs')],
         ]),
]
data_root = 'data/VOCdevkit/VOC2012'
# mmmnv2.StrictPascalVOCDataset: PascalVOCDataset refusing empty split files and missing images or label maps
dataset_train = dict(type='mmmnv2.StrictPascalVOCDataset', data_root=data_root,
                     ann_file='ImageSets/Segmentation/train.txt',
                     data_prefix=dict(img_path='JPEGImages', seg_map_path='SegmentationClass'),
                     pipeline=train_pipeline)
dataset_aug = dict(type='mmmnv2.StrictPascalVOCDataset', data_root=data_root, ann_file='ImageSets/Segmentation/aug.txt',
                   data_prefix=dict(img_path='JPEGImages', seg_map_path='SegmentationClassAug'),
                   pipeline=train_pipeline)
train_dataloader = dict(
    batch_size=4,  # TF recipe: batch 16 = 4 GPUs x 4
    dataset=dict(type='ConcatDataset', datasets=[dataset_train, dataset_aug]))
val_dataloader = dict(dataset=dict(type='mmmnv2.StrictPascalVOCDataset', pipeline=test_pipeline))
test_dataloader = val_dataloader
