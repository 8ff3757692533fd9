"""The embedded default dataset: 1,797 handwritten digits, 8x8, from UCI optdigits.

Alpaydin & Kaynak (1998), UCI Machine Learning Repository, CC BY 4.0 (see
``data/DIGITS_LICENSE.md``). The file ships inside the package, so training runs on
a fresh machine with no network. Each pixel counts the on-pixels of a 4x4 block of
the original 32x32 bitmap, so values are integers 0..16.

A fixed stratified split (20% of every class in test: 1,438 train / 359 test) is
stored in the file itself and never changes.

Example::

    >>> from minidl.datasets import load_digits
    >>> x, y = load_digits("train")            # x: float32 (1438, 1, 8, 8) in [0, 1]
    >>> x32, _ = load_digits("test", size=32)  # (359, 1, 32, 32) for LeNet-5
"""

import os

import numpy as np

from minidl.datasets.vision import VisionDataset, array_to_image

__all__ = ["DIGITS_PATH", "load_digits", "bilinear_resize", "Digits"]

DIGITS_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "digits.npz")
_SPLITS = ("train", "test", "all")
_cache = {}


def _load_npz():
    """Read (once) and check the embedded file: images, labels, train_idx, test_idx."""
    if "arrays" not in _cache:
        if not os.path.isfile(DIGITS_PATH):
            raise FileNotFoundError(
                f"the embedded digits file {DIGITS_PATH} is missing; reinstall minidl (it ships as package data)"
            )
        with np.load(DIGITS_PATH, allow_pickle=False) as f:
            arrays = {k: f[k] for k in ("images", "labels", "train_idx", "test_idx")}
        if arrays["images"].shape != (1797, 8, 8) or arrays["labels"].shape != (1797,):
            raise ValueError(
                f"{DIGITS_PATH} is corrupt: images {arrays['images'].shape}, labels {arrays['labels'].shape}; "
                "reinstall minidl"
            )
        _cache["arrays"] = arrays
    return _cache["arrays"]


def _indices(split):
    if split not in _SPLITS:
        raise ValueError(f"split must be one of {_SPLITS}, got {split!r}")
    arrays = _load_npz()
    if split == "all":
        return np.arange(len(arrays["labels"]))
    return arrays["train_idx"] if split == "train" else arrays["test_idx"]


def _interpolation_matrix(in_size, out_size):
    """(out_size, in_size) matrix of 1-D bilinear weights, half-pixel centres.

    Output pixel ``i`` samples the input at ``x = (i + 0.5) * in/out - 0.5``, clamped
    to ``[0, in - 1]``, and mixes its two neighbours ``floor(x)`` and ``floor(x) + 1``
    with weights ``1 - t`` and ``t``, ``t = x - floor(x)``. This is PyTorch's
    ``interpolate(mode="bilinear", align_corners=False)`` and Pillow's BILINEAR
    when enlarging.
    """
    x = (np.arange(out_size, dtype=np.float64) + 0.5) * (in_size / out_size) - 0.5
    x = np.clip(x, 0.0, in_size - 1)
    lo = np.floor(x).astype(np.int64)
    hi = np.minimum(lo + 1, in_size - 1)
    t = x - lo
    weights = np.zeros((out_size, in_size))
    np.add.at(weights, (np.arange(out_size), lo), 1.0 - t)
    np.add.at(weights, (np.arange(out_size), hi), t)
    return weights


def bilinear_resize(images, size):
    """Bilinearly resize ``(N, H, W)`` images to ``(N, size, size)`` in float64.

    Separable: each row is interpolated, then each column, i.e.
    ``out[n] = Wh @ images[n] @ Ww.T`` with :func:`_interpolation_matrix` weights.
    """
    images = np.asarray(images, dtype=np.float64)
    if images.ndim != 3:
        raise ValueError(f"images must be (N, H, W), got shape {images.shape}")
    wh = _interpolation_matrix(images.shape[1], size)  # (size, H)
    ww = _interpolation_matrix(images.shape[2], size)  # (size, W)
    return np.einsum("ih,nhw,jw->nij", wh, images, ww)  # (N, size, size)


def load_digits(split="train", size=8, dtype="float32"):
    """Return ``(images, labels)`` of the embedded digits as NumPy arrays.

    Args:
        split: ``"train"`` (1,438), ``"test"`` (359) or ``"all"`` (1,797).
        size: output side. 8 keeps the original pixels; any other size (e.g. 32 for
            LeNet-5) resizes bilinearly (:func:`bilinear_resize`, half-pixel centres
            as ``torch.nn.functional.interpolate(..., align_corners=False)``).
        dtype: ``"float32"``/``"float64"``: values divided by 16, in [0, 1].
            ``"uint8"``: the raw counts 0..16 (only with ``size=8``).

    Returns:
        images (N, 1, size, size) in NCHW, labels int64 (N,).
    """
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1:
        raise ValueError(f"size must be a positive int, got {size!r}")
    try:
        dtype = np.dtype(dtype)
    except TypeError as error:
        raise TypeError(f"dtype must be 'float32', 'float64' or 'uint8', got {dtype!r}") from error
    if dtype not in (np.float32, np.float64, np.uint8):
        raise ValueError(f"dtype must be 'float32', 'float64' or 'uint8', got {dtype}")
    arrays = _load_npz()
    index = _indices(split)
    raw = arrays["images"][index]  # (N, 8, 8) uint8 0..16
    labels = arrays["labels"][index].astype(np.int64)
    if dtype == np.uint8:
        if size != 8:
            raise ValueError(f"dtype='uint8' returns the raw 0..16 counts and needs size=8, got size={size}")
        return raw[:, None].copy(), labels
    images = raw.astype(np.float64) / 16.0
    if size != 8:
        images = bilinear_resize(images, size)
    return images[:, None].astype(dtype), labels  # (N, 1, size, size)


class Digits(VisionDataset):
    """torchvision-style view of the embedded digits: ``ds[i] -> (PIL "L" 8x8, int)``.

    Args:
        root: ignored (the data are embedded); accepted so that code written for
            file-based readers works unchanged.
        train: the fixed training split if True, else the test split.
        transform, target_transform: applied to the PIL image / int label.

    Attributes:
        data: uint8 (N, 8, 8) scaled to the usual 0..255 range, ``round(v * 255 / 16)``,
            so a ToTensor-style ``/ 255`` gives the same [0, 1] scale as
            :func:`load_digits` (within 1/510). targets: int64 (N,).

    Example, LeNet-5's input as ``minidl train lenet5`` reads it (ToTensor, then a bilinear
    resize of the float values, which is ``load_digits(size=32)``'s resize)::

        >>> from minidl.data import transforms as T
        >>> ds = Digits(train=False, transform=T.Compose([T.ToTensor(), T.Resize((32, 32))]))
        >>> image, label = ds[0]
        >>> image.shape, image.dtype
        ((1, 32, 32), dtype('float32'))
    """

    classes = [str(d) for d in range(10)]

    def __init__(self, root=None, train=True, transform=None, target_transform=None):
        super().__init__(root, transform, target_transform)
        if not isinstance(train, bool):
            raise TypeError(f"train must be a bool, got {train!r}")
        self.train = train
        raw, labels = load_digits("train" if train else "test", dtype="uint8")
        self.data = np.round(raw[:, 0].astype(np.float64) * (255.0 / 16.0)).astype(np.uint8)  # (N, 8, 8)
        self.targets = labels

    def __len__(self):
        return len(self.data)

    def _load(self, index):
        return array_to_image(self.data[index]), int(self.targets[index])

    def extra_repr(self):
        return f"Split: {'Train' if self.train else 'Test'} (embedded UCI optdigits)"
