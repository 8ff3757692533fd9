"""MNIST and Fashion-MNIST from the published IDX files.

The IDX format (LeCun et al., http://yann.lecun.com/exdb/mnist/) is a big-endian
header followed by raw values::

    bytes 0-1   0x00 0x00
    byte  2     dtype code: 0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32,
                0x0D float32, 0x0E float64
    byte  3     number of dimensions d
    4*d bytes   each dimension's size as a big-endian int32
    the rest    prod(sizes) values, row-major, big-endian

Images are ``idx3`` (N, 28, 28) uint8, labels ``idx1`` (N,) uint8. The files may be
gzipped (as published) or not, and sit either directly under ``root`` or in
torchvision's ``root/MNIST/raw/`` layout.

Hostile files: the header's declared size must equal the bytes actually present
before anything is allocated; a gzipped file is decompressed in chunks and refused as
soon as it yields more bytes than its header declares, or declares more than 1100 times
its compressed size (deflate's maximum ratio is 1032). Labels must lie in
``0..len(classes) - 1``. Every malformed file raises
:class:`~minidl.errors.DatasetFormatError` (a ``ValueError``) naming the file.

Example::

    >>> from minidl.datasets import MNIST
    >>> ds = MNIST("~/data", train=False, download=True)   # doctest: +SKIP
    >>> image, label = ds[0]                                 # PIL "L" image, int
"""

import os
import zlib

import numpy as np

from minidl.errors import DatasetFormatError
from minidl.datasets.download import download_from_mirrors, verify_file
from minidl.datasets.vision import VisionDataset, array_to_image

__all__ = ["read_idx", "MNIST", "FashionMNIST"]

# dtype code -> big-endian NumPy dtype
_IDX_DTYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


# A gzipped IDX file may not declare more than this many times its compressed size.
_MAX_GZIP_RATIO = 1100


def _gunzip_bounded(path, raw):
    """Decompress a gzip file in chunks, never past what its IDX header declares."""
    def bad(error):
        return DatasetFormatError(
            path, f"is not a valid gzip file ({error}); it is corrupt or truncated: delete it and download again")

    out = bytearray()
    limit = None
    data = raw
    try:
        while data:
            stream = zlib.decompressobj(16 + zlib.MAX_WBITS)      # one gzip member
            while True:
                # Before the header is known, decompress only enough to read it.
                want = 4 + 4 * 255 if limit is None else limit + 1 - len(out)
                chunk = stream.decompress(data, max(want, 1))
                out += chunk
                data = stream.unconsumed_tail
                if limit is None and len(out) >= 4 and (len(out) >= 4 + 4 * out[3] or stream.eof):
                    limit = _idx_declared_size(path, bytes(out))
                    if limit > _MAX_GZIP_RATIO * len(raw):
                        raise DatasetFormatError(
                            path, f"the IDX header declares {limit} bytes from {len(raw)} gzipped ones, more "
                            f"than gzip can produce (ratio {_MAX_GZIP_RATIO}): refusing it")
                if limit is not None and len(out) > limit:
                    raise DatasetFormatError(
                        path, f"decompresses to more than the {limit} bytes its IDX header declares; "
                        "it is corrupt: delete it and download again")
                if stream.eof or (not chunk and not data):
                    break
            if not stream.eof:
                raise bad("compressed stream ends early")
            data = stream.unused_data
            if data[:2] != b"\x1f\x8b":
                break                    # trailing garbage after the last member: as gzip.decompress
    except zlib.error as error:
        raise bad(error) from error
    return bytes(out)


def _idx_declared_size(path, raw):
    """Total size (header + data bytes) an IDX header declares; checks the magic number."""
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise DatasetFormatError(
            path, f"is not an IDX file (bad magic number {raw[:4].hex()}); is it the right file?")
    header_size = 4 + 4 * raw[3]
    if len(raw) < header_size:
        raise DatasetFormatError(path, f"IDX header truncated (expected {header_size} bytes, got {len(raw)})")
    shape = [int(s) for s in np.frombuffer(raw, dtype=">i4", count=raw[3], offset=4)]
    if any(n < 0 for n in shape):
        raise DatasetFormatError(path, f"IDX header declares a negative size in shape {tuple(shape)}")
    size = 1
    for n in shape:
        size *= n
    return header_size + size * _IDX_DTYPES[raw[2]].itemsize


def _read_maybe_gzip(path):
    """Return the file's bytes, gunzipped (bounded by its IDX header) if it starts with 1f 8b."""
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:2] == b"\x1f\x8b":
        return _gunzip_bounded(path, raw)
    return raw


def read_idx(path):
    """Read an IDX file (gzipped or not) into a NumPy array in native byte order.

    Raises :class:`~minidl.errors.DatasetFormatError` (a ``ValueError``) naming the file
    if the header is not IDX or the data are shorter or longer than the header says.
    """
    path = os.fspath(path)
    raw = _read_maybe_gzip(path)
    declared = _idx_declared_size(path, raw)
    dtype = _IDX_DTYPES[raw[2]]
    ndim = raw[3]
    header_size = 4 + 4 * ndim
    shape = tuple(int(s) for s in np.frombuffer(raw, dtype=">i4", count=ndim, offset=4))
    expected = declared - header_size
    actual = len(raw) - header_size
    if actual != expected:
        raise DatasetFormatError(
            path, f"IDX header says shape {shape} ({expected} data bytes) but the file holds {actual}; "
            "it is corrupt or truncated: delete it and download again"
        )
    data = np.frombuffer(raw, dtype=dtype, offset=header_size).reshape(shape)
    return data.astype(dtype.newbyteorder("="))  # a writable native-order copy


class MNIST(VisionDataset):
    """MNIST handwritten digits (60,000 train / 10,000 test, 28x28 grey).

    Args:
        root: folder holding ``train-images-idx3-ubyte[.gz]`` etc., directly or in
            ``root/MNIST/raw/`` (torchvision's layout; downloads go there).
        train: the training files if True, else the ``t10k`` test files.
        transform: callable applied to the PIL image.
        target_transform: callable applied to the int label.
        download: fetch the published files from ``mirrors`` (verified by SHA-256)
            unless they are already present.

    Attributes:
        data: uint8 (N, 28, 28). targets: int64 (N,). classes: label names.
    """

    # Base URLs tried in order; a test or a local mirror can override the attribute.
    # The machines that develop minidl cannot reach these hosts, so the download
    # path is tested against a local http.server mirror serving files in this format.
    mirrors = [
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "http://yann.lecun.com/exdb/mnist/",
    ]
    # SHA-256 of the published gzipped files, as torchvision lists them
    # (torchvision/prototype/datasets/_builtin/mnist.py; they match TFDS's
    # url_checksums/mnist.txt). torchvision's stable API lists md5s instead:
    # f68b3c2dcbeaaa9fbdd348bbdeb94873, d53e105ee54ea40749a09fcbcd1e9432,
    # 9fb629c4189551a2d022fa330f9573f3, ec29112dd5afa0611ce80d1b7f02629c.
    resources = [
        ("train-images-idx3-ubyte.gz", "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609"),
        ("train-labels-idx1-ubyte.gz", "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c"),
        ("t10k-images-idx3-ubyte.gz", "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6"),
        ("t10k-labels-idx1-ubyte.gz", "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6"),
    ]
    classes = [
        "0 - zero", "1 - one", "2 - two", "3 - three", "4 - four",
        "5 - five", "6 - six", "7 - seven", "8 - eight", "9 - nine",
    ]

    def __init__(self, root, train=True, transform=None, target_transform=None, download=False):
        if root is None:
            raise TypeError(f"{type(self).__name__} needs a root folder, got None")
        super().__init__(os.path.expanduser(os.fspath(root)), transform, target_transform)
        if not isinstance(train, bool):
            raise TypeError(f"train must be a bool, got {train!r}")
        self.train = train
        if download:
            self.download()
        prefix = "train" if train else "t10k"
        images_path = self._verified(self._find(f"{prefix}-images-idx3-ubyte"))
        labels_path = self._verified(self._find(f"{prefix}-labels-idx1-ubyte"))
        images = read_idx(images_path)
        labels = read_idx(labels_path)
        if images.ndim != 3 or images.dtype != np.uint8:
            raise DatasetFormatError(images_path, f"expected uint8 (N, H, W), got {images.dtype} {images.shape}")
        if labels.ndim != 1 or len(labels) != len(images):
            raise DatasetFormatError(
                labels_path, f"expected {len(images)} labels (one per image), got shape {labels.shape}"
            )
        if labels.dtype.kind not in "iu":
            raise DatasetFormatError(labels_path, f"labels must be integers, got {labels.dtype}")
        if len(labels) and (labels.min() < 0 or labels.max() >= len(self.classes)):
            raise DatasetFormatError(
                labels_path, f"labels must lie in 0..{len(self.classes) - 1}, got {labels.min()}..{labels.max()}"
            )
        self.data = images  # (N, 28, 28) uint8
        self.targets = labels.astype(np.int64)  # (N,)

    @property
    def raw_folder(self):
        """torchvision's folder for the published files: ``root/<ClassName>/raw``."""
        return os.path.join(self.root, type(self).__name__, "raw")

    def _verified(self, path):
        """``path``, checked against its published SHA-256 when it is one of the published ``.gz`` files
        (once: ``verify_file`` records the check beside it); files the user decompressed have no
        published hash and are read as they are."""
        published = dict(self.resources).get(os.path.basename(path))
        return path if published is None else verify_file(path, published)

    def _find(self, stem):
        """Locate ``stem`` or ``stem.gz`` in the raw folder or directly under root."""
        for folder in (self.raw_folder, self.root):
            for name in (stem, stem + ".gz"):
                path = os.path.join(folder, name)
                if os.path.isfile(path):
                    return path
        raise FileNotFoundError(
            f"{type(self).__name__}: {stem}[.gz] not found in {self.root} or {self.raw_folder}; "
            "pass download=True, or put the published IDX files there"
        )

    def _present(self, filename):
        stem = filename[: -len(".gz")]
        return any(
            os.path.isfile(os.path.join(folder, name))
            for folder in (self.raw_folder, self.root)
            for name in (stem, filename)
        )

    def download(self):
        """Fetch any missing published file into :attr:`raw_folder`, verified by SHA-256."""
        for filename, sha256 in self.resources:
            if not self._present(filename):
                download_from_mirrors(self.mirrors, filename, self.raw_folder, sha256)

    def __len__(self):
        return len(self.data)

    def _load(self, index):
        return array_to_image(self.data[index]), int(self.targets[index])

    def extra_repr(self):
        return f"Split: {'Train' if self.train else 'Test'}"


class FashionMNIST(MNIST):
    """Zalando's Fashion-MNIST (Xiao, Rasul & Vollgraf 2017): MNIST's format and sizes, clothing classes."""

    mirrors = ["http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"]
    # SHA-256 as torchvision lists them (prototype datasets; equal to TFDS's).
    # torchvision's stable API lists md5s: 8d4fb7e6c68d591d4c3dfef9ec88bf0d,
    # 25c81989df183df01b3e8a0aad5dffbe, bef4ecab320f06d8554ea6380940ec79, bb300cfdad3c16e7a12a480ee83cd310.
    resources = [
        ("train-images-idx3-ubyte.gz", "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84"),
        ("train-labels-idx1-ubyte.gz", "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845"),
        ("t10k-images-idx3-ubyte.gz", "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073"),
        ("t10k-labels-idx1-ubyte.gz", "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5"),
    ]
    classes = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
