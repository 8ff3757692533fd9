"""The fused LSTM cell for the CPU (Numba): gates' nonlinearities and the new (h, c) in one pass.

The two GEMMs (``gi = x W_ih^T + b_ih``, ``gh = h W_hh^T + b_hh``, (B, 4H), gate order
i, f, g, o) are done outside; this pass reads them once, element by element, and writes h',
c', the activated gates and tanh(c') (what backward needs), instead of the dozen temporaries
the same step costs as separate array operations. The backward pass is fused likewise.
Formulas in ``kernels/reference/recurrent.py``.
"""

import math

import numpy as np
from numba import prange

from minidl.kernels.cpu import serialise_parallel_kernels
from minidl.kernels.cpu.jit import parallel_kernel


@parallel_kernel()
def _lstm_forward(gi, gh, c):
    n_b, four_h = gi.shape
    n_h = four_h // 4
    h_new = np.empty((n_b, n_h), gi.dtype)
    c_new = np.empty((n_b, n_h), gi.dtype)
    gates = np.empty((n_b, four_h), gi.dtype)
    tanh_c = np.empty((n_b, n_h), gi.dtype)
    for b in prange(n_b):
        for j in range(n_h):
            i = 1.0 / (1.0 + math.exp(-(gi[b, j] + gh[b, j])))
            f = 1.0 / (1.0 + math.exp(-(gi[b, n_h + j] + gh[b, n_h + j])))
            g = math.tanh(gi[b, 2 * n_h + j] + gh[b, 2 * n_h + j])
            o = 1.0 / (1.0 + math.exp(-(gi[b, 3 * n_h + j] + gh[b, 3 * n_h + j])))
            cn = f * c[b, j] + i * g
            tc = math.tanh(cn)
            c_new[b, j] = cn
            tanh_c[b, j] = tc
            h_new[b, j] = o * tc
            gates[b, j] = i
            gates[b, n_h + j] = f
            gates[b, 2 * n_h + j] = g
            gates[b, 3 * n_h + j] = o
    return h_new, c_new, gates, tanh_c


@parallel_kernel()
def _lstm_backward(dh, dc, gates, c, tanh_c):
    n_b, n_h = dh.shape
    d_pre = np.empty((n_b, 4 * n_h), gates.dtype)
    dc_prev = np.empty((n_b, n_h), gates.dtype)
    for b in prange(n_b):
        for j in range(n_h):
            i = gates[b, j]
            f = gates[b, n_h + j]
            g = gates[b, 2 * n_h + j]
            o = gates[b, 3 * n_h + j]
            tc = tanh_c[b, j]
            dc_total = dc[b, j] + dh[b, j] * o * (1.0 - tc * tc)
            d_pre[b, j] = dc_total * g * i * (1.0 - i)
            d_pre[b, n_h + j] = dc_total * c[b, j] * f * (1.0 - f)
            d_pre[b, 2 * n_h + j] = dc_total * i * (1.0 - g * g)
            d_pre[b, 3 * n_h + j] = dh[b, j] * tc * o * (1.0 - o)
            dc_prev[b, j] = dc_total * f
    return d_pre, dc_prev


def _float2d(a, dtype, name):
    a = np.ascontiguousarray(a, dtype=dtype)
    if a.ndim != 2:
        raise ValueError(f"{name} must be 2-D (B, *), got shape {a.shape}")
    return a


def lstm_cell_forward(gi, gh, c):
    """(h', c', gates, tanh_c') from the pre-activations gi, gh (B, 4H) and the cell state c (B, H)."""
    if gi.dtype not in (np.float32, np.float64):
        raise TypeError(f"gi must be float32 or float64, got {gi.dtype}")
    gi = _float2d(gi, gi.dtype, "gi")
    gh = _float2d(gh, gi.dtype, "gh")
    c = _float2d(c, gi.dtype, "c")
    if gi.shape != gh.shape or gi.shape[1] % 4 or c.shape != (gi.shape[0], gi.shape[1] // 4):
        raise ValueError(f"lstm_cell_forward: gi {gi.shape}, gh {gh.shape} must be (B, 4H) and c {c.shape} (B, H)")
    return _lstm_forward(gi, gh, c)


def lstm_cell_backward(dh, dc, gates, c, tanh_c):
    """(d_pre (B, 4H), dc_prev (B, H)): d_pre is the gradient of both gi and gh."""
    dt = gates.dtype
    return _lstm_backward(_float2d(dh, dt, "dh"), _float2d(dc, dt, "dc"), _float2d(gates, dt, "gates"),
                          _float2d(c, dt, "c"), _float2d(tanh_c, dt, "tanh_c"))


serialise_parallel_kernels(globals())
