"""The image size a config's model sees at test time: for counting multiply-adds and for exporting a fixed graph."""
from typing import Tuple

from mmengine.config import Config

# transforms whose ``scale`` (width, height) is the model's input size: MMDetection's / MMSegmentation's Resize and
# mmmnv2's TFLegacyResize (TF1 bilinear sampling, always a fixed size)
RESIZE_TRANSFORMS = ('Resize', 'TFLegacyResize')


def _resize_size(cfg: Config, fixed: bool) -> Tuple[int, int]:
    for transform in cfg.test_dataloader.dataset.pipeline:
        if transform['type'].split('.')[-1] in RESIZE_TRANSFORMS and 'scale' in transform:
            if fixed and transform.get('keep_ratio', False):
                raise ValueError('the test pipeline resizes keeping the aspect ratio, so inputs have no fixed size; '
                                 'give the input size explicitly (--shape H W)')
            width, height = transform['scale']  # mmcv's Resize takes (width, height)
            return height, width
    raise ValueError('the config sets neither model.data_preprocessor.size nor a Resize scale in the test pipeline: '
                     'give the input size explicitly')


def config_input_size(cfg: Config) -> Tuple[int, int]:
    """(height, width) of the image a config's model sees at test time.

    Segmentation: the data preprocessor's fixed ``size`` (the crop size; Table 7 counts at 512x512). Detection: the
    ``scale`` of the test pipeline's ``Resize`` (for ``keep_ratio=True`` the largest size, e.g. 1333x800).
    """
    size = cfg.model.get('data_preprocessor', {}).get('size')
    return tuple(size) if size else _resize_size(cfg, fixed=False)


def fixed_input_size(cfg: Config) -> Tuple[int, int]:
    """The fixed (height, width) a model of this config sees at test time, which an ONNX graph is exported for.

    Detection: the test pipeline's ``Resize`` without ratio keeping (SSDLite: 320x320); a ratio-keeping resize gives
    no fixed size. Segmentation: the data preprocessor's ``size`` (the training crop, 512x512); test images are
    padded to it, as TF DeepLab pads to 513.
    """
    size = cfg.model.get('data_preprocessor', {}).get('size')
    return tuple(size) if size else _resize_size(cfg, fixed=True)
