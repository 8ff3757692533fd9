"""Devices: "cpu" (NumPy arrays) and "cuda[:N]" (CuPy arrays)."""
from __future__ import annotations


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


_INSTALL_HINT = ("install minidl with the CUDA extra matching the machine's CUDA version: "
                 "pip install 'minidl[cuda12]' (CUDA 12.x) or 'minidl[cuda13]' (CUDA 13.x)")


def gpu_unavailable_reason():
    """None when CUDA tensors can be made here; otherwise a sentence saying what is missing and how to fix it.

    Checked in order: CuPy (the GPU array library), numba-cuda (the kernels'
    compiler), then a driver with at least one visible NVIDIA GPU.
    """
    try:
        import cupy
    except ImportError:
        return f"CuPy is not installed: {_INSTALL_HINT}, on a machine with an NVIDIA GPU"
    try:
        import numba_cuda  # noqa: F401 - numba.cuda's implementation since numba 0.61
    except ImportError:
        try:  # an older numba's own numba.cuda (a submodule: hasattr(numba, "cuda") is False until imported)
            import numba.cuda  # noqa: F401
        except ImportError:
            return f"numba-cuda is not installed: {_INSTALL_HINT}"
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:  # CuPy raises its own CUDARuntimeError without a driver
        return f"CuPy is installed but no NVIDIA GPU is usable (no driver or no device: {exc})"
    if count == 0:
        return "CuPy is installed but no NVIDIA GPU was found (getDeviceCount() == 0)"
    return None


def _require_cupy(index=None):
    """The cupy module, or a RuntimeError saying what is missing; checks ``index`` < device count."""
    reason = gpu_unavailable_reason()
    if reason is not None:
        raise RuntimeError(f"CUDA was requested but {reason}")
    import cupy

    if index is not None:
        count = cupy.cuda.runtime.getDeviceCount()
        if index >= count:
            raise RuntimeError(f"CUDA device cuda:{index} was requested but only {count} GPU(s) are visible "
                               f"(cuda:0 to cuda:{count - 1})")
    return cupy


def move_array(array, target):
    """The array on ``target`` (returns the same object when it is already there)."""
    target = Device(target)
    here = device_of(array)
    if here == target:
        return array
    if target.type == "cpu":
        return array.get()
    cupy = _require_cupy(target.index)
    with cupy.cuda.Device(target.index):
        return cupy.asarray(array)


def is_available() -> bool:
    """True when CuPy imports and at least one GPU is visible, as ``torch.cuda.is_available()``."""
    return gpu_unavailable_reason() is None


def device_count() -> int:
    """Number of visible NVIDIA GPUs (0 without CuPy or a driver)."""
    if not is_available():
        return 0
    import cupy

    return int(cupy.cuda.runtime.getDeviceCount())


def synchronize(device=None) -> None:
    """Wait for all work queued on a GPU (``cuda:0`` by default) to finish: time GPU code only after this."""
    target = Device(device if device is not None else "cuda")
    if target.type != "cuda":
        raise ValueError(f"synchronize: expected a CUDA device, got {target}")
    cupy = _require_cupy(target.index)
    with cupy.cuda.Device(target.index):
        cupy.cuda.runtime.deviceSynchronize()
