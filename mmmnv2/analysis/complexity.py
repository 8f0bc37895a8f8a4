"""Multiply-add counting the way the paper counts: conv and linear multiply-accumulates, BN folded away.

The paper's "MAdds" (Tables 4-7) count the multiply-accumulates of convolutions and fully connected layers only;
batch norm folds into the preceding conv at inference and activations, pooling and additions are not counted.
"""
from typing import Any, Callable

import torch
from mmengine.config import Config
from torch import nn


def count_parameters(model: nn.Module) -> int:
    """Number of parameters (trainable or not) of ``model``; BN affine parameters included, buffers excluded."""
    return sum(p.numel() for p in model.parameters())


@torch.no_grad()
def count_macs(model: nn.Module, run: Callable[[], Any]) -> int:
    """Multiply-accumulates of every ``Conv2d`` and ``Linear`` call made while ``run()`` executes ``model``.

    Counts are per call, so a module used twice (e.g. a shared head) is counted twice, as it costs twice.
    ``run`` should feed a batch of one.
    """
    total = 0

    def conv_hook(module: nn.Conv2d, inputs: Any, output: torch.Tensor) -> None:
        nonlocal total
        kernel = module.kernel_size[0] * module.kernel_size[1]
        total += output.numel() * (module.in_channels // module.groups) * kernel

    def linear_hook(module: nn.Linear, inputs: Any, output: torch.Tensor) -> None:
        nonlocal total
        total += output.numel() * module.in_features

    handles = []
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            handles.append(module.register_forward_hook(conv_hook))
        elif isinstance(module, nn.Linear):
            handles.append(module.register_forward_hook(linear_hook))
    try:
        run()
    finally:
        for handle in handles:
            handle.remove()
    return total


def forward_macs(model: nn.Module, height: int, width: int) -> int:
    """Multiply-adds of one test-time network pass of an MMDetection detector or MMSegmentation segmentor.

    The pass is the model's ``_forward`` (backbone, neck, heads; no box decoding, NMS or upsampling to the image)
    on one ``height`` x ``width`` image.
    """
    image = torch.zeros(1, 3, height, width)
    return count_macs(model, lambda: model._forward(image))


def tta_area_factor(cfg: Config) -> float:
    """Cost of the config's test-time augmentation relative to one pass on the original image.

    The sum, over the ``TestTimeAug`` scales and flips of ``tta_pipeline``, of scale^2 (paper Table 7's MF: six
    scales 0.5..1.75 and two flips, 17.375 passes).
    """
    test_time_aug = next(t for t in cfg.tta_pipeline if t['type'] == 'TestTimeAug')
    resizes, flips = test_time_aug['transforms'][0], test_time_aug['transforms'][1]
    if not (all(t['type'] == 'Resize' for t in resizes) and all(t['type'] == 'RandomFlip' for t in flips)):
        raise ValueError('expected TestTimeAug transforms [[Resize, ...], [RandomFlip, ...], ...]')
    return len(flips) * sum(t['scale_factor'] ** 2 for t in resizes)
