"""Data loading: datasets, the DataLoader and image transforms (``minidl.data.transforms``).

Mirrors ``torch.utils.data`` and ``torchvision.transforms``::

    from minidl.data import DataLoader, TensorDataset, random_split
    from minidl.data import transforms as T

One road from a file to the model; a sample is NumPy (or PIL) until the batch is made::

    file            a PNG, an IDX/pickle record, the embedded digits npz
      -> reader     minidl.datasets.* / TensorDataset: ds[i] -> (PIL image or ndarray, int)
      -> transforms T.Resize, T.RandomAffine, T.ToTensor, ...: PIL/ndarray in, PIL/ndarray out
      -> collate    default_collate: stacks a batch, the only place it becomes a minidl.Tensor
      -> model      Trainer / model(x)

Where a value must come back to the host (a user's Tensor given to a transform, labels and
logits for metrics), it goes through the one helper :func:`to_numpy`.
"""

from minidl.data import transforms
from minidl.data.convert import to_numpy
from minidl.data.dataloader import DataLoader, default_collate
from minidl.data.dataset import CachedDataset, ConcatDataset, Dataset, Subset, TensorDataset, random_split
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
    "Dataset", "TensorDataset", "Subset", "ConcatDataset", "CachedDataset", "random_split",
    "DataLoader", "default_collate", "transforms", "to_numpy",
    "Sampler", "SequentialSampler", "RandomSampler", "SubsetRandomSampler", "WeightedRandomSampler", "BatchSampler",
    "DistributedSampler",
]
