"""Label-aware horizontal flips: a mirrored image may show another class, or no class at all.

A dataset may declare a *flip map*, ``flip_map[c]`` for each class ``c``:

* ``c`` itself: the class looks the same mirrored (a yield sign, a no-entry sign);
* another class ``m``: the mirror image of a ``c`` is an ``m`` (a left-turn arrow mirrored is a
  right-turn arrow), and then ``flip_map[m] == c``;
* ``None`` (:data:`NOT_FLIPPABLE`): the mirror image is no sign of the dataset (text, digits,
  pictograms that only face one way): such a sample is never flipped.

GTSRB and GTSDB declare theirs (``minidl.datasets.gtsrb.GTSRB_FLIP_MAP``). Every flip of the
training code goes through this module: the classifier's ``RandomHorizontalFlip`` of
``minidl train --augment`` (:class:`FlipLabels` around the dataset), the crop classifiers and
the detector's joint image/box flip (``minidl.detection``). A dataset without a flip map is
flipped as before: every class maps to itself.

>>> flip_map = [1, 0, None, 3]        # 0 <-> 1 swap, 2 not flippable, 3 symmetric
>>> [flip_label(flip_map, c) for c in range(4)]
[1, 0, None, 3]
"""
from __future__ import annotations

import numbers

import numpy as np

from minidl.data.dataset import Dataset
from minidl.data.transforms import get_rng, hflip

__all__ = ["NOT_FLIPPABLE", "check_flip_map", "flip_label", "flip_labels", "find_flip_map",
           "LabelAwareHorizontalFlip", "FlipLabels"]

NOT_FLIPPABLE = None


def check_flip_map(flip_map, num_classes=None):
    """The flip map as a tuple, after checking it: one entry per class, each a class index or None,
    and every swap mutual (``flip_map[flip_map[c]] == c``)."""
    entries = tuple(flip_map)
    if num_classes is not None and len(entries) != num_classes:
        raise ValueError(f"flip_map: expected {num_classes} entries (one per class), got {len(entries)}")
    for c, m in enumerate(entries):
        if m is None:
            continue
        if isinstance(m, bool) or not isinstance(m, numbers.Integral) or not 0 <= m < len(entries):
            raise ValueError(f"flip_map[{c}]: expected a class index in [0, {len(entries)}) or None, got {m!r}")
        if entries[m] != c:
            raise ValueError(f"flip_map[{c}] = {m} but flip_map[{m}] = {entries[m]!r}: a mirrored pair must "
                             "map each class to the other")
    return tuple(None if m is None else int(m) for m in entries)


def flip_label(flip_map, label):
    """The class of the mirrored sample, or None when it may not be flipped (no map: ``label``)."""
    if flip_map is None:
        return int(label)
    return flip_map[int(label)]


def flip_labels(flip_map, labels):
    """``(flippable, mirrored)`` for an array of labels: a bool mask and the labels after a flip
    (unchanged where not flippable)."""
    labels = np.asarray(labels, np.int64)
    if flip_map is None:
        return np.ones(labels.shape, bool), labels.copy()
    table = np.array([-1 if m is None else m for m in flip_map], np.int64)
    mirrored = table[labels] if labels.size else labels.copy()
    flippable = mirrored >= 0
    return flippable, np.where(flippable, mirrored, labels)


def find_flip_map(dataset):
    """The ``flip_map`` a dataset declares, looking through wrappers (``Subset``, splits, caches)."""
    seen = 0
    while dataset is not None and seen < 16:
        flip_map = getattr(dataset, "flip_map", None)
        if flip_map is not None:
            return check_flip_map(flip_map)
        dataset = getattr(dataset, "dataset", None)
        seen += 1
    return None


class LabelAwareHorizontalFlip:
    """Mirror ``(image, target)`` with probability ``p``, keeping the label true.

    ``target`` is a class index (a classifier's sample) or a detection target dict with
    ``"boxes"`` (x1, y1, x2, y2) and ``"labels"``. A mirrored class takes its mirror's label; a
    sample holding a not-flippable class is never flipped (a detection image: if any of its
    signs is not flippable). ``flip_map=None`` flips everything and keeps the labels.
    Draws from ``minidl.data.transforms.get_rng()``, as the other random transforms.
    """

    def __init__(self, flip_map=None, p=0.5):
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"p must be in [0, 1], got {p}")
        self.flip_map = None if flip_map is None else check_flip_map(flip_map)
        self.p = float(p)

    def __call__(self, image, target):
        if get_rng().random() >= self.p:
            return image, target
        if isinstance(target, dict):
            return self._flip_detection(image, target)
        mirrored = flip_label(self.flip_map, target)
        if mirrored is None:
            return image, target
        return hflip(image), type(target)(mirrored) if isinstance(target, numbers.Integral) else mirrored

    def _flip_detection(self, image, target):
        labels = np.asarray(target.get("labels", np.zeros(0, np.int64)))
        flippable, mirrored = flip_labels(self.flip_map, labels)
        if not flippable.all():
            return image, target
        image = np.asarray(image)
        w = image.shape[1]
        boxes = np.asarray(target["boxes"]).reshape(-1, 4)
        flipped = boxes.copy()
        flipped[:, [0, 2]] = w - boxes[:, [2, 0]]  # x1' = W - x2, x2' = W - x1
        out = {**target, "boxes": flipped}
        if "labels" in target:
            out["labels"] = mirrored.astype(labels.dtype)
        return np.ascontiguousarray(image[:, ::-1]), out

    def __repr__(self):
        kind = "all classes keep their label" if self.flip_map is None else "labels follow the flip map"
        return f"{type(self).__name__}(p={self.p}; {kind})"


class FlipLabels(Dataset):
    """``dataset`` (samples ``(image, label)``) with a :class:`LabelAwareHorizontalFlip` after its
    own transform: the classifier's flip of ``minidl train --augment``."""

    def __init__(self, dataset, flip_map=None, p=0.5):
        self.dataset = dataset
        self.flip = LabelAwareHorizontalFlip(flip_map, p)

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, index):
        image, label = self.dataset[index]
        return self.flip(image, label)
