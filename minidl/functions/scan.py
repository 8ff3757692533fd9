"""Cumulative ops (cumsum, cumprod, logcumsumexp) and the index choices behind sort, cummax/cummin,
median, mode, kthvalue and unique.

Ops that return ``(values, indices)`` pick the indices here, on raw arrays (no gradient);
the values are then ``TakeAlong(a, indices)``, whose backward sends each gradient back to
the element that was picked.
"""
from __future__ import annotations

import numpy as np

from minidl.backend import get_array_module, scatter_add
from minidl.functions.function import Function


def _quiet():
    return np.errstate(divide="ignore", invalid="ignore", over="ignore")


# ----------------------------------------------------------------------------- cumulative ops
class CumSum(Function):
    def forward(self, a, dim, dtype=None):
        self.dim = dim
        return self.xp.cumsum(a, axis=dim, dtype=dtype)

    def backward(self, g):
        xp = self.xp
        # out_j = sum_{i<=j} a_i, so d/da_i = sum_{j>=i} g_j: a cumsum from the end
        return (xp.flip(xp.cumsum(xp.flip(g, self.dim), axis=self.dim), self.dim),)


class CumProd(Function):
    """out_j = a_0 a_1 ... a_j.

    d/da_i = sum_{j>=i} g_j prod_{k<=j, k!=i} a_k = (prod_{k<i} a_k) * S_i, with
    S_i = g_i + a_{i+1} S_{i+1} run from the end: no division, so zeros need no special case.
    """

    def forward(self, a, dim, dtype=None):
        self.dim = dim
        self.save_for_backward(a)
        return self.xp.cumprod(a, axis=dim, dtype=dtype)

    def backward(self, g):
        (a,) = self.saved
        xp = self.xp
        x = xp.moveaxis(a, self.dim, -1)
        g = xp.moveaxis(g, self.dim, -1).astype(x.dtype)
        n = x.shape[-1]
        if n == 0:
            return (xp.zeros_like(a),)
        s = xp.empty_like(g)
        s[..., n - 1] = g[..., n - 1]
        for i in range(n - 2, -1, -1):
            s[..., i] = g[..., i] + x[..., i + 1] * s[..., i + 1]
        before = xp.cumprod(x, axis=-1)  # prod_{k<i} a_k: the cumprod shifted right by one
        before = xp.concatenate([xp.ones_like(x[..., :1]), before[..., :-1]], axis=-1)
        return (xp.moveaxis(before * s, -1, self.dim),)


class LogCumSumExp(Function):
    """out_j = log(sum_{i<=j} e^(a_i)), accumulated with logaddexp (stable for large values).

    d/da_i = sum_{j>=i} g_j e^(a_i - out_j) = e^(a_i - out_i) R_i, with
    R_i = g_i + e^(out_i - out_{i+1}) R_{i+1} from the end (out grows with j: each factor is <= 1).
    """

    def forward(self, a, dim):
        self.dim = dim
        xp = self.xp
        if a.size == 0:
            out = a.copy()
        elif xp is np:
            out = np.logaddexp.accumulate(a, axis=dim)
        else:  # not every array library has ufunc.accumulate
            out = running_logaddexp(xp, a, dim)
        self.save_for_backward(a, out)
        return out

    def backward(self, g):
        a, out = self.saved
        xp = self.xp
        x, o = xp.moveaxis(a, self.dim, -1), xp.moveaxis(out, self.dim, -1)
        g = xp.moveaxis(g, self.dim, -1)
        n = x.shape[-1]
        if n == 0:
            return (xp.zeros_like(a),)
        r = xp.empty_like(g)
        r[..., n - 1] = g[..., n - 1]
        with _quiet():
            for i in range(n - 2, -1, -1):
                step = xp.exp(o[..., i] - o[..., i + 1])
                r[..., i] = g[..., i] + xp.where(xp.isfinite(step), step, 0) * r[..., i + 1]
            grad = xp.where(xp.isinf(x) & (x < 0), 0, xp.exp(x - o) * r)
        return (xp.moveaxis(grad, -1, self.dim),)


def running_logaddexp(xp, a, dim):
    """``logaddexp.accumulate`` one position at a time: out_i = logaddexp(out_{i-1}, a_i)."""
    x = xp.moveaxis(a, dim, -1)
    out = xp.empty_like(x)
    out[..., 0] = x[..., 0]
    for i in range(1, x.shape[-1]):
        out[..., i] = xp.logaddexp(out[..., i - 1], x[..., i])
    return xp.moveaxis(out, -1, dim)


# ----------------------------------------------------------------------------- values at chosen indices
class TakeAlong(Function):
    """a's values at ``index`` along ``dim`` (same rank as a); the gradient is added back there."""

    def forward(self, a, index, dim):
        self.dim, self.shape = dim, a.shape
        self.save_for_backward(index)
        return self.xp.take_along_axis(a, index, axis=dim)

    def backward(self, g):
        (index,) = self.saved
        xp = self.xp
        grad = xp.zeros(self.shape, dtype=g.dtype)
        # the position of every picked element: index along dim, its own coordinate along the others
        ndim = index.ndim
        where = [xp.arange(n).reshape([-1 if d == k else 1 for k in range(ndim)]) for d, n in enumerate(index.shape)]
        where[self.dim % ndim] = index
        # add, not put: an index may repeat (cummax picks one element for many outputs)
        scatter_add(xp, grad, tuple(where), g)
        return grad, None


def sort_indices(a, dim=-1, descending=False):
    """Stable sort order along dim; NaN counts as the largest value, as in PyTorch."""
    xp = get_array_module(a)
    if a.dtype.kind == "b":
        a = a.astype(np.uint8)
    if not descending:
        return xp.argsort(a, axis=dim, kind="stable")
    # descending and stable: sort the reversed array ascending, then reverse the order back,
    # so that equal values keep their original order
    n = a.shape[dim]
    order = xp.argsort(xp.flip(a, dim), axis=dim, kind="stable")
    return (n - 1) - xp.flip(order, dim)


def cum_extreme_indices(a, dim, largest):
    """Index of the running max (or min) along dim; on ties the latest index, NaN wins (PyTorch)."""
    xp = get_array_module(a)
    x = xp.moveaxis(a, dim, -1)
    out = xp.empty(x.shape, dtype=np.int64)
    if x.shape[-1] == 0:
        return xp.moveaxis(out, -1, dim)
    best = x[..., 0].copy()
    best_index = xp.zeros(x.shape[:-1], dtype=np.int64)
    out[..., 0] = 0
    for i in range(1, x.shape[-1]):
        v = x[..., i]
        better = (v >= best) if largest else (v <= best)
        if x.dtype.kind == "f":  # a NaN beats everything, and a later NaN takes over the index
            better = xp.isnan(v) | (better & ~xp.isnan(best))
        best = xp.where(better, v, best)
        best_index = xp.where(better, i, best_index)
        out[..., i] = best_index
    return xp.moveaxis(out, -1, dim)


def kth_indices(a, k, dim):
    """Index (keepdim shape) of the k-th smallest value along dim (k counted from 0), NaN last."""
    xp = get_array_module(a)
    order = sort_indices(a, dim)
    return xp.take(order, [k], axis=dim)


def median_indices(a, dim):
    """Index (keepdim shape) of the lower median along dim; a NaN in the row is picked instead."""
    xp = get_array_module(a)
    n = a.shape[dim]
    index = kth_indices(a, (n - 1) // 2, dim)
    if a.dtype.kind == "f":
        nan = xp.isnan(a)
        has_nan = nan.any(axis=dim, keepdims=True)
        first_nan = xp.argmax(nan, axis=dim).reshape(has_nan.shape)
        index = xp.where(has_nan, first_nan, index)
    return index


def mode_indices(a, dim):
    """Index (keepdim shape) of the most frequent value along dim (the smallest such value),
    at its last position in the row."""
    xp = get_array_module(a)
    x = xp.moveaxis(a, dim, -1)
    rows = x.reshape(-1, x.shape[-1])
    picks = np.empty(rows.shape[0], dtype=np.int64)
    for r, row in enumerate(xp.asnumpy(rows) if xp is not np else rows):
        values, counts = np.unique(row, return_counts=True, equal_nan=False)  # each NaN counts once
        best = values[np.argmax(counts)]  # argmax: the first (smallest) of the most frequent
        same = (row == best) | (np.isnan(row) & np.isnan(best)) if row.dtype.kind == "f" else row == best
        picks[r] = np.flatnonzero(same)[-1]
    picks = xp.asarray(picks).reshape(x.shape[:-1] + (1,))
    return xp.moveaxis(picks, -1, dim)
