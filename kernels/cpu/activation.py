"""Element-wise tanh and sigmoid for the CPU: one vectorised pass each way, float32 in Numba.

NumPy's ``tanh`` and ``exp`` call libm once per element (no SIMD), ~18 ns each here: on
LeNet-5's activations that was a fifth of a training step. For float32 these kernels compute
``tanh`` and ``sigmoid`` from the vectorisable ``exp`` of ``kernels/cpu/vmath.py`` (within 3 ulp
of the exact value; NumPy's float32 ones are within 1.5), and the backward passes fuse
``g * (1 - t^2)`` and ``g * s (1 - s)`` into one loop without temporaries. float64 (the gradchecks) keeps NumPy's functions: the reference.

    forward   t = tanh(x)               s = 1 / (1 + exp(-x))
    backward  dx = g * (1 - t * t)      dx = g * s * (1 - s)

Large arrays are split into chunks over the threads; small ones run serially (a parallel
launch costs more than it saves below ~64k elements).
"""
import numpy as np
from numba import njit, prange

from minidl.kernels.cpu import serialise_parallel_kernels
from minidl.kernels.cpu.jit import parallel_kernel
from minidl.kernels.cpu.vmath import sigmoid_f32, tanh_f32

CHUNK = 1 << 14  # elements per parallel task
PARALLEL_MIN = 1 << 16  # below this many elements, the serial kernel
# fastmath "contract" only (fused multiply-adds): "reassoc" would undo exp_f32's split of ln 2.
# error_model="numpy": a checked division (raising ZeroDivisionError) would keep the loops scalar.
_ELEMENTWISE = dict(fastmath={"contract"}, error_model="numpy")


@njit(cache=True, inline="always")
def _span(t, n):
    lo = t * CHUNK
    return lo, min(lo + CHUNK, n)


@parallel_kernel(**_ELEMENTWISE)
def _tanh(x, out):
    xf, of = x.reshape(-1), out.reshape(-1)
    n = xf.shape[0]
    for t in prange((n + CHUNK - 1) // CHUNK):
        lo, hi = _span(t, n)
        for i in range(lo, hi):
            of[i] = tanh_f32(xf[i])


@parallel_kernel(**_ELEMENTWISE)
def _sigmoid(x, out):
    xf, of = x.reshape(-1), out.reshape(-1)
    n = xf.shape[0]
    for t in prange((n + CHUNK - 1) // CHUNK):
        lo, hi = _span(t, n)
        for i in range(lo, hi):
            of[i] = sigmoid_f32(xf[i])


@parallel_kernel(**_ELEMENTWISE)
def _tanh_backward(g, y, out):
    gf, yf, of = g.reshape(-1), y.reshape(-1), out.reshape(-1)
    n = gf.shape[0]
    for t in prange((n + CHUNK - 1) // CHUNK):
        lo, hi = _span(t, n)
        for i in range(lo, hi):
            of[i] = gf[i] * (np.float32(1.0) - yf[i] * yf[i])


@parallel_kernel(**_ELEMENTWISE)
def _sigmoid_backward(g, y, out):
    gf, yf, of = g.reshape(-1), y.reshape(-1), out.reshape(-1)
    n = gf.shape[0]
    for t in prange((n + CHUNK - 1) // CHUNK):
        lo, hi = _span(t, n)
        for i in range(lo, hi):
            of[i] = gf[i] * yf[i] * (np.float32(1.0) - yf[i])


def _run(kernel, *arrays):
    """``kernel(*arrays, out)`` on C-contiguous float32 arrays of one shape; returns ``out``.

    The kernels see flat views: one compiled version serves every shape (a 4-D and a 2-D
    activation would otherwise compile twice on a first run)."""
    shape = arrays[0].shape
    arrays = [np.ascontiguousarray(a).reshape(-1) for a in arrays]
    out = np.empty(arrays[0].shape, np.float32)
    (kernel.serial if out.size < PARALLEL_MIN else kernel)(*arrays, out)
    return out.reshape(shape)


def _fast(*arrays):
    """Whether the Numba kernels apply: float32 arrays of one shape (anything else: NumPy)."""
    shape = arrays[0].shape
    return all(a.dtype == np.float32 and a.shape == shape for a in arrays) and arrays[0].size > 0


def tanh(x):
    return _run(_tanh, x) if _fast(x) else np.tanh(x)


def tanh_backward(grad, y):
    """d/dx of tanh given its output ``y``: ``grad * (1 - y^2)``."""
    return _run(_tanh_backward, grad, y) if _fast(grad, y) else grad * (1 - y * y)


def sigmoid(x):
    if _fast(x):
        return _run(_sigmoid, x)
    e = np.exp(-np.abs(x))  # split by sign so that exp never overflows
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype, copy=False)


def sigmoid_backward(grad, y):
    """d/dx of the sigmoid given its output ``y``: ``grad * y * (1 - y)``."""
    return _run(_sigmoid_backward, grad, y) if _fast(grad, y) else grad * y * (1 - y)


serialise_parallel_kernels(globals())
