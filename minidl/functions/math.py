"""Element-wise math beyond arith.py: trigonometry, exp/log variants, rounding, division modes,
and a few reductions (prod, logsumexp, norms, singular values).

Each Function's backward is written out under its forward. Ops that are piecewise constant
(ceil, floor, round, trunc, sign, floor division) have a zero gradient, as in PyTorch.
"""
from __future__ import annotations

import math

import numpy as np

from minidl.backend import get_array_module
from minidl.functions.function import Function
from minidl.functions.reduce import normalize_dims


def _quiet():
    """Silence NumPy's divide/invalid warnings: inf and nan are valid results here, as in PyTorch."""
    return np.errstate(divide="ignore", invalid="ignore", over="ignore")


# ----------------------------------------------------------------------------- trigonometry
class Sin(Function):
    def forward(self, a):
        self.save_for_backward(a)
        return self.xp.sin(a)

    def backward(self, g):
        (a,) = self.saved
        return (g * self.xp.cos(a),)  # d sin = cos


class Cos(Function):
    def forward(self, a):
        self.save_for_backward(a)
        return self.xp.cos(a)

    def backward(self, g):
        (a,) = self.saved
        return (-g * self.xp.sin(a),)  # d cos = -sin


class Tan(Function):
    def forward(self, a):
        out = self.xp.tan(a)
        self.save_for_backward(out)
        return out

    def backward(self, g):
        (out,) = self.saved
        return (g * (1 + out * out),)  # d tan = 1 + tan^2


class Asin(Function):
    def forward(self, a):
        self.save_for_backward(a)
        with _quiet():
            return self.xp.arcsin(a)

    def backward(self, g):
        (a,) = self.saved
        with _quiet():
            return (g / self.xp.sqrt(1 - a * a),)  # d asin = 1 / sqrt(1 - x^2)


class Acos(Function):
    def forward(self, a):
        self.save_for_backward(a)
        with _quiet():
            return self.xp.arccos(a)

    def backward(self, g):
        (a,) = self.saved
        with _quiet():
            return (-g / self.xp.sqrt(1 - a * a),)  # d acos = -1 / sqrt(1 - x^2)


class Atan(Function):
    def forward(self, a):
        self.save_for_backward(a)
        return self.xp.arctan(a)

    def backward(self, g):
        (a,) = self.saved
        return (g / (1 + a * a),)  # d atan = 1 / (1 + x^2)


class Atan2(Function):
    """atan2(a, b): the angle of the point (b, a)."""

    def forward(self, a, b):
        self.save_for_backward(a, b)
        return self.xp.arctan2(a, b)

    def backward(self, g):
        a, b = self.saved
        with _quiet():
            r2 = a * a + b * b  # d/da = b / (a^2 + b^2), d/db = -a / (a^2 + b^2)
            return g * b / r2, -g * a / r2


class Sinh(Function):
    def forward(self, a):
        self.save_for_backward(a)
        with _quiet():
            return self.xp.sinh(a)

    def backward(self, g):
        (a,) = self.saved
        with _quiet():
            return (g * self.xp.cosh(a),)


class Cosh(Function):
    def forward(self, a):
        self.save_for_backward(a)
        with _quiet():
            return self.xp.cosh(a)

    def backward(self, g):
        (a,) = self.saved
        with _quiet():
            return (g * self.xp.sinh(a),)


class Asinh(Function):
    def forward(self, a):
        self.save_for_backward(a)
        return self.xp.arcsinh(a)

    def backward(self, g):
        (a,) = self.saved
        return (g / self.xp.sqrt(a * a + 1),)  # d asinh = 1 / sqrt(x^2 + 1)


class Acosh(Function):
    def forward(self, a):
        self.save_for_backward(a)
        with _quiet():
            return self.xp.arccosh(a)

    def backward(self, g):
        (a,) = self.saved
        with _quiet():
            return (g / self.xp.sqrt(a * a - 1),)  # d acosh = 1 / sqrt(x^2 - 1)


class Atanh(Function):
    def forward(self, a):
        self.save_for_backward(a)
        with _quiet():
            return self.xp.arctanh(a)

    def backward(self, g):
        (a,) = self.saved
        with _quiet():
            return (g / (1 - a * a),)  # d atanh = 1 / (1 - x^2)


# ----------------------------------------------------------------------------- exp and log variants
class Exp2(Function):
    def forward(self, a):
        out = self.xp.exp2(a)
        self.save_for_backward(out)
        return out

    def backward(self, g):
        (out,) = self.saved
        return (g * out * math.log(2),)  # d 2^x = 2^x ln 2


class Log2(Function):
    def forward(self, a):
        self.save_for_backward(a)
        with _quiet():
            return self.xp.log2(a)

    def backward(self, g):
        (a,) = self.saved
        with _quiet():
            return (g / (a * math.log(2)),)


class Log10(Function):
    def forward(self, a):
        self.save_for_backward(a)
        with _quiet():
            return self.xp.log10(a)

    def backward(self, g):
        (a,) = self.saved
        with _quiet():
            return (g / (a * math.log(10)),)


class Log1p(Function):
    def forward(self, a):
        self.save_for_backward(a)
        with _quiet():
            return self.xp.log1p(a)

    def backward(self, g):
        (a,) = self.saved
        with _quiet():
            return (g / (1 + a),)


class Expm1(Function):
    def forward(self, a):
        out = self.xp.expm1(a)
        self.save_for_backward(out)
        return out

    def backward(self, g):
        (out,) = self.saved
        return (g * (out + 1),)  # d (e^x - 1) = e^x


def erf(a):
    """The error function, element-wise: NumPy has none, so math.erf per value (cupyx's on a GPU)."""
    xp = get_array_module(a)
    if xp is not np:
        from cupyx.scipy.special import erf as cupy_erf

        return cupy_erf(a)
    return np.asarray(np.frompyfunc(math.erf, 1, 1)(a), dtype=a.dtype)


class Erf(Function):
    def forward(self, a):
        self.save_for_backward(a)
        return erf(a)

    def backward(self, g):
        (a,) = self.saved
        return (g * (2 / math.sqrt(math.pi)) * self.xp.exp(-a * a),)  # d erf = 2/sqrt(pi) e^(-x^2)


class LogAddExp(Function):
    """log(e^a + e^b), computed as max + log1p(e^-(|a - b|)) so that nothing overflows."""

    def forward(self, a, b):
        out = self.xp.logaddexp(a, b)
        self.save_for_backward(a, b, out)
        return out

    def backward(self, g):
        a, b, out = self.saved
        xp = self.xp
        with _quiet():  # d/da = e^a / (e^a + e^b) = e^(a - out)
            return g * xp.exp(a - out), g * xp.exp(b - out)


# ----------------------------------------------------------------------------- rounding and sign
class Rounding(Function):
    """ceil, floor, round, trunc, sign: piecewise constant, so the gradient is zero everywhere."""

    def forward(self, a, mode, decimals=0):
        xp = self.xp
        if mode == "round":
            return xp.round(a, decimals)  # halves to even, as PyTorch
        return {"ceil": xp.ceil, "floor": xp.floor, "trunc": xp.trunc, "sign": xp.sign}[mode](a)

    def backward(self, g):
        return (self.xp.zeros_like(g),)


class Frac(Function):
    """x - trunc(x): the gradient is 1 (trunc's is 0)."""

    def forward(self, a):
        return a - self.xp.trunc(a)

    def backward(self, g):
        return (g,)


class CopySign(Function):
    """|a| with the sign of b (the sign bit: -0.0 counts as negative)."""

    def forward(self, a, b):
        out = self.xp.copysign(a, b)
        self.save_for_backward(a, out)
        return out

    def backward(self, g):
        a, out = self.saved
        xp = self.xp
        # d/da = out / a (+1 or -1; 0 at a == 0 and nan at an infinite a, as PyTorch);
        # b only picks a sign: zero gradient
        with _quiet():
            ga = g * xp.where(a == 0, 0, out / a)
        return ga, xp.zeros_like(g)


class Lerp(Function):
    """start + weight * (end - start)."""

    def forward(self, start, end, weight):
        self.save_for_backward(start, end, weight)
        return start + weight * (end - start)

    def backward(self, g):
        start, end, weight = self.saved
        # d/dstart = 1 - w, d/dend = w, d/dweight = end - start
        return g * (1 - weight), g * weight, g * (end - start)


# ----------------------------------------------------------------------------- division modes
def trunc_divide(xp, a, b):
    """a / b rounded towards zero; exact for integers (no round trip through floats)."""
    if a.dtype.kind in "iub" and b.dtype.kind in "iub":
        q = xp.floor_divide(a, b)
        fix = (xp.remainder(a, b) != 0) & ((a < 0) != (b < 0))  # floor went one below zero's side
        return q + fix.astype(q.dtype)
    return xp.trunc(a / b)


class DivRounding(Function):
    """a / b rounded down ('floor', Python's //) or towards zero ('trunc'): zero gradient."""

    def forward(self, a, b, rounding_mode):
        xp = self.xp
        if a.dtype.kind in "iub" and b.dtype.kind in "iub" and bool((b == 0).any()):
            raise RuntimeError("ZeroDivisionError")  # PyTorch's words for integer division by zero
        with _quiet():
            if rounding_mode == "floor":
                if a.dtype.kind in "iub":
                    return xp.floor_divide(a, b)
                return xp.floor(a / b)
            return trunc_divide(xp, a, b)

    def backward(self, g):
        zero = self.xp.zeros_like(g)
        return zero, zero


class Remainder(Function):
    """a - floor(a / b) * b ('remainder', %: the sign of b) or a - trunc(a / b) * b ('fmod': the sign of a)."""

    def forward(self, a, b, mode):
        xp = self.xp
        self.mode = mode
        if a.dtype.kind in "iub" and b.dtype.kind in "iub" and bool((b == 0).any()):
            raise RuntimeError("ZeroDivisionError")  # PyTorch's words for integer division by zero
        self.save_for_backward(a, b)
        with _quiet():
            return xp.remainder(a, b) if mode == "remainder" else xp.fmod(a, b)

    def backward(self, g):
        a, b = self.saved
        xp = self.xp
        with _quiet():
            quotient = xp.floor(a / b) if self.mode == "remainder" else xp.trunc(a / b)
        return g, -g * quotient  # d/da = 1, d/db = -quotient


# ----------------------------------------------------------------------------- NaN-aware max/min, tensor clamp
class FMaxMin(Function):
    """fmax / fmin: like maximum / minimum, but a NaN loses to a number."""

    def forward(self, a, b, largest=True):
        xp = self.xp
        out = xp.fmax(a, b) if largest else xp.fmin(a, b)
        self.save_for_backward(a, b, out)
        return out

    def backward(self, g):
        a, b, out = self.saved
        xp = self.xp
        # the gradient goes to the input that was picked; a tie gives it to a (as PyTorch's fmax)
        pick_a = (a == out) | xp.isnan(b)
        zero = xp.zeros((), dtype=g.dtype)
        return xp.where(pick_a, g, zero), xp.where(pick_a, zero, g)


class ClampTensor(Function):
    """clamp(a, low, high) with tensor bounds (either may be None)."""

    def forward(self, a, low, high):
        xp = self.xp
        out = a
        if low is not None:
            out = xp.maximum(out, low)
        if high is not None:
            out = xp.minimum(out, high)
        self.save_for_backward(a, low, high)
        return out

    def backward(self, g):
        a, low, high = self.saved
        xp = self.xp
        zero = xp.zeros((), dtype=g.dtype)
        below = (a < low) if low is not None else xp.zeros((), dtype=bool)
        above = (a > high) if high is not None else xp.zeros((), dtype=bool)
        if low is not None and high is not None:
            below = below & ~(low > high)  # PyTorch: min > max gives max everywhere
            above = above | (low > high)
        # the input's gradient where it was kept, the bound's where the bound was returned
        ga = xp.where(below | above, zero, g)
        glow = xp.where(below, g, zero) if low is not None else None
        ghigh = xp.where(above, g, zero) if high is not None else None
        return ga, glow, ghigh


# ----------------------------------------------------------------------------- reductions
def _to_last(xp, a, axis):
    """``a`` with ``axis`` moved last (None: flattened)."""
    return a.reshape(-1) if axis is None else xp.moveaxis(a, axis, -1)


def _from_last(xp, a, axis, shape):
    return a.reshape(shape) if axis is None else xp.moveaxis(a, -1, axis)


class Prod(Function):
    """Product over one dim (or all): the gradient of x_i is the product of the others.

    The others' product is (product of those before i) * (product of those after i), from two
    exclusive cumulative products, so zeros in the input need no special case.
    """

    def forward(self, a, dim=None, keepdim=False):
        xp = self.xp
        self.axis = None if dim is None else normalize_dims(dim, a.ndim)[0] if a.ndim else None
        self.keepdim = keepdim
        self.save_for_backward(a)
        out = a.prod() if self.axis is None else a.prod(axis=self.axis, keepdims=keepdim)
        return xp.asarray(out)

    def backward(self, g):
        (a,) = self.saved
        xp = self.xp
        axis = self.axis
        if axis is not None and not self.keepdim:
            g = xp.expand_dims(g, axis)
        x = _to_last(xp, a, axis)
        ones = xp.ones(x.shape[:-1] + (1,), dtype=x.dtype)
        before = xp.cumprod(xp.concatenate([ones, x[..., :-1]], axis=-1), axis=-1)
        after = xp.flip(xp.cumprod(xp.flip(xp.concatenate([x[..., 1:], ones], axis=-1), -1), axis=-1), -1)
        others = _from_last(xp, before * after, axis, a.shape)
        return (g * others,)


class AMaxMin(Function):
    """amax / amin over dims: the gradient is shared evenly among the elements equal to the extreme."""

    def forward(self, a, dim=None, keepdim=False, largest=True):
        self.axes = normalize_dims(dim, a.ndim) if a.ndim else ()
        self.keepdim = keepdim
        out = a.max(axis=self.axes, keepdims=True) if largest else a.min(axis=self.axes, keepdims=True)
        picked = a == out
        self.save_for_backward(picked, picked.sum(axis=self.axes, keepdims=True))
        return out if keepdim else out.reshape([s for i, s in enumerate(out.shape) if i not in self.axes])

    def backward(self, g):
        picked, count = self.saved
        if not self.keepdim and self.axes:
            g = self.xp.expand_dims(g, self.axes)
        return (g * picked / count,)


class LogSumExp(Function):
    """log(sum(exp(a))) over dims, shifted by the maximum so that nothing overflows."""

    def forward(self, a, dim=None, keepdim=False):
        xp = self.xp
        self.axes = normalize_dims(dim, a.ndim) if a.ndim else ()  # a 0-d tensor: nothing to reduce
        self.keepdim = keepdim
        if a.size == 0:
            out = xp.full([1 if i in self.axes else s for i, s in enumerate(a.shape)], -np.inf, dtype=a.dtype)
        else:
            m = a.max(axis=self.axes, keepdims=True)
            m = xp.where(xp.isfinite(m), m, 0)  # all -inf (or an inf) along a row: no shift
            with _quiet():
                out = xp.log(xp.exp(a - m).sum(axis=self.axes, keepdims=True)) + m
        self.save_for_backward(a, out)
        return out if keepdim else out.reshape([s for i, s in enumerate(out.shape) if i not in self.axes])

    def backward(self, g):
        a, out = self.saved
        xp = self.xp
        if not self.keepdim and self.axes:
            g = xp.expand_dims(g, self.axes)
        with _quiet():
            return (g * xp.exp(a - out),)  # d lse / d a_i = softmax(a)_i


class VectorNorm(Function):
    """(sum |a|^p)^(1/p) over dims; p may be inf, -inf or 0 (the count of non-zeros)."""

    def forward(self, a, ord=2, dim=None, keepdim=False):
        xp = self.xp
        self.ord, self.keepdim = ord, keepdim
        self.axes = axes = normalize_dims(dim, a.ndim) if a.ndim else ()
        absa = xp.abs(a)
        with _quiet():
            if ord == math.inf:
                out = absa.max(axis=axes, keepdims=True)
            elif ord == -math.inf:
                out = absa.min(axis=axes, keepdims=True)
            elif ord == 0:
                out = (absa != 0).sum(axis=axes, keepdims=True).astype(a.dtype)
            elif ord == 1:
                out = absa.sum(axis=axes, keepdims=True)
            elif ord == 2:
                out = xp.sqrt((absa * absa).sum(axis=axes, keepdims=True))
            else:
                out = (absa ** ord).sum(axis=axes, keepdims=True) ** (1.0 / ord)
        self.save_for_backward(a, out)
        return out if keepdim else out.reshape([s for i, s in enumerate(out.shape) if i not in axes])

    def backward(self, g):
        a, out = self.saved
        xp = self.xp
        p = self.ord
        if not self.keepdim and self.axes:
            g = xp.expand_dims(g, self.axes)
        sign = xp.sign(a)
        zero = xp.zeros((), dtype=a.dtype)
        with _quiet():
            if p == 0:
                return (xp.zeros_like(a),)
            if p == 1:
                return (g * sign,)
            if p in (math.inf, -math.inf):  # to the extreme elements, ties sharing evenly
                picked = (xp.abs(a) == out)
                count = picked.sum(axis=self.axes, keepdims=True)
                return (g * sign * picked / count,)
            if p == 2:  # a / ||a||, and 0 where the norm is 0 (PyTorch's subgradient)
                return (xp.where(out == 0, zero, g * a / out),)
            # d/da_i = sign(a_i) |a_i|^(p-1) / ||a||^(p-1)
            grad = g * sign * xp.abs(a) ** (p - 1) / out ** (p - 1)
            return (xp.where(out == 0, zero, grad),)


class SingularValues(Function):
    """The singular values of a (batch of) matrices, largest first.

    For distinct singular values, d s_k = u_k^T dA v_k, so the gradient is U diag(g) V^T.
    """

    def forward(self, a):
        xp = self.xp
        u, s, vh = xp.linalg.svd(a, full_matrices=False)
        self.save_for_backward(u, vh)
        return s

    def backward(self, g):
        u, vh = self.saved
        return ((u * g[..., None, :]) @ vh,)
