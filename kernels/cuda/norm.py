"""CUDA normalisation kernels: fused batch norm (training, eval, backward) and local response norm.

Same entry points and semantics as ``kernels/cpu/norm.py`` (derivations in
``kernels/reference/norm.py``). Batch norm takes (N, C) or (N, C, H, W), viewed as
(N, C, L), and works in two passes over the data each way:

* forward: one block per channel reduces the float64 sums of the shifted values
  ``x - x[0, c, 0]`` (the shift keeps ``sum(d^2) - sum(d)^2 / M`` from cancelling)
  in shared memory; the per-channel scale and shift are then a few (C,)
  operations, and one element-wise kernel writes ``y = x * scale_c + shift_c``;
* backward: one block per channel reduces ``sum(dy)`` and ``sum(dy * (x - mean))``,
  and one element-wise kernel writes ``grad_x = a_c * dy + b_c * x + c_c``.

Threads of a block stride over the channel's M = N*L values, so neighbouring
threads read neighbouring addresses (coalesced loads).
"""
from __future__ import annotations

import math

import numpy as np
from numba import cuda, float64

from minidl.kernels.cuda._backend import array_module, check_float_array, contiguous, launch, launch_reduce


def _as_ncl(x, name="x"):
    """Validate a 2-D (N, C) or 4-D (N, C, H, W) float array; return its contiguous (N, C, L) view."""
    check_float_array(x, name, (2, 4))
    x = contiguous(array_module(x), x)
    return x.reshape(x.shape[0], x.shape[1], int(np.prod(x.shape[2:], dtype=np.int64)))  # L spelt out: -1 fails for N=0


def _channel_vector(xp, v, c, name, default):
    """A per-channel parameter as a float64 (C,) array on the device; ``default`` when None."""
    if v is None:
        return xp.full(c, default, dtype=np.float64)
    if tuple(v.shape) != (c,):
        raise ValueError(f"{name} must have shape ({c},), got {tuple(v.shape)}")
    return xp.asarray(v).astype(np.float64)


@cuda.jit(device=True)
def _block_sum(buf, offset, tid, threads):
    """Tree reduction of buf[offset:offset + threads] in shared memory; the sum ends in buf[offset]."""
    cuda.syncthreads()
    step = threads // 2
    while step > 0:
        if tid < step:
            buf[offset + tid] += buf[offset + tid + step]
        cuda.syncthreads()
        step //= 2


# --------------------------------------------------------------------------- batch norm


@cuda.jit(cache=True)
def _bn_stats(x, mean, var):
    """Block ch: mean[ch] and biased var[ch] of x[:, ch, :] (N, C, L), float64 shifted sums."""
    buf = cuda.shared.array(0, float64)  # [0, T): sum(d), [T, 2T): sum(d^2)
    ch = cuda.blockIdx.x
    tid = cuda.threadIdx.x
    threads = cuda.blockDim.x
    n, _, l = x.shape
    m = n * l
    shift = float64(x[0, ch, 0])
    s1 = 0.0
    s2 = 0.0
    for p in range(tid, m, threads):
        d = x[p // l, ch, p % l] - shift
        s1 += d
        s2 += d * d
    buf[tid] = s1
    buf[threads + tid] = s2
    _block_sum(buf, 0, tid, threads)
    _block_sum(buf, threads, tid, threads)
    if tid == 0:
        mu = buf[0] / m
        mean[ch] = shift + mu
        var[ch] = max(buf[threads] / m - mu * mu, 0.0)


@cuda.jit(cache=True)
def _bn_apply(x, scale, shift, y):
    """y[n, c, l] = x[n, c, l] * scale[c] + shift[c] (normalise and affine in one multiply-add)."""
    t = cuda.grid(1)
    n, c, l = x.shape
    if t >= n * c * l:
        return
    ch = (t // l) % c
    b = t // (c * l)
    k = t % l
    y[b, ch, k] = x[b, ch, k] * scale[ch] + shift[ch]


def _apply(xp, x3, scale, shift):
    y = xp.empty_like(x3)
    launch(_bn_apply, y.size, x3, scale.astype(x3.dtype), shift.astype(x3.dtype), y)
    return y


def batch_norm_train_forward(x, weight, bias, eps):
    """Training-mode batch norm with batch statistics; returns ``(y, mean, invstd, var_biased)``.

    ``y = (x - mean_c) * invstd_c * weight_c + bias_c``, ``invstd = 1/sqrt(var + eps)``; the
    statistics are (C,) arrays in x's dtype, as ``kernels.cpu.norm.batch_norm_train_forward``.
    """
    x3 = _as_ncl(x)  # (N, C, L)
    xp = array_module(x3)
    n, c, l = x3.shape
    if n * l < 1:
        raise ValueError(f"x must hold at least one value per channel, got shape {tuple(x.shape)}")
    mean = xp.empty(c, dtype=np.float64)
    var = xp.empty(c, dtype=np.float64)
    launch_reduce(_bn_stats, c, x3, mean, var, buffers=2)
    invstd = 1.0 / xp.sqrt(var + eps)
    scale = invstd * _channel_vector(xp, weight, c, "weight", 1.0)
    shift = _channel_vector(xp, bias, c, "bias", 0.0) - mean * scale
    y = _apply(xp, x3, scale, shift).reshape(x.shape)
    dt = x3.dtype
    return y, mean.astype(dt), invstd.astype(dt), var.astype(dt)


def batch_norm_eval_forward(x, running_mean, running_var, weight, bias, eps):
    """Inference-mode batch norm with the running statistics: one multiply-add per element."""
    x3 = _as_ncl(x)
    xp = array_module(x3)
    c = x3.shape[1]
    rm = _channel_vector(xp, running_mean, c, "running_mean", 0.0)
    rv = _channel_vector(xp, running_var, c, "running_var", 1.0)
    scale = _channel_vector(xp, weight, c, "weight", 1.0) / xp.sqrt(rv + eps)
    shift = _channel_vector(xp, bias, c, "bias", 0.0) - rm * scale
    return _apply(xp, x3, scale, shift).reshape(x.shape)


@cuda.jit(cache=True)
def _bn_bwd_sums(grad_out, x, mean, sum_dy, sum_dy_xmu):
    """Block ch: sum(dy) and sum(dy * (x - mean)) over x[:, ch, :], float64."""
    buf = cuda.shared.array(0, float64)
    ch = cuda.blockIdx.x
    tid = cuda.threadIdx.x
    threads = cuda.blockDim.x
    n, _, l = x.shape
    mu = mean[ch]
    s1 = 0.0
    s2 = 0.0
    for p in range(tid, n * l, threads):
        b = p // l
        k = p % l
        g = float64(grad_out[b, ch, k])
        s1 += g
        s2 += g * (x[b, ch, k] - mu)
    buf[tid] = s1
    buf[threads + tid] = s2
    _block_sum(buf, 0, tid, threads)
    _block_sum(buf, threads, tid, threads)
    if tid == 0:
        sum_dy[ch] = buf[0]
        sum_dy_xmu[ch] = buf[threads]


@cuda.jit(cache=True)
def _bn_bwd_input(grad_out, x, a, bx, cst, grad_x):
    """grad_x = a_c * dy + bx_c * x + cst_c: the backward formula expanded per channel."""
    t = cuda.grid(1)
    n, c, l = x.shape
    if t >= n * c * l:
        return
    ch = (t // l) % c
    b = t // (c * l)
    k = t % l
    grad_x[b, ch, k] = a[ch] * grad_out[b, ch, k] + bx[ch] * x[b, ch, k] + cst[ch]


def batch_norm_backward(grad_out, x, weight, mean, invstd, needs_input_grad, needs_weight_grad):
    """Training-mode batch-norm backward, as ``kernels.cpu.norm.batch_norm_backward``::

        grad_bias   = sum(dy)
        grad_weight = sum(dy * xhat)
        grad_x      = weight * invstd * (dy - sum(dy)/M - xhat * sum(dy * xhat)/M)
    """
    x3 = _as_ncl(x)
    g3 = _as_ncl(grad_out, "grad_out")
    if g3.shape != x3.shape:
        raise ValueError(f"grad_out must have x's shape {tuple(x.shape)}, got {tuple(grad_out.shape)}")
    xp = array_module(x3)
    n, c, l = x3.shape
    m = n * l
    mean64 = _channel_vector(xp, mean, c, "mean", 0.0)
    invstd64 = _channel_vector(xp, invstd, c, "invstd", 1.0)
    w = _channel_vector(xp, weight, c, "weight", 1.0)
    sum_dy = xp.empty(c, dtype=np.float64)
    sum_dy_xmu = xp.empty(c, dtype=np.float64)
    launch_reduce(_bn_bwd_sums, c, g3, x3, mean64, sum_dy, sum_dy_xmu, buffers=2)
    sum_dy_xhat = sum_dy_xmu * invstd64
    grad_x = grad_weight = grad_bias = None
    dt = x3.dtype
    if needs_input_grad:
        a = w * invstd64
        bx = -a * invstd64 * sum_dy_xhat / m
        cst = -a * sum_dy / m - bx * mean64
        grad_x = xp.empty_like(x3)
        launch(_bn_bwd_input, grad_x.size, g3, x3, a.astype(dt), bx.astype(dt), cst.astype(dt), grad_x)
        grad_x = grad_x.reshape(x.shape)
    if needs_weight_grad and weight is not None:
        grad_weight = sum_dy_xhat.astype(dt)
        grad_bias = sum_dy.astype(dt)
    return grad_x, grad_weight, grad_bias


# --------------------------------------------------------------------------- local response norm


def _as_nc_l(x, name="x"):
    check_float_array(x, name, tuple(range(3, 33)))
    x = contiguous(array_module(x), x)
    return x.reshape(x.shape[0], x.shape[1], int(np.prod(x.shape[2:], dtype=np.int64)))  # L spelt out: -1 fails for N=0


@cuda.jit(cache=True)
def _lrn_fwd(x, size, alpha, beta, k, y, scale):
    """scale = k + alpha/size * sum of x^2 over the channel window; y = x * scale^-beta."""
    t = cuda.grid(1)
    n, c, l = x.shape
    if t >= n * c * l:
        return
    ch = (t // l) % c
    b = t // (c * l)
    q = t % l
    lo = max(ch - size // 2, 0)
    hi = min(ch + (size - 1) // 2, c - 1)
    acc = 0.0
    for j in range(lo, hi + 1):
        v = x[b, j, q]
        acc += v * v
    s = k + alpha / size * acc
    scale[b, ch, q] = s
    y[b, ch, q] = x[b, ch, q] * math.pow(s, -beta)


def local_response_norm_forward(x, size, alpha=1e-4, beta=0.75, k=1.0):
    """Local response normalisation across channels (AlexNet), PyTorch semantics; returns ``(y, scale)``."""
    x3 = _as_nc_l(x)
    if int(size) != size or size < 1:
        raise ValueError(f"size must be an int >= 1, got {size}")
    xp = array_module(x3)
    y = xp.empty_like(x3)
    scale = xp.empty_like(x3)
    launch(_lrn_fwd, y.size, x3, int(size), float(alpha), float(beta), float(k), y, scale)
    return y.reshape(x.shape), scale.reshape(x.shape)


@cuda.jit(cache=True)
def _lrn_bwd(grad_out, x, scale, t_arr, size, alpha, beta, grad_x):
    """dx_j = dy_j * scale_j^-beta - 2 alpha beta / size * x_j * sum_i t_i over the channels i whose window holds j."""
    t = cuda.grid(1)
    n, c, l = x.shape
    if t >= n * c * l:
        return
    j = (t // l) % c
    b = t // (c * l)
    q = t % l
    # channel j sits in the window of channel i when i - size//2 <= j <= i + (size-1)//2
    lo = max(j - (size - 1) // 2, 0)
    hi = min(j + size // 2, c - 1)
    acc = 0.0
    for i in range(lo, hi + 1):
        acc += t_arr[b, i, q]
    grad_x[b, j, q] = (grad_out[b, j, q] * math.pow(scale[b, j, q], -beta)
                       - 2.0 * alpha * beta / size * x[b, j, q] * acc)


def local_response_norm_backward(grad_out, x, y, scale, size, alpha, beta, k):
    """Gradient of LRN (``k`` enters only through ``scale``)."""
    x3 = _as_nc_l(x)
    shape = tuple(x.shape)
    for name, arr in (("grad_out", grad_out), ("y", y), ("scale", scale)):
        if tuple(getattr(arr, "shape", ())) != shape:
            raise ValueError(f"{name} must have x's shape {shape}, got {getattr(arr, 'shape', None)}")
    xp = array_module(x3)
    dt = x3.dtype
    g3 = contiguous(xp, grad_out, dt).reshape(x3.shape)
    y3 = contiguous(xp, y, dt).reshape(x3.shape)
    s3 = contiguous(xp, scale, dt).reshape(x3.shape)
    # t_i = dy_i * y_i / scale_i is shared by every channel whose window includes i.
    t3 = g3 * y3 / s3
    grad_x = xp.empty_like(x3)
    launch(_lrn_bwd, grad_x.size, g3, x3, s3, t3, int(size), float(alpha), float(beta), grad_x)
    return grad_x.reshape(shape)
