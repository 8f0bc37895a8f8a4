"""One of Google's files -> a state dict and checkpoint meta for our model of it (classifier, DeepLab or SSDLite).

The target model is the config's where one is given (a segmentor or an SSDLite detector); without a config, it
follows from the file: TF-slim's ImageNet classifiers convert to ``MobileNetV2Classifier`` at the file's width, the
Object Detection API's SSDLite to ``configs/ssdlite/ssdlite_mobilenetv2_tf-weights_coco-300x300.py``. A file of one
architecture given a config of another fails, listing the names each side expects.
"""
import copy
import os.path as osp
from typing import Dict, Optional, Tuple

from torch import Tensor, nn

from mmmnv2.models.backbones.mobilenet_v2 import layer_specs

from .tf_mobilenet_v2 import (
    MobileNetV2Classifier,
    backbone_scopes,
    convert_tf_variables,
    describe_file,
    read_labels,
)
from .tf_sources import ConversionError, TFVariables, read_tf_variables
from .tf_ssd import convert_tf_ssd, is_tf_ssd

# our config of the Object Detection API's ssdlite_mobilenet_v2_coco, inside the package (mim's .mim folder) or the
# checkout
SSD_CONFIG = 'configs/ssdlite/ssdlite_mobilenetv2_tf-weights_coco-300x300.py'


def default_ssd_config() -> str:
    """The path of our config of Google's SSDLite (the checkout's or the installed package's)."""
    package = osp.dirname(osp.dirname(osp.abspath(__file__)))
    for root in (osp.dirname(package), osp.join(package, '.mim')):
        if osp.isfile(osp.join(root, SSD_CONFIG)):
            return osp.join(root, SSD_CONFIG)
    raise ConversionError(f'{SSD_CONFIG} is not found beside the package; give the config with --config')


def _file_width(variables: TFVariables) -> Optional[float]:
    key = variables.key('MobilenetV2/expanded_conv_16/project/weights')
    return variables.arrays[key].shape[-1] / 320 if key in variables.arrays else None


def _file_divisible_by(variables: TFVariables, widen_factor: float) -> int:
    """8 (TF-slim) or 1 (TF DeepLab below width 1): the rounding whose layer widths are the file's."""
    for divisible_by in (8, 1):
        widths = {backbone_scopes(spec)[-1]: spec.out_channels
                  for spec in layer_specs(widen_factor, divisible_by=divisible_by)[:-1]}  # layer_1 .. layer_18
        found = {scope: variables.arrays.get(variables.key(f'{scope}/weights')) for scope in widths}
        if all(array is not None and array.shape[-1] == widths[scope] for scope, array in found.items()):
            return divisible_by
    return 8  # neither fits: the conversion will list the differences


def convert_tf_file(path: str, config=None, labels: Optional[str] = None) -> Tuple[Dict[str, Tensor], dict]:
    """Convert one of Google's files (see ``read_tf_variables``) into a state dict and checkpoint meta.

    Segmentation files (TF DeepLab's ``logits/semantic``) need ``config``, a config of ``configs/`` (path or
    ``Config``) whose model they must fit; SSD files (the Object Detection API's ``BoxPredictor_N``) take our config
    of Google's SSDLite by default. ImageNet classifiers convert to ``MobileNetV2Classifier`` keys at the file's
    width, with TF's 'SAME' padding; ``labels`` (a text file, one class name a line) gives their class names. A file
    with the backbone only (TF-slim's float variables without the classifier's kernel) converts the backbone.
    A ``config`` given with a classifier, or a DeepLab file given a config of another task, is refused (it could not
    be honoured). Returns ``(state_dict, meta)``; ``meta['dataset_meta']['classes']`` holds the class names where
    known, an SSD's meta the COCO id of each class (``tf_class_ids``).
    """
    variables = read_tf_variables(path)
    meta = dict(tf_source=dict(file=path, kind=variables.kind, architecture=describe_file(variables)))
    ignored: Tuple[str, ...] = ()
    is_ssd, is_deeplab = is_tf_ssd(variables), variables.key('logits/semantic/weights') in variables.arrays
    if config is not None and not (is_ssd or is_deeplab):  # the file decides a classifier: a config would be ignored
        raise ConversionError(f'{path}: is {describe_file(variables)}, not a TF DeepLab segmentation model; it '
                              f'converts to OpenMMLab\'s classifier keys without a config (drop the config '
                              f'{config if isinstance(config, str) else "given"})')
    if config is None and is_ssd:
        config = default_ssd_config()
    if config is None and is_deeplab:
        raise ConversionError(f'{path} is a TF DeepLab segmentation model: give the config its weights are for')
    if config is not None:
        model, dataset_meta = _build_model(config)
        if is_deeplab and type(getattr(model, 'decode_head', None)).__name__ != 'MobileDeepLabV3Head':
            raise ConversionError(f'{config if isinstance(config, str) else "the config"}: builds a '
                                  f'{type(model).__name__}, not a Mobile DeepLabv3 (mmmnv2.MobileDeepLabV3Head), but '
                                  f'{path} is a TF DeepLab segmentation model; give a config of its task')
        meta['config'] = config if isinstance(config, str) else None
        if getattr(model, 'bbox_head', None) is not None:
            state, ssd_meta = convert_tf_ssd(variables, model)
            meta['tf_source'].update(ssd_meta)
            meta['dataset_meta'] = dataset_meta
            return state, meta
    else:
        width = _file_width(variables)
        if width is None:
            raise ConversionError(f'{path}: no MobileNetV2 layer_18 (MobilenetV2/expanded_conv_16/project) in it; '
                                  f'found {describe_file(variables)}')
        logits = variables.arrays.get(variables.key('MobilenetV2/Logits/Conv2d_1c_1x1/weights'))
        if logits is None:  # TF-slim's variables without the classifier's kernel: the backbone alone
            ignored = (variables.key('MobilenetV2/Logits/Conv2d_1c_1x1/biases'),)
            meta['note'] = 'no classifier kernel in the file: backbone only'
        model = MobileNetV2Classifier(widen_factor=width, num_classes=None if logits is None else logits.shape[-1],
                                      divisible_by=_file_divisible_by(variables, width))
        dataset_meta = {}
    state = convert_tf_variables(variables, model, ignored=ignored)
    num_classes = _num_classes(model)
    if labels is not None:
        names = read_labels(labels)
        if len(names) != num_classes:
            raise ConversionError(f'{labels}: {len(names)} class names for a model with {num_classes} classes')
        dataset_meta = dict(dataset_meta, classes=tuple(names))
    elif num_classes and len(dataset_meta.get('classes', ())) != num_classes:
        raise ConversionError(f'{path}: {num_classes} classes and no names for them: give a labels file (one class '
                              f'name a line; ImageNet classifiers: 1001, "background" first)')
    meta['dataset_meta'] = dataset_meta
    return state, meta


def _num_classes(model: nn.Module) -> Optional[int]:
    if isinstance(model, MobileNetV2Classifier):
        return model.head.fc.out_features if model.head is not None else None
    return model.decode_head.num_classes if hasattr(model, 'decode_head') else None


def _build_model(config) -> Tuple[nn.Module, dict]:
    from mmengine.config import Config

    from mmmnv2.utils import build_host_model, config_dataset_meta, drop_pretrained
    cfg = Config.fromfile(config) if isinstance(config, str) else copy.deepcopy(config)
    drop_pretrained(cfg.model)
    return build_host_model(cfg), dict(config_dataset_meta(cfg) or {})
