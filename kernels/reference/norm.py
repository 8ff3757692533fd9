"""Reference normalisation in plain float64 NumPy: the textbook version and the test oracle.

Batch normalisation (Ioffe & Szegedy, 2015)
-------------------------------------------
For one channel with M values x_i (over N, H, W) the training forward is

    mean   = (1/M) sum_i x_i
    var    = (1/M) sum_i (x_i - mean)^2          (biased: divide by M)
    invstd = 1 / sqrt(var + eps)
    xhat_i = (x_i - mean) * invstd
    y_i    = weight * xhat_i + bias

The forward normalises with the *biased* variance because that is the variance of the
batch actually seen. The running estimate that replaces the batch statistics at
inference should estimate the variance of the population, so it is updated with the
*unbiased* variance var * M / (M - 1) (Bessel's correction), as PyTorch does.

Backward. Write g_i = dL/dy_i. Then dL/dbias = sum g_i and dL/dweight = sum g_i xhat_i.
For the input, every x_j moves y_j directly and also every y_i through mean and var:

    dxhat_i/dx_j = invstd * ([i == j] - 1/M - xhat_i * xhat_j / M)

(the -1/M from the mean, the last term from d invstd/dx_j = -invstd^3 (x_j - mean)/M).
Summing g_i * weight * dxhat_i/dx_j over i gives the compact formula

    dL/dx_j = weight * invstd * (g_j - mean(g) - xhat_j * mean(g * xhat)).

Local response normalisation (Krizhevsky et al., 2012), PyTorch's form
-----------------------------------------------------------------------
    scale_c = k + alpha/size * sum_{j = c - size//2}^{c + (size-1)//2} x_j^2
    y_c     = x_c * scale_c^(-beta)

and its gradient dL/dx_j = g_j scale_j^(-beta) - 2 alpha beta / size * x_j
* sum_{i : j in window(i)} g_i y_i / scale_i.
"""

import numpy as np


def _ncl(x):
    """View (N, C) or (N, C, H, W) as float64 (N, C, L)."""
    x = np.asarray(x, dtype=np.float64)
    return x.reshape(x.shape[0], x.shape[1], -1)


def batch_norm_train_forward(x, weight, bias, eps):
    """Returns (y, mean, invstd, var_biased) with batch statistics, as in the module docstring."""
    x3 = _ncl(x)
    mean = x3.mean(axis=(0, 2))
    var = ((x3 - mean[None, :, None]) ** 2).mean(axis=(0, 2))
    invstd = 1.0 / np.sqrt(var + eps)
    xhat = (x3 - mean[None, :, None]) * invstd[None, :, None]
    w = np.ones_like(mean) if weight is None else np.asarray(weight, np.float64)
    b = np.zeros_like(mean) if bias is None else np.asarray(bias, np.float64)
    y = xhat * w[None, :, None] + b[None, :, None]
    return y.reshape(np.shape(x)), mean, invstd, var


def batch_norm_eval_forward(x, running_mean, running_var, weight, bias, eps):
    """y = (x - running_mean) / sqrt(running_var + eps) * weight + bias."""
    x3 = _ncl(x)
    c = x3.shape[1]
    w = np.ones(c) if weight is None else np.asarray(weight, np.float64)
    b = np.zeros(c) if bias is None else np.asarray(bias, np.float64)
    rm = np.asarray(running_mean, np.float64)[None, :, None]
    rv = np.asarray(running_var, np.float64)[None, :, None]
    y = (x3 - rm) / np.sqrt(rv + eps) * w[None, :, None] + b[None, :, None]
    return y.reshape(np.shape(x))


def batch_norm_backward(grad_out, x, weight, mean, invstd, needs_input_grad=True, needs_weight_grad=True):
    """Training-mode backward: dx = w * invstd * (g - mean(g) - xhat * mean(g * xhat))."""
    x3 = _ncl(x)
    g = _ncl(grad_out)
    mean = np.asarray(mean, np.float64)[None, :, None]
    invstd = np.asarray(invstd, np.float64)[None, :, None]
    xhat = (x3 - mean) * invstd
    w = np.ones(x3.shape[1]) if weight is None else np.asarray(weight, np.float64)
    grad_x = grad_weight = grad_bias = None
    if needs_input_grad:
        grad_x = w[None, :, None] * invstd * (
            g - g.mean(axis=(0, 2), keepdims=True) - xhat * (g * xhat).mean(axis=(0, 2), keepdims=True)
        )
        grad_x = grad_x.reshape(np.shape(x))
    if needs_weight_grad and weight is not None:
        grad_weight = (g * xhat).sum(axis=(0, 2))
        grad_bias = g.sum(axis=(0, 2))
    return grad_x, grad_weight, grad_bias


def local_response_norm_forward(x, size, alpha=1e-4, beta=0.75, k=1.0):
    """Loop over channels summing the squares of the window; returns (y, scale)."""
    x = np.asarray(x, dtype=np.float64)
    c = x.shape[1]
    scale = np.empty_like(x)
    for ch in range(c):
        lo, hi = max(ch - size // 2, 0), min(ch + (size - 1) // 2, c - 1)
        scale[:, ch] = k + alpha / size * (x[:, lo:hi + 1] ** 2).sum(axis=1)
    return x * scale ** (-beta), scale


def local_response_norm_backward(grad_out, x, y, scale, size, alpha, beta, k):
    """Chain rule through y_i = x_i * scale_i^-beta, where scale_i depends on the window of i."""
    x = np.asarray(x, dtype=np.float64)
    g = np.asarray(grad_out, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    scale = np.asarray(scale, dtype=np.float64)
    c = x.shape[1]
    grad_x = g * scale ** (-beta)
    # d y_i / d scale_i = -beta * y_i / scale_i, and d scale_i / d x_j = 2 alpha/size * x_j for j in window(i)
    t = g * y / scale
    for i in range(c):
        lo, hi = max(i - size // 2, 0), min(i + (size - 1) // 2, c - 1)
        grad_x[:, lo:hi + 1] -= 2.0 * alpha * beta / size * x[:, lo:hi + 1] * t[:, i:i + 1]
    return grad_x
