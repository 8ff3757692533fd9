"""Fused softmax cross-entropy for the CPU (Numba), PyTorch's ``cross_entropy`` semantics.

Arrays in, arrays out, no autograd. Logits are (N, C) float32/float64, targets (N,) int64
class indices. One row per thread (``prange`` over N); the forward reads a row twice
(max, then sum of exponentials and the weighted sums), the backward once more to write the
gradient, never materialising the softmax or log-softmax.

Per sample, with ``lse = log sum_c exp(z_c)`` (computed as ``max + log sum exp(z - max)``
so that logits of size 1e4 neither overflow nor lose the small terms)::

    nll_i    = lse - z_{y_i}                          (= -log p_{y_i})
    smooth_i = sum_c w_c * (lse - z_c)                (= -sum_c w_c log p_c)
    loss_i   = (1 - ls) * w_{y_i} * nll_i + ls / C * smooth_i

and ``loss_i = 0`` when ``y_i == ignore_index``. ``sample_weight_i = w_{y_i}`` (0 when
ignored): PyTorch's ``reduction="mean"`` is ``sum(loss) / sum(sample_weight)``.
One PyTorch quirk the caller must know: without class weights, PyTorch's mean divides the
smoothing term by N (all samples, ignored ones included) and the nll term by the number
of non-ignored samples; the two agree unless samples are ignored and ``ls > 0``.

The gradient, with ``p = softmax(z)`` and ``W = sum_c w_c``::

    d loss_i / d z_c = (1 - ls) * w_{y_i} * (p_c - [c == y_i]) + ls / C * (W * p_c - w_c)

Readable float64 version: ``kernels/reference/loss.py``.

Example::

    >>> import numpy as np
    >>> z = np.array([[2.0, 1.0, 0.1]], np.float32)
    >>> loss, lse, sw = softmax_cross_entropy_forward(z, np.array([0]), None, -100, 0.0)
    >>> round(float(loss[0]), 4)
    0.417
"""

import math

import numpy as np
from numba import njit, prange

from minidl.kernels.cpu import serialise_parallel_kernels, vmath
from minidl.kernels.cpu.jit import parallel_kernel

# exp in the argument's precision, vectorisable for float32 (kernels/cpu/vmath.py)
_exp = vmath.exp


def _check(logits, target, weight):
    """Validate shapes/dtypes; return contiguous logits, int64 target, weight array (or ones)."""
    if not isinstance(logits, np.ndarray) or logits.ndim != 2:
        raise ValueError(f"logits must be a 2-D (N, C) array, got shape {getattr(logits, 'shape', None)}")
    if logits.dtype not in (np.float32, np.float64):
        raise TypeError(f"logits must be float32 or float64, got {logits.dtype}")
    n, c = logits.shape
    target = np.asarray(target)
    if target.shape != (n,):
        raise ValueError(f"target must have shape ({n},), got {target.shape}")
    if not np.issubdtype(target.dtype, np.integer):
        raise TypeError(f"target must hold integer class indices, got {target.dtype}")
    if weight is None:
        w = np.ones(c, logits.dtype)
    else:
        w = np.asarray(weight)
        if w.shape != (c,):
            raise ValueError(f"weight must have shape ({c},), got {w.shape}")
        w = np.ascontiguousarray(w, dtype=logits.dtype)
    return np.ascontiguousarray(logits), np.ascontiguousarray(target, dtype=np.int64), w


def _check_targets(target, c, ignore_index):
    bad = (target != ignore_index) & ((target < 0) | (target >= c))
    if bad.any():
        i = int(np.argmax(bad))
        raise ValueError(f"target[{i}] = {int(target[i])} is out of range: expected 0 <= target < {c} or ignore_index={ignore_index}")


@njit(cache=True, fastmath={"contract"}, error_model="numpy")
def _shifted_exps(row, m, out):
    """out[k] = exp(row[k] - m): vectorised for float32 (kernels/cpu/vmath.py)."""
    for k in range(row.shape[0]):
        out[k] = _exp(row[k] - m)


# fastmath "reassoc" only lets LLVM reorder the float64 sums into SIMD lanes; no other
# IEEE rule is relaxed.
@parallel_kernel(fastmath={"reassoc"})
def _ce_fwd(z, row_max, target, w, ignore_index, ls):
    n, c = z.shape
    loss = np.empty(n, z.dtype)
    lse_out = np.empty(n, z.dtype)
    sample_weight = np.empty(n, z.dtype)
    w_total = 0.0
    for k in range(c):
        w_total += w[k]
    zero = np.zeros(1, z.dtype)[0]
    for i in prange(n):
        buf = np.empty(c, z.dtype)
        row = z[i]
        m = row_max[i]  # NumPy's max: vectorised (the select loop here was 3x slower); NaN propagates
        # float64 sums: sum_c w_c z_c is ~C * |z| and must be subtracted from W * lse exactly enough.
        # exps in [0, 1] summed in the data's dtype: twice the SIMD lanes of float64 for float32;
        # computed by _shifted_exps (its own fastmath flags: "reassoc" here would loosen exp's
        # range reduction), then summed here
        _shifted_exps(row, m, buf)
        s_lanes = zero
        for k in range(c):
            s_lanes += buf[k]
        s = s_lanes + 0.0
        wz = 0.0
        if ls > 0.0:  # the smoothing term needs sum_c w_c z_c; without smoothing skip that pass
            for k in range(c):
                wz += w[k] * row[k]
        lse = m + math.log(s)
        lse_out[i] = lse
        t = target[i]
        if t == ignore_index:
            loss[i] = 0.0
            sample_weight[i] = 0.0
            continue
        wt = w[t]
        nll = lse - row[t]
        smooth = w_total * lse - wz
        loss[i] = (1.0 - ls) * wt * nll + ls / c * smooth
        sample_weight[i] = wt
    return loss, lse_out, sample_weight


def softmax_cross_entropy_forward(logits, target, weight, ignore_index, label_smoothing):
    """Per-sample cross-entropy of softmax(logits) (reduction="none"), see the module docstring.

    Returns ``(loss_per_sample (N,), lse (N,), sample_weight (N,))`` in the logits' dtype;
    ``lse`` is saved for the backward.
    """
    z, t, w = _check(logits, target, weight)
    _check_targets(t, z.shape[1], ignore_index)
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"label_smoothing must be in [0, 1], got {label_smoothing}")
    return _ce_fwd(z, z.max(axis=1), t, w, int(ignore_index), float(label_smoothing))


# No sums here, so no "reassoc" (which also loosened exp_f32's range reduction); "contract" and
# the numpy error model keep the exp loop vectorised: 1.08-1.15 -> 0.79 ms on one thread (1024x1000).
@parallel_kernel(fastmath={"contract"}, error_model="numpy")
def _ce_bwd(z, lse, target, w, ignore_index, ls, grad_loss):
    n, c = z.shape
    grad = np.empty_like(z)
    w_total = 0.0
    for k in range(c):
        w_total += w[k]
    eps_c = ls / c
    for i in prange(n):
        t = target[i]
        out = grad[i]
        if t == ignore_index:
            out[:] = 0.0
            continue
        g = grad_loss[i]
        row = z[i]
        wt = w[t]
        # d/dz_c = g * (p_c * ((1-ls) w_t + ls/C W) - ls/C w_c - (1-ls) w_t [c == t])
        a = z.dtype.type(g * ((1.0 - ls) * wt + eps_c * w_total))
        b = z.dtype.type(g * eps_c)
        shift = lse[i]
        for k in range(c):
            out[k] = a * _exp(row[k] - shift) - b * w[k]
        out[t] -= g * (1.0 - ls) * wt
    return grad


def softmax_cross_entropy_backward(logits, lse, target, weight, ignore_index, label_smoothing, grad_loss_per_sample):
    """Gradient of the per-sample losses with respect to the logits, (N, C).

    ``grad_loss_per_sample`` (N,) is the upstream gradient of each ``loss_i`` (for
    ``reduction="mean"``: ``1 / sum(sample_weight)`` everywhere). Ignored rows get 0.
    """
    z, t, w = _check(logits, target, weight)
    n = z.shape[0]
    lse = np.ascontiguousarray(lse, dtype=z.dtype)
    g = np.ascontiguousarray(np.broadcast_to(np.asarray(grad_loss_per_sample, dtype=z.dtype), (n,)))
    if lse.shape != (n,):
        raise ValueError(f"lse must have shape ({n},), got {lse.shape}")
    return _ce_bwd(z, lse, t, w, int(ignore_index), float(label_smoothing), g)


serialise_parallel_kernels(globals())
