"""Reference RoI Align and RoI Pool in plain float64 NumPy: the textbook version and the test oracle.

Both follow torchvision's CPU kernels (``torchvision/csrc/ops/cpu/roi_align_kernel.cpp`` and
``roi_pool_kernel.cpp``). A region of interest is a row ``(batch_index, x1, y1, x2, y2)`` in
image coordinates; ``spatial_scale`` maps it onto the feature map (1/stride).

RoI Align (He et al., Mask R-CNN, 2017) splits the scaled box into PH x PW bins and averages,
in each bin, ``grid_h x grid_w`` bilinear samples at the centres of a regular sub-grid::

    start = coord * spatial_scale - (0.5 if aligned else 0)
    size  = end - start                 (at least 1 when not aligned)
    grid  = sampling_ratio if > 0 else ceil(size / pooled)
    y     = start_y + ph * bin_h + (iy + 0.5) * bin_h / grid_h

A sample outside [-1, H] x [-1, W] counts as 0; otherwise it is clamped into the map and
interpolated from its four neighbours. The gradient scatters ``g / count`` back through the
same four weights.

RoI Pool (Girshick, Fast R-CNN, 2015) rounds the scaled box to integer cells, splits it into
bins by floor/ceil and takes the maximum of each bin (0 for an empty bin); the gradient
goes to the argmax.
"""

import math

import numpy as np


def bilinear_weights(height, width, y, x):
    """The four (row, col, weight) neighbours of sample (y, x), or [] outside the map."""
    if y < -1.0 or y > height or x < -1.0 or x > width:
        return []
    y = max(y, 0.0)
    x = max(x, 0.0)
    y_low, x_low = int(y), int(x)
    if y_low >= height - 1:
        y_low = y_high = height - 1
        y = float(y_low)
    else:
        y_high = y_low + 1
    if x_low >= width - 1:
        x_low = x_high = width - 1
        x = float(x_low)
    else:
        x_high = x_low + 1
    ly, lx = y - y_low, x - x_low
    hy, hx = 1.0 - ly, 1.0 - lx
    return [(y_low, x_low, hy * hx), (y_low, x_high, hy * lx), (y_high, x_low, ly * hx), (y_high, x_high, ly * lx)]


def _align_samples(roi, height, width, pooled_h, pooled_w, spatial_scale, sampling_ratio, aligned):
    """For each bin (ph, pw): the list of (row, col, weight) with weights already divided by count."""
    offset = 0.5 if aligned else 0.0
    x1, y1, x2, y2 = (float(v) * spatial_scale - offset for v in roi[1:5])
    roi_w, roi_h = x2 - x1, y2 - y1
    if not aligned:
        roi_w, roi_h = max(roi_w, 1.0), max(roi_h, 1.0)
    bin_h, bin_w = roi_h / pooled_h, roi_w / pooled_w
    grid_h = sampling_ratio if sampling_ratio > 0 else int(math.ceil(roi_h / pooled_h))
    grid_w = sampling_ratio if sampling_ratio > 0 else int(math.ceil(roi_w / pooled_w))
    count = max(grid_h * grid_w, 1)
    bins = {}
    for ph in range(pooled_h):
        for pw in range(pooled_w):
            taps = []
            for iy in range(grid_h):
                y = y1 + ph * bin_h + (iy + 0.5) * bin_h / grid_h
                for ix in range(grid_w):
                    x = x1 + pw * bin_w + (ix + 0.5) * bin_w / grid_w
                    taps += [(r, c, w / count) for r, c, w in bilinear_weights(height, width, y, x)]
            bins[ph, pw] = taps
    return bins


def roi_align_forward(x, rois, output_size, spatial_scale, sampling_ratio, aligned):
    """(K, C, PH, PW): the average of bilinear samples per bin."""
    x = np.asarray(x, np.float64)
    c, h, w = x.shape[1:]
    ph_, pw_ = output_size
    out = np.zeros((rois.shape[0], c, ph_, pw_))
    for k, roi in enumerate(np.asarray(rois, np.float64)):
        b = int(roi[0])
        for (ph, pw), taps in _align_samples(roi, h, w, ph_, pw_, spatial_scale, sampling_ratio, aligned).items():
            for r, col, weight in taps:
                out[k, :, ph, pw] += weight * x[b, :, r, col]
    return out


def roi_align_backward(grad, rois, input_shape, spatial_scale, sampling_ratio, aligned):
    """d loss / d x: each output gradient scattered through its bilinear weights."""
    h, w = input_shape[2:]
    ph_, pw_ = grad.shape[2:]
    gx = np.zeros(input_shape)
    for k, roi in enumerate(np.asarray(rois, np.float64)):
        b = int(roi[0])
        for (ph, pw), taps in _align_samples(roi, h, w, ph_, pw_, spatial_scale, sampling_ratio, aligned).items():
            for r, col, weight in taps:
                gx[b, :, r, col] += weight * grad[k, :, ph, pw]
    return gx


def _round_half_away(v):
    """C's ``round``: halves go away from zero (NumPy's round goes to even)."""
    return math.floor(v + 0.5) if v >= 0 else -math.floor(-v + 0.5)


def roi_pool_forward(x, rois, output_size, spatial_scale):
    """(K, C, PH, PW) maxima and the flat argmax ``row * W + col`` (-1 for an empty bin)."""
    x = np.asarray(x, np.float64)
    c, h, w = x.shape[1:]
    ph_, pw_ = output_size
    out = np.zeros((rois.shape[0], c, ph_, pw_))
    argmax = np.full(out.shape, -1, np.int64)
    for k, roi in enumerate(np.asarray(rois, np.float64)):
        b = int(roi[0])
        x1, y1, x2, y2 = (_round_half_away(v * spatial_scale) for v in roi[1:5])
        roi_w, roi_h = max(x2 - x1 + 1, 1), max(y2 - y1 + 1, 1)
        bin_h, bin_w = roi_h / ph_, roi_w / pw_
        for ph in range(ph_):
            hs = min(max(int(math.floor(ph * bin_h)) + y1, 0), h)
            he = min(max(int(math.ceil((ph + 1) * bin_h)) + y1, 0), h)
            for pw in range(pw_):
                ws = min(max(int(math.floor(pw * bin_w)) + x1, 0), w)
                we = min(max(int(math.ceil((pw + 1) * bin_w)) + x1, 0), w)
                if he <= hs or we <= ws:
                    continue
                for ch in range(c):
                    window = x[b, ch, hs:he, ws:we]
                    r, col = np.unravel_index(np.argmax(window), window.shape)  # first maximum
                    out[k, ch, ph, pw] = window[r, col]
                    argmax[k, ch, ph, pw] = (hs + r) * w + ws + col
    return out, argmax


def roi_pool_backward(grad, rois, argmax, input_shape):
    """d loss / d x: each bin's gradient goes to its argmax cell."""
    gx = np.zeros(input_shape)
    k_, c, ph_, pw_ = grad.shape
    for k in range(k_):
        b = int(rois[k, 0])
        for ch in range(c):
            for ph in range(ph_):
                for pw in range(pw_):
                    a = argmax[k, ch, ph, pw]
                    if a >= 0:
                        gx[b, ch, a // input_shape[3], a % input_shape[3]] += grad[k, ch, ph, pw]
    return gx
