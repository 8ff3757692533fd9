"""Tensor methods as ``minidl.*`` functions, as in PyTorch (``x.exp()`` and ``minidl.exp(x)``)."""
from __future__ import annotations

from minidl.functions.linalg import Einsum, parse_einsum

from .tensor import Tensor, apply


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

# ---- indexing and linear algebra (issue 15)
_INDEX_METHODS = [
    "mm", "bmm", "mv", "dot", "outer", "ger", "inner", "addmm", "baddbmm", "addbmm", "addmv", "addr", "cross",
    "tril", "triu", "diag", "diagonal", "diag_embed", "trace", "roll", "flip", "fliplr", "flipud", "rot90",
    "nonzero", "argwhere", "masked_fill", "masked_select", "index_select", "index_add", "take", "take_along_dim",
    "scatter", "scatter_add", "scatter_reduce", "unflatten", "movedim", "moveaxis", "swapaxes", "swapdims",
    "narrow", "select",
]

for _name in _INDEX_METHODS:
    globals()[_name] = _method(_name)


def repeat_interleave(input, repeats=None, dim=None, output_size=None):
    """``minidl.repeat_interleave(x, repeats, dim)``; with a single tensor of counts, the indices repeated."""
    return _as_tensor(input).repeat_interleave(repeats, dim, output_size)


def einsum(equation, *operands):
    """Einstein summation: ``minidl.einsum("bij,bjk->bik", a, b)``, PyTorch's rules.

    Operands may also come as one list. Labels are letters; ``...`` stands for broadcast
    dimensions; without ``->`` the output is the ellipsis then the labels seen once, sorted;
    a label repeated inside one operand takes its diagonal (``"ii->"`` is the trace).
    """
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = tuple(operands[0])
    operands = [_as_tensor(t) for t in operands]
    inputs, output, sizes = parse_einsum(equation, [t.shape for t in operands])
    return apply(Einsum, *operands, inputs=inputs, output=output, sizes=sizes)


def meshgrid(*tensors, indexing="ij"):
    """Coordinate grids from 1-D (or 0-d) tensors; differentiable (each grid is a reshape and an expand).

    ``indexing="ij"``: grid i varies along dimension i. ``"xy"``: the first two dimensions are
    exchanged (Cartesian, as NumPy's default).
    """
    if len(tensors) == 1 and isinstance(tensors[0], (list, tuple)):
        tensors = tuple(tensors[0])
    if indexing not in ("ij", "xy"):
        raise RuntimeError(f"meshgrid: indexing must be 'ij' or 'xy', got {indexing!r}")
    tensors = [_as_tensor(t) for t in tensors]
    for t in tensors:
        if t.ndim > 1:
            raise RuntimeError(f"meshgrid: expected 0-D or 1-D tensors, got one of shape {t.shape}")
    axes = list(range(len(tensors)))
    if indexing == "xy" and len(tensors) >= 2:
        axes[0], axes[1] = 1, 0  # tensor 0 runs along dimension 1, tensor 1 along dimension 0
    shape = [0] * len(tensors)
    for t, axis in zip(tensors, axes):
        shape[axis] = t.numel()
    grids = []
    for t, axis in zip(tensors, axes):
        view = [1] * len(tensors)
        view[axis] = t.numel()
        grids.append(t.reshape(view).expand(shape))
    return tuple(grids)


__all__ += _INDEX_METHODS + ["repeat_interleave", "einsum", "meshgrid"]
