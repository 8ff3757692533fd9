"""Map-style datasets: ``Dataset``, ``TensorDataset``, ``Subset``, ``ConcatDataset`` and ``random_split``.

The names, arguments and semantics follow ``torch.utils.data``. A dataset is anything with
``__getitem__(index)`` and ``__len__()``; the ``DataLoader`` (``dataloader.py``) turns one into
shuffled, collated batches.

Example::

    >>> import numpy as np
    >>> from minidl.data import TensorDataset, random_split
    >>> ds = TensorDataset(np.arange(10.0).reshape(10, 1), np.arange(10))
    >>> train, val = random_split(ds, [0.8, 0.2], generator=0)
    >>> len(train), len(val)
    (8, 2)
"""

import bisect
import math
import numbers

import numpy as np

from minidl import random as _random
from minidl.data.convert import to_numpy

__all__ = ["Dataset", "TensorDataset", "Subset", "ConcatDataset", "CachedDataset", "random_split", "as_generator"]


def global_seed():
    """A fresh 63-bit seed drawn from minidl's global generator (``minidl.manual_seed``)."""
    return int(_random.default_generator().integers(0, 2**63 - 1))


def as_generator(generator, argname="generator"):
    """Return a ``numpy.random.Generator`` from ``None``, an integer seed or a Generator.

    ``None`` gives a generator seeded by a draw from minidl's global generator, so that
    ``minidl.manual_seed(n)`` makes the result reproducible (as ``torch.manual_seed``).
    """
    if generator is None:
        return np.random.default_rng(global_seed())
    if isinstance(generator, np.random.Generator):
        return generator
    if isinstance(generator, _random.Generator):
        return generator.rng
    if isinstance(generator, numbers.Integral) and not isinstance(generator, bool):
        return np.random.default_rng(int(generator))
    raise TypeError(
        f"{argname}: expected None, an int seed, a minidl.Generator or a numpy.random.Generator, "
        f"got {type(generator).__name__}"
    )


class Dataset:
    """Base class of map-style datasets: subclasses define ``__getitem__`` and ``__len__``.

    ``a + b`` concatenates two datasets (a ``ConcatDataset``), as in PyTorch.
    """

    def __getitem__(self, index):
        raise TypeError(f"{type(self).__name__} must define __getitem__(index)")

    def __len__(self):
        raise TypeError(f"{type(self).__name__} must define __len__()")

    def __add__(self, other):
        return ConcatDataset([self, other])


def _to_array(x, argname):
    """The host NumPy array of an array-like or a ``minidl.Tensor`` (no copy where it can)."""
    arr = to_numpy(x)
    if arr.ndim == 0:
        raise ValueError(f"{argname}: expected an array with a leading sample axis, got a scalar")
    return arr


class TensorDataset(Dataset):
    """Samples are the rows of equally long arrays: ``ds[i] == (a[i], b[i], ...)``.

    Args:
        *tensors: NumPy arrays, array-likes or ``minidl.Tensor`` objects, all with the same
            first dimension. They are held as NumPy arrays (no copy) and items are returned as
            NumPy rows; the ``DataLoader``'s default collate turns batches into ``minidl.Tensor``.
    """

    def __init__(self, *tensors):
        if not tensors:
            raise ValueError("tensors: expected at least one array, got none")
        self.tensors = tuple(_to_array(t, f"tensors[{k}]") for k, t in enumerate(tensors))
        n = len(self.tensors[0])
        for k, t in enumerate(self.tensors):
            if len(t) != n:
                raise ValueError(
                    f"tensors[{k}]: expected first dimension {n} (as tensors[0]), got {len(t)}"
                )

    def __getitem__(self, index):
        return tuple(t[index] for t in self.tensors)

    def __len__(self):
        return len(self.tensors[0])


class Subset(Dataset):
    """The items of ``dataset`` at ``indices``, in that order: ``Subset(ds, idx)[k] == ds[idx[k]]``."""

    def __init__(self, dataset, indices):
        self.dataset = dataset
        self.indices = [int(i) for i in indices]

    def __getitem__(self, index):
        if isinstance(index, (list, tuple, np.ndarray)):
            return [self.dataset[self.indices[int(i)]] for i in index]
        return self.dataset[self.indices[index]]

    def __len__(self):
        return len(self.indices)


class CachedDataset(Dataset):
    """``dataset``'s samples, each computed once and then kept: for a small dataset whose transform
    draws nothing at random (the embedded digits resized for LeNet-5), so that every epoch after the
    first skips the per-sample transforms. Not for augmentation: a random transform would be frozen.

    >>> calls = []
    >>> class Squares(Dataset):
    ...     def __len__(self):
    ...         return 3
    ...     def __getitem__(self, i):
    ...         calls.append(i)
    ...         return i * i
    >>> ds = CachedDataset(Squares())
    >>> [ds[i] for i in (2, 2, 1)], calls
    ([4, 4, 1], [2, 1])
    """

    def __init__(self, dataset):
        self.dataset = dataset
        self._items = {}

    def __getitem__(self, index):
        item = self._items.get(index)
        if item is None:
            item = self._items[index] = self.dataset[index]
        return item

    def __len__(self):
        return len(self.dataset)


class ConcatDataset(Dataset):
    """Datasets one after another: index ``i`` falls in the first dataset whose cumulative size exceeds it."""

    def __init__(self, datasets):
        self.datasets = list(datasets)
        if not self.datasets:
            raise ValueError("datasets: expected a non-empty iterable of datasets, got an empty one")
        # cumulative_sizes[k] = len(datasets[0]) + ... + len(datasets[k])
        self.cumulative_sizes = list(np.cumsum([len(d) for d in self.datasets]).tolist())

    def __len__(self):
        return self.cumulative_sizes[-1]

    def __getitem__(self, index):
        n = len(self)
        if index < 0:
            if -index > n:
                raise IndexError(f"index: expected -{n} <= index < {n}, got {index}")
            index = n + index
        if index >= n:
            raise IndexError(f"index: expected -{n} <= index < {n}, got {index}")
        k = bisect.bisect_right(self.cumulative_sizes, index)
        start = 0 if k == 0 else self.cumulative_sizes[k - 1]
        return self.datasets[k][index - start]


def _split_lengths(n, lengths):
    """Integer lengths from ints (which must sum to ``n``) or fractions (which must sum to 1).

    Fractions follow PyTorch: ``floor(n * f)`` each, then the remainder is handed out one by
    one, round-robin from the first split.
    """
    lengths = list(lengths)
    if not lengths:
        raise ValueError("lengths: expected a non-empty sequence, got an empty one")
    all_fractions = all(isinstance(x, numbers.Real) and not isinstance(x, numbers.Integral) for x in lengths)
    if all_fractions and math.isclose(sum(lengths), 1.0) and sum(lengths) <= 1.0 + 1e-9:
        for k, frac in enumerate(lengths):
            if frac < 0 or frac > 1:
                raise ValueError(f"lengths[{k}]: expected a fraction in [0, 1], got {frac}")
        sizes = [math.floor(n * frac) for frac in lengths]
        remainder = n - sum(sizes)
        for k in range(remainder):
            sizes[k % len(sizes)] += 1
        return sizes
    for k, size in enumerate(lengths):
        if not isinstance(size, numbers.Integral) or size < 0:
            raise ValueError(f"lengths[{k}]: expected a non-negative int (or all fractions summing to 1), got {size!r}")
    if sum(lengths) != n:
        raise ValueError(f"lengths: expected sizes summing to the dataset length {n}, got sum {sum(lengths)}")
    return [int(x) for x in lengths]


def random_split(dataset, lengths, generator=None):
    """Split ``dataset`` into non-overlapping random ``Subset``s of the given lengths.

    Args:
        dataset: any map-style dataset.
        lengths: ints summing to ``len(dataset)``, or fractions summing to 1.
        generator: ``None`` (a seed drawn from minidl's global generator), an int seed, a
            ``minidl.Generator`` or a ``numpy.random.Generator``.
    """
    sizes = _split_lengths(len(dataset), lengths)
    rng = as_generator(generator)
    perm = rng.permutation(len(dataset)).tolist()
    subsets = []
    offset = 0
    for size in sizes:
        subsets.append(Subset(dataset, perm[offset:offset + size]))
        offset += size
    return subsets
