"""``mmmnv2.RMSpropTF`` against TF's RMSProp update, written here from ``tf.compat.v1.train.RMSPropOptimizer``'s
documentation and TF's ``ApplyRMSProp`` kernel: ms starts at 1, epsilon inside the square root, lr inside momentum."""
import numpy as np
import pytest
import torch
from mmengine.optim import build_optim_wrapper

from mmmnv2.engine import RMSpropTF

A = np.array([0.5, 2.0, -1.0, 3.0])
B = np.array([1.0, -0.5, 0.25, 0.0])
W0 = np.array([0.3, -0.7, 1.1, 0.05])
LRS = [0.004, 0.004, 0.004, 0.002, 0.002, 0.002]  # a learning-rate change part way


def gradient(w):  # of sum(A * w**2 + B * w)
    return 2 * A * w + B


def tf_rmsprop(lr_per_step, decay=0.9, momentum=0.9, eps=1.0, weight_decay=4e-5):
    w, ms, mom = W0.copy(), np.ones_like(W0), np.zeros_like(W0)
    for lr in lr_per_step:
        g = gradient(w) + weight_decay * w  # TF-slim l2_regularizer(scale): d/dw = scale * w
        ms = decay * ms + (1 - decay) * g * g
        mom = momentum * mom + lr * g / np.sqrt(ms + eps)
        w = w - mom
    return w


def run(optimizer_cls, **kwargs):
    w = torch.nn.Parameter(torch.tensor(W0, dtype=torch.float64))
    optimizer = optimizer_cls([w], lr=LRS[0], **kwargs)
    for lr in LRS:
        for group in optimizer.param_groups:
            group['lr'] = lr
        optimizer.zero_grad()
        (torch.tensor(A) * w ** 2 + torch.tensor(B) * w).sum().backward()
        optimizer.step()
    return w.detach().numpy()


def test_update_equals_tf_formula_over_several_steps():
    ours = run(RMSpropTF, decay=0.9, momentum=0.9, eps=1.0, weight_decay=4e-5)
    np.testing.assert_allclose(ours, tf_rmsprop(LRS), rtol=1e-12, atol=1e-14)
    assert not np.allclose(ours, W0)


def test_pytorch_rmsprop_is_not_tf_rmsprop():
    # the control: PyTorch's update with the same hyper-parameters ends elsewhere, so the test above can fail
    theirs = run(torch.optim.RMSprop, alpha=0.9, momentum=0.9, eps=1.0, weight_decay=4e-5)
    assert np.abs(theirs - tf_rmsprop(LRS)).max() > 1e-3


def test_built_from_an_mmengine_config():
    model = torch.nn.Linear(2, 2)
    wrapper = build_optim_wrapper(model, dict(
        type='OptimWrapper', optimizer=dict(type='mmmnv2.RMSpropTF', lr=0.004, momentum=0.9, decay=0.9, eps=1.0)))
    assert isinstance(wrapper.optimizer, RMSpropTF)
    assert wrapper.optimizer.defaults['eps'] == 1.0 and wrapper.optimizer.defaults['decay'] == 0.9


@pytest.mark.parametrize('kwargs', [dict(lr=-1), dict(decay=1.0), dict(eps=-1e-3)])
def test_bad_hyper_parameters_are_refused(kwargs):
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        RMSpropTF([torch.nn.Parameter(torch.zeros(1))], **kwargs)
