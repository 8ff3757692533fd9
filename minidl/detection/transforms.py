"""Detection samples on the data road: a joint (image, target) flip and the batch collate.

As torchvision's detection references (``references/detection/transforms.py`` and
``utils.collate_fn``): a detection reader returns ``(image, target)`` with a NumPy (H, W, 3)
uint8 image (or a PIL image) and ``target = {"boxes": (n, 4) float32 x1y1x2y2, "labels": (n,)}``;
a transform that moves pixels must move the boxes too, so it takes and returns both. Samples stay
NumPy until :func:`collate_fn`, the one place a batch becomes a Tensor (the images, normalised
for the model); the targets stay a list of dicts of arrays, one per image (they differ in length).

>>> import numpy as np
>>> image = np.zeros((4, 10, 3), np.uint8)
>>> target = {"boxes": np.array([[1.0, 0, 3, 2]], np.float32), "labels": np.array([2])}
>>> _, flipped = RandomHorizontalFlip(p=1.0)(image, target)
>>> flipped["boxes"].tolist()
[[7.0, 0.0, 9.0, 2.0]]
>>> images, targets = collate_fn([(image, target), (image, flipped)])
>>> tuple(images.shape), len(targets)
((2, 3, 4, 10), 2)
"""
from __future__ import annotations

import numpy as np

from minidl.data.flips import LabelAwareHorizontalFlip
from minidl.models.detection import images_to_tensor

__all__ = ["RandomHorizontalFlip", "collate_fn"]


class RandomHorizontalFlip(LabelAwareHorizontalFlip):
    """Mirror the image left-right with probability ``p``, and its boxes with it.

    ``flip_map`` (a dataset's ``flip_map``, see :mod:`minidl.data.flips`): mirrored classes take
    their mirror's label, and an image holding a class that is not flippable is never flipped;
    without one, every class keeps its label. Draws from the current generator of
    ``minidl.data.transforms`` (``get_rng()``), which the DataLoader seeds per sample, so a run is
    reproducible whatever the worker threads do.
    """

    def __init__(self, p=0.5, flip_map=None):
        super().__init__(flip_map, p)


def collate_fn(batch):
    """``[(image, target), ...] -> (images (N, 3, H, W) normalised float32 Tensor, [target, ...])``.

    The images must have one size (the synthetic scenes do; GTSDB's are all 1360 x 800).
    """
    if len(batch) == 0:
        raise ValueError("collate_fn: expected at least one (image, target) sample, got an empty batch")
    images = [np.asarray(image) for image, _ in batch]
    return images_to_tensor(images), [target for _, target in batch]
