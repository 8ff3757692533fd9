"""Reference softmax cross-entropy in plain float64 NumPy: the textbook and the test oracle.

Softmax and its logarithm. ``p_c = exp(z_c) / sum_k exp(z_k)``, so
``log p_c = z_c - lse`` with ``lse = log sum_k exp(z_k)``. Computing exp(z) directly
overflows for z ~ 1e3 (float64) or ~ 89 (float32). The log-sum-exp trick subtracts the
row maximum m first, which changes nothing mathematically::

    lse = m + log sum_k exp(z_k - m)

Every exponent is now <= 0 and the largest term is exactly 1, so the sum lies in
[1, C]: no overflow, no log(0).

Cross-entropy with class weights w and label smoothing ls (PyTorch's definition). The
target distribution is (1 - ls) * onehot(y) + ls / C * uniform, each class weighted by w::

    loss_i = -(1 - ls) * w_{y_i} * log p_{y_i}  -  ls / C * sum_c w_c * log p_c

and loss_i = 0 for samples whose target equals ``ignore_index``. The gradient follows
from d log p_c / d z_k = [c == k] - p_k::

    d loss_i / d z_k = (1 - ls) * w_{y_i} * (p_k - [k == y_i]) + ls / C * (p_k * sum_c w_c - w_k)
"""

import numpy as np


def log_softmax(z):
    """Row-wise log-softmax with the log-sum-exp trick; returns (log_p, lse)."""
    z = np.asarray(z, dtype=np.float64)
    m = z.max(axis=1, keepdims=True)
    lse = m + np.log(np.exp(z - m).sum(axis=1, keepdims=True))
    return z - lse, lse[:, 0]


def softmax_cross_entropy_forward(logits, target, weight, ignore_index, label_smoothing):
    """Returns (loss_per_sample, lse, sample_weight); sample_weight_i = w_{y_i}, 0 if ignored."""
    log_p, lse = log_softmax(logits)
    n, c = log_p.shape
    w = np.ones(c) if weight is None else np.asarray(weight, np.float64)
    loss = np.zeros(n)
    sample_weight = np.zeros(n)
    for i in range(n):
        y = int(target[i])
        if y == ignore_index:
            continue
        nll = -log_p[i, y]
        smooth = -(w * log_p[i]).sum()
        loss[i] = (1 - label_smoothing) * w[y] * nll + label_smoothing / c * smooth
        sample_weight[i] = w[y]
    return loss, lse, sample_weight


def softmax_cross_entropy_backward(logits, lse, target, weight, ignore_index, label_smoothing, grad_loss_per_sample):
    """Gradient with respect to the logits, row by row from the formula in the module docstring."""
    z = np.asarray(logits, dtype=np.float64)
    n, c = z.shape
    w = np.ones(c) if weight is None else np.asarray(weight, np.float64)
    g = np.broadcast_to(np.asarray(grad_loss_per_sample, np.float64), (n,))
    grad = np.zeros((n, c))
    for i in range(n):
        y = int(target[i])
        if y == ignore_index:
            continue
        p = np.exp(z[i] - lse[i])
        onehot = np.zeros(c)
        onehot[y] = 1.0
        row = (1 - label_smoothing) * w[y] * (p - onehot) + label_smoothing / c * (p * w.sum() - w)
        grad[i] = g[i] * row
    return grad
