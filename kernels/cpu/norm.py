"""Normalisation kernels for the CPU (Numba): batch norm, local response norm, dropout2d mask.

Arrays in, arrays out, no autograd; the input dtype (float32/float64) is kept, while the
per-channel statistics are accumulated in float64 so that large batches do not lose
precision. Batch norm takes (N, C) or (N, C, H, W) and normalises per channel over N (and
H, W); the 4-D kernels run one channel per thread (``prange`` over C), the width axis
innermost, and fuse the work into two passes over the data for the forward (statistics,
then normalise) and two for the backward (two reductions, then the input gradient).

The plain float64 versions, with the derivations, are in ``kernels/reference/norm.py``.

Example::

    >>> import numpy as np
    >>> x = np.random.default_rng(0).standard_normal((8, 3, 4, 4)).astype(np.float32)
    >>> y, mean, invstd, var = batch_norm_train_forward(x, None, None, 1e-5)
    >>> bool(np.allclose(y.mean(axis=(0, 2, 3)), 0, atol=1e-6))
    True
"""

import numpy as np
from numba import njit, prange

from minidl.kernels.cpu import serialise_parallel_kernels
from minidl.kernels.cpu.jit import parallel_kernel


# --------------------------------------------------------------------------- checks


def _as_ncl(x, name="x"):
    """Validate a 2-D (N, C) or 4-D (N, C, H, W) float array; return its (N, C, L) view."""
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray, got {type(x).__name__}")
    if x.ndim not in (2, 4):
        raise ValueError(f"{name} must be 2-D (N, C) or 4-D (N, C, H, W), got shape {x.shape}")
    if x.dtype not in (np.float32, np.float64):
        raise TypeError(f"{name} must be float32 or float64, got {x.dtype}")
    x = np.ascontiguousarray(x)
    # The length L spelt out: reshape(N, C, -1) cannot infer it when N is 0 (an empty batch).
    return x.reshape(x.shape[0], x.shape[1], int(np.prod(x.shape[2:], dtype=np.int64)))


def _channel_vector(v, c, dtype, name, default):
    """A per-channel parameter as a contiguous (C,) array of ``dtype``; ``default`` when None."""
    if v is None:
        return np.full(c, default, dtype)
    v = np.asarray(v)
    if v.shape != (c,):
        raise ValueError(f"{name} must have shape ({c},), got {v.shape}")
    return np.ascontiguousarray(v, dtype=dtype)


# --------------------------------------------------------------------------- batch norm


# fastmath "reassoc" on the per-channel float64 sums: it lets LLVM keep several partial sums in SIMD
# lanes (the float32 values widened to float64); without it the strict left-to-right order of a
# float sum keeps these loops scalar, and the sums were what made batch norm slower than PyTorch.
@parallel_kernel(fastmath={"reassoc"})
def _bn_stats(x):
    """Per-channel mean and biased variance of x (N, C, L), one channel per thread.

    One pass with float64 sums of the shifted value (x - x[0, c, 0]): the shift keeps
    sum(d^2) - sum(d)^2/M from cancelling when the mean is large against the spread.
    """
    n, c, l = x.shape
    mean = np.empty(c)
    var = np.empty(c)
    m = n * l
    for ch in prange(c):
        shift = np.float64(x[0, ch, 0])
        s1 = 0.0
        s2 = 0.0
        for b in range(n):
            row = x[b, ch]
            for k in range(l):
                d = row[k] - shift
                s1 += d
                s2 += d * d
        mu = s1 / m
        mean[ch] = shift + mu
        var[ch] = max(s2 / m - mu * mu, 0.0)
    return mean, var


@njit(cache=True)
def _bn_stats_2d(x):
    """Per-channel statistics for (N, C) input: rows are contiguous, so loop rows outside."""
    n, c = x.shape
    shift = x[0].astype(np.float64)
    s1 = np.zeros(c)
    s2 = np.zeros(c)
    for b in range(n):
        for ch in range(c):
            d = x[b, ch] - shift[ch]
            s1[ch] += d
            s2[ch] += d * d
    mu = s1 / n
    return shift + mu, np.maximum(s2 / n - mu * mu, 0.0)


@parallel_kernel()
def _bn_apply(x, scale, shift):
    """y[n, c, l] = x[n, c, l] * scale[c] + shift[c] (normalise and affine in one multiply-add)."""
    n, c, l = x.shape
    y = np.empty_like(x)
    for p in prange(n * c):
        b = p // c
        ch = p % c
        a = scale[ch]
        t = shift[ch]
        src = x[b, ch]
        dst = y[b, ch]
        for k in range(l):
            dst[k] = src[k] * a + t
    return y


def _stats(x3):
    if x3.shape[2] == 1:
        return _bn_stats_2d(x3[:, :, 0])
    return _bn_stats(x3)


def batch_norm_train_forward(x, weight, bias, eps):
    """Training-mode batch norm with batch statistics.

    ``y = (x - mean_c) * invstd_c * weight_c + bias_c`` with ``invstd = 1/sqrt(var + eps)``,
    ``var`` the biased variance over N (and H, W). Returns ``(y, mean, invstd, var_biased)``;
    the statistics are (C,) arrays in x's dtype. The caller updates ``running_var`` with the
    unbiased ``var_biased * M / (M - 1)`` (M elements per channel), as PyTorch does.
    """
    x3 = _as_ncl(x)  # (N, C, L)
    c = x3.shape[1]
    if x3.shape[0] * x3.shape[2] < 1:
        raise ValueError(f"x must hold at least one value per channel, got shape {x.shape}")
    mean, var = _stats(x3)
    invstd = 1.0 / np.sqrt(var + eps)
    w = _channel_vector(weight, c, np.float64, "weight", 1.0)
    b = _channel_vector(bias, c, np.float64, "bias", 0.0)
    scale = invstd * w
    shift = b - mean * scale
    y = _bn_apply(x3, scale.astype(x3.dtype), shift.astype(x3.dtype)).reshape(x.shape)
    dt = x3.dtype
    return y, mean.astype(dt), invstd.astype(dt), var.astype(dt)


def batch_norm_eval_forward(x, running_mean, running_var, weight, bias, eps):
    """Inference-mode batch norm with the running statistics: one multiply-add per element."""
    x3 = _as_ncl(x)
    c = x3.shape[1]
    rm = _channel_vector(running_mean, c, np.float64, "running_mean", 0.0)
    rv = _channel_vector(running_var, c, np.float64, "running_var", 1.0)
    w = _channel_vector(weight, c, np.float64, "weight", 1.0)
    b = _channel_vector(bias, c, np.float64, "bias", 0.0)
    scale = w / np.sqrt(rv + eps)
    shift = b - rm * scale
    return _bn_apply(x3, scale.astype(x3.dtype), shift.astype(x3.dtype)).reshape(x.shape)


# Fused activation: when a ReLU or ReLU6 runs in place on the batch-norm output (nn.ReLU(inplace=True)
# after BN, as in torchvision's ResNet and Conv2dNormActivation), the activation becomes part of
# the batch-norm node: forward clamps y in place (no new array), and backward masks dy by the
# activation's derivative inside its two passes instead of a separate pass and temporaries.
# act: 0 none, 1 ReLU (y > 0), 2 ReLU6 (0 < y < 6); y is the activated output.
ACT_NONE, ACT_RELU, ACT_RELU6 = 0, 1, 2


@njit(cache=True, inline="always")
def _masked(g, y, act, zero):
    if act == 1:
        return g if y > 0 else zero
    if act == 2:
        return g if (y > 0) & (y < 6) else zero
    return g


@parallel_kernel()
def _activate_inplace(y, act):
    """y = relu(y) (act 1) or relu6(y) (act 2), in place, plane by plane."""
    n, c, l = y.shape
    zero = np.zeros(1, y.dtype)[0]
    six = zero + 6
    for p in prange(n * c):
        row = y[p // c, p % c]
        if act == 1:
            for k in range(l):
                row[k] = max(row[k], zero)
        else:
            for k in range(l):
                row[k] = min(max(row[k], zero), six)


def activation_inplace(y, act):
    """Apply ReLU (``act=1``) or ReLU6 (``act=2``) to a C-contiguous batch-norm output in place."""
    if act not in (ACT_RELU, ACT_RELU6):
        raise ValueError(f"act must be 1 (ReLU) or 2 (ReLU6), got {act}")
    if not y.flags.c_contiguous:
        raise ValueError("activation_inplace needs a C-contiguous array")
    _activate_inplace(y.reshape(y.shape[0], y.shape[1], -1), act)
    return y


@parallel_kernel(fastmath={"reassoc"})  # vectorised float64 sums, as _bn_stats
def _bn_bwd_sums(grad_out, x, mean, y, act):
    """Per channel: sum(dy) and sum(dy * (x - mean)), float64, one channel per thread.

    dy is masked by the fused activation's derivative at y (``act``; y is unused when 0).
    """
    n, c, l = x.shape
    sum_dy = np.empty(c)
    sum_dy_xmu = np.empty(c)
    zero = np.zeros(1, grad_out.dtype)[0]
    for ch in prange(c):
        mu = mean[ch]
        s1 = 0.0
        s2 = 0.0
        for b in range(n):
            g = grad_out[b, ch]
            row = x[b, ch]
            yr = y[b, ch]
            for k in range(l):
                gk = _masked(g[k], yr[k], act, zero)
                s1 += gk
                s2 += gk * (row[k] - mu)
        sum_dy[ch] = s1
        sum_dy_xmu[ch] = s2
    return sum_dy, sum_dy_xmu


@njit(cache=True)
def _bn_bwd_sums_2d(grad_out, x, mean):
    n, c = x.shape
    s1 = np.zeros(c)
    s2 = np.zeros(c)
    for b in range(n):
        for ch in range(c):
            g = grad_out[b, ch]
            s1[ch] += g
            s2[ch] += g * (x[b, ch] - mean[ch])
    return s1, s2


@parallel_kernel()
def _bn_bwd_input(grad_out, x, a, bx, cst, y, act):
    """grad_x = a_c * dy + bx_c * x + cst_c: the backward formula expanded per channel (dy masked as above)."""
    n, c, l = x.shape
    grad_x = np.empty_like(x)
    zero = np.zeros(1, grad_out.dtype)[0]
    for p in prange(n * c):
        b = p // c
        ch = p % c
        ac = a[ch]
        bc = bx[ch]
        cc = cst[ch]
        g = grad_out[b, ch]
        row = x[b, ch]
        yr = y[b, ch]
        dst = grad_x[b, ch]
        for k in range(l):
            dst[k] = ac * _masked(g[k], yr[k], act, zero) + bc * row[k] + cc
    return grad_x


def batch_norm_backward(grad_out, x, weight, mean, invstd, needs_input_grad, needs_weight_grad, y=None,
                        act=ACT_NONE):
    """Training-mode batch-norm backward (the batch statistics depend on x).

    With a fused activation (``act``, ``y`` the activated output, see activation_inplace),
    ``dy`` below is the incoming gradient masked by the activation's derivative.

    With ``xhat = (x - mean) * invstd`` and M values per channel::

        grad_bias   = sum(dy)
        grad_weight = sum(dy * xhat)
        grad_x      = weight * invstd * (dy - sum(dy)/M - xhat * sum(dy * xhat)/M)

    The last line is expanded to ``a*dy + b*x + c`` per channel so the final pass is one
    fused multiply-add per element. Returns ``(grad_x, grad_weight, grad_bias)``, each None
    when not needed (weight gradients also when ``weight`` is None).
    """
    x3 = _as_ncl(x)
    g3 = _as_ncl(grad_out, "grad_out")
    if g3.shape != x3.shape:
        raise ValueError(f"grad_out must have x's shape {x.shape}, got {grad_out.shape}")
    n, c, l = x3.shape
    m = n * l
    mean64 = _channel_vector(mean, c, np.float64, "mean", 0.0)
    invstd64 = _channel_vector(invstd, c, np.float64, "invstd", 1.0)
    w = _channel_vector(weight, c, np.float64, "weight", 1.0)
    y3 = x3 if act == ACT_NONE else _as_ncl(y, "y")
    if act != ACT_NONE and l == 1:  # (N, C) input: mask on the host, then the plain 2-D sums
        g3 = g3 * ((y3 > 0) if act == ACT_RELU else ((y3 > 0) & (y3 < 6)))
        y3, act = x3, ACT_NONE
    if l == 1:
        sum_dy, sum_dy_xmu = _bn_bwd_sums_2d(g3[:, :, 0], x3[:, :, 0], mean64)
    else:
        sum_dy, sum_dy_xmu = _bn_bwd_sums(g3, x3, mean64, y3, act)
    sum_dy_xhat = sum_dy_xmu * invstd64
    grad_x = grad_weight = grad_bias = None
    if needs_input_grad:
        # grad_x = w*invstd*dy - w*invstd*sum_dy/M - w*invstd^2*(x - mean)*sum_dy_xhat/M
        a = w * invstd64
        bx = -a * invstd64 * sum_dy_xhat / m
        cst = -a * sum_dy / m - bx * mean64
        dt = x3.dtype
        grad_x = _bn_bwd_input(g3, x3, a.astype(dt), bx.astype(dt), cst.astype(dt), y3, act).reshape(x.shape)
    if needs_weight_grad and weight is not None:
        grad_weight = sum_dy_xhat.astype(x3.dtype)
        grad_bias = sum_dy.astype(x3.dtype)
    return grad_x, grad_weight, grad_bias


# --------------------------------------------------------------------------- local response norm


def _as_nc_l(x, name="x"):
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray, got {type(x).__name__}")
    if x.ndim < 3:
        raise ValueError(f"{name} must have at least 3 dimensions (N, C, ...), got shape {x.shape}")
    if x.dtype not in (np.float32, np.float64):
        raise TypeError(f"{name} must be float32 or float64, got {x.dtype}")
    x = np.ascontiguousarray(x)
    # The length L spelt out: reshape(N, C, -1) cannot infer it when N is 0 (an empty batch).
    return x.reshape(x.shape[0], x.shape[1], int(np.prod(x.shape[2:], dtype=np.int64)))


@parallel_kernel()
def _lrn_fwd(x, size, alpha, beta, k):
    n, c, l = x.shape
    y = np.empty_like(x)
    scale = np.empty_like(x)
    before = size // 2
    after = (size - 1) // 2
    coef = alpha / size
    for p in prange(n * c):
        b = p // c
        ch = p % c
        lo = max(ch - before, 0)
        hi = min(ch + after, c - 1)
        acc = np.zeros(l, x.dtype)
        for j in range(lo, hi + 1):
            row = x[b, j]
            for q in range(l):
                acc[q] += row[q] * row[q]
        src = x[b, ch]
        for q in range(l):
            s = k + coef * acc[q]
            scale[b, ch, q] = s
            y[b, ch, q] = src[q] * s ** (-beta)
    return y, scale


def local_response_norm_forward(x, size, alpha=1e-4, beta=0.75, k=1.0):
    """Local response normalisation across channels (AlexNet), PyTorch semantics.

    ``scale[c] = k + alpha/size * sum_{j=c-size//2}^{c+(size-1)//2} x[j]^2`` (channels outside
    [0, C) count as zero) and ``y = x * scale^(-beta)``. Returns ``(y, scale)``.
    """
    x3 = _as_nc_l(x)
    if int(size) != size or size < 1:
        raise ValueError(f"size must be an int >= 1, got {size}")
    dt = x3.dtype.type
    y, scale = _lrn_fwd(x3, int(size), dt(alpha), dt(beta), dt(k))
    return y.reshape(x.shape), scale.reshape(x.shape)


@parallel_kernel()
def _lrn_bwd(grad_out, x, y, scale, size, alpha, beta):
    n, c, l = x.shape
    grad_x = np.empty_like(x)
    # t[i] = dy_i * y_i / scale_i is shared by every channel whose window includes i.
    t = np.empty_like(x)
    for p in prange(n * c):
        b = p // c
        ch = p % c
        for q in range(l):
            t[b, ch, q] = grad_out[b, ch, q] * y[b, ch, q] / scale[b, ch, q]
    before = size // 2
    after = (size - 1) // 2
    coef = 2.0 * alpha * beta / size
    for p in prange(n * c):
        b = p // c
        j = p % c
        # channel j sits in the window of channel i when i - before <= j <= i + after
        lo = max(j - after, 0)
        hi = min(j + before, c - 1)
        acc = np.zeros(l, x.dtype)
        for i in range(lo, hi + 1):
            row = t[b, i]
            for q in range(l):
                acc[q] += row[q]
        for q in range(l):
            grad_x[b, j, q] = grad_out[b, j, q] * scale[b, j, q] ** (-beta) - coef * x[b, j, q] * acc[q]
    return grad_x


def local_response_norm_backward(grad_out, x, y, scale, size, alpha, beta, k):
    """Gradient of LRN: ``dx_j = dy_j * scale_j^-beta - 2*alpha*beta/size * x_j * sum_i dy_i*y_i/scale_i``
    over the channels i whose window contains j (``k`` enters only through ``scale``)."""
    x3 = _as_nc_l(x)
    shape = x.shape
    for name, arr in (("grad_out", grad_out), ("y", y), ("scale", scale)):
        if getattr(arr, "shape", None) != shape:
            raise ValueError(f"{name} must have x's shape {shape}, got {getattr(arr, 'shape', None)}")
    dt = x3.dtype
    g3 = np.ascontiguousarray(grad_out, dt).reshape(x3.shape)
    y3 = np.ascontiguousarray(y, dt).reshape(x3.shape)
    s3 = np.ascontiguousarray(scale, dt).reshape(x3.shape)
    return _lrn_bwd(g3, x3, y3, s3, int(size), dt.type(alpha), dt.type(beta)).reshape(shape)


# --------------------------------------------------------------------------- dropout2d


def dropout2d_mask(shape, p, rng):
    """Channel-wise dropout mask: one Bernoulli(1-p) draw per (n, c), scaled by 1/(1-p).

    Returns a float32 array of shape (N, C, 1, ..., 1) that broadcasts against ``shape``,
    so that E[mask * x] = x (inverted dropout). ``p == 1`` gives all zeros.
    """
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"p must be in [0, 1], got {p}")
    if len(shape) < 2:
        raise ValueError(f"shape must be at least (N, C), got {tuple(shape)}")
    keep = rng.random(tuple(shape[:2])) >= p  # (N, C)
    scale = 0.0 if p == 1.0 else 1.0 / (1.0 - p)
    mask = keep.astype(np.float32) * np.float32(scale)
    return mask.reshape(tuple(shape[:2]) + (1,) * (len(shape) - 2))


serialise_parallel_kernels(globals())
