# The embedded synthetic shapes for segmentation (background + 3 classes, PASCAL VOC layout), written by
# `python tools/misc/generate_toy_data.py --task seg --out data` (mmmnv2.datasets.generate_segmentation): 256x256
# images resized by 0.75 for training and testing (the metric is computed on the 256x256 label maps). Point it
# elsewhere with mmmnv2.datasets.data_root_options. The leaf config sets the training batch size.
data_root = 'data/toyshapes_seg/'
metainfo = dict(classes=('background', 'circle', 'square', 'triangle'),
                palette=[[0, 0, 0], [128, 0, 0], [0, 128, 0], [128, 128, 0]])  # mmmnv2.datasets.SEG_CLASSES/_PALETTE
num_classes = len(metainfo['classes'])
input_scale = 0.75  # 256 -> 192 pixels
check_seg_map = dict(type='mmmnv2.CheckSegMap', num_classes=num_classes, ignore_index=255)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    check_seg_map,
    dict(type='Resize', scale_factor=input_scale, keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale_factor=input_scale, keep_ratio=True),
    dict(type='LoadAnnotations'),
    check_seg_map,
    dict(type='PackSegInputs'),
]
tta_scales = [0.75 * input_scale, input_scale, 1.25 * input_scale]  # a cheap subset of the paper's 0.5..1.75
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
# PASCAL VOC layout; mmseg's PascalVOCDataset accepts only subsets of the 21 VOC classes, so its base class reads the
# same folders and split files (mmmnv2.StrictSegDataset: BaseSegDataset refusing empty splits and missing files).
toy_dataset = dict(type='mmmnv2.StrictSegDataset', data_root=data_root, metainfo=metainfo, img_suffix='.jpg',
                   seg_map_suffix='.png', data_prefix=dict(img_path='JPEGImages', seg_map_path='SegmentationClass'))
train_dataloader = dict(
    num_workers=2, persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(**toy_dataset, ann_file='ImageSets/Segmentation/train.txt', pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1, num_workers=2, persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(**toy_dataset, ann_file='ImageSets/Segmentation/val.txt', pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='IoUMetric', iou_metrics=['mIoU'])
test_evaluator = val_evaluator
