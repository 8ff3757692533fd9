"""Fused row softmax over the last dimension for the CPU (Numba), forward and backward.

Attention normalises every row of its (batch * heads, L, S) score matrix. Written with
array operations the forward is four passes over the scores (max, subtract and exp, sum,
divide) and three temporaries; here each row is one thread's work in two passes (max, then
exp with a running sum, then a scale of the row in place), and the backward in two (the dot
product ``sum(g * y)``, then ``y * (g - dot)``). Sums are accumulated in float64 so that long
float32 rows do not lose precision. The input dtype (float32/float64) is kept.

The plain float64 version, with the derivation, is in ``kernels/reference/softmax.py``.

Example::

    >>> import numpy as np
    >>> y = softmax_forward(np.array([[0.0, 0.0], [0.0, np.log(3.0)]]))
    >>> y.round(3).tolist()
    [[0.5, 0.5], [0.25, 0.75]]
"""

import numpy as np
from numba import prange

from minidl.kernels.cpu import serialise_parallel_kernels
from minidl.kernels.cpu.jit import parallel_kernel


def _rows(x, name):
    """Validate a float32/float64 array of at least 1 dimension; return its contiguous (rows, n) view."""
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray, got {type(x).__name__}")
    if x.ndim == 0:
        raise ValueError(f"{name} must have at least 1 dimension, got a scalar")
    if x.dtype not in (np.float32, np.float64):
        raise TypeError(f"{name} must be float32 or float64, got {x.dtype}")
    n = x.shape[-1]
    rows = int(np.prod(x.shape[:-1], dtype=np.int64))
    return np.ascontiguousarray(x).reshape(rows, n)


@parallel_kernel(fastmath={"reassoc", "contract"})
def _softmax_rows(x, y, safe):
    """y[r] = exp(x[r] - max x[r]) / sum exp(x[r] - max x[r]), one row per thread (all -inf rows: 0 if safe)."""
    rows, n = x.shape
    for r in prange(rows):
        m = -np.inf
        for j in range(n):
            if x[r, j] > m:
                m = x[r, j]
        if safe and m == -np.inf:  # no key may be attended to: a zero row, not NaN
            for j in range(n):
                y[r, j] = 0.0
            continue
        total = 0.0  # float64 accumulator
        for j in range(n):
            e = np.exp(x[r, j] - m)
            y[r, j] = e
            total += e
        inv = 1.0 / total
        for j in range(n):
            y[r, j] = y[r, j] * inv


@parallel_kernel(fastmath={"reassoc", "contract"})
def _softmax_backward_rows(y, g, dx):
    """dx[r] = y[r] * (g[r] - sum(g[r] * y[r])), one row per thread."""
    rows, n = y.shape
    for r in prange(rows):
        dot = 0.0  # float64 accumulator
        for j in range(n):
            dot += g[r, j] * y[r, j]
        for j in range(n):
            dx[r, j] = y[r, j] * (g[r, j] - dot)


def softmax_forward(x, safe=False):
    """Softmax of ``x`` along its last dimension; same shape and dtype as ``x``.

    A row that is -inf everywhere gives NaN, as PyTorch's softmax, or zeros with ``safe=True``
    (PyTorch's ``_safe_softmax`` inside ``scaled_dot_product_attention``).
    """
    x2 = _rows(x, "x")
    y = np.empty_like(x2)
    if x2.size:
        _softmax_rows(x2, y, bool(safe))
    return y.reshape(x.shape)


def softmax_backward(y, g):
    """Gradient of the softmax input from its output ``y`` and the output gradient ``g``."""
    y2 = _rows(y, "y")
    g2 = _rows(np.asarray(g, dtype=y.dtype), "grad")
    if g2.shape != y2.shape:
        raise ValueError(f"grad must have the shape of y {y.shape}, got {np.shape(g)}")
    dx = np.empty_like(y2)
    if y2.size:
        _softmax_backward_rows(y2, g2, dx)
    return dx.reshape(y.shape)


serialise_parallel_kernels(globals())
