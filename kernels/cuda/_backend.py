"""The little the CUDA kernels need from their surroundings: an array module and a launcher.

Every wrapper in ``kernels/cuda`` is written once and runs in two worlds:

* on a GPU, its inputs are CuPy arrays: ``xp`` is ``cupy``, matrix products go to
  cuBLAS through ``cupy.matmul``, and the ``numba.cuda`` kernels take the CuPy
  arrays directly (through ``__cuda_array_interface__``, no copy);
* under the Numba CUDA simulator (``NUMBA_ENABLE_CUDASIM=1``, set before
  ``numba.cuda`` is first imported), its inputs are NumPy arrays: ``xp`` is
  ``numpy`` and the same kernels run thread by thread on the CPU. This is how CI,
  which has no GPU, checks the kernels' logic against ``kernels/cpu``.

>>> import numpy as np
>>> array_module(np.zeros(3)) is np
True
>>> launch_config(1000)
(4, 256)
"""
from __future__ import annotations

import numba
import numpy as np
from numba import cuda  # noqa: F401 - re-exported for the kernel modules

# Threads per block for the element-wise kernels: a multiple of the warp size
# (32) that keeps enough warps per multiprocessor on every GPU since Pascal.
THREADS = 256
# Threads per block for the kernels that reduce with shared memory (one block per
# channel or row). A power of two: the tree reduction halves it each step.
REDUCE_THREADS = 128
WARP = 32
# The simulator runs every thread of a block as a Python thread and pays about
# 60 ms per block plus a barrier per ``syncthreads``: reductions there use blocks
# of 8 threads, which still take the same code path (a strided loop, then a tree
# of several halving steps). Read once, at import, like numba's own setting.
SIMULATOR = bool(numba.config.ENABLE_CUDASIM)


def is_cupy(array) -> bool:
    return type(array).__module__.startswith("cupy")


def array_module(*arrays):
    """``cupy`` when any argument is a CuPy array, ``numpy`` otherwise (the simulator's world)."""
    for a in arrays:
        if a is not None and is_cupy(a):
            import cupy

            return cupy
    return np


def launch_config(total, threads=THREADS):
    """(blocks, threads per block) covering ``total`` threads, one per element.

    Small launches get a smaller block (rounded up to whole warps): on a GPU that
    only trims idle threads, and the simulator runs every thread of a block as a
    Python thread, so idle ones would cost real time there.
    """
    total = max(int(total), 1)
    threads = min(threads, -(-total // WARP) * WARP)
    return -(-total // threads), threads


def current_stream(*arrays):
    """The stream to launch on: CuPy's current stream, so that a kernel is ordered after the CuPy work
    that made its inputs and before the CuPy work that reads its outputs (numba-cuda would otherwise
    use the legacy default stream, and a program using ``with cupy.cuda.Stream():`` would race).
    0 (the default stream) for NumPy arrays under the simulator."""
    xp = array_module(*arrays)
    if xp is np:
        return 0
    stream = xp.cuda.get_current_stream()
    if SIMULATOR:  # the simulator runs everything in order and ignores the stream
        return stream
    return _external_stream(stream.ptr)


_EXTERNAL_STREAMS = {}


def _external_stream(ptr):
    """numba-cuda's handle on the CUDA stream ``ptr`` (made once per stream)."""
    handle = _EXTERNAL_STREAMS.get(ptr)
    if handle is None:
        handle = _EXTERNAL_STREAMS[ptr] = cuda.external_stream(ptr)
    return handle


def launch(kernel, total, *args, threads=THREADS):
    """Run ``kernel`` with one thread per element over ``total`` elements, on CuPy's current stream.

    Nothing is launched for ``total == 0`` (an empty batch): the output is already complete,
    and a kernel indexing a zero-size array would read out of bounds.
    """
    if int(total) <= 0:
        return
    blocks, per_block = launch_config(total, threads)
    kernel[blocks, per_block, current_stream(*args)](*args)


def reduce_threads():
    """Threads per block for the shared-memory reductions (a power of two)."""
    return 8 if SIMULATOR else REDUCE_THREADS


def launch_reduce(kernel, blocks, *args, buffers=1):
    """Run a block-per-item reduction ``kernel`` with ``buffers`` float64 shared arrays of blockDim entries.

    The shared memory is dynamic (``cuda.shared.array(0, float64)`` in the kernel),
    sized here at launch: ``buffers * threads * 8`` bytes.
    """
    if int(blocks) <= 0:  # no rows or channels: nothing to reduce, no launch (see launch)
        return
    threads = reduce_threads()
    kernel[int(blocks), threads, current_stream(*args), buffers * threads * 8](*args)


def contiguous(xp, array, dtype=None):
    """A C-contiguous array (of ``dtype`` if given) on the same device: kernels index flat memory."""
    return xp.ascontiguousarray(array if dtype is None else array.astype(dtype, copy=False))


def check_float_array(array, name, ndims):
    """Raise TypeError/ValueError naming ``name`` unless it is a float32/float64 array of ``ndims`` dimensions."""
    if not hasattr(array, "ndim") or not hasattr(array, "dtype"):
        raise TypeError(f"{name} must be a cupy.ndarray (or numpy.ndarray under the simulator), "
                        f"got {type(array).__name__}")
    if array.ndim not in ndims:
        expected = " or ".join(f"{d}-D" for d in ndims)
        raise ValueError(f"{name} must be {expected}, got shape {tuple(array.shape)}")
    if array.dtype not in (np.float32, np.float64):
        raise TypeError(f"{name} must be float32 or float64, got {array.dtype}")
