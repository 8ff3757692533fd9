"""Samplers: which dataset indices a ``DataLoader`` visits, in what order, as ``torch.utils.data``.

A sampler is an iterable of indices with a length; a batch sampler is an iterable of lists of
indices. ``DataLoader(ds, sampler=...)`` batches what the sampler yields;
``DataLoader(ds, batch_sampler=...)`` takes the batches as they are::

    >>> import numpy as np
    >>> from minidl.data import BatchSampler, SequentialSampler
    >>> list(BatchSampler(SequentialSampler(range(5)), batch_size=2, drop_last=False))
    [[0, 1], [2, 3], [4]]

Random samplers draw from ``generator`` (a ``minidl.Generator`` or ``numpy.random.Generator``);
without one, each pass draws a fresh seed from minidl's global generator, so
``minidl.manual_seed(n)`` makes the passes repeatable (as in PyTorch).
"""
import numbers

import numpy as np

from minidl import random as _random

__all__ = ["Sampler", "SequentialSampler", "RandomSampler", "SubsetRandomSampler", "WeightedRandomSampler",
           "BatchSampler"]


def _pass_generator(generator):
    """The NumPy generator of one pass: ``generator``'s, or a fresh one seeded from the global generator."""
    if generator is None:
        return np.random.default_rng(int(_random.default_generator().integers(0, 2**63 - 1)))
    return _random.numpy_generator(generator)


def _check_count(value, name):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
        raise ValueError(f"{name} should be a positive integer value, but got {name}={value!r}")
    return int(value)


class Sampler:
    """Base class: subclasses define ``__iter__`` (indices) and usually ``__len__``."""

    def __init__(self, data_source=None):
        pass

    def __iter__(self):
        raise TypeError(f"{type(self).__name__} must define __iter__")


class SequentialSampler(Sampler):
    """``0, 1, ..., len(data_source) - 1``, in order."""

    def __init__(self, data_source):
        self.data_source = data_source

    def __iter__(self):
        return iter(range(len(self.data_source)))

    def __len__(self):
        return len(self.data_source)


class RandomSampler(Sampler):
    """Random indices of ``data_source``: a new permutation each pass, or draws with replacement.

    Args:
        data_source: the dataset (only its length is used).
        replacement: draw ``num_samples`` indices independently (an index may repeat).
        num_samples: indices per pass (default ``len(data_source)``); without replacement, more
            than the dataset's length chains several permutations.
        generator: where the randomness comes from (see the module docstring).
    """

    def __init__(self, data_source, replacement=False, num_samples=None, generator=None):
        if not isinstance(replacement, bool):
            raise TypeError(f"replacement should be a boolean value, but got replacement={replacement!r}")
        self.data_source = data_source
        self.replacement = replacement
        self._num_samples = num_samples
        self.generator = generator
        if num_samples is not None:
            _check_count(num_samples, "num_samples")

    @property
    def num_samples(self):
        return len(self.data_source) if self._num_samples is None else int(self._num_samples)

    def __iter__(self):
        n = len(self.data_source)
        rng = _pass_generator(self.generator)
        if self.replacement:
            yield from rng.integers(0, n, size=self.num_samples).tolist()
            return
        left = self.num_samples
        while left > 0:                               # whole permutations, then part of one
            perm = rng.permutation(n).tolist()
            yield from perm[:left]
            left -= n

    def __len__(self):
        return self.num_samples


class SubsetRandomSampler(Sampler):
    """The given ``indices`` in a new random order each pass."""

    def __init__(self, indices, generator=None):
        self.indices = list(indices)
        self.generator = generator

    def __iter__(self):
        rng = _pass_generator(self.generator)
        return iter([self.indices[k] for k in rng.permutation(len(self.indices)).tolist()])

    def __len__(self):
        return len(self.indices)


class WeightedRandomSampler(Sampler):
    """``num_samples`` indices ``0 .. len(weights) - 1``, index ``i`` drawn with probability ``weights[i] / sum``.

    Args:
        weights: non-negative weights, one per index (they need not sum to 1), e.g. the inverse
            frequency of each sample's class to balance the classes.
        num_samples: indices per pass.
        replacement: draw independently (default); without replacement every index appears at
            most once, so ``num_samples`` may not exceed the number of non-zero weights.
        generator: where the randomness comes from (see the module docstring).

    >>> s = WeightedRandomSampler([0.0, 1.0, 0.0], 4, generator=np.random.default_rng(0))
    >>> list(s)
    [1, 1, 1, 1]
    """

    def __init__(self, weights, num_samples, replacement=True, generator=None):
        num_samples = _check_count(num_samples, "num_samples")
        if not isinstance(replacement, bool):
            raise ValueError(f"replacement should be a boolean value, but got replacement={replacement!r}")
        weights = np.asarray(weights.numpy() if hasattr(weights, "numpy") else weights, dtype=np.float64)
        if weights.ndim != 1:
            raise ValueError(f"weights should be a 1d sequence but given weights have shape {weights.shape}")
        if weights.size == 0 or not np.all(np.isfinite(weights)) or np.any(weights < 0) or weights.sum() <= 0:
            raise ValueError("weights must be finite, non-negative and not all zero")
        if not replacement and num_samples > np.count_nonzero(weights):
            raise ValueError(f"cannot draw {num_samples} samples without replacement from "
                             f"{np.count_nonzero(weights)} non-zero weights")
        self.weights = weights
        self.num_samples = num_samples
        self.replacement = replacement
        self.generator = generator

    def __iter__(self):
        rng = _pass_generator(self.generator)
        p = self.weights / self.weights.sum()
        return iter(rng.choice(self.weights.size, size=self.num_samples, replace=self.replacement, p=p).tolist())

    def __len__(self):
        return self.num_samples


class BatchSampler(Sampler):
    """Group the indices of ``sampler`` into lists of ``batch_size`` (the last one shorter unless ``drop_last``)."""

    def __init__(self, sampler, batch_size, drop_last):
        batch_size = _check_count(batch_size, "batch_size")
        if not isinstance(drop_last, bool):
            raise ValueError(f"drop_last should be a boolean value, but got drop_last={drop_last!r}")
        self.sampler = sampler
        self.batch_size = batch_size
        self.drop_last = drop_last

    def __iter__(self):
        batch = []
        for index in self.sampler:
            batch.append(index)
            if len(batch) == self.batch_size:
                yield batch
                batch = []
        if batch and not self.drop_last:
            yield batch

    def __len__(self):
        if self.drop_last:
            return len(self.sampler) // self.batch_size
        return (len(self.sampler) + self.batch_size - 1) // self.batch_size
