"""Image transforms with torchvision's names, arguments and semantics, on NumPy and Pillow.

Inputs
------
Every transform accepts a ``PIL.Image``. Where it makes sense they also accept

* an ``HWC`` (or ``HW``) ``uint8`` NumPy array: a decoded image, as ``np.asarray(pil_image)``;
* a ``CHW`` (or ``HW``) floating NumPy array, or a ``minidl.Tensor`` (``CHW``, any dtype): the
  output of ``ToTensor``.

The output has the kind of the input (PIL in, PIL out; array in, array out). Geometric
transforms on arrays run through Pillow one channel at a time (``"L"`` planes for ``uint8``,
``"F"`` planes for floats), so arrays and PIL images are resampled by the same code.

Randomness
----------
Random transforms draw from the *current generator*, ``get_rng()``:

* inside ``with use_rng(rng):`` it is ``rng`` (a ``numpy.random.Generator``). The setting is
  thread-local. ``DataLoader`` loads every sample inside ``use_rng(default_rng([seed, epoch, 1,
  index]))``, so augmentations are reproducible and independent of the worker threads;
* otherwise it is the module's default generator, reseeded by ``seed(n)``.

Example::

    >>> import numpy as np
    >>> from minidl.data import transforms as T
    >>> t = T.Compose([T.RandomHorizontalFlip(p=1.0), T.ToTensor()])
    >>> img = np.arange(6, dtype=np.uint8).reshape(1, 6, 1)      # HWC
    >>> (np.asarray(t(img).numpy()) * 255).round().astype(int).ravel().tolist()
    [5, 4, 3, 2, 1, 0]
"""

import contextlib
import math
import numbers
import threading

import numpy as np
from PIL import Image, ImageEnhance

__all__ = [
    "seed", "get_rng", "use_rng", "InterpolationMode",
    "Compose", "ToTensor", "PILToTensor", "Normalize", "Resize", "CenterCrop", "Pad", "RandomCrop",
    "RandomResizedCrop", "RandomHorizontalFlip", "RandomVerticalFlip", "RandomRotation", "RandomAffine",
    "ColorJitter", "Grayscale", "GaussianBlur", "Lambda",
    "to_tensor", "pil_to_tensor", "normalize", "resize", "crop", "center_crop", "pad", "resized_crop",
    "hflip", "vflip", "rotate", "affine", "to_grayscale", "adjust_brightness", "adjust_contrast",
    "adjust_saturation", "adjust_hue", "gaussian_blur",
]

# ---------------------------------------------------------------------------------- randomness
_default_rng = np.random.default_rng()
_local = threading.local()


def seed(n):
    """Reseed the module's default generator (used outside ``use_rng`` blocks)."""
    global _default_rng
    _default_rng = np.random.default_rng(n)


def get_rng():
    """The generator random transforms draw from: this thread's ``use_rng`` one, else the default."""
    rng = getattr(_local, "rng", None)
    return _default_rng if rng is None else rng


@contextlib.contextmanager
def use_rng(rng):
    """Make ``rng`` the current generator of this thread for the ``with`` block (blocks nest)."""
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng: expected a numpy.random.Generator, got {type(rng).__name__}")
    previous = getattr(_local, "rng", None)
    _local.rng = rng
    try:
        yield rng
    finally:
        _local.rng = previous


# ---------------------------------------------------------------------------------- image kinds
class InterpolationMode:
    """Resampling filters, as torchvision's enum values (plain strings here)."""

    NEAREST = "nearest"
    BILINEAR = "bilinear"
    BICUBIC = "bicubic"
    BOX = "box"
    HAMMING = "hamming"
    LANCZOS = "lanczos"


_PIL_FILTERS = {
    "nearest": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "box": Image.Resampling.BOX,
    "hamming": Image.Resampling.HAMMING,
    "lanczos": Image.Resampling.LANCZOS,
}


def _pil_filter(interpolation):
    if isinstance(interpolation, Image.Resampling):
        return interpolation
    key = str(interpolation).lower()
    if key not in _PIL_FILTERS:
        raise ValueError(f"interpolation: expected one of {sorted(_PIL_FILTERS)}, got {interpolation!r}")
    return _PIL_FILTERS[key]


def _as_tensor(array):
    import minidl  # lazy: minidl imports minidl.data

    if hasattr(minidl, "tensor"):
        return minidl.tensor(array)
    return array


def _is_tensor(x):
    import minidl

    tensor_cls = getattr(minidl, "Tensor", None)
    if tensor_cls is not None and isinstance(x, tensor_cls):
        return True
    return hasattr(x, "numpy") and callable(x.numpy) and not isinstance(x, (np.ndarray, np.generic))


def _unpack(img, argname="img"):
    """Split an image into ``(kind, array, layout)``.

    kind: ``"pil"``, ``"array"`` or ``"tensor"``; layout: ``"hwc"`` (uint8 arrays) or ``"chw"``
    (float arrays, tensors). For PIL images the array is ``None``.
    """
    if isinstance(img, Image.Image):
        return "pil", None, None
    if _is_tensor(img):
        arr = np.asarray(img.numpy())
        if arr.ndim not in (2, 3):
            raise ValueError(f"{argname}: expected a CHW or HW Tensor, got shape {arr.shape}")
        return "tensor", arr, "chw"
    if isinstance(img, np.ndarray):
        if img.dtype == np.uint8:
            if img.ndim == 2 or (img.ndim == 3 and 1 <= img.shape[2] <= 4):
                return "array", img, "hwc"
            raise ValueError(f"{argname}: expected a uint8 array of shape HW or HWC (C <= 4), got {img.shape}")
        if np.issubdtype(img.dtype, np.floating):
            if img.ndim in (2, 3):
                return "array", img, "chw"
            raise ValueError(f"{argname}: expected a float array of shape CHW or HW, got {img.shape}")
        raise TypeError(f"{argname}: expected a uint8 HWC or float CHW array, got dtype {img.dtype}")
    raise TypeError(f"{argname}: expected a PIL image, a numpy array or a minidl.Tensor, got {type(img).__name__}")


def _repack(kind, arr):
    return _as_tensor(arr) if kind == "tensor" else arr


def _hw_axes(arr, layout):
    """(height axis, width axis) of an array image."""
    if arr.ndim == 2 or layout == "chw":
        return arr.ndim - 2, arr.ndim - 1
    return 0, 1


def _channel_axis(arr, layout):
    if arr.ndim == 2:
        return None
    return 2 if layout == "hwc" else 0


def get_image_size(img):
    """``(height, width)`` of any supported image."""
    kind, arr, layout = _unpack(img)
    if kind == "pil":
        return img.height, img.width
    h_axis, w_axis = _hw_axes(arr, layout)
    return arr.shape[h_axis], arr.shape[w_axis]


def get_image_num_channels(img):
    kind, arr, layout = _unpack(img)
    if kind == "pil":
        return len(img.getbands())
    axis = _channel_axis(arr, layout)
    return 1 if axis is None else arr.shape[axis]


def _channel_fill(fill, channels, integer):
    """Per-channel fill values from a number or a sequence."""
    if fill is None:
        fill = 0
    if isinstance(fill, numbers.Number):
        values = [fill] * channels
    else:
        values = list(fill)
        if len(values) == 1:
            values = values * channels
        if len(values) != channels:
            raise ValueError(f"fill: expected a number or {channels} values (one per channel), got {fill!r}")
    return [int(v) if integer else float(v) for v in values]


def _map_planes(img, fn, fill=0):
    """Apply ``fn(pil_image, fill)`` to a PIL image, or to every channel of an array as its own plane.

    Array channels become ``"L"`` (uint8) or ``"F"`` (float32) images, so that Pillow's resampling
    code serves arrays and PIL images alike; float64 arrays are computed in float32 and cast back.
    """
    kind, arr, layout = _unpack(img)
    if kind == "pil":
        bands = len(img.getbands())
        integer = img.mode not in ("F",)
        values = _channel_fill(fill, bands, integer)
        pil_fill = values[0] if bands == 1 else tuple(values)
        return fn(img, pil_fill)
    dtype = arr.dtype
    if dtype == np.uint8:
        plane_dtype, integer = np.uint8, True
    elif np.issubdtype(dtype, np.floating):
        plane_dtype, integer = np.float32, False
    else:
        raise TypeError(f"img: expected uint8 or floating values for resampling, got dtype {dtype}")
    axis = _channel_axis(arr, layout)
    planes = [arr] if axis is None else [np.take(arr, c, axis=axis) for c in range(arr.shape[axis])]
    fills = _channel_fill(fill, len(planes), integer)
    out = []
    for plane, plane_fill in zip(planes, fills):
        pil = Image.fromarray(np.ascontiguousarray(plane, dtype=plane_dtype))
        out.append(np.asarray(fn(pil, plane_fill)))
    result = out[0] if axis is None else np.stack(out, axis=axis)
    return _repack(kind, result.astype(dtype, copy=False))


def _pil_roundtrip(img, fn):
    """Apply a whole-image PIL function to a PIL image or to a uint8 HWC array (through Pillow)."""
    kind, arr, _ = _unpack(img)
    if kind == "pil":
        return fn(img)
    squeeze = arr.ndim == 3 and arr.shape[2] == 1
    pil = Image.fromarray(arr[..., 0] if squeeze else arr)
    out = np.asarray(fn(pil))
    if arr.ndim == 3 and out.ndim == 2:  # keep HWC in, HWC out (e.g. RGB -> L)
        out = out[..., None]
    return _repack(kind, out)


def _pil_from_array_like(array, like):
    """A PIL image of ``array`` with the mode (and palette) of the PIL image ``like``."""
    if like.mode == "1":
        return Image.fromarray(array.astype(bool))
    out = Image.fromarray(array)
    if like.mode == "P":
        out.putpalette(like.getpalette())  # turns the "L" image of indices into a "P" image
    return out


def _pair(size, argname):
    """``(h, w)`` from an int or a one- or two-element sequence."""
    if isinstance(size, numbers.Integral):
        size = (int(size), int(size))
    else:
        size = tuple(int(s) for s in size)
        if len(size) == 1:
            size = (size[0], size[0])
    if len(size) != 2 or min(size) <= 0:
        raise ValueError(f"{argname}: expected a positive int or (h, w), got {size!r}")
    return size


# ---------------------------------------------------------------------------------- functional
def to_tensor(pic):
    """PIL image or HWC array -> CHW ``minidl.Tensor``; ``uint8`` becomes float32 in [0, 1].

    Non-``uint8`` data keep their dtype and values (as torchvision: PIL ``"I"``, ``"F"`` images).
    """
    if isinstance(pic, Image.Image):
        arr = np.array(pic)
        if pic.mode == "1":
            arr = arr.astype(np.uint8) * 255
    elif isinstance(pic, np.ndarray):
        if pic.ndim not in (2, 3):
            raise ValueError(f"pic: expected an HW or HWC array, got shape {pic.shape}")
        arr = pic
    else:
        raise TypeError(f"pic: expected a PIL image or a numpy array, got {type(pic).__name__}")
    if arr.ndim == 2:
        arr = arr[:, :, None]
    chw = np.ascontiguousarray(arr.transpose(2, 0, 1))  # (C, H, W)
    if chw.dtype == np.uint8:
        chw = chw.astype(np.float32) / np.float32(255)
    return _as_tensor(chw)


def pil_to_tensor(pic):
    """PIL image (or HWC uint8 array) -> CHW ``minidl.Tensor`` with the same dtype and values."""
    if isinstance(pic, Image.Image):
        arr = np.array(pic)
    elif isinstance(pic, np.ndarray) and pic.dtype == np.uint8 and pic.ndim in (2, 3):
        arr = pic
    else:
        raise TypeError(f"pic: expected a PIL image or a uint8 HWC array, got {type(pic).__name__}")
    if arr.ndim == 2:
        arr = arr[:, :, None]
    return _as_tensor(np.ascontiguousarray(arr.transpose(2, 0, 1)))


def normalize(tensor, mean, std, inplace=False):
    """``out[c] = (x[c] - mean[c]) / std[c]`` on a CHW float Tensor or array."""
    kind, arr, layout = _unpack(tensor, "tensor")
    if kind == "pil" or layout != "chw" or not np.issubdtype(arr.dtype, np.floating):
        raise TypeError("tensor: expected a float CHW Tensor or array (apply ToTensor first)")
    channels = 1 if arr.ndim == 2 else arr.shape[0]
    mean = np.asarray(mean, dtype=arr.dtype).reshape(-1)
    std = np.asarray(std, dtype=arr.dtype).reshape(-1)
    for name, values in (("mean", mean), ("std", std)):
        if values.size not in (1, channels):
            raise ValueError(f"{name}: expected 1 or {channels} values (one per channel), got {values.size}")
    if np.any(std == 0):
        raise ValueError(f"std: expected non-zero values, got {std.tolist()}")
    if arr.ndim == 3:
        mean, std = mean[:, None, None], std[:, None, None]
    if inplace and kind == "array":
        arr -= mean
        arr /= std
        return arr
    return _repack(kind, ((arr - mean) / std).astype(arr.dtype, copy=False))


def _resized_hw(h, w, size, max_size):
    """Output (h, w) of ``resize``: an int sets the shorter side and keeps the aspect ratio."""
    if isinstance(size, numbers.Integral) or (not isinstance(size, numbers.Number) and len(size) == 1):
        short_target = int(size) if isinstance(size, numbers.Integral) else int(size[0])
        if short_target <= 0:
            raise ValueError(f"size: expected a positive int, got {size!r}")
        short, long = (w, h) if w <= h else (h, w)
        new_short, new_long = short_target, int(short_target * long / short)
        if max_size is not None:
            if max_size <= short_target:
                raise ValueError(f"max_size: expected a value greater than size={short_target}, got {max_size}")
            if new_long > max_size:
                new_short, new_long = int(max_size * new_short / new_long), max_size
        return (new_long, new_short) if w <= h else (new_short, new_long)
    if max_size is not None:
        raise ValueError("max_size: only allowed when size is a single int")
    return _pair(size, "size")


def resize(img, size, interpolation=InterpolationMode.BILINEAR, max_size=None, antialias=True):
    """Resize to ``size``: ``(h, w)``, or an int for the shorter side (``long = int(size * long / short)``).

    Pillow's filters always antialias when downscaling (``antialias`` is accepted for
    torchvision compatibility).
    """
    h, w = get_image_size(img)
    out_h, out_w = _resized_hw(h, w, size, max_size)
    if (out_h, out_w) == (h, w):
        return img
    resample = _pil_filter(interpolation)
    return _map_planes(img, lambda pil, fill: pil.resize((out_w, out_h), resample))


def pad(img, padding, fill=0, padding_mode="constant"):
    """Pad the borders: ``padding`` is an int, ``(left/right, top/bottom)`` or ``(left, top, right, bottom)``.

    ``padding_mode``: ``"constant"`` (with ``fill``, per channel if a sequence), ``"edge"``,
    ``"reflect"`` (mirror without the edge pixel) or ``"symmetric"`` (with it), as ``np.pad``.
    """
    if isinstance(padding, numbers.Integral):
        left = top = right = bottom = int(padding)
    else:
        values = [int(p) for p in padding]
        if len(values) == 1:
            values = values * 4
        elif len(values) == 2:
            values = [values[0], values[1], values[0], values[1]]
        if len(values) != 4:
            raise ValueError(f"padding: expected an int or 1, 2 or 4 values, got {padding!r}")
        left, top, right, bottom = values
    if min(left, top, right, bottom) < 0:
        raise ValueError(f"padding: expected non-negative values, got {padding!r}")
    if padding_mode not in ("constant", "edge", "reflect", "symmetric"):
        raise ValueError(f"padding_mode: expected constant, edge, reflect or symmetric, got {padding_mode!r}")
    kind, arr, layout = _unpack(img)
    if kind == "pil":
        source = np.asarray(img)
        arr, layout = source, "hwc"
    h_axis, w_axis = _hw_axes(arr, layout)
    widths = [(0, 0)] * arr.ndim
    widths[h_axis] = (top, bottom)
    widths[w_axis] = (left, right)
    if padding_mode == "constant":
        c_axis = _channel_axis(arr, layout)
        channels = 1 if c_axis is None else arr.shape[c_axis]
        fills = _channel_fill(fill, channels, not np.issubdtype(arr.dtype, np.floating))
        if c_axis is None:
            out = np.pad(arr, widths, mode="constant", constant_values=fills[0])
        else:
            out = np.stack(
                [np.pad(np.take(arr, c, axis=c_axis), [w for k, w in enumerate(widths) if k != c_axis],
                        mode="constant", constant_values=fills[c]) for c in range(channels)],
                axis=c_axis,
            )
        out = out.astype(arr.dtype, copy=False)
    else:
        out = np.pad(arr, widths, mode=padding_mode)
    if kind == "pil":
        return _pil_from_array_like(out, img)
    return _repack(kind, out)


def crop(img, top, left, height, width):
    """The ``height x width`` window at ``(top, left)``; parts outside the image are zero."""
    kind, arr, layout = _unpack(img)
    if height <= 0 or width <= 0:
        raise ValueError(f"height, width: expected positive sizes, got ({height}, {width})")
    if kind == "pil":
        return img.crop((left, top, left + width, top + height))
    h_axis, w_axis = _hw_axes(arr, layout)
    h, w = arr.shape[h_axis], arr.shape[w_axis]
    if top >= 0 and left >= 0 and top + height <= h and left + width <= w:
        index = [slice(None)] * arr.ndim
        index[h_axis] = slice(top, top + height)
        index[w_axis] = slice(left, left + width)
        return _repack(kind, np.ascontiguousarray(arr[tuple(index)]))
    # The window leaves the image: copy the overlap into zeros.
    shape = list(arr.shape)
    shape[h_axis], shape[w_axis] = height, width
    out = np.zeros(shape, dtype=arr.dtype)
    y0, y1 = max(top, 0), min(top + height, h)
    x0, x1 = max(left, 0), min(left + width, w)
    if y0 < y1 and x0 < x1:
        src = [slice(None)] * arr.ndim
        dst = [slice(None)] * arr.ndim
        src[h_axis], src[w_axis] = slice(y0, y1), slice(x0, x1)
        dst[h_axis], dst[w_axis] = slice(y0 - top, y1 - top), slice(x0 - left, x1 - left)
        out[tuple(dst)] = arr[tuple(src)]
    return _repack(kind, out)


def center_crop(img, output_size):
    """Crop the centre ``output_size`` window (zero padding first if the image is smaller).

    The top-left corner is ``round((H - h) / 2)``, ``round((W - w) / 2)`` with
    Python's rounding, as torchvision.
    """
    crop_h, crop_w = _pair(output_size, "output_size")
    h, w = get_image_size(img)
    if crop_h > h or crop_w > w:
        padding = [
            (crop_w - w) // 2 if crop_w > w else 0,
            (crop_h - h) // 2 if crop_h > h else 0,
            (crop_w - w + 1) // 2 if crop_w > w else 0,
            (crop_h - h + 1) // 2 if crop_h > h else 0,
        ]
        img = pad(img, padding, fill=0)
        h, w = get_image_size(img)
        if (crop_h, crop_w) == (h, w):
            return img
    top = round((h - crop_h) / 2.0)
    left = round((w - crop_w) / 2.0)
    return crop(img, top, left, crop_h, crop_w)


def resized_crop(img, top, left, height, width, size, interpolation=InterpolationMode.BILINEAR, antialias=True):
    """``crop`` then ``resize`` to ``size``."""
    return resize(crop(img, top, left, height, width), size, interpolation, antialias=antialias)


def _flip(img, pil_method, axis_name):
    kind, arr, layout = _unpack(img)
    if kind == "pil":
        return img.transpose(pil_method)
    h_axis, w_axis = _hw_axes(arr, layout)
    axis = w_axis if axis_name == "w" else h_axis
    return _repack(kind, np.ascontiguousarray(np.flip(arr, axis=axis)))


def hflip(img):
    """Mirror left-right: ``out[..., x] = img[..., W - 1 - x]``."""
    return _flip(img, Image.Transpose.FLIP_LEFT_RIGHT, "w")


def vflip(img):
    """Mirror top-bottom: ``out[y] = img[H - 1 - y]``."""
    return _flip(img, Image.Transpose.FLIP_TOP_BOTTOM, "h")


def rotate(img, angle, interpolation=InterpolationMode.NEAREST, expand=False, center=None, fill=0):
    """Rotate by ``angle`` degrees counter-clockwise about ``center`` (default: the image centre)."""
    resample = _pil_filter(interpolation)
    return _map_planes(
        img, lambda pil, f: pil.rotate(angle, resample=resample, expand=expand, center=center, fillcolor=f), fill
    )


def _inverse_affine_matrix(center, angle, translate, scale, shear):
    """Output-to-input affine map for Pillow, as torchvision's ``_get_inverse_affine_matrix``.

    The forward map is ``M = T * C * RotateScaleShear * C^-1`` with ``C`` the centre translation,
    ``T`` the translation and ``RSS = R(angle) * S(scale) * Shy(shear_y) * Shx(shear_x)``;
    Pillow wants ``M^-1 = C * RSS^-1 * C^-1 * T^-1`` as its six coefficients.
    """
    rot = math.radians(angle)
    sx, sy = math.radians(shear[0]), math.radians(shear[1])
    cx, cy = center
    tx, ty = translate
    # RSS without scaling (its determinant is 1)
    a = math.cos(rot - sy) / math.cos(sy)
    b = -math.cos(rot - sy) * math.tan(sx) / math.cos(sy) - math.sin(rot)
    c = math.sin(rot - sy) / math.cos(sy)
    d = -math.sin(rot - sy) * math.tan(sx) / math.cos(sy) + math.cos(rot)
    matrix = [d / scale, -b / scale, 0.0, -c / scale, a / scale, 0.0]
    matrix[2] += matrix[0] * (-cx - tx) + matrix[1] * (-cy - ty)
    matrix[5] += matrix[3] * (-cx - tx) + matrix[4] * (-cy - ty)
    matrix[2] += cx
    matrix[5] += cy
    return matrix


def affine(img, angle, translate, scale, shear, interpolation=InterpolationMode.NEAREST, fill=0, center=None):
    """Rotate (``angle`` degrees, clockwise on screen), scale, shear (degrees, x and y) and translate (pixels)."""
    if scale <= 0:
        raise ValueError(f"scale: expected a positive value, got {scale}")
    if isinstance(shear, numbers.Number):
        shear = (float(shear), 0.0)
    shear = tuple(float(s) for s in shear)
    if len(shear) == 1:
        shear = (shear[0], shear[0])
    h, w = get_image_size(img)
    if center is None:
        center = (w * 0.5, h * 0.5)
    matrix = _inverse_affine_matrix(center, angle, translate, scale, shear)
    resample = _pil_filter(interpolation)
    return _map_planes(
        img, lambda pil, f: pil.transform((w, h), Image.Transform.AFFINE, matrix, resample, fillcolor=f), fill
    )


# ITU-R 601-2 luma, the weights of Pillow's "L" conversion.
_LUMA = (0.299, 0.587, 0.114)


def _gray_float(arr):
    """Luma of a float CHW RGB array, ``(1, H, W)``."""
    return (_LUMA[0] * arr[0] + _LUMA[1] * arr[1] + _LUMA[2] * arr[2])[None].astype(arr.dtype, copy=False)


def _float_chw(img, argname="img"):
    """(kind, float CHW array) for array/tensor inputs; ``None`` kind for PIL / uint8 (Pillow path)."""
    kind, arr, layout = _unpack(img, argname)
    if kind == "pil" or arr.dtype == np.uint8 and layout == "hwc":
        return None, None
    if not np.issubdtype(arr.dtype, np.floating):
        raise TypeError(f"{argname}: expected float values in [0, 1], got dtype {arr.dtype}")
    if arr.ndim == 2:
        arr = arr[None]
    return kind, arr


def to_grayscale(img, num_output_channels=1):
    """Luma ``L = 0.299 R + 0.587 G + 0.114 B`` (Pillow's ``"L"`` conversion), 1 or 3 channels."""
    if num_output_channels not in (1, 3):
        raise ValueError(f"num_output_channels: expected 1 or 3, got {num_output_channels}")
    kind, arr = _float_chw(img)
    if kind is None:
        def convert(pil):
            gray = pil.convert("L")
            return gray if num_output_channels == 1 else Image.merge("RGB", (gray, gray, gray))
        return _pil_roundtrip(img, convert)
    if arr.shape[0] == 1:
        gray = arr
    elif arr.shape[0] == 3:
        gray = _gray_float(arr)
    else:
        raise ValueError(f"img: expected 1 or 3 channels, got {arr.shape[0]}")
    return _repack(kind, np.repeat(gray, num_output_channels, axis=0))


def _blend(img1, img2, ratio):
    """``ratio * img1 + (1 - ratio) * img2``, clipped to [0, 1]."""
    out = ratio * img1 + (1.0 - ratio) * img2
    return np.clip(out, 0.0, 1.0).astype(img1.dtype, copy=False)


def adjust_brightness(img, brightness_factor):
    """Multiply by ``brightness_factor`` (blend with black), clipped; Pillow's ``ImageEnhance`` on PIL/uint8."""
    if brightness_factor < 0:
        raise ValueError(f"brightness_factor: expected >= 0, got {brightness_factor}")
    kind, arr = _float_chw(img)
    if kind is None:
        return _pil_roundtrip(img, lambda pil: ImageEnhance.Brightness(pil).enhance(brightness_factor))
    return _repack(kind, _blend(arr, np.zeros_like(arr), brightness_factor))


def adjust_contrast(img, contrast_factor):
    """Blend with the mean luma of the image: 0 gives flat grey, 1 the original."""
    if contrast_factor < 0:
        raise ValueError(f"contrast_factor: expected >= 0, got {contrast_factor}")
    kind, arr = _float_chw(img)
    if kind is None:
        return _pil_roundtrip(img, lambda pil: ImageEnhance.Contrast(pil).enhance(contrast_factor))
    mean = (_gray_float(arr) if arr.shape[0] == 3 else arr).mean(dtype=np.float64)
    return _repack(kind, _blend(arr, np.full_like(arr, mean), contrast_factor))


def adjust_saturation(img, saturation_factor):
    """Blend with the grey (luma) image: 0 gives grey, 1 the original, 2 doubles the saturation."""
    if saturation_factor < 0:
        raise ValueError(f"saturation_factor: expected >= 0, got {saturation_factor}")
    kind, arr = _float_chw(img)
    if kind is None:
        return _pil_roundtrip(img, lambda pil: ImageEnhance.Color(pil).enhance(saturation_factor))
    if arr.shape[0] == 1:
        return img
    return _repack(kind, _blend(arr, _gray_float(arr), saturation_factor))


def _rgb_to_hsv(rgb):
    """(3, H, W) RGB in [0, 1] -> HSV with hue in [0, 1) (torchvision's ``_rgb2hsv``)."""
    r, g, b = rgb
    maxc = rgb.max(axis=0)
    minc = rgb.min(axis=0)
    equal = maxc == minc
    chroma = maxc - minc
    s = chroma / np.where(equal, 1.0, maxc)
    divisor = np.where(equal, 1.0, chroma)
    rc, gc, bc = (maxc - r) / divisor, (maxc - g) / divisor, (maxc - b) / divisor
    hr = (maxc == r) * (bc - gc)
    hg = ((maxc == g) & (maxc != r)) * (2.0 + rc - bc)
    hb = ((maxc != g) & (maxc != r)) * (4.0 + gc - rc)
    h = np.fmod((hr + hg + hb) / 6.0 + 1.0, 1.0)
    return np.stack([h, s, maxc])


def _hsv_to_rgb(hsv):
    """Inverse of ``_rgb_to_hsv``: the sextant ``i = floor(6 h)`` picks which of v, p, q, t is R, G, B."""
    h, s, v = hsv
    i = np.floor(h * 6.0)
    f = h * 6.0 - i
    i = i.astype(np.int64) % 6
    p = np.clip(v * (1.0 - s), 0.0, 1.0)
    q = np.clip(v * (1.0 - s * f), 0.0, 1.0)
    t = np.clip(v * (1.0 - s * (1.0 - f)), 0.0, 1.0)
    sextants = [i == k for k in range(6)]
    r = np.select(sextants, [v, q, p, p, t, v])
    g = np.select(sextants, [t, v, v, q, p, p])
    b = np.select(sextants, [p, p, t, v, v, q])
    return np.stack([r, g, b])


def adjust_hue(img, hue_factor):
    """Rotate the hue by ``hue_factor`` turns (in [-0.5, 0.5]) in HSV space.

    PIL / uint8 images follow torchvision: Pillow's 8-bit HSV, hue shifted by
    ``int(hue_factor * 255)`` modulo 256. Float images are converted exactly.
    """
    if not -0.5 <= hue_factor <= 0.5:
        raise ValueError(f"hue_factor: expected a value in [-0.5, 0.5], got {hue_factor}")
    kind, arr = _float_chw(img)
    if kind is None:
        def shift(pil):
            if pil.mode in ("L", "1", "I", "F"):
                return pil
            h, s, v = pil.convert("HSV").split()
            hue = (np.asarray(h).astype(np.int64) + int(hue_factor * 255)) % 256
            shifted = Image.merge("HSV", (Image.fromarray(hue.astype(np.uint8)), s, v))
            return shifted.convert(pil.mode)
        return _pil_roundtrip(img, shift)
    if arr.shape[0] == 1:
        return img
    if arr.shape[0] != 3:
        raise ValueError(f"img: expected 1 or 3 channels, got {arr.shape[0]}")
    hsv = _rgb_to_hsv(arr.astype(np.float64))
    hsv[0] = np.fmod(hsv[0] + hue_factor + 1.0, 1.0)
    return _repack(kind, _hsv_to_rgb(hsv).astype(arr.dtype))


def _gaussian_kernel1d(size, sigma):
    """Normalised samples of ``exp(-x^2 / (2 sigma^2))`` at ``x = -(size-1)/2 .. (size-1)/2``."""
    half = (size - 1) * 0.5
    x = np.linspace(-half, half, size)
    pdf = np.exp(-0.5 * (x / sigma) ** 2)
    return (pdf / pdf.sum()).astype(np.float32)


def gaussian_blur(img, kernel_size, sigma=None):
    """Separable Gaussian blur with reflect padding, as torchvision.

    ``kernel_size`` is an odd int or ``(kx, ky)``; ``sigma`` a number or ``(sx, sy)``, by default
    ``0.3 * ((k - 1) * 0.5 - 1) + 0.8``. Integer images are blurred in float32 and rounded back.
    """
    if isinstance(kernel_size, numbers.Integral):
        kernel_size = (int(kernel_size), int(kernel_size))
    kernel_size = tuple(int(k) for k in kernel_size)
    if len(kernel_size) != 2 or any(k <= 0 or k % 2 == 0 for k in kernel_size):
        raise ValueError(f"kernel_size: expected odd positive values, got {kernel_size}")
    if sigma is None:
        sigma = [0.3 * ((k - 1) * 0.5 - 1) + 0.8 for k in kernel_size]
    elif isinstance(sigma, numbers.Number):
        sigma = [float(sigma), float(sigma)]
    sigma = [float(s) for s in sigma]
    if len(sigma) == 1:
        sigma = sigma * 2
    if len(sigma) != 2 or min(sigma) <= 0:
        raise ValueError(f"sigma: expected positive values, got {sigma}")
    kind, arr, layout = _unpack(img)
    source = np.asarray(img) if kind == "pil" else arr
    if kind == "pil":
        layout = "hwc"
    h_axis, w_axis = _hw_axes(source, layout)
    h, w = source.shape[h_axis], source.shape[w_axis]
    if kernel_size[0] // 2 >= w or kernel_size[1] // 2 >= h:
        raise ValueError(f"kernel_size: expected half-sizes smaller than the image ({h}x{w}), got {kernel_size}")
    x = source.astype(np.float32)
    for axis, size, s in ((w_axis, kernel_size[0], sigma[0]), (h_axis, kernel_size[1], sigma[1])):
        weights = _gaussian_kernel1d(size, s)
        half = size // 2
        widths = [(0, 0)] * x.ndim
        widths[axis] = (half, half)
        padded = np.pad(x, widths, mode="reflect")
        length = x.shape[axis]
        out = np.zeros_like(x)
        for k in range(size):  # out[i] = sum_k w[k] * padded[i + k]
            out += weights[k] * np.take(padded, np.arange(k, k + length), axis=axis)
        x = out
    if source.dtype == np.uint8 or not np.issubdtype(source.dtype, np.floating):
        info = np.iinfo(source.dtype)
        x = np.clip(np.round(x), info.min, info.max)
    result = x.astype(source.dtype)
    if kind == "pil":
        return _pil_from_array_like(result, img)
    return _repack(kind, result)


# ---------------------------------------------------------------------------------- transforms
class Transform:
    """Base class: a callable on one image, with a readable ``repr``."""

    def __call__(self, img):
        raise TypeError(f"{type(self).__name__} must define __call__(img)")

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({args})"


class Compose(Transform):
    """Apply ``transforms`` one after the other."""

    def __init__(self, transforms):
        self.transforms = list(transforms)
        for k, t in enumerate(self.transforms):
            if not callable(t):
                raise TypeError(f"transforms[{k}]: expected a callable, got {type(t).__name__}")

    def __call__(self, img):
        for t in self.transforms:
            img = t(img)
        return img

    def __repr__(self):
        lines = "".join(f"\n    {t!r}" for t in self.transforms)
        return f"Compose({lines}\n)"


class Lambda(Transform):
    """Wrap a user function as a transform."""

    def __init__(self, lambd):
        if not callable(lambd):
            raise TypeError(f"lambd: expected a callable, got {type(lambd).__name__}")
        self.lambd = lambd

    def __call__(self, img):
        return self.lambd(img)


class ToTensor(Transform):
    """PIL image or HWC ``uint8`` array -> CHW float32 ``minidl.Tensor`` in [0, 1]."""

    def __call__(self, pic):
        return to_tensor(pic)


class PILToTensor(Transform):
    """PIL image -> CHW ``minidl.Tensor`` keeping dtype and values (``uint8`` stays ``uint8``)."""

    def __call__(self, pic):
        return pil_to_tensor(pic)


class Normalize(Transform):
    """``(x - mean[c]) / std[c]`` per channel of a float CHW Tensor or array."""

    def __init__(self, mean, std, inplace=False):
        self.mean = list(np.atleast_1d(np.asarray(mean, dtype=np.float64)).tolist())
        self.std = list(np.atleast_1d(np.asarray(std, dtype=np.float64)).tolist())
        if any(s == 0 for s in self.std):
            raise ValueError(f"std: expected non-zero values, got {self.std}")
        self.inplace = inplace

    def __call__(self, tensor):
        return normalize(tensor, self.mean, self.std, self.inplace)


class Resize(Transform):
    """Resize to ``(h, w)``, or with an int, make the shorter side ``size`` keeping the aspect ratio."""

    def __init__(self, size, interpolation=InterpolationMode.BILINEAR, max_size=None, antialias=True):
        _pil_filter(interpolation)
        self.size = size
        self.interpolation = interpolation
        self.max_size = max_size
        self.antialias = antialias

    def __call__(self, img):
        return resize(img, self.size, self.interpolation, self.max_size, self.antialias)


class CenterCrop(Transform):
    """Crop the central ``size`` (int or ``(h, w)``) window."""

    def __init__(self, size):
        self.size = _pair(size, "size")

    def __call__(self, img):
        return center_crop(img, self.size)


class Pad(Transform):
    """Pad the borders (see ``pad``)."""

    def __init__(self, padding, fill=0, padding_mode="constant"):
        self.padding = padding
        self.fill = fill
        self.padding_mode = padding_mode

    def __call__(self, img):
        return pad(img, self.padding, self.fill, self.padding_mode)


class RandomCrop(Transform):
    """Crop a random ``size`` window, after optional ``padding`` (and padding up to ``size`` if
    ``pad_if_needed``). The corner is uniform over all windows inside the padded image."""

    def __init__(self, size, padding=None, pad_if_needed=False, fill=0, padding_mode="constant"):
        self.size = _pair(size, "size")
        self.padding = padding
        self.pad_if_needed = pad_if_needed
        self.fill = fill
        self.padding_mode = padding_mode

    @staticmethod
    def get_params(img, output_size, rng=None):
        """Random ``(top, left, h, w)`` of a crop of ``output_size``."""
        rng = get_rng() if rng is None else rng
        h, w = get_image_size(img)
        th, tw = output_size
        if h < th or w < tw:
            raise ValueError(f"size: expected a crop no larger than the image {(h, w)}, got {(th, tw)}")
        if (h, w) == (th, tw):
            return 0, 0, h, w
        top = int(rng.integers(0, h - th + 1))
        left = int(rng.integers(0, w - tw + 1))
        return top, left, th, tw

    def __call__(self, img):
        if self.padding is not None:
            img = pad(img, self.padding, self.fill, self.padding_mode)
        h, w = get_image_size(img)
        if self.pad_if_needed and w < self.size[1]:
            img = pad(img, [self.size[1] - w, 0], self.fill, self.padding_mode)
        if self.pad_if_needed and h < self.size[0]:
            img = pad(img, [0, self.size[0] - h], self.fill, self.padding_mode)
        top, left, th, tw = self.get_params(img, self.size)
        return crop(img, top, left, th, tw)


class RandomResizedCrop(Transform):
    """Crop a random area fraction in ``scale`` with aspect ratio (log-uniform) in ``ratio``, resize to ``size``.

    Up to 10 tries for a window that fits; otherwise a central crop clamped to ``ratio``
    (Szegedy et al., "Going deeper with convolutions", 2015; torchvision's algorithm).
    """

    def __init__(self, size, scale=(0.08, 1.0), ratio=(3.0 / 4.0, 4.0 / 3.0),
                 interpolation=InterpolationMode.BILINEAR, antialias=True):
        self.size = _pair(size, "size")
        if scale[0] > scale[1] or ratio[0] > ratio[1]:
            raise ValueError(f"scale, ratio: expected (min, max) ranges, got scale={scale}, ratio={ratio}")
        _pil_filter(interpolation)
        self.scale = tuple(scale)
        self.ratio = tuple(ratio)
        self.interpolation = interpolation
        self.antialias = antialias

    @staticmethod
    def get_params(img, scale, ratio, rng=None):
        """Random ``(top, left, h, w)`` of the crop."""
        rng = get_rng() if rng is None else rng
        height, width = get_image_size(img)
        area = height * width
        log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
        for _ in range(10):
            target_area = area * rng.uniform(scale[0], scale[1])
            aspect = math.exp(rng.uniform(log_ratio[0], log_ratio[1]))
            w = round(math.sqrt(target_area * aspect))
            h = round(math.sqrt(target_area / aspect))
            if 0 < w <= width and 0 < h <= height:
                top = int(rng.integers(0, height - h + 1))
                left = int(rng.integers(0, width - w + 1))
                return top, left, h, w
        # Fallback: the largest central crop whose aspect ratio lies in ``ratio``.
        in_ratio = width / height
        if in_ratio < min(ratio):
            w = width
            h = round(w / min(ratio))
        elif in_ratio > max(ratio):
            h = height
            w = round(h * max(ratio))
        else:
            w, h = width, height
        return (height - h) // 2, (width - w) // 2, h, w

    def __call__(self, img):
        top, left, h, w = self.get_params(img, self.scale, self.ratio)
        return resized_crop(img, top, left, h, w, self.size, self.interpolation, self.antialias)


class RandomHorizontalFlip(Transform):
    """Mirror left-right with probability ``p``."""

    def __init__(self, p=0.5):
        self.p = p

    def __call__(self, img):
        return hflip(img) if get_rng().random() < self.p else img


class RandomVerticalFlip(Transform):
    """Mirror top-bottom with probability ``p``."""

    def __init__(self, p=0.5):
        self.p = p

    def __call__(self, img):
        return vflip(img) if get_rng().random() < self.p else img


def _degree_range(degrees, name):
    if isinstance(degrees, numbers.Number):
        if degrees < 0:
            raise ValueError(f"{name}: expected a non-negative number or (min, max), got {degrees}")
        return (-float(degrees), float(degrees))
    degrees = tuple(float(d) for d in degrees)
    if len(degrees) != 2 or degrees[0] > degrees[1]:
        raise ValueError(f"{name}: expected a number or (min, max), got {degrees}")
    return degrees


class RandomRotation(Transform):
    """Rotate by an angle uniform in ``degrees`` (``d`` means ``(-d, d)``), counter-clockwise."""

    def __init__(self, degrees, interpolation=InterpolationMode.NEAREST, expand=False, center=None, fill=0):
        self.degrees = _degree_range(degrees, "degrees")
        _pil_filter(interpolation)
        self.interpolation = interpolation
        self.expand = expand
        self.center = center
        self.fill = fill

    @staticmethod
    def get_params(degrees, rng=None):
        rng = get_rng() if rng is None else rng
        return float(rng.uniform(degrees[0], degrees[1]))

    def __call__(self, img):
        angle = self.get_params(self.degrees)
        return rotate(img, angle, self.interpolation, self.expand, self.center, self.fill)


class RandomAffine(Transform):
    """Random rotation, translation (fractions of width/height), scale and shear (degrees).

    ``shear``: ``s`` -> x-shear in ``(-s, s)``; ``(a, b)`` -> x-shear in ``(a, b)``;
    ``(a, b, c, d)`` -> x in ``(a, b)`` and y in ``(c, d)``.
    """

    def __init__(self, degrees, translate=None, scale=None, shear=None,
                 interpolation=InterpolationMode.NEAREST, fill=0, center=None):
        self.degrees = _degree_range(degrees, "degrees")
        if translate is not None and (len(translate) != 2 or not all(0.0 <= t <= 1.0 for t in translate)):
            raise ValueError(f"translate: expected two fractions in [0, 1], got {translate}")
        if scale is not None and (len(scale) != 2 or scale[0] <= 0 or scale[0] > scale[1]):
            raise ValueError(f"scale: expected (min, max) with 0 < min <= max, got {scale}")
        if shear is not None:
            if isinstance(shear, numbers.Number):
                shear = _degree_range(shear, "shear")
            shear = tuple(float(s) for s in shear)
            if len(shear) not in (2, 4):
                raise ValueError(f"shear: expected a number, 2 or 4 values, got {shear}")
        _pil_filter(interpolation)
        self.translate = translate
        self.scale = scale
        self.shear = shear
        self.interpolation = interpolation
        self.fill = fill
        self.center = center

    @staticmethod
    def get_params(degrees, translate, scale_ranges, shears, img_size, rng=None):
        """Random ``(angle, (tx, ty), scale, (shear_x, shear_y))``; ``img_size`` is ``(w, h)``."""
        rng = get_rng() if rng is None else rng
        angle = float(rng.uniform(degrees[0], degrees[1]))
        if translate is not None:
            max_dx = float(translate[0] * img_size[0])
            max_dy = float(translate[1] * img_size[1])
            translations = (round(rng.uniform(-max_dx, max_dx)), round(rng.uniform(-max_dy, max_dy)))
        else:
            translations = (0, 0)
        scale = float(rng.uniform(scale_ranges[0], scale_ranges[1])) if scale_ranges is not None else 1.0
        shear_x = shear_y = 0.0
        if shears is not None:
            shear_x = float(rng.uniform(shears[0], shears[1]))
            if len(shears) == 4:
                shear_y = float(rng.uniform(shears[2], shears[3]))
        return angle, translations, scale, (shear_x, shear_y)

    def __call__(self, img):
        h, w = get_image_size(img)
        angle, translations, scale, shear = self.get_params(
            self.degrees, self.translate, self.scale, self.shear, (w, h)
        )
        return affine(img, angle, translations, scale, shear, self.interpolation, self.fill, self.center)


def _jitter_range(value, name, center=1.0, bound=(0.0, float("inf")), clip_first_on_zero=True):
    """``(min, max)`` of a jitter factor from a number ``v`` (``center -/+ v``) or a pair; None if a no-op."""
    if isinstance(value, numbers.Number):
        if value < 0:
            raise ValueError(f"{name}: expected a non-negative number, got {value}")
        value = [center - float(value), center + float(value)]
        if clip_first_on_zero:
            value[0] = max(value[0], 0.0)
    else:
        value = [float(v) for v in value]
        if len(value) != 2:
            raise ValueError(f"{name}: expected a number or (min, max), got {value}")
    if not bound[0] <= value[0] <= value[1] <= bound[1]:
        raise ValueError(f"{name}: expected values in [{bound[0]}, {bound[1]}] with min <= max, got {value}")
    if value[0] == value[1] == center:
        return None
    return tuple(value)


class ColorJitter(Transform):
    """Randomly change brightness, contrast, saturation and hue, in a random order.

    Each factor is uniform in its range: a number ``b`` means ``[max(0, 1 - b), 1 + b]`` (hue:
    ``[-h, h]``, ``h <= 0.5``), a pair ``(min, max)`` is taken as is.
    """

    def __init__(self, brightness=0, contrast=0, saturation=0, hue=0):
        self.brightness = _jitter_range(brightness, "brightness")
        self.contrast = _jitter_range(contrast, "contrast")
        self.saturation = _jitter_range(saturation, "saturation")
        self.hue = _jitter_range(hue, "hue", center=0.0, bound=(-0.5, 0.5), clip_first_on_zero=False)

    @staticmethod
    def get_params(brightness, contrast, saturation, hue, rng=None):
        """Random ``(order, b, c, s, h)``; a factor is None when its range is None."""
        rng = get_rng() if rng is None else rng
        order = rng.permutation(4).tolist()
        factors = [None if r is None else float(rng.uniform(r[0], r[1])) for r in (brightness, contrast, saturation, hue)]
        return (order, *factors)

    def __call__(self, img):
        order, b, c, s, h = self.get_params(self.brightness, self.contrast, self.saturation, self.hue)
        for k in order:
            if k == 0 and b is not None:
                img = adjust_brightness(img, b)
            elif k == 1 and c is not None:
                img = adjust_contrast(img, c)
            elif k == 2 and s is not None:
                img = adjust_saturation(img, s)
            elif k == 3 and h is not None:
                img = adjust_hue(img, h)
        return img


class Grayscale(Transform):
    """Convert to luma (Pillow's ``"L"`` weights 0.299, 0.587, 0.114), 1 or 3 output channels."""

    def __init__(self, num_output_channels=1):
        if num_output_channels not in (1, 3):
            raise ValueError(f"num_output_channels: expected 1 or 3, got {num_output_channels}")
        self.num_output_channels = num_output_channels

    def __call__(self, img):
        return to_grayscale(img, self.num_output_channels)


class GaussianBlur(Transform):
    """Gaussian blur with ``sigma`` uniform in ``(min, max)`` (a number fixes it)."""

    def __init__(self, kernel_size, sigma=(0.1, 2.0)):
        if isinstance(kernel_size, numbers.Integral):
            kernel_size = (int(kernel_size), int(kernel_size))
        self.kernel_size = tuple(int(k) for k in kernel_size)
        if len(self.kernel_size) != 2 or any(k <= 0 or k % 2 == 0 for k in self.kernel_size):
            raise ValueError(f"kernel_size: expected odd positive values, got {kernel_size}")
        if isinstance(sigma, numbers.Number):
            sigma = (float(sigma), float(sigma))
        sigma = tuple(float(s) for s in sigma)
        if len(sigma) != 2 or not 0 < sigma[0] <= sigma[1]:
            raise ValueError(f"sigma: expected a positive number or (min, max) with 0 < min <= max, got {sigma}")
        self.sigma = sigma

    @staticmethod
    def get_params(sigma_min, sigma_max, rng=None):
        rng = get_rng() if rng is None else rng
        return float(rng.uniform(sigma_min, sigma_max))

    def __call__(self, img):
        sigma = self.get_params(self.sigma[0], self.sigma[1])
        return gaussian_blur(img, self.kernel_size, [sigma, sigma])
