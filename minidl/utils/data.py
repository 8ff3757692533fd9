"""``minidl.utils.data``: ``torch.utils.data``'s names over :mod:`minidl.data`.

    from minidl.utils.data import DataLoader, TensorDataset, random_split, WeightedRandomSampler

The classes are those of :mod:`minidl.data` (datasets, ``DataLoader``, ``default_collate``)
and :mod:`minidl.data.sampler` (the samplers); this module only gives them PyTorch's path.
"""
from minidl.data.dataloader import DataLoader, default_collate
from minidl.data.dataset import ConcatDataset, Dataset, Subset, TensorDataset, random_split
from minidl.data.sampler import (
    BatchSampler,
    RandomSampler,
    Sampler,
    SequentialSampler,
    SubsetRandomSampler,
    WeightedRandomSampler,
)
from minidl.data.distributed import DistributedSampler

__all__ = [
    "DataLoader", "default_collate", "Dataset", "TensorDataset", "Subset", "ConcatDataset", "random_split",
    "Sampler", "SequentialSampler", "RandomSampler", "SubsetRandomSampler", "WeightedRandomSampler", "BatchSampler",
    "DistributedSampler",
]
