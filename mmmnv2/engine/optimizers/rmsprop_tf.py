"""TensorFlow's RMSProp, the optimiser of the TF Object Detection API's SSDLite recipe (paper Sec. 6.2).

``ssdlite_mobilenet_v2_coco.config`` trains with ``rms_prop_optimizer`` (``momentum_optimizer_value`` 0.9, ``decay``
0.9, ``epsilon`` 1.0), i.e. ``tf.compat.v1.train.RMSPropOptimizer``, whose dense update is TF's
``training_ops.ApplyRMSProp`` (``tensorflow/core/kernels/training_ops.cc``)::

    ms  <- decay * ms + (1 - decay) * grad ** 2
    mom <- momentum * mom + lr * grad / sqrt(ms + epsilon)
    var <- var - mom

with ``ms`` initialised to **ones** (the optimizer's ``rms`` slot) and ``mom`` to zeros. PyTorch's ``RMSprop``
differs in three ways that matter at epsilon 1.0: it adds epsilon *outside* the square root
(``grad / (sqrt(ms) + eps)``), starts ``ms`` at zero, and keeps the learning rate out of the momentum buffer (so a
learning-rate change acts at once instead of through the buffer).

timm's ``RMSpropTF`` implements this update, but timm cannot be installed here: it requires torchvision, whose
wheels pin another torch than the one this project runs on. This class is the same update, written from TF's
documentation and kernel. Weight decay, as TF-slim's ``l2_regularizer(scale)`` adds ``scale * var`` to the
gradient, is added to the gradient before the update.
"""
from typing import Callable, Iterable, Optional

import torch
from torch.optim import Optimizer

from mmmnv2.registry import OPTIMIZERS


@OPTIMIZERS.register_module()
class RMSpropTF(Optimizer):
    """RMSProp with TensorFlow's update (``tf.compat.v1.train.RMSPropOptimizer``, not centred).

    Args:
        params: Parameters or parameter groups.
        lr: Learning rate (TF ``initial_learning_rate``; SSDLite 0.004).
        decay: Discount of the squared-gradient average (TF ``decay``, PyTorch's ``alpha``; SSDLite 0.9).
        momentum: TF ``momentum_optimizer_value`` (SSDLite 0.9).
        eps: Added to the average *inside* the square root (TF ``epsilon``; SSDLite 1.0).
        weight_decay: L2 coefficient added to the gradient as ``weight_decay * param`` (TF-slim ``l2_regularizer``;
            SSDLite 4e-5). Parameter groups may set their own (MMEngine's ``paramwise_cfg``).
        initial_accumulator_value: Start of the squared-gradient average (TF: 1.0).
    """

    def __init__(self, params: Iterable, lr: float = 0.004, decay: float = 0.9, momentum: float = 0.9,
                 eps: float = 1.0, weight_decay: float = 0.0, initial_accumulator_value: float = 1.0) -> None:
        for name, value in (('lr', lr), ('eps', eps), ('momentum', momentum), ('weight_decay', weight_decay),
                            ('initial_accumulator_value', initial_accumulator_value)):
            if not isinstance(value, (int, float)) or value < 0:
                raise ValueError(f'{name} must be a number >= 0, got {value!r}')
        if not 0.0 <= decay < 1.0:
            raise ValueError(f'decay must be in [0, 1), got {decay!r}')
        super().__init__(params, dict(lr=lr, decay=decay, momentum=momentum, eps=eps, weight_decay=weight_decay,
                                      initial_accumulator_value=initial_accumulator_value))

    @torch.no_grad()
    def step(self, closure: Optional[Callable] = None) -> Optional[torch.Tensor]:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for param in group['params']:
                if param.grad is None:
                    continue
                if param.grad.is_sparse:
                    raise TypeError('RMSpropTF does not support sparse gradients')
                grad = param.grad
                if group['weight_decay']:
                    grad = grad.add(param, alpha=group['weight_decay'])
                state = self.state[param]
                if not state:
                    state['step'] = 0
                    state['square_avg'] = torch.full_like(param, group['initial_accumulator_value'])
                    state['momentum_buffer'] = torch.zeros_like(param)
                state['step'] += 1
                square_avg, buffer = state['square_avg'], state['momentum_buffer']
                square_avg.mul_(group['decay']).addcmul_(grad, grad, value=1 - group['decay'])
                update = grad / (square_avg + group['eps']).sqrt()
                if group['momentum'] > 0:
                    buffer.mul_(group['momentum']).add_(update, alpha=group['lr'])
                    param.sub_(buffer)
                else:
                    param.sub_(update, alpha=group['lr'])
        return loss
