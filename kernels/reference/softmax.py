"""Reference row softmax over the last dimension in plain float64 NumPy: the textbook and the test oracle.

For one row z_1..z_n (the scores of one query against n keys in attention):

    m   = max_j z_j                  (subtracted so that exp never overflows; softmax is unchanged)
    y_i = exp(z_i - m) / sum_j exp(z_j - m)

A score of -inf (a masked key) gives y_i = 0; a row that is -inf everywhere has no
defined softmax and gives NaN, as in PyTorch's softmax; with ``safe=True`` it gives zeros
instead (PyTorch's ``_safe_softmax``, which ``scaled_dot_product_attention`` uses: a query
that may attend to no key gets a zero output, and a zero gradient).

Backward. dy_i/dz_j = y_i ([i == j] - y_j), so with g_i = dL/dy_i

    dL/dz_j = sum_i g_i y_i ([i == j] - y_j) = y_j (g_j - sum_i g_i y_i),

one dot product per row and one element-wise pass: only the output y is needed.
"""

import numpy as np


def softmax_forward(x, safe=False):
    """Softmax of ``x`` along its last dimension, in float64 (``safe``: all -inf rows give zeros, not NaN)."""
    z = np.asarray(x, dtype=np.float64)
    m = z.max(axis=-1, keepdims=True)
    with np.errstate(invalid="ignore"):  # -inf - -inf in a fully masked row
        e = np.exp(z - m)
        y = e / e.sum(axis=-1, keepdims=True)
    if safe:
        y = np.where(m == -np.inf, 0.0, y)
    return y


def softmax_backward(y, g):
    """dL/dz = y * (g - sum(g * y)) along the last dimension, in float64."""
    y = np.asarray(y, dtype=np.float64)
    g = np.asarray(g, dtype=np.float64)
    return y * (g - (g * y).sum(axis=-1, keepdims=True))
