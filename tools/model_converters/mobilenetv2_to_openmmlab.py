"""Convert a torchvision or timm MobileNetV2 ImageNet checkpoint to OpenMMLab's (mmcls/mmpretrain) layout.

    python tools/model_converters/mobilenetv2_to_openmmlab.py SRC DST --source {torchvision,timm} [--debug]

SRC holds torchvision's ``mobilenet_v2`` state dict (``features.{0..18}.*``, ``classifier.1.*``) or timm's
``mobilenetv2_100`` one (``conv_stem``/``bn1``, ``blocks.{stage}.{block}.*``, ``conv_head``/``bn2``,
``classifier``), bare or nested under ``'state_dict'`` or ``'model'``. DST receives ``{'state_dict': ...}`` with
the keys of OpenMMLab's MobileNetV2 classifier (``backbone.conv1``, ``backbone.layer{1..7}.{j}.conv.{k}``,
``backbone.conv2``, ``head.fc``), which this project's backbone loads with
``init_cfg=dict(type='Pretrained', checkpoint=DST, prefix='backbone.')``. The keys do not depend on the width
multiplier, so other widths convert too (build the backbone with the matching ``widen_factor``).

The key mapping is derived from the backbone's architecture table (``layer_specs``), not listed by hand. Every
source key must be used and every target key produced; otherwise nothing is written and the offending keys are
listed. The source is read with ``torch.load(..., weights_only=True)``: a file holding anything but tensors and
plain containers is refused, never unpickled; a truncated or damaged one is named. DST may not be SRC (also through
links); it is written through a temporary file and renamed into place. Refusals print one line
``error: <file>: <reason>`` and exit with status 1 (``--debug``: the traceback).
"""
import argparse
from typing import Callable, Dict, List, Mapping, Optional, Tuple

import torch

from mmmnv2.models.backbones.mobilenet_v2 import LayerSpec, layer_specs
from mmmnv2.utils import (
    add_debug_argument,
    load_checkpoint_file,
    one_line_errors,
    refuse_overwriting_inputs,
    replace_when_written,
)

# Parameters and buffers of each kind of module; BN's ``num_batches_tracked`` may be absent from a source.
PARAMS = {
    'conv': ('weight',),
    'bn': ('weight', 'bias', 'running_mean', 'running_var', 'num_batches_tracked'),
    'fc': ('weight', 'bias'),
}
OPTIONAL_PARAMS = ('num_batches_tracked',)

# (source module, OpenMMLab module, kind)
ModuleMap = List[Tuple[str, str, str]]


class ConversionError(ValueError):
    """The source checkpoint does not have exactly the keys the chosen layout implies."""


def _is_block(spec: LayerSpec) -> bool:
    """Whether the layer is an inverted residual block (``layer{s}.{j}``) rather than the first or last conv."""
    return '.' in spec.module


def _torchvision_layer(index: int, spec: LayerSpec) -> List[Tuple[str, str]]:
    """(conv, BN) source modules of ``features.{index}``, in OpenMMLab's ConvModule order."""
    prefix = f'features.{index}'
    if not _is_block(spec):  # Conv2dNormActivation: [Conv2d, BN, ReLU6]
        return [(f'{prefix}.0', f'{prefix}.1')]
    # InvertedResidual.conv: a [Conv2d, BN, ReLU6] Sequential for the expansion (t != 1) and the depthwise conv,
    # then the linear projection's bare Conv2d and BN.
    count = 2 if spec.expanded_channels is None else 3
    pairs = [(f'{prefix}.conv.{k}.0', f'{prefix}.conv.{k}.1') for k in range(count - 1)]
    return pairs + [(f'{prefix}.conv.{count - 1}', f'{prefix}.conv.{count}')]


def _timm_layer(index: int, spec: LayerSpec) -> List[Tuple[str, str]]:
    """(conv, BN) source modules of one timm layer, in OpenMMLab's ConvModule order (timm numbers by stage)."""
    if spec.module == 'conv1':
        return [('conv_stem', 'bn1')]
    if spec.module == 'conv2':
        return [('conv_head', 'bn2')]
    prefix = f'blocks.{spec.stage - 1}.{spec.module.split(".")[1]}'  # 'layer3.1' -> 'blocks.2.1'
    # DepthwiseSeparableConv (t=1) has no expansion; InvertedResidual has conv_pw (expansion) first.
    convs = ('conv_dw', 'conv_pw') if spec.expanded_channels is None else ('conv_pw', 'conv_dw', 'conv_pwl')
    return [(f'{prefix}.{conv}', f'{prefix}.bn{k}') for k, conv in enumerate(convs, start=1)]


LayerMapper = Callable[[int, LayerSpec], List[Tuple[str, str]]]
SOURCES: Dict[str, Tuple[LayerMapper, str]] = {
    # source name: (per-layer mapper, classifier's Linear module)
    'torchvision': (_torchvision_layer, 'classifier.1'),
    'timm': (_timm_layer, 'classifier'),
}


def module_map(source: str) -> ModuleMap:
    """Source module -> OpenMMLab module, for every conv, BN and the classifier of the network."""
    mapper, classifier = SOURCES[source]
    mapping: ModuleMap = []
    for index, spec in enumerate(layer_specs()):
        pairs = mapper(index, spec)
        targets = [f'backbone.{module}' for module in spec.conv_modules]
        for (conv, bn), target in zip(pairs, targets, strict=True):
            mapping += [(conv, f'{target}.conv', 'conv'), (bn, f'{target}.bn', 'bn')]
    mapping.append((classifier, 'head.fc', 'fc'))
    return mapping


def key_map(source: str) -> Dict[str, str]:
    """Source key -> OpenMMLab key."""
    return {f'{src}.{param}': f'{dst}.{param}' for src, dst, kind in module_map(source) for param in PARAMS[kind]}


def convert(state_dict: Mapping[str, torch.Tensor], source: str) -> Dict[str, torch.Tensor]:
    """Rename a torchvision/timm MobileNetV2 state dict to OpenMMLab's keys; every key must be accounted for."""
    mapping = key_map(source)
    unexpected = sorted(set(state_dict) - set(mapping))
    missing = sorted(key for key in set(mapping) - set(state_dict) if key.rsplit('.', 1)[1] not in OPTIONAL_PARAMS)
    if unexpected or missing:
        lines = [f'not a {source} MobileNetV2 state dict:']
        if unexpected:
            lines.append(f'  {len(unexpected)} unexpected key(s): {", ".join(unexpected)}')
        if missing:
            lines.append(f'  {len(missing)} missing key(s): {", ".join(missing)}')
        others = [name for name in SOURCES if name != source and set(state_dict) <= set(key_map(name))]
        if others:
            lines.append(f'  its keys are those of a {others[0]} checkpoint: use --source {others[0]}')
        raise ConversionError('\n'.join(lines))
    converted = {}
    for src, dst in mapping.items():
        if src in state_dict:
            converted[dst] = state_dict[src]
        else:  # an absent BN counter: start it at zero, as a fresh BatchNorm2d does
            converted[dst] = torch.tensor(0, dtype=torch.long)
    return converted


def load_source(path: str) -> Dict[str, torch.Tensor]:
    """The state dict in ``path`` (bare, or under 'state_dict' / 'model'), loaded without running pickled code."""
    checkpoint = load_checkpoint_file(path)  # weights-only; a truncated or damaged file is named
    if not isinstance(checkpoint, dict):
        raise ConversionError(f'it holds a {type(checkpoint).__name__}, not a state dict')
    for wrapper in ('state_dict', 'model'):
        if isinstance(checkpoint.get(wrapper), dict):
            checkpoint = checkpoint[wrapper]
            break
    bad = sorted(str(key) for key, value in checkpoint.items() if not isinstance(value, torch.Tensor))
    if bad:
        raise ConversionError(f'entries that are not tensors: {", ".join(bad)}')
    return checkpoint


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('src', help='torchvision or timm MobileNetV2 checkpoint')
    parser.add_argument('dst', help='output checkpoint, OpenMMLab layout')
    parser.add_argument('--source', required=True, choices=sorted(SOURCES), help='library that wrote SRC')
    add_debug_argument(parser)
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)
    with one_line_errors(args.debug):
        refuse_overwriting_inputs(args.dst, [args.src], 'output checkpoint')
        try:
            state_dict = convert(load_source(args.src), args.source)
        except ConversionError as error:
            raise ConversionError(f'{args.src}: {error}') from error
        with replace_when_written(args.dst) as temporary:
            torch.save({'state_dict': state_dict}, temporary)
    print(f'{args.source} -> OpenMMLab: {len(state_dict)} tensors written to {args.dst}')


if __name__ == '__main__':
    main()
