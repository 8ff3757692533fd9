"""Element-wise tanh and sigmoid on a GPU: CuPy's element-wise kernels (already one vectorised pass).

The same entry points as ``kernels/cpu/activation.py``.
"""
from __future__ import annotations

from minidl.kernels.cuda._backend import array_module


def tanh(x):
    return array_module(x).tanh(x)


def tanh_backward(grad, y):
    return grad * (1 - y * y)


def sigmoid(x):
    xp = array_module(x)
    e = xp.exp(-xp.abs(x))  # split by sign so that exp never overflows
    return xp.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype, copy=False)


def sigmoid_backward(grad, y):
    return grad * y * (1 - y)
