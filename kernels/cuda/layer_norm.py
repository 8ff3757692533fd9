"""Layer, group and instance normalisation on the GPU: the same entry points as ``kernels/cpu/layer_norm.py``.

Written with CuPy array operations (reductions over the group axes, then element-wise
expressions) rather than hand-written ``numba.cuda`` kernels; CuPy fuses little, so this is
several passes over the data where the CPU kernel makes two, but it is the same maths
(``kernels/reference/layer_norm.py``) and the same layout: x (B, G, K, L), one group per
(b, g), channel ``c = g*K + k``. With NumPy arrays it runs on the CPU, which is how the
tests check it without a GPU.
"""
from __future__ import annotations

import numpy as np

from minidl.kernels.cuda._backend import array_module


def _affine(xp, v, n_g, n_k, default):
    """A (G*K,) parameter as float64 of shape (G, K, 1), for broadcasting against (B, G, K, L)."""
    if v is None:
        return xp.full((n_g, n_k, 1), default, dtype=np.float64)
    if tuple(v.shape) != (n_g * n_k,):
        raise ValueError(f"expected a parameter of shape ({n_g * n_k},), got {tuple(v.shape)}")
    return v.astype(np.float64).reshape(n_g, n_k, 1)


def group_norm_forward(x, weight, bias, eps):
    """x (B, G, K, L); weight, bias (G*K,) or None. Returns (y in x's dtype, mean (B, G), rstd (B, G))."""
    xp = array_module(x)
    n_b, n_g, n_k, n_l = x.shape
    x64 = x.astype(np.float64)
    mean = x64.mean(axis=(2, 3))
    var = ((x64 - mean[:, :, None, None]) ** 2).mean(axis=(2, 3))
    rstd = 1.0 / xp.sqrt(var + eps)
    xhat = (x64 - mean[:, :, None, None]) * rstd[:, :, None, None]
    y = xhat * _affine(xp, weight, n_g, n_k, 1.0) + _affine(xp, bias, n_g, n_k, 0.0)
    return y.astype(x.dtype), mean, rstd


def group_norm_backward(dy, x, weight, mean, rstd, need_dx=True, need_affine=True):
    """(dx or None, dweight or None, dbias or None) of group_norm_forward, in x's dtype."""
    xp = array_module(x)
    n_b, n_g, n_k, n_l = x.shape
    m = n_k * n_l
    dy64 = dy.astype(np.float64)
    r = rstd[:, :, None, None]
    xhat = (x.astype(np.float64) - mean[:, :, None, None]) * r
    dx = dw = db = None
    if need_dx:
        dxhat = dy64 * _affine(xp, weight, n_g, n_k, 1.0)
        mean_dxhat = dxhat.sum(axis=(2, 3), keepdims=True) / max(m, 1)
        mean_dxhat_xhat = (dxhat * xhat).sum(axis=(2, 3), keepdims=True) / max(m, 1)
        dx = (r * (dxhat - mean_dxhat - xhat * mean_dxhat_xhat)).astype(x.dtype)
    if need_affine:
        dw = (dy64 * xhat).sum(axis=(0, 3)).reshape(-1).astype(x.dtype)
        db = dy64.sum(axis=(0, 3)).reshape(-1).astype(x.dtype)
    return dx, dw, db


def layer_norm_forward(x, weight, bias, eps):
    """x (M, D), each row normalised; weight, bias (D,) or None. Returns (y, mean (M,), rstd (M,))."""
    m, d = x.shape
    y, mean, rstd = group_norm_forward(x.reshape(m, 1, d, 1), weight, bias, eps)
    return y.reshape(m, d), mean[:, 0], rstd[:, 0]


def layer_norm_backward(dy, x, weight, mean, rstd, need_dx=True, need_affine=True):
    """(dx (M, D) or None, dweight (D,) or None, dbias (D,) or None) of layer_norm_forward."""
    m, d = x.shape
    dx, dw, db = group_norm_backward(dy.reshape(m, 1, d, 1), x.reshape(m, 1, d, 1), weight,
                                     mean.reshape(m, 1), rstd.reshape(m, 1), need_dx, need_affine)
    return (dx.reshape(m, d) if dx is not None else None), dw, db
