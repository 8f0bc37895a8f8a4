"""Faster PyTorch eager inference on CPU: batch norm folded into the convolutions, channels-last memory layout.

Neither changes what the model computes (up to float rounding); both are measured by
``tools/analysis_tools/benchmark.py``. Not from the paper: MobileNetV2's depthwise and 1x1 convolutions are cheap in
multiply-adds but memory-bound, so the layout and the number of passes over the activations dominate CPU latency.
"""
import torch
from mmcv.cnn import ConvModule
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.utils.fusion import fuse_conv_bn_eval


def fuse_conv_bn_layers(model: nn.Module) -> int:
    """Fold every batch norm that directly follows a convolution into it, in place; return how many were folded.

    Only pairs whose order is certain are fused: an mmcv ``ConvModule`` whose norm comes after its conv, and a
    ``Conv2d`` followed by a batch norm in an ``nn.Sequential``. (``mmcv.cnn.fuse_conv_bn`` pairs modules by the
    order they were registered in, which is not always the order ``forward`` applies them.) The folded norm is
    replaced by ``nn.Identity``. The model must be in eval mode: the running statistics are what is folded.
    """
    fused = 0
    for module in list(model.modules()):
        if isinstance(module, ConvModule):
            if (module.with_norm and isinstance(module.norm, _BatchNorm) and isinstance(module.conv, nn.Conv2d)
                    and module.order.index('conv') < module.order.index('norm')
                    and getattr(module, 'efficient_conv_bn_eval_forward', None) is None):
                module.conv = fuse_conv_bn_eval(module.conv, module.norm)
                setattr(module, module.norm_name, nn.Identity())
                fused += 1
        elif isinstance(module, nn.Sequential):
            for i in range(len(module) - 1):
                if type(module[i]) is nn.Conv2d and isinstance(module[i + 1], _BatchNorm):
                    module[i] = fuse_conv_bn_eval(module[i], module[i + 1])
                    module[i + 1] = nn.Identity()
                    fused += 1
    return fused


def optimize_for_inference(model: nn.Module, *, fuse_conv_bn: bool = True, channels_last: bool = True) -> nn.Module:
    """Put ``model`` in eval mode and make its eager CPU inference faster, in place; returns ``model``.

    ``fuse_conv_bn``: fold batch norms into the preceding convolutions (``fuse_conv_bn_layers``).
    ``channels_last``: store conv weights NHWC, so oneDNN runs the convolutions (and their outputs) channels-last;
    inputs may stay NCHW. Run the result under ``torch.inference_mode()``. The model can no longer be trained
    (its batch norms are gone); keep a copy if you need one.
    """
    model.eval()
    if fuse_conv_bn:
        fuse_conv_bn_layers(model)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    return model

