"""N-dimensional convolution in plain array code (NumPy or CuPy): conv3d and its helpers.

The 2-D convolution has fast kernels (``minidl/functions/conv.py``); the rarer 3-D one (and
the N-d transposed convolution, ``minidl/functions/conv_transpose.py``) is written here in
plain array code, im2col-style, for any number of spatial dimensions:

* ``unfold_nd`` copies, for each kernel tap ``t = (i, j, k, ...)``, the strided window of the
  zero-padded input that tap reads: ``cols[n, c, t, o...] = xpad[n, c, o*s + t*d ...]``;
* the convolution is then one batched matrix product per group,
  ``y[n, g] = W[g] (Kg, Cg*T) @ cols[n, g] (Cg*T, P)`` with ``P`` the output positions;
* ``fold_nd`` is the adjoint of ``unfold_nd``: it adds every tap's window back onto the
  (padded) input, which is how the input gradient scatters.

Backward, given ``gy`` (N, K, *O)::

    gcols = W^T @ gy          ->  grad_x = fold_nd(gcols)
    grad_W = sum_n gy[n] @ cols[n]^T
    grad_b = gy summed over batch and positions

>>> import numpy as np
>>> x, w = np.ones((1, 1, 3, 3, 3)), np.ones((1, 1, 2, 2, 2))
>>> Conv3d()(x, w, None, stride=(1, 1, 1), padding=(0, 0, 0), dilation=(1, 1, 1))[0, 0, 0]
array([[8., 8.],
       [8., 8.]])
"""
from __future__ import annotations

import itertools

from minidl.functions.function import Function


def conv_nd_output_size(sizes, kernel, stride, padding, dilation):
    """PyTorch's ``floor((S + 2p - d(k - 1) - 1) / s) + 1`` per spatial dimension; raises if none fits."""
    out = []
    for size, k, s, p, d in zip(sizes, kernel, stride, padding, dilation):
        span = d * (k - 1) + 1
        if span > size + 2 * p:
            raise ValueError(f"kernel size {k} with dilation {d} spans {span}, larger than the padded input "
                             f"size {size} + 2*{p} = {size + 2 * p}")
        out.append((size + 2 * p - span) // s + 1)
    return tuple(out)


def kernel_taps(kernel):
    """Every kernel position (i, j, ...) in row-major order: the order of the weight's last axes."""
    return list(itertools.product(*(range(k) for k in kernel)))


def tap_window(tap, stride, dilation, out_sizes):
    """The strided slices of the padded input that kernel position ``tap`` reads for every output."""
    return tuple(slice(t * d, t * d + s * (o - 1) + 1, s) for t, s, d, o in zip(tap, stride, dilation, out_sizes))


def unfold_nd(xp, x, kernel, stride, padding, dilation, out_sizes=None):
    """im2col: x (N, C, *S) -> cols (N, C, T, *O), ``cols[:, :, t] = xpad[window of tap t]``.

    ``out_sizes`` keeps only the first output positions (a transposed convolution's
    gradient, when its output_padding added rows that no input reached).
    """
    full = conv_nd_output_size(x.shape[2:], kernel, stride, padding, dilation)
    out_sizes = full if out_sizes is None else tuple(min(o, f) for o, f in zip(out_sizes, full))
    if any(padding):
        x = xp.pad(x, [(0, 0), (0, 0)] + [(p, p) for p in padding])
    taps = kernel_taps(kernel)
    cols = xp.empty(x.shape[:2] + (len(taps),) + out_sizes, dtype=x.dtype)
    everything = (slice(None), slice(None))
    for t, tap in enumerate(taps):
        cols[:, :, t] = x[everything + tap_window(tap, stride, dilation, out_sizes)]
    return cols


def fold_nd(xp, cols, x_shape, kernel, stride, padding, dilation):
    """col2im, the adjoint of :func:`unfold_nd`: add each tap's values back where they were read.

    ``cols`` is (N, C, T, *O); the result has ``x_shape`` (N, C, *S). Values that fell on the
    padding are dropped.
    """
    out_sizes = cols.shape[3:]
    # the padded buffer must hold the last window even when the outputs reach past S + 2p
    padded = [max(s + 2 * p, (o - 1) * st + d * (k - 1) + 1)
              for s, p, o, st, d, k in zip(x_shape[2:], padding, out_sizes, stride, dilation, kernel)]
    gx = xp.zeros(tuple(x_shape[:2]) + tuple(padded), dtype=cols.dtype)
    everything = (slice(None), slice(None))
    for t, tap in enumerate(kernel_taps(kernel)):
        gx[everything + tap_window(tap, stride, dilation, out_sizes)] += cols[:, :, t]
    return gx[everything + tuple(slice(p, p + s) for p, s in zip(padding, x_shape[2:]))]


def conv_nd_forward(xp, x, weight, stride, padding, dilation, groups, out_sizes=None):
    """y (N, K, *O) = conv(x (N, C, *S), weight (K, C/groups, *k)), no bias; ``out_sizes`` as unfold_nd."""
    n, k_out, g = x.shape[0], weight.shape[0], groups
    cols = unfold_nd(xp, x, weight.shape[2:], stride, padding, dilation, out_sizes)
    out_sizes = cols.shape[3:]
    cols = cols.reshape(n, g, -1, _prod(out_sizes))  # (N, G, Cg*T, P)
    y = xp.matmul(weight.reshape(g, k_out // g, -1), cols)  # (N, G, Kg, P)
    return y.reshape((n, k_out) + out_sizes)


def conv_nd_input_grad(xp, grad_out, weight, x_shape, stride, padding, dilation, groups):
    """grad_x (x_shape) of :func:`conv_nd_forward`: gcols = W^T @ gy, then fold."""
    n, k_out, g = grad_out.shape[0], weight.shape[0], groups
    out_sizes = grad_out.shape[2:]
    gy = grad_out.reshape(n, g, k_out // g, -1)  # (N, G, Kg, P)
    w_t = weight.reshape(g, k_out // g, -1).transpose(0, 2, 1)  # (G, Cg*T, Kg)
    gcols = xp.matmul(w_t, gy)  # (N, G, Cg*T, P)
    gcols = gcols.reshape((n, x_shape[1], _prod(weight.shape[2:])) + tuple(out_sizes))
    return fold_nd(xp, gcols, x_shape, weight.shape[2:], stride, padding, dilation)


def conv_nd_weight_grad(xp, grad_out, x, weight_shape, stride, padding, dilation, groups):
    """grad_W (weight_shape) of :func:`conv_nd_forward`: sum over images of gy @ cols^T."""
    n, k_out, g = x.shape[0], weight_shape[0], groups
    cols = unfold_nd(xp, x, weight_shape[2:], stride, padding, dilation, grad_out.shape[2:])
    cols = cols.reshape(n, g, -1, _prod(cols.shape[3:]))  # (N, G, Cg*T, P)
    gy = grad_out.reshape(n, g, k_out // g, -1)  # (N, G, Kg, P)
    return xp.matmul(gy, cols.transpose(0, 1, 3, 2)).sum(axis=0).reshape(weight_shape)


def _prod(sizes):
    p = 1
    for s in sizes:
        p *= int(s)
    return p


def check_conv_nd_args(x, weight, bias, groups, n_spatial, name):
    """Raise ValueError/TypeError naming what is wrong with the shapes of a convolution's arrays."""
    if x.ndim != n_spatial + 2 or weight.ndim != n_spatial + 2:
        raise ValueError(f"{name}: expected a {n_spatial + 2}-D input and weight, got shapes {x.shape} and "
                         f"{weight.shape}")
    if x.dtype.kind != "f" or weight.dtype != x.dtype:
        raise TypeError(f"{name}: input and weight must share a floating dtype, got {x.dtype} and {weight.dtype}")
    if groups < 1 or x.shape[1] % groups:
        raise ValueError(f"{name}: groups={groups} must divide in_channels={x.shape[1]}")
    if bias is not None and bias.ndim != 1:
        raise ValueError(f"{name}: bias must be 1-D, got shape {bias.shape}")


class Conv3d(Function):
    """y = conv3d(x, weight) + bias on arrays (N, C, D, H, W); stride, padding, dilation are int triples."""

    def forward(self, x, weight, bias, stride, padding, dilation, groups=1):
        check_conv_nd_args(x, weight, bias, groups, 3, "conv3d")
        if x.shape[1] != weight.shape[1] * groups or weight.shape[0] % groups:
            raise ValueError(f"conv3d: input has {x.shape[1]} channels, weight {tuple(weight.shape)} with "
                             f"groups={groups} expects {weight.shape[1] * groups} (and out_channels divisible by "
                             f"groups)")
        self.options = (stride, padding, dilation, groups)
        self.save_for_backward(x, weight)  # backward recomputes the columns from x
        y = conv_nd_forward(self.xp, x, weight, *self.options)
        if bias is not None:
            y += bias.reshape((1, -1) + (1,) * 3)
        return y

    def backward(self, g):
        x, weight = self.saved
        needs = tuple(self.needs_input_grad) + (False,) * 3
        gx = conv_nd_input_grad(self.xp, g, weight, x.shape, *self.options) if needs[0] else None
        gw = conv_nd_weight_grad(self.xp, g, x, weight.shape, *self.options) if needs[1] else None
        gb = g.sum(axis=(0, 2, 3, 4)) if needs[2] else None
        return gx, gw, gb
