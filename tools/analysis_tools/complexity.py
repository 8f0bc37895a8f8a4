"""Parameters and multiply-adds of MobileNetV2 (paper Table 4) and of every config, beside the paper's figures.

    python tools/analysis_tools/complexity.py [CONFIG ...] [--widths 0.35 0.5 0.75 1.0 1.4]

Counts follow the paper: multiply-adds are conv and linear multiply-accumulates (BN folded away), parameters include
BN's affine parameters. The first table is the ImageNet classifier at 224x224 (1000-class linear layer included).
The second has one row per config (all of ``configs/`` unless CONFIGs are given): the config's model measured at
its test input size (segmentation: the crop size, 512x512 for VOC; detection: the test ``Resize`` scale, for
RetinaNet's ``keep_ratio`` the 1333x800 bound), beside paper Tables 6 and 7 ('-' where the paper has no figure).

The Table 7 rows also show the count at 513x513 ("MAdds 513"): our configs crop 512x512, the size the paper
states, but TF DeepLab, whose models Table 7 reports, evaluates 513x513 crops, and at 513 our no-ASPP counts meet
the paper's (its ASPP figures, 5.8B and 387B, match no count we know of). The OS 8 rows of Table 7 are evaluated
with multi-scale inputs and flips (MF); for them, as in the paper, the multiply-adds are the sum over all passes of
the config's ``tta_pipeline`` (``tools/test.py --tta``), as the "eval" column says.
"""
import argparse
import glob
import os.path as osp
from typing import Dict, List, Optional, Tuple

import torch
from mmengine.config import Config
from torch import nn

from mmmnv2.analysis import count_macs, count_parameters, forward_macs, tta_area_factor
from mmmnv2.models.backbones import MobileNetV2
from mmmnv2.utils import build_host_model, config_host, config_input_size

CONFIG_DIR = osp.join(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))), 'configs')
TF_DEEPLAB_CROP = 513

# Paper Table 4 (ImageNet): width -> (parameters, multiply-adds).
PAPER_TABLE4: Dict[float, Tuple[float, float]] = {1.0: (3.4e6, 300e6), 1.4: (6.9e6, 585e6)}
# Paper Tables 6 and 7: config file name -> (table, parameters, multiply-adds, multiply-adds are over MF passes).
PAPER_CONFIGS: Dict[str, Tuple[str, float, float, bool]] = {
    'ssdlite_mobilenetv2_8xb24-600e_coco-320x320.py': ('Table 6', 4.3e6, 0.8e9, False),
    'mobile-deeplabv3_mobilenetv2-os16_4xb4-30k_voc12aug-512x512.py': ('Table 7', 2.11e6, 2.75e9, False),
    'mobile-deeplabv3-aspp_mobilenetv2-os16_4xb4-30k_voc12aug-512x512.py': ('Table 7', 4.52e6, 5.8e9, False),
    'mobile-deeplabv3_mobilenetv2-os8_4xb4-30k_voc12aug-512x512.py': ('Table 7', 2.11e6, 152.6e9, True),
    'mobile-deeplabv3-aspp_mobilenetv2-os8_4xb4-30k_voc12aug-512x512.py': ('Table 7', 4.52e6, 387e9, True),
}


def classifier_complexity(widen_factor: float, size: int = 224, num_classes: int = 1000) -> Tuple[int, int]:
    """(parameters, multiply-adds) of the ImageNet classifier: backbone to layer_19, pooling, linear layer."""
    backbone = MobileNetV2(widen_factor=widen_factor, out_endpoints=('layer_19',)).eval()
    fc = nn.Linear(backbone.out_channels[-1], num_classes)
    model = nn.ModuleList([backbone, fc])

    def classify() -> torch.Tensor:
        return fc(backbone(torch.zeros(1, 3, size, size))[0].mean((2, 3)))

    return count_parameters(model), count_macs(model, classify)


def table(widths: List[float]) -> str:
    def fmt(value: Optional[float], unit: float, suffix: str) -> str:
        return '-' if value is None else f'{value / unit:.2f}{suffix}'

    rows = ['| width | params (ours) | params (paper) | MAdds (ours) | MAdds (paper) |', '|---|---|---|---|---|']
    for width in widths:
        params, macs = classifier_complexity(width)
        paper_params, paper_macs = PAPER_TABLE4.get(width, (None, None))
        rows.append(f'| {width} | {fmt(params, 1e6, "M")} | {fmt(paper_params, 1e6, "M")} '
                    f'| {fmt(macs, 1e6, "M")} | {fmt(paper_macs, 1e6, "M")} |')
    return '\n'.join(rows)


def config_row(config: str) -> str:
    """One row of the configs table: our counts for ``config`` beside the paper's."""
    cfg = Config.fromfile(config)
    host = config_host(cfg)
    name = osp.basename(config)
    source, paper_params, paper_macs, paper_mf = PAPER_CONFIGS.get(name, ('-', None, None, False))
    model = build_host_model(cfg)
    height, width = config_input_size(cfg)
    passes = tta_area_factor(cfg) if paper_mf else 1.0
    macs = forward_macs(model, height, width) * passes
    macs_513 = '-'
    if source == 'Table 7':  # TF DeepLab's figures
        macs_513 = f'{forward_macs(model, TF_DEEPLAB_CROP, TF_DEEPLAB_CROP) * passes / 1e9:.3f}B'
    evaluation = f'MF x{passes:g}' if paper_mf else 'single'
    return (f'| {name} | {host.task} | {height}x{width} | {evaluation} | {count_parameters(model):,} | '
            f'{paper_figure(paper_params, 1e6, "M")} | {macs / 1e9:.3f}B | {macs_513} | '
            f'{paper_figure(paper_macs, 1e9, "B")} | {source} |')


def paper_figure(value: Optional[float], unit: float, suffix: str) -> str:
    """A paper figure as the paper prints it (4.3M, 152.6B), '-' for none."""
    return '-' if value is None else f'{value / unit:g}{suffix}'


def configs_table(configs: List[str]) -> str:
    rows = ['| config | task | input (HxW) | eval | params (ours) | params (paper) | MAdds (ours) | MAdds 513 (ours) '
            '| MAdds (paper) | paper |', '|---|---|---|---|---|---|---|---|---|---|']
    return '\n'.join(rows + [config_row(config) for config in configs])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('configs', nargs='*', help='config files (default: every config under configs/)')
    parser.add_argument('--widths', type=float, nargs='+', default=[0.35, 0.5, 0.75, 1.0, 1.4])
    args = parser.parse_args()
    configs = args.configs or sorted(p for p in glob.glob(osp.join(CONFIG_DIR, '**', '*.py'), recursive=True)
                                     if '_base_' not in p)
    print('MobileNetV2 ImageNet classifier at 224x224 (paper Table 4)')
    print(table(args.widths))
    print('\nEvery config at its test input size (paper Tables 6 and 7)')
    print(configs_table(configs))


if __name__ == '__main__':
    main()
