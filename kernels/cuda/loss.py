"""CUDA fused softmax cross-entropy, forward and backward, PyTorch's ``cross_entropy`` semantics.

Same entry points and formulas as ``kernels/cpu/loss.py`` (read its docstring for the
maths: ``nll_i = lse - z_{y_i}``, the smoothing term ``sum_c w_c (lse - z_c)`` and the
gradient ``(1 - ls) w_y (p_c - [c == y]) + ls / C (W p_c - w_c)``).

* forward: one block per row. The threads stride over the C logits (coalesced),
  reduce the row maximum in shared memory, then the float64 sums
  ``sum exp(z - max)`` and ``sum w_c z_c`` in one more pass; thread 0 writes the
  per-sample loss, the log-sum-exp (kept for backward) and the sample weight.
* backward: one thread per logit writes its gradient from the saved log-sum-exp:
  the softmax is never stored.

Nothing here reads a device value back to the host (that would stall every step): the
summed class weights stay a one-element device array, and a target class outside
``[0, C)`` (other than ``ignore_index``) gives a NaN loss and NaN gradients instead of a
host-side check, as PyTorch's CUDA kernel asserts on the device.
"""
from __future__ import annotations

import math

import numpy as np
from numba import cuda, float64

from minidl.kernels.cuda._backend import array_module, check_float_array, contiguous, launch, launch_reduce


def _check(logits, target, weight):
    """Validate shapes/dtypes; return contiguous logits, int64 target and the weights (ones if None)."""
    check_float_array(logits, "logits", (2,))
    xp = array_module(logits)
    n, c = logits.shape
    if not hasattr(target, "shape") or tuple(target.shape) != (n,):
        raise ValueError(f"target must have shape ({n},), got {getattr(target, 'shape', None)}")
    if target.dtype.kind not in "iu":
        raise TypeError(f"target must hold integer class indices, got {target.dtype}")
    if weight is None:
        w = xp.ones(c, dtype=logits.dtype)
    else:
        if tuple(weight.shape) != (c,):
            raise ValueError(f"weight must have shape ({c},), got {tuple(weight.shape)}")
        w = contiguous(xp, weight, logits.dtype)
    return contiguous(xp, logits), contiguous(xp, target, np.int64), w


def _weight_total(w):
    """sum(w) in float64 as a one-element device array: the kernels read it there, no trip to the host."""
    return w.astype(np.float64).sum(keepdims=True)


@cuda.jit(cache=True)
def _ce_fwd(z, target, w, w_total, ignore_index, ls, loss, lse_out, sample_weight):
    buf = cuda.shared.array(0, float64)  # [0, T): max, then sum exp; [T, 2T): sum w z
    i = cuda.blockIdx.x
    tid = cuda.threadIdx.x
    threads = cuda.blockDim.x
    c = z.shape[1]
    m = -math.inf
    for k in range(tid, c, threads):
        m = max(m, float64(z[i, k]))
    buf[tid] = m
    cuda.syncthreads()
    step = threads // 2
    while step > 0:
        if tid < step:
            buf[tid] = max(buf[tid], buf[tid + step])
        cuda.syncthreads()
        step //= 2
    m = buf[0]
    cuda.syncthreads()  # everyone has read the maximum before buf is reused
    s = 0.0
    wz = 0.0
    for k in range(tid, c, threads):
        v = float64(z[i, k])
        s += math.exp(v - m)
        wz += w[k] * v
    buf[tid] = s
    buf[threads + tid] = wz
    cuda.syncthreads()
    step = threads // 2
    while step > 0:
        if tid < step:
            buf[tid] += buf[tid + step]
            buf[threads + tid] += buf[threads + tid + step]
        cuda.syncthreads()
        step //= 2
    if tid == 0:
        lse = m + math.log(buf[0])
        lse_out[i] = lse
        t = target[i]
        if t == ignore_index:
            loss[i] = 0.0
            sample_weight[i] = 0.0
        elif t < 0 or t >= c:  # a class out of range: NaN, not a read outside the row
            loss[i] = math.nan
            sample_weight[i] = math.nan
        else:
            wt = w[t]
            nll = lse - z[i, t]
            smooth = w_total[0] * lse - buf[threads]
            loss[i] = (1.0 - ls) * wt * nll + ls / c * smooth
            sample_weight[i] = wt


def softmax_cross_entropy_forward(logits, target, weight, ignore_index, label_smoothing):
    """Per-sample cross-entropy (reduction="none"); returns ``(loss (N,), lse (N,), sample_weight (N,))``."""
    z, t, w = _check(logits, target, weight)
    xp = array_module(z)
    n, c = z.shape
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"label_smoothing must be in [0, 1], got {label_smoothing}")
    loss = xp.empty(n, dtype=z.dtype)
    lse = xp.empty(n, dtype=z.dtype)
    sample_weight = xp.empty(n, dtype=z.dtype)
    w_total = _weight_total(w)
    launch_reduce(_ce_fwd, n, z, t, w, w_total, int(ignore_index), float(label_smoothing),
                  loss, lse, sample_weight, buffers=2)
    return loss, lse, sample_weight


@cuda.jit(cache=True)
def _ce_bwd(z, lse, target, w, w_total, ignore_index, ls, grad_loss, grad):
    """d loss_i / d z_c = g_i (p_c ((1-ls) w_t + ls/C W) - ls/C w_c - (1-ls) w_t [c == t]); 0 for ignored rows."""
    e = cuda.grid(1)
    n, c = z.shape
    if e >= n * c:
        return
    i = e // c
    k = e % c
    t = target[i]
    if t == ignore_index:
        grad[i, k] = 0.0
        return
    if t < 0 or t >= c:
        grad[i, k] = math.nan
        return
    g = grad_loss[i]
    wt = w[t]
    eps_c = ls / c
    p = math.exp(z[i, k] - lse[i])
    value = g * (p * ((1.0 - ls) * wt + eps_c * w_total[0]) - eps_c * w[k])
    if k == t:
        value -= g * (1.0 - ls) * wt
    grad[i, k] = value


def softmax_cross_entropy_backward(logits, lse, target, weight, ignore_index, label_smoothing, grad_loss_per_sample):
    """Gradient of the per-sample losses with respect to the logits, (N, C); ignored rows get 0."""
    z, t, w = _check(logits, target, weight)
    xp = array_module(z)
    n = z.shape[0]
    if tuple(lse.shape) != (n,):
        raise ValueError(f"lse must have shape ({n},), got {tuple(lse.shape)}")
    lse = contiguous(xp, lse, z.dtype)
    g = xp.empty(n, dtype=z.dtype)  # a fresh writable array: broadcast views are read-only
    g[...] = grad_loss_per_sample
    grad = xp.empty_like(z)
    w_total = _weight_total(w)
    launch(_ce_bwd, grad.size, z, lse, t, w, w_total, int(ignore_index), float(label_smoothing), g, grad)
    return grad
