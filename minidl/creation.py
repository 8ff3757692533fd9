"""Creation functions with PyTorch's names and defaults (float32 unless told otherwise)."""
from __future__ import annotations

import numpy as np

from . import random as _random
from .device import Device, _require_cupy, device_of, move_array
from .tensor import Tensor, as_dtype, get_default_dtype, int64


def _size(size):
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        return tuple(size[0])
    return tuple(int(s) for s in size)


def _make(array, requires_grad=False, device=None):
    """A leaf tensor over ``array`` moved to ``device`` first: ``requires_grad`` is set on the moved leaf,
    so ``.grad`` lands where the tensor lives (one host-to-device copy, no graph edge back to the host)."""
    if device is not None:
        array = move_array(array, device)
    return Tensor(array, requires_grad=requires_grad)


def tensor(data, dtype=None, requires_grad=False, device=None):
    """A tensor holding a copy of ``data``; Python floats become float32, ints int64, as PyTorch.

    >>> tensor([1.0, 2.0]).dtype
    dtype('float32')
    """
    if isinstance(data, Tensor):
        data = data.data
    if (isinstance(data, np.ndarray) or type(data).__module__.startswith("cupy")) and (
            device is None or Device(device) == device_of(data)):
        data = data.copy()  # a move to another device copies anyway
    return _make(Tensor(data, dtype=dtype).data, requires_grad, device)


def from_numpy(array):
    """A tensor sharing memory with ``array``."""
    return Tensor._wrap(array)


def _filled(shape, fill, dtype, requires_grad, device):
    """A leaf of ``shape`` filled with ``fill`` (None: uninitialised), made on ``device`` itself:
    a GPU tensor of constants needs no host array and no copy."""
    target = Device(device if device is not None else "cpu")
    if target.type == "cpu":
        array = np.empty(shape, dtype) if fill is None else np.full(shape, fill, dtype)
        return Tensor(array, requires_grad=requires_grad)
    cupy = _require_cupy(target.index)
    with cupy.cuda.Device(target.index):
        array = cupy.empty(shape, dtype) if fill is None else cupy.full(shape, fill, dtype)
    return Tensor(array, requires_grad=requires_grad)


def zeros(*size, dtype=None, requires_grad=False, device=None):
    return _filled(_size(size), 0, as_dtype(dtype) or get_default_dtype(), requires_grad, device)


def ones(*size, dtype=None, requires_grad=False, device=None):
    return _filled(_size(size), 1, as_dtype(dtype) or get_default_dtype(), requires_grad, device)


def empty(*size, dtype=None, requires_grad=False, device=None):
    return _filled(_size(size), None, as_dtype(dtype) or get_default_dtype(), requires_grad, device)


def full(size, fill_value, dtype=None, requires_grad=False, device=None):
    if dtype is None:
        integral = isinstance(fill_value, (int, np.integer)) and not isinstance(fill_value, bool)
        dtype = int64 if integral else get_default_dtype()
    return _filled(tuple(size), fill_value, as_dtype(dtype), requires_grad, device)


def arange(start, end=None, step=1, dtype=None, requires_grad=False, device=None):
    if end is None:
        start, end = 0, start
    if dtype is None:
        integral = all(isinstance(v, (int, np.integer)) for v in (start, end, step))
        dtype = int64 if integral else get_default_dtype()
    return _make(np.arange(start, end, step).astype(as_dtype(dtype)), requires_grad, device)


def linspace(start, end, steps, dtype=None, requires_grad=False, device=None):
    return _make(np.linspace(start, end, steps).astype(as_dtype(dtype) or get_default_dtype()), requires_grad, device)


def eye(n, m=None, dtype=None, requires_grad=False, device=None):
    return _make(np.eye(n, m, dtype=as_dtype(dtype) or get_default_dtype()), requires_grad, device)


def rand(*size, dtype=None, requires_grad=False, device=None, generator=None):
    """Uniform on [0, 1), from the global generator (``minidl.manual_seed``)."""
    rng = _random.numpy_generator(generator)
    return _make(rng.random(_size(size)).astype(as_dtype(dtype) or get_default_dtype()), requires_grad, device)


def randn(*size, dtype=None, requires_grad=False, device=None, generator=None):
    """Standard normal, from the global generator."""
    rng = _random.numpy_generator(generator)
    return _make(rng.standard_normal(_size(size)).astype(as_dtype(dtype) or get_default_dtype()), requires_grad, device)


def randint(low, high=None, size=(), dtype=None, device=None, generator=None):
    """Integers in [low, high); ``randint(high, size)`` as PyTorch allows."""
    if high is None:
        low, high = 0, low
    rng = _random.numpy_generator(generator)
    return _make(rng.integers(low, high, size=tuple(size)).astype(as_dtype(dtype) or int64), False, device)


def randperm(n, dtype=None, device=None, generator=None):
    rng = _random.numpy_generator(generator)
    return _make(rng.permutation(n).astype(as_dtype(dtype) or int64), False, device)


def _like(fn):
    def like(input, dtype=None, requires_grad=False, device=None, **kwargs):
        return fn(*input.shape, dtype=dtype or input.dtype, requires_grad=requires_grad,
                  device=device if device is not None else input.device, **kwargs)

    like.__name__ = fn.__name__ + "_like"
    like.__doc__ = f"``{fn.__name__}`` with the shape, dtype and device of ``input``."
    return like


zeros_like = _like(zeros)
ones_like = _like(ones)
empty_like = _like(empty)
rand_like = _like(rand)
randn_like = _like(randn)


def full_like(input, fill_value, dtype=None, requires_grad=False, device=None):
    return full(input.shape, fill_value, dtype=dtype or input.dtype, requires_grad=requires_grad,
                device=device if device is not None else input.device)


def randint_like(input, low, high=None, dtype=None, device=None):
    return randint(low, high, input.shape, dtype=dtype or input.dtype,
                   device=device if device is not None else input.device)
