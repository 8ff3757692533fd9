"""The fused LSTM cell as an array-level Function.

One time step of an LSTM after its two matrix products: from the pre-activations
``gi = x W_ih^T + b_ih`` and ``gh = h W_hh^T + b_hh`` (B, 4H, gate order i, f, g, o) and the
cell state c (B, H), one kernel pass computes the gates and the new state (formulas in
``kernels/reference/recurrent.py``). Its output stacks the two results as (B, 2, H):
``out[:, 0]`` is h', ``out[:, 1]`` is c' (the Tensor floor has one output per Function). The
other recurrences (RNN, GRU) are composed from Tensor operations in ``minidl.nn.functional``.
"""
from __future__ import annotations

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
