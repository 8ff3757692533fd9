"""The NCCL backend: collectives between GPUs through CuPy's ``cupy.cuda.nccl``.

One process per GPU. Rank 0 makes NCCL's unique id and hands it to the others through a
store (:mod:`minidl.distributed.store`: MPI when launched by ``mpiexec``, else TCP at
``MASTER_ADDR:MASTER_PORT`` or a shared file); then every call passes device pointers to
NCCL on the current CUDA stream. ``all_reduce_async`` returns at once: NCCL runs on the stream,
and ``wait()`` synchronises it.

The module reads NCCL only through the ``nccl`` object and the ``stream`` it is given, so a
test can hand it a double that moves host memory by pointer (tests/test_distributed.py).
"""
from __future__ import annotations

import numpy as np

from .group import ProcessGroup, Work

# NumPy dtype -> name of NCCL's data type constant
_DTYPES = {"float16": "NCCL_FLOAT16", "float32": "NCCL_FLOAT32", "float64": "NCCL_FLOAT64", "int8": "NCCL_INT8",
           "uint8": "NCCL_UINT8", "int32": "NCCL_INT32", "int64": "NCCL_INT64", "uint32": "NCCL_UINT32",
           "uint64": "NCCL_UINT64"}
_OPS = {"sum": "NCCL_SUM", "max": "NCCL_MAX", "min": "NCCL_MIN"}


def load_nccl():
    """``cupy.cuda.nccl``, or an ImportError that says what to install."""
    try:
        from cupy.cuda import nccl
    except ImportError as e:
        raise ImportError("the nccl backend needs CuPy with NCCL: pip install cupy-cuda12x nvidia-nccl-cu12") from e
    if not getattr(nccl, "available", True):
        raise ImportError("cupy.cuda.nccl is present but NCCL is not: pip install nvidia-nccl-cu12")
    return nccl


def pointer(array):
    """The address of an array's first element: CuPy's device pointer (NumPy's host one for test doubles)."""
    return array.data.ptr if hasattr(array.data, "ptr") else array.ctypes.data


class NCCLGroup(ProcessGroup):
    """One NCCL communicator over ``world_size`` GPUs.

    Args:
        rank, world_size: this process's place.
        exchange: ``exchange(uid or None) -> uid``: rank 0 passes NCCL's unique id, every rank gets it
            back (a store's ``broadcast_object``).
        nccl: the NCCL module (default ``cupy.cuda.nccl``).
        stream: the stream the calls run on (default CuPy's current stream).
        xp: the array module for the buffers it makes itself (default CuPy).
    """

    name = "nccl"

    def __init__(self, rank, world_size, exchange, nccl=None, stream=None, xp=None):
        super().__init__(rank, world_size)
        self.nccl = load_nccl() if nccl is None else nccl
        if stream is None or xp is None:
            import cupy

            stream, xp = stream or cupy.cuda.get_current_stream(), xp or cupy
        self.stream, self.xp = stream, xp
        uid = exchange(self.nccl.get_unique_id() if rank == 0 else None)
        self.comm = self.nccl.NcclCommunicator(world_size, uid, rank)
        self._avg = getattr(self.nccl, "NCCL_AVG", None)  # NCCL >= 2.10

    def _dtype(self, array):
        name = _DTYPES.get(np.dtype(array.dtype).name)
        if name is None:
            raise TypeError(f"nccl backend: no NCCL type for dtype {array.dtype}; use one of {sorted(_DTYPES)}")
        return getattr(self.nccl, name)

    def _op(self, op):
        if op == "avg" and self._avg is not None:
            return self._avg, False
        return getattr(self.nccl, _OPS["sum" if op == "avg" else op]), op == "avg"

    def all_reduce_async(self, array, op):
        code, divide = self._op(op)
        ptr = pointer(array)
        self.comm.allReduce(ptr, ptr, array.size, self._dtype(array), code, self.stream.ptr)
        if divide:  # an NCCL without ncclAvg: the sum, divided on the same stream
            array /= self.world_size
        return Work(self.stream.synchronize)

    def all_reduce(self, array, op):
        self.all_reduce_async(array, op).wait()

    def broadcast(self, array, src):
        ptr = pointer(array)
        self.comm.broadcast(ptr, ptr, array.size, self._dtype(array), src, self.stream.ptr)
        self.stream.synchronize()

    def all_gather(self, send, recv):
        self.comm.allGather(pointer(send), pointer(recv), send.size, self._dtype(send), self.stream.ptr)
        self.stream.synchronize()

    def reduce_scatter(self, send, recv, op):
        code, divide = self._op(op)
        self.comm.reduceScatter(pointer(send), pointer(recv), recv.size, self._dtype(send), code, self.stream.ptr)
        if divide:
            recv /= self.world_size
        self.stream.synchronize()

    def barrier(self):
        self.all_reduce(self.xp.zeros(1, dtype=np.float32), "sum")  # NCCL has no barrier: a tiny all-reduce

    def destroy(self):
        self.comm.destroy()

