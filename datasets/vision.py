"""The small base class every reader shares (torchvision's ``VisionDataset`` contract).

A dataset is indexable: ``ds[i] -> (image, target)`` where ``image`` is a PIL image
passed through ``transform`` and ``target`` an ``int`` passed through
``target_transform``; ``len(ds)`` is the number of samples; ``ds.classes`` names the
labels and ``ds.class_to_idx`` maps the names back.
"""

import os

from PIL import Image

__all__ = ["VisionDataset", "find_existing", "array_to_image"]


def find_existing(candidates):
    """Return the first path in ``candidates`` that exists, else ``None``."""
    for path in candidates:
        if os.path.exists(path):
            return path
    return None


class VisionDataset:
    """Base class: stores ``root``, ``transform`` and ``target_transform``.

    Every subclass defines ``__len__`` and ``_load(index) -> (PIL.Image, int)``; this
    class checks the index and applies the transforms in ``__getitem__`` like
    torchvision does.
    """

    def __init__(self, root, transform=None, target_transform=None):
        if transform is not None and not callable(transform):
            raise TypeError(f"transform must be callable or None, got {type(transform).__name__}")
        if target_transform is not None and not callable(target_transform):
            raise TypeError(f"target_transform must be callable or None, got {type(target_transform).__name__}")
        self.root = os.fspath(root) if root is not None else None
        self.transform = transform
        self.target_transform = target_transform

    classes = []

    @property
    def class_to_idx(self):
        return {name: i for i, name in enumerate(self.classes)}

    def _check_index(self, index):
        n = len(self)
        if not hasattr(index, "__index__"):
            raise TypeError(f"index must be an int, got {type(index).__name__}")
        index = index.__index__()
        if index < -n or index >= n:
            raise IndexError(f"index {index} is out of range for a dataset of {n} samples")
        return index % n

    def __getitem__(self, index):
        image, target = self._load(self._check_index(index))
        if self.transform is not None:
            image = self.transform(image)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return image, target

    def extra_repr(self):
        return ""

    def __repr__(self):
        lines = [f"Dataset {type(self).__name__}", f"    Number of datapoints: {len(self)}"]
        if self.root is not None:
            lines.append(f"    Root location: {self.root}")
        if self.extra_repr():
            lines.append(f"    {self.extra_repr()}")
        if self.transform is not None:
            lines.append(f"    Transform: {self.transform!r}")
        if self.target_transform is not None:
            lines.append(f"    Target transform: {self.target_transform!r}")
        return "\n".join(lines)


def array_to_image(array):
    """uint8 (H, W) -> PIL "L" image, uint8 (H, W, 3) -> PIL "RGB" image (copies nothing twice)."""
    return Image.fromarray(array)
