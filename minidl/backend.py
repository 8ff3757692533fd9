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


def scatter_add(xp, target, index, values):
    """``target[index] += values`` in place, repeated indices adding up (NumPy's ``add.at``).

    CuPy has no ``cupy.add.at``: on a GPU this is ``cupyx.scatter_add`` (atomic adds).
    """
    _scatter("add", xp, target, index, values)


def scatter_max(xp, target, index, values):
    """``target[index] = max(target[index], values)`` in place, for repeated indices too (``maximum.at``)."""
    _scatter("max", xp, target, index, values)


def scatter_min(xp, target, index, values):
    """``target[index] = min(target[index], values)`` in place, for repeated indices too (``minimum.at``)."""
    _scatter("min", xp, target, index, values)


def _scatter(kind, xp, target, index, values):
    if xp is np:
        {"add": np.add, "max": np.maximum, "min": np.minimum}[kind].at(target, index, values)
        return
    import cupyx

    if not hasattr(values, "dtype"):  # a Python number
        values = xp.asarray(values, dtype=target.dtype)
    # NumPy index arrays (np.arange, np.ix_ grids built on the host) go to the device: CuPy indexing takes
    # them, cupyx's scatters do not
    if isinstance(index, tuple):
        index = tuple(xp.asarray(i) if isinstance(i, np.ndarray) else i for i in index)
    elif isinstance(index, np.ndarray):
        index = xp.asarray(index)
    if kind == "add" and target.dtype == np.int64:
        # cupyx.scatter_add has no int64 (CUDA's atomicAdd has no signed 64-bit form): add as uint64,
        # which in two's complement gives the same bits
        target, values = target.view(np.uint64), values.astype(np.int64).view(np.uint64)
    if target.dtype not in _CUPYX_SCATTER_DTYPES[kind]:
        raise TypeError(f"scatter_{kind} on a GPU supports {sorted(str(d) for d in _CUPYX_SCATTER_DTYPES[kind])}, "
                        f"got {target.dtype}: cast the tensor first")
    getattr(cupyx, f"scatter_{kind}")(target, index, values)


# what cupyx.scatter_add/max/min accept (CuPy's own tests: "iILQefd" for add, "iILQfd" for max and min)
_CUPYX_SCATTER_DTYPES = {
    "add": {np.dtype(t) for t in ("int32", "uint32", "uint64", "float16", "float32", "float64")},
    "max": {np.dtype(t) for t in ("int32", "uint32", "uint64", "float32", "float64")},
    "min": {np.dtype(t) for t in ("int32", "uint32", "uint64", "float32", "float64")},
}
