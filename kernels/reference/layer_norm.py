"""Float64 reference for layer, group and instance normalisation: plain loops, readable first.

All three normalise groups of values to zero mean and unit (biased) variance, then apply a
per-channel affine map. One layout serves them all: ``x`` of shape (B, G, K, L), where each
(b, g) is one group of K*L values and channel ``c = g*K + k`` owns ``weight[c]``, ``bias[c]``:

* GroupNorm of (N, C, *S) with G groups:  (N, G, C/G, prod(S));
* InstanceNorm of (N, C, *S):             (N, C, 1, prod(S))  (one group per channel);
* LayerNorm over the last D values:       (M, 1, D, 1)        (weight is elementwise over D).

Forward, for one group of m = K*L values::

    mean = sum(x) / m,   var = sum((x - mean)^2) / m,   rstd = 1 / sqrt(var + eps)
    xhat = (x - mean) * rstd,   y = xhat * w_c + b_c

Backward (dy given): with ``dxhat = dy * w_c``, and since mean and rstd depend on every x of
the group,

    dx = rstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat))    (means over the group)
    dw_c = sum over (b, l) of dy * xhat,   db_c = sum over (b, l) of dy
"""
import numpy as np


def group_norm_forward(x, weight, bias, eps):
    """x (B, G, K, L); weight, bias (G*K,) or None. Returns (y, mean (B, G), rstd (B, G)) in float64."""
    x = np.asarray(x, np.float64)
    n_b, n_g, n_k, n_l = x.shape
    w = np.ones(n_g * n_k) if weight is None else np.asarray(weight, np.float64)
    b = np.zeros(n_g * n_k) if bias is None else np.asarray(bias, np.float64)
    y = np.empty_like(x)
    mean = np.empty((n_b, n_g))
    rstd = np.empty((n_b, n_g))
    m = n_k * n_l
    for i in range(n_b):
        for g in range(n_g):
            total = 0.0
            for k in range(n_k):
                for l in range(n_l):
                    total += x[i, g, k, l]
            mu = total / m
            squares = 0.0
            for k in range(n_k):
                for l in range(n_l):
                    squares += (x[i, g, k, l] - mu) ** 2
            r = 1.0 / np.sqrt(squares / m + eps)
            mean[i, g], rstd[i, g] = mu, r
            for k in range(n_k):
                c = g * n_k + k
                for l in range(n_l):
                    y[i, g, k, l] = (x[i, g, k, l] - mu) * r * w[c] + b[c]
    return y, mean, rstd


def group_norm_backward(dy, x, weight, mean, rstd):
    """Gradients (dx, dweight, dbias) of group_norm_forward, all float64."""
    dy = np.asarray(dy, np.float64)
    x = np.asarray(x, np.float64)
    n_b, n_g, n_k, n_l = x.shape
    w = np.ones(n_g * n_k) if weight is None else np.asarray(weight, np.float64)
    dx = np.empty_like(x)
    dw = np.zeros(n_g * n_k)
    db = np.zeros(n_g * n_k)
    m = n_k * n_l
    for i in range(n_b):
        for g in range(n_g):
            xhat = (x[i, g] - mean[i, g]) * rstd[i, g]        # (K, L)
            dxhat = dy[i, g] * w[g * n_k:(g + 1) * n_k, None]  # (K, L)
            mean_dxhat = dxhat.sum() / m
            mean_dxhat_xhat = (dxhat * xhat).sum() / m
            dx[i, g] = rstd[i, g] * (dxhat - mean_dxhat - xhat * mean_dxhat_xhat)
            for k in range(n_k):
                c = g * n_k + k
                dw[c] += (dy[i, g, k] * xhat[k]).sum()
                db[c] += dy[i, g, k].sum()
    return dx, dw, db


def layer_norm_forward(x, weight, bias, eps):
    """x (M, D) normalised over each row; weight, bias (D,) or None. Returns (y, mean (M,), rstd (M,))."""
    m, d = x.shape
    y, mean, rstd = group_norm_forward(np.reshape(x, (m, 1, d, 1)), weight, bias, eps)
    return y.reshape(m, d), mean[:, 0], rstd[:, 0]


def layer_norm_backward(dy, x, weight, mean, rstd):
    """Gradients (dx (M, D), dweight (D,), dbias (D,)) of layer_norm_forward."""
    m, d = x.shape
    dx, dw, db = group_norm_backward(np.reshape(dy, (m, 1, d, 1)), np.reshape(x, (m, 1, d, 1)), weight,
                                     np.reshape(mean, (m, 1)), np.reshape(rstd, (m, 1)))
    return dx.reshape(m, d), dw, db
