"""Data loading: datasets, the DataLoader and image transforms (``minidl.data.transforms``).

Mirrors ``torch.utils.data`` and ``torchvision.transforms``::

    from minidl.data import DataLoader, TensorDataset, random_split
    from minidl.data import transforms as T
"""

from . import transforms
from .dataloader import DataLoader, default_collate
from .dataset import ConcatDataset, Dataset, Subset, TensorDataset, random_split

__all__ = [
    "Dataset", "TensorDataset", "Subset", "ConcatDataset", "random_split",
    "DataLoader", "default_collate", "transforms",
]
