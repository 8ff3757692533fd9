"""A data-parallel job for tests/test_distributed_mpi.py: ``mpiexec -n 2 python tests/distributed_worker.py OUT``.

Each rank takes its share of the same global batch of 8 and takes 3 SGD-momentum
steps with DistributedDataParallel, for an MLP, LeNet-5 and a small CIFAR ResNet (its BatchNorm
layers converted to SyncBatchNorm); rank 0 writes the weights to OUT/<model>-<world size>.npz,
with ``agree`` = 1 when every rank ended with the same weights. Run alone (no mpiexec) it is the
world of one: the single-process reference on the full batch.

Then, on more than one rank, with the debug check on, rank 1 all-reduces another shape than rank 0;
each rank writes the error it got to OUT/mismatch-<rank>.txt.
"""
import os
import sys

import numpy as np

import minidl
import minidl.distributed as dist
from minidl.models.cifar_resnet import CifarResNet
from minidl.models.lenet import lenet5
from minidl.models.mlp import mlp
from minidl.nn import functional as F
from minidl.nn.parallel import DistributedDataParallel, SyncBatchNorm

GLOBAL_BATCH = 8
MODELS = {  # name -> (builder, input shape)
    "mlp": (lambda: mlp(), (1, 8, 8)),
    "lenet5": (lambda: lenet5(), (1, 32, 32)),
    "resnet8": (lambda: SyncBatchNorm.convert_sync_batchnorm(CifarResNet(1, widths=(8, 16, 32))), (3, 16, 16)),
}


def train(out):
    rank, world = dist.get_rank(), dist.get_world_size()
    share = GLOBAL_BATCH // world
    for name, (build, shape) in MODELS.items():
        minidl.manual_seed(0)
        model = build()
        ddp = DistributedDataParallel(model, bucket_cap_mb=0.02)  # ~20 kB buckets: several per model
        opt = minidl.optim.SGD(ddp.parameters(), lr=0.05, momentum=0.9)
        rng = np.random.default_rng(1)
        for _ in range(3):
            x = rng.normal(size=(GLOBAL_BATCH, *shape)).astype(np.float32)
            y = rng.integers(0, 10, GLOBAL_BATCH)
            mine = slice(rank * share, (rank + 1) * share)
            opt.zero_grad()
            F.cross_entropy(ddp(minidl.tensor(x[mine])), minidl.tensor(y[mine])).backward()
            opt.step()
        state = {k: v.numpy().copy() for k, v in model.state_dict().items()}
        flat = np.concatenate([v.ravel().astype(np.float64) for v in state.values()])
        low, high = flat.copy(), flat.copy()
        dist.all_reduce(low, op=dist.ReduceOp.MIN)
        dist.all_reduce(high, op=dist.ReduceOp.MAX)
        if rank == 0:
            np.savez(os.path.join(out, f"{name}-{world}.npz"), agree=np.array(float((low == high).all())),
                     buckets=np.array(len(ddp.bucket_sizes())), **state)


def mismatch(out):
    dist.set_debug_level("DETAIL")
    rank = dist.get_rank()
    try:
        dist.all_reduce(np.zeros((4, 3 if rank == 0 else 2), dtype=np.float32))
        text = "no error"
    except RuntimeError as e:
        text = str(e)
    with open(os.path.join(out, f"mismatch-{rank}.txt"), "w") as f:
        f.write(text)


def main(out):
    dist.init_process_group("mpi")
    try:
        train(out)
        if dist.get_world_size() > 1:
            mismatch(out)
    finally:
        dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1])
