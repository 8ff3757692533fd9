"""CUDA RoI Align and RoI Pool, forward and backward: torchvision's semantics, ``kernels/cpu/roi.py``'s entry points.

The maths is in ``kernels/reference/roi.py`` (read it first). The GPU layout:

* forward: one thread per output value ``(k, c, ph, pw)``. RoI Align walks its bin's
  ``grid_h x grid_w`` bilinear samples and averages them; RoI Pool scans its integer window
  for the first maximum and records its flat index ``row * W + col`` (-1 for an empty bin).
* backward: one thread per output gradient value, scattering into the input gradient with
  ``cuda.atomic.add`` (RoIs overlap, so several threads may hit one cell): through the same
  four bilinear weights per sample for RoI Align, onto the recorded argmax for RoI Pool.

The RoI's batch index is not checked on the host here (that would read the RoIs back every
call): a RoI whose index is outside ``[0, N)`` gives zeros and no gradient.
"""
from __future__ import annotations

import math

import numpy as np
from numba import cuda

from minidl.kernels.cuda._backend import array_module, check_float_array, contiguous, launch


def _check(x, rois, output_size):
    check_float_array(x, "input", (4,))
    if rois.ndim != 2 or rois.shape[1] != 5:
        raise ValueError(f"rois must be (K, 5) as (batch_index, x1, y1, x2, y2), got shape {tuple(rois.shape)}")
    return int(output_size[0]), int(output_size[1])


@cuda.jit(device=True)
def _neighbours(height, width, y, xx):
    """(inside, y_low, y_high, x_low, x_high, ly, lx) of sample (y, xx): its four cells and the
    fractional offsets (the reference's bilinear_weights); ``inside`` is False outside [-1, H] x [-1, W]."""
    if y < -1.0 or y > height or xx < -1.0 or xx > width:
        return False, 0, 0, 0, 0, 0.0, 0.0
    y = max(y, 0.0)
    xx = max(xx, 0.0)
    y_low = int(y)
    x_low = int(xx)
    if y_low >= height - 1:
        y_low = height - 1
        y_high = y_low
        y = float(y_low)
    else:
        y_high = y_low + 1
    if x_low >= width - 1:
        x_low = width - 1
        x_high = x_low
        xx = float(x_low)
    else:
        x_high = x_low + 1
    return True, y_low, y_high, x_low, x_high, y - y_low, xx - x_low


@cuda.jit(device=True)
def _bilinear(x, b, c, height, width, y, xx):
    """The bilinearly interpolated value of x[b, c] at (y, xx); 0 outside the map."""
    inside, y0, y1, x0, x1, ly, lx = _neighbours(height, width, y, xx)
    if not inside:
        return 0.0
    hy, hx = 1.0 - ly, 1.0 - lx
    return hy * hx * x[b, c, y0, x0] + hy * lx * x[b, c, y0, x1] + ly * hx * x[b, c, y1, x0] + ly * lx * x[b, c, y1, x1]


@cuda.jit(device=True)
def _scatter_bilinear(gx, b, c, height, width, y, xx, value):
    """gx[b, c] += value spread over the four neighbours of (y, xx) (nothing outside the map)."""
    inside, y0, y1, x0, x1, ly, lx = _neighbours(height, width, y, xx)
    if not inside:
        return
    hy, hx = 1.0 - ly, 1.0 - lx
    cuda.atomic.add(gx, (b, c, y0, x0), value * hy * hx)
    cuda.atomic.add(gx, (b, c, y0, x1), value * hy * lx)
    cuda.atomic.add(gx, (b, c, y1, x0), value * ly * hx)
    cuda.atomic.add(gx, (b, c, y1, x1), value * ly * lx)


@cuda.jit(device=True)
def _bin_of(t, channels, pooled_h, pooled_w):
    """(k, c, ph, pw): the output value thread t owns, in (K, C, PH, PW) order."""
    return t // (channels * pooled_h * pooled_w), (t // (pooled_h * pooled_w)) % channels, \
        (t // pooled_w) % pooled_h, t % pooled_w


@cuda.jit(device=True)
def _align_bin(rois, k, ph, pw, pooled_h, pooled_w, spatial_scale, sampling_ratio, aligned):
    """(x1, y1, bin_w, bin_h, grid_w, grid_h) of bin (ph, pw) of RoI k, as the reference's _align_samples."""
    offset = 0.5 if aligned else 0.0
    x1 = rois[k, 1] * spatial_scale - offset
    y1 = rois[k, 2] * spatial_scale - offset
    roi_w = rois[k, 3] * spatial_scale - offset - x1
    roi_h = rois[k, 4] * spatial_scale - offset - y1
    if not aligned:
        roi_w = max(roi_w, 1.0)
        roi_h = max(roi_h, 1.0)
    bin_h = roi_h / pooled_h
    bin_w = roi_w / pooled_w
    grid_h = sampling_ratio if sampling_ratio > 0 else int(math.ceil(roi_h / pooled_h))
    grid_w = sampling_ratio if sampling_ratio > 0 else int(math.ceil(roi_w / pooled_w))
    return x1 + pw * bin_w, y1 + ph * bin_h, bin_w, bin_h, grid_w, grid_h


@cuda.jit(cache=True)
def _roi_align_fwd(x, rois, spatial_scale, sampling_ratio, aligned, out):
    t = cuda.grid(1)
    k_total, channels, pooled_h, pooled_w = out.shape
    if t >= k_total * channels * pooled_h * pooled_w:
        return
    k, c, ph, pw = _bin_of(t, channels, pooled_h, pooled_w)
    b = int(rois[k, 0])
    height, width = x.shape[2], x.shape[3]
    if b < 0 or b >= x.shape[0]:
        out[k, c, ph, pw] = 0.0
        return
    x0, y0, bin_w, bin_h, grid_w, grid_h = _align_bin(rois, k, ph, pw, pooled_h, pooled_w, spatial_scale,
                                                      sampling_ratio, aligned)
    acc = 0.0
    for iy in range(grid_h):
        y = y0 + (iy + 0.5) * bin_h / grid_h
        for ix in range(grid_w):
            acc += _bilinear(x, b, c, height, width, y, x0 + (ix + 0.5) * bin_w / grid_w)
    out[k, c, ph, pw] = acc / max(grid_h * grid_w, 1)


@cuda.jit(cache=True)
def _roi_align_bwd(grad, rois, spatial_scale, sampling_ratio, aligned, gx):
    t = cuda.grid(1)
    k_total, channels, pooled_h, pooled_w = grad.shape
    if t >= k_total * channels * pooled_h * pooled_w:
        return
    k, c, ph, pw = _bin_of(t, channels, pooled_h, pooled_w)
    b = int(rois[k, 0])
    height, width = gx.shape[2], gx.shape[3]
    if b < 0 or b >= gx.shape[0]:
        return
    x0, y0, bin_w, bin_h, grid_w, grid_h = _align_bin(rois, k, ph, pw, pooled_h, pooled_w, spatial_scale,
                                                      sampling_ratio, aligned)
    g = grad[k, c, ph, pw] / max(grid_h * grid_w, 1)
    for iy in range(grid_h):
        y = y0 + (iy + 0.5) * bin_h / grid_h
        for ix in range(grid_w):
            _scatter_bilinear(gx, b, c, height, width, y, x0 + (ix + 0.5) * bin_w / grid_w, g)


def roi_align_forward(x, rois, output_size, spatial_scale, sampling_ratio, aligned):
    """(K, C, PH, PW) RoI Align of ``x`` (N, C, H, W) over ``rois`` (K, 5)."""
    ph, pw = _check(x, rois, output_size)
    xp = array_module(x, rois)
    x = contiguous(xp, x)
    out = xp.empty((rois.shape[0], x.shape[1], ph, pw), dtype=x.dtype)
    launch(_roi_align_fwd, out.size, x, contiguous(xp, rois, np.float64), float(spatial_scale), int(sampling_ratio),
           bool(aligned), out)
    return out


def roi_align_backward(grad, rois, input_shape, spatial_scale, sampling_ratio, aligned):
    """d loss / d input (N, C, H, W) for the output gradient ``grad`` (K, C, PH, PW)."""
    xp = array_module(grad, rois)
    gx = xp.zeros(tuple(int(s) for s in input_shape), dtype=grad.dtype)
    launch(_roi_align_bwd, grad.size, contiguous(xp, grad), contiguous(xp, rois, np.float64), float(spatial_scale),
           int(sampling_ratio), bool(aligned), gx)
    return gx


@cuda.jit(device=True)
def _round_half_away(v):
    return math.floor(v + 0.5) if v >= 0 else -math.floor(-v + 0.5)


@cuda.jit(cache=True)
def _roi_pool_fwd(x, rois, spatial_scale, out, argmax):
    t = cuda.grid(1)
    k_total, channels, pooled_h, pooled_w = out.shape
    if t >= k_total * channels * pooled_h * pooled_w:
        return
    k, c, ph, pw = _bin_of(t, channels, pooled_h, pooled_w)
    height, width = x.shape[2], x.shape[3]
    out[k, c, ph, pw] = 0.0
    argmax[k, c, ph, pw] = -1
    b = int(rois[k, 0])
    if b < 0 or b >= x.shape[0]:
        return
    x1 = int(_round_half_away(rois[k, 1] * spatial_scale))
    y1 = int(_round_half_away(rois[k, 2] * spatial_scale))
    x2 = int(_round_half_away(rois[k, 3] * spatial_scale))
    y2 = int(_round_half_away(rois[k, 4] * spatial_scale))
    bin_h = max(y2 - y1 + 1, 1) / pooled_h
    bin_w = max(x2 - x1 + 1, 1) / pooled_w
    hs = min(max(int(math.floor(ph * bin_h)) + y1, 0), height)
    he = min(max(int(math.ceil((ph + 1) * bin_h)) + y1, 0), height)
    ws = min(max(int(math.floor(pw * bin_w)) + x1, 0), width)
    we = min(max(int(math.ceil((pw + 1) * bin_w)) + x1, 0), width)
    if he <= hs or we <= ws:
        return  # an empty bin: 0, argmax -1
    best = x[b, c, hs, ws]
    best_index = hs * width + ws
    for r in range(hs, he):
        for col in range(ws, we):
            if x[b, c, r, col] > best:  # strictly greater: the first maximum wins, as the reference
                best = x[b, c, r, col]
                best_index = r * width + col
    out[k, c, ph, pw] = best
    argmax[k, c, ph, pw] = best_index


@cuda.jit(cache=True)
def _roi_pool_bwd(grad, rois, argmax, gx):
    t = cuda.grid(1)
    k_total, channels, pooled_h, pooled_w = grad.shape
    if t >= k_total * channels * pooled_h * pooled_w:
        return
    k, c, ph, pw = _bin_of(t, channels, pooled_h, pooled_w)
    a = argmax[k, c, ph, pw]
    b = int(rois[k, 0])
    if a < 0 or b < 0 or b >= gx.shape[0]:
        return
    width = gx.shape[3]
    cuda.atomic.add(gx, (b, c, a // width, a % width), grad[k, c, ph, pw])


def roi_pool_forward(x, rois, output_size, spatial_scale):
    """(K, C, PH, PW) maxima and their flat argmax ``row * W + col`` (-1 for empty bins)."""
    ph, pw = _check(x, rois, output_size)
    xp = array_module(x, rois)
    x = contiguous(xp, x)
    out = xp.empty((rois.shape[0], x.shape[1], ph, pw), dtype=x.dtype)
    argmax = xp.empty(out.shape, dtype=np.int64)
    launch(_roi_pool_fwd, out.size, x, contiguous(xp, rois, np.float64), float(spatial_scale), out, argmax)
    return out, argmax


def roi_pool_backward(grad, rois, argmax, input_shape):
    xp = array_module(grad, rois)
    gx = xp.zeros(tuple(int(s) for s in input_shape), dtype=grad.dtype)
    launch(_roi_pool_bwd, grad.size, contiguous(xp, grad), contiguous(xp, rois, np.float64), contiguous(xp, argmax),
           gx)
    return gx
