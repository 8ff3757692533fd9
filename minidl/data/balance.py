"""Class balance of a training set: counts per class, and the two ways ``minidl train --balance``
evens them out.

* ``sampler``: :class:`~minidl.data.sampler.WeightedRandomSampler` with weight ``1 / count`` of
  each sample's class, so every class is drawn equally often (with replacement, one epoch =
  ``len(dataset)`` draws);
* ``loss``: cross-entropy class weights ``N / (C * count)`` (scikit-learn's ``"balanced"``; a
  class seen as often as the average weighs 1).

>>> import numpy as np
>>> counts = class_counts([0, 0, 0, 1], num_classes=2)
>>> counts.tolist(), loss_weights(counts).tolist(), sample_weights([0, 0, 0, 1], counts).tolist()
([3, 1], [0.6666666666666666, 2.0], [0.3333333333333333, 0.3333333333333333, 0.3333333333333333, 1.0])
"""
from __future__ import annotations

import numpy as np

from minidl.data.sampler import WeightedRandomSampler

__all__ = ["dataset_targets", "class_counts", "sample_weights", "loss_weights", "balanced_sampler",
           "format_class_counts"]


def dataset_targets(dataset):
    """The class label of every sample, as an int64 array.

    Read from the ``targets`` of the reader (through ``Subset`` indices and wrappers holding a
    ``dataset``) when it has them; otherwise each sample is loaded once for its label.
    """
    targets = getattr(dataset, "targets", None)
    if targets is not None:
        return np.asarray(targets, np.int64).reshape(-1)
    indices = getattr(dataset, "indices", None)
    inner = getattr(dataset, "dataset", None)
    if inner is not None and indices is not None:
        return dataset_targets(inner)[np.asarray(indices, np.int64)]
    if inner is not None and len(inner) == len(dataset):
        return dataset_targets(inner)
    return np.asarray([int(dataset[i][1]) for i in range(len(dataset))], np.int64)


def class_counts(targets, num_classes=None):
    """Samples per class, ``(num_classes,)`` int64 (classes never seen count 0)."""
    targets = np.asarray(targets, np.int64)
    return np.bincount(targets, minlength=num_classes or 0).astype(np.int64)


def sample_weights(targets, counts):
    """``1 / count`` of each sample's class: the draw weights that balance the classes."""
    counts = np.asarray(counts, np.float64)
    return 1.0 / counts[np.asarray(targets, np.int64)]


def loss_weights(counts):
    """Cross-entropy class weights ``N / (C * count)``; a class without samples weighs 0."""
    counts = np.asarray(counts, np.float64)
    weights = np.zeros_like(counts)
    seen = counts > 0
    weights[seen] = counts.sum() / (seen.sum() * counts[seen])
    return weights


def balanced_sampler(targets, num_samples=None, generator=None):
    """A ``WeightedRandomSampler`` drawing every class equally often (``num_samples``: default all)."""
    targets = np.asarray(targets, np.int64)
    weights = sample_weights(targets, class_counts(targets))
    return WeightedRandomSampler(weights, num_samples or len(targets), replacement=True, generator=generator)


def format_class_counts(counts, class_names=None):
    """``"class counts: 0: 120, 1: 35 (min 35, max 120, ratio 3.4)"``; long lists are shortened."""
    counts = np.asarray(counts)
    names = [str(c) for c in range(len(counts))] if class_names is None else [str(n) for n in class_names]
    parts = [f"{n}: {int(c)}" for n, c in zip(names, counts)]
    if len(parts) > 12:
        parts = parts[:6] + ["..."] + parts[-3:]
    low, high = int(counts.min()), int(counts.max())
    ratio = f"{high / low:.1f}" if low > 0 else "inf"
    return f"class counts: {', '.join(parts)} (min {low}, max {high}, max/min {ratio})"
