"""Float64 reference for the fused LSTM cell: the gates' nonlinearities and the new (h, c).

The two matrix products stay outside (they are GEMMs): ``gi = x W_ih^T + b_ih`` and
``gh = h W_hh^T + b_hh``, both (B, 4H) with PyTorch's gate order i, f, g, o. Then::

    a = gi + gh
    i = sigmoid(a_i),  f = sigmoid(a_f),  g = tanh(a_g),  o = sigmoid(a_o)
    c' = f * c + i * g
    h' = o * tanh(c')

Backward, given dh' and dc' (the gradient reaching c' from the next step)::

    dc_total = dc' + dh' * o * (1 - tanh(c')^2)
    do = dh' * tanh(c'),  di = dc_total * g,  dg = dc_total * i,  df = dc_total * c
    dc = dc_total * f
    da_i = di * i (1 - i),  da_f = df * f (1 - f),  da_g = dg * (1 - g^2),  da_o = do * o (1 - o)

``da`` is the gradient of both gi and gh (a = gi + gh).
"""
import numpy as np


def _sigmoid(v):
    return 1.0 / (1.0 + np.exp(-v))


def lstm_cell_forward(gi, gh, c):
    """(h', c', gates, tanh_c'): gates is (B, 4H) holding the activated i, f, g, o (kept for backward)."""
    gi, gh, c = (np.asarray(a, np.float64) for a in (gi, gh, c))
    n_b, four_h = gi.shape
    n_h = four_h // 4
    h_new = np.empty((n_b, n_h))
    c_new = np.empty((n_b, n_h))
    gates = np.empty((n_b, four_h))
    tanh_c = np.empty((n_b, n_h))
    for b in range(n_b):
        for j in range(n_h):
            i = _sigmoid(gi[b, j] + gh[b, j])
            f = _sigmoid(gi[b, n_h + j] + gh[b, n_h + j])
            g = np.tanh(gi[b, 2 * n_h + j] + gh[b, 2 * n_h + j])
            o = _sigmoid(gi[b, 3 * n_h + j] + gh[b, 3 * n_h + j])
            c_new[b, j] = f * c[b, j] + i * g
            tanh_c[b, j] = np.tanh(c_new[b, j])
            h_new[b, j] = o * tanh_c[b, j]
            gates[b, j], gates[b, n_h + j], gates[b, 2 * n_h + j], gates[b, 3 * n_h + j] = i, f, g, o
    return h_new, c_new, gates, tanh_c


def lstm_cell_backward(dh, dc, gates, c, tanh_c):
    """(d_pre (B, 4H), dc_prev (B, H)): d_pre is the gradient of gi and of gh."""
    dh, dc, gates, c, tanh_c = (np.asarray(a, np.float64) for a in (dh, dc, gates, c, tanh_c))
    n_b, n_h = dh.shape
    d_pre = np.empty((n_b, 4 * n_h))
    dc_prev = np.empty((n_b, n_h))
    for b in range(n_b):
        for j in range(n_h):
            i, f, g, o = gates[b, j], gates[b, n_h + j], gates[b, 2 * n_h + j], gates[b, 3 * n_h + j]
            dc_total = dc[b, j] + dh[b, j] * o * (1.0 - tanh_c[b, j] ** 2)
            d_pre[b, j] = dc_total * g * i * (1.0 - i)
            d_pre[b, n_h + j] = dc_total * c[b, j] * f * (1.0 - f)
            d_pre[b, 2 * n_h + j] = dc_total * i * (1.0 - g * g)
            d_pre[b, 3 * n_h + j] = dh[b, j] * tanh_c[b, j] * o * (1.0 - o)
            dc_prev[b, j] = dc_total * f
    return d_pre, dc_prev
