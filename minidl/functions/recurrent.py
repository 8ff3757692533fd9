"""The fused LSTM cell as an array-level Function.

One time step of an LSTM after its two matrix products: from the pre-activations
``gi = x W_ih^T + b_ih`` and ``gh = h W_hh^T + b_hh`` (B, 4H, gate order i, f, g, o) and the
cell state c (B, H), one kernel pass computes the gates and the new state (formulas in
``kernels/reference/recurrent.py``). Its output stacks the two results as (B, 2, H):
``out[:, 0]`` is h', ``out[:, 1]`` is c' (the Tensor floor has one output per Function). The
single-step GRU and RNN cells are composed from Tensor operations in ``minidl.nn.functional``.
:class:`LSTMLayer`, :class:`GRULayer` and :class:`RNNLayer` run a whole sequence (one direction
of one layer) in one node, with the backward through time written out.
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


def _sigmoid(xp, v):
    return 1.0 / (1.0 + xp.exp(-v))


class GRULayer(Function):
    """One direction of one GRU layer over a whole sequence, and its backward through time.

    Inputs as :class:`LSTMLayer` with 3H gates (r, z, n) and no cell state; the output is
    every step's h, (T, B, H). A step, with ``gh = h W_hh^T + b_hh``::

        r = sigmoid(gi_r + gh_r),  z = sigmoid(gi_z + gh_z),  n = tanh(gi_n + r * gh_n)
        h' = (1 - z) * n + z * h

    Its backward, given dh' (from the output and from the next step)::

        dn = dh' (1 - z),  dz = dh' (h - n),  da_n = dn (1 - n^2),  dr = da_n * gh_n
        dgi = [dr r (1 - r), dz z (1 - z), da_n],  dgh = [dr r (1 - r), dz z (1 - z), da_n * r]
        dh = dh' z + dgh W_hh,  dW_hh += dgh^T h,  db_hh += sum_b dgh
    """

    def forward(self, gi, h0, w_hh, b_hh=None, reverse=False):
        xp = self.xp
        blas = kernels_for(xp, "blas")
        steps, batch, _ = gi.shape
        hidden = h0.shape[1]
        order = range(steps - 1, -1, -1) if reverse else range(steps)
        out = xp.empty((steps, batch, hidden), gi.dtype)
        gates = xp.empty((steps, batch, 3 * hidden), gi.dtype)  # r, z, n of each step
        gh_n = xp.empty((steps, batch, hidden), gi.dtype)
        w_t = xp.ascontiguousarray(w_hh.T)
        h = xp.ascontiguousarray(h0)
        for t in order:
            gh = blas.matmul(h, w_t)
            if b_hh is not None:
                gh += b_hh
            r = _sigmoid(xp, gi[t, :, :hidden] + gh[:, :hidden])
            z = _sigmoid(xp, gi[t, :, hidden:2 * hidden] + gh[:, hidden:2 * hidden])
            n = xp.tanh(gi[t, :, 2 * hidden:] + r * gh[:, 2 * hidden:])
            h = n + z * (h - n)
            out[t] = h
            gates[t, :, :hidden], gates[t, :, hidden:2 * hidden], gates[t, :, 2 * hidden:] = r, z, n
            gh_n[t] = gh[:, 2 * hidden:]
        self.save_for_backward(h0, w_hh, gates, gh_n, out)
        self.options = (list(order), b_hh is not None)
        return out

    def backward(self, g):
        h0, w_hh, gates, gh_n, out = self.saved
        order, has_bias = self.options
        xp = self.xp
        blas = kernels_for(xp, "blas")
        hidden = h0.shape[1]
        dgi = xp.empty_like(gates)
        dw = xp.zeros_like(w_hh)
        db = xp.zeros(w_hh.shape[0], w_hh.dtype) if has_bias else None
        dh_next = xp.zeros_like(h0)
        w = xp.ascontiguousarray(w_hh)
        for k in range(len(order) - 1, -1, -1):
            t = order[k]
            h_prev = h0 if k == 0 else out[order[k - 1]]
            r, z, n = gates[t, :, :hidden], gates[t, :, hidden:2 * hidden], gates[t, :, 2 * hidden:]
            dh = g[t] + dh_next
            da_n = dh * (1 - z) * (1 - n * n)
            da_r = da_n * gh_n[t] * r * (1 - r)
            da_z = dh * (h_prev - n) * z * (1 - z)
            dgi[t] = xp.concatenate([da_r, da_z, da_n], axis=1)
            dgh = xp.concatenate([da_r, da_z, da_n * r], axis=1)
            dw += blas.matmul(xp.ascontiguousarray(dgh.T), xp.ascontiguousarray(h_prev))
            if has_bias:
                db += dgh.sum(axis=0)
            dh_next = dh * z + blas.matmul(dgh, w)
        return dgi, dh_next, dw, db


class RNNLayer(Function):
    """One direction of one Elman RNN layer over a sequence: h' = act(gi + h W_hh^T + b_hh), act tanh or relu.

    Backward: ``da = dh' * act'(h')`` (``1 - h'^2`` for tanh, ``h' > 0`` for relu), then
    ``dgi = da``, ``dW_hh += da^T h``, ``db_hh += sum_b da``, ``dh = da W_hh``.
    """

    def forward(self, gi, h0, w_hh, b_hh=None, nonlinearity="tanh", reverse=False):
        xp = self.xp
        blas = kernels_for(xp, "blas")
        steps = gi.shape[0]
        order = range(steps - 1, -1, -1) if reverse else range(steps)
        out = xp.empty((steps,) + h0.shape, gi.dtype)
        w_t = xp.ascontiguousarray(w_hh.T)
        h = xp.ascontiguousarray(h0)
        for t in order:
            a = gi[t] + blas.matmul(h, w_t)
            if b_hh is not None:
                a += b_hh
            h = xp.tanh(a) if nonlinearity == "tanh" else xp.maximum(a, 0)
            out[t] = h
        self.save_for_backward(h0, w_hh, out)
        self.options = (list(order), b_hh is not None, nonlinearity)
        return out

    def backward(self, g):
        h0, w_hh, out = self.saved
        order, has_bias, nonlinearity = self.options
        xp = self.xp
        blas = kernels_for(xp, "blas")
        dgi = xp.empty_like(out)
        dw = xp.zeros_like(w_hh)
        db = xp.zeros(w_hh.shape[0], w_hh.dtype) if has_bias else None
        dh_next = xp.zeros_like(h0)
        w = xp.ascontiguousarray(w_hh)
        for k in range(len(order) - 1, -1, -1):
            t = order[k]
            h_prev = h0 if k == 0 else out[order[k - 1]]
            dh = g[t] + dh_next
            da = dh * (1 - out[t] * out[t]) if nonlinearity == "tanh" else dh * (out[t] > 0)
            dgi[t] = da
            dw += blas.matmul(xp.ascontiguousarray(da.T), xp.ascontiguousarray(h_prev))
            if has_bias:
                db += da.sum(axis=0)
            dh_next = blas.matmul(xp.ascontiguousarray(da), w)
        return dgi, dh_next, dw, db
