"""The LSTM cell on the GPU: the same entry points as ``kernels/cpu/recurrent.py``.

Written with CuPy element-wise array operations (formulas in
``kernels/reference/recurrent.py``); with NumPy arrays it runs on the CPU, which is how the
tests check it without a GPU.
"""
from __future__ import annotations

from minidl.kernels.cuda._backend import array_module


def _sigmoid(xp, v):
    return 1.0 / (1.0 + xp.exp(-v))


def lstm_cell_forward(gi, gh, c):
    """(h', c', gates, tanh_c') from the pre-activations gi, gh (B, 4H) and the cell state c (B, H)."""
    xp = array_module(gi)
    n_h = gi.shape[1] // 4
    a = gi + gh
    i = _sigmoid(xp, a[:, :n_h])
    f = _sigmoid(xp, a[:, n_h:2 * n_h])
    g = xp.tanh(a[:, 2 * n_h:3 * n_h])
    o = _sigmoid(xp, a[:, 3 * n_h:])
    c_new = f * c + i * g
    tanh_c = xp.tanh(c_new)
    return o * tanh_c, c_new, xp.concatenate([i, f, g, o], axis=1), tanh_c


def lstm_cell_backward(dh, dc, gates, c, tanh_c):
    """(d_pre (B, 4H), dc_prev (B, H)): d_pre is the gradient of both gi and gh."""
    xp = array_module(gates)
    n_h = dh.shape[1]
    i, f, g, o = (gates[:, k * n_h:(k + 1) * n_h] for k in range(4))
    dc_total = dc + dh * o * (1 - tanh_c * tanh_c)
    d_pre = xp.concatenate([dc_total * g * i * (1 - i), dc_total * c * f * (1 - f),
                            dc_total * i * (1 - g * g), dh * tanh_c * o * (1 - o)], axis=1)
    return d_pre, dc_total * f
