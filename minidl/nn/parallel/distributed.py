"""DistributedDataParallel: average the gradients of all processes with bucketed all-reduce.

How one step goes (PyTorch's design, in small):

1. At construction, rank 0's parameters and buffers are broadcast, so every process starts from
   the same model. The parameters are split into *buckets* of about ``bucket_cap_mb``, in reverse
   order of ``parameters()`` (roughly the order backward produces their gradients).
2. Each parameter gets a post-accumulate-grad hook (``Tensor.register_post_accumulate_grad_hook``).
   During backward, as soon as every gradient of a bucket is complete, the bucket is flattened
   and an asynchronous all-reduce (average) starts on it, while backward goes on with the layers
   below; buckets start in index order, the same on every rank.
3. When the last bucket has started, each one is waited for and its averaged values written back
   into the parameters' ``.grad``. The optimizer then steps identically everywhere.

``no_sync()`` skips step 2 for gradient accumulation: gradients add up locally in ``.grad``, and
the next backward outside ``no_sync`` all-reduces the accumulated sums.
"""
from __future__ import annotations

import contextlib

from minidl import distributed as dist
from minidl.backend import get_array_module
from minidl.grad_mode import is_grad_enabled
from minidl.tensor import Tensor

from ..module import Module


class _Bucket:
    def __init__(self, params):
        self.params = params
        self.ready = set()  # ids of parameters whose gradient is complete
        self.work = self.flat = None


class DistributedDataParallel(Module):
    """Wrap ``module`` for data-parallel training (``torch.nn.parallel.DistributedDataParallel``).

    Args:
        module: the model; every rank builds the same one.
        broadcast_buffers: copy rank 0's buffers (BatchNorm's running statistics) to every rank at
            each forward in training mode (PyTorch's default), so evaluation agrees across ranks.
        process_group: the group to average over (default: the one of ``init_process_group``).
        bucket_cap_mb: bucket size in MiB (25, as PyTorch).
        find_unused_parameters: walk the graph of each forward's output and count parameters it
            does not reach as ready (their gradient is zeros on this rank), so that models which
            skip branches do not leave a bucket waiting.
        device_ids, output_device, dim, gradient_as_bucket_view, static_graph: accepted for
            PyTorch's signature; one process drives one device, so they change nothing here.

    The wrapped model is ``.module``; ``state_dict`` keys start with ``module.`` as PyTorch's.
    """

    def __init__(self, module, device_ids=None, output_device=None, dim=0, broadcast_buffers=True,
                 process_group=None, bucket_cap_mb=25, find_unused_parameters=False, check_reduction=False,
                 gradient_as_bucket_view=False, static_graph=False):
        super().__init__()
        if bucket_cap_mb is None or bucket_cap_mb <= 0:
            raise ValueError(f"bucket_cap_mb: expected a positive size in MiB, got {bucket_cap_mb!r}")
        self.module = module
        self.process_group = process_group
        self.world_size = dist.get_world_size(process_group)
        self.broadcast_buffers = broadcast_buffers
        self.bucket_cap_mb = bucket_cap_mb
        self.find_unused_parameters = find_unused_parameters
        self.require_backward_grad_sync = True
        self._sync_module_states()
        names = {id(p): n for n, p in module.named_parameters()}
        params = [p for p in module.parameters() if p.requires_grad]
        self._names = [names[id(p)] for p in params]
        self._buckets = self._make_buckets(params, int(bucket_cap_mb * 1024 * 1024))
        self._bucket_of = {id(p): b for b in self._buckets for p in b.params}
        self._next = 0  # the next bucket to start, in index order
        self._handles = [p.register_post_accumulate_grad_hook(self._grad_ready) for p in params]

    # ------------------------------------------------------------------ set-up
    def _sync_module_states(self):
        """Every rank takes rank 0's parameters and buffers."""
        if self.world_size == 1:
            return
        for t in list(self.module.parameters()) + [b for b in self.module.buffers() if b is not None]:
            dist.broadcast(t, 0, group=self.process_group)

    @staticmethod
    def _make_buckets(params, cap):
        """Consecutive runs of ``reversed(params)`` of at most ``cap`` bytes (at least one parameter each),
        one dtype per bucket."""
        buckets, current, size = [], [], 0
        for p in reversed(params):
            nbytes = p.data.nbytes
            if current and (size + nbytes > cap or p.dtype != current[0].dtype):
                buckets.append(_Bucket(current))
                current, size = [], 0
            current.append(p)
            size += nbytes
        if current:
            buckets.append(_Bucket(current))
        return buckets

    def bucket_sizes(self):
        """Parameters per bucket, in the order the buckets are all-reduced."""
        return [len(b.params) for b in self._buckets]

    # ------------------------------------------------------------------ forward
    def forward(self, *inputs, **kwargs):
        self._check_previous_reduction()
        if self.broadcast_buffers and self.training and self.world_size > 1:
            for b in self.module.buffers():
                if b is not None:
                    dist.broadcast(b, 0, group=self.process_group)
        out = self.module(*inputs, **kwargs)
        if self.find_unused_parameters and self.training and self.require_backward_grad_sync and is_grad_enabled():
            self._mark_unused(out)
        return out

    def _check_previous_reduction(self):
        pending = [self._names[i] for i, p in enumerate(self._params())
                   if 0 < len(self._bucket_of[id(p)].ready) and id(p) not in self._bucket_of[id(p)].ready]
        if self._next == 0 and not pending:
            return
        raise RuntimeError(
            "Expected to have finished reduction in the prior iteration before starting a new one: parameters "
            f"that received no gradient: {pending}. Pass find_unused_parameters=True to "
            "DistributedDataParallel if the model does not use every parameter in every forward, and make sure "
            "the loss depends on all of the forward's outputs")

    def _params(self):
        return [p for b in reversed(self._buckets) for p in reversed(b.params)]

    def _mark_unused(self, out):
        """Parameters the output's graph does not reach get zero gradients now (find_unused_parameters)."""
        reached, stack, seen = set(), list(_tensors(out)), set()
        while stack:
            t = stack.pop()
            if id(t) in seen:
                continue
            seen.add(id(t))
            if t._ctx is None:
                reached.add(id(t))
                continue
            stack.extend(p for p in t._ctx.parents if p is not None)
        for p in self._params():
            if id(p) not in reached:
                if p.grad is None:
                    p.grad = Tensor(get_array_module(p.data).zeros_like(p.data))
                self._grad_ready(p)

    # ------------------------------------------------------------------ backward
    @contextlib.contextmanager
    def no_sync(self):
        """Backward passes inside only accumulate local gradients; the first one after synchronises."""
        previous = self.require_backward_grad_sync
        self.require_backward_grad_sync = False
        try:
            yield
        finally:
            self.require_backward_grad_sync = previous

    def _grad_ready(self, param):
        """A parameter's gradient is complete (its post-accumulate-grad hook): start every full bucket."""
        if not self.require_backward_grad_sync:
            return
        bucket = self._bucket_of[id(param)]
        bucket.ready.add(id(param))
        while self._next < len(self._buckets) and len(self._buckets[self._next].ready) == \
                len(self._buckets[self._next].params):
            self._start(self._buckets[self._next])
            self._next += 1
        if self._next == len(self._buckets):
            self._finish()

    def _start(self, bucket):
        xp = get_array_module(bucket.params[0].data)
        bucket.flat = xp.concatenate([p.grad.data.reshape(-1) for p in bucket.params])
        bucket.work = dist.all_reduce(bucket.flat, op=dist.ReduceOp.AVG, group=self.process_group, async_op=True)

    def _finish(self):
        """Wait for every bucket and write the averaged gradients back into ``.grad``."""
        for bucket in self._buckets:
            bucket.work.wait()
            offset = 0
            for p in bucket.params:
                n = p.data.size
                p.grad.data[...] = bucket.flat[offset:offset + n].reshape(p.data.shape)
                offset += n
            bucket.ready.clear()
            bucket.work = bucket.flat = None
        self._next = 0

    def extra_repr(self):
        return f"world_size={self.world_size}, buckets={len(self._buckets)}, bucket_cap_mb={self.bucket_cap_mb}"


def _tensors(out):
    """The Tensors in a forward's output (a Tensor, or tuples, lists and dicts of them)."""
    if isinstance(out, (tuple, list)):
        for o in out:
            yield from _tensors(o)
    elif isinstance(out, dict):
        for o in out.values():
            yield from _tensors(o)
    elif isinstance(out, Tensor):
        yield out
