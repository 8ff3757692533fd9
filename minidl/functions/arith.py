"""Element-wise arithmetic and math, and matrix multiplication.

Each Function's backward sits under its forward. Broadcasting is handled once,
in the autograd engine, which sums a gradient back to its input's shape.
"""
from __future__ import annotations

import numpy as np

from minidl.functions.function import Function, unbroadcast


# ----------------------------------------------------------------------------- binary
class Add(Function):
    def forward(self, a, b):
        return a + b

    def backward(self, g):
        return g, g


class Sub(Function):
    def forward(self, a, b):
        return a - b

    def backward(self, g):
        return g, -g


class Mul(Function):
    def forward(self, a, b):
        # each factor is the other's derivative: keep only those a wanted gradient needs
        need_a, need_b = self.needs_input_grad[0], self.needs_input_grad[1]
        self.save_for_backward(a if need_b else None, b if need_a else None)
        return a * b

    def backward(self, g):
        a, b = self.saved
        return (g * b if self.needs_input_grad[0] else None,
                g * a if self.needs_input_grad[1] else None)


class Div(Function):
    def forward(self, a, b):
        self.save_for_backward(a if self.needs_input_grad[1] else None, b)  # a only for b's gradient
        return a / b

    def backward(self, g):
        a, b = self.saved
        ga = g / b if self.needs_input_grad[0] else None
        gb = -g * a / (b * b) if self.needs_input_grad[1] else None
        return ga, gb


class Pow(Function):
    """a ** b for tensors a and b (b may be a tensor too)."""

    def forward(self, a, b):
        with np.errstate(divide="ignore", invalid="ignore"):  # 0 ** -1 = inf, (-2) ** 0.5 = nan, as PyTorch
            out = a ** b
        self.save_for_backward(a, b, out)
        return out

    def backward(self, g):
        a, b, out = self.saved
        xp = self.xp
        ga = gb = None
        if self.needs_input_grad[0]:
            # b a^(b-1); 0 where b == 0 (a^0 is the constant 1, even at a = 0 or inf), as PyTorch
            with np.errstate(divide="ignore", invalid="ignore"):
                ga = xp.where(b == 0, 0, g * b * a ** (b - 1))
        if self.needs_input_grad[1]:
            # d(a^b)/db = a^b log a; 0 where a == 0 and b >= 0 (a^b is 0 or 1 there), as PyTorch;
            # nan for a negative base, -inf for 0 to a negative power
            with np.errstate(divide="ignore", invalid="ignore"):
                gb = xp.where((a == 0) & (b >= 0), 0, g * out * xp.log(a))
        return ga, gb


class PowScalar(Function):
    def forward(self, a, exponent):
        self.save_for_backward(a)
        self.exponent = exponent
        return a ** exponent

    def backward(self, g):
        (a,) = self.saved
        p = self.exponent
        if p == 0:
            return (self.xp.zeros_like(g),)
        with np.errstate(divide="ignore", invalid="ignore"):
            return (g * p * a ** (p - 1),)


class Maximum(Function):
    def forward(self, a, b):
        self.save_for_backward(a, b)
        return self.xp.maximum(a, b)

    def backward(self, g):
        a, b = self.saved
        # ties split the gradient evenly, as PyTorch
        pick_a = (a > b) + 0.5 * (a == b)
        return g * pick_a, g * (1 - pick_a)


class Minimum(Function):
    def forward(self, a, b):
        self.save_for_backward(a, b)
        return self.xp.minimum(a, b)

    def backward(self, g):
        a, b = self.saved
        pick_a = (a < b) + 0.5 * (a == b)
        return g * pick_a, g * (1 - pick_a)


class Where(Function):
    def forward(self, condition, a, b):
        self.save_for_backward(condition)
        return self.xp.where(condition, a, b)

    def backward(self, g):
        (condition,) = self.saved
        xp = self.xp
        zero = xp.zeros((), dtype=g.dtype)
        return None, xp.where(condition, g, zero), xp.where(condition, zero, g)


# ----------------------------------------------------------------------------- unary
class Neg(Function):
    def forward(self, a):
        return -a

    def backward(self, g):
        return (-g,)


class Exp(Function):
    def forward(self, a):
        out = self.xp.exp(a)
        self.save_for_backward(out)  # d exp = exp
        return out

    def backward(self, g):
        (out,) = self.saved
        return (g * out,)


class Log(Function):
    def forward(self, a):
        self.save_for_backward(a)
        return self.xp.log(a)

    def backward(self, g):
        (a,) = self.saved
        return (g / a,)


class Sqrt(Function):
    def forward(self, a):
        out = self.xp.sqrt(a)
        self.save_for_backward(out)
        return out

    def backward(self, g):
        (out,) = self.saved
        return (g / (2 * out),)


class Abs(Function):
    def forward(self, a):
        self.save_for_backward(a)
        return self.xp.abs(a)

    def backward(self, g):
        (a,) = self.saved
        return (g * self.xp.sign(a),)


class Clamp(Function):
    def forward(self, a, min=None, max=None):
        self.save_for_backward(a)
        self.bounds = (min, max)
        return self.xp.clip(a, min, max)

    def backward(self, g):
        (a,) = self.saved
        low, high = self.bounds
        mask = self.xp.ones((), dtype=bool)  # on a's device: CuPy refuses a NumPy operand
        if low is not None:
            mask = mask & (a >= low)
        if high is not None:
            mask = mask & (a <= high)
        return (g * mask,)


# ----------------------------------------------------------------------------- matmul
class MatMul(Function):
    """Batched, broadcasting matrix product with NumPy's rules for 1-D operands.

    2-D products go through the backend's ``blas`` kernels (on the CPU: single-threaded BLAS
    calls spread over minidl's threads, see ``kernels/cpu/blas.py``); the rest through ``@``.
    """

    kernel_family = "blas"

    def _mm(self, a, b):
        if a.ndim == 2 and b.ndim == 2:
            return self.kernels.matmul(a, b)
        return a @ b

    def forward(self, a, b):
        self.save_for_backward(a, b)
        return self._mm(a, b)

    def backward(self, g):
        a, b = self.saved
        xp = self.xp
        ga = gb = None
        if a.ndim == 1 and b.ndim == 1:  # dot product
            return g * b, g * a
        # Promote 1-D operands to matrices so one formula covers every case.
        a2 = a[None, :] if a.ndim == 1 else a
        b2 = b[:, None] if b.ndim == 1 else b
        g2 = g
        if a.ndim == 1:
            g2 = xp.expand_dims(g2, -2)
        if b.ndim == 1:
            g2 = xp.expand_dims(g2, -1)
        if self.needs_input_grad[0]:
            ga = self._mm(g2, xp.swapaxes(b2, -1, -2))
            if a.ndim == 1:
                ga = ga.reshape(ga.shape[:-2] + (ga.shape[-1],))
                ga = ga.sum(axis=tuple(range(ga.ndim - 1)))  # the batch dims (reshape(-1, 0) fails on size 0)
            else:
                ga = _sum_to(ga, a.shape)
        if self.needs_input_grad[1]:
            gb = self._mm(xp.swapaxes(a2, -1, -2), g2)
            if b.ndim == 1:
                gb = gb[..., 0]
                gb = gb.sum(axis=tuple(range(gb.ndim - 1)))
            else:
                gb = _sum_to(gb, b.shape)
        return ga, gb


def _sum_to(grad, shape):
    """Sum the broadcast batch dimensions of a matmul gradient back to ``shape``."""
    return unbroadcast(grad, shape)
