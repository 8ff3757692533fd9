"""Activation functions, softmax/log-softmax (with temperature) and dropout.

Each activation keeps either its input or its output for backward, whichever
gives the derivative more cheaply (said in a comment per op).
"""
from __future__ import annotations

import math

import numpy as np

from minidl.backend import get_array_module, kernels_for
from minidl.functions.function import Function


class ReLU(Function):
    def forward(self, x):
        out = self.xp.maximum(x, 0)
        self.save_for_backward(out)  # derivative is (out > 0)
        return out

    def backward(self, g):
        (out,) = self.saved
        return (g * (out > 0),)


class ReLU6(Function):
    def forward(self, x):
        self.save_for_backward(x)
        return self.xp.clip(x, 0, 6)

    def backward(self, g):
        (x,) = self.saved
        return (g * ((x > 0) & (x < 6)),)


class LeakyReLU(Function):
    def forward(self, x, negative_slope=0.01):
        self.save_for_backward(x)
        self.slope = negative_slope
        return self.xp.where(x > 0, x, x * negative_slope)

    def backward(self, g):
        (x,) = self.saved
        return (self.xp.where(x > 0, g, g * self.slope),)


class ELU(Function):
    """alpha * (exp(x) - 1) for x <= 0; ``scale`` turns it into SELU."""

    def forward(self, x, alpha=1.0, scale=1.0):
        xp = self.xp
        neg = alpha * xp.expm1(xp.minimum(x, 0))
        self.save_for_backward(x, neg)  # for x <= 0 the derivative is neg + alpha
        self.alpha, self.scale = alpha, scale
        return scale * xp.where(x > 0, x, neg)

    def backward(self, g):
        x, neg = self.saved
        xp = self.xp
        return (g * self.scale * xp.where(x > 0, 1, neg + self.alpha).astype(g.dtype),)


SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946


class Sigmoid(Function):
    kernel_family = "activation"  # float32 on the CPU: a vectorised exp (kernels/cpu/activation.py)

    def forward(self, x):
        out = self.kernels.sigmoid(x)
        self.save_for_backward(out)  # s' = s (1 - s)
        return out

    def backward(self, g):
        (s,) = self.saved
        return (self.kernels.sigmoid_backward(g, s),)


def _sigmoid(x):
    """1 / (1 + exp(-x)), split by sign so that exp never overflows (the activation kernels)."""
    return kernels_for(get_array_module(x), "activation").sigmoid(x)


class Tanh(Function):
    kernel_family = "activation"

    def forward(self, x):
        out = self.kernels.tanh(x)
        self.save_for_backward(out)  # tanh' = 1 - tanh^2
        return out

    def backward(self, g):
        (t,) = self.saved
        return (self.kernels.tanh_backward(g, t),)


class SiLU(Function):
    def forward(self, x):
        s = _sigmoid(x)
        self.save_for_backward(x, s)  # (x s)' = s (1 + x (1 - s))
        return x * s

    def backward(self, g):
        x, s = self.saved
        return (g * s * (1 + x * (1 - s)),)


class GELU(Function):
    """Exact GELU x * Phi(x), or the tanh approximation (``approximate="tanh"``)."""

    def forward(self, x, approximate="none"):
        xp = self.xp
        self.save_for_backward(x)
        self.approximate = approximate
        if approximate == "tanh":
            inner = math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)
            return 0.5 * x * (1 + xp.tanh(inner))
        return 0.5 * x * (1 + _erf(x / math.sqrt(2)))

    def backward(self, g):
        (x,) = self.saved
        xp = self.xp
        if self.approximate == "tanh":
            c = math.sqrt(2 / math.pi)
            inner = c * (x + 0.044715 * x ** 3)
            t = xp.tanh(inner)
            d = 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * c * (1 + 3 * 0.044715 * x * x)
            return (g * d,)
        cdf = 0.5 * (1 + _erf(x / math.sqrt(2)))
        pdf = xp.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)
        return (g * (cdf + x * pdf),)


def _erf(x):
    xp = get_array_module(x)
    if xp is np:
        from minidl.kernels.cpu.elementwise import erf

        return erf(x)
    import cupyx.scipy.special

    return cupyx.scipy.special.erf(x)


class Hardswish(Function):
    def forward(self, x):
        self.save_for_backward(x)
        return x * self.xp.clip(x + 3, 0, 6) / 6

    def backward(self, g):
        (x,) = self.saved
        xp = self.xp
        d = xp.where(x < -3, 0, xp.where(x > 3, 1, (2 * x + 3) / 6))
        return (g * d.astype(g.dtype),)


class Hardsigmoid(Function):
    def forward(self, x):
        self.save_for_backward(x)
        return self.xp.clip(x / 6 + 0.5, 0, 1)

    def backward(self, g):
        (x,) = self.saved
        return (g * ((x > -3) & (x < 3)) / 6,)


class Softplus(Function):
    """log(1 + exp(beta x)) / beta, linear above ``threshold`` (as PyTorch)."""

    def forward(self, x, beta=1.0, threshold=20.0):
        xp = self.xp
        self.save_for_backward(x)
        self.beta, self.threshold = beta, threshold
        bx = beta * x
        soft = (xp.maximum(bx, 0) + xp.log1p(xp.exp(-xp.abs(bx)))) / beta
        return xp.where(bx > threshold, x, soft)

    def backward(self, g):
        (x,) = self.saved
        bx = self.beta * x
        return (g * self.xp.where(bx > self.threshold, 1, _sigmoid(bx)).astype(g.dtype),)


class Softmax(Function):
    def forward(self, x, dim=-1, temperature=1.0):
        xp = self.xp
        z = x / temperature if temperature != 1.0 else x
        z = z - z.max(axis=dim, keepdims=True)
        e = xp.exp(z)
        out = e / e.sum(axis=dim, keepdims=True)
        self.save_for_backward(out)  # J^T g = s * (g - sum(g s)) / T
        self.dim, self.temperature = dim, temperature
        return out

    def backward(self, g):
        (s,) = self.saved
        return (s * (g - (g * s).sum(axis=self.dim, keepdims=True)) / self.temperature,)


class LogSoftmax(Function):
    def forward(self, x, dim=-1, temperature=1.0):
        xp = self.xp
        z = x / temperature if temperature != 1.0 else x
        z = z - z.max(axis=dim, keepdims=True)
        out = z - xp.log(xp.exp(z).sum(axis=dim, keepdims=True))
        self.save_for_backward(out)  # softmax = exp(out)
        self.dim, self.temperature = dim, temperature
        return out

    def backward(self, g):
        (out,) = self.saved
        xp = self.xp
        return ((g - xp.exp(out) * g.sum(axis=self.dim, keepdims=True)) / self.temperature,)


class MaskMultiply(Function):
    """Multiply by a fixed (non-differentiable) mask: dropout and dropout2d."""

    def forward(self, x, mask):
        self.save_for_backward(mask)
        return x * mask

    def backward(self, g):
        (mask,) = self.saved
        return (g * mask, None)


# ---- more activations (issue 15): celu, mish, hardtanh, logsigmoid, softsign, tanhshrink, shrinks
class CELU(Function):
    """max(0, x) + min(0, alpha * (exp(x / alpha) - 1))."""

    def forward(self, x, alpha=1.0):
        xp = self.xp
        if alpha == 0:
            raise ValueError("celu: alpha must not be 0")
        neg = alpha * xp.expm1(xp.minimum(x, 0) / alpha)
        self.save_for_backward(x, neg)  # for x <= 0 the derivative is exp(x / alpha) = neg / alpha + 1
        self.alpha = alpha
        return xp.where(x > 0, x, neg)

    def backward(self, g):
        x, neg = self.saved
        return (g * self.xp.where(x > 0, 1, neg / self.alpha + 1).astype(g.dtype),)


class Mish(Function):
    """x * tanh(softplus(x))."""

    def forward(self, x):
        xp = self.xp
        softplus = xp.maximum(x, 0) + xp.log1p(xp.exp(-xp.abs(x)))
        t = xp.tanh(softplus)
        self.save_for_backward(x, t)  # mish' = t + x * (1 - t^2) * sigmoid(x), as softplus' = sigmoid
        return x * t

    def backward(self, g):
        x, t = self.saved
        return (g * (t + x * (1 - t * t) * _sigmoid(x)),)


class Hardtanh(Function):
    """x clipped to [min_val, max_val]; the gradient passes strictly inside the interval."""

    def forward(self, x, min_val=-1.0, max_val=1.0):
        self.save_for_backward(x)
        self.bounds = (min_val, max_val)
        return self.xp.clip(x, min_val, max_val).astype(x.dtype, copy=False)

    def backward(self, g):
        (x,) = self.saved
        low, high = self.bounds
        return (g * ((x > low) & (x < high)),)


class LogSigmoid(Function):
    """log(sigmoid(x)) = min(x, 0) - log(1 + exp(-|x|)), stable for large |x|."""

    def forward(self, x):
        xp = self.xp
        self.save_for_backward(x)  # d/dx log sigmoid(x) = 1 - sigmoid(x) = sigmoid(-x)
        return xp.minimum(x, 0) - xp.log1p(xp.exp(-xp.abs(x)))

    def backward(self, g):
        (x,) = self.saved
        return (g * _sigmoid(-x),)


class Softsign(Function):
    """x / (1 + |x|)."""

    def forward(self, x):
        xp = self.xp
        denominator = 1 + xp.abs(x)
        self.save_for_backward(denominator)  # softsign' = 1 / (1 + |x|)^2
        return x / denominator

    def backward(self, g):
        (denominator,) = self.saved
        return (g / (denominator * denominator),)


class Tanhshrink(Function):
    """x - tanh(x)."""

    def forward(self, x):
        t = self.xp.tanh(x)
        self.save_for_backward(t)  # (x - tanh x)' = tanh^2 x
        return x - t

    def backward(self, g):
        (t,) = self.saved
        return (g * t * t,)


class Shrink(Function):
    """Hardshrink (x where |x| > lambd, else 0) or softshrink (x moved lambd towards 0, 0 inside)."""

    def forward(self, x, lambd=0.5, soft=False):
        xp = self.xp
        outside = xp.abs(x) > lambd
        self.save_for_backward(outside)  # the derivative is 1 outside [-lambd, lambd], 0 inside
        if soft:
            return xp.where(outside, x - xp.sign(x) * lambd, 0).astype(x.dtype, copy=False)
        return xp.where(outside, x, 0).astype(x.dtype, copy=False)

    def backward(self, g):
        (outside,) = self.saved
        return (g * outside,)
