"""``minidl.cuda.is_available()``, as ``torch.cuda``; and ``minidl.cuda.warmup()``."""
from .device import gpu_unavailable_reason, is_available  # noqa: F401


def warmup(dtype="float32"):
    """Compile every CUDA kernel once for ``dtype`` (minidl's own; PyTorch compiles ahead of time).

    numba-cuda compiles each kernel on its first launch (about a second each, ~30 kernels);
    call this once at start-up so that the first batch is not the slow one. The kernels are
    declared with ``cache=True``, so the compiled code is also kept on disk for later runs.
    Raises RuntimeError without a usable GPU and CuPy.
    """
    import numpy as np

    reason = gpu_unavailable_reason()
    if reason is not None:
        raise RuntimeError(f"minidl.cuda.warmup() compiles the CUDA kernels and needs a GPU: {reason}")
    import cupy

    from minidl.kernels.cuda.warmup import warmup as compile_all

    compile_all(cupy, np.dtype(dtype))
