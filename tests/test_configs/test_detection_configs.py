"""Every detection config builds, and its model runs loss, predict and tensor modes on CPU."""
import glob

import pytest
import torch
from mmdet.registry import MODELS
from mmdet.structures import DetDataSample
from mmengine.config import Config
from mmengine.model import revert_sync_batchnorm
from mmengine.registry import init_default_scope
from mmengine.structures import InstanceData

DETECTION_CONFIGS = sorted(glob.glob('configs/ssdlite/*.py') + glob.glob('configs/retinanet/*.py'))


def _strip_pretrained(cfg) -> None:
    init = cfg.backbone.get('init_cfg')
    if isinstance(init, dict) and init.get('type') == 'Pretrained':
        cfg.backbone.init_cfg = None


def _input_size(cfg: Config) -> int:
    generator = cfg.model.get('bbox_head', {}).get('anchor_generator', {})
    return generator.get('input_size', 320) if generator.get('type') == 'mmmnv2.SSDLiteAnchorGenerator' else 320


def _batch(size: int, num_classes: int):
    images = torch.randint(0, 256, (2, 3, size, size), dtype=torch.uint8)
    samples = []
    for i in range(2):
        sample = DetDataSample(metainfo=dict(img_shape=(size, size), ori_shape=(size, size), pad_shape=(size, size),
                                             scale_factor=(1.0, 1.0), batch_input_shape=(size, size)))
        boxes = torch.tensor([[10.0, 20.0, 90.0, 120.0], [size / 2, size / 3, size - 5.0, size - 8.0]])
        sample.gt_instances = InstanceData(bboxes=boxes, labels=torch.tensor([i % num_classes, 0]))
        samples.append(sample)
    return dict(inputs=list(images), data_samples=samples)


def test_detection_configs_are_found():
    assert any('coco-320x320' in path for path in DETECTION_CONFIGS)
    assert any('toyshapes' in path for path in DETECTION_CONFIGS)
    assert any('retinanet' in path for path in DETECTION_CONFIGS)


@pytest.mark.parametrize('config', DETECTION_CONFIGS)
def test_config_runs_loss_predict_and_tensor_modes(config):
    cfg = Config.fromfile(config)
    assert cfg.default_scope == 'mmdet'
    init_default_scope('mmdet')
    _strip_pretrained(cfg.model)
    model = revert_sync_batchnorm(MODELS.build(cfg.model))
    model.init_weights()
    size = _input_size(cfg)
    num_classes = cfg.model.bbox_head.num_classes
    data = model.data_preprocessor(_batch(size, num_classes), training=True)

    model.train()
    losses = model(**data, mode='loss')
    total, _ = model.parse_losses(losses)
    assert torch.isfinite(total)
    total.backward()

    model.eval()
    with torch.no_grad():
        data = model.data_preprocessor(_batch(size, num_classes), training=False)
        results = model(**data, mode='predict')
        assert len(results) == 2
        for result in results:
            pred = result.pred_instances
            assert pred.bboxes.shape[1] == 4 and len(pred.bboxes) == len(pred.scores) == len(pred.labels)
            assert len(pred.bboxes) <= cfg.model.test_cfg.max_per_img
            if len(pred.labels):
                assert int(pred.labels.max()) < num_classes
        cls_scores, bbox_preds = model(**data, mode='tensor')
        assert len(cls_scores) == len(bbox_preds)
