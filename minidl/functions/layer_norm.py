"""Layer, group and instance normalisation as array-level Functions.

All three run the same fused kernels (``kernels/cpu/layer_norm.py``; the float64 reference
with the derivation is ``kernels/reference/layer_norm.py``) on a (B, G, K, L) view of the
input: every (b, g) is a group normalised to zero mean and unit biased variance, and channel
``g*K + k`` has its own weight and bias. Instance norm is group norm with one group per
channel (``minidl.nn.functional.instance_norm``).
"""
from __future__ import annotations

import math

from minidl.functions.function import Function


class GroupNorm(Function):
    """Group norm of x (N, C, *): C split into ``num_groups`` groups, each normalised over its channels and *."""

    kernel_family = "layer_norm"

    def forward(self, x, weight, bias, num_groups, eps=1e-5):
        n, c = x.shape[0], x.shape[1]
        length = math.prod(x.shape[2:])
        x4 = x.reshape(n, num_groups, c // num_groups, length)
        y, mean, rstd = self.kernels.group_norm_forward(x4, weight, bias, eps)
        self.save_for_backward(x4, weight, mean, rstd)  # xhat is recomputed from these in backward
        self.shape = x.shape
        return y.reshape(x.shape)

    def backward(self, g):
        x4, weight, mean, rstd = self.saved
        need = self.needs_input_grad
        need_affine = len(need) > 1 and (need[1] or need[2])
        gx, gw, gb = self.kernels.group_norm_backward(g.reshape(x4.shape), x4, weight, mean, rstd, need[0], need_affine)
        return (gx.reshape(self.shape) if gx is not None else None), gw, gb


class LayerNorm(Function):
    """Layer norm of x over its last ``normalized_ndim`` dimensions; weight and bias have those dimensions' shape."""

    kernel_family = "layer_norm"

    def forward(self, x, weight, bias, normalized_ndim, eps=1e-5):
        d = math.prod(x.shape[x.ndim - normalized_ndim:])
        x2 = x.reshape(-1, d) if d else x.reshape(math.prod(x.shape[:x.ndim - normalized_ndim]), 0)
        self.weight_shape = None if weight is None else weight.shape
        w = None if weight is None else weight.reshape(d)
        b = None if bias is None else bias.reshape(d)
        y, mean, rstd = self.kernels.layer_norm_forward(x2, w, b, eps)
        self.save_for_backward(x2, w, mean, rstd)
        self.shape = x.shape
        return y.reshape(x.shape)

    def backward(self, g):
        x2, w, mean, rstd = self.saved
        need = self.needs_input_grad
        need_affine = len(need) > 1 and (need[1] or need[2])
        gx, gw, gb = self.kernels.layer_norm_backward(g.reshape(x2.shape), x2, w, mean, rstd, need[0], need_affine)
        if gw is not None and self.weight_shape is not None:
            gw, gb = gw.reshape(self.weight_shape), gb.reshape(self.weight_shape)
        return (gx.reshape(self.shape) if gx is not None else None), gw, gb
