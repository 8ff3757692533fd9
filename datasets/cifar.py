"""CIFAR-10 and CIFAR-100 from the published "python version" pickled batches.

Krizhevsky (2009), "Learning Multiple Layers of Features from Tiny Images",
https://www.cs.toronto.edu/~kriz/cifar.html. Each batch file is a dict pickled by
Python 2 (protocol 2) holding byte-string keys::

    b"data"          uint8 ndarray (N, 3072): 1024 red, 1024 green, 1024 blue values
                     per image, each plane row-major 32x32
    b"labels"        list of N ints (CIFAR-10)
    b"fine_labels"   list of N ints, b"coarse_labels" (CIFAR-100)
    b"batch_label", b"filenames"   bytes / list of bytes

Files are read from ``root/cifar-10-batches-py/`` (``cifar-100-python/``) or, if
that folder is absent, straight out of the published ``.tar.gz`` in ``root``.

Unpickling is restricted: ``pickle`` can call any importable function, so a
malicious "batch" could run code. :class:`RestrictedUnpickler` resolves only the
few globals those files need to rebuild NumPy arrays and byte strings, and refuses
every other one with ``pickle.UnpicklingError`` before anything is called.
"""

import io
import os
import pickle
import tarfile

import numpy as np

from minidl.datasets.download import download_from_mirrors, extract_archive
from minidl.datasets.vision import VisionDataset, array_to_image

__all__ = ["UnsafePickleError", "RestrictedUnpickler", "restricted_loads", "CIFAR10", "CIFAR100"]


class UnsafePickleError(pickle.UnpicklingError):
    """The pickle names a global outside the allowed list; nothing was called."""


def _latin1_encode(text, encoding="latin1"):
    """Stand-in for ``_codecs.encode``: Python 3 pickles ``bytes`` with protocol 2 as
    ``_codecs.encode(str, "latin1")``. Only that codec is allowed (no zlib/rot13/...)."""
    if not isinstance(text, str) or encoding.lower().replace("-", "").replace("_", "") not in ("latin1", "iso88591"):
        raise UnsafePickleError(f"_codecs.encode is only allowed for str with latin1, got {encoding!r}")
    return text.encode("latin1")


def _numpy_globals():
    """The NumPy callables that rebuild an ndarray/dtype/scalar from its pickled state."""
    from numpy._core import multiarray, numeric

    return {
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        # Name used by NumPy 1.x and by the Python 2 files, and the NumPy 2 name.
        ("numpy.core.multiarray", "_reconstruct"): multiarray._reconstruct,
        ("numpy._core.multiarray", "_reconstruct"): multiarray._reconstruct,
        ("numpy.core.multiarray", "scalar"): multiarray.scalar,
        ("numpy._core.multiarray", "scalar"): multiarray.scalar,
        # Protocol 5 out-of-band buffers (not used by CIFAR, harmless constructor).
        ("numpy.core.numeric", "_frombuffer"): numeric._frombuffer,
        ("numpy._core.numeric", "_frombuffer"): numeric._frombuffer,
    }


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that builds only dicts, lists, tuples, str, bytes, numbers and
    NumPy arrays. Any other global (``os.system``, ``builtins.eval``, ...) raises
    ``pickle.UnpicklingError`` naming it, so the payload never runs."""

    def __init__(self, file, source="<bytes>", **kwargs):
        super().__init__(file, **kwargs)
        self._source = source
        self._allowed = dict(_numpy_globals())
        self._allowed[("_codecs", "encode")] = _latin1_encode

    def find_class(self, module, name):
        try:
            return self._allowed[(module, name)]
        except KeyError:
            raise UnsafePickleError(
                f"{self._source}: refusing to load global {module}.{name}; a CIFAR batch holds only dicts, "
                "lists, bytes, numbers and NumPy arrays, so this file is not a genuine CIFAR batch"
            ) from None

    def persistent_load(self, pid):
        raise UnsafePickleError(f"{self._source}: persistent ids are not allowed in a CIFAR batch")


def restricted_loads(payload, source="<bytes>"):
    """Unpickle ``payload`` (bytes) with :class:`RestrictedUnpickler`, bytes encoding as
    the Python 2 CIFAR files need (their ``str`` objects come back as ``bytes``)."""
    return RestrictedUnpickler(io.BytesIO(payload), source=source, encoding="bytes").load()


def _key(entry, name):
    """Look ``name`` up as bytes (Python 2 files) or str (re-pickled by Python 3)."""
    if name.encode() in entry:
        return entry[name.encode()]
    return entry.get(name)


def _decode(value):
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


class CIFAR10(VisionDataset):
    """CIFAR-10: 50,000 train / 10,000 test colour 32x32 images in 10 classes.

    Args:
        root: folder holding ``cifar-10-batches-py/`` or ``cifar-10-python.tar.gz``.
        train: the five ``data_batch_*`` files if True, else ``test_batch``.
        transform, target_transform: applied to the PIL RGB image / int label.
        download: fetch and extract the published archive (SHA-256 checked) if absent.

    Attributes:
        data: uint8 (N, 32, 32, 3) (HWC, as torchvision). targets: int64 (N,).
        classes: names from the ``batches.meta`` file (default list if it is absent).
    """

    base_folder = "cifar-10-batches-py"
    filename = "cifar-10-python.tar.gz"
    # Base URLs tried in order (overridable: tests point this at a local server).
    # Unreachable from minidl's development machines; tested against a local mirror.
    mirrors = ["https://www.cs.toronto.edu/~kriz/"]
    # SHA-256 of the archive as torchvision lists it (prototype datasets/_builtin/cifar.py;
    # Keras uses the same value). torchvision's stable API: md5 c58f30108f718f92721af3b95e74349a.
    sha256 = "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce"
    train_list = ["data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5"]
    test_list = ["test_batch"]
    meta_file, meta_key = "batches.meta", "label_names"
    label_key = "labels"
    classes = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]

    def __init__(self, root, train=True, transform=None, target_transform=None, download=False):
        if root is None:
            raise TypeError(f"{type(self).__name__} needs a root folder, got None")
        super().__init__(os.path.expanduser(os.fspath(root)), transform, target_transform)
        if not isinstance(train, bool):
            raise TypeError(f"train must be a bool, got {train!r}")
        self.train = train
        if download:
            self.download()
        batches = self.train_list if train else self.test_list
        files = self._read_files(batches + [self.meta_file])
        images, labels = [], []
        for name in batches:
            data, targets = self._parse_batch(name, files[name])
            images.append(data)
            labels.append(targets)
        # (N, 3072) -> (N, 3, 32, 32) planes -> (N, 32, 32, 3) HWC for PIL
        self.data = np.ascontiguousarray(np.concatenate(images).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
        self.targets = np.concatenate(labels).astype(np.int64)
        if files[self.meta_file] is not None:
            names = _key(self._unpickle(self.meta_file, files[self.meta_file]), self.meta_key)
            if names is not None:
                self.classes = [_decode(n) for n in names]

    # -- locating and reading the batch files ---------------------------------------

    def _find_folder(self):
        """``root/<base_folder>``, or root itself when it is that folder; None if neither."""
        first = (self.train_list if self.train else self.test_list)[0]
        for folder in (os.path.join(self.root, self.base_folder), self.root):
            if os.path.isfile(os.path.join(folder, first)):
                return folder
        return None

    def _read_files(self, names):
        """Return ``{name: bytes}`` for the batch files (the meta file may be None).

        Reads the extracted folder if present, else the published archive in one
        pass (each ``tarfile`` lookup would otherwise decompress it again).
        """
        required = set(names) - {self.meta_file}
        folder = self._find_folder()
        found = {}
        if folder is not None:
            for name in names:
                path = os.path.join(folder, name)
                if os.path.isfile(path):
                    with open(path, "rb") as f:
                        found[name] = f.read()
            where = folder
        else:
            archive = os.path.join(self.root, self.filename)
            if not os.path.isfile(archive):
                raise FileNotFoundError(
                    f"{type(self).__name__}: neither {os.path.join(self.root, self.base_folder)}/ nor {archive} "
                    "exists; pass download=True, or put the published python-version batches there"
                )
            wanted = {f"{self.base_folder}/{name}": name for name in names}
            try:
                with tarfile.open(archive) as tar:
                    for member in tar:
                        if member.isfile() and member.name in wanted:
                            found[wanted[member.name]] = tar.extractfile(member).read()
            except (tarfile.TarError, EOFError, OSError) as error:
                raise ValueError(
                    f"{archive} is not a readable tar.gz ({error}): delete it and download again"
                ) from error
            where = archive
        missing = sorted(required - set(found))
        if missing:
            raise FileNotFoundError(
                f"{type(self).__name__}: {', '.join(missing)} missing from {where}; the data are incomplete: "
                "delete them and download again"
            )
        found.setdefault(self.meta_file, None)
        return found

    def _unpickle(self, name, payload):
        try:
            return restricted_loads(payload, source=name)
        except UnsafePickleError:
            raise
        except Exception as error:  # truncated or garbled bytes surface as many types
            raise ValueError(
                f"{name}: not a readable CIFAR pickle ({error!r}); delete it and download again"
            ) from error

    def _parse_batch(self, name, payload):
        """Return ``(data uint8 (N, 3072), labels int64 (N,))`` from one batch file."""
        entry = self._unpickle(name, payload)
        if not isinstance(entry, dict):
            raise ValueError(f"{name}: expected a dict, got {type(entry).__name__}")
        data, labels = _key(entry, "data"), _key(entry, self.label_key)
        if data is None or labels is None:
            raise ValueError(f"{name}: expected keys b'data' and b'{self.label_key}', got {sorted(entry)}")
        data = np.asarray(data)
        labels = np.asarray(labels, dtype=np.int64)
        if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
            raise ValueError(f"{name}: b'data' must be uint8 (N, 3072), got {data.dtype} {data.shape}")
        if labels.shape != (len(data),):
            raise ValueError(f"{name}: expected {len(data)} labels, got shape {labels.shape}")
        if len(labels) and (labels.min() < 0 or labels.max() >= len(self.classes)):
            raise ValueError(
                f"{name}: labels must lie in 0..{len(self.classes) - 1}, got {labels.min()}..{labels.max()}"
            )
        return data, labels

    def download(self):
        """Fetch ``filename`` from :attr:`mirrors` (SHA-256 checked) and extract it under root."""
        if self._find_folder() is not None:
            return
        archive = download_from_mirrors(self.mirrors, self.filename, self.root, self.sha256)
        extract_archive(archive, self.root)

    def __len__(self):
        return len(self.data)

    def _load(self, index):
        return array_to_image(self.data[index]), int(self.targets[index])

    def extra_repr(self):
        return f"Split: {'Train' if self.train else 'Test'}"


class CIFAR100(CIFAR10):
    """CIFAR-100: the same images format, 100 fine classes (``fine_labels``)."""

    base_folder = "cifar-100-python"
    filename = "cifar-100-python.tar.gz"
    # SHA-256 as torchvision lists it (prototype); stable API md5 eb9058c3a382ffc7106e4002c42a8d85.
    sha256 = "85cd44d02ba6437773c5bbd22e183051d648de2e7d6b014e1ef29b855ba677a7"
    train_list = ["train"]
    test_list = ["test"]
    meta_file, meta_key = "meta", "fine_label_names"
    label_key = "fine_labels"
    # The fine label names of the meta file (alphabetical), used when it is absent.
    classes = [
        "apple", "aquarium_fish", "baby", "bear", "beaver", "bed", "bee", "beetle", "bicycle", "bottle",
        "bowl", "boy", "bridge", "bus", "butterfly", "camel", "can", "castle", "caterpillar", "cattle",
        "chair", "chimpanzee", "clock", "cloud", "cockroach", "couch", "crab", "crocodile", "cup", "dinosaur",
        "dolphin", "elephant", "flatfish", "forest", "fox", "girl", "hamster", "house", "kangaroo", "keyboard",
        "lamp", "lawn_mower", "leopard", "lion", "lizard", "lobster", "man", "maple_tree", "motorcycle",
        "mountain", "mouse", "mushroom", "oak_tree", "orange", "orchid", "otter", "palm_tree", "pear",
        "pickup_truck", "pine_tree", "plain", "plate", "poppy", "porcupine", "possum", "rabbit", "raccoon",
        "ray", "road", "rocket", "rose", "sea", "seal", "shark", "shrew", "skunk", "skyscraper", "snail",
        "snake", "spider", "squirrel", "streetcar", "sunflower", "sweet_pepper", "table", "tank", "telephone",
        "television", "tiger", "tractor", "train", "trout", "tulip", "turtle", "wardrobe", "whale",
        "willow_tree", "wolf", "woman", "worm",
    ]
