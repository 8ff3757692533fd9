"""``minidl.nn.parallel``: data parallelism across processes (``torch.nn.parallel``'s names).

:class:`DistributedDataParallel` wraps a model so that every process computes gradients on its
share of the batch and all of them step with the average; :class:`SyncBatchNorm` normalises with
the statistics of the whole global batch. Both run over :mod:`minidl.distributed`.
"""
from .distributed import DistributedDataParallel
from .sync_batchnorm import SyncBatchNorm

__all__ = ["DistributedDataParallel", "SyncBatchNorm"]
