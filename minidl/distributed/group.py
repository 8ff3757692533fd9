"""What every backend of :mod:`minidl.distributed` provides: a process group over arrays.

A process group runs the collectives on contiguous arrays (NumPy, or CuPy on a GPU) in place;
``minidl.distributed``'s functions turn Tensors into arrays and pick the group. Each backend
is one subclass in its own module: :class:`WorldOfOne` here, ``mpi.MPIGroup``,
``nccl.NCCLGroup``. The reduction ops are named by strings: ``"sum"``, ``"avg"``, ``"max"``,
``"min"``.
"""
from __future__ import annotations

OPS = ("sum", "avg", "max", "min")


class Work:
    """What an ``async_op=True`` collective returns: ``wait()`` finishes it (PyTorch's ``Work``)."""

    def __init__(self, wait=None):
        self._wait = wait
        self._done = wait is None

    def wait(self, timeout=None):
        if not self._done:
            self._wait()
            self._done = True
        return True

    def is_completed(self):
        return self._done


class ProcessGroup:
    """The collectives of ``world_size`` processes; this process is ``rank``.

    Subclasses implement the array-level methods below. ``all_reduce_async`` defaults to the
    blocking call (a backend with non-blocking calls overrides it).
    """

    name = "base"

    def __init__(self, rank, world_size):
        self.rank, self.world_size = int(rank), int(world_size)

    def all_reduce(self, array, op):
        """Reduce ``array`` over all ranks with ``op``, in place."""
        raise TypeError(f"{type(self).__name__} must define all_reduce")

    def all_reduce_async(self, array, op):
        """Start :meth:`all_reduce`; returns a :class:`Work` whose ``wait()`` leaves the result in ``array``."""
        self.all_reduce(array, op)
        return Work()

    def broadcast(self, array, src):
        """Overwrite ``array`` with rank ``src``'s."""
        raise TypeError(f"{type(self).__name__} must define broadcast")

    def all_gather(self, send, recv):
        """``recv[r] = send`` of rank r; ``recv`` has shape (world_size, *send.shape)."""
        raise TypeError(f"{type(self).__name__} must define all_gather")

    def reduce_scatter(self, send, recv, op):
        """``recv`` = rank r's block of the reduction of ``send`` (shape (world_size, *recv.shape))."""
        raise TypeError(f"{type(self).__name__} must define reduce_scatter")

    def barrier(self):
        raise TypeError(f"{type(self).__name__} must define barrier")

    def destroy(self):
        """Release what the backend holds (the communicator); the default holds nothing."""


class WorldOfOne(ProcessGroup):
    """One process: every collective leaves its data as it is (a sum over one rank is the value itself).

    ``minidl.distributed.init_process_group`` makes one when no launcher started several
    processes, so the same training script runs alone without MPI installed.
    """

    name = "world of one"

    def __init__(self, backend="mpi"):
        super().__init__(0, 1)
        self.name = backend

    def all_reduce(self, array, op):
        pass

    def broadcast(self, array, src):
        if src != 0:
            raise ValueError(f"broadcast: src={src} is not a rank of a world of 1 process")

    def all_gather(self, send, recv):
        recv[0] = send

    def reduce_scatter(self, send, recv, op):
        recv[...] = send[0]

    def barrier(self):
        pass
