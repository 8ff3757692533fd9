"""``minidl.distributed``: data-parallel training across processes, with ``torch.distributed``'s names.

    import minidl.distributed as dist
    dist.init_process_group("mpi")          # launched by: mpiexec -n 4 python train.py
    rank, world = dist.get_rank(), dist.get_world_size()
    dist.all_reduce(t, op=dist.ReduceOp.SUM)  # in place, on every rank

Backends (one module each, all subclasses of :class:`group.ProcessGroup`):

* ``"mpi"`` (:mod:`.mpi`, mpi4py): CPUs, any launcher MPI knows (``mpiexec``, ``srun``). Started
  without a launcher, the world is one process and mpi4py is not even imported
  (:class:`group.WorldOfOne`), so a script that calls ``init_process_group`` runs alone as it is.
* ``"nccl"`` (:mod:`.nccl`, ``cupy.cuda.nccl``): one process per GPU; ranks from MPI, or from
  torchrun-style ``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``, ``MASTER_PORT`` (``LOCAL_RANK`` picks
  the GPU), or ``init_method="file:///shared/file"``.

Collectives take Tensors (written in place, as PyTorch) or NumPy/CuPy arrays; ``async_op=True``
returns a :class:`Work` to ``wait()`` on. Ranks that disagree on a collective's shape or dtype
make MPI hang or mix up data; with ``TORCH_DISTRIBUTED_DEBUG=DETAIL`` (or
``set_debug_level("DETAIL")``) every collective first compares the ranks' shapes, dtypes and
ops and raises an error naming the ranks that differ.
"""
from __future__ import annotations

import os

import numpy as np

from minidl.backend import get_array_module
from minidl.tensor import Tensor

from .group import OPS, ProcessGroup, Work, WorldOfOne

__all__ = ["ReduceOp", "Work", "ProcessGroup", "init_process_group", "destroy_process_group", "is_initialized",
           "is_available", "is_mpi_available", "is_nccl_available", "get_rank", "get_world_size", "get_backend",
           "barrier", "all_reduce", "broadcast", "all_gather", "reduce_scatter", "set_debug_level",
           "get_debug_level", "launched_by_mpi"]


class ReduceOp:
    """The reductions of :func:`all_reduce` and :func:`reduce_scatter` (strings work as well: "sum", ...)."""

    SUM = "sum"
    AVG = "avg"
    MAX = "max"
    MIN = "min"


_group = None  # the default process group, set by init_process_group
_debug = os.environ.get("TORCH_DISTRIBUTED_DEBUG", os.environ.get("MINIDL_DISTRIBUTED_DEBUG", "OFF")).upper()
_MPI_ENV = ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK", "MPI_LOCALNRANKS")


# ---------------------------------------------------------------------- the process group
def is_available():
    return True


def is_mpi_available():
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        return False
    return True


def is_nccl_available():
    try:
        from .nccl import load_nccl

        load_nccl()
    except ImportError:
        return False
    return True


def launched_by_mpi():
    """True when an MPI launcher (mpiexec, srun with PMI/PMIx) started this process."""
    return any(name in os.environ for name in _MPI_ENV)


def _env_int(name, given):
    if given is not None and given >= 0:
        return int(given)
    value = os.environ.get(name)
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"environment variable {name}={value!r}: expected an integer") from None


def init_process_group(backend=None, init_method=None, timeout=None, world_size=-1, rank=-1, store=None,
                       group_name="", pg_options=None, device_id=None):
    """Join the job's processes; every process of the job calls it once, before any collective.

    ``backend``: ``"mpi"`` (the default) or ``"nccl"``. ``init_method``: None or ``"env://"`` (the
    environment variables), or ``"file:///path"`` (nccl). ``world_size`` and ``rank`` default to
    the launcher's (MPI's, else ``WORLD_SIZE`` and ``RANK``). ``timeout``: seconds (or a
    ``timedelta``) the nccl rendezvous waits for rank 0.
    """
    global _group
    if _group is not None:
        raise RuntimeError("trying to initialize the default process group twice!")
    backend = "mpi" if backend is None else str(backend).lower()
    if backend not in ("mpi", "nccl"):
        raise ValueError(f"init_process_group: backend {backend!r} is not one of minidl's: 'mpi' (CPUs, mpi4py) "
                         f"or 'nccl' (GPUs, cupy.cuda.nccl)")
    seconds = 300.0 if timeout is None else float(getattr(timeout, "total_seconds", lambda: timeout)())
    world = _env_int("WORLD_SIZE", world_size)
    if backend == "mpi":
        _group = _mpi_group(world, _env_int("RANK", rank))
    else:
        _group = _nccl_group(world, _env_int("RANK", rank), init_method, store, seconds, device_id)


def _mpi_group(world, rank):
    if not launched_by_mpi():
        if world not in (None, 1) or rank not in (None, 0):
            raise RuntimeError(f"the mpi backend takes its ranks from an MPI launcher, but none started this "
                               f"process (WORLD_SIZE={world}, RANK={rank}): run it as `mpiexec -n N python ...` "
                               f"(or `srun`); torchrun-style variables serve the nccl backend")
        return WorldOfOne("mpi")
    from .mpi import MPIGroup

    group = MPIGroup()
    if world not in (None, group.world_size) or rank not in (None, group.rank):
        raise RuntimeError(f"rank {group.rank}: init_process_group was given world_size={world}, rank={rank}, "
                           f"but MPI started {group.world_size} processes and this is rank {group.rank}")
    return group


def _nccl_group(world, rank, init_method, store, seconds, device_id):
    from . import store as _store
    from .nccl import NCCLGroup, load_nccl

    load_nccl()
    if launched_by_mpi():
        from .mpi import load_mpi

        comm = load_mpi().COMM_WORLD
        world, rank = comm.Get_size(), comm.Get_rank()
        store = store or _store.MPIStore(comm)
    if world is None or rank is None:
        raise RuntimeError("the nccl backend needs the world size and this process's rank: launch with mpiexec, "
                           "or set WORLD_SIZE and RANK (torchrun does), or pass world_size= and rank=")
    if store is None:
        if init_method and init_method.startswith("file://"):
            store = _store.FileStore(init_method[len("file://"):], rank, seconds)
        else:
            missing = [n for n in ("MASTER_ADDR", "MASTER_PORT") if n not in os.environ]
            if missing and world > 1:
                raise RuntimeError(f"the nccl backend without MPI meets at MASTER_ADDR:MASTER_PORT; set "
                                   f"{' and '.join(missing)} (rank 0's host and a free port), or use "
                                   f"init_method='file:///shared/path'")
            store = _store.TCPStore(os.environ.get("MASTER_ADDR", "127.0.0.1"), os.environ.get("MASTER_PORT", 29500),
                                    rank, world, seconds)
    import cupy

    local = device_id if device_id is not None else _env_int("LOCAL_RANK", None)
    cupy.cuda.Device(local if local is not None else rank % cupy.cuda.runtime.getDeviceCount()).use()
    return NCCLGroup(rank, world, store.broadcast_object)


def destroy_process_group(group=None):
    """Leave the process group (the default one unless ``group`` is given)."""
    global _group
    target = _group if group is None else group
    if target is None:
        return
    target.destroy()
    if target is _group:
        _group = None


def is_initialized():
    return _group is not None


def _get(group):
    if group is not None:
        return group
    if _group is None:
        raise RuntimeError("Default process group has not been initialized, please make sure to call "
                           "init_process_group.")
    return _group


def get_rank(group=None):
    return _get(group).rank


def get_world_size(group=None):
    return _get(group).world_size


def get_backend(group=None):
    return _get(group).name


def set_debug_level(level):
    """``"OFF"``, ``"INFO"`` or ``"DETAIL"``; any level but OFF compares every collective across ranks first."""
    global _debug
    level = str(level).upper()
    if level not in ("OFF", "INFO", "DETAIL"):
        raise ValueError(f"set_debug_level: expected 'OFF', 'INFO' or 'DETAIL', got {level!r}")
    _debug = level


def get_debug_level():
    return _debug


# ---------------------------------------------------------------------- the debug check
_COLLECTIVES = ("all_reduce", "broadcast", "all_gather", "reduce_scatter")
_DTYPE_NAMES = ("float16", "float32", "float64", "int8", "uint8", "int16", "int32", "int64", "uint32", "uint64",
                "bool", "complex64", "complex128")
_MAX_DIMS = 8


def _signature(what, array, op, src):
    """What a collective is about to do, as int64s that every rank can all-gather."""
    sig = np.full(5 + _MAX_DIMS, -1, dtype=np.int64)
    name = np.dtype(array.dtype).name
    sig[:5] = (_COLLECTIVES.index(what), OPS.index(op) if op else -1,
               _DTYPE_NAMES.index(name) if name in _DTYPE_NAMES else 99, array.ndim, -1 if src is None else src)
    sig[5:5 + min(array.ndim, _MAX_DIMS)] = array.shape[:_MAX_DIMS]
    return sig


def _describe(sig):
    what, op, dtype, ndim, src = (int(v) for v in sig[:5])
    text = f"{_COLLECTIVES[what]} of {_DTYPE_NAMES[dtype] if dtype < len(_DTYPE_NAMES) else 'another dtype'} " \
           f"{tuple(int(v) for v in sig[5:5 + min(ndim, _MAX_DIMS)])}"
    if op >= 0:
        text += f" op={OPS[op]}"
    if src >= 0:
        text += f" src={src}"
    return text


def _check_same(group, what, array, op=None, src=None):
    """Raise on every rank, naming the ranks, when the ranks are not calling the same collective."""
    mine = _signature(what, array, op, src)
    xp = get_array_module(array)
    everyone = xp.empty((group.world_size, mine.size), dtype=np.int64)
    group.all_gather(xp.asarray(mine), everyone)
    everyone = np.asarray(everyone.get() if hasattr(everyone, "get") else everyone)
    if (everyone == everyone[0]).all():
        return
    lines = "; ".join(f"rank {r}: {_describe(sig)}" for r, sig in enumerate(everyone))
    differ = [r for r in range(group.world_size) if not (everyone[r] == everyone[0]).all()]
    raise RuntimeError(f"rank {group.rank}: the ranks disagree on a collective (ranks {differ} differ from "
                       f"rank 0): {lines}. Every rank must call the same collectives with the same shapes, "
                       f"dtypes and ops, in the same order")


# ---------------------------------------------------------------------- collectives
def _array(x, name):
    if isinstance(x, Tensor):
        return x.data
    if hasattr(x, "__array_interface__") or hasattr(x, "__cuda_array_interface__"):
        return x
    raise TypeError(f"{name}: expected a Tensor or a NumPy/CuPy array, got {type(x).__name__}")


def _op(op):
    op = str(op).lower()
    if op not in OPS:
        raise ValueError(f"unknown reduce op {op!r}: expected one of ReduceOp.SUM, AVG, MAX, MIN")
    return op


def _contiguous(array):
    xp = get_array_module(array)
    return array if array.flags.c_contiguous else xp.ascontiguousarray(array)


def _finish(work, buf, array, async_op):
    """Copy a contiguous working buffer back into the caller's array once the collective is done."""
    if buf is not array:
        inner = work

        def wait():
            inner.wait()
            array[...] = buf
        work = Work(wait)
    if async_op:
        return work
    work.wait()
    return None


def all_reduce(tensor, op=ReduceOp.SUM, group=None, async_op=False):
    """Reduce ``tensor`` over all ranks with ``op`` (SUM, AVG, MAX, MIN); every rank gets the result in place."""
    g, op, array = _get(group), _op(op), _array(tensor, "all_reduce")
    if op == "avg" and np.dtype(array.dtype).kind not in "fc":
        raise TypeError(f"all_reduce: ReduceOp.AVG needs a floating-point tensor, got {array.dtype}")
    if _debug != "OFF":
        _check_same(g, "all_reduce", array, op)
    buf = _contiguous(array)
    return _finish(g.all_reduce_async(buf, op), buf, array, async_op)


def broadcast(tensor, src, group=None, async_op=False):
    """Overwrite ``tensor`` on every rank with rank ``src``'s."""
    g, array = _get(group), _array(tensor, "broadcast")
    if not 0 <= src < g.world_size:
        raise ValueError(f"broadcast: src={src} is not a rank of a world of {g.world_size}")
    if _debug != "OFF":
        _check_same(g, "broadcast", array, src=src)
    buf = _contiguous(array)
    g.broadcast(buf, src)
    return _finish(Work(), buf, array, async_op)


def all_gather(tensor_list, tensor, group=None, async_op=False):
    """``tensor_list[r]`` = ``tensor`` of rank r, on every rank (``tensor_list`` holds world-size tensors)."""
    g, array = _get(group), _array(tensor, "all_gather")
    if len(tensor_list) != g.world_size:
        raise ValueError(f"all_gather: tensor_list has {len(tensor_list)} entries, expected world size "
                         f"{g.world_size}")
    if _debug != "OFF":
        _check_same(g, "all_gather", array)
    xp = get_array_module(array)
    recv = xp.empty((g.world_size,) + tuple(array.shape), dtype=array.dtype)
    g.all_gather(_contiguous(array), recv)
    for r, out in enumerate(tensor_list):
        target = _array(out, "all_gather")
        if tuple(target.shape) != tuple(array.shape):
            raise ValueError(f"all_gather: tensor_list[{r}] has shape {tuple(target.shape)}, expected "
                             f"{tuple(array.shape)}")
        target[...] = recv[r]
    return Work() if async_op else None


def reduce_scatter(output, input_list, op=ReduceOp.SUM, group=None, async_op=False):
    """``output`` on rank r = the reduction over ranks of their ``input_list[r]``."""
    g, op, array = _get(group), _op(op), _array(output, "reduce_scatter")
    if len(input_list) != g.world_size:
        raise ValueError(f"reduce_scatter: input_list has {len(input_list)} entries, expected world size "
                         f"{g.world_size}")
    xp = get_array_module(array)
    send = xp.stack([xp.asarray(_array(t, "reduce_scatter"), dtype=array.dtype) for t in input_list])
    if send.shape[1:] != tuple(array.shape):
        raise ValueError(f"reduce_scatter: inputs have shape {send.shape[1:]}, output has {tuple(array.shape)}")
    if _debug != "OFF":
        _check_same(g, "reduce_scatter", send, op)
    buf = _contiguous(array)
    g.reduce_scatter(send, buf, op)
    return _finish(Work(), buf, array, async_op)


def barrier(group=None, async_op=False, device_ids=None):
    """Wait until every rank has reached this call."""
    _get(group).barrier()
    return Work() if async_op else None
