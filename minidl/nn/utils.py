"""Parts of ``torch.nn.utils``: gradient clipping (``clip_grad_norm_``, ``clip_grad_value_``),
``skip_init``, and ``parameters_to_vector`` / ``vector_to_parameters``; and the course's output-size
arithmetic, ``conv_output_size`` / ``pool_output_size`` (not in PyTorch: its layers' formulas).

The clipping functions work in place on the ``.grad`` of each parameter after ``backward()`` and before
``optimizer.step()``. Parameters without a gradient (frozen, or unused in this step) are
skipped.

>>> import minidl
>>> from minidl.nn.utils import clip_grad_norm_
>>> w = minidl.nn.Parameter(minidl.ones(4))
>>> (w * 3.0).sum().backward()            # grad = [3, 3, 3, 3], norm 6
>>> round(float(clip_grad_norm_([w], max_norm=1.0)), 4)
6.0
>>> [round(float(g), 3) for g in w.grad.numpy()]
[0.5, 0.5, 0.5, 0.5]
"""
from __future__ import annotations

import math
import numbers

import numpy as np

from minidl.backend import get_array_module
from minidl.kernels.shapes import _output_size_1d

from . import init

__all__ = ["clip_grad_norm_", "clip_grad_value_", "skip_init", "parameters_to_vector", "vector_to_parameters",
           "conv_output_size", "pool_output_size"]


def _grads(parameters):
    """The gradient arrays of ``parameters`` (one Parameter or an iterable), skipping None."""
    if hasattr(parameters, "data") and hasattr(parameters, "grad"):
        parameters = [parameters]
    arrays = []
    for p in parameters:
        grad = p.grad
        if grad is None:
            continue
        # p.grad is a Tensor (its array is .data); a raw ndarray is accepted too
        arrays.append(grad if isinstance(grad, np.ndarray) or type(grad).__module__.startswith("cupy")
                      else grad.data)
    return arrays


def clip_grad_norm_(parameters, max_norm, norm_type=2.0, error_if_nonfinite=False):
    """Scale all gradients together so that their joint norm is at most ``max_norm``.

    The joint norm treats every gradient as one long vector::

        total = (sum_over_params sum_i |g_i|^p) ^ (1/p)        (p = norm_type)
        total = max_over_params max_i |g_i|                     (p = inf)

    and every gradient is multiplied by ``min(1, max_norm / (total + 1e-6))`` (PyTorch's
    formula: the small constant keeps the scale finite when all gradients are zero).
    The norm is accumulated in float64 so that it does not depend on how the parameters
    are split into arrays.

    Returns:
        the total norm *before* clipping, as a 0-d float64 ``minidl.Tensor``.

    Raises:
        ValueError: ``max_norm`` or ``norm_type`` is not a positive number, or the norm is
            NaN/inf while ``error_if_nonfinite=True``.
    """
    if not isinstance(max_norm, numbers.Real) or isinstance(max_norm, bool) or not max_norm >= 0:
        raise ValueError(f"clip_grad_norm_: max_norm must be a non-negative number, got {max_norm!r}")
    norm_type = float(norm_type)
    if not norm_type > 0:
        raise ValueError(f"clip_grad_norm_: norm_type must be > 0 or inf, got {norm_type}")
    from ..creation import tensor

    grads = _grads(parameters)
    if not grads:
        return tensor(0.0, dtype="float64")
    xp = get_array_module(grads[0])
    # The norm stays where the gradients are: on a GPU it is a 0-d device array, read back to the
    # host only when error_if_nonfinite asks for a check (as PyTorch).
    if math.isinf(norm_type):
        total = _stack_reduce(xp, [xp.abs(g).max().astype(np.float64) for g in grads if g.size], "max")
    else:
        total = _stack_reduce(xp, [(xp.abs(g.astype(np.float64)) ** norm_type).sum() for g in grads], "sum")
        total = total ** (1.0 / norm_type)
    if error_if_nonfinite and not math.isfinite(float(total)):
        raise ValueError(
            f"clip_grad_norm_: the total norm of order {norm_type} of the gradients is {float(total)}; "
            "pass error_if_nonfinite=False to clip anyway"
        )
    scale = xp.minimum(1.0, float(max_norm) / (total + 1e-6))
    if xp is not np or scale < 1.0:  # on the host, skip the multiply by 1
        for g in grads:
            g *= scale.astype(g.dtype)
    return tensor(total, dtype="float64")


def _stack_reduce(xp, values, how):
    """max or sum of 0-d arrays, as a 0-d float64 array on their device (0.0 for none)."""
    if not values:
        return xp.zeros((), dtype=np.float64)
    stacked = xp.stack(values)
    return stacked.max() if how == "max" else stacked.sum()


def clip_grad_value_(parameters, clip_value):
    """Clamp every gradient element into ``[-clip_value, clip_value]``, in place."""
    if not isinstance(clip_value, numbers.Real) or isinstance(clip_value, bool) or not clip_value >= 0:
        raise ValueError(f"clip_grad_value_: clip_value must be a non-negative number, got {clip_value!r}")
    for g in _grads(parameters):
        xp = get_array_module(g)
        xp.clip(g, -clip_value, clip_value, out=g)


def skip_init(module_cls, *args, **kwargs):
    """``module_cls(*args, **kwargs)`` without initialising its parameters, as ``torch.nn.utils.skip_init``.

    ``module_cls`` is a Module class or any builder (``minidl.models.resnet50``). Every
    ``minidl.nn.init`` call made while it builds is skipped (:func:`minidl.nn.init.skipped`), so
    the parameters hold whatever ``np.empty`` gave them, and a large model's weights are neither
    drawn nor even written to memory: for counting parameters (``minidl models``) or for loading
    a state_dict over them.

    >>> import minidl.nn as nn
    >>> skip_init(nn.Linear, 1000, 1000).num_parameters()
    1001000
    """
    with init.skipped():
        return module_cls(*args, **kwargs)


def parameters_to_vector(parameters):
    """All ``parameters`` flattened and joined into one 1-D Tensor, as ``torch.nn.utils.parameters_to_vector``.

    Built from ``reshape`` and ``cat``, so gradients flow back to the parameters.

    >>> import minidl.nn as nn
    >>> parameters_to_vector(nn.Linear(3, 2).parameters()).shape
    (8,)
    """
    from ..tensor import cat

    parameters = list(parameters)
    if not parameters:
        raise ValueError("parameters_to_vector: expected at least one parameter")
    return cat([p.reshape(-1) for p in parameters])


def vector_to_parameters(vec, parameters):
    """Copy consecutive slices of the 1-D ``vec`` into ``parameters``, as ``torch.nn.utils.vector_to_parameters``.

    Each parameter takes the next ``p.numel()`` values, reshaped to its shape. The values are
    copied into each parameter's own array (PyTorch instead points ``p.data`` at a view of
    ``vec``); ``vec`` must hold exactly as many values as the parameters together.
    """
    if not (hasattr(vec, "data") and hasattr(vec, "requires_grad")):
        raise TypeError(f"expected vec to be a Tensor, but got: {type(vec).__name__}")
    parameters = list(parameters)
    total = sum(int(p.data.size) for p in parameters)
    if vec.ndim != 1 or int(vec.data.size) != total:
        raise ValueError(f"vector_to_parameters: vec has shape {tuple(vec.shape)}, the parameters hold {total} values")
    offset = 0
    for p in parameters:
        n = int(p.data.size)
        xp = get_array_module(p.data)
        p.data[...] = xp.asarray(vec.data[offset:offset + n]).reshape(p.data.shape).astype(p.data.dtype, copy=False)
        offset += n


# ----------------------------------------------------------------------------- output sizes
def _per_dim(value, dims, name, minimum):
    values = (value,) * dims if isinstance(value, numbers.Integral) else tuple(value)
    if len(values) != dims or any(not isinstance(v, numbers.Integral) or v < minimum for v in values):
        raise ValueError(f"{name} must be an int >= {minimum} or {dims} of them, got {value!r}")
    return tuple(int(v) for v in values)


def _output_sizes(function, input_size, kernel_size, stride, padding, dilation, ceil_mode):
    single = isinstance(input_size, numbers.Integral)
    sizes = _per_dim(input_size, 1 if single else len(input_size), "input_size", 1)
    dims = len(sizes)
    kernel = _per_dim(kernel_size, dims, "kernel_size", 1)
    stride = _per_dim(kernel if stride is None else stride, dims, "stride", 1)
    dilation = _per_dim(dilation, dims, "dilation", 1)
    if padding == "valid":
        padding = 0
    if padding == "same":
        if any(s != 1 for s in stride):
            raise ValueError(f"{function}: padding='same' needs stride 1 (as nn.Conv2d), got stride {stride}")
        return input_size if single else sizes
    padding = _per_dim(padding, dims, "padding", 0)
    out = []
    for n, k, s, p, d in zip(sizes, kernel, stride, padding, dilation):
        o = _output_size_1d(n, k, s, p, d, ceil_mode)
        if o < 1:
            raise ValueError(f"{function}: a kernel of {k} (dilation {d}) does not fit an input of {n} padded by {p} "
                             f"on both sides: no output position; use a smaller kernel or more padding")
        out.append(int(o))
    return out[0] if single else tuple(out)


def conv_output_size(input_size, kernel_size, stride=1, padding=0, dilation=1):
    """Spatial output size of a convolution, PyTorch's formula per dimension:

    ``out = floor((in + 2 * padding - dilation * (kernel_size - 1) - 1) / stride) + 1``

    ``input_size`` is an int (one dimension, an int comes back) or a tuple such as (H, W); the
    other arguments are an int for every dimension or one per dimension, ``padding`` also
    ``"valid"`` (0) or ``"same"`` (stride 1 only). The same numbers ``nn.Conv2d`` produces.

    >>> conv_output_size(28, 3), conv_output_size((224, 224), 7, stride=2, padding=3)
    (26, (112, 112))
    """
    return _output_sizes("conv_output_size", input_size, kernel_size, stride, padding, dilation, False)


def pool_output_size(input_size, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
    """Spatial output size of max / average pooling, PyTorch's rule per dimension.

    As :func:`conv_output_size` with ``stride`` defaulting to ``kernel_size`` (as ``nn.MaxPool2d``);
    with ``ceil_mode=True`` the division rounds up (``MaxPool2d(3, 2, ceil_mode=True)`` takes 112 to
    56, 55 without), but a last window that would start in the right padding is dropped.

    >>> pool_output_size(28, 2), pool_output_size(112, 3, 2, ceil_mode=True), pool_output_size(5, 2, ceil_mode=True)
    (14, 56, 3)
    """
    return _output_sizes("pool_output_size", input_size, kernel_size, stride, padding, dilation, bool(ceil_mode))
