"""``minidl train MODEL --distributed``: the same training on several processes, launched by MPI.

    mpiexec -n 4 minidl train lenet5 --distributed --batch-size 32     # global batch 4 x 32 = 128

Every rank builds the same model and data; a DistributedSampler gives each rank its share of
every epoch, DistributedDataParallel averages the gradients, and the Trainer sums the metrics
over the ranks. Rank 0 alone prints and writes checkpoints and plots; every rank resumes from
the same checkpoint. An error on one rank ends the whole job (MPI's abort) instead of leaving
the others waiting. Without a launcher the run is a world of one process.
"""
from __future__ import annotations

import contextlib
import os
import sys
import traceback


def add_arguments(p):
    p.add_argument("--distributed", action="store_true",
                   help="data-parallel training on the processes of an MPI launch (mpiexec -n N minidl train "
                        "...): --batch-size per process, global batch = batch size x N; rank 0 prints and writes")
    p.add_argument("--sync-bn", action="store_true",
                   help="with --distributed: batch norm over the global batch (SyncBatchNorm)")


def launch(run, args):
    """Join the process group, run ``run(args)`` with rank 0's output only, leave the group."""
    import minidl.distributed as dist

    if not getattr(args, "distributed", False):
        if getattr(args, "sync_bn", False):
            from . import UsageError

            raise UsageError("--sync-bn needs --distributed")
        return run(args)
    dist.init_process_group("nccl" if args.device == "cuda" else "mpi")
    from . import UsageError

    rank, world = dist.get_rank(), dist.get_world_size()
    try:
        if rank == 0:
            return run(args)
        with open(os.devnull, "w") as quiet, contextlib.redirect_stdout(quiet), contextlib.redirect_stderr(quiet):
            return run(args)
    except UsageError:  # a wrong option: every rank finds it alike, and each says so
        raise
    except BaseException:
        if world > 1:  # the others would wait for this rank forever: end the job
            print(f"rank {rank} of {world}:", file=sys.stderr)
            traceback.print_exc()
            sys.stderr.flush()
            from minidl.distributed.mpi import load_mpi

            load_mpi().COMM_WORLD.Abort(1)
        raise
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


def is_main():
    """True on rank 0 (and outside a process group): the process that prints and writes files."""
    import minidl.distributed as dist

    return not dist.is_initialized() or dist.get_rank() == 0


def sampling(args, dataset, shuffle):
    """DataLoader arguments for ``dataset``: this rank's DistributedSampler, or plain ``shuffle``."""
    if not getattr(args, "distributed", False):
        return {"shuffle": shuffle}
    from minidl.utils.data import DistributedSampler

    return {"sampler": DistributedSampler(dataset, shuffle=shuffle, seed=args.seed or 0)}


def wrap(args, model):
    """The model to train: DistributedDataParallel over it (its batch norm synchronised with --sync-bn)."""
    if not getattr(args, "distributed", False):
        return model
    from minidl.nn.parallel import DistributedDataParallel, SyncBatchNorm

    if args.sync_bn:
        model = SyncBatchNorm.convert_sync_batchnorm(model)
    return DistributedDataParallel(model)


def describe(args, batch_size):
    """The line that states the global batch, or '' outside --distributed."""
    if not getattr(args, "distributed", False):
        return ""
    import minidl.distributed as dist

    world = dist.get_world_size()
    bn = ", SyncBatchNorm" if args.sync_bn else ""
    return (f"distributed: {world} processes ({dist.get_backend()}{bn}), global batch {batch_size} x {world} = "
            f"{batch_size * world}")
