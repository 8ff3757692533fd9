"""Scaled dot-product attention as one array-level Function (Vaswani et al. 2017).

With query q (..., Hq, L, E), key k (..., H, S, E) and value v (..., H, S, Ev)::

    s = q @ k^T * scale + bias        (..., Hq, L, S)   bias: the float mask, -inf where masked
    p = softmax(s, axis=-1)
    y = (p * drop) @ v                 (..., Hq, L, Ev)  drop: the dropout mask, 0 or 1 / (1 - dropout_p)

With grouped-query attention (Hq = H * r) each key/value head serves r consecutive query
heads (head h of q reads head h // r of k and v).

Backward, given gy::

    gv = (p * drop)^T @ gy
    gp = (gy @ v^T) * drop
    gs = p * (gp - sum(gp * p, axis=-1))        the softmax's Jacobian-vector product
    gq = gs @ k * scale,   gk = gs^T @ q * scale,   gbias = gs (summed where bias was broadcast)

and the r query heads' gradients of a shared key/value head are summed. A query whose keys
are all masked gets all-zero weights (an all-zero output row), as PyTorch.
"""
from __future__ import annotations

from minidl.functions.function import Function, unbroadcast


class ScaledDotProductAttention(Function):
    """y = softmax(q k^T * scale + bias) v; ``bias`` (or None) may be broadcast to (..., Hq, L, S).

    The softmax and its backward are the fused row kernels of ``kernels/*/softmax.py`` (the ones
    nn.MultiheadAttention uses), in their ``safe`` form: a row masked everywhere gives zeros.
    """

    kernel_family = "softmax"

    def forward(self, q, k, v, bias, scale, drop=None):
        xp = self.xp
        self.shapes = (q.shape, k.shape, v.shape)  # batch dimensions may broadcast
        self.repeats = q.shape[-3] // k.shape[-3] if q.ndim >= 3 and k.ndim >= 3 else 1
        if self.repeats > 1:  # grouped-query attention: repeat each key/value head for its query heads
            k = xp.repeat(k, self.repeats, axis=-3)
            v = xp.repeat(v, self.repeats, axis=-3)
        s = (q @ xp.swapaxes(k, -1, -2)) * scale
        if bias is not None:
            s = s + bias
        p = self.kernels.softmax_forward(xp.ascontiguousarray(s), True)  # all keys masked: weights 0, as PyTorch
        pd = p if drop is None else p * drop
        self.scale = scale
        self.bias_shape = None if bias is None else bias.shape
        self.save_for_backward(q, k, v, p, drop)
        return pd @ v

    def backward(self, g):
        xp = self.xp
        q, k, v, p, drop = self.saved
        pd = p if drop is None else p * drop
        gv = xp.swapaxes(pd, -1, -2) @ g
        gp = g @ xp.swapaxes(v, -1, -2)
        if drop is not None:
            gp = gp * drop
        gs = self.kernels.softmax_backward(p, xp.ascontiguousarray(gp))  # p * (gp - sum(gp * p))
        gq = (gs @ k) * self.scale
        gk = (xp.swapaxes(gs, -1, -2) @ q) * self.scale
        if self.repeats > 1:  # sum the query heads that shared a key/value head
            shape = gk.shape[:-3] + (gk.shape[-3] // self.repeats, self.repeats) + gk.shape[-2:]
            gk = gk.reshape(shape).sum(axis=-3)
            gv = gv.reshape(gv.shape[:-3] + (shape[-4], self.repeats) + gv.shape[-2:]).sum(axis=-3)
        gq, gk, gv = (unbroadcast(a, shape) for a, shape in zip((gq, gk, gv), self.shapes))
        gbias = None if self.bias_shape is None else unbroadcast(gs, self.bias_shape)
        return gq, gk, gv, gbias
