"""``ImageFolder``: one sub-folder per class, images inside (torchvision's layout)::

    root/cat/001.png
    root/cat/nested/002.jpg
    root/dog/003.jpeg

Classes are the sub-folder names in sorted order, so labels do not depend on the
order the file system lists them. Images are found recursively inside each class
folder and sorted by path.
"""

import os

from PIL import Image

from minidl.datasets.vision import VisionDataset

__all__ = ["IMG_EXTENSIONS", "default_loader", "ImageFolder"]

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
        self.classes = sorted(entry.name for entry in os.scandir(self.root) if entry.is_dir())
        if len(self.classes) < 2:
            raise ValueError(
                f"ImageFolder: {self.root} must hold at least 2 class sub-folders, found {len(self.classes)} "
                f"({self.classes}); is root one level too deep or too shallow?"
            )
        self.samples = []
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
        paths = []
        for dirpath, dirnames, filenames in os.walk(folder, followlinks=True):
            dirnames.sort()
            paths.extend(
                os.path.join(dirpath, f) for f in filenames if f.lower().endswith(self.extensions)
            )
        return sorted(paths)

    def __len__(self):
        return len(self.samples)

    def _load(self, index):
        path, label = self.samples[index]
        return self.loader(path), label
