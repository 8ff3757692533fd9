"""The backend of an array: NumPy (CPU) or CuPy (GPU), and the kernel module that serves it.

The lowest floor of the engine above ``minidl.kernels``: arrays only, no Tensor. A Function
asks here once per call (:meth:`minidl.functions.Function.__call__`) and keeps the answer
for its backward.

>>> import numpy as np
>>> get_array_module(np.zeros(3)) is np
True
>>> kernels_for(np, "conv").__name__
'minidl.kernels.cpu.conv'
"""
from __future__ import annotations

import importlib

import numpy as np

_KERNELS = {}  # (device kind, family) -> module


def get_array_module(array):
    """``numpy`` or ``cupy`` for an array: the one place the backend is read off an array."""
    if type(array).__module__.startswith("cupy"):
        import cupy

        return cupy
    return np


def kernels_for(xp, family):
    """``minidl.kernels.cpu.<family>`` for NumPy, ``minidl.kernels.cuda.<family>`` for CuPy (cached).

    Families: conv, pooling, norm, loss, nms, roi, blas, activation, ... Every backend supplies the same
    primitives under the same names; ``minidl.kernels.reference`` holds the float64 oracle.
    """
    kind = "cpu" if xp is np else "cuda"
    module = _KERNELS.get((kind, family))
    if module is None:
        module = importlib.import_module(f"minidl.kernels.{kind}.{family}")
        _KERNELS[(kind, family)] = module
    return module


def device_name(array):
    """``"cpu"`` or ``"cuda:N"``: where an array lives."""
    if type(array).__module__.startswith("cupy"):
        return f"cuda:{array.device.id}"
    return "cpu"


def pair(value, name):
    """An int or a pair of ints as an (h, w) tuple of ints; ``name`` is used in the error message."""
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ValueError(f"{name}: expected an int or a pair of ints, got {value!r}")
        return int(value[0]), int(value[1])
    return int(value), int(value)
