"""Pooling kernels for the CPU (Numba): max, average, adaptive and global pooling.

Arrays in, arrays out, no autograd. Every kernel works on NCHW arrays and keeps the
input dtype (float32 or float64). The parallel loop runs over the N*C planes, so no two
threads ever write the same element (the backward scatters stay race-free), and the
contiguous width axis is the innermost loop.

Semantics follow PyTorch (``torch.nn.functional.max_pool2d`` with ``return_indices``,
``avg_pool2d``, ``adaptive_avg_pool2d``, ``adaptive_max_pool2d``); the plain float64
versions in ``kernels/reference/pooling.py`` are the readable textbook and test oracle.

Example::

    >>> import numpy as np
    >>> x = np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4)
    >>> y, idx = max_pool2d_forward(x, (2, 2), (2, 2), (0, 0), (1, 1), False)
    >>> y[0, 0]
    array([[ 5.,  7.],
           [13., 15.]], dtype=float32)
"""


import numpy as np
from numba import njit, prange

from minidl.kernels.cpu import serialise_parallel_kernels
from minidl.kernels.cpu.jit import parallel_kernel
from minidl.kernels.shapes import avg_pool_plan, check_output_size, pool_output_size


# --------------------------------------------------------------------------- checks


def _check_input(x, name="x"):
    """Validate a 4-D float array and return it C-contiguous."""
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray, got {type(x).__name__}")
    if x.ndim != 4:
        raise ValueError(f"{name} must be 4-D (N, C, H, W), got shape {x.shape}")
    if x.dtype not in (np.float32, np.float64):
        raise TypeError(f"{name} must be float32 or float64, got {x.dtype}")
    return np.ascontiguousarray(x)


# --------------------------------------------------------------------------- max pool


@njit(cache=True)
def _first_valid(out_size, kernel, stride, padding, dilation, size):
    """Per output position, the first input coordinate inside the image.

    PyTorch initialises the arg-max with this coordinate, so a window holding only
    -inf (or padding) still reports an in-bounds index.
    """
    first = np.empty(out_size, np.int64)
    for o in range(out_size):
        start = o * stride - padding
        while start < 0:
            start += dilation
        first[o] = start
    return first


@njit(cache=True, inline="always")
def _tap_row(phases, r_pad, col, sw, ow):
    """The ow inputs that window tap (padded row r_pad, column offset col) reads for one output row:
    unit stride in the phase plane of col modulo the stride."""
    shift = col // sw
    return phases[col % sw, r_pad, shift:shift + ow]


@parallel_kernel()
def _max_pool2d_fwd(x, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow):
    n, c, h, w = x.shape
    y = np.empty((n, c, oh, ow), x.dtype)
    indices = np.empty((n, c, oh, ow), np.int64)
    # The padded plane must cover every window, including ceil_mode's last ones.
    hp = max(h + 2 * ph, (oh - 1) * sh + dh * (kh - 1) + 1)
    wp = max(w + 2 * pw, (ow - 1) * sw + dw * (kw - 1) + 1)
    first_r = _first_valid(oh, kh, sh, ph, dh, h)
    first_c = _first_valid(ow, kw, sw, pw, dw, w)
    neg_inf = x.dtype.type(-np.inf)
    wq = (wp + sw - 1) // sw
    for p in prange(n * c):
        b = p // c
        ch = p % c
        # Pad once with -inf (never wins a strict '>'), and split the padded columns by
        # their phase modulo the stride: phases[q, r, m] = padded[r, m*sw + q]. Window
        # column j*sw + v*dw is then phases[(v*dw) % sw, r, j + (v*dw) // sw], so the
        # inner loop reads unit-stride memory and vectorises (a runtime stride did not:
        # 10x slower here).
        #
        # Element loops, not slice assignments: an array-to-array slice assignment makes
        # Numba compile its shape-mismatch error message (string formatting), seconds of a
        # first run for nothing.
        phases = np.empty((sw, hp, wq), x.dtype)
        flat = phases.reshape(-1)
        for e in range(flat.shape[0]):
            flat[e] = neg_inf
        for q in range(sw):
            c0 = (q - pw) % sw  # first input column whose padded column is q modulo sw
            m0 = (c0 + pw) // sw
            count = (w - c0 + sw - 1) // sw
            for r in range(h):
                src = x[b, ch, r, c0::sw]
                dst = phases[q, ph + r, m0:m0 + count]
                for m in range(count):  # the bare loop index: no negative-index check, so it vectorises
                    dst[m] = src[m]
        best = np.empty(ow, x.dtype)  # running max of one output row
        arg = np.empty(ow, np.int64)  # its flat index
        for i in range(oh):
            # Two branch-free passes over the window, output column j innermost: the maximum,
            # then the first position (row-major) holding it: (u, v) visited backwards, so the
            # first match is the last one written. A running "val > best or val != val" test
            # was a coin-toss branch per element (2-3x slower). The padding holds -inf and
            # never equals a finite maximum; a window whose maximum is -inf keeps PyTorch's
            # first in-image position; a row holding a NaN is redone by the exact rule below.
            nan_seen = 0
            for j in range(ow):
                best[j] = neg_inf
            for u in range(kh):
                for v in range(kw):
                    row = _tap_row(phases, i * sh + u * dh, v * dw, sw, ow)
                    for j in range(ow):  # the bare loop index: no negative-index check, so it vectorises
                        val = row[j]
                        best[j] = val if val > best[j] else best[j]
                        nan_seen += 1 if val != val else 0
            for j in range(ow):
                arg[j] = first_r[i] * w + first_c[j]
            if nan_seen == 0:
                for uv in range(kh * kw - 1, -1, -1):
                    r_pad, col = i * sh + (uv // kw) * dh, (uv % kw) * dw
                    row = _tap_row(phases, r_pad, col, sw, ow)
                    base = (r_pad - ph) * w + col - pw  # flat index of column j = base + j*sw
                    for j in range(ow):
                        hit = row[j] == best[j] and best[j] != neg_inf
                        arg[j] = base + j * sw if hit else arg[j]
            else:  # the exact rule, as PyTorch: `val > maxval || isnan(val)`; NaN propagates
                for j in range(ow):
                    best[j] = neg_inf
                for uv in range(kh * kw):
                    r_pad, col = i * sh + (uv // kw) * dh, (uv % kw) * dw
                    row = _tap_row(phases, r_pad, col, sw, ow)
                    base = (r_pad - ph) * w + col - pw
                    for j in range(ow):
                        val = row[j]
                        if val > best[j] or val != val:
                            best[j] = val
                            arg[j] = base + j * sw
            y_row = y[b, ch, i]
            index_row = indices[b, ch, i]
            for j in range(ow):
                y_row[j] = best[j]
                index_row[j] = arg[j]
    return y, indices


@njit(cache=True)
def _max_pool_2x2_row_exact(r0, r1, y_row, index_row, base, w):
    """One output row of 2x2/2 max pooling by the general kernel's rule (NaN propagates, last NaN's index)."""
    for j in range(y_row.shape[0]):
        best = -np.inf
        arg = base + 2 * j
        for u in range(2):
            row = r0 if u == 0 else r1
            for v in range(2):
                val = row[2 * j + v]
                if val > best or val != val:
                    best = val
                    arg = base + u * w + 2 * j + v
        y_row[j] = best
        index_row[j] = arg


@parallel_kernel(fastmath={"reassoc"}, error_model="numpy")
def _max_pool2d_2x2_fwd(x, oh, ow):
    """2x2 max pooling with stride 2 and no padding (LeNet-5's and VGG's): the windows tile the image.

    The general kernel's running comparison ``val > best or val != val`` keeps the loop
    scalar and branchy (a coin-toss branch per element on real data). Here each window's
    maximum is taken first and its first position found by equality (first in row-major
    order, as the general kernel), with no NaN test; a NaN (or an infinity) anywhere in a row
    shows in the row's sum of ``(a0 + a1 + a2 + a3) * 0``, and only such rows are redone
    with the exact rule (:func:`_max_pool_2x2_row_exact`).
    """
    n, c, h, w = x.shape
    y = np.empty((n, c, oh, ow), x.dtype)
    indices = np.empty((n, c, oh, ow), np.int64)
    zero = x.dtype.type(0)
    for p in prange(n * c):
        b = p // c
        ch = p % c
        for i in range(oh):
            r0 = x[b, ch, 2 * i]
            r1 = x[b, ch, 2 * i + 1]
            y_row = y[b, ch, i]
            index_row = indices[b, ch, i]
            base = 2 * i * w
            check = zero
            for j in range(ow):
                a0, a1, a2, a3 = r0[2 * j], r0[2 * j + 1], r1[2 * j], r1[2 * j + 1]
                m = max(max(a0, a1), max(a2, a3))
                code = w + 1
                code = w if a2 == m else code
                code = 1 if a1 == m else code
                code = 0 if a0 == m else code
                y_row[j] = m
                index_row[j] = base + 2 * j + code
                check += (a0 + a1 + a2 + a3) * zero
            if check != check:
                _max_pool_2x2_row_exact(r0, r1, y_row, index_row, base, w)
    return y, indices


def max_pool2d_forward(x, kernel, stride, padding, dilation, ceil_mode):
    """2-D max pooling with arg-max indices.

    ``y[n, c, i, j] = max over the window of x[n, c, i*sh - ph + u*dh, j*sw - pw + v*dw]``.
    ``indices`` (int64) is the flat position ``r * W + c`` of the maximum inside its
    (n, c) plane, as PyTorch's ``return_indices=True``; ties pick the first maximum in
    row-major scan order, NaN propagates.

    Returns ``(y, indices)``, both ``(N, C, OH, OW)``.
    """
    x = _check_input(x)
    _, _, h, w = x.shape
    oh, ow = pool_output_size(h, w, kernel, stride, padding, dilation, ceil_mode)
    if (tuple(kernel) == (2, 2) and tuple(stride) == (2, 2) and tuple(padding) == (0, 0)
            and tuple(dilation) == (1, 1) and 2 * oh <= h and 2 * ow <= w):
        return _max_pool2d_2x2_fwd(x, oh, ow)
    return _max_pool2d_fwd(x, *kernel, *stride, *padding, *dilation, oh, ow)


@parallel_kernel()
def _scatter_planes(grad_out, indices, n, c, h, w):
    """grad_x[n, c].flat[indices[n, c, o]] += grad_out[n, c, o], one plane per thread."""
    grad_x = np.empty((n, c, h * w), grad_out.dtype)
    g = grad_out.reshape(n, c, -1)
    idx = indices.reshape(n, c, -1)
    m = g.shape[2]
    for p in prange(n * c):
        b = p // c
        ch = p % c
        # Zero inside the parallel loop: first touch happens on the thread that scatters.
        grad_x[b, ch, :] = 0
        for o in range(m):
            grad_x[b, ch, idx[b, ch, o]] += g[b, ch, o]
    return grad_x.reshape(n, c, h, w)


def _check_grad_indices(grad_out, indices, input_shape):
    grad_out = _check_input(grad_out, "grad_out")
    if not isinstance(indices, np.ndarray) or indices.shape != grad_out.shape:
        shape = getattr(indices, "shape", None)
        raise ValueError(f"indices must have grad_out's shape {grad_out.shape}, got {shape}")
    if len(input_shape) != 4 or tuple(input_shape[:2]) != grad_out.shape[:2]:
        raise ValueError(
            f"input_shape must be (N, C, H, W) with (N, C)={grad_out.shape[:2]}, got {tuple(input_shape)}"
        )
    return grad_out, np.ascontiguousarray(indices, dtype=np.int64)


def max_pool2d_backward(grad_out, indices, input_shape):
    """Gradient of max pooling: each output gradient goes to the input that was the max.

    ``grad_x[n, c].flat[indices[n, c, i, j]] += grad_out[n, c, i, j]`` (overlapping
    windows may route several gradients to one input, hence ``+=``).
    """
    grad_out, indices = _check_grad_indices(grad_out, indices, input_shape)
    n, c, h, w = (int(s) for s in input_shape)
    if grad_out.size == 0:  # an empty batch (or no channels): nothing to scatter
        return np.zeros((n, c, h, w), grad_out.dtype)
    return _scatter_planes(grad_out, indices, n, c, h, w)


# --------------------------------------------------------------------------- average pool


@parallel_kernel()
def _avg_pool2d_fwd(x, r0, r1, c0, c1, inv):
    n, c, h, w = x.shape
    oh = r0.shape[0]
    ow = c0.shape[0]
    y = np.empty((n, c, oh, ow), x.dtype)
    inv_t = inv.astype(x.dtype)
    for p in prange(n * c):
        b = p // c
        ch = p % c
        plane = x[b, ch]
        # Sum rows first into a small buffer so the innermost loop runs along the width.
        acc = np.zeros(ow, x.dtype)
        for i in range(oh):
            acc[:] = 0
            for r in range(r0[i], r1[i]):
                for j in range(ow):
                    s = x.dtype.type(0)
                    for col in range(c0[j], c1[j]):
                        s += plane[r, col]
                    acc[j] += s
            for j in range(ow):
                y[b, ch, i, j] = acc[j] * inv_t[i, j]
    return y


@parallel_kernel()
def _avg_pool2d_2x2_fwd(x, inv):
    """Fast path: kernel 2x2, stride 2, no padding (every window is full)."""
    n, c, h, w = x.shape
    oh = h // 2
    ow = w // 2
    y = np.empty((n, c, oh, ow), x.dtype)
    q = x.dtype.type(inv)
    for p in prange(n * c):
        b = p // c
        ch = p % c
        for i in range(oh):
            top = x[b, ch, 2 * i]
            bottom = x[b, ch, 2 * i + 1]
            out = y[b, ch, i]
            for j in range(ow):
                out[j] = (top[2 * j] + top[2 * j + 1] + bottom[2 * j] + bottom[2 * j + 1]) * q
    return y


def _is_2x2(kernel, stride, padding):
    return tuple(kernel) == (2, 2) and tuple(stride) == (2, 2) and tuple(padding) == (0, 0)


def avg_pool2d_forward(x, kernel, stride, padding, ceil_mode, count_include_pad, divisor_override):
    """2-D average pooling, PyTorch's ``avg_pool2d``.

    ``y[n, c, i, j] = sum over the clipped window of x / divisor`` where the divisor is
    ``divisor_override`` if given, else the window size counting padding
    (``count_include_pad=True``) or only the in-image elements (``False``).
    """
    x = _check_input(x)
    _, _, h, w = x.shape
    r0, r1, c0, c1, inv = avg_pool_plan(h, w, kernel, stride, padding, ceil_mode, count_include_pad, divisor_override)
    if _is_2x2(kernel, stride, padding) and h % 2 == 0 and w % 2 == 0:
        return _avg_pool2d_2x2_fwd(x, inv[0, 0])
    return _avg_pool2d_fwd(x, r0, r1, c0, c1, inv)


@parallel_kernel()
def _avg_pool2d_bwd(grad_out, h, w, r0, r1, c0, c1, inv):
    n, c, oh, ow = grad_out.shape
    grad_x = np.empty((n, c, h, w), grad_out.dtype)
    inv_t = inv.astype(grad_out.dtype)
    for p in prange(n * c):
        b = p // c
        ch = p % c
        gx = grad_x[b, ch]
        gx[:, :] = 0
        for i in range(oh):
            for j in range(ow):
                g = grad_out[b, ch, i, j] * inv_t[i, j]
                for r in range(r0[i], r1[i]):
                    for col in range(c0[j], c1[j]):
                        gx[r, col] += g
    return grad_x


@parallel_kernel()
def _avg_pool2d_2x2_bwd(grad_out, inv):
    n, c, oh, ow = grad_out.shape
    grad_x = np.empty((n, c, 2 * oh, 2 * ow), grad_out.dtype)
    q = grad_out.dtype.type(inv)
    for p in prange(n * c):
        b = p // c
        ch = p % c
        for i in range(oh):
            g = grad_out[b, ch, i]
            top = grad_x[b, ch, 2 * i]
            bottom = grad_x[b, ch, 2 * i + 1]
            for j in range(ow):
                v = g[j] * q
                top[2 * j] = v
                top[2 * j + 1] = v
                bottom[2 * j] = v
                bottom[2 * j + 1] = v
    return grad_x


def avg_pool2d_backward(grad_out, input_shape, kernel, stride, padding, ceil_mode, count_include_pad, divisor_override):
    """Gradient of average pooling: every input in a window receives ``grad_out / divisor``."""
    grad_out = _check_input(grad_out, "grad_out")
    if len(input_shape) != 4 or tuple(input_shape[:2]) != grad_out.shape[:2]:
        raise ValueError(
            f"input_shape must be (N, C, H, W) with (N, C)={grad_out.shape[:2]}, got {tuple(input_shape)}"
        )
    h, w = int(input_shape[2]), int(input_shape[3])
    r0, r1, c0, c1, inv = avg_pool_plan(h, w, kernel, stride, padding, ceil_mode, count_include_pad, divisor_override)
    if grad_out.shape[2:] != inv.shape:
        raise ValueError(f"grad_out must have spatial shape {inv.shape} for this input, got {grad_out.shape[2:]}")
    if _is_2x2(kernel, stride, padding) and h % 2 == 0 and w % 2 == 0:
        return _avg_pool2d_2x2_bwd(grad_out, inv[0, 0])
    return _avg_pool2d_bwd(grad_out, h, w, r0, r1, c0, c1, inv)


# --------------------------------------------------------------------------- adaptive pools


def _adaptive_bins(size, out_size):
    """PyTorch's adaptive bins: start = floor(i*size/out), end = ceil((i+1)*size/out)."""
    i = np.arange(out_size, dtype=np.int64)
    start = (i * size) // out_size
    end = -((-(i + 1) * size) // out_size)  # ceil division on integers, exact
    return start, end


@parallel_kernel()
def _adaptive_avg_fwd(x, r0, r1, c0, c1):
    n, c, h, w = x.shape
    oh = r0.shape[0]
    ow = c0.shape[0]
    y = np.empty((n, c, oh, ow), x.dtype)
    for p in prange(n * c):
        b = p // c
        ch = p % c
        plane = x[b, ch]
        for i in range(oh):
            for j in range(ow):
                s = 0.0  # float64 accumulator: adaptive bins can be large (global pooling)
                for r in range(r0[i], r1[i]):
                    for col in range(c0[j], c1[j]):
                        s += plane[r, col]
                y[b, ch, i, j] = s / ((r1[i] - r0[i]) * (c1[j] - c0[j]))
    return y


def adaptive_avg_pool2d_forward(x, output_size):
    """Adaptive average pooling to ``output_size`` (OH, OW): mean over PyTorch's bins.

    Bins may overlap, and ``output_size`` may exceed the input (bins then repeat inputs).
    """
    x = _check_input(x)
    oh, ow = check_output_size(output_size)
    _, _, h, w = x.shape
    r0, r1 = _adaptive_bins(h, oh)
    c0, c1 = _adaptive_bins(w, ow)
    return _adaptive_avg_fwd(x, r0, r1, c0, c1)


@parallel_kernel()
def _adaptive_avg_bwd(grad_out, h, w, r0, r1, c0, c1):
    n, c, oh, ow = grad_out.shape
    grad_x = np.empty((n, c, h, w), grad_out.dtype)
    for p in prange(n * c):
        b = p // c
        ch = p % c
        gx = grad_x[b, ch]
        gx[:, :] = 0
        for i in range(oh):
            for j in range(ow):
                g = grad_out[b, ch, i, j] / ((r1[i] - r0[i]) * (c1[j] - c0[j]))
                for r in range(r0[i], r1[i]):
                    for col in range(c0[j], c1[j]):
                        gx[r, col] += g
    return grad_x


def adaptive_avg_pool2d_backward(grad_out, input_shape):
    """Gradient of adaptive average pooling: ``grad_out / bin_size`` to every input in the bin."""
    grad_out = _check_input(grad_out, "grad_out")
    if len(input_shape) != 4 or tuple(input_shape[:2]) != grad_out.shape[:2]:
        raise ValueError(
            f"input_shape must be (N, C, H, W) with (N, C)={grad_out.shape[:2]}, got {tuple(input_shape)}"
        )
    h, w = int(input_shape[2]), int(input_shape[3])
    oh, ow = grad_out.shape[2:]
    r0, r1 = _adaptive_bins(h, oh)
    c0, c1 = _adaptive_bins(w, ow)
    return _adaptive_avg_bwd(grad_out, h, w, r0, r1, c0, c1)


@parallel_kernel()
def _adaptive_max_fwd(x, r0, r1, c0, c1):
    n, c, h, w = x.shape
    oh = r0.shape[0]
    ow = c0.shape[0]
    y = np.empty((n, c, oh, ow), x.dtype)
    indices = np.empty((n, c, oh, ow), np.int64)
    for p in prange(n * c):
        b = p // c
        ch = p % c
        plane = x[b, ch]
        for i in range(oh):
            for j in range(ow):
                best = x.dtype.type(-np.inf)
                best_idx = r0[i] * w + c0[j]
                for r in range(r0[i], r1[i]):
                    for col in range(c0[j], c1[j]):
                        val = plane[r, col]
                        if val > best or val != val:
                            best = val
                            best_idx = r * w + col
                y[b, ch, i, j] = best
                indices[b, ch, i, j] = best_idx
    return y, indices


def adaptive_max_pool2d_forward(x, output_size):
    """Adaptive max pooling over PyTorch's bins; returns ``(y, indices)`` like max pooling."""
    x = _check_input(x)
    oh, ow = check_output_size(output_size)
    _, _, h, w = x.shape
    r0, r1 = _adaptive_bins(h, oh)
    c0, c1 = _adaptive_bins(w, ow)
    return _adaptive_max_fwd(x, r0, r1, c0, c1)


def adaptive_max_pool2d_backward(grad_out, indices, input_shape):
    """Gradient of adaptive max pooling: scatter-add to the arg-max positions."""
    grad_out, indices = _check_grad_indices(grad_out, indices, input_shape)
    n, c, h, w = (int(s) for s in input_shape)
    if grad_out.size == 0:  # an empty batch (or no channels): nothing to scatter
        return np.zeros((n, c, h, w), grad_out.dtype)
    return _scatter_planes(grad_out, indices, n, c, h, w)


# --------------------------------------------------------------------------- global average


@parallel_kernel()
def _global_avg_fwd(x):
    n, c, h, w = x.shape
    flat = x.reshape(n * c, h * w)
    y = np.empty(n * c, x.dtype)
    for p in prange(n * c):
        s = 0.0
        for k in range(h * w):
            s += flat[p, k]
        y[p] = s / (h * w)
    return y.reshape(n, c, 1, 1)


def global_avg_pool2d_forward(x):
    """Global average pooling: ``y[n, c, 0, 0] = mean over (H, W) of x[n, c]``.

    Same as ``adaptive_avg_pool2d_forward(x, (1, 1))``; its backward is that one's.
    """
    x = _check_input(x)
    return _global_avg_fwd(x)


serialise_parallel_kernels(globals())
