"""CUDA pooling kernels: max, average, adaptive and global pooling, forward and backward.

Same entry points and semantics as ``kernels/cpu/pooling.py`` (PyTorch's, with the
output-size rules and averaging plans imported from there, so both backends agree
by construction). One thread per output element for every forward; windows are
read straight from global memory with bounds tests, because padding windows are
few and a padded copy would cost a full extra pass.

Backward:

* max and adaptive max: one thread per output adds its gradient to the arg-max
  with ``cuda.atomic.add`` (overlapping windows may share an arg-max);
* average and adaptive average: one thread per *input* pixel gathers the outputs
  whose windows cover it. Windows are monotonic in the output index, so the
  covering outputs form a contiguous range found by arithmetic: no atomics, and
  a deterministic result.
"""
from __future__ import annotations

import math

import numpy as np
from numba import cuda

from minidl.kernels.cuda._backend import array_module, check_float_array, contiguous, launch
from minidl.kernels.shapes import avg_pool_plan, check_output_size, pool_output_size


def _check_input(x, name="x"):
    check_float_array(x, name, (4,))
    return contiguous(array_module(x), x)


def _check_grad_indices(grad_out, indices, input_shape):
    grad_out = _check_input(grad_out, "grad_out")
    if tuple(getattr(indices, "shape", ())) != tuple(grad_out.shape):
        raise ValueError(f"indices must have grad_out's shape {tuple(grad_out.shape)}, "
                         f"got {getattr(indices, 'shape', None)}")
    if len(input_shape) != 4 or tuple(input_shape[:2]) != tuple(grad_out.shape[:2]):
        raise ValueError(f"input_shape must be (N, C, H, W) with (N, C)={tuple(grad_out.shape[:2])}, "
                         f"got {tuple(input_shape)}")
    return grad_out, contiguous(array_module(grad_out), indices, np.int64)


# --------------------------------------------------------------------------- max pool


@cuda.jit(cache=True)
def _max_pool_fwd(x, y, indices, kh, kw, sh, sw, ph, pw, dh, dw):
    t = cuda.grid(1)
    n_batch, c, oh_size, ow_size = y.shape
    if t >= n_batch * c * oh_size * ow_size:
        return
    h, w = x.shape[2], x.shape[3]
    b = t // (c * oh_size * ow_size)
    ch = (t // (oh_size * ow_size)) % c
    i = (t // ow_size) % oh_size
    j = t % ow_size
    r_start = i * sh - ph
    c_start = j * sw - pw
    # PyTorch starts the arg-max at the first in-image position of the window, so a
    # window of -inf values still reports an in-bounds index.
    first_r = r_start
    while first_r < 0:
        first_r += dh
    first_c = c_start
    while first_c < 0:
        first_c += dw
    best = -math.inf
    best_idx = first_r * w + first_c
    # Row-major scan with a strict '>' keeps the first maximum; NaN propagates.
    for u in range(kh):
        r = r_start + u * dh
        if r < 0 or r >= h:
            continue
        for v in range(kw):
            col = c_start + v * dw
            if col < 0 or col >= w:
                continue
            val = x[b, ch, r, col]
            if val > best or val != val:
                best = val
                best_idx = r * w + col
    y[b, ch, i, j] = best
    indices[b, ch, i, j] = best_idx


def max_pool2d_forward(x, kernel, stride, padding, dilation, ceil_mode):
    """2-D max pooling; returns ``(y, indices)`` with int64 flat indices ``r * W + c`` per plane."""
    x = _check_input(x)
    xp = array_module(x)
    n, c, h, w = x.shape
    oh, ow = pool_output_size(h, w, kernel, stride, padding, dilation, ceil_mode)
    y = xp.empty((n, c, oh, ow), dtype=x.dtype)
    indices = xp.empty((n, c, oh, ow), dtype=np.int64)
    launch(_max_pool_fwd, y.size, x, y, indices, *kernel, *stride, *padding, *dilation)
    return y, indices


@cuda.jit(cache=True)
def _scatter_add(grad_out, indices, grad_x, plane_size, per_plane):
    """grad_x[plane * H*W + indices[t]] += grad_out[t] for every output t (flat arrays)."""
    t = cuda.grid(1)
    if t >= grad_out.shape[0]:
        return
    plane = t // per_plane
    cuda.atomic.add(grad_x, plane * plane_size + indices[t], grad_out[t])


def _scatter_planes(grad_out, indices, input_shape):
    xp = array_module(grad_out)
    n, c, h, w = (int(s) for s in input_shape)
    grad_x = xp.zeros(n * c * h * w, dtype=grad_out.dtype)
    per_plane = grad_out.shape[2] * grad_out.shape[3]
    launch(_scatter_add, grad_out.size, grad_out.ravel(), indices.ravel(), grad_x, h * w, per_plane)
    return grad_x.reshape(n, c, h, w)


def max_pool2d_backward(grad_out, indices, input_shape):
    """``grad_x[n, c].flat[indices[n, c, i, j]] += grad_out[n, c, i, j]``."""
    grad_out, indices = _check_grad_indices(grad_out, indices, input_shape)
    return _scatter_planes(grad_out, indices, input_shape)


# --------------------------------------------------------------------------- average pool


@cuda.jit(cache=True)
def _avg_pool_fwd(x, y, r0, r1, c0, c1, inv):
    t = cuda.grid(1)
    n_batch, c, oh_size, ow_size = y.shape
    if t >= n_batch * c * oh_size * ow_size:
        return
    b = t // (c * oh_size * ow_size)
    ch = (t // (oh_size * ow_size)) % c
    i = (t // ow_size) % oh_size
    j = t % ow_size
    acc = 0.0
    for r in range(r0[i], r1[i]):
        for col in range(c0[j], c1[j]):
            acc += x[b, ch, r, col]
    y[b, ch, i, j] = acc * inv[i, j]


_PLANS = {}  # (device, geometry) -> the plan's arrays on that device
_MAX_PLANS = 256


def _plan_on_device(xp, h, w, kernel, stride, padding, ceil_mode, count_include_pad, divisor_override):
    """The CPU module's window bounds and divisors (host arrays, tiny), copied to the device once per
    geometry: a host-to-device copy from pageable memory blocks the host, so it must not happen per call."""
    key = (xp.cuda.Device().id if xp is not np else -1, h, w, tuple(kernel), tuple(stride), tuple(padding),
           bool(ceil_mode), bool(count_include_pad), divisor_override)
    plan = _PLANS.get(key)
    if plan is None:
        if len(_PLANS) >= _MAX_PLANS:
            _PLANS.clear()
        host = avg_pool_plan(h, w, kernel, stride, padding, ceil_mode, count_include_pad, divisor_override)
        plan = _PLANS[key] = tuple(xp.asarray(a) for a in host)
    return plan


def avg_pool2d_forward(x, kernel, stride, padding, ceil_mode, count_include_pad, divisor_override):
    """2-D average pooling, PyTorch's ``avg_pool2d`` (divisor rules as ``kernels/cpu/pooling.py``)."""
    x = _check_input(x)
    xp = array_module(x)
    n, c, h, w = x.shape
    plan = _plan_on_device(xp, h, w, kernel, stride, padding, ceil_mode, count_include_pad, divisor_override)
    y = xp.empty((n, c) + tuple(plan[4].shape), dtype=x.dtype)
    launch(_avg_pool_fwd, y.size, x, y, *plan)
    return y


@cuda.jit(cache=True)
def _avg_pool_bwd(grad_out, grad_x, r0, r1, c0, c1, inv, kh, kw, sh, sw, ph, pw):
    """One thread per input pixel: sum grad_out * inv over the windows that contain it."""
    t = cuda.grid(1)
    n_batch, c, h, w = grad_x.shape
    if t >= n_batch * c * h * w:
        return
    oh_size, ow_size = grad_out.shape[2], grad_out.shape[3]
    b = t // (c * h * w)
    ch = (t // (h * w)) % c
    hh = (t // w) % h
    ww = t % w
    # Window i covers rows [i*sh - ph, i*sh - ph + kh): it contains hh for
    # ceil((hh + ph - kh + 1) / sh) <= i <= floor((hh + ph) / sh).
    num = hh + ph - kh + 1
    i_lo = 0 if num <= 0 else (num + sh - 1) // sh
    i_hi = min((hh + ph) // sh, oh_size - 1)
    num = ww + pw - kw + 1
    j_lo = 0 if num <= 0 else (num + sw - 1) // sw
    j_hi = min((ww + pw) // sw, ow_size - 1)
    acc = 0.0
    for i in range(i_lo, i_hi + 1):
        if hh < r0[i] or hh >= r1[i]:
            continue
        for j in range(j_lo, j_hi + 1):
            if c0[j] <= ww < c1[j]:
                acc += grad_out[b, ch, i, j] * inv[i, j]
    grad_x[b, ch, hh, ww] = acc


def avg_pool2d_backward(grad_out, input_shape, kernel, stride, padding, ceil_mode, count_include_pad,
                        divisor_override):
    """Gradient of average pooling: every input in a window receives ``grad_out / divisor``."""
    grad_out = _check_input(grad_out, "grad_out")
    if len(input_shape) != 4 or tuple(input_shape[:2]) != tuple(grad_out.shape[:2]):
        raise ValueError(f"input_shape must be (N, C, H, W) with (N, C)={tuple(grad_out.shape[:2])}, "
                         f"got {tuple(input_shape)}")
    xp = array_module(grad_out)
    n, c, h, w = (int(s) for s in input_shape)
    plan = _plan_on_device(xp, h, w, kernel, stride, padding, ceil_mode, count_include_pad, divisor_override)
    if tuple(grad_out.shape[2:]) != tuple(plan[4].shape):
        raise ValueError(f"grad_out must have spatial shape {tuple(plan[4].shape)} for this input, "
                         f"got {tuple(grad_out.shape[2:])}")
    grad_x = xp.empty((n, c, h, w), dtype=grad_out.dtype)
    launch(_avg_pool_bwd, grad_x.size, grad_out, grad_x, *plan, *kernel, *stride, *padding)
    return grad_x


# --------------------------------------------------------------------------- adaptive pools
# PyTorch's bins: start = floor(i * size / out), end = ceil((i + 1) * size / out).


@cuda.jit(device=True)
def _bin_start(i, size, out_size):
    return (i * size) // out_size


@cuda.jit(device=True)
def _bin_end(i, size, out_size):
    return ((i + 1) * size + out_size - 1) // out_size


@cuda.jit(cache=True)
def _adaptive_avg_fwd(x, y):
    t = cuda.grid(1)
    n_batch, c, oh_size, ow_size = y.shape
    if t >= n_batch * c * oh_size * ow_size:
        return
    h, w = x.shape[2], x.shape[3]
    b = t // (c * oh_size * ow_size)
    ch = (t // (oh_size * ow_size)) % c
    i = (t // ow_size) % oh_size
    j = t % ow_size
    r0 = _bin_start(i, h, oh_size)
    r1 = _bin_end(i, h, oh_size)
    c0 = _bin_start(j, w, ow_size)
    c1 = _bin_end(j, w, ow_size)
    acc = 0.0  # float64: bins can be large (global pooling)
    for r in range(r0, r1):
        for col in range(c0, c1):
            acc += x[b, ch, r, col]
    y[b, ch, i, j] = acc / ((r1 - r0) * (c1 - c0))


def adaptive_avg_pool2d_forward(x, output_size):
    """Adaptive average pooling to ``output_size`` (OH, OW): mean over PyTorch's bins."""
    x = _check_input(x)
    oh, ow = check_output_size(output_size)
    xp = array_module(x)
    y = xp.empty(tuple(x.shape[:2]) + (oh, ow), dtype=x.dtype)
    launch(_adaptive_avg_fwd, y.size, x, y)
    return y


@cuda.jit(device=True)
def _covering_bins(pos, size, out_size):
    """[lo, hi] of the bins containing input position ``pos`` (bins are monotonic and contiguous).

    Bin floor(pos * out / size) always contains pos; walk outwards from it.
    """
    mid = (pos * out_size) // size
    lo = mid
    while lo > 0 and _bin_end(lo - 1, size, out_size) > pos:
        lo -= 1
    hi = mid
    while hi + 1 < out_size and _bin_start(hi + 1, size, out_size) <= pos:
        hi += 1
    return lo, hi


@cuda.jit(cache=True)
def _adaptive_avg_bwd(grad_out, grad_x):
    t = cuda.grid(1)
    n_batch, c, h, w = grad_x.shape
    if t >= n_batch * c * h * w:
        return
    oh_size, ow_size = grad_out.shape[2], grad_out.shape[3]
    b = t // (c * h * w)
    ch = (t // (h * w)) % c
    hh = (t // w) % h
    ww = t % w
    i_lo, i_hi = _covering_bins(hh, h, oh_size)
    j_lo, j_hi = _covering_bins(ww, w, ow_size)
    acc = 0.0
    for i in range(i_lo, i_hi + 1):
        rows = _bin_end(i, h, oh_size) - _bin_start(i, h, oh_size)
        for j in range(j_lo, j_hi + 1):
            cols = _bin_end(j, w, ow_size) - _bin_start(j, w, ow_size)
            acc += grad_out[b, ch, i, j] / (rows * cols)
    grad_x[b, ch, hh, ww] = acc


def adaptive_avg_pool2d_backward(grad_out, input_shape):
    """Gradient of adaptive average pooling: ``grad_out / bin_size`` to every input in the bin."""
    grad_out = _check_input(grad_out, "grad_out")
    if len(input_shape) != 4 or tuple(input_shape[:2]) != tuple(grad_out.shape[:2]):
        raise ValueError(f"input_shape must be (N, C, H, W) with (N, C)={tuple(grad_out.shape[:2])}, "
                         f"got {tuple(input_shape)}")
    xp = array_module(grad_out)
    grad_x = xp.empty(tuple(int(s) for s in input_shape), dtype=grad_out.dtype)
    launch(_adaptive_avg_bwd, grad_x.size, grad_out, grad_x)
    return grad_x


@cuda.jit(cache=True)
def _adaptive_max_fwd(x, y, indices):
    t = cuda.grid(1)
    n_batch, c, oh_size, ow_size = y.shape
    if t >= n_batch * c * oh_size * ow_size:
        return
    h, w = x.shape[2], x.shape[3]
    b = t // (c * oh_size * ow_size)
    ch = (t // (oh_size * ow_size)) % c
    i = (t // ow_size) % oh_size
    j = t % ow_size
    r0 = _bin_start(i, h, oh_size)
    r1 = _bin_end(i, h, oh_size)
    c0 = _bin_start(j, w, ow_size)
    c1 = _bin_end(j, w, ow_size)
    best = -math.inf
    best_idx = r0 * w + c0
    for r in range(r0, r1):
        for col in range(c0, c1):
            val = x[b, ch, r, col]
            if val > best or val != val:
                best = val
                best_idx = r * w + col
    y[b, ch, i, j] = best
    indices[b, ch, i, j] = best_idx


def adaptive_max_pool2d_forward(x, output_size):
    """Adaptive max pooling over PyTorch's bins; returns ``(y, indices)`` like max pooling."""
    x = _check_input(x)
    oh, ow = check_output_size(output_size)
    xp = array_module(x)
    shape = tuple(x.shape[:2]) + (oh, ow)
    y = xp.empty(shape, dtype=x.dtype)
    indices = xp.empty(shape, dtype=np.int64)
    launch(_adaptive_max_fwd, y.size, x, y, indices)
    return y, indices


def adaptive_max_pool2d_backward(grad_out, indices, input_shape):
    """Gradient of adaptive max pooling: scatter-add to the arg-max positions."""
    grad_out, indices = _check_grad_indices(grad_out, indices, input_shape)
    return _scatter_planes(grad_out, indices, input_shape)


# --------------------------------------------------------------------------- global average


@cuda.jit(cache=True)
def _global_avg_fwd(x, y, plane_size):
    """y[p] = mean of plane p of x (flat arrays), one thread per plane, float64 sum."""
    p = cuda.grid(1)
    if p >= y.shape[0]:
        return
    acc = 0.0
    base = p * plane_size
    for k in range(plane_size):
        acc += x[base + k]
    y[p] = acc / plane_size


def global_avg_pool2d_forward(x):
    """Global average pooling: ``y[n, c, 0, 0] = mean over (H, W) of x[n, c]``."""
    x = _check_input(x)
    xp = array_module(x)
    n, c, h, w = x.shape
    y = xp.empty(n * c, dtype=x.dtype)
    launch(_global_avg_fwd, y.size, x.ravel(), y, h * w)
    return y.reshape(n, c, 1, 1)
