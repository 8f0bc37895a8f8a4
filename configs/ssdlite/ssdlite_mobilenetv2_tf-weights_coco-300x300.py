# Google's SSDLite on COCO as released (TF Object Detection API model zoo, ssdlite_mobilenet_v2_coco_2018_05_09: the
# paper's Table 6 model, 22 mAP on COCO in the zoo), evaluated through MMDetection with the weights converted by
# tools/model_converters/tf_to_openmmlab.py from its frozen_inference_graph.pb or model.ckpt. Everything as the
# exported graph computes it (the TF recipe's pipeline.config and the graph's own ops):
# - 300x300 input (TF fixed_shape_resizer; the paper reports 320), the image resized without keeping its aspect
#   ratio and sampled as the graph's TF1 ResizeBilinear (align_corners=False, half_pixel_centers=False), pixels
#   mapped to [-1, 1];
# - TF 'SAME' padding in the backbone and the extra layers, BN epsilon 1e-3;
# - TF's anchors at 300 (maps 19, 10, 5, 3, 2, 1: 1917 anchors; aspect ratio 0.3333 as written), box coder
#   scales 10, 10, 5, 5, sigmoid scores;
# - post-processing: score threshold 1e-8, class-wise NMS at IoU 0.6, 100 per class and 100 in all (model base), the
#   boxes scaled back to the original image (TF: normalised coordinates).
# Training (fine-tuning from the converted weights) keeps the TF recipe of the 320 config at this input size.
_base_ = ['./ssdlite_mobilenetv2_1xb24-200k_coco-320x320.py']
input_size = 300  # ssdlite_mobilenet_v2_coco.config: fixed_shape_resizer 300x300
backend_args = None
model = dict(
    # TF preprocessing: (2 / 255) * pixel - 1
    data_preprocessor=dict(mean=[127.5, 127.5, 127.5], std=[127.5, 127.5, 127.5]),
    backbone=dict(same_padding=True, init_cfg=None),  # weights come from the converted checkpoint
    neck=dict(same_padding=True),
    # the config's aspect ratios as its pipeline.config writes them: 0.3333, not 1/3 (boxes 5e-5 taller)
    bbox_head=dict(anchor_generator=dict(input_size=input_size, aspect_ratios=(1.0, 2.0, 0.5, 3.0, 0.3333))))
train_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='mmmnv2.SSDRandomCrop'),
    dict(type='mmmnv2.TFLegacyResize', scale=(input_size, input_size)),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(type='mmmnv2.TFLegacyResize', scale=(input_size, input_size)),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PackDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
