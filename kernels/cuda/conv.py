"""CUDA kernels for 2-D convolution: im2col/col2im around cuBLAS, and direct grouped loops.

The same primitives and semantics as ``kernels/cpu/conv.py`` (the oracle; the plain
float64 derivation is ``kernels/reference/conv.py``): ``pointwise_forward/backward``,
``grouped_direct_forward/backward(_input, _weight)``, ``conv2d_forward_gemm/backward_gemm``,
``im2col``/``col2im`` and the depthwise helpers. Which path runs is the op's plan
(``minidl/functions/conv.py``), chosen once per call for every backend. Arrays are CuPy arrays on a GPU and NumPy arrays under the
Numba CUDA simulator (see ``_backend.py``).

Paths, as on the CPU:

* **1x1, stride 1, no padding, one group**: ``y[n] = W (K, C) @ x[n] (C, H*W)``,
  one batched ``xp.matmul`` (cuBLAS) on a reshaped view, no copy.
* **dense and grouped (im2col + GEMM)**: an im2col kernel (one thread per entry
  of ``col``, shape (C*kh*kw, N*OH*OW)) then one (batched) cuBLAS product per
  group; backward ``gW = gY @ col.T`` and ``gcol = W.T @ gY`` and a col2im
  kernel. col2im *gathers*: one thread per input pixel sums the columns that
  read it, so there are no atomics and the result is deterministic.
* **direct** (depthwise, and grouped with few channels per group): one thread per
  output pixel for the forward, one per input pixel (gather again) for the input
  gradient, and for the weight gradient one thread per (weight, chunk of
  N*OH*OW positions) writing a partial sum, summed by ``xp.sum``: a split
  reduction that fills the GPU even when there are few weights (depthwise).
"""
from __future__ import annotations

from numba import cuda

from minidl.kernels.cuda._backend import array_module, contiguous, launch
from minidl.kernels.shapes import conv_output_size

# Positions of N*OH*OW summed by one thread of the weight-gradient kernel.
WEIGHT_GRAD_CHUNK = 256


# ---------------------------------------------------------------------------
# im2col / col2im
# ---------------------------------------------------------------------------

@cuda.jit(cache=True)
def _im2col_kernel(x, col, n_batch, c_in, h, w, kh, kw, sh, sw, ph, pw, dh, dw, oh_size, ow_size):
    """col[(c, i, j), (n, oh, ow)] = xp[n, c, oh*sh + i*dh, ow*sw + j*dw] (0 in the padding); flat arrays."""
    t = cuda.grid(1)
    ohw = oh_size * ow_size
    p_size = n_batch * ohw
    if t >= c_in * kh * kw * p_size:
        return
    row = t // p_size
    p = t % p_size
    c = row // (kh * kw)
    i = (row // kw) % kh
    j = row % kw
    n = p // ohw
    oh = (p % ohw) // ow_size
    ow = p % ow_size
    hh = oh * sh - ph + i * dh
    ww = ow * sw - pw + j * dw
    if 0 <= hh < h and 0 <= ww < w:
        col[t] = x[((n * c_in + c) * h + hh) * w + ww]
    else:
        col[t] = 0.0


def im2col(x, kh, kw, stride, padding, dilation):
    """Unfold x (N, C, H, W) into col (C*kh*kw, N*OH*OW), as ``kernels.cpu.conv.im2col``."""
    xp = array_module(x)
    n_batch, c_in, h, w = x.shape
    oh_size, ow_size = conv_output_size(h, w, kh, kw, stride, padding, dilation)
    col = xp.empty((c_in * kh * kw, n_batch * oh_size * ow_size), dtype=x.dtype)
    launch(_im2col_kernel, col.size, contiguous(xp, x).ravel(), col.ravel(), n_batch, c_in, h, w,
           kh, kw, stride[0], stride[1], padding[0], padding[1], dilation[0], dilation[1], oh_size, ow_size)
    return col


@cuda.jit(cache=True)
def _col2im_kernel(col, gx, n_batch, c_in, h, w, kh, kw, sh, sw, ph, pw, dh, dw, oh_size, ow_size):
    """gx[n, c, hh, ww] = sum of the col entries read from that pixel (the adjoint of im2col)."""
    t = cuda.grid(1)
    if t >= n_batch * c_in * h * w:
        return
    n = t // (c_in * h * w)
    c = (t // (h * w)) % c_in
    hh = (t // w) % h
    ww = t % w
    ohw = oh_size * ow_size
    p_size = n_batch * ohw
    acc = 0.0
    for i in range(kh):
        # Output row oh read this pixel through tap i when oh*sh - ph + i*dh == hh.
        num_h = hh + ph - i * dh
        if num_h < 0 or num_h % sh != 0:
            continue
        oh = num_h // sh
        if oh >= oh_size:
            continue
        for j in range(kw):
            num_w = ww + pw - j * dw
            if num_w < 0 or num_w % sw != 0:
                continue
            ow = num_w // sw
            if ow >= ow_size:
                continue
            row = (c * kh + i) * kw + j
            acc += col[row * p_size + n * ohw + oh * ow_size + ow]
    gx[t] = acc


def col2im(col, x_shape, kh, kw, stride, padding, dilation):
    """Fold col (C*kh*kw, N*OH*OW) back onto (N, C, H, W), adding overlaps (one thread per pixel)."""
    xp = array_module(col)
    n_batch, c_in, h, w = x_shape
    oh_size, ow_size = conv_output_size(h, w, kh, kw, stride, padding, dilation)
    gx = xp.empty(tuple(x_shape), dtype=col.dtype)
    launch(_col2im_kernel, gx.size, contiguous(xp, col).ravel(), gx.ravel(), n_batch, c_in, h, w, kh, kw,
           stride[0], stride[1], padding[0], padding[1], dilation[0], dilation[1], oh_size, ow_size)
    return gx


# ---------------------------------------------------------------------------
# Direct kernels: depthwise and grouped convolution with few channels per group
# ---------------------------------------------------------------------------

@cuda.jit(cache=True)
def _direct_forward_kernel(x, weight, bias, y, ph, pw, sh, sw, dh, dw, groups):
    """y[n, k, oh, ow] = b[k] + sum_{c in group, i, j} w[k, c, i, j] * xp[n, g*Cg + c, oh*sh + i*dh, ow*sw + j*dw]."""
    t = cuda.grid(1)
    n_batch, k_out, oh_size, ow_size = y.shape
    if t >= n_batch * k_out * oh_size * ow_size:
        return
    h, w = x.shape[2], x.shape[3]
    c_per_group, kh, kw = weight.shape[1], weight.shape[2], weight.shape[3]
    k_per_group = k_out // groups
    n = t // (k_out * oh_size * ow_size)
    k = (t // (oh_size * ow_size)) % k_out
    oh = (t // ow_size) % oh_size
    ow = t % ow_size
    c0 = (k // k_per_group) * c_per_group
    acc = 0.0
    for c in range(c_per_group):
        for i in range(kh):
            hh = oh * sh - ph + i * dh
            if hh < 0 or hh >= h:
                continue
            for j in range(kw):
                ww = ow * sw - pw + j * dw
                if 0 <= ww < w:
                    acc += weight[k, c, i, j] * x[n, c0 + c, hh, ww]
    y[n, k, oh, ow] = acc + bias[k]


@cuda.jit(cache=True)
def _direct_backward_input_kernel(gy, weight, gx, ph, pw, sh, sw, dh, dw, groups):
    """gx[n, cin, hh, ww] = sum over the group's outputs (k, oh, ow) whose window read it of w * gy."""
    t = cuda.grid(1)
    n_batch, c_in, h, w = gx.shape
    if t >= n_batch * c_in * h * w:
        return
    k_out, c_per_group, kh, kw = weight.shape
    oh_size, ow_size = gy.shape[2], gy.shape[3]
    k_per_group = k_out // groups
    n = t // (c_in * h * w)
    cin = (t // (h * w)) % c_in
    hh = (t // w) % h
    ww = t % w
    g = cin // c_per_group
    c = cin % c_per_group
    acc = 0.0
    for i in range(kh):
        num_h = hh + ph - i * dh
        if num_h < 0 or num_h % sh != 0 or num_h // sh >= oh_size:
            continue
        oh = num_h // sh
        for j in range(kw):
            num_w = ww + pw - j * dw
            if num_w < 0 or num_w % sw != 0 or num_w // sw >= ow_size:
                continue
            ow = num_w // sw
            for kk in range(k_per_group):
                k = g * k_per_group + kk
                acc += weight[k, c, i, j] * gy[n, k, oh, ow]
    gx[n, cin, hh, ww] = acc


@cuda.jit(cache=True)
def _direct_backward_weight_kernel(gy, x, partial, kh, kw, ph, pw, sh, sw, dh, dw, groups, chunk):
    """partial[e, s] = sum over positions [s*chunk, (s+1)*chunk) of N*OH*OW of gy[n, k, oh, ow] * xp[...]

    for weight entry e = (k, c, i, j); the caller sums over s.
    """
    t = cuda.grid(1)
    n_weights, n_chunks = partial.shape
    if t >= n_weights * n_chunks:
        return
    e = t // n_chunks
    s = t % n_chunks
    h, w = x.shape[2], x.shape[3]
    n_batch, k_out, oh_size, ow_size = gy.shape
    c_per_group = x.shape[1] // groups
    k_per_group = k_out // groups
    k = e // (c_per_group * kh * kw)
    c = (e // (kh * kw)) % c_per_group
    i = (e // kw) % kh
    j = e % kw
    cin = (k // k_per_group) * c_per_group + c
    ohw = oh_size * ow_size
    stop = min((s + 1) * chunk, n_batch * ohw)
    acc = 0.0
    for p in range(s * chunk, stop):
        n = p // ohw
        oh = (p % ohw) // ow_size
        ow = p % ow_size
        hh = oh * sh - ph + i * dh
        ww = ow * sw - pw + j * dw
        if 0 <= hh < h and 0 <= ww < w:
            acc += gy[n, k, oh, ow] * x[n, cin, hh, ww]
    partial[e, s] = acc


def grouped_direct_forward(x, weight, bias, stride, padding, dilation, groups):
    """Grouped convolution by direct loops, one thread per output pixel; depthwise is groups == C."""
    xp = array_module(x, weight)
    n_batch, c_in, h, w = x.shape
    k_out, _, kh, kw = weight.shape
    oh_size, ow_size = conv_output_size(h, w, kh, kw, stride, padding, dilation)
    if bias is None:
        bias = xp.zeros(k_out, dtype=x.dtype)
    y = xp.empty((n_batch, k_out, oh_size, ow_size), dtype=x.dtype)
    launch(_direct_forward_kernel, y.size, contiguous(xp, x), contiguous(xp, weight), contiguous(xp, bias), y,
           padding[0], padding[1], stride[0], stride[1], dilation[0], dilation[1], groups)
    return y


def grouped_direct_backward_input(grad_out, weight, x_shape, stride, padding, dilation, groups):
    """dL/dx of the direct grouped convolution: one thread per input pixel gathers its outputs."""
    xp = array_module(grad_out, weight)
    gx = xp.empty(tuple(x_shape), dtype=grad_out.dtype)
    launch(_direct_backward_input_kernel, gx.size, contiguous(xp, grad_out), contiguous(xp, weight), gx,
           padding[0], padding[1], stride[0], stride[1], dilation[0], dilation[1], groups)
    return gx


def grouped_direct_backward_weight(grad_out, x, weight_shape, stride, padding, dilation, groups):
    """dL/dw of the direct grouped convolution: split reduction over N*OH*OW, then ``xp.sum``."""
    xp = array_module(grad_out, x)
    k_out, _, kh, kw = weight_shape
    n_batch, _, oh_size, ow_size = grad_out.shape
    n_weights = 1
    for s in weight_shape:
        n_weights *= int(s)
    n_chunks = -(-(n_batch * oh_size * ow_size) // WEIGHT_GRAD_CHUNK)
    # float64 partial sums: a depthwise weight sums N*OH*OW products (25 088 at 32x28x28).
    partial = xp.empty((n_weights, n_chunks), dtype=xp.float64)
    launch(_direct_backward_weight_kernel, partial.size, contiguous(xp, grad_out), contiguous(xp, x), partial,
           kh, kw, padding[0], padding[1], stride[0], stride[1], dilation[0], dilation[1], groups,
           WEIGHT_GRAD_CHUNK)
    return partial.sum(axis=1).astype(x.dtype).reshape(tuple(weight_shape))


def grouped_direct_backward(grad_out, x, weight, stride, padding, dilation, groups):
    """(grad_x, grad_w) of the direct path: the two gather kernels above, one after the other."""
    grad_x = grouped_direct_backward_input(grad_out, weight, x.shape, stride, padding, dilation, groups)
    grad_w = grouped_direct_backward_weight(grad_out, x, weight.shape, stride, padding, dilation, groups)
    return grad_x, grad_w


def depthwise_conv2d_forward(x, weight, bias, stride, padding, dilation):
    """Depthwise convolution (groups == C, K = C * multiplier): output channel k reads channel k // multiplier."""
    return grouped_direct_forward(x, weight, bias, stride, padding, dilation, x.shape[1])


def depthwise_conv2d_backward_input(grad_out, weight, x_shape, stride, padding, dilation):
    """dL/dx of the depthwise convolution."""
    return grouped_direct_backward_input(grad_out, weight, x_shape, stride, padding, dilation, x_shape[1])


def depthwise_conv2d_backward_weight(grad_out, x, weight_shape, stride, padding, dilation):
    """dL/dw of the depthwise convolution."""
    return grouped_direct_backward_weight(grad_out, x, weight_shape, stride, padding, dilation, x.shape[1])


# ---------------------------------------------------------------------------
# GEMM paths (cuBLAS through xp.matmul)
# ---------------------------------------------------------------------------

def _grouped_matmul(xp, a, b, groups):
    """a (G*M, Kd) @ b per group: b is (G*Kd, P) split by rows; returns (G*M, P)."""
    if groups == 1:
        return xp.matmul(a, b)
    m = a.shape[0] // groups
    kd = b.shape[0] // groups
    # (G, M, Kd) @ (G, Kd, P): one strided-batched cuBLAS call.
    return xp.matmul(a.reshape(groups, m, -1), b.reshape(groups, kd, -1)).reshape(groups * m, -1)


def conv2d_forward_gemm(x, weight, bias, stride, padding, dilation, groups):
    """Dense or grouped convolution as im2col followed by one GEMM per group."""
    xp = array_module(x, weight)
    n_batch, c_in, h, w = x.shape
    k_out, _, kh, kw = weight.shape
    oh_size, ow_size = conv_output_size(h, w, kh, kw, stride, padding, dilation)
    col = im2col(x, kh, kw, stride, padding, dilation)  # (C*kh*kw, N*OH*OW)
    w2 = contiguous(xp, weight).reshape(k_out, -1)  # (K, Cg*kh*kw)
    y_kp = _grouped_matmul(xp, w2, col, groups)  # (K, N*OH*OW)
    del col
    y = y_kp.reshape(k_out, n_batch, oh_size * ow_size).transpose(1, 0, 2)  # (N, K, OH*OW), a view
    if bias is not None:
        y = y + bias.reshape(1, k_out, 1)
    return xp.ascontiguousarray(y).reshape(n_batch, k_out, oh_size, ow_size)


def conv2d_backward_gemm(grad_out, x, weight, stride, padding, dilation, groups,
                         needs_input_grad=True, needs_weight_grad=True):
    """(grad_x, grad_w) of the im2col path; None where not needed.

    ``col`` is recomputed from x rather than kept from forward: it is kh*kw times
    the size of x, and one more im2col costs little next to the GEMMs.
    """
    xp = array_module(grad_out, x, weight)
    n_batch, c_in, h, w = x.shape
    k_out, c_per_group, kh, kw = weight.shape
    gy = contiguous(xp, grad_out).reshape(n_batch, k_out, -1)
    gy_kp = xp.ascontiguousarray(gy.transpose(1, 0, 2)).reshape(k_out, -1)  # (K, N*OH*OW)
    w2 = contiguous(xp, weight).reshape(k_out, -1)  # (K, Cg*kh*kw)
    kg = k_out // groups
    grad_x = grad_w = None
    if needs_weight_grad:
        col = im2col(x, kh, kw, stride, padding, dilation)  # (C*kh*kw, N*OH*OW)
        # (G, Kg, P) @ (G, P, Cg*kh*kw): gW = gY @ col.T per group
        grad_w = xp.matmul(gy_kp.reshape(groups, kg, -1),
                           col.reshape(groups, c_per_group * kh * kw, -1).transpose(0, 2, 1))
        grad_w = grad_w.reshape(weight.shape)
        del col
    if needs_input_grad:
        # (G, Cg*kh*kw, Kg) @ (G, Kg, P): gcol = W.T @ gY per group
        gcol = xp.matmul(w2.reshape(groups, kg, -1).transpose(0, 2, 1),
                         gy_kp.reshape(groups, kg, -1)).reshape(c_in * kh * kw, -1)
        grad_x = col2im(gcol, x.shape, kh, kw, stride, padding, dilation)
    return grad_x, grad_w


def pointwise_forward(x, weight, bias):
    """1x1 stride-1 convolution: y[n] (K, H*W) = W (K, C) @ x[n] (C, H*W), one batched GEMM."""
    xp = array_module(x, weight)
    n_batch, c_in, h, w = x.shape
    k_out = weight.shape[0]
    x3 = contiguous(xp, x).reshape(n_batch, c_in, h * w)
    w2 = contiguous(xp, weight).reshape(k_out, c_in)
    y = xp.matmul(w2, x3)  # (N, K, H*W)
    if bias is not None:
        y += bias.reshape(1, k_out, 1)
    return y.reshape(n_batch, k_out, h, w)


def pointwise_backward(grad_out, x, weight, needs_input_grad, needs_weight_grad):
    xp = array_module(grad_out, x, weight)
    n_batch, c_in, h, w = x.shape
    k_out = weight.shape[0]
    gy = contiguous(xp, grad_out).reshape(n_batch, k_out, h * w)
    x3 = contiguous(xp, x).reshape(n_batch, c_in, h * w)
    w2 = contiguous(xp, weight).reshape(k_out, c_in)
    grad_x = grad_w = None
    if needs_input_grad:
        grad_x = xp.matmul(w2.T, gy).reshape(x.shape)  # (N, C, H*W) = W.T @ gy[n]
    if needs_weight_grad:
        # sum_n gy[n] (K, HW) @ x[n].T (HW, C) as one GEMM over the (HW) axes of all images:
        # (K, N*HW) @ (N*HW, C)
        gy_kp = xp.ascontiguousarray(gy.transpose(1, 0, 2)).reshape(k_out, -1)
        x_pc = xp.ascontiguousarray(x3.transpose(0, 2, 1)).reshape(-1, c_in)
        grad_w = xp.matmul(gy_kp, x_pc).reshape(weight.shape)
    return grad_x, grad_w
