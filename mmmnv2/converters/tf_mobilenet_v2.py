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
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import Tensor, nn

from mmmnv2.models.backbones import MobileNetV2
from mmmnv2.models.backbones.mobilenet_v2 import LayerSpec

from .tf_sources import ConversionError, TFVariables

NUM_IMAGENET_CLASSES = 1001  # TF-slim's classifiers: 1000 ImageNet classes after a background class 0
TF_BN_EPS = 1e-3  # TF-slim's batch_norm default epsilon
_LISTED = 25  # names shown per category in an error message


class TFTarget(NamedTuple):
    """One conv (or linear) module of the target model and the TF scope of its variables.

    ``columns``: for a 'conv_bias' target whose outputs are a selection or reordering of TF's (an SSD predictor:
    box coordinates reordered, class columns picked), the TF output channel of each of ours, and ``tf_channels`` the
    number of TF's output channels.
    """
    module: str  # 'backbone.layer3.1.conv.0', 'decode_head.conv_seg', 'head.fc'
    scope: str  # 'MobilenetV2/expanded_conv_4/expand'
    kind: str  # 'conv_bn' (ConvModule with BN), 'conv_bias' (Conv2d with bias), 'linear'
    columns: Optional[Tuple[int, ...]] = None
    tf_channels: Optional[int] = None


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


def backbone_scopes(spec: LayerSpec, root: str = 'MobilenetV2') -> Tuple[str, ...]:
    """TF scopes of one backbone layer's convs, in the order of ``spec.conv_modules``; ``root`` is the backbone's
    scope (TF-slim and DeepLab: ``MobilenetV2``; the Object Detection API: ``FeatureExtractor/MobilenetV2``)."""
    if spec.module == 'conv1':
        return (f'{root}/Conv',)
    if spec.module == 'conv2':
        return (f'{root}/Conv_1',)
    index = int(spec.name.split('_')[1]) - 2  # layer_2 is TF's expanded_conv, layer_3 expanded_conv_1, ...
    block = f'{root}/expanded_conv' + (f'_{index}' if index else '')
    parts = ('depthwise', 'project') if spec.expanded_channels is None else ('expand', 'depthwise', 'project')
    return tuple(f'{block}/{part}' for part in parts)


def backbone_targets(model: nn.Module, root: str = 'MobilenetV2') -> List[TFTarget]:
    """The backbone's convs with their TF scopes under ``root`` (see ``backbone_scopes``)."""
    backbone = model.backbone
    if not isinstance(backbone, MobileNetV2):
        raise ConversionError(f'the target model\'s backbone is {type(backbone).__name__}, not mmmnv2.MobileNetV2')
    return [TFTarget(f'backbone.{module}', scope, 'conv_bn') for spec in backbone.layer_specs
            for module, scope in zip(spec.conv_modules, backbone_scopes(spec, root), strict=True)]


def tf_targets(model: nn.Module) -> List[TFTarget]:
    """Every conv/linear module of ``model`` with its TF scope: a MobileNetV2Classifier or a Mobile DeepLabv3."""
    targets = backbone_targets(model)
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
        shape = _tf_layout(conv.weight, depthwise)
        channels = (conv.out_channels,)
        if target.columns is not None:  # TF has more (or reordered) output channels: ours pick theirs
            shape, channels = (*shape[:3], target.tf_channels), (target.tf_channels,)
        expected[name] = (target.module, 'depthwise' if depthwise else 'conv', shape)
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
    # the Object Detection API keeps the backbone under FeatureExtractor/
    ssd = any(key.startswith('FeatureExtractor/MobilenetV2/') for key in variables.arrays)
    root = 'FeatureExtractor/' if ssd else ''
    arrays = {name: variables.arrays[variables.key(root + name)] for name in names
              if variables.key(root + name) in variables.arrays}
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
    predictors = [key for key in variables.arrays if key.endswith('ClassPredictor/weights')]
    first = [variables.arrays.get(f'BoxPredictor_0/{name}/weights')
             for name in ('ClassPredictor', 'BoxEncodingPredictor')]
    if predictors and all(array is not None for array in first):  # classes: outputs per anchor (4 box outputs)
        parts.append(f'SSD, {len(predictors)} box predictors, {first[0].shape[-1] * 4 // first[1].shape[-1]} classes')
    if variables.input_size:
        parts.append(f'input {variables.input_size[0]}x{variables.input_size[1]}')
    return ', '.join(parts) or 'no MobileNetV2 variables'


def describe_model(model: nn.Module) -> str:
    """The same facts about the target model."""
    if getattr(model, 'bbox_head', None) is not None:
        head = model.bbox_head
        return (f'{type(model).__name__}, width {model.backbone.widen_factor:g}, {len(head.cls_convs)} predictors, '
                f'{head.num_base_priors} anchors per location, {head.num_classes} classes')
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


def convert_tf_variables(variables: TFVariables, model: nn.Module, ignored: Sequence[str] = (),
                         targets: Optional[Sequence[TFTarget]] = None) -> Dict[str, Tensor]:
    """The state dict of ``model`` built from the file's variables; ConversionError unless they fit exactly.

    ``ignored``: keys of the file's variables that are known to have no place in the model. ``targets``: the
    model's modules and their TF scopes (default ``tf_targets(model)``: a classifier or a Mobile DeepLabv3).
    """
    targets = tf_targets(model) if targets is None else targets
    columns = {target.module: list(target.columns) for target in targets if target.columns is not None}
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
        if module_name in columns:  # TF's output channels (the last axis of kernel and bias) picked and ordered
            value = value[..., columns[module_name]]
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
