"""The config's test pipeline for image files that come without annotations (inference, calibration on photos)."""
from typing import List

from mmengine.config import Config

# the hosts' transforms that read annotation files, which image files alone do not have
ANNOTATION_LOADERS = ('LoadAnnotations', 'LoadDepthAnnotation')


def image_file_transforms(cfg: Config) -> List[dict]:
    """The transforms of the config's test pipeline, those loading annotations left out: an image file in, the
    packed inputs the model's data preprocessor takes out."""
    return [t for t in cfg.test_dataloader.dataset.pipeline if t['type'] not in ANNOTATION_LOADERS]
