"""Batch normalisation and local response normalisation as array-level Functions.

Kernels in ``kernels/cpu/norm.py``; the float64 reference is ``kernels/reference/norm.py``;
the running-statistics update and the argument checks are in ``minidl.nn.functional.batch_norm``.
"""
from __future__ import annotations

from minidl.functions.function import Function

# Activations that can be fused into a batch norm (kernels/cpu/norm.py has the same numbers).
ACT_NONE, ACT_RELU, ACT_RELU6 = 0, 1, 2


class BatchNorm(Function):
    """What the two batch-norm Functions share: an activation fused onto the output.

    ``fuse_activation(y, act)`` (called by ``F.relu(..., inplace=True)`` on this node's output
    ``y``) clamps y in place and makes backward mask the incoming gradient by the activation's
    derivative at y: the node then computes BN followed by ReLU/ReLU6, with no extra tensor.
    """

    act = ACT_NONE

    def fuse_activation(self, y, act):
        if self.act != ACT_NONE or not hasattr(self.kernels, "activation_inplace") or not y.flags.c_contiguous:
            return False
        self.kernels.activation_inplace(y, act)
        self.act = act
        if self.saved is not None:
            self.saved = (*self.saved, y)  # the activated output, freed with the other saved arrays
        return True

    def mask(self, g):
        """g times the fused activation's derivative (for paths without a fused kernel)."""
        y = self.saved[-1]
        if self.act == ACT_RELU:
            return g * (y > 0)
        if self.act == ACT_RELU6:
            return g * ((y > 0) & (y < 6))
        return g


class BatchNormTrain(BatchNorm):
    """Normalise with the batch statistics (biased variance); returns y, and the statistics via attributes."""

    kernel_family = "norm"

    def forward(self, x, weight, bias, eps=1e-5):
        y, mean, invstd, var = self.kernels.batch_norm_train_forward(x, weight, bias, eps)
        self.save_for_backward(x, weight, mean, invstd)  # x-hat is recomputed from these in backward
        self.batch_mean, self.batch_var = mean, var
        return y

    def backward(self, g):
        x, weight, mean, invstd = self.saved[:4]
        fused = {} if self.act == ACT_NONE else {"y": self.saved[4], "act": self.act}
        gx, gw, gb = self.kernels.batch_norm_backward(
            g, x, weight, mean, invstd, self.needs_input_grad[0],
            len(self.needs_input_grad) > 1 and (self.needs_input_grad[1] or self.needs_input_grad[2]), **fused)
        return gx, gw, gb


class BatchNormEval(BatchNorm):
    """y = (x - running_mean) / sqrt(running_var + eps) * weight + bias: an affine map per channel."""

    kernel_family = "norm"

    def forward(self, x, weight, bias, running_mean, running_var, eps=1e-5):
        self.scale = 1.0 / self.xp.sqrt(running_var.astype(x.dtype) + eps)  # per-channel scale (C,)
        self.save_for_backward(x, weight)
        self.running_mean = running_mean
        return self.kernels.batch_norm_eval_forward(x, running_mean, running_var, weight, bias, eps)

    def backward(self, g):
        x, weight = self.saved[:2]
        g = self.mask(g)
        shape = (1, -1) + (1,) * (x.ndim - 2)
        scale = self.scale.reshape(shape)
        axes = (0,) + tuple(range(2, x.ndim))
        gx = gw = gb = None
        if self.needs_input_grad[0]:
            gx = g * scale * (weight.reshape(shape) if weight is not None else 1)
        if len(self.needs_input_grad) > 1 and self.needs_input_grad[1]:
            gw = (g * (x - self.running_mean.reshape(shape)) * scale).sum(axis=axes)
        if len(self.needs_input_grad) > 2 and self.needs_input_grad[2]:
            gb = g.sum(axis=axes)
        return gx, gw, gb


class LocalResponseNorm(Function):
    kernel_family = "norm"

    def forward(self, x, size, alpha, beta, k):
        y, scale = self.kernels.local_response_norm_forward(x, size, alpha, beta, k)
        self.save_for_backward(x, y, scale)
        self.options = (size, alpha, beta, k)
        return y

    def backward(self, g):
        x, y, scale = self.saved
        return (self.kernels.local_response_norm_backward(g, x, y, scale, *self.options),)
