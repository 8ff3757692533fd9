"""The part of cupyx minidl uses, over the fake cupy of tests/fake_cupy (see cupy/__init__.py)."""
import numpy as np

import cupy
from cupy import _refuse_host, _unwrap


def scatter_add(a, slices, value):
    """``a[slices] += value`` with repeated indices adding up (cupyx.scatter_add)."""
    _refuse_host((a, slices, value), "cupyx.scatter_add")
    np.add.at(_unwrap(a), _unwrap(slices), _unwrap(value))


from cupyx import scipy  # noqa: E402,F401
