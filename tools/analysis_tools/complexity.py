"""Parameters and multiply-adds of MobileNetV2 beside the paper's Table 4.

    python tools/analysis_tools/complexity.py [--widths 0.35 0.5 0.75 1.0 1.4]

Counts follow the paper: multiply-adds are conv and linear multiply-accumulates at 224x224 (BN folded away);
parameters include the 1000-class classifier and BN's affine parameters.
"""
import argparse
from typing import Dict, List, Optional, Tuple

import torch
from torch import nn

from mmmnv2.models.backbones import MobileNetV2
from mmmnv2.utils import count_macs, count_parameters

# Paper Table 4 (ImageNet): width -> (parameters, multiply-adds).
PAPER_TABLE4: Dict[float, Tuple[float, float]] = {1.0: (3.4e6, 300e6), 1.4: (6.9e6, 585e6)}


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--widths', type=float, nargs='+', default=[0.35, 0.5, 0.75, 1.0, 1.4])
    args = parser.parse_args()
    print('MobileNetV2 ImageNet classifier at 224x224 (paper Table 4)')
    print(table(args.widths))


if __name__ == '__main__':
    main()
