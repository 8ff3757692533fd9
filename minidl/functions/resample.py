"""Resampling as array-level Functions: interpolation (F.interpolate) and im2col (F.unfold / F.fold).

Interpolation is separable: along each resized axis, output position ``o`` is a weighted sum
of a few input positions (its *taps*)::

    y[..., o, ...] = sum_t w_t[o] * x[..., idx_t[o], ...]

The tap plans below follow PyTorch's index arithmetic (``aten/src/ATen/native/UpSample.h``),
and are the same for every backend:

* nearest:        idx = min(floor(o * scale), in - 1)                  one tap, weight 1
* nearest-exact:  idx = min(floor((o + 0.5) * scale), in - 1)          one tap, weight 1
* linear:         src = o * (in - 1) / (out - 1)           (align_corners=True)
                  src = max((o + 0.5) * scale - 0.5, 0)    (align_corners=False)
                  idx0 = floor(src), idx1 = min(idx0 + 1, in - 1), w1 = src - idx0, w0 = 1 - w1
* cubic:          Keys' cubic convolution (a = -0.75) on the 4 neighbours of src, clamped at the border
* area:           the adaptive average pool's bins [floor(o in / out), ceil((o + 1) in / out))
* antialias:      (bilinear, bicubic) the filter stretched over every input pixel an output covers

where ``scale = in / out``, or ``1 / scale_factor`` when the caller gave a scale factor.
Backward scatters the gradient with the transposed weights: per axis it is a product with the
(out, in) matrix ``M[o, idx_t[o]] += w_t[o]``. The plain float64 loops a student can read
first (bilinear and nearest) are ``kernels/reference/resample.py``.
"""
from __future__ import annotations

import numpy as np

from minidl.functions.conv_nd import conv_nd_output_size, fold_nd, unfold_nd
from minidl.functions.function import Function


# ----------------------------------------------------------------------------- tap plans (host NumPy)
def _scale(in_size, out_size, scale_factor):
    """PyTorch's ``compute_scales_value``: 1 / scale_factor when given, else in / out."""
    return 1.0 / scale_factor if scale_factor else in_size / out_size


def nearest_taps(in_size, out_size, scale_factor=None, exact=False):
    """[(idx, None)]: the one source index of every output position (weight 1).

    Computed in float32 as PyTorch's kernels do, so that the floors agree at the boundaries.
    """
    scale = np.float32(_scale(in_size, out_size, scale_factor))
    o = np.arange(out_size, dtype=np.float32)
    src = np.floor((o + np.float32(0.5)) * scale) if exact else np.floor(o * scale)
    return [(np.minimum(src.astype(np.int64), in_size - 1), None)]


def _linear_source(in_size, out_size, scale_factor, align_corners, clamp_at_zero=True):
    o = np.arange(out_size, dtype=np.float64)
    if align_corners:
        return o * ((in_size - 1) / (out_size - 1) if out_size > 1 else 0.0)
    src = (o + 0.5) * _scale(in_size, out_size, scale_factor) - 0.5
    return np.maximum(src, 0.0) if clamp_at_zero else src


def linear_taps(in_size, out_size, scale_factor=None, align_corners=False):
    """[(idx0, w0), (idx1, w1)]: the two neighbours of each source position and their weights."""
    src = _linear_source(in_size, out_size, scale_factor, align_corners)
    i0 = np.minimum(np.floor(src).astype(np.int64), in_size - 1)
    i1 = np.minimum(i0 + 1, in_size - 1)
    w1 = src - i0
    return [(i0, 1.0 - w1), (i1, w1)]


def cubic_taps(in_size, out_size, scale_factor=None, align_corners=False, a=-0.75):
    """Four taps (floor(src) - 1 ... floor(src) + 2, clamped to the border) with Keys' weights."""
    src = _linear_source(in_size, out_size, scale_factor, align_corners, clamp_at_zero=False)
    base = np.floor(src).astype(np.int64)
    t = src - base

    def near(x):  # |x| <= 1
        return ((a + 2) * x - (a + 3)) * x * x + 1

    def far(x):  # 1 < |x| < 2
        return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a

    weights = (far(t + 1), near(t), near(1 - t), far(2 - t))
    return [(np.clip(base + k - 1, 0, in_size - 1), w) for k, w in enumerate(weights)]


def antialias_taps(in_size, out_size, scale_factor=None, align_corners=False, cubic=False):
    """Taps of the anti-aliased (filtered) resize, PyTorch's ``antialias=True``.

    When shrinking by ``scale = in / out > 1`` the interpolation filter (the triangle
    ``max(0, 1 - |t|)``, or Keys' cubic with a = -0.5) is stretched by ``scale``, so each output
    averages every input pixel under it instead of sampling two; the weights of an output are
    normalised to sum to 1. Output ``o`` is centred at ``scale (o + 0.5)`` on the input axis.
    """
    if align_corners:
        scale = (in_size - 1) / (out_size - 1) if out_size > 1 else 0.0
    else:
        scale = _scale(in_size, out_size, scale_factor)
    half = 2.0 if cubic else 1.0  # half the filter's width at scale 1
    support = half * scale if scale >= 1.0 else half
    stretch = 1.0 / scale if scale >= 1.0 else 1.0

    def kernel(t):
        t = np.abs(t)
        if not cubic:
            return np.maximum(0.0, 1.0 - t)
        a = -0.5
        near = ((a + 2) * t - (a + 3)) * t * t + 1
        far = (((t - 5) * t + 8) * t - 4) * a
        return np.where(t < 1, near, np.where(t < 2, far, 0.0))

    center = scale * (np.arange(out_size) + 0.5)
    first = np.maximum((center - support + 0.5).astype(np.int64), 0)
    count = np.minimum((center + support + 0.5).astype(np.int64), in_size) - first
    taps = [(np.minimum(first + k, in_size - 1), np.where(k < count, kernel((first + k - center + 0.5) * stretch), 0.0))
            for k in range(int(count.max()))]
    total = sum(w for _, w in taps)
    total = np.where(total == 0, 1.0, total)
    return [(idx, w / total) for idx, w in taps]


def area_taps(in_size, out_size):
    """The adaptive average's bins as taps: ``L`` taps (the longest bin), weight 1/len or 0."""
    o = np.arange(out_size)
    start = (o * in_size) // out_size
    end = -((-(o + 1) * in_size) // out_size)  # ceil
    length = end - start
    taps = []
    for k in range(int(length.max())):
        inside = k < length
        taps.append((np.where(inside, start + k, start), np.where(inside, 1.0 / length, 0.0)))
    return taps


def taps_matrix(taps, in_size):
    """The (out, in) matrix of a tap plan: ``M[o, idx_t[o]] += w_t[o]``."""
    out_size = len(taps[0][0])
    m = np.zeros((out_size, in_size))
    rows = np.arange(out_size)
    for idx, w in taps:
        np.add.at(m, (rows, idx), 1.0 if w is None else w)
    return m


# ----------------------------------------------------------------------------- Functions
class Resample(Function):
    """Resize the trailing axes of ``x``, one axis at a time, by a tap plan per axis.

    ``taps`` has one plan per resized axis (the last ``len(taps)`` axes), each a list of
    ``(idx, weight)`` host arrays of the output length (weight None: a plain gather, which
    also serves integer inputs).
    """

    def forward(self, x, taps):
        xp = self.xp
        first = x.ndim - len(taps)
        self.plans = [(first + k, plan, x.shape[first + k]) for k, plan in enumerate(taps)]
        for axis, plan, _ in self.plans:
            x = _gather_sum(xp, x, axis, plan)
        return x

    def backward(self, g):
        xp = self.xp
        for axis, plan, in_size in reversed(self.plans):
            m = xp.asarray(taps_matrix(plan, in_size).astype(g.dtype))  # (out, in)
            g = xp.moveaxis(xp.moveaxis(g, axis, -1) @ m, -1, axis)
        return (g,)


def _gather_sum(xp, x, axis, plan):
    """sum over taps of weight * x gathered at idx along ``axis``."""
    shape = [1] * x.ndim
    shape[axis] = -1
    total = None
    for idx, w in plan:
        picked = xp.take(x, xp.asarray(idx), axis=axis)
        if w is not None:
            picked = picked * xp.asarray(w.astype(x.dtype)).reshape(shape)
        total = picked if total is None else total + picked
    return total


class Unfold(Function):
    """im2col as PyTorch's F.unfold: (N, C, *S) -> (N, C * prod(kernel), L), L output positions."""

    def forward(self, x, kernel_size, dilation, padding, stride):
        self.options = (kernel_size, stride, padding, dilation)
        self.input_shape = x.shape
        cols = unfold_nd(self.xp, x, *self.options)  # (N, C, T, *O)
        self.cols_shape = cols.shape
        return cols.reshape(x.shape[0], -1, int(np.prod(cols.shape[3:])))

    def backward(self, g):
        return (fold_nd(self.xp, g.reshape(self.cols_shape), self.input_shape, *self.options),)


class Fold(Function):
    """col2im as PyTorch's F.fold, the adjoint of :class:`Unfold`: sums overlapping values."""

    def forward(self, cols, output_size, kernel_size, dilation, padding, stride):
        n, rows, length = cols.shape
        taps = int(np.prod(kernel_size))
        blocks = conv_nd_output_size(output_size, kernel_size, stride, padding, dilation)
        if rows % taps or length != int(np.prod(blocks)):
            raise ValueError(f"fold: expected input of shape (N, C * {taps}, {int(np.prod(blocks))}) for "
                             f"output_size={tuple(output_size)}, kernel_size={tuple(kernel_size)}, got {cols.shape}")
        self.options = (kernel_size, stride, padding, dilation)
        x_shape = (n, rows // taps) + tuple(output_size)
        return fold_nd(self.xp, cols.reshape((n, rows // taps, taps) + blocks), x_shape, *self.options)

    def backward(self, g):
        cols = unfold_nd(self.xp, g, *self.options)
        return (cols.reshape(g.shape[0], -1, int(np.prod(cols.shape[3:]))),)
