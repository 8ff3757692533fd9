"""Tensor methods as ``minidl.*`` functions, as in PyTorch (``x.exp()`` and ``minidl.exp(x)``)."""
from __future__ import annotations

from .tensor import Tensor


def _as_tensor(x):
    return x if isinstance(x, Tensor) else Tensor(x)


def _method(name):
    def function(input, *args, **kwargs):
        return getattr(_as_tensor(input), name)(*args, **kwargs)

    function.__name__ = name
    function.__doc__ = f"``minidl.{name}(x, ...)`` is ``x.{name}(...)``: see :meth:`minidl.Tensor.{name}`."
    return function


_METHODS = [
    "add", "sub", "mul", "div", "neg", "pow", "exp", "log", "sqrt", "rsqrt", "abs", "clamp", "clip",
    "sum", "mean", "var", "std", "max", "min", "amax", "argmax", "argmin", "argsort", "topk", "gather",
    "reshape", "flatten", "transpose", "permute", "squeeze", "unsqueeze", "split", "chunk",
    "relu", "sigmoid", "tanh", "softmax", "log_softmax", "eq", "ne", "lt", "le", "gt", "ge", "all", "any",
    # issue 15: elementwise math, rounding, cumulative ops, sorting, predicates, bitwise and logical ops
    "sin", "cos", "tan", "asin", "acos", "atan", "sinh", "cosh", "asinh", "acosh", "atanh", "arcsin", "arccos",
    "arctan", "arcsinh", "arccosh", "arctanh", "atan2", "arctan2", "exp2", "log2", "log10", "log1p", "expm1", "erf",
    "ceil", "floor", "round", "trunc", "fix", "frac", "sign", "copysign", "lerp", "floor_divide", "true_divide",
    "divide", "remainder", "fmod", "logaddexp", "logsumexp", "logcumsumexp", "cumsum", "cumprod", "cummax",
    "cummin", "prod", "amin", "median", "mode", "kthvalue", "sort", "msort", "unique", "norm", "isclose",
    "allclose", "isnan", "isinf", "isfinite", "isneginf", "isposinf", "clamp_min", "clamp_max", "fmax", "fmin",
    "bitwise_and", "bitwise_or", "bitwise_xor", "bitwise_not", "bitwise_left_shift", "bitwise_right_shift",
    "logical_and", "logical_or", "logical_xor", "logical_not",
]

for _name in _METHODS:
    globals()[_name] = _method(_name)



def var_mean(input, dim=None, unbiased=None, keepdim=False, *, correction=None, axis=None):
    """``(var, mean)`` over ``dim`` in one call, as ``torch.var_mean``."""
    input = _as_tensor(input)
    return (input.var(dim, keepdim, unbiased, correction, axis),
            input.mean(dim if axis is None else axis, keepdim))


def std_mean(input, dim=None, unbiased=None, keepdim=False, *, correction=None, axis=None):
    """``(std, mean)`` over ``dim``, as ``torch.std_mean``."""
    input = _as_tensor(input)
    return (input.std(dim, keepdim, unbiased, correction, axis),
            input.mean(dim if axis is None else axis, keepdim))


__all__ = list(_METHODS) + ["var_mean", "std_mean"]
