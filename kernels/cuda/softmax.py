"""CUDA fused row softmax over the last dimension, forward and backward.

Same entry points and semantics as ``kernels/cpu/softmax.py`` (derivation in
``kernels/reference/softmax.py``). One block per row: the threads of the block stride over
the row (coalesced loads), reduce its maximum, then the float64 sum of ``exp(x - max)``
(forward) or the dot product ``sum(g * y)`` (backward) in shared memory, and write the row.
"""
from __future__ import annotations

import math

import numpy as np
from numba import cuda, float64

from minidl.kernels.cuda._backend import array_module, contiguous, launch_reduce


def _rows(x, name):
    """Validate a float32/float64 array of at least 1 dimension; return its contiguous (rows, n) view."""
    if not hasattr(x, "ndim") or not hasattr(x, "dtype"):
        raise TypeError(f"{name} must be a cupy.ndarray (or numpy.ndarray under the simulator), "
                        f"got {type(x).__name__}")
    if x.ndim == 0:
        raise ValueError(f"{name} must have at least 1 dimension, got a scalar")
    if x.dtype not in (np.float32, np.float64):
        raise TypeError(f"{name} must be float32 or float64, got {x.dtype}")
    rows = int(np.prod(x.shape[:-1], dtype=np.int64))
    return contiguous(array_module(x), x).reshape(rows, x.shape[-1])


@cuda.jit(device=True)
def _block_reduce(buf, tid, threads, take_max):
    """Tree reduction of buf[:threads] in shared memory (max or sum); the result ends in buf[0]."""
    cuda.syncthreads()
    step = threads // 2
    while step > 0:
        if tid < step:
            if take_max:
                buf[tid] = max(buf[tid], buf[tid + step])
            else:
                buf[tid] += buf[tid + step]
        cuda.syncthreads()
        step //= 2


@cuda.jit(cache=True)
def _softmax_fwd(x, y, safe):
    """One block per row r: m = max x[r]; s = sum exp(x[r] - m); y[r] = exp(x[r] - m) / s (0 if safe and m = -inf)."""
    buf = cuda.shared.array(0, float64)
    r = cuda.blockIdx.x
    tid = cuda.threadIdx.x
    threads = cuda.blockDim.x
    n = x.shape[1]
    m = -math.inf
    for j in range(tid, n, threads):
        m = max(m, float64(x[r, j]))
    buf[tid] = m
    _block_reduce(buf, tid, threads, True)
    m = buf[0]
    cuda.syncthreads()
    if safe and m == -math.inf:  # every thread of the block takes this branch together
        for j in range(tid, n, threads):
            y[r, j] = 0.0
        return
    total = 0.0
    for j in range(tid, n, threads):
        total += math.exp(float64(x[r, j]) - m)
    buf[tid] = total
    _block_reduce(buf, tid, threads, False)
    inv = 1.0 / buf[0]
    for j in range(tid, n, threads):
        y[r, j] = math.exp(float64(x[r, j]) - m) * inv


@cuda.jit(cache=True)
def _softmax_bwd(y, g, dx):
    """One block per row r: dot = sum g[r] * y[r]; dx[r] = y[r] * (g[r] - dot)."""
    buf = cuda.shared.array(0, float64)
    r = cuda.blockIdx.x
    tid = cuda.threadIdx.x
    threads = cuda.blockDim.x
    n = y.shape[1]
    dot = 0.0
    for j in range(tid, n, threads):
        dot += float64(g[r, j]) * float64(y[r, j])
    buf[tid] = dot
    _block_reduce(buf, tid, threads, False)
    dot = buf[0]
    for j in range(tid, n, threads):
        dx[r, j] = y[r, j] * (g[r, j] - dot)


def softmax_forward(x, safe=False):
    """Softmax of ``x`` along its last dimension; same shape and dtype as ``x`` (``safe``: all -inf rows give 0)."""
    x2 = _rows(x, "x")
    y = array_module(x2).empty_like(x2)
    if x2.size:
        launch_reduce(_softmax_fwd, x2.shape[0], x2, y, bool(safe))
    return y.reshape(x.shape)


def softmax_backward(y, g):
    """Gradient of the softmax input from its output ``y`` and the output gradient ``g``."""
    y2 = _rows(y, "y")
    g2 = _rows(g.astype(y.dtype, copy=False), "grad")
    if g2.shape != y2.shape:
        raise ValueError(f"grad must have the shape of y {tuple(y.shape)}, got {tuple(g.shape)}")
    dx = array_module(y2).empty_like(y2)
    if y2.size:
        launch_reduce(_softmax_bwd, y2.shape[0], y2, g2, dx)
    return dx.reshape(y.shape)
