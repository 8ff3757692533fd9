"""minidl.distributed in one process: the world of one, the collectives over a 2-rank group of threads,
SyncBatchNorm and DistributedDataParallel against one process on the whole batch, the NCCL backend over
a test double of NCCL, the stores, DistributedSampler against torch's, and the post-accumulate-grad hook.

The multi-process runs (mpiexec -n 2) are in tests/test_distributed_mpi.py.
"""
import ctypes
import math
import threading

import numpy as np
import pytest

import minidl
import minidl.distributed as dist
from minidl import nn
from minidl.distributed.group import ProcessGroup
from minidl.distributed.nccl import NCCLGroup
from minidl.distributed.store import FileStore, TCPStore
from minidl.nn.parallel import DistributedDataParallel, SyncBatchNorm
from minidl.utils.data import DistributedSampler


# ---------------------------------------------------------------------- a group of threads
class _Shared:
    def __init__(self, n):
        self.barrier = threading.Barrier(n, timeout=30)
        self.slots = [None] * n


class ThreadGroup(ProcessGroup):
    """Ranks as threads of this process: each collective swaps copies through shared slots."""

    name = "threads"

    def __init__(self, shared, rank):
        super().__init__(rank, len(shared.slots))
        self.shared = shared

    def _exchange(self, array):
        self.shared.slots[self.rank] = np.array(array, copy=True)
        self.shared.barrier.wait()
        values = list(self.shared.slots)
        self.shared.barrier.wait()
        return values

    def all_reduce(self, array, op):
        v = np.stack(self._exchange(array))
        array[...] = {"sum": v.sum(0), "avg": v.sum(0) / len(v), "max": v.max(0), "min": v.min(0)}[op]

    def broadcast(self, array, src):
        array[...] = self._exchange(array)[src]

    def all_gather(self, send, recv):
        recv[...] = np.stack(self._exchange(send))

    def reduce_scatter(self, send, recv, op):
        full = send.copy()
        self.all_reduce(full, op)
        recv[...] = full[self.rank]

    def barrier(self):
        self.shared.barrier.wait()


def run_ranks(fn, n=2):
    """fn(group) on n threads, one per rank; their results in rank order (the first error is raised)."""
    shared = _Shared(n)
    results, errors = [None] * n, []

    def target(rank):
        try:
            results[rank] = fn(ThreadGroup(shared, rank))
        except BaseException as e:  # noqa: BLE001 - handed to the test
            errors.append(e)
            shared.barrier.abort()

    threads = [threading.Thread(target=target, args=(r,)) for r in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    real = [e for e in errors if not isinstance(e, threading.BrokenBarrierError)]
    if real or errors:
        raise (real or errors)[0]
    return results


@pytest.fixture
def world_of_one(monkeypatch):
    for name in ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK", "MPI_LOCALNRANKS", "WORLD_SIZE", "RANK"):
        monkeypatch.delenv(name, raising=False)
    dist.init_process_group("mpi")
    yield
    dist.destroy_process_group()


# ---------------------------------------------------------------------- the world of one
def test_world_of_one_needs_no_mpi(world_of_one):
    assert dist.is_initialized() and dist.get_rank() == 0 and dist.get_world_size() == 1
    assert dist.get_backend() == "mpi"
    t = minidl.tensor([1.0, -2.0, 3.0])
    for op in (dist.ReduceOp.SUM, dist.ReduceOp.AVG, dist.ReduceOp.MAX, dist.ReduceOp.MIN):
        dist.all_reduce(t, op=op)
        assert t.tolist() == [1.0, -2.0, 3.0]
    out = [minidl.zeros(3)]
    dist.all_gather(out, t)
    assert out[0].tolist() == [1.0, -2.0, 3.0]
    r = minidl.zeros(2)
    dist.reduce_scatter(r, [minidl.tensor([5.0, 6.0])])
    assert r.tolist() == [5.0, 6.0]
    dist.broadcast(t, src=0)
    dist.barrier()
    with pytest.raises(ValueError, match="src=1"):
        dist.broadcast(t, src=1)
    with pytest.raises(RuntimeError, match="twice"):
        dist.init_process_group("mpi")


def test_errors_outside_a_group(monkeypatch):
    assert not dist.is_initialized()
    with pytest.raises(RuntimeError, match="init_process_group"):
        dist.get_rank()
    with pytest.raises(ValueError, match="'mpi'.*'nccl'"):
        dist.init_process_group("gloo")
    monkeypatch.setenv("WORLD_SIZE", "4")
    for name in ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK", "MPI_LOCALNRANKS"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(RuntimeError, match="mpiexec -n N"):
        dist.init_process_group("mpi")
    assert not dist.is_initialized()


# ---------------------------------------------------------------------- collectives on 2 ranks
def test_collectives_two_ranks():
    def job(g):
        r = g.rank
        out = {}
        for op, name in ((dist.ReduceOp.SUM, "sum"), ("avg", "avg"), ("max", "max"), ("min", "min")):
            t = minidl.tensor([1.0 + r, 10.0 - 4 * r])
            dist.all_reduce(t, op=op, group=g)
            out[name] = t.tolist()
        a = np.arange(6, dtype=np.float64).reshape(2, 3)[:, ::2] * (r + 1)  # a strided view: written back
        work = dist.all_reduce(a, group=g, async_op=True)
        work.wait()
        out["view"] = a.tolist()
        b = minidl.tensor([float(r), float(r)])
        dist.broadcast(b, src=1, group=g)
        out["bcast"] = b.tolist()
        gathered = [minidl.zeros(2), minidl.zeros(2)]
        dist.all_gather(gathered, minidl.tensor([r, 2.0 * r]), group=g)
        out["gather"] = [x.tolist() for x in gathered]
        rs = minidl.zeros(2)
        dist.reduce_scatter(rs, [minidl.tensor([1.0, 2.0]) * (r + 1), minidl.tensor([3.0, 4.0]) * (r + 1)], group=g)
        out["scatter"] = rs.tolist()
        return out

    r0, r1 = run_ranks(job)
    for res in (r0, r1):
        assert res["sum"] == [3.0, 16.0] and res["avg"] == [1.5, 8.0]
        assert res["max"] == [2.0, 10.0] and res["min"] == [1.0, 6.0]
        assert res["view"] == [[0.0, 6.0], [9.0, 15.0]]
        assert res["bcast"] == [1.0, 1.0]
        assert res["gather"] == [[0.0, 0.0], [1.0, 2.0]]
    assert r0["scatter"] == [3.0, 6.0] and r1["scatter"] == [9.0, 12.0]


def test_debug_mode_names_the_rank_that_differs():
    def job(g):
        shape = (4, 3) if g.rank == 0 else (4, 2)
        with pytest.raises(RuntimeError) as info:
            dist.all_reduce(np.zeros(shape, dtype=np.float32), group=g)
        return str(info.value)

    dist.set_debug_level("DETAIL")
    try:
        messages = run_ranks(job)
    finally:
        dist.set_debug_level("OFF")
    for rank, text in enumerate(messages):
        assert text.startswith(f"rank {rank}:")
        assert "ranks [1] differ" in text
        assert "rank 0: all_reduce of float32 (4, 3)" in text and "rank 1: all_reduce of float32 (4, 2)" in text

    def dtypes(g):
        dtype = np.float32 if g.rank == 0 else np.float64
        with pytest.raises(RuntimeError, match="rank 1: all_reduce of float64"):
            dist.all_reduce(np.zeros(3, dtype=dtype), group=g)

    dist.set_debug_level("DETAIL")
    try:
        run_ranks(dtypes)
    finally:
        dist.set_debug_level("OFF")


# ---------------------------------------------------------------------- SyncBatchNorm
def _bn_reference(x, weight, bias, gy):
    bn = nn.BatchNorm2d(x.shape[1])
    bn.weight.data[...] = weight
    bn.bias.data[...] = bias
    xt = minidl.tensor(x, requires_grad=True)
    y = bn(xt)
    (y * minidl.tensor(gy)).sum().backward()
    return y.numpy(), xt.grad.numpy(), bn.weight.grad.numpy(), bn.bias.grad.numpy(), bn.running_mean.numpy(), \
        bn.running_var.numpy()


def test_sync_batchnorm_equals_batchnorm_on_the_whole_batch():
    rng = np.random.default_rng(0)
    x = rng.normal(1.0, 2.0, (6, 3, 4, 5)).astype(np.float64)
    gy = rng.normal(size=x.shape)
    weight, bias = rng.normal(size=3), rng.normal(size=3)
    y_ref, gx_ref, gw_ref, gb_ref, rm_ref, rv_ref = _bn_reference(x, weight, bias, gy)
    halves = (slice(0, 2), slice(2, 6))  # unequal shares: the counts are all-reduced too

    def job(g):
        bn = SyncBatchNorm(3, process_group=g, dtype=np.float64)
        bn.weight.data[...] = weight
        bn.bias.data[...] = bias
        part = halves[g.rank]
        xt = minidl.tensor(x[part], requires_grad=True)
        y = bn(xt)
        (y * minidl.tensor(gy[part])).sum().backward()
        return y.numpy(), xt.grad.numpy(), bn.weight.grad.numpy(), bn.bias.grad.numpy(), bn.running_mean.numpy(), \
            bn.running_var.numpy()

    results = run_ranks(job)
    np.testing.assert_allclose(np.concatenate([r[0] for r in results]), y_ref, atol=1e-6)
    np.testing.assert_allclose(np.concatenate([r[1] for r in results]), gx_ref, atol=1e-6)
    np.testing.assert_allclose(results[0][2] + results[1][2], gw_ref, atol=1e-6)  # local sums add up
    np.testing.assert_allclose(results[0][3] + results[1][3], gb_ref, atol=1e-6)
    for r in results:
        np.testing.assert_allclose(r[4], rm_ref, atol=1e-9)
        np.testing.assert_allclose(r[5], rv_ref, atol=1e-9)


def test_convert_sync_batchnorm_shares_parameters_and_buffers():
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Sequential(nn.BatchNorm2d(4)))
    model[1].running_mean.data[...] = 0.5
    model.eval()
    converted = SyncBatchNorm.convert_sync_batchnorm(model)
    assert type(converted[1]) is SyncBatchNorm and type(converted[3][0]) is SyncBatchNorm
    assert converted[1].weight is model[1].weight and converted[1].running_mean is model[1].running_mean
    assert not converted[1].training
    assert list(converted.state_dict()) == list(model.state_dict())
    # outside a group of several ranks it is plain batch norm
    x = minidl.randn(2, 1, 6, 6)
    np.testing.assert_allclose(converted(x).numpy(), model(x).numpy())


# ---------------------------------------------------------------------- DistributedDataParallel
def _mlp(seed):
    minidl.manual_seed(seed)
    return nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 3))


def _train(model, batches, steps=3):
    opt = minidl.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    for x, y in batches[:steps]:
        opt.zero_grad()
        minidl.nn.functional.cross_entropy(model(minidl.tensor(x)), minidl.tensor(y)).backward()
        opt.step()


def _batches(seed=1, n=8):
    rng = np.random.default_rng(seed)
    return [(rng.normal(size=(n, 6)).astype(np.float32), rng.integers(0, 3, n)) for _ in range(3)]


def test_ddp_two_ranks_equal_one_process_on_the_whole_batch():
    batches = _batches()
    reference = _mlp(0)
    _train(reference, batches)
    expected = {k: v.numpy() for k, v in reference.state_dict().items()}

    models = [_mlp(0), _mlp(7)]  # different starts: the construction broadcasts rank 0's

    def job(g):
        model = models[g.rank]
        ddp = DistributedDataParallel(model, process_group=g, bucket_cap_mb=200 / 2**20)  # 200-byte buckets
        half = slice(4 * g.rank, 4 * g.rank + 4)
        _train(ddp, [(x[half], y[half]) for x, y in batches])
        return ddp.bucket_sizes(), {k: v.numpy() for k, v in model.state_dict().items()}

    results = run_ranks(job)
    # reversed parameters: 4.bias 12 B + 4.weight 96 B + 2.bias 32 B | 2.weight 256 B | 0.bias 32 B | 0.weight 192 B
    assert results[0][0] == [3, 1, 1, 1]
    for _, state in results:
        for k, v in expected.items():
            np.testing.assert_allclose(state[k], v, atol=1e-6, err_msg=k)


def test_ddp_buckets_and_no_sync_accumulation():
    rng = np.random.default_rng(2)
    xs = [rng.normal(size=(4, 6)).astype(np.float32) for _ in range(2)]  # two micro-batches per rank

    def grads(model):
        return [p.grad.numpy().copy() for p in model.parameters()]

    reference = _mlp(0)
    for r in range(2):
        for k in range(2):
            (reference(minidl.tensor(xs[k] * (r + 1))).sum() / 2).backward()  # the mean over the two ranks
    expected = grads(reference)

    models = [_mlp(0), _mlp(0)]

    def job(g):
        model = models[g.rank]
        ddp = DistributedDataParallel(model, process_group=g)  # 25 MiB: one bucket for everything
        assert ddp.bucket_sizes() == [6]
        with ddp.no_sync():
            ddp(minidl.tensor(xs[0] * (g.rank + 1))).sum().backward()
        local = grads(model)
        ddp(minidl.tensor(xs[1] * (g.rank + 1))).sum().backward()
        return local, grads(model)

    (local0, synced0), (local1, synced1) = run_ranks(job)
    assert not np.allclose(local0[0], local1[0])  # no_sync kept the ranks' own gradients
    for a, b, e in zip(synced0, synced1, expected):
        np.testing.assert_allclose(a, e, atol=1e-5)
        np.testing.assert_allclose(b, e, atol=1e-5)


def test_ddp_unused_parameters():
    class TwoHeads(nn.Module):
        def __init__(self):
            super().__init__()
            self.body, self.used, self.unused = nn.Linear(3, 3), nn.Linear(3, 1), nn.Linear(3, 1)

        def forward(self, x):
            return self.used(self.body(x))

    x = np.ones((2, 3), dtype=np.float32)

    def job(g, models, find):
        ddp = DistributedDataParallel(models[g.rank], process_group=g, find_unused_parameters=find)
        ddp(minidl.tensor(x)).sum().backward()
        if not find:
            with pytest.raises(RuntimeError, match="unused.weight"):
                ddp(minidl.tensor(x))
            return None
        return ddp.module.unused.weight.grad.numpy()

    stuck = [TwoHeads(), TwoHeads()]
    run_ranks(lambda g: job(g, stuck, False))
    found = [TwoHeads(), TwoHeads()]
    for grad in run_ranks(lambda g: job(g, found, True)):
        assert grad.shape == (1, 3) and not grad.any()


# ---------------------------------------------------------------------- the NCCL backend, over a double
class FakeNccl:
    """cupy.cuda.nccl's calls, on host memory addressed by pointer, between threads of this process."""

    NCCL_INT8, NCCL_UINT8, NCCL_INT32, NCCL_UINT32, NCCL_INT64, NCCL_UINT64 = 0, 1, 2, 3, 4, 5
    NCCL_FLOAT16, NCCL_FLOAT32, NCCL_FLOAT64 = 6, 7, 8
    NCCL_SUM, NCCL_PROD, NCCL_MAX, NCCL_MIN = 0, 1, 2, 3
    _NP = {0: np.int8, 1: np.uint8, 2: np.int32, 3: np.uint32, 4: np.int64, 5: np.uint64, 6: np.float16,
           7: np.float32, 8: np.float64}

    def __init__(self, world, avg=True):
        self.shared = _Shared(world)
        self.calls = []
        if avg:
            self.NCCL_AVG = 4

    def get_unique_id(self):
        return tuple(range(128))

    def NcclCommunicator(self, ndev, uid, rank):  # noqa: N802 - cupy's name
        assert uid == tuple(range(128)) and ndev == len(self.shared.slots)
        return _FakeComm(self, rank)


class _FakeComm:
    def __init__(self, nccl, rank):
        self.nccl, self.rank = nccl, rank
        self.group = ThreadGroup(nccl.shared, rank)

    def _view(self, ptr, count, dtype):
        dtype = np.dtype(self.nccl._NP[dtype])
        return np.frombuffer((ctypes.c_char * (count * dtype.itemsize)).from_address(ptr), dtype=dtype)

    def allReduce(self, send, recv, count, dtype, op, stream):  # noqa: N802
        self.nccl.calls.append(("allReduce", op))
        out = self._view(recv, count, dtype)
        out[...] = self._view(send, count, dtype)
        self.group.all_reduce(out, {0: "sum", 2: "max", 3: "min", 4: "avg"}[op])

    def broadcast(self, send, recv, count, dtype, root, stream):
        out = self._view(recv, count, dtype)
        out[...] = self._view(send, count, dtype)
        self.group.broadcast(out, root)

    def allGather(self, send, recv, count, dtype, stream):  # noqa: N802
        world = self.group.world_size
        recv_view = self._view(recv, count * world, dtype).reshape(world, count)
        self.group.all_gather(self._view(send, count, dtype), recv_view)

    def reduceScatter(self, send, recv, count, dtype, op, stream):  # noqa: N802
        world = self.group.world_size
        self.group.reduce_scatter(self._view(send, count * world, dtype).reshape(world, count),
                                  self._view(recv, count, dtype), {0: "sum", 2: "max", 3: "min", 4: "avg"}[op])

    def destroy(self):
        self.nccl.calls.append(("destroy",))


class _HostStream:
    ptr = 0

    def synchronize(self):
        pass


@pytest.mark.parametrize("has_avg", [True, False])
def test_nccl_backend_logic_over_a_double(tmp_path, has_avg):
    fake = FakeNccl(2, avg=has_avg)
    path = str(tmp_path / "uid")

    def job(g):
        rank = g.rank
        group = NCCLGroup(rank, 2, FileStore(path, rank, timeout=20).broadcast_object, nccl=fake,
                          stream=_HostStream(), xp=np)
        t = minidl.tensor([1.0 + rank, 4.0 * rank])
        dist.all_reduce(t, op="avg", group=group)
        m = np.array([[rank, 5 - rank]], dtype=np.int64)
        dist.all_reduce(m, op="max", group=group)
        b = np.full(3, rank, dtype=np.float64)
        dist.broadcast(b, src=1, group=group)
        gathered = [np.zeros(2, np.float32), np.zeros(2, np.float32)]
        dist.all_gather(gathered, np.array([rank, rank + 10], np.float32), group=group)
        rs = np.zeros(2, np.float32)
        dist.reduce_scatter(rs, [np.ones(2, np.float32) * (rank + 1), np.ones(2, np.float32) * 10 * (rank + 1)],
                            group=group)
        group.barrier()
        with pytest.raises(TypeError, match="bool"):
            group.all_reduce(np.zeros(2, dtype=bool), "sum")
        group.destroy()
        return t.tolist(), m.tolist(), b.tolist(), [x.tolist() for x in gathered], rs.tolist()

    results = run_ranks(job)
    for t, m, b, gathered, rs in results:
        assert t == [1.5, 2.0] and m == [[1, 5]] and b == [1.0, 1.0, 1.0]
        assert gathered == [[0.0, 10.0], [1.0, 11.0]]
    assert [r[4] for r in results] == [[3.0, 3.0], [30.0, 30.0]]
    ops = [c[1] for c in fake.calls if c[0] == "allReduce"]
    assert (4 in ops) == has_avg  # ncclAvg when NCCL has it, else a sum divided afterwards
    assert ("destroy",) in fake.calls


def test_tcp_store_hands_rank_0s_object_to_everyone():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    got = run_ranks(lambda g: TCPStore("127.0.0.1", port, g.rank, 3, timeout=20).broadcast_object(
        {"uid": (1, 2, 3)} if g.rank == 0 else None), n=3)
    assert got == [{"uid": (1, 2, 3)}] * 3


# ---------------------------------------------------------------------- DistributedSampler
@pytest.mark.parametrize("n,replicas,drop_last", [(10, 3, False), (10, 3, True), (9, 3, False), (2, 4, False),
                                                 (7, 2, True), (1, 5, False), (13, 4, True)])
def test_distributed_sampler_matches_torch(n, replicas, drop_last):
    torch = pytest.importorskip("torch")
    from torch.utils.data.distributed import DistributedSampler as TorchSampler

    for rank in range(replicas):
        ours = DistributedSampler(range(n), num_replicas=replicas, rank=rank, shuffle=False, drop_last=drop_last)
        theirs = TorchSampler(range(n), num_replicas=replicas, rank=rank, shuffle=False, drop_last=drop_last)
        assert list(ours) == list(theirs) and len(ours) == len(theirs)
        shuffled = DistributedSampler(range(n), num_replicas=replicas, rank=rank, shuffle=True, drop_last=drop_last)
        torch_shuffled = TorchSampler(range(n), num_replicas=replicas, rank=rank, shuffle=True, drop_last=drop_last)
        assert len(shuffled) == len(torch_shuffled) == len(list(shuffled))
    assert torch.__version__


@pytest.mark.parametrize("n,replicas,drop_last", [(10, 3, False), (10, 3, True), (2, 4, False), (12, 4, False)])
def test_distributed_sampler_shuffles_one_permutation_per_epoch(n, replicas, drop_last):
    def shares(seed, epoch):
        out = []
        for rank in range(replicas):
            s = DistributedSampler(range(n), num_replicas=replicas, rank=rank, seed=seed, drop_last=drop_last)
            s.set_epoch(epoch)
            out.append(list(s))
        return out

    parts = shares(0, 0)
    perm = np.random.default_rng(0).permutation(n).tolist()
    num = math.ceil((n - replicas) / replicas) if drop_last and n % replicas else math.ceil(n / replicas)
    padded = (perm * math.ceil(num * replicas / n))[:num * replicas]  # torch's padding by repetition / cut
    assert [padded[r::replicas] for r in range(replicas)] == parts
    merged = sorted(i for p in parts for i in p)
    if not drop_last:
        assert set(merged) == set(range(n)) and len(merged) == num * replicas
    else:
        assert len(set(merged)) == len(merged) == num * replicas
    assert shares(0, 0) == parts
    if n >= 10:  # another epoch or seed, another order
        assert shares(0, 1) != parts and shares(1, 0) != parts


def test_distributed_sampler_errors_and_default_group(world_of_one):
    with pytest.raises(ValueError, match=r"Invalid rank 3, rank should be in the interval \[0, 2\]"):
        DistributedSampler(range(5), num_replicas=3, rank=3)
    s = DistributedSampler(range(5), shuffle=False)
    assert (s.num_replicas, s.rank, list(s)) == (1, 0, [0, 1, 2, 3, 4])


# ---------------------------------------------------------------------- the hook DDP starts from
def test_post_accumulate_grad_hook_runs_as_soon_as_a_leaf_is_complete():
    log = []

    class Spy(minidl.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 1

        @staticmethod
        def backward(ctx, g):
            log.append("spy")
            return g

    x = minidl.tensor([1.0])
    w1 = minidl.tensor([0.0], requires_grad=True)  # read by the first op of the forward
    w2 = minidl.tensor([3.0], requires_grad=True)  # read by the last
    for name, w in (("w1", w1), ("w2", w2)):
        w.register_post_accumulate_grad_hook(lambda t, name=name: log.append((name, t.grad.tolist())))
    (Spy.apply(x * w1).exp() * w2).sum().backward()
    # w2's gradient is complete (and in .grad) before backward has even reached the Spy
    assert log == [("w2", [1.0]), "spy", ("w1", [3.0])]
    with pytest.raises(RuntimeError, match="non-leaf"):
        (w1 * 2).register_post_accumulate_grad_hook(print)


def test_ddp_starts_all_reduces_while_backward_is_still_running():
    log = []

    class Spy(minidl.autograd.Function):  # the first op of the forward: the last of the backward
        @staticmethod
        def forward(ctx, x):
            return x * 1

        @staticmethod
        def backward(ctx, g):
            log.append("backward reached the input")
            return g

    class LoggingGroup(ThreadGroup):
        def all_reduce_async(self, array, op):
            log.append(f"all-reduce of {array.size} values")
            return super().all_reduce_async(array, op)

    net = _mlp(0)
    shared = _Shared(1)
    ddp = DistributedDataParallel(net, process_group=LoggingGroup(shared, 0), bucket_cap_mb=200 / 2**20)
    x = minidl.tensor(np.ones((2, 6), dtype=np.float32))
    ddp(Spy.apply(x.requires_grad_())).sum().backward()
    # buckets: 4.bias + 4.weight + 2.bias (35 values) | 2.weight (64) | 0.bias (8) | 0.weight (48); the first
    # three start before backward has reached the input, the last waits for the first layer's backward
    assert log[:3] == ["all-reduce of 35 values", "all-reduce of 64 values", "all-reduce of 8 values"]
    assert sorted(log[3:]) == ["all-reduce of 48 values", "backward reached the input"]
