"""Stochastic depth (Huang et al. 2016, "Deep Networks with Stochastic Depth"), as ``torchvision.ops``.

A residual block computes ``x + branch(x)``; in training, stochastic depth drops the branch of a
sample with probability ``p`` (its output becomes ``x``) and scales the kept branches by
``1 / (1 - p)`` so that the expected output is unchanged; in evaluation it is the identity. The
zoo's EfficientNet, ConvNeXt and Vision Transformers use it with ``p`` growing linearly with depth.

``stochastic_depth(input, p, mode, training)`` is the function, ``StochasticDepth(p, mode)`` the
module (active only in training mode). The mask is a Tensor of 0 and ``1 / (1 - p)``, and the
product ``input * mask`` is an ordinary multiplication, so the gradient is masked the same way.
"""
from __future__ import annotations

from minidl import random as _random
from minidl.backend import get_array_module
from minidl.nn.module import Module
from minidl.tensor import Tensor

__all__ = ["StochasticDepth", "stochastic_depth"]


def _check(p, mode, who):
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"{who}: p must be in [0, 1], got {p}")
    if mode not in ("row", "batch"):
        raise ValueError(f"{who}: mode must be 'row' or 'batch', got {mode!r}")


def stochastic_depth(input, p, mode="row", training=True, generator=None):
    """Drop whole residual branches at random (Huang et al. 2016): torchvision's ops.stochastic_depth.

    ``generator``: a ``numpy.random.Generator`` (default: minidl's, seeded by ``manual_seed``).

    Formula: y = x * b / (1 - p), b ~ Bernoulli(1 - p) per sample ('row') or once ('batch');
             y = x * 0 when p == 1; y = x when not training or p == 0

    Args:
        input (Tensor): (N, *), usually a residual branch's output.
        p (float): drop probability.
        mode (str): 'row' or 'batch'. Default: 'row'.
        training (bool): Default: True.
        generator (numpy.random.Generator, optional): Default: None.

    Shape:
        input (N, *), output the same.

    >>> import minidl
    >>> from minidl import ops
    >>> g = minidl.manual_seed(0)
    >>> ops.stochastic_depth(minidl.ones(4, 2), 0.5)
    tensor([[0., 0.],
            [2., 2.],
            [2., 2.],
            [2., 2.]])
    >>> x = minidl.ones(2, 3)
    >>> ops.stochastic_depth(x, 0.5, 'row', training=False) is x
    True

    See docs/lrn_dropout.md.
    """
    _check(p, mode, "stochastic_depth")
    if not training or p == 0.0:
        return input
    survival = 1.0 - p
    shape = (input.shape[0],) + (1,) * (input.ndim - 1) if mode == "row" else (1,) * input.ndim
    xp = get_array_module(input.data)  # drawn on the input's device
    noise = (_random.uniform(xp, shape, generator) < survival).astype(input.dtype)
    if survival > 0.0:
        noise /= survival
    return input * Tensor(noise)


class StochasticDepth(Module):
    """Stochastic depth as a layer (torchvision's ops.StochasticDepth): active only in train().

    Formula: train(): y = x * b / (1 - p) with b ~ Bernoulli(1 - p) per sample or per batch; eval(): y = x

    Args:
        p (float): drop probability.
        mode (str): 'row' or 'batch'. Default: 'row'.

    Shape:
        input (N, *), output the same.

    >>> import minidl
    >>> from minidl import ops
    >>> g = minidl.manual_seed(0)
    >>> sd = ops.StochasticDepth(0.5)
    >>> sd(minidl.ones(4, 1)).flatten()
    tensor([0., 2., 2., 2.])
    >>> sd.eval()(minidl.ones(4, 1)).flatten()
    tensor([1., 1., 1., 1.])

    See docs/lrn_dropout.md.
    """

    def __init__(self, p, mode="row"):
        super().__init__()
        _check(p, mode, "StochasticDepth")
        self.p, self.mode = p, mode

    def forward(self, input):
        return stochastic_depth(input, self.p, self.mode, self.training)

    def extra_repr(self):
        return f"p={self.p}, mode={self.mode}"
