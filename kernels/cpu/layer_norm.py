"""Layer, group and instance normalisation kernels for the CPU (Numba), forward and backward fused.

Arrays in, arrays out, no autograd. The three norms share one layout (see
``kernels/reference/layer_norm.py`` for the derivation): ``x`` of shape (B, G, K, L), each
(b, g) a group of K*L values normalised together, channel ``c = g*K + k`` scaled by
``weight[c]`` and shifted by ``bias[c]``. One thread takes one group (``prange`` over B*G):

* forward: one pass accumulates float64 sums of the shifted values ``x - x[b, g, 0, 0]``
  (the shift keeps ``sum(d^2) - sum(d)^2 / m`` from cancelling), a second writes
  ``y = x * a_c + t_c`` (normalise and affine folded into one multiply-add);
* backward: one pass reduces ``sum(dy)`` and ``sum(dy * xhat)`` per channel (they are the
  bias and weight gradients of this group, and give the two group means the input gradient
  needs), a second writes ``dx = rstd * (dy * w_c - mean(dxhat) - xhat * mean(dxhat * xhat))``.

The input dtype (float32/float64) is kept for y and dx; mean and rstd are float64 (B, G).
"""

import numpy as np
from numba import prange

from minidl.kernels.cpu import serialise_parallel_kernels
from minidl.kernels.cpu.jit import parallel_kernel


def _check(x, name="x"):
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray, got {type(x).__name__}")
    if x.ndim != 4:
        raise ValueError(f"{name} must be 4-D (B, G, K, L), got shape {x.shape}")
    if x.dtype not in (np.float32, np.float64):
        raise TypeError(f"{name} must be float32 or float64, got {x.dtype}")
    return np.ascontiguousarray(x)


def _channel_vector(v, c, name, default):
    """A per-channel parameter as a contiguous float64 (C,) array; ``default`` when None."""
    if v is None:
        return np.full(c, default)
    if v.shape != (c,):
        raise ValueError(f"{name} must have shape ({c},), got {v.shape}")
    return np.ascontiguousarray(v, dtype=np.float64)


# fastmath "reassoc" on the float64 sums: partial sums in SIMD lanes (as the batch-norm kernels)
@parallel_kernel(fastmath={"reassoc"})
def _gn_forward(x, w, b, eps):
    """y, mean, rstd of the grouped layout; one group per thread."""
    n_b, n_g, n_k, n_l = x.shape
    y = np.empty_like(x)
    mean = np.empty((n_b, n_g))
    rstd = np.empty((n_b, n_g))
    m = n_k * n_l
    for p in prange(n_b * n_g):
        i = p // n_g
        g = p % n_g
        xs = x[i, g]
        shift = np.float64(xs[0, 0])
        s1 = 0.0
        s2 = 0.0
        for k in range(n_k):
            for l in range(n_l):
                d = xs[k, l] - shift
                s1 += d
                s2 += d * d
        mu = s1 / m
        r = 1.0 / np.sqrt(max(s2 / m - mu * mu, 0.0) + eps)
        mu += shift
        mean[i, g] = mu
        rstd[i, g] = r
        ys = y[i, g]
        for k in range(n_k):
            c = g * n_k + k
            a = r * w[c]
            t = b[c] - mu * a
            for l in range(n_l):
                ys[k, l] = xs[k, l] * a + t
    return y, mean, rstd


@parallel_kernel(fastmath={"reassoc"})
def _gn_backward(dy, x, w, mean, rstd, need_dx, need_affine):
    """dx and per-(b, channel) partial sums of dy * xhat and dy (empty arrays where not needed)."""
    n_b, n_g, n_k, n_l = x.shape
    dx = np.empty_like(x) if need_dx else np.empty((0, 0, 0, 0), x.dtype)
    dw_part = np.empty((n_b, n_g * n_k)) if need_affine else np.empty((0, 0))
    db_part = np.empty((n_b, n_g * n_k)) if need_affine else np.empty((0, 0))
    m = n_k * n_l
    for p in prange(n_b * n_g):
        i = p // n_g
        g = p % n_g
        mu = mean[i, g]
        r = rstd[i, g]
        xs = x[i, g]
        gs = dy[i, g]
        sum_dxhat = 0.0
        sum_dxhat_xhat = 0.0
        for k in range(n_k):
            c = g * n_k + k
            s_dy = 0.0
            s_dy_xhat = 0.0
            for l in range(n_l):
                d = np.float64(gs[k, l])
                s_dy += d
                s_dy_xhat += d * (xs[k, l] - mu) * r
            if need_affine:
                dw_part[i, c] = s_dy_xhat
                db_part[i, c] = s_dy
            sum_dxhat += w[c] * s_dy
            sum_dxhat_xhat += w[c] * s_dy_xhat
        if need_dx:
            a = sum_dxhat / m
            bb = sum_dxhat_xhat / m
            ds = dx[i, g]
            for k in range(n_k):
                wc = w[g * n_k + k]
                for l in range(n_l):
                    xhat = (xs[k, l] - mu) * r
                    ds[k, l] = r * (gs[k, l] * wc - a - xhat * bb)
    return dx, dw_part, db_part


def group_norm_forward(x, weight, bias, eps):
    """x (B, G, K, L); weight, bias (G*K,) or None. Returns (y in x's dtype, mean (B, G), rstd (B, G))."""
    x = _check(x)
    n_b, n_g, n_k, n_l = x.shape
    w = _channel_vector(weight, n_g * n_k, "weight", 1.0)
    b = _channel_vector(bias, n_g * n_k, "bias", 0.0)
    if n_k * n_l == 0:  # empty groups: nothing to normalise
        return np.empty_like(x), np.full((n_b, n_g), np.nan), np.full((n_b, n_g), np.nan)
    return _gn_forward(x, w, b, float(eps))


def _finish_backward(kernel, dy, x, w, mean, rstd, need_dx, need_affine):
    """Run a backward kernel; sum its partial weight and bias gradients (rows: images or tasks)."""
    dx, dw_part, db_part = kernel(dy, x, w, np.ascontiguousarray(mean, np.float64),
                                  np.ascontiguousarray(rstd, np.float64), bool(need_dx), bool(need_affine))
    dw = dw_part.sum(axis=0).astype(x.dtype) if need_affine else None
    db = db_part.sum(axis=0).astype(x.dtype) if need_affine else None
    return (dx if need_dx else None), dw, db


def group_norm_backward(dy, x, weight, mean, rstd, need_dx=True, need_affine=True):
    """(dx or None, dweight or None, dbias or None) of group_norm_forward, in x's dtype."""
    x = _check(x)
    dy = np.ascontiguousarray(dy, dtype=x.dtype)
    n_b, n_g, n_k, n_l = x.shape
    w = _channel_vector(weight, n_g * n_k, "weight", 1.0)
    if n_k * n_l == 0:
        zeros = np.zeros(n_g * n_k, x.dtype)
        return (np.zeros_like(x) if need_dx else None), zeros, zeros.copy()
    return _finish_backward(_gn_backward, dy, x, w, mean, rstd, need_dx, need_affine)


# LayerNorm's rows (M, D) get kernels of their own: on the (M, 1, D, 1) group view the D features
# would be the outer loop of a length-1 inner one, and nothing vectorised (17x PyTorch's time).
ROWS_PER_TASK = 64


@parallel_kernel(fastmath={"reassoc"})
def _ln_forward(x, w, b, eps):
    """y, mean, rstd of each row of x (M, D); shifted float64 sums as _gn_forward."""
    m, d = x.shape
    y = np.empty_like(x)
    mean = np.empty(m)
    rstd = np.empty(m)
    for i in prange(m):
        row = x[i]
        shift = np.float64(row[0])
        s1 = 0.0
        s2 = 0.0
        for j in range(d):
            v = row[j] - shift
            s1 += v
            s2 += v * v
        mu = s1 / d
        r = 1.0 / np.sqrt(max(s2 / d - mu * mu, 0.0) + eps)
        mu += shift
        mean[i] = mu
        rstd[i] = r
        out = y[i]
        for j in range(d):
            out[j] = (row[j] - mu) * r * w[j] + b[j]
    return y, mean, rstd


@parallel_kernel(fastmath={"reassoc"})
def _ln_backward(dy, x, w, mean, rstd, need_dx, need_affine):
    """dx (M, D) and the per-task partial sums of dy * xhat and dy over rows (for dweight, dbias).

    Per row, with g = dy * w and xhat = (x - mean) * rstd:
        dx = rstd * (g - sum(g) / D - xhat * sum(g * xhat) / D)
    """
    m, d = x.shape
    n_tasks = (m + ROWS_PER_TASK - 1) // ROWS_PER_TASK
    dx = np.empty_like(x) if need_dx else np.empty((0, 0), x.dtype)
    dw_part = np.zeros((n_tasks, d)) if need_affine else np.empty((0, 0))
    db_part = np.zeros((n_tasks, d)) if need_affine else np.empty((0, 0))
    for t in prange(n_tasks):
        for i in range(t * ROWS_PER_TASK, min((t + 1) * ROWS_PER_TASK, m)):
            mu = mean[i]
            r = rstd[i]
            row = x[i]
            g = dy[i]
            if need_affine:
                dw_t = dw_part[t]
                db_t = db_part[t]
                for j in range(d):
                    dw_t[j] += g[j] * (row[j] - mu) * r
                    db_t[j] += g[j]
            if need_dx:
                s_g = 0.0
                s_gx = 0.0
                for j in range(d):
                    gw = np.float64(g[j]) * w[j]
                    s_g += gw
                    s_gx += gw * (row[j] - mu) * r
                a = s_g / d
                bb = s_gx / d
                out = dx[i]
                for j in range(d):
                    out[j] = r * (g[j] * w[j] - a - (row[j] - mu) * r * bb)
    return dx, dw_part, db_part


def layer_norm_forward(x, weight, bias, eps):
    """x (M, D), each row normalised; weight, bias (D,) or None. Returns (y, mean (M,), rstd (M,))."""
    x = np.ascontiguousarray(x)
    m, d = x.shape
    if m * d == 0:
        return np.empty_like(x), np.full(m, np.nan), np.full(m, np.nan)
    w = _channel_vector(weight, d, "weight", 1.0)
    b = _channel_vector(bias, d, "bias", 0.0)
    return _ln_forward(x, w, b, float(eps))


def layer_norm_backward(dy, x, weight, mean, rstd, need_dx=True, need_affine=True):
    """(dx (M, D) or None, dweight (D,) or None, dbias (D,) or None) of layer_norm_forward."""
    x = np.ascontiguousarray(x)
    dy = np.ascontiguousarray(dy, dtype=x.dtype)
    m, d = x.shape
    w = _channel_vector(weight, d, "weight", 1.0)
    if m * d == 0:
        zeros = np.zeros(d, x.dtype)
        return (np.zeros_like(x) if need_dx else None), zeros, zeros.copy()
    return _finish_backward(_ln_backward, dy, x, w, mean, rstd, need_dx, need_affine)


serialise_parallel_kernels(globals())
