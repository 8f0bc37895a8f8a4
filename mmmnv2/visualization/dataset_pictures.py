"""Pictures of a model's results on its config's test data set, ground truth beside prediction."""
import os
import os.path as osp
from typing import List, Optional

import mmcv
import torch
from mmengine.dataset import pseudo_collate
from mmengine.model import BaseModel
from mmengine.registry import DATASETS, DefaultScope

from mmmnv2.utils import config_host

from .pictures import draw_sample


def save_dataset_pictures(model: BaseModel, out_dir: str, *, max_images: Optional[int] = None,
                          score_thr: float = 0.3, batch_size: int = 8) -> List[str]:
    """Draw ground truth and prediction of the first ``max_images`` images of ``model.cfg``'s test data set.

    ``model``: from ``mmmnv2.apis.init_model`` (a checkpoint or an ONNX file). Pictures go to
    ``out_dir/<image name>.jpg`` (the layout is ``draw_sample``'s); returns their paths. The test pipeline must load
    the annotations after resizing, as the configs of ``configs/`` and the hosts' do, so the ground truth is in the
    original image's pixels, like the predictions.
    """
    cfg = model.cfg
    with DefaultScope.overwrite_default_scope(config_host(cfg).scope):
        dataset = DATASETS.build(cfg.test_dataloader.dataset)
    count = len(dataset) if max_images is None else min(max_images, len(dataset))
    classes = model.dataset_meta['classes']
    palette = model.dataset_meta.get('palette')
    os.makedirs(out_dir, exist_ok=True)
    paths = []
    for start in range(0, count, batch_size):
        data = pseudo_collate([dataset[i] for i in range(start, min(start + batch_size, count))])
        with torch.no_grad():
            samples = model.test_step(data)
        for sample in samples:
            image = mmcv.imread(sample.img_path, channel_order='rgb')
            picture = draw_sample(image, sample, classes, palette, score_thr=score_thr)
            path = osp.join(out_dir, osp.splitext(osp.basename(sample.img_path))[0] + '.jpg')
            mmcv.imwrite(mmcv.rgb2bgr(picture), path)
            paths.append(path)
    return paths
