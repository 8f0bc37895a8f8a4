"""The configs that evaluate Google's Mobile DeepLabv3 models: TF DeepLab's inference settings, written out here
from TF DeepLab's sources (``deeplab/core/feature_extractor.py``, ``deeplab/model.py``, TF-slim's ``mobilenet``)."""
import re

import pytest
from google_models import DM05_CONFIG, OS16_CONFIG
from mmengine.config import Config

# {algorithm}_{backbone}_tf-weights_{dataset}-{size}.py: the weights' origin where a training recipe would stand
NAME_RE = re.compile(r'^mobile-deeplabv3_mobilenetv2(-dm(?P<width>[\d.]+))?-os(?P<os>\d+)_tf-weights_voc12-'
                     r'(?P<size>\d+)x(?P=size)\.py$')


@pytest.mark.parametrize('config,width,divisible_by,output_stride,size', [
    (DM05_CONFIG, 0.5, 1, 8, 257),  # deeplabv3_257_mv_gpu.tflite
    (OS16_CONFIG, 1.0, 8, 16, 513),  # the paper's Table 7 model, TF eval_crop_size 513
])
def test_tf_weights_configs_set_tf_inference(config, width, divisible_by, output_stride, size):
    match = NAME_RE.match(config.name)
    assert match, config.name
    assert float(match['width'] or 1) == width and int(match['os']) == output_stride and int(match['size']) == size
    cfg = Config.fromfile(str(config))
    assert cfg.default_scope == 'mmseg'
    assert cfg.custom_imports == dict(imports=['mmmnv2'], allow_failed_imports=False)
    backbone, head, preprocessor = cfg.model.backbone, cfg.model.decode_head, cfg.model.data_preprocessor
    assert (backbone.widen_factor, backbone.divisible_by, backbone.output_stride) == (width, divisible_by,
                                                                                      output_stride)
    assert backbone.out_endpoints == ('layer_18',) and backbone.same_padding and backbone.init_cfg is None
    assert backbone.norm_cfg.eps == 1e-3  # TF-slim batch_norm epsilon
    assert head.norm_cfg.eps == 1e-5  # TF DeepLab's head: batch_norm_epsilon 1e-5
    assert head.align_corners and not head.with_aspp and head.num_classes == 21
    assert 'output_stride' not in head and 'in_channels' not in head  # the segmentor takes the backbone's
    # TF DeepLab: pixels to [-1, 1], padded with the mean pixel (0 after scaling) to the eval size
    assert preprocessor.mean == [127.5] * 3 and preprocessor.std == [127.5] * 3 and preprocessor.bgr_to_rgb
    assert tuple(preprocessor.size) == (size, size) and preprocessor.pad_val == 0
