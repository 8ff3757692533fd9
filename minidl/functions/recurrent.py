"""The fused LSTM cell as an array-level Function.

One time step of an LSTM after its two matrix products: from the pre-activations
``gi = x W_ih^T + b_ih`` and ``gh = h W_hh^T + b_hh`` (B, 4H, gate order i, f, g, o) and the
cell state c (B, H), one kernel pass computes the gates and the new state (formulas in
``kernels/reference/recurrent.py``). Its output stacks the two results as (B, 2, H):
``out[:, 0]`` is h', ``out[:, 1]`` is c' (the Tensor floor has one output per Function). The
other recurrences (RNN, GRU) are composed from Tensor operations in ``minidl.nn.functional``;
:class:`LSTMLayer` runs a whole sequence (one direction of one layer) in one node, with the
cell kernel at each step and its backward through time.
"""
from __future__ import annotations

from minidl.backend import kernels_for
from minidl.functions.function import Function


class LSTMCell(Function):
    kernel_family = "recurrent"

    def forward(self, gi, gh, c):
        h_new, c_new, gates, tanh_c = self.kernels.lstm_cell_forward(gi, gh, c)
        self.save_for_backward(gates, c, tanh_c)
        return self.xp.stack([h_new, c_new], axis=1)

    def backward(self, g):
        gates, c, tanh_c = self.saved
        d_pre, dc_prev = self.kernels.lstm_cell_backward(g[:, 0], g[:, 1], gates, c, tanh_c)
        return d_pre, d_pre.copy(), dc_prev  # gi and gh get the same gradient, in arrays of their own


class LSTMLayer(Function):
    """One direction of one LSTM layer over a whole sequence, and its backward through time.

    Inputs: ``gi`` (T, B, 4H), every step's input pre-activations ``x_t W_ih^T + b_ih`` (one
    GEMM, done by the caller); the initial state ``h0``, ``c0`` (B, H); ``w_hh`` (4H, H) and
    ``b_hh`` (4H,) or None. Each step is one GEMM ``h W_hh^T + b_hh`` and the fused cell kernel;
    ``reverse`` runs the steps from T-1 down to 0. The output holds every step's state, (T, B, 2H):
    ``out[t, :, :H]`` is h_t and ``out[t, :, H:]`` is c_t (so h_n and c_n are the last step's).

    Backward walks the steps in the opposite order, carrying dh and dc back in time::

        dh_t += g[t, :, :H],  dc_t += g[t, :, H:]
        d_pre, dc_{t-1} = cell backward(dh_t, dc_t)           (the kernel)
        dgi[t] = d_pre,  dW_hh += d_pre^T h_{t-1},  db_hh += sum_b d_pre,  dh_{t-1} = d_pre W_hh
    """

    kernel_family = "recurrent"

    def forward(self, gi, h0, c0, w_hh, b_hh=None, reverse=False):
        xp = self.xp
        blas = kernels_for(xp, "blas")
        steps, batch, _ = gi.shape
        hidden = h0.shape[1]
        order = range(steps - 1, -1, -1) if reverse else range(steps)
        out = xp.empty((steps, batch, 2 * hidden), gi.dtype)
        gates = xp.empty((steps, batch, 4 * hidden), gi.dtype)
        tanh_c = xp.empty((steps, batch, hidden), gi.dtype)
        w_t = xp.ascontiguousarray(w_hh.T)
        h, c = xp.ascontiguousarray(h0), xp.ascontiguousarray(c0)
        for t in order:
            gh = blas.matmul(h, w_t)
            if b_hh is not None:
                gh += b_hh
            h, c, gates[t], tanh_c[t] = self.kernels.lstm_cell_forward(gi[t], gh, c)
            out[t, :, :hidden], out[t, :, hidden:] = h, c
        self.save_for_backward(h0, c0, w_hh, gates, tanh_c, out)
        self.options = (list(order), b_hh is not None)
        return out

    def backward(self, g):
        h0, c0, w_hh, gates, tanh_c, out = self.saved
        order, has_bias = self.options
        xp = self.xp
        blas = kernels_for(xp, "blas")
        hidden = h0.shape[1]
        dgi = xp.empty_like(gates)
        dw = xp.zeros_like(w_hh)
        db = xp.zeros(w_hh.shape[0], w_hh.dtype) if has_bias else None
        dh_next = xp.zeros_like(h0)
        dc_next = xp.zeros_like(c0)
        w = xp.ascontiguousarray(w_hh)
        for k in range(len(order) - 1, -1, -1):
            t = order[k]
            h_prev, c_prev = (h0, c0) if k == 0 else (out[order[k - 1], :, :hidden], out[order[k - 1], :, hidden:])
            dh = g[t, :, :hidden] + dh_next
            dc = g[t, :, hidden:] + dc_next
            d_pre, dc_next = self.kernels.lstm_cell_backward(dh, dc, gates[t], c_prev, tanh_c[t])
            dgi[t] = d_pre
            dw += blas.matmul(xp.ascontiguousarray(d_pre.T), xp.ascontiguousarray(h_prev))
            if has_bias:
                db += d_pre.sum(axis=0)
            dh_next = blas.matmul(d_pre, w)
        return dgi, dh_next, dc_next, dw, db
