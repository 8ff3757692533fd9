"""Embedding lookup as an array-level Function: rows of a weight table picked by integer indices.

Forward is fancy indexing, ``weight[indices]``: indices of any shape (*) give (*, D).
Backward scatters the incoming gradient back onto the rows it came from, adding where an
index repeats: ``dweight[idx] += grad`` (``add.at``, which, unlike ``dweight[idx] += grad``,
does accumulate repeated indices). The row ``padding_idx`` gets no gradient, and with
``scale_grad_by_freq`` each row's gradient is divided by how often its index occurs.
"""
from __future__ import annotations

import numpy as np

from minidl.backend import scatter_add
from minidl.functions.function import Function


class Embedding(Function):
    def forward(self, weight, indices, padding_idx=None, scale_grad_by_freq=False):
        self.save_for_backward(indices)  # only the indices: the table's values are not needed for backward
        self.options = (weight.shape, weight.dtype, padding_idx, scale_grad_by_freq)
        return weight[indices]

    def backward(self, g):
        (indices,) = self.saved
        shape, dtype, padding_idx, scale_grad_by_freq = self.options
        xp = self.xp
        flat = indices.reshape(-1)
        rows = g.reshape(-1, shape[1])
        if scale_grad_by_freq:
            counts = xp.bincount(flat, minlength=shape[0])
            rows = rows / counts[flat][:, None].astype(dtype)
        grad = xp.zeros(shape, dtype)
        if xp is np:
            # rows of the same index summed in one pass (np.add.at is an unbuffered loop, ~10x slower):
            # sort the indices, then add each run of equal indices with add.reduceat
            order = np.argsort(flat, kind="stable")
            used, starts = np.unique(flat[order], return_index=True)
            if used.size:
                grad[used] = np.add.reduceat(rows[order], starts, axis=0)
        else:
            scatter_add(xp, grad, flat, rows)
        if padding_idx is not None:
            grad[padding_idx] = 0
        return grad, None
