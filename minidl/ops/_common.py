"""What every op family shares: the one place a kernel module is chosen, and argument normalisation."""
from __future__ import annotations

import importlib

import numpy as np


def kernels_for(xp, family):
    """``minidl.kernels.cpu.<family>`` for NumPy arrays, ``minidl.kernels.cuda.<family>`` for CuPy arrays."""
    device = "cpu" if xp is np else "cuda"
    return importlib.import_module(f"minidl.kernels.{device}.{family}")


def pair(value, name):
    """An int or a pair of ints as an (h, w) tuple of ints; ``name`` is used in the error message."""
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ValueError(f"{name}: expected an int or a pair of ints, got {value!r}")
        return int(value[0]), int(value[1])
    return int(value), int(value)
