"""Google's MobileNetV2 weights (TF-slim ImageNet classifier, TF DeepLab Mobile DeepLabv3) -> mmmnv2 state dicts.

Tensors are matched by TF name, never by position: each conv module of the target model is paired with the TF
scope that holds its weights. The backbone's pairs come from its ``layer_specs`` (paper Table 2 unrolled): layer_1 is
``MobilenetV2/Conv``, layer_2 ``MobilenetV2/expanded_conv``, layer_N ``MobilenetV2/expanded_conv_{N-2}`` (sub-scopes
``expand``, ``depthwise``, ``project``), layer_19 ``MobilenetV2/Conv_1``. The Mobile DeepLabv3 head's are TF
DeepLab's names (``deeplab/model.py``): ``image_pooling``, ``aspp0`` (the 1x1 branch), ``aspp1..3`` (atrous
branches), ``concat_projection``, ``logits/semantic``. The ImageNet classifier's is
``MobilenetV2/Logits/Conv2d_1c_1x1``.

A conv followed by BN takes either TF's BN variables (``BatchNorm/gamma, beta, moving_mean, moving_variance``) or,
where BN was folded into the conv (TFLite), the folded kernel as conv weight and the folded bias as BN bias with
identity statistics (mean 0, variance ``1 - eps``, scale 1), so the module computes exactly the folded function.

Nothing is loaded partially: every variable of the file must find its place in the model and every tensor of the
model must come from the file, with the same shape, or the conversion fails listing expected against found names and
shapes. The output stride is checked against the strides and dilations the file's convs record (TFLite).
"""
import copy
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import Tensor, nn

from mmmnv2.models.backbones import MobileNetV2
from mmmnv2.models.backbones.mobilenet_v2 import LayerSpec, layer_specs

from .tf_sources import ConversionError, TFVariables, read_tf_variables

NUM_IMAGENET_CLASSES = 1001  # TF-slim's classifiers: 1000 ImageNet classes after a background class 0
TF_BN_EPS = 1e-3  # TF-slim's batch_norm default epsilon
_LISTED = 25  # names shown per category in an error message


class TFTarget(NamedTuple):
    """One conv (or linear) module of the target model and the TF scope of its variables."""
    module: str  # 'backbone.layer3.1.conv.0', 'decode_head.conv_seg', 'head.fc'
    scope: str  # 'MobilenetV2/expanded_conv_4/expand'
    kind: str  # 'conv_bn' (ConvModule with BN), 'conv_bias' (Conv2d with bias), 'linear'


class MobileNetV2Classifier(nn.Module):
    """TF-slim's ImageNet classifier on ``mmmnv2.MobileNetV2``: global average pooling and a linear layer.

    Its keys are those of OpenMMLab's image classifiers (``backbone.*``, ``head.fc.*``), so the converted backbone
    also loads into detection or segmentation backbones with ``prefix='backbone.'``. TF's 1x1 logits conv on the
    pooled 1x1 map is this linear layer. Dropout (training only) is left out.
    """

    def __init__(self, widen_factor: float = 1.0, num_classes: Optional[int] = NUM_IMAGENET_CLASSES,
                 same_padding: bool = True, divisible_by: int = 8, bn_eps: float = TF_BN_EPS) -> None:
        super().__init__()
        self.backbone = MobileNetV2(widen_factor=widen_factor, out_endpoints=('layer_19',),
                                    same_padding=same_padding, divisible_by=divisible_by,
                                    norm_cfg=dict(type='BN', eps=bn_eps))
        self.head = None
        if num_classes is not None:  # None: the backbone alone (pooled features out)
            self.head = nn.Module()
            self.head.fc = nn.Linear(self.backbone.out_channels[0], num_classes)

    def forward(self, images: Tensor) -> Tensor:
        """Class logits (TF's ``Logits``; softmax gives TF's ``Predictions``)."""
        features = self.backbone(images)[0].mean((2, 3))
        return features if self.head is None else self.head.fc(features)


def backbone_scopes(spec: LayerSpec) -> Tuple[str, ...]:
    """TF scopes of one backbone layer's convs, in the order of ``spec.conv_modules``."""
    if spec.module == 'conv1':
        return ('MobilenetV2/Conv',)
    if spec.module == 'conv2':
        return ('MobilenetV2/Conv_1',)
    index = int(spec.name.split('_')[1]) - 2  # layer_2 is TF's expanded_conv, layer_3 expanded_conv_1, ...
    block = 'MobilenetV2/expanded_conv' + (f'_{index}' if index else '')
    parts = ('depthwise', 'project') if spec.expanded_channels is None else ('expand', 'depthwise', 'project')
    return tuple(f'{block}/{part}' for part in parts)


def tf_targets(model: nn.Module) -> List[TFTarget]:
    """Every conv/linear module of ``model`` with its TF scope: a MobileNetV2Classifier or a Mobile DeepLabv3."""
    backbone = model.backbone
    if not isinstance(backbone, MobileNetV2):
        raise ConversionError(f'the target model\'s backbone is {type(backbone).__name__}, not mmmnv2.MobileNetV2')
    targets = [TFTarget(f'backbone.{module}', scope, 'conv_bn') for spec in backbone.layer_specs
               for module, scope in zip(spec.conv_modules, backbone_scopes(spec), strict=True)]
    if isinstance(model, MobileNetV2Classifier):
        if model.head is None:
            return targets
        return targets + [TFTarget('head.fc', 'MobilenetV2/Logits/Conv2d_1c_1x1', 'linear')]
    head = getattr(model, 'decode_head', None)
    if head is None or type(head).__name__ != 'MobileDeepLabV3Head':
        raise ConversionError('the target model is neither an ImageNet classifier nor a segmentor with '
                              'mmmnv2.MobileDeepLabV3Head: TF weights map onto those only')
    targets.append(TFTarget('decode_head.image_pool.1', 'image_pooling', 'conv_bn'))
    targets += [TFTarget(f'decode_head.aspp_modules.{i}', f'aspp{i}', 'conv_bn') for i in range(len(head.dilations))]
    return targets + [TFTarget('decode_head.bottleneck', 'concat_projection', 'conv_bn'),
                      TFTarget('decode_head.conv_seg', 'logits/semantic', 'conv_bias')]


def _tf_layout(weight: Tensor, depthwise: bool) -> Tuple[int, ...]:
    """Shape of TF's kernel for a PyTorch conv weight (O, I/groups, H, W): HWIO, depthwise HW(C)(1)."""
    out_channels, in_channels, height, width = weight.shape
    return (height, width, out_channels, 1) if depthwise else (height, width, in_channels, out_channels)


def _expected_variables(model: nn.Module, targets: Sequence[TFTarget],
                        folded: bool) -> Dict[str, Tuple[str, str, Tuple[int, ...]]]:
    """TF variable name -> (target module, role, TF shape) of every variable the model needs."""
    expected = {}
    for target in targets:
        module = model.get_submodule(target.module)
        if target.kind == 'linear':
            expected[f'{target.scope}/weights'] = (target.module, 'linear', (1, 1, *module.weight.shape[::-1]))
            expected[f'{target.scope}/biases'] = (target.module, 'bias', tuple(module.bias.shape))
            continue
        conv = module.conv if target.kind == 'conv_bn' else module
        depthwise = conv.groups > 1
        if depthwise and conv.groups != conv.out_channels:
            raise ConversionError(f'{target.module}: a grouped conv TF layers do not have')
        name = f'{target.scope}/depthwise_weights' if depthwise else f'{target.scope}/weights'
        expected[name] = (target.module, 'depthwise' if depthwise else 'conv', _tf_layout(conv.weight, depthwise))
        channels = (conv.out_channels,)
        if target.kind == 'conv_bias' or folded:
            expected[f'{target.scope}/biases'] = (target.module, 'bias', channels)
        else:
            for variable in ('gamma', 'beta', 'moving_mean', 'moving_variance'):
                expected[f'{target.scope}/BatchNorm/{variable}'] = (target.module, variable, channels)
    return expected


def describe_file(variables: TFVariables) -> str:
    """What the file's variables say about its architecture: width, output stride, head, classes."""
    names = ('MobilenetV2/expanded_conv_16/project/weights', 'MobilenetV2/expanded_conv_3/project/weights',
             'logits/semantic/weights', 'MobilenetV2/Logits/Conv2d_1c_1x1/weights')
    arrays = {name: variables.arrays[variables.key(name)] for name in names if variables.key(name) in variables.arrays}
    parts = []
    if 'MobilenetV2/expanded_conv_16/project/weights' in arrays:
        width = arrays['MobilenetV2/expanded_conv_16/project/weights'].shape[-1] / 320
        parts.append(f'width {width:g}')
    if 'MobilenetV2/expanded_conv_3/project/weights' in arrays:
        parts.append(f'layer_5 {arrays["MobilenetV2/expanded_conv_3/project/weights"].shape[-1]} channels')
    if variables.geometry:
        stride = int(np.prod([s for scope, (s, _) in variables.geometry.items() if scope.startswith('MobilenetV2/')]))
        parts.append(f'output stride {stride}')
    if 'logits/semantic/weights' in arrays:
        aspp = any(key.startswith(variables.key('aspp1')) for key in variables.arrays)
        parts.append(f'DeepLab head {"with" if aspp else "without"} ASPP, '
                     f'{arrays["logits/semantic/weights"].shape[-1]} classes')
    if 'MobilenetV2/Logits/Conv2d_1c_1x1/weights' in arrays:
        parts.append(f'classifier, {arrays["MobilenetV2/Logits/Conv2d_1c_1x1/weights"].shape[-1]} classes')
    if variables.input_size:
        parts.append(f'input {variables.input_size[0]}x{variables.input_size[1]}')
    return ', '.join(parts) or 'no MobileNetV2 variables'


def describe_model(model: nn.Module) -> str:
    """The same facts about the target model."""
    backbone = model.backbone
    specs = {spec.name: spec for spec in backbone.layer_specs}
    parts = [f'width {backbone.widen_factor:g}']
    if 'layer_5' in specs:
        parts.append(f'layer_5 {specs["layer_5"].out_channels} channels')
    parts.append(f'output stride {backbone.output_stride}')
    if isinstance(model, MobileNetV2Classifier):
        parts.append(f'classifier, {model.head.fc.out_features} classes' if model.head else 'no classifier')
    else:
        head = model.decode_head
        parts.append(f'DeepLab head {"with" if head.with_aspp else "without"} ASPP, {head.num_classes} classes')
    return ', '.join(parts)


def _check_geometry(model: nn.Module, variables: TFVariables, targets: Sequence[TFTarget]) -> List[str]:
    """Convs whose stride or dilation differs from the file's (a different output stride)."""
    problems = []
    for target in targets:
        if target.scope not in variables.geometry or target.kind == 'linear':
            continue
        module = model.get_submodule(target.module)
        conv = module.conv if target.kind == 'conv_bn' else module
        ours = (conv.stride[0], conv.dilation[0])
        if variables.geometry[target.scope] != ours:
            problems.append(f'{target.scope}: file stride {variables.geometry[target.scope][0]} dilation '
                            f'{variables.geometry[target.scope][1]}, model stride {ours[0]} dilation {ours[1]}')
    return problems


def _listing(title: str, lines: List[str]) -> str:
    shown = lines[:_LISTED] + ([f'... {len(lines) - _LISTED} more'] if len(lines) > _LISTED else [])
    return f'\n  {title} ({len(lines)}):\n    ' + '\n    '.join(shown)


def convert_tf_variables(variables: TFVariables, model: nn.Module, ignored: Sequence[str] = ()) -> Dict[str, Tensor]:
    """The state dict of ``model`` built from the file's variables; ConversionError unless they fit exactly.

    ``ignored``: keys of the file's variables that are known to have no place in the model.
    """
    targets = tf_targets(model)
    expected = _expected_variables(model, targets, variables.folded)
    found = variables.model_keys()
    by_key = {variables.key(name): name for name in expected}
    missing = [f'{name} {shape}' for name, (_, _, shape) in expected.items() if variables.key(name) not in found]
    unexpected = [f'{key} {shape}' for key, shape in found.items() if key not in by_key and key not in ignored]
    mis_shaped = [f'{name}: expected {shape}, found {found[variables.key(name)]}'
                  for name, (_, _, shape) in expected.items()
                  if variables.key(name) in found and tuple(found[variables.key(name)]) != tuple(shape)]
    geometry = _check_geometry(model, variables, targets)
    if missing or unexpected or mis_shaped or geometry:
        message = (f'{variables.path} does not fit the target model\n  file:  {describe_file(variables)}\n'
                   f'  model: {describe_model(model)}')
        for title, lines in (('expected by the model, not in the file', missing),
                             ('in the file, not expected by the model', unexpected),
                             ('shape differs', mis_shaped), ('stride/dilation differs', geometry)):
            if lines:
                message += _listing(title, lines)
        raise ConversionError(message)

    state = {}
    for name, (module_name, role, _) in expected.items():
        value = torch.from_numpy(np.ascontiguousarray(variables.arrays[variables.key(name)], np.float32))
        module = model.get_submodule(module_name)
        if role == 'conv':  # HWIO -> OIHW
            state[f'{module_name}.conv.weight' if hasattr(module, 'bn') else f'{module_name}.weight'] = \
                value.permute(3, 2, 0, 1)
        elif role == 'depthwise':  # HW(C)(1) -> (C)(1)HW
            state[f'{module_name}.conv.weight'] = value.permute(2, 3, 0, 1)
        elif role == 'linear':  # (1, 1, in, out) -> (out, in)
            state[f'{module_name}.weight'] = value[0, 0].t()
        elif role == 'bias' and hasattr(module, 'bn'):  # BN folded into the conv: BN = + bias
            bn = module.bn
            state[f'{module_name}.bn.bias'] = value
            state[f'{module_name}.bn.weight'] = torch.ones_like(value)
            state[f'{module_name}.bn.running_mean'] = torch.zeros_like(value)
            # (x - 0) / sqrt((1 - eps) + eps) * 1 + bias: exactly x + bias
            state[f'{module_name}.bn.running_var'] = torch.full_like(value, 1 - bn.eps)
        elif role == 'bias':
            state[f'{module_name}.bias'] = value
        else:
            bn_key = {'gamma': 'weight', 'beta': 'bias', 'moving_mean': 'running_mean',
                      'moving_variance': 'running_var'}[role]
            state[f'{module_name}.bn.{bn_key}'] = value
    model_state = model.state_dict()
    for key in model_state:
        if key.endswith('num_batches_tracked'):
            state[key] = torch.tensor(0, dtype=torch.long)
    left = sorted(set(model_state) - set(state))
    if left:  # a module of the target model no TF scope accounts for
        raise ConversionError(f'the target model has tensors no TF variable maps to: {", ".join(left)}')
    return state


def read_labels(path: str) -> List[str]:
    """Class names, one a line (TF-slim's ``labels.txt`` style: ``background`` first for ImageNet's 1001)."""
    with open(path, encoding='utf-8') as file:
        names = [line.strip() for line in file if line.strip()]
    if not names:
        raise ConversionError(f'{path}: no class names in the labels file')
    return names


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
    ``Config``) whose model they must fit. ImageNet classifiers convert to ``MobileNetV2Classifier`` keys at the
    file's width, with TF's 'SAME' padding; ``labels`` (a text file, one class name a line) gives their class names.
    A file with the backbone only (TF-slim's float variables without the classifier's kernel) converts the backbone.
    A ``config`` given with a file that is not a segmentation model is refused (it could not be honoured).
    Returns ``(state_dict, meta)``; ``meta['dataset_meta']['classes']`` holds the class names where known.
    """
    variables = read_tf_variables(path)
    meta = dict(tf_source=dict(file=path, kind=variables.kind, architecture=describe_file(variables)))
    ignored: Tuple[str, ...] = ()
    if variables.key('logits/semantic/weights') in variables.arrays:
        if config is None:
            raise ConversionError(f'{path} is a TF DeepLab segmentation model: give the config its weights are for')
        model, dataset_meta = _build_segmentor(config)
        if type(getattr(model, 'decode_head', None)).__name__ != 'MobileDeepLabV3Head':
            raise ConversionError(f'{config if isinstance(config, str) else "the config"}: builds a '
                                  f'{type(model).__name__}, not a Mobile DeepLabv3 (mmmnv2.MobileDeepLabV3Head), but '
                                  f'{path} is a TF DeepLab segmentation model; give a config of its task')
        meta['config'] = config if isinstance(config, str) else None
    else:
        if config is not None:  # the file decides the model here; a config would be silently ignored
            raise ConversionError(f'{path}: is {describe_file(variables)}, not a TF DeepLab segmentation model; it '
                                  f'converts to OpenMMLab\'s classifier keys without a config (drop the config '
                                  f'{config if isinstance(config, str) else "given"})')
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
    return model.decode_head.num_classes


def _build_segmentor(config) -> Tuple[nn.Module, dict]:
    from mmengine.config import Config

    from mmmnv2.utils import build_host_model, config_dataset_meta, drop_pretrained
    cfg = Config.fromfile(config) if isinstance(config, str) else copy.deepcopy(config)
    drop_pretrained(cfg.model)
    return build_host_model(cfg), dict(config_dataset_meta(cfg) or {})
