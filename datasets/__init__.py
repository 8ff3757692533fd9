"""minidl.datasets: the embedded digits, readers for published dataset formats, verified downloads.

Depends on NumPy, Pillow and tqdm only (never on torch, torchvision or scikit-learn).

- :func:`load_digits` / :class:`Digits`: 1,797 8x8 UCI digits shipped in the package.
- :class:`MNIST`, :class:`FashionMNIST` (IDX), :class:`CIFAR10`, :class:`CIFAR100`
  (python pickles, read with a restricted unpickler), :class:`GTSRB` (ppm + CSV),
  :class:`ImageFolder`: torchvision's signatures, ``ds[i] -> (PIL image, int)``.
- :class:`GTSDB` (PPM + ``gt.txt``) and :class:`SyntheticScenes` (seeded traffic scenes, the
  default data of ``minidl detect``): detection readers, ``ds[i] -> (HWC uint8 array,
  {"boxes", "labels"})`` as torchvision's detection datasets.
- :class:`CharText`: windows of character ids of the embedded text (five Shakespeare plays, public
  domain), the data of the language models ``char_lstm`` and ``char_transformer``.
- :func:`download_url`: streaming, resumable, retried, SHA-256-verified download.
- :func:`get_dataset`: a name or a folder path -> a reader.

Example::

    >>> from minidl.datasets import get_dataset
    >>> ds = get_dataset("digits", train=False)
    >>> len(ds), ds.classes[:3]
    (359, ['0', '1', '2'])
"""

import os

from minidl.datasets.cifar import CIFAR10, CIFAR100, RestrictedUnpickler, UnsafePickleError, restricted_loads
from minidl.datasets.digits import Digits, bilinear_resize, load_digits
from minidl.datasets.download import (
    ChecksumError,
    DownloadError,
    check_sha256,
    download_url,
    extract_archive,
    get_cache_dir,
    sha256sum,
    verify_file,
)
from minidl.datasets.folder import IMG_EXTENSIONS, DatasetSplit, ImageFolder, default_loader, split_dataset
from minidl.datasets.gtsdb import GTSDB
from minidl.datasets.gtsrb import GTSRB
from minidl.datasets.mnist import MNIST, FashionMNIST, read_idx
from minidl.datasets.scenes import SceneConfig, SyntheticScenes
from minidl.datasets.text import CharText, CharVocab, load_text
from minidl.datasets.vision import VisionDataset

__all__ = [
    "VisionDataset",
    "load_digits", "bilinear_resize", "Digits",
    "MNIST", "FashionMNIST", "read_idx",
    "CIFAR10", "CIFAR100", "RestrictedUnpickler", "UnsafePickleError", "restricted_loads",
    "GTSRB",
    "GTSDB", "SyntheticScenes", "SceneConfig",
    "CharText", "CharVocab", "load_text",
    "ImageFolder", "IMG_EXTENSIONS", "default_loader", "DatasetSplit", "split_dataset", "DEFAULT_TEST_SPLIT",
    "download_url", "extract_archive", "get_cache_dir", "sha256sum", "check_sha256",
    "verify_file",
    "ChecksumError", "DownloadError",
    "DATASET_NAMES", "get_dataset",
]

# name -> reader class; "digits" needs no root, the others default to the cache.
_READERS = {
    "digits": Digits,
    "mnist": MNIST,
    "fashion_mnist": FashionMNIST,
    "cifar10": CIFAR10,
    "cifar100": CIFAR100,
    "gtsrb": GTSRB,
}
DATASET_NAMES = tuple(_READERS)


# the fraction of a plain class folder held out as its test split unless told otherwise
DEFAULT_TEST_SPLIT = 0.2


def _split_folder(root, train):
    """For a folder path: ``root/train`` or ``root/test`` (``val``) if it has them, else None.

    Many published ImageFolder sets (garbage classification, chest X-ray) ship as
    ``train/``, ``val/``, ``test/`` folders: those are the splits.
    """
    names = {entry.name for entry in os.scandir(root) if entry.is_dir()}
    if "train" in names and names & {"test", "val"}:
        if train:
            return os.path.join(root, "train")
        return os.path.join(root, "test" if "test" in names else "val")
    return None


def get_dataset(name, root=None, train=True, transform=None, download=False, target_transform=None,
                test_split=DEFAULT_TEST_SPLIT, seed=0):
    """Return the reader for ``name`` (one of :data:`DATASET_NAMES`) or a folder path.

    Args:
        name: ``"digits"``, ``"mnist"``, ``"fashion_mnist"``, ``"cifar10"``,
            ``"cifar100"``, ``"gtsrb"``, or the path of an existing folder, which
            is read with :class:`ImageFolder`: its ``train/`` or ``test/``/``val/``
            sub-folder when it has them, else a seeded split of the class tree
            (``test_split``, ``seed``).
        root: data folder; default ``<cache>/datasets`` (see :func:`get_cache_dir`).
            Ignored for ``"digits"``.
        train: training split if True, else the test split.
        transform, target_transform: passed to the reader.
        download: passed to the readers that can download.
        test_split: for a plain class folder (no ``train/`` and ``test/``/``val/``
            sub-folders): the fraction of each class held out as the test split
            (:func:`split_dataset`); ``train=True`` gives the rest, never the same image.
            ``0`` (or None) means no split: the whole folder, for training only, or as the test
            set of a model trained on other data.
        seed: the split's seed (the same seed always gives the same split).
    """
    if not isinstance(name, (str, os.PathLike)):
        raise TypeError(f"name must be a dataset name or a folder path, got {type(name).__name__}")
    key = os.fspath(name)
    if key.lower() in _READERS:
        reader = _READERS[key.lower()]
        if reader is Digits:
            return Digits(root, train=train, transform=transform, target_transform=target_transform)
        root = os.path.join(get_cache_dir(), "datasets") if root is None else root
        if reader is GTSRB:
            return GTSRB(root, split="train" if train else "test", transform=transform,
                         target_transform=target_transform, download=download)
        return reader(root, train=train, transform=transform, target_transform=target_transform, download=download)
    path = os.path.expanduser(key)
    if os.path.isdir(path):
        sub = _split_folder(path, train)
        if sub is not None:
            return ImageFolder(sub, transform=transform, target_transform=target_transform)
        folder = ImageFolder(path, transform=transform, target_transform=target_transform)
        if not test_split:
            return folder
        train_part, test_part = split_dataset(folder, test_split, seed=0 if seed is None else seed)
        return train_part if train else test_part
    raise ValueError(f"unknown dataset {key!r}: expected one of {', '.join(DATASET_NAMES)} or an existing folder")
