"""Scratch arrays reused from call to call (per thread), for the large temporaries of the kernels.

A fresh NumPy array of tens of MB is mapped by the OS page by page as it is first written; the
Winograd transforms' V and M and im2col's column buffers are that large and short-lived, and
allocating them afresh cost ~30% of a convolution's forward pass on the development machine.
``workspace(slot, shape, dtype)`` returns a view into a per-thread buffer that grows to the
largest request of that slot and is kept; never return such a view to a caller (outputs are
always fresh arrays). ``release()`` frees this thread's buffers.
"""
import threading

import numpy as np

_scratch = threading.local()


def workspace(slot, shape, dtype):
    """An uninitialised array of ``shape`` and ``dtype`` backed by this thread's buffer ``slot``."""
    buffers = getattr(_scratch, "buffers", None)
    if buffers is None:
        buffers = _scratch.buffers = {}
    dtype = np.dtype(dtype)
    size = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    buf = buffers.get(slot)
    if buf is None or buf.nbytes < size:
        buffers[slot] = None  # free the old one before allocating the larger
        buf = buffers[slot] = np.empty(max(size, 1), dtype=np.uint8)
    return buf[:size].view(dtype).reshape(shape)


def release():
    """Free this thread's scratch buffers (they are allocated again on the next request)."""
    _scratch.buffers = {}


def held_bytes():
    """Bytes held by this thread's buffers."""
    return sum(b.nbytes for b in getattr(_scratch, "buffers", {}).values() if b is not None)
