"""``ImageFolder``: one sub-folder per class, images inside (torchvision's layout)::

    root/cat/001.png
    root/cat/nested/002.jpg
    root/dog/003.jpeg

Classes are the sub-folder names in sorted order, so labels do not depend on the
order the file system lists them. Images are found recursively inside each class
folder and sorted by path. Hidden folders and files (names starting with ``.``, such as
``.ipynb_checkpoints`` or macOS's ``._img.png``) are ignored, as classes and as images.
Symbolic links are followed (a class folder may link to images elsewhere), but each real
directory is read once: a link back to a folder already read (a loop) is not followed, so
no image is counted twice.

A plain class tree has no test split. :func:`split_dataset` holds out a seeded,
stratified fraction of it (``minidl train --dataset PATH --test-split 0.2``), so a model is
never evaluated on its own training images.
"""

import os

import numpy as np
from PIL import Image

from minidl.data.dataset import Subset
from minidl.datasets.vision import VisionDataset

__all__ = ["IMG_EXTENSIONS", "default_loader", "ImageFolder", "DatasetSplit", "split_indices", "split_dataset"]

IMG_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".ppm", ".pgm", ".tif", ".tiff", ".webp")


def default_loader(path):
    """Open ``path`` with Pillow and convert to RGB (torchvision's default), closing the file."""
    with open(path, "rb") as f:
        image = Image.open(f)
        return image.convert("RGB")


class ImageFolder(VisionDataset):
    """A classification dataset read from a folder tree.

    Args:
        root: folder with one sub-folder per class.
        transform, target_transform: applied to the loaded image / int label.
        loader: ``path -> image``; default :func:`default_loader` (PIL RGB).
        extensions: file name endings that count as images (case-insensitive).

    Attributes:
        classes (list[str]), class_to_idx (dict), samples (list of (path, label)),
        targets (list[int]), imgs (same as samples, as in torchvision).

    Raises:
        FileNotFoundError: ``root`` is not a folder.
        ValueError: fewer than two class folders, or a class folder without images.

    Example::

        >>> ds = ImageFolder("data/garbage/train")              # doctest: +SKIP
        >>> image, label = ds[0]; ds.classes[label]             # doctest: +SKIP
    """

    def __init__(self, root, transform=None, target_transform=None, loader=default_loader,
                 extensions=IMG_EXTENSIONS):
        super().__init__(os.path.expanduser(os.fspath(root)), transform, target_transform)
        if not callable(loader):
            raise TypeError(f"loader must be callable, got {type(loader).__name__}")
        if isinstance(extensions, str):
            extensions = (extensions,)
        self.extensions = tuple(e.lower() if e.startswith(".") else "." + e.lower() for e in extensions)
        if not self.extensions:
            raise ValueError("extensions must name at least one file ending, got an empty sequence")
        self.loader = loader
        if not os.path.isdir(self.root):
            raise FileNotFoundError(f"ImageFolder: {self.root} is not a folder")
        self.classes = sorted(entry.name for entry in os.scandir(self.root)
                              if entry.is_dir() and not entry.name.startswith("."))
        if len(self.classes) < 2:
            raise ValueError(
                f"ImageFolder: {self.root} must hold at least 2 class sub-folders, found {len(self.classes)} "
                f"({self.classes}); is root one level too deep or too shallow?"
            )
        self.samples = []
        self._visited = set()  # (device, inode) of every directory read: each real directory once
        for label, name in enumerate(self.classes):
            found = self._scan(os.path.join(self.root, name))
            if not found:
                raise ValueError(
                    f"ImageFolder: class folder {os.path.join(self.root, name)} holds no image "
                    f"(extensions {', '.join(self.extensions)})"
                )
            self.samples.extend((path, label) for path in found)
        self.targets = [label for _, label in self.samples]
        self.imgs = self.samples

    def _scan(self, folder):
        """Image paths under ``folder``: links followed, hidden names skipped, each real directory once."""
        paths = []
        for dirpath, dirnames, filenames in os.walk(folder, followlinks=True):
            try:
                st = os.stat(dirpath)
            except OSError:
                dirnames[:] = []
                continue
            key = (st.st_dev, st.st_ino)
            if key in self._visited:  # a symlink loop, or a second link to a folder already read
                dirnames[:] = []
                continue
            self._visited.add(key)
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            paths.extend(
                os.path.join(dirpath, f) for f in filenames
                if not f.startswith(".") and f.lower().endswith(self.extensions)
            )
        return sorted(paths)

    def __len__(self):
        return len(self.samples)

    def _load(self, index):
        path, label = self.samples[index]
        return self.loader(path), label


# ------------------------------------------------------------------------------- splits


def split_indices(targets, fraction, seed=0):
    """Seeded, stratified split of ``range(len(targets))``: ``(kept, held_out)`` sorted index lists.

    Each class gives ``round(fraction * n)`` of its ``n`` samples to ``held_out`` (at least one
    when ``fraction > 0`` and it has two or more, and never all of them), chosen by a
    permutation drawn from ``numpy.random.default_rng(seed)``: the same seed and targets always
    give the same split, and the two parts never share a sample.

    >>> split_indices([0, 0, 0, 0, 1, 1, 1, 1], 0.25, seed=0)[1]
    [2, 7]
    """
    fraction = float(fraction)
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"the held-out fraction must be in [0, 1), got {fraction}")
    targets = np.asarray(targets)
    rng = np.random.default_rng(seed)
    held = []
    for label in np.unique(targets):
        members = np.flatnonzero(targets == label)
        n = len(members)
        k = int(round(fraction * n))
        if fraction > 0 and n >= 2:
            k = min(max(k, 1), n - 1)
        else:
            k = 0
        held.extend(members[rng.permutation(n)[:k]].tolist())
    held = sorted(held)
    held_set = set(held)
    kept = [i for i in range(len(targets)) if i not in held_set]
    return kept, held


class DatasetSplit(Subset):
    """One part (``split``: ``"train"`` or ``"test"``) of a dataset that has no split of its own.

    A :class:`~minidl.data.Subset` that keeps the labelled dataset's ``classes``,
    ``class_to_idx``, ``samples`` and ``targets`` (for its own indices), so it reads as a reader does.
    """

    def __init__(self, dataset, indices, split):
        super().__init__(dataset, indices)
        self.split = split
        self.classes = list(getattr(dataset, "classes", []))
        self.class_to_idx = dict(getattr(dataset, "class_to_idx", {}))
        targets = getattr(dataset, "targets", None)
        self.targets = [int(targets[i]) for i in self.indices] if targets is not None else None
        samples = getattr(dataset, "samples", None)
        self.samples = [samples[i] for i in self.indices] if samples is not None else None
        self.root = getattr(dataset, "root", None)

    def __repr__(self):
        return f"DatasetSplit({self.split!r}, {len(self)} of {len(self.dataset)} samples of {self.root})"


def split_dataset(dataset, test_fraction, seed=0):
    """``(train, test)``: :class:`DatasetSplit` parts of a labelled ``dataset`` (e.g. an ImageFolder).

    ``test`` holds ``test_fraction`` of each class (see :func:`split_indices`), ``train`` the
    rest; the same seed gives the same parts, and they never share a sample, so accuracy on
    ``test`` is never measured on training images. A validation set is then carved out of
    ``train`` (``minidl.data.random_split``, as ``--val-split`` does).
    """
    targets = getattr(dataset, "targets", None)
    if targets is None:
        raise TypeError(f"split_dataset needs a dataset with .targets, got {type(dataset).__name__}")
    if not 0.0 < float(test_fraction) < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    kept, held = split_indices(targets, test_fraction, seed)
    if not held or not kept:
        raise ValueError(
            f"{getattr(dataset, 'root', 'the dataset')}: {len(targets)} samples are too few to hold out "
            f"a test fraction of {test_fraction}")
    return DatasetSplit(dataset, kept, "train"), DatasetSplit(dataset, held, "test")
