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
    """Drop whole residual branches at random: torchvision's ``ops.stochastic_depth``.

    ``mode="row"`` draws one ``b ~ Bernoulli(1 - p)`` per sample (a mask of shape (N, 1, ..., 1));
    ``mode="batch"`` one for the whole batch. The result is ``input * b / (1 - p)`` (``input * 0``
    when ``p == 1``); with ``training=False`` or ``p == 0`` it is ``input`` itself.
    ``generator``: a ``numpy.random.Generator`` (default: minidl's, seeded by ``manual_seed``).

    >>> import minidl
    >>> x = minidl.ones(2, 3)
    >>> stochastic_depth(x, 0.5, "row", training=False) is x
    True
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
    """Module form of :func:`stochastic_depth` (torchvision's ``ops.StochasticDepth(p, mode)``).

    Active only in training mode: ``model.eval()`` makes it the identity.
    """

    def __init__(self, p, mode="row"):
        super().__init__()
        _check(p, mode, "StochasticDepth")
        self.p, self.mode = p, mode

    def forward(self, input):
        return stochastic_depth(input, self.p, self.mode, self.training)

    def extra_repr(self):
        return f"p={self.p}, mode={self.mode}"
