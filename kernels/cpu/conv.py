"""Fast CPU kernels for 2-D convolution: Numba loops around BLAS matrix products.

Arrays in, arrays out, no autograd. The plain float64 version of the same maths,
with the derivation, is ``kernels/reference/conv.py``; read that first.

Three paths; which one runs is the op's plan (``minidl/functions/conv.py``), the same for
every backend, and ``kernels/cuda/conv.py`` supplies the same primitives:

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

import numba
import numpy as np
from numba import njit, prange

from minidl.kernels.cpu import blas, serialise_parallel_kernels, workspace
from minidl.kernels.cpu.jit import parallel_kernel
from minidl.kernels.cpu.winograd import winograd_backward, winograd_forward  # noqa: F401  (the "winograd" path)
from minidl.kernels.shapes import conv_output_size

# The im2col path works through the batch in chunks whose column matrix is about
# this size, so that it is still in the last-level cache when the GEMM reads it.
# Not smaller: each chunk alternates a Numba parallel region with a threaded BLAS
# call, and on a loaded machine every switch between the two thread pools costs.
GEMM_CHUNK_BYTES = 16 << 20


# ---------------------------------------------------------------------------
# im2col / col2im
# ---------------------------------------------------------------------------

# Numba note: every inner loop indexes a 1-D slice view with the bare loop
# variable (``dst[q] += w * src[q]``), never ``a[q + off]``: with a computed index
# Numba must handle negative (wrap-around) indices on every access, which stops
# LLVM from vectorising the loop (measured 5x slower on the depthwise kernel).

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


@njit(cache=True)
def _copy(dst, src):
    for q in range(dst.shape[0]):
        dst[q] = src[q]


@njit(cache=True)
def _add(dst, src):
    for q in range(dst.shape[0]):
        dst[q] += src[q]


@njit(cache=True)
def _axpy(dst, wv, src):
    """dst += wv * src."""
    for q in range(dst.shape[0]):
        dst[q] += wv * src[q]


@njit(cache=True)
def _axpy3(dst, w0, s0, w1, s1, w2, s2):
    """dst += w0*s0 + w1*s1 + w2*s2: three taps per pass over dst (a third of the dst traffic)."""
    for q in range(dst.shape[0]):
        dst[q] += w0 * s0[q] + w1 * s1[q] + w2 * s2[q]


@njit(cache=True, fastmath={"reassoc", "contract"})
def _dot3(a, b0, b1, b2):
    """(sum(a*b0), sum(a*b1), sum(a*b2)) reading a once."""
    s0 = a[0] * 0.0
    s1 = a[0] * 0.0
    s2 = a[0] * 0.0
    for q in range(a.shape[0]):
        s0 += a[q] * b0[q]
        s1 += a[q] * b1[q]
        s2 += a[q] * b2[q]
    return s0, s1, s2


@njit(cache=True)
def _correlate_row(acc, src, base, step, wts, n_taps, length):
    """acc[:length] += sum_j wts[j] * src[base + j*step : ... + length] (stride-1 taps of one row).

    Taps are taken three at a time so that acc is loaded and stored once per three.
    """
    j = 0
    while j + 3 <= n_taps:
        o = base + j * step
        _axpy3(acc[:length], wts[j], src[o:o + length], wts[j + 1],
               src[o + step:o + step + length], wts[j + 2], src[o + 2 * step:o + 2 * step + length])
        j += 3
    while j < n_taps:
        o = base + j * step
        _axpy(acc[:length], wts[j], src[o:o + length])
        j += 1


@njit(cache=True, fastmath={"reassoc", "contract"})
def _dot(a, b):
    """sum(a * b); fastmath "reassoc" lets LLVM vectorise the (reordered) float sum."""
    s = a[0] * 0.0  # same dtype as a: a float64 accumulator would block float32 vectorisation
    for q in range(a.shape[0]):
        s += a[q] * b[q]
    return s


@parallel_kernel()
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
        # Padding is handled by the valid column range [lo, hi), not by a branch per element.
        lo, hi = _valid_range(w_off, sw, w, ow_size)
        start = lo * sw + w_off  # first input column read, >= 0
        col_row = col[row]
        for n in range(n_batch):
            for oh in range(oh_size):
                dst = col_row[n * ohw + oh * ow_size:n * ohw + (oh + 1) * ow_size]
                hh = oh * sh - ph + i * dh
                if hh < 0 or hh >= h or hi == lo:
                    dst[:] = 0.0
                    continue
                dst[:lo] = 0.0
                dst[hi:] = 0.0
                if sw == 1:
                    _copy(dst[lo:hi], x[n, c, hh, start:start + hi - lo])
                else:
                    _copy(dst[lo:hi], x[n, c, hh, start:start + (hi - lo - 1) * sw + 1:sw])


def im2col(x, kh, kw, stride, padding, dilation, out=None):
    """Unfold x (N, C, H, W) into col (C*kh*kw, N*OH*OW).

    ``col[(c, i, j), (n, oh, ow)] = xp[n, c, oh*s_h + i*d_h, ow*s_w + j*d_w]`` with
    ``xp`` the zero-padded input, so that the convolution becomes
    ``W.reshape(K, C*kh*kw) @ col``.
    """
    n_batch, c_in, h, w = x.shape
    oh_size, ow_size = conv_output_size(h, w, kh, kw, stride, padding, dilation)
    shape = (c_in * kh * kw, n_batch * oh_size * ow_size)
    col = np.empty(shape, dtype=x.dtype) if out is None else out.reshape(shape)
    _im2col_kernel(np.ascontiguousarray(x), col, kh, kw, stride[0], stride[1],
                   padding[0], padding[1], dilation[0], dilation[1], oh_size, ow_size)
    return col


@parallel_kernel()
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
                col_row = col[(c * kh + i) * kw + j]
                w_off = j * dw - pw
                lo, hi = _valid_range(w_off, sw, w, ow_size)
                if hi == lo:
                    continue
                start = lo * sw + w_off
                for oh in range(oh_size):
                    hh = oh * sh - ph + i * dh
                    if hh < 0 or hh >= h:
                        continue
                    src = col_row[n * ohw + oh * ow_size + lo:n * ohw + oh * ow_size + hi]
                    if sw == 1:
                        _add(gx[n, c, hh, start:start + hi - lo], src)
                    else:
                        _add(gx[n, c, hh, start:start + (hi - lo - 1) * sw + 1:sw], src)


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

@parallel_kernel()
def _kp_to_nchw(y_kp, bias, y):
    """y[n, k, q] = y_kp[k, n*Q + q] + bias[k]: the GEMM result back to NCHW."""
    n_batch, k_out, q_size = y.shape
    for t in prange(n_batch * k_out):
        n = t // k_out
        k = t % k_out
        b = bias[k]
        dst = y[n, k]
        src = y_kp[k, n * q_size:(n + 1) * q_size]
        for q in range(q_size):
            dst[q] = src[q] + b


@parallel_kernel()
def _nchw_to_kp(gy, gy_kp):
    """gy_kp[k, n*Q + q] = gy[n, k, q]: the output gradient as the GEMM operand."""
    n_batch, k_out, q_size = gy.shape
    for t in prange(n_batch * k_out):
        n = t // k_out
        k = t % k_out
        _copy(gy_kp[k, n * q_size:(n + 1) * q_size], gy[n, k])


# ---------------------------------------------------------------------------
# The wide-grid GEMM route
# ---------------------------------------------------------------------------
# For stride 1, im2col's row (c, i, j) of one image is the input plane shifted by
# (i*dh, j*dw) and cut to OH x OW: OH separate runs of OW values (LeNet-5's conv2: ten runs
# of ten), which im2col copies one short run at a time. On the "wide" output grid whose row
# pitch is the (padded) input's width wp, output pixel (oh, ow) sits at q = oh*wp + ow, and
# the row becomes a single contiguous run of the flattened plane, xp[c, i*dh*wp + j*dw + q]
# for q < L = (OH-1)*wp + OW: one long vectorised copy per (row, image) instead of OH short
# ones, and col2im likewise one long add. The price: the GEMM also computes the wp - OW
# columns of each wide row that lie past the output's edge (dropped afterwards, and given zero
# output gradient in backward so that they add nothing), wp / OW times the multiply-adds, so
# the route is taken only while that ratio is at most WIDE_MAX_WASTE. Each image's block of
# columns is OH*wp wide; entries from L on are zero.
#
# Stride s > 1 reduces to stride 1 on "phase planes": the padded plane split by row and
# column modulo the stride, P[a*sw + b][r, q] = xp[r*sh + a, q*sw + b] (Hq x Wq, Hq =
# ceil(Hp / sh), Wq = ceil(Wp / sw), zero where the padded plane ends). Tap (i, j) reads
# xp[oh*sh + i*dh, ow*sw + j*dw] = P[(i*dh % sh)*sw + j*dw % sw][oh + i*dh // sh, ow + j*dw // sw]:
# a stride-1 window of one phase plane, so the same long runs with pitch Wq (a 3x3/2
# convolution on 32x32: runs of 16*17 - 1 instead of sixteen strided runs of 16). Splitting
# the planes and merging their gradients are one extra pass each; measured on the development
# machine, 3x3/2 32x64->128 at 32x32: fwd+bwd 65 ms by short runs, 60 on phase planes (the
# three GEMMs are 31 of it); ResNet-50's 7x7/2 stem at batch 8: 116 -> 102 ms; a 1x1/2
# downsample was slower (it reads one phase of four), so it keeps short runs.
# Measured fwd+bwd on the development machine (2 cores), LeNet-5's conv2 at batch 128:
# 11.7-20.2 ms by short runs, 6.1-6.7 ms on the wide grid (with _grad_input_wide_kernel below;
# 9.3 with W.T @ gY and col2im), PyTorch 3.2-4.4.
WIDE_MAX_WASTE = 1.5
# Up to this many output channels the input gradient skips the W.T @ gY product (see
# _grad_input_wide_kernel).
WIDE_FUSED_MAX_OUT_CHANNELS = 32


def _wide_geometry(x_shape, weight_shape, stride, padding, dilation):
    """(OH, OW, Hq, Wq, L, pitch) of the wide grid: phase planes Hq x Wq, runs of L, pitch OH*Wq per image."""
    kh, kw = weight_shape[2], weight_shape[3]
    oh_size, ow_size = conv_output_size(x_shape[2], x_shape[3], kh, kw, stride, padding, dilation)
    hq = -(-(x_shape[2] + 2 * padding[0]) // stride[0])
    wq = -(-(x_shape[3] + 2 * padding[1]) // stride[1])
    return oh_size, ow_size, hq, wq, (oh_size - 1) * wq + ow_size, oh_size * wq


def use_wide_grid(x_shape, weight_shape, stride, padding, dilation):
    """True where the GEMM path runs on the wide grid (see the notes above)."""
    kh, kw = weight_shape[2], weight_shape[3]
    hp, wp = x_shape[2] + 2 * padding[0], x_shape[3] + 2 * padding[1]
    if hp < dilation[0] * (kh - 1) + 1 or wp < dilation[1] * (kw - 1) + 1:
        return False  # the kernel does not fit: the plan's error
    if kh * kw == 1 and stride != (1, 1):
        return False  # a strided 1x1 reads one phase of sh*sw: splitting them all costs more than it saves
    ow_size = _wide_geometry(x_shape, weight_shape, stride, padding, dilation)[1]
    return -(-wp // stride[1]) <= WIDE_MAX_WASTE * ow_size


@njit(cache=True, inline="always")
def _wide_tap(i, j, sh, sw, dh, dw, wq):
    """(phase plane, offset in it) that tap (i, j) reads on the wide grid: its window's first input."""
    return (i * dh % sh) * sw + j * dw % sw, (i * dh // sh) * wq + j * dw // sw


@parallel_kernel()
def _im2col_wide_kernel(xph, col, kh, kw, sh, sw, dh, dw, wq, length, pitch):
    """col[(c, i, j), n*pitch + q] = plane(i, j) of xph[n, c] at (i*dh // sh)*wq + j*dw // sw + q, for q < length.

    xph is (N, C, sh*sw, Hq*Wq): the phase planes (one plane, the padded input, for stride 1);
    entries from length to pitch are zero."""
    n_batch, c_in = xph.shape[0], xph.shape[1]
    for row in prange(c_in * kh * kw):
        c = row // (kh * kw)
        i = (row // kw) % kh
        j = row % kw
        plane, off = _wide_tap(i, j, sh, sw, dh, dw, wq)
        col_row = col[row]
        for n in range(n_batch):
            _copy(col_row[n * pitch:n * pitch + length], xph[n, c, plane, off:off + length])
            col_row[n * pitch + length:(n + 1) * pitch] = 0.0


@parallel_kernel()
def _col2im_wide_kernel(gcol, gph, kh, kw, sh, sw, dh, dw, wq, length, pitch):
    """gph[n, c, plane(i, j), off(i, j) + q] += gcol[(c, i, j), n*pitch + q]: the adjoint, one image plane per thread."""
    n_batch, c_in = gph.shape[0], gph.shape[1]
    for t in prange(n_batch * c_in):
        n = t // c_in
        c = t % c_in
        gph[n, c] = 0.0
        for i in range(kh):
            for j in range(kw):
                plane, off = _wide_tap(i, j, sh, sw, dh, dw, wq)
                _add(gph[n, c, plane, off:off + length], gcol[(c * kh + i) * kw + j, n * pitch:n * pitch + length])


@njit(cache=True, fastmath={"contract"}, error_model="numpy")
def _axpy4(dst, w0, s0, w1, s1, w2, s2, w3, s3):
    """dst += w0*s0 + w1*s1 + w2*s2 + w3*s3: four sources per pass over dst."""
    for q in range(dst.shape[0]):
        dst[q] += w0 * s0[q] + w1 * s1[q] + w2 * s2[q] + w3 * s3[q]


@parallel_kernel()
def _grad_input_wide_kernel(gy_wide, weight, gph, sh, sw, dh, dw, wq, length, pitch):
    """gph[n, c, plane(i, j), off(i, j) + q] = sum over k, (i, j) of w[k, c, i, j] * gy_wide[k, n*pitch + q].

    W.T @ gY and col2im in one pass, one image plane per thread, without the (C*kh*kw, N*pitch)
    matrix between them: with few output channels that product is too thin for BLAS (16
    multiply-adds per entry written) and its result too large for the cache (see _backward_wide).
    """
    k_out, c_per, kh, kw = weight.shape
    n_batch, c_in = gph.shape[0], gph.shape[1]
    for t in prange(n_batch * c_in):
        n = t // c_in
        c = t % c_in
        gph[n, c] = 0.0
        base = n * pitch
        k = 0
        while k < k_out:
            if k + 4 <= k_out:
                g0 = gy_wide[k, base:base + length]
                g1 = gy_wide[k + 1, base:base + length]
                g2 = gy_wide[k + 2, base:base + length]
                g3 = gy_wide[k + 3, base:base + length]
                for i in range(kh):
                    for j in range(kw):
                        plane, off = _wide_tap(i, j, sh, sw, dh, dw, wq)
                        _axpy4(gph[n, c, plane, off:off + length], weight[k, c, i, j], g0, weight[k + 1, c, i, j],
                               g1, weight[k + 2, c, i, j], g2, weight[k + 3, c, i, j], g3)
                k += 4
            else:
                g0 = gy_wide[k, base:base + length]
                for i in range(kh):
                    for j in range(kw):
                        plane, off = _wide_tap(i, j, sh, sw, dh, dw, wq)
                        _axpy(gph[n, c, plane, off:off + length], weight[k, c, i, j], g0)
                k += 1


@parallel_kernel()
def _wide_to_nchw(y_wide, bias, y, wq, pitch):
    """y[n, k, oh, ow] = y_wide[k, n*pitch + oh*wq + ow] + bias[k]: the wide GEMM result back to NCHW."""
    n_batch, k_out, oh_size, ow_size = y.shape
    for t in prange(n_batch * k_out):
        n = t // k_out
        k = t % k_out
        b = bias[k]
        for oh in range(oh_size):
            dst = y[n, k, oh]
            src = y_wide[k, n * pitch + oh * wq:n * pitch + oh * wq + ow_size]
            for ow in range(ow_size):
                dst[ow] = src[ow] + b


@parallel_kernel()
def _nchw_to_wide(gy, gy_wide, wq, pitch):
    """gy_wide[k, n*pitch + oh*wq + ow] = gy[n, k, oh, ow], zero in the columns past the output's edge."""
    n_batch, k_out, oh_size, ow_size = gy.shape
    for t in prange(n_batch * k_out):
        n = t // k_out
        k = t % k_out
        dst = gy_wide[k, n * pitch:(n + 1) * pitch]
        dst[:] = 0.0
        for oh in range(oh_size):
            _copy(dst[oh * wq:oh * wq + ow_size], gy[n, k, oh])


@njit(cache=True)
def _deinterleave(d0, d1, src):
    """d0[m] = src[2m], d1[m] = src[2m + 1] for m < len(d1): one pass LLVM vectorises with shuffles."""
    for m in range(d1.shape[0]):
        d0[m] = src[2 * m]
        d1[m] = src[2 * m + 1]


@njit(cache=True)
def _interleave(dst, s0, s1):
    """dst[2m] = s0[m], dst[2m + 1] = s1[m] for m < len(s1): the inverse of _deinterleave."""
    for m in range(s1.shape[0]):
        dst[2 * m] = s0[m]
        dst[2 * m + 1] = s1[m]


@njit(cache=True, inline="always")
def _phase_columns(b, pad, stride, width):
    """(w0, q0, count): the input columns of phase b (padded column = b modulo stride) start at w0,
    land from column q0 of the phase plane on, and number count."""
    w0 = (b - pad) % stride
    return w0, (w0 + pad) // stride, (width - w0 + stride - 1) // stride


@parallel_kernel()
def _split_phases(x, xph, ph, pw, sh, sw, hq, wq):
    """xph[n, c, a*sw + b, r*wq + q] = padded x[n, c, r*sh + a, q*sw + b] (zero in the padding and past its end).

    Stride 2 across (ResNet's and MobileNet's downsampling) takes each input row apart in one
    pass (:func:`_deinterleave`); other strides copy each phase's strided run."""
    n_batch, c_in, h, w = x.shape
    for t in prange(n_batch * c_in):
        n = t // c_in
        c = t % c_in
        xph[n, c] = 0.0
        for hh in range(h):
            a = (hh + ph) % sh
            r = (hh + ph) // sh
            src = x[n, c, hh]
            if sw == 2:  # input column 2m lands in phase pw % 2, 2m + 1 in the other
                b0 = pw % 2
                q0, q1 = r * wq + pw // 2, r * wq + (pw + 1) // 2
                pairs = w // 2
                _deinterleave(xph[n, c, a * 2 + b0, q0:q0 + pairs + w % 2], xph[n, c, a * 2 + 1 - b0, q1:q1 + pairs],
                              src)
                if w % 2:
                    xph[n, c, a * 2 + b0, q0 + pairs] = src[w - 1]
                continue
            for b in range(sw):
                w0, q0, count = _phase_columns(b, pw, sw, w)
                if count <= 0:
                    continue
                dst = xph[n, c, a * sw + b, r * wq + q0:r * wq + q0 + count]
                if sw == 1:
                    _copy(dst, src)
                else:
                    _copy(dst, src[w0::sw])


@parallel_kernel()
def _merge_phases(gph, gx, ph, pw, sh, sw, hq, wq):
    """gx[n, c, hh, ww] = gph[n, c, phase of (hh + ph, ww + pw), ...]: the inverse of _split_phases, padding dropped."""
    n_batch, c_in, h, w = gx.shape
    for t in prange(n_batch * c_in):
        n = t // c_in
        c = t % c_in
        for hh in range(h):
            a = (hh + ph) % sh
            r = (hh + ph) // sh
            dst = gx[n, c, hh]
            if sw == 2:
                b0 = pw % 2
                q0, q1 = r * wq + pw // 2, r * wq + (pw + 1) // 2
                pairs = w // 2
                _interleave(dst, gph[n, c, a * 2 + b0, q0:q0 + pairs + w % 2], gph[n, c, a * 2 + 1 - b0, q1:q1 + pairs])
                if w % 2:
                    dst[w - 1] = gph[n, c, a * 2 + b0, q0 + pairs]
                continue
            for b in range(sw):
                w0, q0, count = _phase_columns(b, pw, sw, w)
                if count <= 0:
                    continue
                src = gph[n, c, a * sw + b, r * wq + q0:r * wq + q0 + count]
                if sw == 1:
                    _copy(dst, src)
                else:
                    _copy(dst[w0::sw], src)


def _phase_planes(x, stride, padding, hq, wq, slot):
    """x (N, C, H, W) as phase planes (N, C, sh*sw, Hq*Wq); for stride 1 and no padding a view of x."""
    n_batch, c_in = x.shape[0], x.shape[1]
    if stride == (1, 1) and padding == (0, 0):
        return x.reshape(n_batch, c_in, 1, -1)
    xph = workspace.workspace(slot, (n_batch, c_in, stride[0] * stride[1], hq * wq), x.dtype)
    _split_phases(x, xph, padding[0], padding[1], stride[0], stride[1], hq, wq)
    return xph


# ---------------------------------------------------------------------------
# Direct kernels: depthwise and grouped convolution with few channels per group
# ---------------------------------------------------------------------------
# Work is split by (image n, group g): a thread copies the group's Cg input
# planes, zero-padded, into a small local buffer (it stays in L1/L2 cache), and
# computes the group's Kg output planes from it. Nothing of the size of x is
# allocated besides the result.
#
# The padded plane is flattened with row pitch wp, and outputs are computed on a
# "wide" grid with the same pitch, position q = oh*wp + ow, of which only ow < OW
# is kept. For stride 1, tap (i, j) then reads xp[q + i*dh*wp + j*dw] for all q at
# once: one contiguous loop of length L = (OH-1)*wp + OW, whose last read is
# exactly the last element of the padded plane (no bounds branch needed).

@njit(cache=True)
def _pad_planes(x, n, c0, n_planes, ph, pw, out):
    """out[c] = x[n, c0 + c] zero-padded by (ph, pw), flattened with pitch W + 2*pw."""
    h, w = x.shape[2], x.shape[3]
    wp = w + 2 * pw
    out[:] = 0.0
    for c in range(n_planes):
        for hh in range(h):
            row = (hh + ph) * wp + pw
            _copy(out[c, row:row + w], x[n, c0 + c, hh])


@njit(cache=True)
def _widen_planes(gy, n, k0, n_planes, wp, front, out):
    """out[k, front:] = gy[n, k0 + k] on the wide grid (pitch wp), zeros everywhere else.

    The ``front`` zeros let the stride-1 input gradient gather from before the
    first output row without a bounds branch.
    """
    oh_size, ow_size = gy.shape[2], gy.shape[3]
    out[:] = 0.0
    for k in range(n_planes):
        for oh in range(oh_size):
            row = front + oh * wp
            _copy(out[k, row:row + ow_size], gy[n, k0 + k, oh])


@parallel_kernel()
def _direct_forward_kernel(x, weight, bias, y, ph, pw, sh, sw, dh, dw, groups):
    n_batch, c_in, h, w = x.shape
    k_out, c_per_group, kh, kw = weight.shape
    k_per_group = k_out // groups
    oh_size, ow_size = y.shape[2], y.shape[3]
    hp, wp = h + 2 * ph, w + 2 * pw
    wide = (oh_size - 1) * wp + ow_size
    for t in prange(n_batch * groups):
        n = t // groups
        g = t % groups
        xp = np.empty((c_per_group, hp * wp), dtype=x.dtype)
        _pad_planes(x, n, g * c_per_group, c_per_group, ph, pw, xp)
        acc = np.empty(oh_size * wp, dtype=y.dtype)  # one wide output plane
        for kk in range(k_per_group):
            k = g * k_per_group + kk
            acc[:] = 0.0
            for c in range(c_per_group):
                for i in range(kh):
                    if sh == 1 and sw == 1:
                        _correlate_row(acc, xp[c], i * dh * wp, dw, weight[k, c, i], kw, wide)
                        continue
                    for j in range(kw):
                        off = i * dh * wp + j * dw
                        for oh in range(oh_size):
                            src = oh * sh * wp + off
                            _axpy(acc[oh * wp:oh * wp + ow_size], weight[k, c, i, j],
                                  xp[c, src:src + (ow_size - 1) * sw + 1:sw])
            b = bias[k]
            for oh in range(oh_size):
                dst = y[n, k, oh]
                src_row = acc[oh * wp:oh * wp + ow_size]
                for ow in range(ow_size):
                    dst[ow] = src_row[ow] + b


@njit(cache=True)
def _direct_backward_input_group(gyw, weight, g, gxp, ph, h, wp, sh, sw, dh, dw,
                                 oh_size, ow_size):
    """gxp (Cg, Hp*wp) += the input gradient of group g, from gyw (Kg, front + Hp*wp).

    gyw holds the group's output gradient on the wide grid after ``front`` zeros.
    Stride 1 gathers: every input pixel p collects ``w[i, j] * gy[p - off_ij]``
    from all taps, a correlation with the flipped kernel (three taps per pass,
    like the forward). Other strides scatter each output row onto its window.
    """
    k_per_group, c_per_group = gyw.shape[0], gxp.shape[0]
    kh, kw = weight.shape[2], weight.shape[3]
    front = (kh - 1) * dh * wp + (kw - 1) * dw
    for c in range(c_per_group):
        for kk in range(k_per_group):
            k = g * k_per_group + kk
            for i in range(kh):
                if sh == 1 and sw == 1:
                    # Rows ph..ph+h-1 only (the rest is padding); taps j reversed so
                    # that their offsets increase: src[base + j'*dw], j' = kw-1-j.
                    base = front - i * dh * wp - (kw - 1) * dw + ph * wp
                    _correlate_row(gxp[c, ph * wp:], gyw[kk], base, dw, weight[k, c, i, ::-1],
                                   kw, h * wp)
                    continue
                for j in range(kw):
                    off = i * dh * wp + j * dw
                    for oh in range(oh_size):
                        dst = oh * sh * wp + off
                        _axpy(gxp[c, dst:dst + (ow_size - 1) * sw + 1:sw], weight[k, c, i, j],
                              gyw[kk, front + oh * wp:front + oh * wp + ow_size])


@njit(cache=True)
def _direct_backward_weight_group(gyw, xp, gw, g, wp, sh, sw, dh, dw, oh_size, ow_size):
    """gw[group g] += correlation of the padded input planes xp with gy (wide grid in gyw)."""
    k_per_group, c_per_group = gyw.shape[0], xp.shape[0]
    kh, kw = gw.shape[2], gw.shape[3]
    front = (kh - 1) * dh * wp + (kw - 1) * dw
    wide = (oh_size - 1) * wp + ow_size
    for kk in range(k_per_group):
        k = g * k_per_group + kk
        g_plane = gyw[kk, front:front + wide]  # extra wide-grid columns are zero
        for c in range(c_per_group):
            for i in range(kh):
                if sh == 1 and sw == 1:
                    j = 0
                    while j + 3 <= kw:  # three taps per pass over g_plane
                        o = i * dh * wp + j * dw
                        s0, s1, s2 = _dot3(g_plane, xp[c, o:o + wide], xp[c, o + dw:o + dw + wide],
                                           xp[c, o + 2 * dw:o + 2 * dw + wide])
                        gw[k, c, i, j] += s0
                        gw[k, c, i, j + 1] += s1
                        gw[k, c, i, j + 2] += s2
                        j += 3
                    while j < kw:
                        o = i * dh * wp + j * dw
                        gw[k, c, i, j] += _dot(g_plane, xp[c, o:o + wide])
                        j += 1
                    continue
                for j in range(kw):
                    off = i * dh * wp + j * dw
                    for oh in range(oh_size):
                        src = oh * sh * wp + off
                        gw[k, c, i, j] += _dot(gyw[kk, front + oh * wp:front + oh * wp + ow_size],
                                               xp[c, src:src + (ow_size - 1) * sw + 1:sw])


@parallel_kernel()
def _direct_backward_input_kernel(gy, weight, gx, ph, pw, sh, sw, dh, dw, groups):
    n_batch, c_in, h, w = gx.shape
    k_out, c_per_group, kh, kw = weight.shape
    k_per_group = k_out // groups
    oh_size, ow_size = gy.shape[2], gy.shape[3]
    hp, wp = h + 2 * ph, w + 2 * pw
    front = (kh - 1) * dh * wp + (kw - 1) * dw
    # Parallel over (image, group): each thread writes only its own group's planes.
    for t in prange(n_batch * groups):
        n = t // groups
        g = t % groups
        gyw = np.empty((k_per_group, front + hp * wp), dtype=gy.dtype)
        _widen_planes(gy, n, g * k_per_group, k_per_group, wp, front, gyw)
        gxp = np.zeros((c_per_group, hp * wp), dtype=gx.dtype)
        _direct_backward_input_group(gyw, weight, g, gxp, ph, h, wp, sh, sw, dh, dw,
                                     oh_size, ow_size)
        for c in range(c_per_group):
            for hh in range(h):
                row = (hh + ph) * wp + pw
                _copy(gx[n, g * c_per_group + c, hh], gxp[c, row:row + w])


@parallel_kernel()
def _direct_backward_weight_kernel(gy, x, gw, ph, pw, sh, sw, dh, dw, groups):
    n_batch, c_in, h, w = x.shape
    k_out, c_per_group, kh, kw = gw.shape
    k_per_group = k_out // groups
    oh_size, ow_size = gy.shape[2], gy.shape[3]
    hp, wp = h + 2 * ph, w + 2 * pw
    front = (kh - 1) * dh * wp + (kw - 1) * dw
    # Parallel over groups: each thread owns gw[group] and sums over the images.
    for t in prange(groups):
        g = np.int64(t)  # see _direct_backward_kernel
        gyw = np.empty((k_per_group, front + hp * wp), dtype=gy.dtype)
        xp = np.empty((c_per_group, hp * wp), dtype=x.dtype)
        for n in range(n_batch):
            _widen_planes(gy, n, g * k_per_group, k_per_group, wp, front, gyw)
            _pad_planes(x, n, g * c_per_group, c_per_group, ph, pw, xp)
            _direct_backward_weight_group(gyw, xp, gw, g, wp, sh, sw, dh, dw, oh_size, ow_size)


@parallel_kernel()
def _direct_backward_kernel(gy, x, weight, gx, gw, ph, pw, sh, sw, dh, dw, groups):
    """Both gradients in one pass, sharing the padded input and widened gradient planes."""
    n_batch, c_in, h, w = x.shape
    k_out, c_per_group, kh, kw = weight.shape
    k_per_group = k_out // groups
    oh_size, ow_size = gy.shape[2], gy.shape[3]
    hp, wp = h + 2 * ph, w + 2 * pw
    front = (kh - 1) * dh * wp + (kw - 1) * dw
    # Parallel over groups: a thread owns gw[group] and gx[:, group's channels].
    for t in prange(groups):
        # Inside Numba's threaded loop a prange index is unsigned: a signed g keeps the
        # helpers below at one compiled version each (int64), not two (int64 and uint64).
        g = np.int64(t)
        gyw = np.empty((k_per_group, front + hp * wp), dtype=gy.dtype)
        xp = np.empty((c_per_group, hp * wp), dtype=x.dtype)
        gxp = np.empty((c_per_group, hp * wp), dtype=x.dtype)
        for n in range(n_batch):
            _widen_planes(gy, n, g * k_per_group, k_per_group, wp, front, gyw)
            _pad_planes(x, n, g * c_per_group, c_per_group, ph, pw, xp)
            _direct_backward_weight_group(gyw, xp, gw, g, wp, sh, sw, dh, dw, oh_size, ow_size)
            gxp[:] = 0.0
            _direct_backward_input_group(gyw, weight, g, gxp, ph, h, wp, sh, sw, dh, dw,
                                         oh_size, ow_size)
            for c in range(c_per_group):
                for hh in range(h):
                    row = (hh + ph) * wp + pw
                    _copy(gx[n, g * c_per_group + c, hh], gxp[c, row:row + w])


# ---------------------------------------------------------------------------
# Depthwise 3x3, stride 1 (MobileNet's and EfficientNet's blocks): one pass per plane
# ---------------------------------------------------------------------------
# The general direct kernel adds the taps of a kernel row into a wide accumulator, three
# per pass. For the depthwise 3x3 case all nine shifted views of the padded plane are read
# in one loop that writes each wide output once: no accumulator traffic, nothing allocated
# per plane (each thread pads its planes into one buffer whose border stays zero). The input
# gradient of a stride-1 convolution is the same convolution of the output gradient with the
# kernel turned by 180 degrees and padding 2 - p, so it runs on the same kernel; the weight
# gradient takes the nine correlations of a plane in one pass too.
# Measured forward on the development machine (2 cores), 32x144 at 28x28: 3.7-4.9 ms by the
# general kernel, 1.9-2.3 ms here, PyTorch 4.9-5.4.

def use_depthwise3x3(x_shape, weight_shape, stride, padding, dilation, groups):
    """True for a depthwise (multiplier 1) 3x3 convolution with stride 1, no dilation, padding <= 2."""
    return (groups == x_shape[1] == weight_shape[0] and tuple(weight_shape[1:]) == (1, 3, 3)
            and tuple(stride) == (1, 1) and tuple(dilation) == (1, 1) and max(padding) <= 2)


@parallel_kernel(fastmath={"contract"}, error_model="numpy")
def _depthwise3x3_kernel(x, weight, bias, y, ph, pw, n_parts):
    """y[n, c] = bias[c] + the 3x3 correlation of the zero-padded plane x[n, c] with weight[c, 0]."""
    n_batch, c_in, h, w = x.shape
    oh_size, ow_size = y.shape[2], y.shape[3]
    hp, wp = h + 2 * ph, w + 2 * pw
    length = (oh_size - 1) * wp + ow_size
    planes = n_batch * c_in
    for part in prange(n_parts):
        buf = np.zeros(hp * wp, dtype=x.dtype)  # the border stays zero: only the interior is rewritten
        acc = np.empty(oh_size * wp, dtype=x.dtype)
        for p in range(part * planes // n_parts, (part + 1) * planes // n_parts):
            n = p // c_in
            c = p % c_in
            for hh in range(h):
                _copy(buf[(hh + ph) * wp + pw:(hh + ph) * wp + pw + w], x[n, c, hh])
            k = weight[c, 0]
            s0, s1, s2 = buf[0:length], buf[1:1 + length], buf[2:2 + length]
            s3, s4, s5 = buf[wp:wp + length], buf[wp + 1:wp + 1 + length], buf[wp + 2:wp + 2 + length]
            s6, s7, s8 = buf[2 * wp:2 * wp + length], buf[2 * wp + 1:2 * wp + 1 + length], buf[2 * wp + 2:2 * wp + 2 + length]
            k0, k1, k2, k3, k4, k5, k6, k7, k8 = k[0, 0], k[0, 1], k[0, 2], k[1, 0], k[1, 1], k[1, 2], k[2, 0], k[2, 1], k[2, 2]
            b = bias[c]
            a = acc[:length]
            for q in range(length):
                a[q] = (b + k0 * s0[q] + k1 * s1[q] + k2 * s2[q] + k3 * s3[q] + k4 * s4[q] + k5 * s5[q]
                        + k6 * s6[q] + k7 * s7[q] + k8 * s8[q])
            for oh in range(oh_size):
                _copy(y[n, c, oh], acc[oh * wp:oh * wp + ow_size])


@parallel_kernel(fastmath={"reassoc", "contract"}, error_model="numpy")
def _depthwise3x3_weight_kernel(gy, x, gw, ph, pw):
    """gw[c, 0, i, j] = sum over n and output pixels of gy[n, c] * the (i, j)-shifted padded x[n, c]."""
    n_batch, c_in, h, w = x.shape
    oh_size, ow_size = gy.shape[2], gy.shape[3]
    hp, wp = h + 2 * ph, w + 2 * pw
    length = (oh_size - 1) * wp + ow_size
    for c in prange(c_in):  # a thread owns its channels' nine sums: no two threads add into one
        buf = np.zeros(hp * wp, dtype=x.dtype)
        g = np.zeros(oh_size * wp, dtype=x.dtype)  # gy on the wide grid: the columns past the edge stay zero
        sums = np.zeros(9)  # float64 across the batch
        for n in range(n_batch):
            for hh in range(h):
                _copy(buf[(hh + ph) * wp + pw:(hh + ph) * wp + pw + w], x[n, c, hh])
            for oh in range(oh_size):
                _copy(g[oh * wp:oh * wp + ow_size], gy[n, c, oh])
            s0, s1, s2 = buf[0:length], buf[1:1 + length], buf[2:2 + length]
            s3, s4, s5 = buf[wp:wp + length], buf[wp + 1:wp + 1 + length], buf[wp + 2:wp + 2 + length]
            s6, s7, s8 = buf[2 * wp:2 * wp + length], buf[2 * wp + 1:2 * wp + 1 + length], buf[2 * wp + 2:2 * wp + 2 + length]
            t0 = t1 = t2 = t3 = t4 = t5 = t6 = t7 = t8 = g[0] * 0
            for q in range(length):
                gq = g[q]
                t0 += gq * s0[q]
                t1 += gq * s1[q]
                t2 += gq * s2[q]
                t3 += gq * s3[q]
                t4 += gq * s4[q]
                t5 += gq * s5[q]
                t6 += gq * s6[q]
                t7 += gq * s7[q]
                t8 += gq * s8[q]
            sums[0] += t0
            sums[1] += t1
            sums[2] += t2
            sums[3] += t3
            sums[4] += t4
            sums[5] += t5
            sums[6] += t6
            sums[7] += t7
            sums[8] += t8
        for t in range(9):
            gw[c, 0, t // 3, t % 3] = sums[t]


def _depthwise3x3_forward(x, weight, bias, padding):
    n_batch, c_in, h, w = x.shape
    if bias is None:
        bias = np.zeros(c_in, dtype=x.dtype)
    y = np.empty((n_batch, c_in, h + 2 * padding[0] - 2, w + 2 * padding[1] - 2), dtype=x.dtype)
    _depthwise3x3_kernel(np.ascontiguousarray(x), np.ascontiguousarray(weight), np.ascontiguousarray(bias), y,
                         padding[0], padding[1], max(1, min(n_batch * c_in, numba.get_num_threads())))
    return y


def _depthwise3x3_backward_input(grad_out, weight, padding):
    """dL/dx: the same 3x3 depthwise convolution of grad_out with the kernel turned by 180 degrees."""
    turned = np.ascontiguousarray(weight[:, :, ::-1, ::-1])
    return _depthwise3x3_forward(grad_out, turned, None, (2 - padding[0], 2 - padding[1]))


def _depthwise3x3_backward_weight(grad_out, x, padding):
    gw = np.empty((x.shape[1], 1, 3, 3), dtype=x.dtype)
    _depthwise3x3_weight_kernel(np.ascontiguousarray(grad_out), np.ascontiguousarray(x), gw, padding[0], padding[1])
    return gw


def grouped_direct_forward(x, weight, bias, stride, padding, dilation, groups):
    """Grouped convolution by direct loops (no im2col); depthwise is groups == C."""
    if use_depthwise3x3(x.shape, weight.shape, stride, padding, dilation, groups):
        return _depthwise3x3_forward(x, weight, bias, padding)
    n_batch, c_in, h, w = x.shape
    k_out, _, kh, kw = weight.shape
    oh_size, ow_size = conv_output_size(h, w, kh, kw, stride, padding, dilation)
    if bias is None:
        bias = np.zeros(k_out, dtype=x.dtype)
    y = np.empty((n_batch, k_out, oh_size, ow_size), dtype=x.dtype)
    _direct_forward_kernel(np.ascontiguousarray(x), np.ascontiguousarray(weight), bias, y,
                           padding[0], padding[1], stride[0], stride[1],
                           dilation[0], dilation[1], groups)
    return y


def grouped_direct_backward_input(grad_out, weight, x_shape, stride, padding, dilation, groups):
    """dL/dx of the direct grouped convolution: each output gradient scattered onto its window."""
    if use_depthwise3x3(x_shape, weight.shape, stride, padding, dilation, groups):
        return _depthwise3x3_backward_input(grad_out, weight, padding)
    gx = np.empty(x_shape, dtype=grad_out.dtype)
    _direct_backward_input_kernel(np.ascontiguousarray(grad_out), np.ascontiguousarray(weight), gx,
                                  padding[0], padding[1], stride[0], stride[1],
                                  dilation[0], dilation[1], groups)
    return gx


def grouped_direct_backward_weight(grad_out, x, weight_shape, stride, padding, dilation, groups):
    """dL/dw of the direct grouped convolution: correlation of the input with the output gradient."""
    if use_depthwise3x3(x.shape, weight_shape, stride, padding, dilation, groups):
        return _depthwise3x3_backward_weight(grad_out, x, padding)
    gw = np.zeros(weight_shape, dtype=x.dtype)
    _direct_backward_weight_kernel(np.ascontiguousarray(grad_out), np.ascontiguousarray(x), gw,
                                   padding[0], padding[1], stride[0], stride[1],
                                   dilation[0], dilation[1], groups)
    return gw


def grouped_direct_backward(grad_out, x, weight, stride, padding, dilation, groups):
    """(dL/dx, dL/dw) of the direct grouped convolution in one fused pass over x and grad_out."""
    if use_depthwise3x3(x.shape, weight.shape, stride, padding, dilation, groups):
        return (_depthwise3x3_backward_input(grad_out, weight, padding),
                _depthwise3x3_backward_weight(grad_out, x, padding))
    gx = np.empty(x.shape, dtype=x.dtype)
    gw = np.zeros(weight.shape, dtype=x.dtype)
    _direct_backward_kernel(np.ascontiguousarray(grad_out), np.ascontiguousarray(x),
                            np.ascontiguousarray(weight), gx, gw, padding[0], padding[1],
                            stride[0], stride[1], dilation[0], dilation[1], groups)
    return gx, gw


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

def _grouped_matmul(a, b, groups, out=None):
    """a (G*M, Kd) @ b per group: b is (G*Kd, P) split by rows; returns (G*M, P) (in ``out`` if given).

    Through ``kernels/cpu/blas.py``: single-threaded BLAS calls spread over minidl's threads.
    """
    if groups == 1:
        return blas.matmul(a, b, out=out)
    m = a.shape[0] // groups
    kd = b.shape[0] // groups
    if out is None:
        out = np.empty((groups * m, b.shape[1]), dtype=np.result_type(a, b))
    blas.matmul_many([a[g * m:(g + 1) * m] for g in range(groups)], [b[g * kd:(g + 1) * kd] for g in range(groups)],
                     [out[g * m:(g + 1) * m] for g in range(groups)])
    return out


def _images_per_chunk(n_batch, col_rows, out_pixels, itemsize):
    """How many images' columns make one chunk of about GEMM_CHUNK_BYTES.

    Working through the batch in chunks keeps ``col`` in the last-level cache
    between im2col and the GEMM that reads it (and bounds its memory); each
    chunk's GEMM is still large enough for BLAS to run at full speed.
    """
    per_image = col_rows * out_pixels * itemsize
    return int(min(n_batch, max(1, GEMM_CHUNK_BYTES // per_image)))


def conv2d_forward_gemm(x, weight, bias, stride, padding, dilation, groups):
    """Dense or grouped convolution as im2col followed by one GEMM per group, chunk by chunk."""
    n_batch, c_in, h, w = x.shape
    k_out, _, kh, kw = weight.shape
    oh_size, ow_size = conv_output_size(h, w, kh, kw, stride, padding, dilation)
    x = np.ascontiguousarray(x)
    w2 = np.ascontiguousarray(weight).reshape(k_out, -1)  # (K, Cg*kh*kw)
    if bias is None:
        bias = np.zeros(k_out, dtype=x.dtype)
    if groups == 1 and use_wide_grid(x.shape, weight.shape, stride, padding, dilation):
        return _forward_wide(x, np.ascontiguousarray(weight), bias, stride, padding, dilation)
    y = np.empty((n_batch, k_out, oh_size * ow_size), dtype=x.dtype)
    chunk = _images_per_chunk(n_batch, c_in * kh * kw, oh_size * ow_size, x.itemsize)
    for n0 in range(0, n_batch, chunk):
        n1 = min(n0 + chunk, n_batch)
        col = im2col(x[n0:n1], kh, kw, stride, padding, dilation,
                     out=workspace.workspace("col", (c_in * kh * kw, (n1 - n0) * oh_size * ow_size), x.dtype))
        y_kp = _grouped_matmul(w2, col, groups,  # (K, nb*OH*OW)
                               out=workspace.workspace("y_kp", (k_out, col.shape[1]), x.dtype))
        _kp_to_nchw(y_kp, bias, y[n0:n1])
    return y.reshape(n_batch, k_out, oh_size, ow_size)


def conv2d_backward_gemm(grad_out, x, weight, stride, padding, dilation, groups,
                         needs_input_grad=True, needs_weight_grad=True):
    """(grad_x, grad_w) of the im2col path; None where not needed.

    ``col`` is recomputed from x rather than kept from forward: it is kh*kw times
    the size of x, and recomputing it chunk by chunk costs one pass that stays in
    cache, small next to the GEMMs.
    """
    n_batch, c_in, h, w = x.shape
    k_out, c_per_group, kh, kw = weight.shape
    kg = k_out // groups
    x = np.ascontiguousarray(x)
    if groups == 1 and use_wide_grid(x.shape, weight.shape, stride, padding, dilation):
        return _backward_wide(np.ascontiguousarray(grad_out), x, np.ascontiguousarray(weight), stride, padding,
                              dilation, needs_input_grad, needs_weight_grad)
    gy = np.ascontiguousarray(grad_out).reshape(n_batch, k_out, -1)
    q_size = gy.shape[2]
    w2 = np.ascontiguousarray(weight).reshape(k_out, -1)  # (K, Cg*kh*kw)
    w2t = np.ascontiguousarray(w2.reshape(groups, kg, -1).transpose(0, 2, 1))  # (G, Cg*kh*kw, Kg)
    grad_w = np.zeros((groups, kg, c_per_group * kh * kw), dtype=x.dtype) if needs_weight_grad else None
    grad_x = np.zeros(x.shape, dtype=x.dtype) if needs_input_grad else None
    chunk = _images_per_chunk(n_batch, c_in * kh * kw, q_size, x.itemsize)
    for n0 in range(0, n_batch, chunk):
        n1 = min(n0 + chunk, n_batch)
        gy_kp = np.empty((k_out, (n1 - n0) * q_size), dtype=gy.dtype)  # (K, nb*OH*OW)
        _nchw_to_kp(gy[n0:n1], gy_kp)
        gy_g = gy_kp.reshape(groups, kg, -1)  # (G, Kg, nb*OH*OW)
        if needs_weight_grad:
            col = im2col(x[n0:n1], kh, kw, stride, padding, dilation,
                         out=workspace.workspace("col", (c_in * kh * kw, (n1 - n0) * q_size), x.dtype))
            col_g = col.reshape(groups, c_per_group * kh * kw, -1)
            if groups == 1:
                grad_w[0] += blas.matmul(gy_g[0], col_g[0].T)  # (Kg, Cg*kh*kw)
            else:
                part = np.empty_like(grad_w)
                blas.matmul_many(list(gy_g), [c.T for c in col_g], list(part))
                grad_w += part
        if needs_input_grad:
            gcol = workspace.workspace("gcol", (groups, c_per_group * kh * kw, gy_g.shape[2]), gy.dtype)
            if groups == 1:
                blas.matmul(w2t[0], gy_g[0], out=gcol[0])
            else:
                blas.matmul_many(list(w2t), list(gy_g), list(gcol))
            gcol = gcol.reshape(c_in * kh * kw, -1)  # (C*kh*kw, nb*OH*OW)
            oh_size, ow_size = grad_out.shape[2:]
            _col2im_kernel(gcol, grad_x[n0:n1], kh, kw, stride[0], stride[1], padding[0],
                           padding[1], dilation[0], dilation[1], oh_size, ow_size)
    if needs_weight_grad:
        grad_w = grad_w.reshape(weight.shape)
    return grad_x, grad_w


def _wide_columns(x, kh, kw, stride, padding, dilation, hq, wq, length, pitch):
    """The wide-grid column matrix (C*kh*kw, N*pitch) of a chunk of images (in the "col" workspace)."""
    xph = _phase_planes(x, stride, padding, hq, wq, "xpad")
    col = workspace.workspace("col", (x.shape[1] * kh * kw, x.shape[0] * pitch), x.dtype)
    _im2col_wide_kernel(xph, col, kh, kw, stride[0], stride[1], dilation[0], dilation[1], wq, length, pitch)
    return col


def _forward_wide(x, weight, bias, stride, padding, dilation):
    """The GEMM forward on the wide grid, chunk by chunk (see use_wide_grid)."""
    n_batch = x.shape[0]
    k_out, _, kh, kw = weight.shape
    w2 = weight.reshape(k_out, -1)
    oh_size, ow_size, hq, wq, length, pitch = _wide_geometry(x.shape, weight.shape, stride, padding, dilation)
    y = np.empty((n_batch, k_out, oh_size, ow_size), dtype=x.dtype)
    chunk = _images_per_chunk(n_batch, w2.shape[1], pitch, x.itemsize)
    for n0 in range(0, n_batch, chunk):
        n1 = min(n0 + chunk, n_batch)
        col = _wide_columns(x[n0:n1], kh, kw, stride, padding, dilation, hq, wq, length, pitch)
        y_wide = blas.matmul(w2, col, out=workspace.workspace("y_kp", (k_out, col.shape[1]), x.dtype))
        _wide_to_nchw(y_wide, bias, y[n0:n1], wq, pitch)
    return y


def _backward_wide(gy, x, weight, stride, padding, dilation, needs_input_grad, needs_weight_grad):
    """(grad_x, grad_w) of :func:`_forward_wide`; gy is (N, K, OH, OW)."""
    n_batch, c_in = x.shape[0], x.shape[1]
    k_out, _, kh, kw = weight.shape
    rows = c_in * kh * kw
    _, _, hq, wq, length, pitch = _wide_geometry(x.shape, weight.shape, stride, padding, dilation)
    direct = stride == (1, 1) and padding == (0, 0)  # the phase plane is x itself
    fused = k_out <= WIDE_FUSED_MAX_OUT_CHANNELS
    w2t = None if fused else np.ascontiguousarray(weight.reshape(k_out, rows).T)
    grad_w = np.zeros((k_out, rows), dtype=x.dtype) if needs_weight_grad else None
    grad_x = np.empty(x.shape, dtype=x.dtype) if needs_input_grad else None
    chunk = _images_per_chunk(n_batch, rows, pitch, x.itemsize)
    for n0 in range(0, n_batch, chunk):
        n1 = min(n0 + chunk, n_batch)
        gy_wide = workspace.workspace("gy_wide", (k_out, (n1 - n0) * pitch), x.dtype)
        _nchw_to_wide(gy[n0:n1], gy_wide, wq, pitch)
        if needs_weight_grad:
            col = _wide_columns(x[n0:n1], kh, kw, stride, padding, dilation, hq, wq, length, pitch)
            grad_w += blas.matmul(gy_wide, col.T)
        if needs_input_grad:
            if direct:
                gph = grad_x[n0:n1].reshape(n1 - n0, c_in, 1, -1)
            else:
                gph = workspace.workspace("gxpad", (n1 - n0, c_in, stride[0] * stride[1], hq * wq), x.dtype)
            if fused:
                _grad_input_wide_kernel(gy_wide, weight, gph, stride[0], stride[1], dilation[0], dilation[1], wq,
                                        length, pitch)
            else:
                gcol = blas.matmul(w2t, gy_wide, out=workspace.workspace("gcol", (rows, gy_wide.shape[1]), x.dtype))
                _col2im_wide_kernel(gcol, gph, kh, kw, stride[0], stride[1], dilation[0], dilation[1], wq, length,
                                    pitch)
            if not direct:
                _merge_phases(gph, grad_x[n0:n1], padding[0], padding[1], stride[0], stride[1], hq, wq)
    return grad_x, (grad_w.reshape(weight.shape) if needs_weight_grad else None)


# Below this many output pixels per image, per-image products are too small for BLAS to
# run well (e.g. 960->320 channels at 2x2 in MobileNet v2: 32 products of (320, 960) @ (960, 4));
# one product over the whole batch, at the price of two transposes, is then 2-3x faster
# (measured single-threaded on the development machine; equal at 14x14, per-image ahead at 32x32).
POINTWISE_BATCHED_MAX_PIXELS = 128


def _channels_first(a3):
    """(N, C, P) -> (C, N*P) copy, so that a whole batch is one matrix."""
    n, c, p = a3.shape
    return np.ascontiguousarray(a3.transpose(1, 0, 2)).reshape(c, n * p)


def _batch_first(a2, n):
    """(C, N*P) -> (N, C, P) copy: the inverse of _channels_first."""
    c = a2.shape[0]
    return np.ascontiguousarray(a2.reshape(c, n, -1).transpose(1, 0, 2))


def pointwise_forward(x, weight, bias):
    """1x1 stride-1 convolution: y[n] (K, H*W) = W (K, C) @ x[n] (C, H*W)."""
    n_batch, c_in, h, w = x.shape
    k_out = weight.shape[0]
    x3 = np.ascontiguousarray(x).reshape(n_batch, c_in, h * w)
    w2 = np.ascontiguousarray(weight).reshape(k_out, c_in)
    if h * w < POINTWISE_BATCHED_MAX_PIXELS:
        y = _batch_first(blas.matmul(w2, _channels_first(x3)), n_batch)  # one (K, C) @ (C, N*H*W) product
    else:
        y = np.empty((n_batch, k_out, h * w), dtype=x.dtype)
        blas.matmul_many([w2] * n_batch, list(x3), list(y))  # written in place: no transposes
    if bias is not None:
        y += bias[None, :, None]
    return y.reshape(n_batch, k_out, h, w)


def pointwise_backward(grad_out, x, weight, needs_input_grad, needs_weight_grad):
    """Gradients of the 1x1 convolution: grad_x[n] = W.T @ gy[n], grad_W = sum_n gy[n] @ x[n].T."""
    n_batch, c_in, h, w = x.shape
    k_out = weight.shape[0]
    gy = np.ascontiguousarray(grad_out).reshape(n_batch, k_out, h * w)
    x3 = np.ascontiguousarray(x).reshape(n_batch, c_in, h * w)
    w2 = np.ascontiguousarray(weight).reshape(k_out, c_in)
    grad_x = grad_w = None
    if h * w < POINTWISE_BATCHED_MAX_PIXELS:
        gy2 = _channels_first(gy)  # (K, N*H*W)
        if needs_input_grad:
            grad_x = _batch_first(blas.matmul(w2.T, gy2), n_batch).reshape(x.shape)
        if needs_weight_grad:
            grad_w = blas.matmul(gy2, _channels_first(x3).T).reshape(weight.shape)
        return grad_x, grad_w
    if needs_input_grad:
        grad_x = np.empty_like(x3)
        w2t = np.ascontiguousarray(w2.T)
        blas.matmul_many([w2t] * n_batch, list(gy), list(grad_x))  # (C, H*W) = W.T @ gy[n]
        grad_x = grad_x.reshape(x.shape)
    if needs_weight_grad:
        # per-image products gy[n] @ x3[n].T (K, C) on the threads, then summed
        parts = np.empty((n_batch, k_out, c_in), dtype=x.dtype)
        blas.matmul_many(list(gy), [xi.T for xi in x3], list(parts))
        grad_w = parts.sum(axis=0).reshape(weight.shape)
    return grad_x, grad_w


serialise_parallel_kernels(globals())
