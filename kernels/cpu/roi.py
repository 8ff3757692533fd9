"""RoI Align and RoI Pool for the CPU (Numba), torchvision's semantics.

The maths is in ``kernels/reference/roi.py`` (the oracle these kernels are tested against).
Speed notes:

- The feature map is transposed once to channels-last (N, H, W, C): a bilinear tap then
  reads C contiguous values, so the innermost loop is over channels and vectorises, and the
  four weights of a sample are computed once for all channels.
- Forward runs ``prange`` over the RoIs: each writes only its own output rows.
- Backward scatters into the input gradient; two RoIs can touch the same cell, so the
  threads split the *channels* (each owns a contiguous channel range for all RoIs) and never
  add into the same element.
"""

import math

import numpy as np
from numba import njit, prange

from minidl.kernels.cpu import serialise_parallel_kernels
from minidl.kernels.cpu.jit import parallel_kernel


@njit(cache=True)
def _taps(height, width, y, x, rows, cols, weights, start, scale):
    """Write the 4 bilinear taps of (y, x) (weights times ``scale``) at ``start``; returns how many."""
    if y < -1.0 or y > height or x < -1.0 or x > width:
        return 0
    if y <= 0.0:
        y = 0.0
    if x <= 0.0:
        x = 0.0
    y_low = int(y)
    x_low = int(x)
    if y_low >= height - 1:
        y_low = height - 1
        y_high = height - 1
        y = float(y_low)
    else:
        y_high = y_low + 1
    if x_low >= width - 1:
        x_low = width - 1
        x_high = width - 1
        x = float(x_low)
    else:
        x_high = x_low + 1
    ly = y - y_low
    lx = x - x_low
    hy = 1.0 - ly
    hx = 1.0 - lx
    rows[start] = y_low
    cols[start] = x_low
    weights[start] = hy * hx * scale
    rows[start + 1] = y_low
    cols[start + 1] = x_high
    weights[start + 1] = hy * lx * scale
    rows[start + 2] = y_high
    cols[start + 2] = x_low
    weights[start + 2] = ly * hx * scale
    rows[start + 3] = y_high
    cols[start + 3] = x_high
    weights[start + 3] = ly * lx * scale
    return 4


@njit(cache=True)
def _roi_geometry(roi, spatial_scale, pooled_h, pooled_w, sampling_ratio, aligned):
    """(x1, y1, bin_w, bin_h, grid_w, grid_h) of one RoI on the feature map."""
    offset = 0.5 if aligned else 0.0
    x1 = roi[1] * spatial_scale - offset
    y1 = roi[2] * spatial_scale - offset
    roi_w = roi[3] * spatial_scale - offset - x1
    roi_h = roi[4] * spatial_scale - offset - y1
    if not aligned:
        roi_w = max(roi_w, 1.0)
        roi_h = max(roi_h, 1.0)
    bin_h = roi_h / pooled_h
    bin_w = roi_w / pooled_w
    grid_h = sampling_ratio if sampling_ratio > 0 else int(math.ceil(roi_h / pooled_h))
    grid_w = sampling_ratio if sampling_ratio > 0 else int(math.ceil(roi_w / pooled_w))
    return x1, y1, bin_w, bin_h, grid_w, grid_h


@njit(cache=True)
def _bin_taps(height, width, x1, y1, bin_w, bin_h, grid_w, grid_h, ph, pw, rows, cols, weights):
    """All taps of bin (ph, pw); weights already divided by the sample count."""
    count = max(grid_h * grid_w, 1)
    scale = 1.0 / count
    n = 0
    for iy in range(grid_h):
        y = y1 + ph * bin_h + (iy + 0.5) * bin_h / grid_h
        for ix in range(grid_w):
            x = x1 + pw * bin_w + (ix + 0.5) * bin_w / grid_w
            n += _taps(height, width, y, x, rows, cols, weights, n, scale)
    return n


@njit(cache=True)
def _max_taps(rois, spatial_scale, pooled_h, pooled_w, sampling_ratio, aligned):
    m = 4
    for k in range(rois.shape[0]):
        grid_w, grid_h = _roi_geometry(rois[k], spatial_scale, pooled_h, pooled_w, sampling_ratio, aligned)[4:]
        m = max(m, 4 * grid_w * grid_h)
    return m


@parallel_kernel()
def _roi_align_forward(x_nhwc, rois, pooled_h, pooled_w, spatial_scale, sampling_ratio, aligned, max_taps):
    height, width, channels = x_nhwc.shape[1:]
    k_total = rois.shape[0]
    out = np.zeros((k_total, pooled_h, pooled_w, channels), x_nhwc.dtype)  # channels-last
    for k in prange(k_total):
        rows = np.empty(max_taps, np.int64)
        cols = np.empty(max_taps, np.int64)
        weights = np.empty(max_taps, np.float64)
        b = int(rois[k, 0])
        x1, y1, bin_w, bin_h, grid_w, grid_h = _roi_geometry(rois[k], spatial_scale, pooled_h, pooled_w,
                                                              sampling_ratio, aligned)
        for ph in range(pooled_h):
            for pw in range(pooled_w):
                t = _bin_taps(height, width, x1, y1, bin_w, bin_h, grid_w, grid_h, ph, pw, rows, cols, weights)
                acc = out[k, ph, pw]
                for i in range(t):
                    wt = x_nhwc.dtype.type(weights[i])
                    src = x_nhwc[b, rows[i], cols[i]]
                    for c in range(channels):
                        acc[c] += wt * src[c]
    return out


@parallel_kernel()
def _roi_align_backward(g_nhwc, rois, n, height, width, spatial_scale, sampling_ratio, aligned, max_taps, n_chunks):
    k_total, pooled_h, pooled_w, channels = g_nhwc.shape
    gx = np.zeros((n, height, width, channels), g_nhwc.dtype)
    chunk = (channels + n_chunks - 1) // n_chunks
    for part in prange(n_chunks):
        c0 = part * chunk
        c1 = min(channels, c0 + chunk)
        rows = np.empty(max_taps, np.int64)
        cols = np.empty(max_taps, np.int64)
        weights = np.empty(max_taps, np.float64)
        for k in range(k_total):
            b = int(rois[k, 0])
            x1, y1, bin_w, bin_h, grid_w, grid_h = _roi_geometry(rois[k], spatial_scale, pooled_h, pooled_w,
                                                                  sampling_ratio, aligned)
            for ph in range(pooled_h):
                for pw in range(pooled_w):
                    t = _bin_taps(height, width, x1, y1, bin_w, bin_h, grid_w, grid_h, ph, pw, rows, cols, weights)
                    src = g_nhwc[k, ph, pw]
                    for i in range(t):
                        wt = g_nhwc.dtype.type(weights[i])
                        dst = gx[b, rows[i], cols[i]]
                        for c in range(c0, c1):
                            dst[c] += wt * src[c]
    return gx


def _check(x, rois, output_size):
    if x.ndim != 4:
        raise ValueError(f"input must be (N, C, H, W), got shape {x.shape}")
    if rois.ndim != 2 or rois.shape[1] != 5:
        raise ValueError(f"rois must be (K, 5) as (batch_index, x1, y1, x2, y2), got shape {rois.shape}")
    if rois.shape[0] and (rois[:, 0].min() < 0 or rois[:, 0].max() >= x.shape[0]):
        raise ValueError(f"rois batch indices must lie in [0, {x.shape[0]}), got {rois[:, 0].min()}..{rois[:, 0].max()}")
    return int(output_size[0]), int(output_size[1])


def roi_align_forward(x, rois, output_size, spatial_scale, sampling_ratio, aligned):
    """(K, C, PH, PW) RoI Align of ``x`` (N, C, H, W) over ``rois`` (K, 5)."""
    rois = np.ascontiguousarray(rois, np.float64)
    ph, pw = _check(x, rois, output_size)
    x_nhwc = np.ascontiguousarray(x.transpose(0, 2, 3, 1))  # (N, H, W, C)
    max_taps = _max_taps(rois, float(spatial_scale), ph, pw, int(sampling_ratio), bool(aligned))
    out = _roi_align_forward(x_nhwc, rois, ph, pw, float(spatial_scale), int(sampling_ratio), bool(aligned),
                             max_taps)
    return np.ascontiguousarray(out.transpose(0, 3, 1, 2))  # (K, C, PH, PW)


def roi_align_backward(grad, rois, input_shape, spatial_scale, sampling_ratio, aligned):
    """d loss / d input (N, C, H, W) for the output gradient ``grad`` (K, C, PH, PW)."""
    rois = np.ascontiguousarray(rois, np.float64)
    n, c, h, w = input_shape
    ph, pw = grad.shape[2:]
    g_nhwc = np.ascontiguousarray(grad.transpose(0, 2, 3, 1))  # (K, PH, PW, C)
    max_taps = _max_taps(rois, float(spatial_scale), ph, pw, int(sampling_ratio), bool(aligned))
    n_chunks = max(1, min(c, 8))
    gx = _roi_align_backward(g_nhwc, rois, n, h, w, float(spatial_scale), int(sampling_ratio), bool(aligned),
                             max_taps, n_chunks)
    return np.ascontiguousarray(gx.transpose(0, 3, 1, 2))


@njit(cache=True)
def _round_half_away(v):
    return math.floor(v + 0.5) if v >= 0 else -math.floor(-v + 0.5)


@parallel_kernel()
def _roi_pool_forward(x, rois, pooled_h, pooled_w, spatial_scale):
    channels, height, width = x.shape[1:]
    k_total = rois.shape[0]
    out = np.zeros((k_total, channels, pooled_h, pooled_w), x.dtype)
    argmax = np.full((k_total, channels, pooled_h, pooled_w), -1, np.int64)
    for k in prange(k_total):
        b = int(rois[k, 0])
        x1 = int(_round_half_away(rois[k, 1] * spatial_scale))
        y1 = int(_round_half_away(rois[k, 2] * spatial_scale))
        x2 = int(_round_half_away(rois[k, 3] * spatial_scale))
        y2 = int(_round_half_away(rois[k, 4] * spatial_scale))
        roi_w = max(x2 - x1 + 1, 1)
        roi_h = max(y2 - y1 + 1, 1)
        bin_h = roi_h / pooled_h
        bin_w = roi_w / pooled_w
        for ph in range(pooled_h):
            hs = min(max(int(math.floor(ph * bin_h)) + y1, 0), height)
            he = min(max(int(math.ceil((ph + 1) * bin_h)) + y1, 0), height)
            for pw in range(pooled_w):
                ws = min(max(int(math.floor(pw * bin_w)) + x1, 0), width)
                we = min(max(int(math.ceil((pw + 1) * bin_w)) + x1, 0), width)
                if he <= hs or we <= ws:
                    continue  # empty bin: output 0, argmax -1
                for c in range(channels):
                    best = x[b, c, hs, ws]
                    best_index = hs * width + ws
                    for r in range(hs, he):
                        for col in range(ws, we):
                            if x[b, c, r, col] > best:
                                best = x[b, c, r, col]
                                best_index = r * width + col
                    out[k, c, ph, pw] = best
                    argmax[k, c, ph, pw] = best_index
    return out, argmax


@parallel_kernel()
def _roi_pool_backward(grad, rois, argmax, n, height, width):
    k_total, channels, pooled_h, pooled_w = grad.shape
    gx = np.zeros((n, channels, height, width), grad.dtype)
    for c in prange(channels):  # threads own channels: no two add into the same cell
        for k in range(k_total):
            b = int(rois[k, 0])
            for ph in range(pooled_h):
                for pw in range(pooled_w):
                    a = argmax[k, c, ph, pw]
                    if a >= 0:
                        gx[b, c, a // width, a % width] += grad[k, c, ph, pw]
    return gx


def roi_pool_forward(x, rois, output_size, spatial_scale):
    """(K, C, PH, PW) maxima and their flat argmax ``row * W + col`` (-1 for empty bins)."""
    rois = np.ascontiguousarray(rois, np.float64)
    ph, pw = _check(x, rois, output_size)
    return _roi_pool_forward(np.ascontiguousarray(x), rois, ph, pw, float(spatial_scale))


def roi_pool_backward(grad, rois, argmax, input_shape):
    n, _, h, w = input_shape
    return _roi_pool_backward(np.ascontiguousarray(grad), np.ascontiguousarray(rois, np.float64), argmax, n, h, w)


serialise_parallel_kernels(globals())
