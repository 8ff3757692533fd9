"""Devices: "cpu" (NumPy arrays) and "cuda[:N]" (CuPy arrays)."""
from __future__ import annotations

import numpy as np


class Device:
    """A device name, as ``torch.device``: ``Device("cpu")``, ``Device("cuda:1")``."""

    def __init__(self, spec="cpu"):
        if isinstance(spec, Device):
            self.type, self.index = spec.type, spec.index
            return
        spec = str(spec)
        kind, _, index = spec.partition(":")
        if kind not in ("cpu", "cuda"):
            raise ValueError(f"device: expected 'cpu', 'cuda' or 'cuda:N', got {spec!r}")
        if index and not index.isdigit():
            raise ValueError(f"device: the index in {spec!r} must be a non-negative integer")
        self.type = kind
        self.index = int(index) if index else (0 if kind == "cuda" else None)

    def __eq__(self, other):
        try:
            other = Device(other)
        except (ValueError, TypeError):
            return NotImplemented
        return self.type == other.type and self.index == other.index

    def __hash__(self):
        return hash((self.type, self.index))

    def __str__(self):
        return self.type if self.index is None else f"{self.type}:{self.index}"

    def __repr__(self):
        return f"device(type='{self.type}'" + ("" if self.index is None else f", index={self.index}") + ")"


device = Device


def device_of(array):
    if type(array).__module__.startswith("cupy"):
        return Device(f"cuda:{array.device.id}")
    return Device("cpu")


def _require_cupy():
    try:
        import cupy
    except ImportError:
        raise RuntimeError(
            "CUDA was requested but CuPy is not installed: install minidl with the 'cuda12' or 'cuda13' extra "
            "(pip install 'minidl[cuda12]') on a machine with an NVIDIA GPU"
        ) from None
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:  # CuPy raises its own CUDARuntimeError without a driver
        raise RuntimeError(f"CUDA was requested but no NVIDIA GPU is usable: {exc}") from None
    if count == 0:
        raise RuntimeError("CUDA was requested but no NVIDIA GPU was found")
    return cupy


def move_array(array, target):
    """The array on ``target`` (returns the same object when it is already there)."""
    target = Device(target)
    here = device_of(array)
    if here == target:
        return array
    if target.type == "cpu":
        return array.get()
    cupy = _require_cupy()
    with cupy.cuda.Device(target.index):
        return cupy.asarray(array)


def is_available() -> bool:
    """True when CuPy imports and at least one GPU is visible."""
    try:
        _require_cupy()
    except RuntimeError:
        return False
    return True
