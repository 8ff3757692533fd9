"""Reference pooling in plain float64 NumPy: the textbook version and the test oracle.

Every function loops over output positions and reads its window directly, exactly as
the definition says; nothing is fused or vectorised. The fast kernels in
``kernels/cpu/pooling.py`` must agree with these.

Window geometry (PyTorch's convention). For output row ``i`` the window covers input
rows ``i*stride - padding + u*dilation`` for ``u = 0..kernel-1``; rows outside the
image are padding. The number of output rows is

    out = floor((H + 2*padding - dilation*(kernel-1) - 1) / stride) + 1

or, with ``ceil_mode``, the same with ``ceil`` instead of ``floor``, except that a last
window starting in the right padding only is dropped.
"""

import math

import numpy as np


def pool_output_size(h, w, kernel, stride, padding, dilation, ceil_mode):
    """Output (OH, OW) by PyTorch's rule; ValueError for too much padding or an empty output."""
    sizes = []
    for size, k, s, p, d in zip((h, w), kernel, stride, padding, dilation):
        if p > k // 2:
            raise ValueError(f"padding should be at most half of kernel_size, got padding={padding}, kernel_size={kernel}")
        span = size + 2 * p - d * (k - 1) - 1
        out = (math.ceil(span / s) if ceil_mode else math.floor(span / s)) + 1
        if ceil_mode and (out - 1) * s >= size + p:
            out -= 1
        sizes.append(out)
    if sizes[0] < 1 or sizes[1] < 1:
        raise ValueError(f"pooled output is too small: input {(h, w)} gives output {tuple(sizes)}")
    return tuple(sizes)


def max_pool2d_forward(x, kernel, stride, padding, dilation, ceil_mode):
    """Max over each window; the index is the flat ``r*W + c`` of the first maximum.

    Padding never wins: it behaves as -inf. The index starts at the first in-image
    element of the window (so a window of -inf values still points inside the image),
    and a NaN always takes over (NaN propagates, as in PyTorch).
    """
    x = np.asarray(x, dtype=np.float64)
    n, c, h, w = x.shape
    oh, ow = pool_output_size(h, w, kernel, stride, padding, dilation, ceil_mode)
    y = np.empty((n, c, oh, ow))
    idx = np.empty((n, c, oh, ow), dtype=np.int64)
    for b in range(n):
        for ch in range(c):
            for i in range(oh):
                for j in range(ow):
                    rows = [i * stride[0] - padding[0] + u * dilation[0] for u in range(kernel[0])]
                    cols = [j * stride[1] - padding[1] + v * dilation[1] for v in range(kernel[1])]
                    rows = [r for r in rows if 0 <= r < h]
                    cols = [q for q in cols if 0 <= q < w]
                    best, best_idx = -np.inf, rows[0] * w + cols[0]
                    for r in rows:
                        for q in cols:
                            val = x[b, ch, r, q]
                            if val > best or np.isnan(val):
                                best, best_idx = val, r * w + q
                    y[b, ch, i, j] = best
                    idx[b, ch, i, j] = best_idx
    return y, idx


def max_pool2d_backward(grad_out, indices, input_shape):
    """Route each output gradient to its arg-max input: d y_o / d x_k = [k == index_o]."""
    n, c, h, w = input_shape
    grad_x = np.zeros((n, c, h * w))
    for b in range(n):
        for ch in range(c):
            for g, k in zip(np.ravel(grad_out[b, ch]), np.ravel(indices[b, ch])):
                grad_x[b, ch, k] += g
    return grad_x.reshape(n, c, h, w)


def _avg_window(o, size, k, s, p):
    """Window [start, end) clipped to the image, and its length counting padding."""
    start = o * s - p
    end = min(start + k, size + p)
    padded_len = end - start
    return max(start, 0), min(end, size), padded_len


def avg_pool2d_forward(x, kernel, stride, padding, ceil_mode, count_include_pad, divisor_override):
    """Window sum divided by ``divisor_override``, or by the window size counting padding
    (``count_include_pad``), or by the number of in-image elements."""
    x = np.asarray(x, dtype=np.float64)
    n, c, h, w = x.shape
    oh, ow = pool_output_size(h, w, kernel, stride, padding, (1, 1), ceil_mode)
    y = np.zeros((n, c, oh, ow))
    for i in range(oh):
        r0, r1, rlen = _avg_window(i, h, kernel[0], stride[0], padding[0])
        for j in range(ow):
            c0, c1, clen = _avg_window(j, w, kernel[1], stride[1], padding[1])
            if divisor_override is not None:
                divisor = divisor_override
            elif count_include_pad:
                divisor = rlen * clen
            else:
                divisor = (r1 - r0) * (c1 - c0)
            y[:, :, i, j] = x[:, :, r0:r1, c0:c1].sum(axis=(2, 3)) / divisor
    return y


def avg_pool2d_backward(grad_out, input_shape, kernel, stride, padding, ceil_mode, count_include_pad, divisor_override):
    """Each input of a window receives ``grad_out / divisor`` (the forward is linear)."""
    n, c, h, w = input_shape
    oh, ow = pool_output_size(h, w, kernel, stride, padding, (1, 1), ceil_mode)
    grad_x = np.zeros((n, c, h, w))
    for i in range(oh):
        r0, r1, rlen = _avg_window(i, h, kernel[0], stride[0], padding[0])
        for j in range(ow):
            c0, c1, clen = _avg_window(j, w, kernel[1], stride[1], padding[1])
            if divisor_override is not None:
                divisor = divisor_override
            elif count_include_pad:
                divisor = rlen * clen
            else:
                divisor = (r1 - r0) * (c1 - c0)
            grad_x[:, :, r0:r1, c0:c1] += np.asarray(grad_out[:, :, i, j], np.float64)[:, :, None, None] / divisor
    return grad_x


def adaptive_bins(size, out_size):
    """Bin i covers [floor(i*size/out), ceil((i+1)*size/out)): bins tile the input and may overlap."""
    return [((i * size) // out_size, -((-(i + 1) * size) // out_size)) for i in range(out_size)]


def adaptive_avg_pool2d_forward(x, output_size):
    """Mean over each adaptive bin."""
    x = np.asarray(x, dtype=np.float64)
    n, c, h, w = x.shape
    oh, ow = output_size
    y = np.empty((n, c, oh, ow))
    for i, (r0, r1) in enumerate(adaptive_bins(h, oh)):
        for j, (c0, c1) in enumerate(adaptive_bins(w, ow)):
            y[:, :, i, j] = x[:, :, r0:r1, c0:c1].mean(axis=(2, 3))
    return y


def adaptive_avg_pool2d_backward(grad_out, input_shape):
    """Each input of a bin receives ``grad_out / bin_size``."""
    n, c, h, w = input_shape
    oh, ow = grad_out.shape[2:]
    grad_x = np.zeros((n, c, h, w))
    for i, (r0, r1) in enumerate(adaptive_bins(h, oh)):
        for j, (c0, c1) in enumerate(adaptive_bins(w, ow)):
            size = (r1 - r0) * (c1 - c0)
            grad_x[:, :, r0:r1, c0:c1] += np.asarray(grad_out[:, :, i, j], np.float64)[:, :, None, None] / size
    return grad_x


def adaptive_max_pool2d_forward(x, output_size):
    """Max over each adaptive bin, with the flat index of the first maximum."""
    x = np.asarray(x, dtype=np.float64)
    n, c, h, w = x.shape
    oh, ow = output_size
    y = np.empty((n, c, oh, ow))
    idx = np.empty((n, c, oh, ow), dtype=np.int64)
    for b in range(n):
        for ch in range(c):
            for i, (r0, r1) in enumerate(adaptive_bins(h, oh)):
                for j, (c0, c1) in enumerate(adaptive_bins(w, ow)):
                    best, best_idx = -np.inf, r0 * w + c0
                    for r in range(r0, r1):
                        for q in range(c0, c1):
                            val = x[b, ch, r, q]
                            if val > best or np.isnan(val):
                                best, best_idx = val, r * w + q
                    y[b, ch, i, j] = best
                    idx[b, ch, i, j] = best_idx
    return y, idx


def adaptive_max_pool2d_backward(grad_out, indices, input_shape):
    """Same routing as max pooling."""
    return max_pool2d_backward(grad_out, indices, input_shape)


def global_avg_pool2d_forward(x):
    """Mean over the whole (H, W) plane, kept as (N, C, 1, 1)."""
    return np.asarray(x, dtype=np.float64).mean(axis=(2, 3), keepdims=True)
