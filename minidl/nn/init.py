"""Parameter initialisation, in place, with PyTorch's formulas (He et al. 2015; Glorot & Bengio 2010).

Draws come from the global generator, so ``minidl.manual_seed`` makes them repeatable.
Inside :func:`skipped` every initialiser leaves its tensor untouched (``minidl.nn.utils.skip_init``).
"""
from __future__ import annotations

import math
from contextlib import contextmanager

import numpy as np

from .. import random as _random

_skip_depth = 0  # > 0 while a skipped() block runs: the initialisers below return at once


@contextmanager
def skipped():
    """Within this block every initialiser returns its tensor unchanged, draws nothing and writes nothing.

    Layers allocate their parameters with ``np.empty``, whose memory the system maps only
    on first write, so a model built inside costs neither the draws nor the memory of its
    weights: enough to count its parameters or to load a state_dict over them. Process-wide,
    like ``no_grad``: build nothing meant for training in another thread meanwhile.
    """
    global _skip_depth
    _skip_depth += 1
    try:
        yield
    finally:
        _skip_depth -= 1


def _fan_in_out(tensor):
    if tensor.ndim < 2:
        raise ValueError(f"fan in and fan out need a tensor with at least 2 dimensions, got shape {tensor.shape}")
    receptive = int(np.prod(tensor.shape[2:])) if tensor.ndim > 2 else 1
    return tensor.shape[1] * receptive, tensor.shape[0] * receptive


def calculate_gain(nonlinearity, param=None):
    """The recommended gain for an activation, as torch.nn.init.calculate_gain."""
    linear = ("linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "sigmoid")
    if nonlinearity in linear:
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else param
        return math.sqrt(2.0 / (1 + slope ** 2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"calculate_gain: unsupported nonlinearity {nonlinearity!r}")


def _fill(tensor, values):
    tensor.data[...] = np.asarray(values, dtype=tensor.dtype).reshape(tensor.shape) if np.ndim(values) else values
    return tensor


def _rng(generator):
    return generator or _random.default_generator()


def _draw_dtype(tensor):
    # float32 parameters draw float32 numbers: half the time and memory of float64 draws for big layers
    return np.float32 if tensor.dtype == np.float32 else np.float64


def uniform_(tensor, a=0.0, b=1.0, generator=None):
    if _skip_depth:
        return tensor
    u = _rng(generator).random(tensor.shape, dtype=_draw_dtype(tensor))
    return _fill(tensor, u * (b - a) + a)


def normal_(tensor, mean=0.0, std=1.0, generator=None):
    if _skip_depth:
        return tensor
    z = _rng(generator).standard_normal(tensor.shape, dtype=_draw_dtype(tensor))
    return _fill(tensor, z * std + mean)


def trunc_normal_(tensor, mean=0.0, std=1.0, a=-2.0, b=2.0, generator=None):
    """Normal(mean, std) truncated to [a, b] (absolute bounds, as PyTorch), by inverse-CDF sampling."""
    if _skip_depth:
        return tensor

    def cdf(x):
        return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))

    low, high = cdf((a - mean) / std), cdf((b - mean) / std)
    u = _rng(generator).uniform(2 * low - 1, 2 * high - 1, tensor.shape)
    values = _erfinv(u) * std * math.sqrt(2.0) + mean
    return _fill(tensor, np.clip(values, a, b))


def _erfinv(y):
    """Inverse error function by Newton's method from Giles' approximation (float64 accurate)."""
    y = np.asarray(y, dtype=np.float64)
    w = -np.log((1.0 - y) * (1.0 + y))
    x = np.where(w < 5.0,
                 _poly(w - 2.5, [2.81022636e-08, 3.43273939e-07, -3.5233877e-06, -4.39150654e-06, 0.00021858087,
                                 -0.00125372503, -0.00417768164, 0.246640727, 1.50140941]),
                 _poly(np.sqrt(np.maximum(w, 5.0)) - 3.0,
                       [-0.000200214257, 0.000100950558, 0.00134934322, -0.00367342844, 0.00573950773,
                        -0.0076224613, 0.00943887047, 1.00167406, 2.83297682])) * y
    from minidl.kernels.cpu.elementwise import erf

    for _ in range(2):  # Newton steps: f(x) = erf(x) - y, f' = 2/sqrt(pi) exp(-x^2)
        x = x - (erf(x) - y) / (2.0 / math.sqrt(math.pi) * np.exp(-x * x))
    return x


def _poly(t, coefficients):
    out = np.zeros_like(t)
    for c in coefficients:
        out = out * t + c
    return out


def constant_(tensor, value):
    if _skip_depth:
        return tensor
    return _fill(tensor, value)


def zeros_(tensor):
    if _skip_depth:
        return tensor
    return _fill(tensor, 0)


def ones_(tensor):
    if _skip_depth:
        return tensor
    return _fill(tensor, 1)


def xavier_uniform_(tensor, gain=1.0, generator=None):
    fan_in, fan_out = _fan_in_out(tensor)
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform_(tensor, -bound, bound, generator)


def xavier_normal_(tensor, gain=1.0, generator=None):
    fan_in, fan_out = _fan_in_out(tensor)
    return normal_(tensor, 0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)), generator)


def _kaiming_std(tensor, a, mode, nonlinearity):
    fan_in, fan_out = _fan_in_out(tensor)
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"kaiming: mode must be 'fan_in' or 'fan_out', got {mode!r}")
    fan = fan_in if mode == "fan_in" else fan_out
    return calculate_gain(nonlinearity, a) / math.sqrt(fan)


def kaiming_uniform_(tensor, a=0, mode="fan_in", nonlinearity="leaky_relu", generator=None):
    bound = math.sqrt(3.0) * _kaiming_std(tensor, a, mode, nonlinearity)
    return uniform_(tensor, -bound, bound, generator)


def kaiming_normal_(tensor, a=0, mode="fan_in", nonlinearity="leaky_relu", generator=None):
    return normal_(tensor, 0.0, _kaiming_std(tensor, a, mode, nonlinearity), generator)
