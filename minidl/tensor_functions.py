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
]

for _name in _METHODS:
    globals()[_name] = _method(_name)

__all__ = list(_METHODS)
