"""Multiply-add counting the way the paper counts: conv and linear multiply-accumulates, BN folded away.

The paper's "MAdds" (Tables 4-7) count the multiply-accumulates of convolutions and fully connected layers only;
batch norm folds into the preceding conv at inference and activations, pooling and additions are not counted.
"""
from typing import Any, Callable

import torch
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
