"""Reductions: sum, mean, var, max/min over dimensions."""
from __future__ import annotations

import numpy as np

from minidl.backend import get_array_module
from minidl.functions.function import Function


def normalize_dims(dim, ndim):
    """``dim`` (None, int or sequence) as a sorted tuple of non-negative axes."""
    if dim is None:
        return tuple(range(ndim))
    dims = (dim,) if isinstance(dim, int) else tuple(dim)
    out = []
    for d in dims:
        if not -max(ndim, 1) <= d < max(ndim, 1):
            raise IndexError(f"dim {d} is out of range for a tensor with {ndim} dimensions")
        out.append(d % max(ndim, 1))
    return tuple(sorted(set(out)))


def _expand_grad(g, shape, axes, keepdim):
    """Re-insert reduced axes so ``g`` broadcasts against the input of ``shape``."""
    xp = get_array_module(g)
    if not keepdim and axes:
        g = xp.expand_dims(g, axes)
    return g


class Sum(Function):
    def forward(self, a, dim=None, keepdim=False):
        self.axes = normalize_dims(dim, a.ndim)
        self.keepdim = keepdim
        self.shape = a.shape  # only the shape is needed for backward
        return a.sum(axis=self.axes, keepdims=keepdim) if a.ndim else a.copy()

    def backward(self, g):
        xp = self.xp
        g = _expand_grad(g, self.shape, self.axes if len(self.shape) else (), self.keepdim)
        return (xp.broadcast_to(g, self.shape).copy(),)


class Mean(Function):
    def forward(self, a, dim=None, keepdim=False):
        self.axes = normalize_dims(dim, a.ndim)
        self.keepdim = keepdim
        self.shape = a.shape
        self.count = 1
        for ax in self.axes:
            self.count *= a.shape[ax] if a.ndim else 1
        return a.mean(axis=self.axes, keepdims=keepdim) if a.ndim else a.copy()

    def backward(self, g):
        xp = self.xp
        g = _expand_grad(g, self.shape, self.axes if len(self.shape) else (), self.keepdim)
        return (xp.broadcast_to(g / self.count, self.shape).copy(),)


class Var(Function):
    """Variance with Bessel's correction by default (``correction=1``), as PyTorch."""

    def forward(self, a, dim=None, keepdim=False, correction=1):
        self.axes = normalize_dims(dim, a.ndim)
        self.keepdim = keepdim
        n = 1
        for ax in self.axes:
            n *= a.shape[ax]
        self.denominator = max(n - correction, 0)
        centred = a - a.mean(axis=self.axes, keepdims=True)
        self.save_for_backward(centred)  # d var / d a = 2 (a - mean) / (n - correction)
        quiet = np.errstate(divide="ignore", invalid="ignore")  # n <= correction gives nan, as PyTorch
        with quiet:
            return (centred * centred).sum(axis=self.axes, keepdims=keepdim) / self.denominator

    def backward(self, g):
        (centred,) = self.saved
        g = _expand_grad(g, centred.shape, self.axes, self.keepdim)
        return (g * 2 * centred / self.denominator,)


class MaxMin(Function):
    """max or min over dims; the gradient flows to the selected elements.

    Over all elements (dim=None) ties share the gradient evenly, as PyTorch's
    ``amax``; over one dim the gradient goes to the returned index.
    """

    def forward(self, a, dim=None, keepdim=False, largest=True):
        xp = self.xp
        self.shape = a.shape
        self.keepdim = keepdim
        self.dim = dim
        if dim is None:
            out = a.max() if largest else a.min()
            self.save_for_backward(a == out)
            return xp.asarray(out)
        self.axis = normalize_dims(dim, a.ndim)[0]
        index = a.argmax(axis=self.axis) if largest else a.argmin(axis=self.axis)
        self.index = xp.expand_dims(index, self.axis)
        self.save_for_backward(self.index)
        out = xp.take_along_axis(a, self.index, axis=self.axis)
        return out if keepdim else out.squeeze(self.axis)

    def backward(self, g):
        xp = self.xp
        if self.dim is None:
            (mask,) = self.saved
            return (g * mask / mask.sum(),)
        (index,) = self.saved
        if not self.keepdim:
            g = xp.expand_dims(g, self.axis)
        grad = xp.zeros(self.shape, dtype=g.dtype)
        xp.put_along_axis(grad, index, g, axis=self.axis)
        return (grad,)
