"""Fast CPU kernels for 2-D convolution: Numba loops around BLAS matrix products.

Arrays in, arrays out, no autograd. The plain float64 version of the same maths,
with the derivation, is ``kernels/reference/conv.py``; read that first.

Three paths, chosen by :func:`conv2d_forward` / :func:`conv2d_backward`:

* **1x1, stride 1, no padding, one group**: the convolution *is* a matrix product
  per image, ``y[n] (K, H*W) = W (K, C) @ x[n] (C, H*W)``, on a reshaped view of
  ``x``; no copy at all.
* **dense and grouped (im2col + GEMM)**: :func:`im2col` lays every window the
  kernel visits out as one column of a matrix ``col`` of shape
  (C*kh*kw, N*OH*OW); the convolution is then one large BLAS product
  ``W (K, C*kh*kw) @ col`` per group (all groups in one batched ``np.matmul``).
  Backward is two more products, ``gW = gY @ col.T`` and ``gcol = W.T @ gY``,
  and :func:`col2im` scatters ``gcol`` back onto the image.
* **direct** (depthwise, and grouped with few channels per group): a Numba
  loop over (image, output channel) that multiplies-and-adds shifted rows of
  the padded input. Here im2col would write a matrix kh*kw times larger than
  the input only to feed tiny matrix products, so reading the input straight
  from cache wins.

Performance notes (see shared/KERNELS.md): the padded input is built once so
the inner loops have no bounds branches; the contiguous width axis is
innermost; for stride 1 the direct kernels run over a "wide" output grid whose
row pitch equals the padded input's, which turns each (channel, tap) step into
one long contiguous loop that LLVM vectorises (the few extra columns are
computed and dropped); Numba parallel regions and multithreaded BLAS calls
never overlap (they alternate).
"""

import numpy as np
from numba import njit, prange

# Above this many input channels per group, im2col + batched GEMM beats the
# direct kernel (measured by benchmarks/bench_conv_kernels.py on 2 cores).
DIRECT_MAX_CHANNELS_PER_GROUP = 8


# ---------------------------------------------------------------------------
# Shapes and validation
# ---------------------------------------------------------------------------

def conv_output_size(h, w, kh, kw, stride, padding, dilation):
    """Output (OH, OW) by PyTorch's formula ``floor((H + 2p - d(k-1) - 1) / s) + 1``.

    The dilated kernel spans ``d(k-1) + 1`` pixels; it must fit in the padded
    input, otherwise there is no output position at all.

    >>> conv_output_size(32, 32, 3, 3, (1, 1), (1, 1), (1, 1))
    (32, 32)
    """
    sizes = []
    for axis, size, k in (("height", h, kh), ("width", w, kw)):
        i = 0 if axis == "height" else 1
        span = dilation[i] * (k - 1) + 1
        padded = size + 2 * padding[i]
        if span > padded:
            raise ValueError(
                f"kernel {axis} {k} with dilation {dilation[i]} spans {span} pixels, larger than "
                f"the padded input {axis} {size} + 2*{padding[i]} = {padded}")
        sizes.append((padded - span) // stride[i] + 1)
    return sizes[0], sizes[1]


def _check_args(x, weight, bias, stride, padding, dilation, groups):
    """Raise TypeError/ValueError naming the argument for anything the kernels cannot take."""
    if x.ndim != 4:
        raise ValueError(f"x must be 4-D (N, C, H, W), got shape {x.shape}")
    if weight.ndim != 4:
        raise ValueError(f"weight must be 4-D (K, C // groups, kh, kw), got shape {weight.shape}")
    if x.dtype not in (np.float32, np.float64):
        raise TypeError(f"x must be float32 or float64, got {x.dtype}")
    if weight.dtype != x.dtype:
        raise TypeError(f"weight dtype must match x dtype {x.dtype}, got {weight.dtype}")
    if bias is not None and (bias.shape != (weight.shape[0],) or bias.dtype != x.dtype):
        raise ValueError(f"bias must have shape ({weight.shape[0]},) and dtype {x.dtype}, "
                         f"got shape {bias.shape} and dtype {bias.dtype}")
    for name, pair, low in (("stride", stride, 1), ("padding", padding, 0), ("dilation", dilation, 1)):
        if len(pair) != 2 or min(pair) < low:
            raise ValueError(f"{name} must be a pair of ints >= {low}, got {pair}")
    c_in, k_out = x.shape[1], weight.shape[0]
    if groups < 1 or c_in % groups != 0 or k_out % groups != 0:
        raise ValueError(f"groups={groups} must divide both in_channels={c_in} and out_channels={k_out}")
    if c_in != weight.shape[1] * groups:
        raise ValueError(f"x has {c_in} channels but weight expects weight.shape[1] * groups = "
                         f"{weight.shape[1]} * {groups} = {weight.shape[1] * groups}")


def _is_depthwise(c_in, k_out, groups):
    return groups == c_in and k_out % c_in == 0


def _use_direct(c_in, k_out, groups):
    """Depthwise always, and grouped convolution with few channels per group."""
    return groups > 1 and (_is_depthwise(c_in, k_out, groups)
                           or c_in // groups <= DIRECT_MAX_CHANNELS_PER_GROUP)


def _is_pointwise(weight, stride, padding, groups):
    return weight.shape[2:] == (1, 1) and stride == (1, 1) and padding == (0, 0) and groups == 1


# ---------------------------------------------------------------------------
# im2col / col2im
# ---------------------------------------------------------------------------

@njit(cache=True)
def _valid_range(offset, stride, size, out_size):
    """Output indices o in [lo, hi) with 0 <= o*stride + offset < size (the rest read padding)."""
    lo = 0
    if offset < 0:
        lo = (-offset + stride - 1) // stride
    hi = 0
    if size - 1 - offset >= 0:
        hi = (size - 1 - offset) // stride + 1
    lo = min(lo, out_size)
    hi = min(max(hi, lo), out_size)
    return lo, hi


@njit(parallel=True, cache=True)
def _im2col_kernel(x, col, kh, kw, sh, sw, ph, pw, dh, dw, oh_size, ow_size):
    n_batch, c_in, h, w = x.shape
    ohw = oh_size * ow_size
    # One row of col (one channel and kernel tap) per iteration: rows are disjoint,
    # and each is written front to back, so the stores stream.
    for row in prange(c_in * kh * kw):
        c = row // (kh * kw)
        i = (row // kw) % kh
        j = row % kw
        w_off = j * dw - pw
        # Padding is handled by the valid column range, not by a branch per element.
        lo, hi = _valid_range(w_off, sw, w, ow_size)
        for n in range(n_batch):
            for oh in range(oh_size):
                base = n * ohw + oh * ow_size
                hh = oh * sh - ph + i * dh
                if hh < 0 or hh >= h:
                    for ow in range(ow_size):
                        col[row, base + ow] = 0.0
                    continue
                for ow in range(lo):
                    col[row, base + ow] = 0.0
                for ow in range(lo, hi):
                    col[row, base + ow] = x[n, c, hh, ow * sw + w_off]
                for ow in range(hi, ow_size):
                    col[row, base + ow] = 0.0


def im2col(x, kh, kw, stride, padding, dilation):
    """Unfold x (N, C, H, W) into col (C*kh*kw, N*OH*OW).

    ``col[(c, i, j), (n, oh, ow)] = xp[n, c, oh*s_h + i*d_h, ow*s_w + j*d_w]`` with
    ``xp`` the zero-padded input, so that the convolution becomes
    ``W.reshape(K, C*kh*kw) @ col``.
    """
    n_batch, c_in, h, w = x.shape
    oh_size, ow_size = conv_output_size(h, w, kh, kw, stride, padding, dilation)
    col = np.empty((c_in * kh * kw, n_batch * oh_size * ow_size), dtype=x.dtype)
    _im2col_kernel(np.ascontiguousarray(x), col, kh, kw, stride[0], stride[1],
                   padding[0], padding[1], dilation[0], dilation[1], oh_size, ow_size)
    return col


@njit(parallel=True, cache=True)
def _col2im_kernel(col, gx, kh, kw, sh, sw, ph, pw, dh, dw, oh_size, ow_size):
    n_batch, c_in, h, w = gx.shape
    ohw = oh_size * ow_size
    # Parallel over (image, channel) planes: each thread adds only into its own
    # plane gx[n, c], so no two threads ever touch the same element.
    for t in prange(n_batch * c_in):
        n = t // c_in
        c = t % c_in
        for i in range(kh):
            for j in range(kw):
                row = (c * kh + i) * kw + j
                w_off = j * dw - pw
                lo, hi = _valid_range(w_off, sw, w, ow_size)
                for oh in range(oh_size):
                    hh = oh * sh - ph + i * dh
                    if hh < 0 or hh >= h:
                        continue
                    base = n * ohw + oh * ow_size
                    for ow in range(lo, hi):
                        gx[n, c, hh, ow * sw + w_off] += col[row, base + ow]


def col2im(col, x_shape, kh, kw, stride, padding, dilation):
    """Fold col (C*kh*kw, N*OH*OW) back onto an image (N, C, H, W), adding overlaps.

    The adjoint of :func:`im2col`: every entry is added to the input pixel it was
    read from; entries that came from the padding are dropped.
    """
    n_batch, c_in, h, w = x_shape
    oh_size, ow_size = conv_output_size(h, w, kh, kw, stride, padding, dilation)
    gx = np.zeros(x_shape, dtype=col.dtype)
    _col2im_kernel(col, gx, kh, kw, stride[0], stride[1], padding[0], padding[1],
                   dilation[0], dilation[1], oh_size, ow_size)
    return gx


# ---------------------------------------------------------------------------
# Layout helpers for the GEMM path
# ---------------------------------------------------------------------------

@njit(parallel=True, cache=True)
def _kp_to_nchw(y_kp, bias, y):
    """y[n, k, q] = y_kp[k, n*Q + q] + bias[k]: the GEMM result back to NCHW."""
    n_batch, k_out, q_size = y.shape
    for t in prange(n_batch * k_out):
        n = t // k_out
        k = t % k_out
        b = bias[k]
        for q in range(q_size):
            y[n, k, q] = y_kp[k, n * q_size + q] + b


@njit(parallel=True, cache=True)
def _nchw_to_kp(gy, gy_kp):
    """gy_kp[k, n*Q + q] = gy[n, k, q]: the output gradient as the GEMM operand."""
    n_batch, k_out, q_size = gy.shape
    for t in prange(n_batch * k_out):
        n = t // k_out
        k = t % k_out
        for q in range(q_size):
            gy_kp[k, n * q_size + q] = gy[n, k, q]


@njit(parallel=True, cache=True)
def _pad(x, ph, pw):
    """Zero-padded copy of x, each plane flattened: (N, C, Hp*Wp)."""
    n_batch, c_in, h, w = x.shape
    hp = h + 2 * ph
    wp = w + 2 * pw
    xp = np.zeros((n_batch, c_in, hp * wp), dtype=x.dtype)
    for t in prange(n_batch * c_in):
        n = t // c_in
        c = t % c_in
        for hh in range(h):
            base = (hh + ph) * wp + pw
            for ww in range(w):
                xp[n, c, base + ww] = x[n, c, hh, ww]
    return xp


# ---------------------------------------------------------------------------
# Direct kernels: depthwise and grouped convolution with few channels per group
# ---------------------------------------------------------------------------
# Notation: the padded input plane is flattened with row pitch wp; the output is
# computed on a "wide" grid with the same pitch, position q = oh*wp + ow, of which
# only ow < OW is kept. For stride 1, tap (i, j) then reads xp[q + i*dh*wp + j*dw]
# for all q at once: one contiguous loop of length L = (OH-1)*wp + OW, whose last
# read is exactly the last element of the padded plane (no bounds branch needed).

@njit(parallel=True, cache=True)
def _direct_forward_kernel(xp, weight, bias, y, wp, sh, sw, dh, dw, groups):
    n_batch = xp.shape[0]
    k_out, c_per_group, kh, kw = weight.shape
    k_per_group = k_out // groups
    oh_size, ow_size = y.shape[2], y.shape[3]
    wide = (oh_size - 1) * wp + ow_size
    for t in prange(n_batch * k_out):
        n = t // k_out
        k = t % k_out
        g = k // k_per_group
        acc = np.zeros(oh_size * wp, dtype=y.dtype)  # wide output plane
        for c in range(c_per_group):
            plane = xp[n, g * c_per_group + c]
            for i in range(kh):
                for j in range(kw):
                    wv = weight[k, c, i, j]
                    off = i * dh * wp + j * dw
                    if sh == 1 and sw == 1:
                        for q in range(wide):
                            acc[q] += wv * plane[q + off]
                    else:
                        for oh in range(oh_size):
                            src = oh * sh * wp + off
                            dst = oh * wp
                            for ow in range(ow_size):
                                acc[dst + ow] += wv * plane[src + ow * sw]
        b = bias[k]
        for oh in range(oh_size):
            for ow in range(ow_size):
                y[n, k, oh, ow] = acc[oh * wp + ow] + b


@njit(parallel=True, cache=True)
def _widen(gy, wp):
    """gy (N, K, OH, OW) on the wide grid (N, K, OH*wp), zeros in the extra columns."""
    n_batch, k_out, oh_size, ow_size = gy.shape
    out = np.zeros((n_batch, k_out, oh_size * wp), dtype=gy.dtype)
    for t in prange(n_batch * k_out):
        n = t // k_out
        k = t % k_out
        for oh in range(oh_size):
            for ow in range(ow_size):
                out[n, k, oh * wp + ow] = gy[n, k, oh, ow]
    return out


@njit(parallel=True, cache=True)
def _direct_backward_input_kernel(gy_wide, weight, gx, hp, wp, ph, pw, sh, sw, dh, dw,
                                  groups, oh_size, ow_size):
    n_batch, c_in, h, w = gx.shape
    k_out, c_per_group, kh, kw = weight.shape
    k_per_group = k_out // groups
    wide = (oh_size - 1) * wp + ow_size
    # Parallel over input planes (n, c): each thread scatters only into its own
    # padded plane, so there are no races.
    for t in prange(n_batch * c_in):
        n = t // c_in
        ci = t % c_in
        g = ci // c_per_group
        c = ci % c_per_group
        gxp = np.zeros(hp * wp, dtype=gx.dtype)
        for kk in range(k_per_group):
            k = g * k_per_group + kk
            g_plane = gy_wide[n, k]
            for i in range(kh):
                for j in range(kw):
                    wv = weight[k, c, i, j]
                    off = i * dh * wp + j * dw
                    if sh == 1 and sw == 1:
                        # Extra wide-grid columns of gy are zero, so they add nothing.
                        for q in range(wide):
                            gxp[q + off] += wv * g_plane[q]
                    else:
                        for oh in range(oh_size):
                            src = oh * wp
                            dst = oh * sh * wp + off
                            for ow in range(ow_size):
                                gxp[dst + ow * sw] += wv * g_plane[src + ow]
        for hh in range(h):
            for ww in range(w):
                gx[n, ci, hh, ww] = gxp[(hh + ph) * wp + ww + pw]


# fastmath "reassoc" lets LLVM vectorise the dot products (a reordered float sum);
# nothing else about the arithmetic changes.
@njit(parallel=True, cache=True, fastmath={"reassoc", "contract"})
def _direct_backward_weight_kernel(gy_wide, xp, gw, wp, sh, sw, dh, dw, groups, oh_size, ow_size):
    n_batch = xp.shape[0]
    k_out, c_per_group, kh, kw = gw.shape
    k_per_group = k_out // groups
    wide = (oh_size - 1) * wp + ow_size
    # Parallel over output channels: each thread owns gw[k] and sums over images.
    for k in prange(k_out):
        g = k // k_per_group
        for n in range(n_batch):
            g_plane = gy_wide[n, k]
            for c in range(c_per_group):
                plane = xp[n, g * c_per_group + c]
                for i in range(kh):
                    for j in range(kw):
                        off = i * dh * wp + j * dw
                        s = 0.0
                        if sh == 1 and sw == 1:
                            for q in range(wide):
                                s += g_plane[q] * plane[q + off]
                        else:
                            for oh in range(oh_size):
                                src = oh * sh * wp + off
                                for ow in range(ow_size):
                                    s += g_plane[oh * wp + ow] * plane[src + ow * sw]
                        gw[k, c, i, j] += s


def _pad_for_direct(x, padding):
    """Padded, flattened input (N, C, Hp*Wp) and its row pitch Wp."""
    xp = _pad(np.ascontiguousarray(x), padding[0], padding[1])
    return xp, x.shape[3] + 2 * padding[1]


def grouped_direct_forward(x, weight, bias, stride, padding, dilation, groups):
    """Grouped convolution by direct loops (no im2col); depthwise is groups == C."""
    n_batch, c_in, h, w = x.shape
    k_out, _, kh, kw = weight.shape
    oh_size, ow_size = conv_output_size(h, w, kh, kw, stride, padding, dilation)
    xp, wp = _pad_for_direct(x, padding)
    if bias is None:
        bias = np.zeros(k_out, dtype=x.dtype)
    y = np.empty((n_batch, k_out, oh_size, ow_size), dtype=x.dtype)
    _direct_forward_kernel(xp, np.ascontiguousarray(weight), bias, y, wp,
                           stride[0], stride[1], dilation[0], dilation[1], groups)
    return y


def grouped_direct_backward_input(grad_out, weight, x_shape, stride, padding, dilation, groups):
    """dL/dx of the direct grouped convolution: each output gradient scattered onto its window."""
    n_batch, c_in, h, w = x_shape
    oh_size, ow_size = grad_out.shape[2:]
    hp, wp = h + 2 * padding[0], w + 2 * padding[1]
    gy_wide = _widen(np.ascontiguousarray(grad_out), wp)
    gx = np.empty(x_shape, dtype=grad_out.dtype)
    _direct_backward_input_kernel(gy_wide, np.ascontiguousarray(weight), gx, hp, wp,
                                  padding[0], padding[1], stride[0], stride[1],
                                  dilation[0], dilation[1], groups, oh_size, ow_size)
    return gx


def grouped_direct_backward_weight(grad_out, x, weight_shape, stride, padding, dilation, groups):
    """dL/dw of the direct grouped convolution: correlation of the input with the output gradient."""
    oh_size, ow_size = grad_out.shape[2:]
    xp, wp = _pad_for_direct(x, padding)
    gy_wide = _widen(np.ascontiguousarray(grad_out), wp)
    gw = np.zeros(weight_shape, dtype=x.dtype)
    _direct_backward_weight_kernel(gy_wide, xp, gw, wp, stride[0], stride[1],
                                   dilation[0], dilation[1], groups, oh_size, ow_size)
    return gw


def depthwise_conv2d_forward(x, weight, bias, stride, padding, dilation):
    """Depthwise convolution (groups == C, K = C * multiplier) by a direct Numba kernel.

    Output channel k reads only input channel k // multiplier:
    ``y[n, k, oh, ow] = b[k] + sum_{i,j} w[k, 0, i, j] * xp[n, k // m, oh*s + i*d, ow*s + j*d]``.
    """
    return grouped_direct_forward(x, weight, bias, stride, padding, dilation, x.shape[1])


def depthwise_conv2d_backward_input(grad_out, weight, x_shape, stride, padding, dilation):
    """dL/dx of the depthwise convolution (see :func:`depthwise_conv2d_forward`)."""
    return grouped_direct_backward_input(grad_out, weight, x_shape, stride, padding, dilation,
                                         x_shape[1])


def depthwise_conv2d_backward_weight(grad_out, x, weight_shape, stride, padding, dilation):
    """dL/dw of the depthwise convolution (see :func:`depthwise_conv2d_forward`)."""
    return grouped_direct_backward_weight(grad_out, x, weight_shape, stride, padding, dilation,
                                          x.shape[1])


# ---------------------------------------------------------------------------
# GEMM paths
# ---------------------------------------------------------------------------

def _grouped_matmul(a, b, groups):
    """a (G*M, Kd) @ b per group: b is (G*Kd, P) split by rows; returns (G*M, P)."""
    if groups == 1:
        return a @ b
    m = a.shape[0] // groups
    kd = b.shape[0] // groups
    # (G, M, Kd) @ (G, Kd, P): np.matmul runs one BLAS call per group.
    return np.matmul(a.reshape(groups, m, -1), b.reshape(groups, kd, -1)).reshape(groups * m, -1)


def conv2d_forward_gemm(x, weight, bias, stride, padding, dilation, groups):
    """Dense or grouped convolution as im2col followed by one GEMM per group."""
    n_batch, c_in, h, w = x.shape
    k_out, _, kh, kw = weight.shape
    oh_size, ow_size = conv_output_size(h, w, kh, kw, stride, padding, dilation)
    col = im2col(x, kh, kw, stride, padding, dilation)  # (C*kh*kw, N*OH*OW)
    w2 = np.ascontiguousarray(weight).reshape(k_out, -1)  # (K, Cg*kh*kw)
    y_kp = _grouped_matmul(w2, col, groups)  # (K, N*OH*OW)
    y = np.empty((n_batch, k_out, oh_size * ow_size), dtype=x.dtype)
    if bias is None:
        bias = np.zeros(k_out, dtype=x.dtype)
    _kp_to_nchw(y_kp, bias, y)
    return y.reshape(n_batch, k_out, oh_size, ow_size)


def conv2d_backward_gemm(grad_out, x, weight, stride, padding, dilation, groups,
                         needs_input_grad=True, needs_weight_grad=True):
    """(grad_x, grad_w) of the im2col path; None where not needed.

    ``col`` is recomputed from x rather than kept from forward: it is kh*kw times
    the size of x, and recomputing costs one cheap pass compared with the GEMMs.
    """
    n_batch, c_in, h, w = x.shape
    k_out, c_per_group, kh, kw = weight.shape
    gy = np.ascontiguousarray(grad_out).reshape(n_batch, k_out, -1)
    gy_kp = np.empty((k_out, gy.shape[0] * gy.shape[2]), dtype=gy.dtype)  # (K, N*OH*OW)
    _nchw_to_kp(gy, gy_kp)
    w2 = np.ascontiguousarray(weight).reshape(k_out, -1)  # (K, Cg*kh*kw)
    grad_x = grad_w = None
    if needs_weight_grad:
        col = im2col(x, kh, kw, stride, padding, dilation)  # (C*kh*kw, N*OH*OW)
        if groups == 1:
            grad_w = gy_kp @ col.T
        else:
            kg = k_out // groups
            grad_w = np.matmul(gy_kp.reshape(groups, kg, -1),
                               col.reshape(groups, c_per_group * kh * kw, -1).transpose(0, 2, 1))
        grad_w = grad_w.reshape(weight.shape)
        del col
    if needs_input_grad:
        if groups == 1:
            gcol = w2.T @ gy_kp  # (C*kh*kw, N*OH*OW)
        else:
            kg = k_out // groups
            gcol = np.matmul(w2.reshape(groups, kg, -1).transpose(0, 2, 1),
                             gy_kp.reshape(groups, kg, -1)).reshape(c_in * kh * kw, -1)
        grad_x = col2im(gcol, x.shape, kh, kw, stride, padding, dilation)
    return grad_x, grad_w


def _pointwise_forward(x, weight, bias):
    """1x1 stride-1 convolution: y[n] (K, H*W) = W (K, C) @ x[n] (C, H*W), written in place."""
    n_batch, c_in, h, w = x.shape
    k_out = weight.shape[0]
    x3 = np.ascontiguousarray(x).reshape(n_batch, c_in, h * w)
    w2 = np.ascontiguousarray(weight).reshape(k_out, c_in)
    y = np.empty((n_batch, k_out, h * w), dtype=x.dtype)
    for n in range(n_batch):
        np.matmul(w2, x3[n], out=y[n])
    if bias is not None:
        y += bias[None, :, None]
    return y.reshape(n_batch, k_out, h, w)


def _pointwise_backward(grad_out, x, weight, needs_input_grad, needs_weight_grad):
    n_batch, c_in, h, w = x.shape
    k_out = weight.shape[0]
    gy = np.ascontiguousarray(grad_out).reshape(n_batch, k_out, h * w)
    x3 = np.ascontiguousarray(x).reshape(n_batch, c_in, h * w)
    w2 = np.ascontiguousarray(weight).reshape(k_out, c_in)
    grad_x = grad_w = None
    if needs_input_grad:
        grad_x = np.empty_like(x3)
        w2t = np.ascontiguousarray(w2.T)
        for n in range(n_batch):
            np.matmul(w2t, gy[n], out=grad_x[n])  # (C, H*W) = W.T @ gy[n]
        grad_x = grad_x.reshape(x.shape)
    if needs_weight_grad:
        grad_w = np.zeros((k_out, c_in), dtype=x.dtype)
        for n in range(n_batch):
            grad_w += gy[n] @ x3[n].T  # (K, C)
        grad_w = grad_w.reshape(weight.shape)
    return grad_x, grad_w


# ---------------------------------------------------------------------------
# Public entry points
# ---------------------------------------------------------------------------

def conv2d_forward(x, weight, bias, stride, padding, dilation, groups):
    """y (N, K, OH, OW) = conv2d(x (N, C, H, W), weight (K, C // groups, kh, kw)) + bias.

    stride, padding and dilation are int pairs (h, w); padding is symmetric.
    Keeps the dtype (float32 or float64). Dispatches to the 1x1 GEMM, direct
    (depthwise / few channels per group) or im2col + GEMM path.

    >>> x = np.ones((1, 2, 4, 4), np.float32)
    >>> w = np.ones((3, 2, 3, 3), np.float32)
    >>> conv2d_forward(x, w, None, (1, 1), (1, 1), (1, 1), 1)[0, 0, 0]
    array([ 8., 12., 12.,  8.], dtype=float32)
    """
    _check_args(x, weight, bias, stride, padding, dilation, groups)
    n_batch, c_in, h, w = x.shape
    k_out, _, kh, kw = weight.shape
    conv_output_size(h, w, kh, kw, stride, padding, dilation)  # raises if the kernel does not fit
    if _is_pointwise(weight, stride, padding, groups):
        return _pointwise_forward(x, weight, bias)
    if _use_direct(c_in, k_out, groups):
        return grouped_direct_forward(x, weight, bias, stride, padding, dilation, groups)
    return conv2d_forward_gemm(x, weight, bias, stride, padding, dilation, groups)


def conv2d_backward(grad_out, x, weight, stride, padding, dilation, groups, needs_input_grad=True,
                    needs_weight_grad=True, needs_bias_grad=True):
    """(grad_x, grad_w, grad_b) of :func:`conv2d_forward`; None for those not needed.

    Needs only x and weight from forward (not the im2col matrix, which is
    recomputed: that keeps forward memory at the size of the output).
    """
    _check_args(x, weight, None, stride, padding, dilation, groups)
    n_batch, c_in, h, w = x.shape
    k_out, _, kh, kw = weight.shape
    expected = (n_batch, k_out) + conv_output_size(h, w, kh, kw, stride, padding, dilation)
    if grad_out.shape != expected or grad_out.dtype != x.dtype:
        raise ValueError(f"grad_out must have shape {expected} and dtype {x.dtype}, "
                         f"got shape {grad_out.shape} and dtype {grad_out.dtype}")
    grad_b = grad_out.sum(axis=(0, 2, 3)) if needs_bias_grad else None
    if _is_pointwise(weight, stride, padding, groups):
        grad_x, grad_w = _pointwise_backward(grad_out, x, weight, needs_input_grad, needs_weight_grad)
    elif _use_direct(c_in, k_out, groups):
        grad_x = grad_w = None
        if needs_input_grad:
            grad_x = grouped_direct_backward_input(grad_out, weight, x.shape, stride, padding,
                                                   dilation, groups)
        if needs_weight_grad:
            grad_w = grouped_direct_backward_weight(grad_out, x, weight.shape, stride, padding,
                                                    dilation, groups)
    else:
        grad_x, grad_w = conv2d_backward_gemm(grad_out, x, weight, stride, padding, dilation,
                                              groups, needs_input_grad, needs_weight_grad)
    return grad_x, grad_w, grad_b
