"""The part of cupyx minidl uses, over the fake cupy of tests/fake_cupy (see cupy/__init__.py)."""
import numpy as np

import cupy
from cupy import _refuse_host, _unwrap


def _scatter(ufunc, name, dtypes, a, slices, value):
    _refuse_host((a, slices, value), f"cupyx.{name}")
    if a.dtype.char not in dtypes:  # as CuPy: no int64 (CUDA has no signed 64-bit atomicAdd/Max)
        raise TypeError(f"cupyx.{name}: unsupported dtype {a.dtype}")
    ufunc.at(_unwrap(a), _unwrap(slices), _unwrap(value))


def scatter_add(a, slices, value):
    """``a[slices] += value`` with repeated indices adding up (cupyx.scatter_add)."""
    _scatter(np.add, "scatter_add", "iILQefd", a, slices, value)


def scatter_max(a, slices, value):
    """``a[slices] = max(a[slices], value)`` over repeated indices too (cupyx.scatter_max)."""
    _scatter(np.maximum, "scatter_max", "iILQfd", a, slices, value)


def scatter_min(a, slices, value):
    """``a[slices] = min(a[slices], value)`` over repeated indices too (cupyx.scatter_min)."""
    _scatter(np.minimum, "scatter_min", "iILQfd", a, slices, value)


from cupyx import scipy  # noqa: E402,F401
