"""DistributedSampler: each process of a data-parallel job reads its own share of the dataset.

``torch.utils.data.distributed.DistributedSampler``'s rules, exactly:

* every rank gets ``num_samples`` indices: ``ceil(len / replicas)``, or with ``drop_last`` and a
  length that does not divide, ``ceil((len - replicas) / replicas)``;
* the index list (``0..len-1``, or with ``shuffle`` a permutation drawn from ``seed + epoch``) is
  padded by repeating its start up to ``num_samples * replicas`` (or cut to it with ``drop_last``),
  and rank r takes every ``replicas``-th index from position r.

So with the same ``seed`` and ``epoch`` the ranks split one permutation between them, and
``set_epoch(e)`` before each epoch gives a new one. The permutation comes from NumPy
(``default_rng(seed + epoch)``), not from ``torch.randperm``: the same partition of another
random order.

    >>> from minidl.utils.data import DistributedSampler
    >>> [list(DistributedSampler(range(5), num_replicas=2, rank=r, shuffle=False)) for r in (0, 1)]
    [[0, 2, 4], [1, 3, 0]]
"""
import math

import numpy as np

from minidl import distributed as dist
from minidl.data.sampler import Sampler


class DistributedSampler(Sampler):
    """Indices of this rank's share of ``dataset`` (``num_replicas`` and ``rank`` default to the process group's)."""

    def __init__(self, dataset, num_replicas=None, rank=None, shuffle=True, seed=0, drop_last=False):
        if num_replicas is None or rank is None:
            if not dist.is_initialized():
                raise RuntimeError("DistributedSampler: pass num_replicas and rank, or call "
                                   "minidl.distributed.init_process_group first")
            num_replicas = dist.get_world_size() if num_replicas is None else num_replicas
            rank = dist.get_rank() if rank is None else rank
        if rank >= num_replicas or rank < 0:
            raise ValueError(f"Invalid rank {rank}, rank should be in the interval [0, {num_replicas - 1}]")
        self.dataset, self.num_replicas, self.rank = dataset, int(num_replicas), int(rank)
        self.epoch, self.drop_last, self.shuffle, self.seed = 0, bool(drop_last), bool(shuffle), int(seed)
        n = len(dataset)
        if self.drop_last and n % self.num_replicas != 0:
            self.num_samples = math.ceil((n - self.num_replicas) / self.num_replicas)
        else:
            self.num_samples = math.ceil(n / self.num_replicas)
        self.total_size = self.num_samples * self.num_replicas

    def __iter__(self):
        n = len(self.dataset)
        if self.shuffle:
            indices = np.random.default_rng(self.seed + self.epoch).permutation(n).tolist()
        else:
            indices = list(range(n))
        if not self.drop_last:
            padding = self.total_size - len(indices)
            if padding <= len(indices):
                indices += indices[:padding]
            else:
                indices += (indices * math.ceil(padding / len(indices)))[:padding]
        else:
            indices = indices[:self.total_size]
        return iter(indices[self.rank:self.total_size:self.num_replicas])

    def __len__(self):
        return self.num_samples

    def set_epoch(self, epoch):
        """Shuffle differently in ``epoch`` (call it at the start of every epoch, on every rank)."""
        self.epoch = int(epoch)
