"""Functional image transforms on NumPy arrays and PIL images (torchvision's ``transforms.functional``).

Inputs and outputs
------------------
Every function accepts

* a ``PIL.Image`` (PIL in, PIL out; the work is done by ``functional_pil``);
* an ``HWC`` (or ``HW``) ``uint8`` NumPy array: a decoded image, as ``np.asarray(pil_image)``.
  A 3-D ``uint8`` array whose last axis is not 1-4 channels but whose first axis is, is ``CHW``
  (the output of ``pil_to_tensor``);
* a ``CHW`` (or ``HW``) floating NumPy array: the output of ``to_tensor``;
* a ``minidl.Tensor`` (``CHW``, any dtype), for users who hold one: it is brought to the host
  with ``minidl.data.to_numpy`` and the result is a NumPy array.

Arrays give NumPy arrays: samples stay NumPy until ``default_collate`` makes the batch a
Tensor. Geometric operations on arrays run through Pillow one channel at a time (``"L"``
planes for ``uint8``, ``"F"`` planes for floats), so arrays and PIL images are resampled by
the same code; ``resize`` of float arrays, the hot step of small-image pipelines, is done
here in NumPy with Pillow's own separable weights, and so are colour operations on floats.

Example::

    >>> import numpy as np
    >>> from minidl.data.transforms import functional as F
    >>> img = np.arange(6, dtype=np.uint8).reshape(1, 6, 1)     # HWC
    >>> F.hflip(img).ravel().tolist()
    [5, 4, 3, 2, 1, 0]
    >>> F.to_tensor(img).shape, F.to_tensor(img).dtype           # CHW float32 in [0, 1]
    ((1, 1, 6), dtype('float32'))
"""

import functools
import math
import numbers

import numpy as np
from PIL import Image

from minidl.data.convert import is_tensor, to_numpy
from minidl.data.transforms import functional_pil as F_pil

__all__ = [
    "InterpolationMode", "get_image_size", "get_image_num_channels",
    "to_tensor", "pil_to_tensor", "normalize", "resize", "crop", "center_crop", "pad", "resized_crop",
    "hflip", "vflip", "rotate", "affine", "to_grayscale", "adjust_brightness", "adjust_contrast",
    "adjust_saturation", "adjust_hue", "gaussian_blur", "perspective", "adjust_sharpness", "erase",
]


class InterpolationMode:
    """Resampling filters, as torchvision's enum values (plain strings here)."""

    NEAREST = "nearest"
    BILINEAR = "bilinear"
    BICUBIC = "bicubic"
    BOX = "box"
    HAMMING = "hamming"
    LANCZOS = "lanczos"


# ---------------------------------------------------------------------------------- image kinds
def _unpack(img, argname="img"):
    """Split an image into ``(kind, array, layout)``.

    kind: ``"pil"`` or ``"array"``; layout: ``"hwc"`` or ``"chw"`` (``HW`` arrays have no channel
    axis; either name serves). For PIL images the array and layout are ``None``.
    """
    if isinstance(img, Image.Image):
        return "pil", None, None
    if is_tensor(img):
        arr = to_numpy(img)
        if arr.ndim not in (2, 3):
            raise ValueError(f"{argname}: expected a CHW or HW Tensor, got shape {arr.shape}")
        return "array", arr, "chw"
    if isinstance(img, np.ndarray):
        if img.dtype == np.uint8:
            if img.ndim == 2 or (img.ndim == 3 and 1 <= img.shape[2] <= 4):
                return "array", img, "hwc"
            if img.ndim == 3 and 1 <= img.shape[0] <= 4:
                return "array", img, "chw"
            raise ValueError(f"{argname}: expected a uint8 array of shape HW, HWC or CHW (C <= 4), got {img.shape}")
        if np.issubdtype(img.dtype, np.floating):
            if img.ndim in (2, 3):
                return "array", img, "chw"
            raise ValueError(f"{argname}: expected a float array of shape CHW or HW, got {img.shape}")
        raise TypeError(f"{argname}: expected a uint8 HWC or float CHW array, got dtype {img.dtype}")
    raise TypeError(f"{argname}: expected a PIL image, a numpy array or a minidl.Tensor, got {type(img).__name__}")


def _array_of(img):
    """``img`` itself, or the NumPy array of a Tensor (for early returns of unchanged images)."""
    return to_numpy(img) if is_tensor(img) else img


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
        return F_pil.get_image_size(img)
    h_axis, w_axis = _hw_axes(arr, layout)
    return arr.shape[h_axis], arr.shape[w_axis]


def get_image_num_channels(img):
    kind, arr, layout = _unpack(img)
    if kind == "pil":
        return F_pil.get_image_num_channels(img)
    axis = _channel_axis(arr, layout)
    return 1 if axis is None else arr.shape[axis]


def _map_planes(img, fn, fill=0):
    """Apply ``fn(pil_image, fill)`` to a PIL image, or to every channel of an array as its own plane.

    Array channels become ``"L"`` (uint8) or ``"F"`` (float32) images, so that Pillow's resampling
    code serves arrays and PIL images alike; float64 arrays are computed in float32 and cast back.
    """
    kind, arr, layout = _unpack(img)
    if kind == "pil":
        return fn(img, F_pil.fill_for(img, fill))
    dtype = arr.dtype
    if dtype == np.uint8:
        plane_dtype, integer = np.uint8, True
    elif np.issubdtype(dtype, np.floating):
        plane_dtype, integer = np.float32, False
    else:
        raise TypeError(f"img: expected uint8 or floating values for resampling, got dtype {dtype}")
    axis = _channel_axis(arr, layout)
    planes = [arr] if axis is None else [np.take(arr, c, axis=axis) for c in range(arr.shape[axis])]
    fills = F_pil.channel_fill(fill, len(planes), integer)
    out = []
    for plane, plane_fill in zip(planes, fills):
        pil = Image.fromarray(np.ascontiguousarray(plane, dtype=plane_dtype))
        out.append(np.asarray(fn(pil, plane_fill)))
    result = out[0] if axis is None else np.stack(out, axis=axis)
    return result.astype(dtype, copy=False)


def _pil_roundtrip(img, fn):
    """Apply a whole-image PIL function to a PIL image or to a uint8 array (through Pillow).

    The array keeps its layout: HWC in, HWC out; CHW in, CHW out; a 1-channel result keeps
    its channel axis (e.g. RGB -> L).
    """
    kind, arr, layout = _unpack(img)
    if kind == "pil":
        return fn(img)
    hwc = arr.transpose(1, 2, 0) if arr.ndim == 3 and layout == "chw" else arr
    squeeze = hwc.ndim == 3 and hwc.shape[2] == 1
    pil = Image.fromarray(np.ascontiguousarray(hwc[..., 0] if squeeze else hwc))
    out = np.asarray(fn(pil))
    if hwc.ndim == 3 and out.ndim == 2:
        out = out[..., None]
    if arr.ndim == 3 and layout == "chw":
        out = np.ascontiguousarray(out.transpose(2, 0, 1))
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


# ---------------------------------------------------------------------------------- conversion
def to_tensor(pic):
    """PIL image or HWC array -> CHW NumPy array; ``uint8`` becomes float32 in [0, 1].

    Named after torchvision's ``to_tensor`` and with its layout and scaling; the sample stays a
    NumPy array and ``default_collate`` makes the batch a ``minidl.Tensor``. Non-``uint8`` data
    keep their dtype and values (as torchvision: PIL ``"I"``, ``"F"`` images). A
    ``minidl.Tensor`` is taken as CHW already (``uint8`` is scaled to [0, 1] all the same).
    """
    if is_tensor(pic):
        arr = to_numpy(pic)
        if arr.ndim not in (2, 3):
            raise ValueError(f"pic: expected a CHW or HW Tensor, got shape {arr.shape}")
        chw = arr[None] if arr.ndim == 2 else arr
    else:
        if isinstance(pic, Image.Image):
            arr = np.asarray(pic)
            if pic.mode == "1":
                arr = arr.astype(np.uint8) * 255
        elif isinstance(pic, np.ndarray):
            if pic.ndim not in (2, 3):
                raise ValueError(f"pic: expected an HW or HWC array, got shape {pic.shape}")
            arr = pic
        else:
            raise TypeError(f"pic: expected a PIL image or a numpy array, got {type(pic).__name__}")
        chw = arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)  # (C, H, W)
    if chw.dtype == np.uint8:
        out = np.empty(chw.shape, np.float32)
        np.divide(chw, np.float32(255), out=out)  # float32 division, as x.astype(float32) / 255
        return out
    return np.array(chw, order="C")  # a fresh, writable copy: the sample never aliases its source


def pil_to_tensor(pic):
    """PIL image (or HWC uint8 array) -> CHW NumPy array with the same dtype and values."""
    if isinstance(pic, Image.Image):
        arr = np.array(pic)
    elif isinstance(pic, np.ndarray) and pic.dtype == np.uint8 and pic.ndim in (2, 3):
        arr = pic
    else:
        raise TypeError(f"pic: expected a PIL image or a uint8 HWC array, got {type(pic).__name__}")
    if arr.ndim == 2:
        arr = arr[:, :, None]
    return np.ascontiguousarray(arr.transpose(2, 0, 1))


def normalize(tensor, mean, std, inplace=False):
    """``out[c] = (x[c] - mean[c]) / std[c]`` on a CHW float array (or Tensor)."""
    kind, arr, layout = _unpack(tensor, "tensor")
    if kind == "pil" or layout != "chw" or not np.issubdtype(arr.dtype, np.floating):
        raise TypeError("tensor: expected a float CHW array or Tensor (apply ToTensor first)")
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
    if inplace and not is_tensor(tensor):
        arr -= mean
        arr /= std
        return arr
    return ((arr - mean) / std).astype(arr.dtype, copy=False)


# ---------------------------------------------------------------------------------- geometry
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


def _filter_bilinear(x):
    x = np.abs(x)
    return np.where(x < 1.0, 1.0 - x, 0.0)


def _filter_box(x):
    return np.where((x > -0.5) & (x <= 0.5), 1.0, 0.0)


def _filter_hamming(x):
    x = np.abs(x)
    px = np.pi * x
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.sin(px) / px * (0.54 + 0.46 * np.cos(px))
    return np.where(x == 0.0, 1.0, np.where(x >= 1.0, 0.0, out))


def _filter_bicubic(x, a=-0.5):
    x = np.abs(x)
    near = ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0
    far = (((x - 5.0) * x + 8.0) * x - 4.0) * a
    return np.where(x < 1.0, near, np.where(x < 2.0, far, 0.0))


def _sinc(x):
    return np.sinc(x)  # sin(pi x) / (pi x), 1 at 0


def _filter_lanczos(x):
    return np.where((x > -3.0) & (x < 3.0), _sinc(x) * _sinc(x / 3.0), 0.0)


# interpolation -> (filter, support), as Pillow's Resample.c
_FILTERS = {
    "box": (_filter_box, 0.5),
    "bilinear": (_filter_bilinear, 1.0),
    "hamming": (_filter_hamming, 1.0),
    "bicubic": (_filter_bicubic, 2.0),
    "lanczos": (_filter_lanczos, 3.0),
}


@functools.lru_cache(maxsize=64)
def _resample_matrix(in_size, out_size, interpolation):
    """``(out_size, in_size)`` weights of one separable resampling pass, Pillow's ``precompute_coeffs``.

    Output pixel ``i`` is centred at ``c = (i + 0.5) * in / out`` in input coordinates; the
    filter is stretched by ``s = max(in / out, 1)`` (antialiasing when shrinking) and input
    pixels ``j`` within ``support * s`` of ``c`` get ``filter((j - c + 0.5) / s)``, normalised to
    sum to 1. For bilinear enlarging this is ``interpolate(..., align_corners=False)``.
    """
    fn, support = _FILTERS[interpolation]
    scale = in_size / out_size
    filterscale = max(scale, 1.0)
    support = support * filterscale
    weights = np.zeros((out_size, in_size))
    for i in range(out_size):
        center = (i + 0.5) * scale
        lo = max(int(center - support + 0.5), 0)
        hi = min(int(center + support + 0.5), in_size)
        w = fn((np.arange(lo, hi) - center + 0.5) / filterscale)
        total = w.sum()
        weights[i, lo:hi] = w / total if total != 0.0 else w
    weights.setflags(write=False)
    return weights


def _resize_float(arr, layout, out_hw, interpolation):
    """Resize a float array in NumPy with Pillow's separable weights, computed in float64."""
    h_axis, w_axis = _hw_axes(arr, layout)
    wh = _resample_matrix(arr.shape[h_axis], out_hw[0], interpolation)  # (out_h, H)
    ww = _resample_matrix(arr.shape[w_axis], out_hw[1], interpolation)  # (out_w, W)
    x = arr.astype(np.float64, copy=False)
    if arr.ndim == 2:
        out = wh @ x @ ww.T
    elif layout == "chw":
        out = np.matmul(np.matmul(wh, x), ww.T)  # (C, out_h, W) -> (C, out_h, out_w)
    else:
        out = np.einsum("ih,hwc,jw->ijc", wh, x, ww)
    return out.astype(arr.dtype)


def resize(img, size, interpolation=InterpolationMode.BILINEAR, max_size=None, antialias=True):
    """Resize to ``size``: ``(h, w)``, or an int for the shorter side (``long = int(size * long / short)``).

    PIL images and ``uint8`` arrays are resampled by Pillow; float arrays by NumPy with the
    same separable weights as Pillow's (``_resample_matrix``), except ``NEAREST``, which goes
    through Pillow's ``"F"`` planes. The filters always antialias when downscaling
    (``antialias`` is accepted for torchvision compatibility).
    """
    h, w = get_image_size(img)
    out_hw = _resized_hw(h, w, size, max_size)
    if out_hw == (h, w):
        return _array_of(img)
    F_pil.pil_filter(interpolation)
    kind, arr, layout = _unpack(img)
    key = str(interpolation).lower()
    if kind == "array" and np.issubdtype(arr.dtype, np.floating) and key in _FILTERS:
        return _resize_float(arr, layout, out_hw, key)
    return _map_planes(img, lambda pil, fill: F_pil.resize(pil, out_hw, interpolation))


def _padding_widths(padding):
    """``(left, top, right, bottom)`` from an int, ``(left/right, top/bottom)`` or four values."""
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
    return left, top, right, bottom


def pad(img, padding, fill=0, padding_mode="constant"):
    """Pad the borders: ``padding`` is an int, ``(left/right, top/bottom)`` or ``(left, top, right, bottom)``.

    ``padding_mode``: ``"constant"`` (with ``fill``, per channel if a sequence), ``"edge"``,
    ``"reflect"`` (mirror without the edge pixel) or ``"symmetric"`` (with it), as ``np.pad``.
    """
    left, top, right, bottom = _padding_widths(padding)
    if padding_mode not in ("constant", "edge", "reflect", "symmetric"):
        raise ValueError(f"padding_mode: expected constant, edge, reflect or symmetric, got {padding_mode!r}")
    kind, arr, layout = _unpack(img)
    if kind == "pil":
        return F_pil.pad(img, (left, top, right, bottom), fill, padding_mode)
    h_axis, w_axis = _hw_axes(arr, layout)
    widths = [(0, 0)] * arr.ndim
    widths[h_axis] = (top, bottom)
    widths[w_axis] = (left, right)
    if padding_mode != "constant":
        return np.pad(arr, widths, mode=padding_mode)
    c_axis = _channel_axis(arr, layout)
    channels = 1 if c_axis is None else arr.shape[c_axis]
    fills = F_pil.channel_fill(fill, channels, not np.issubdtype(arr.dtype, np.floating))
    if c_axis is None:
        out = np.pad(arr, widths, mode="constant", constant_values=fills[0])
    else:
        plane_widths = [w for k, w in enumerate(widths) if k != c_axis]
        out = np.stack([np.pad(np.take(arr, c, axis=c_axis), plane_widths, mode="constant", constant_values=fills[c])
                        for c in range(channels)], axis=c_axis)
    return out.astype(arr.dtype, copy=False)


def crop(img, top, left, height, width):
    """The ``height x width`` window at ``(top, left)``; parts outside the image are zero."""
    kind, arr, layout = _unpack(img)
    if height <= 0 or width <= 0:
        raise ValueError(f"height, width: expected positive sizes, got ({height}, {width})")
    if kind == "pil":
        return F_pil.crop(img, top, left, height, width)
    h_axis, w_axis = _hw_axes(arr, layout)
    h, w = arr.shape[h_axis], arr.shape[w_axis]
    if top >= 0 and left >= 0 and top + height <= h and left + width <= w:
        index = [slice(None)] * arr.ndim
        index[h_axis] = slice(top, top + height)
        index[w_axis] = slice(left, left + width)
        return np.ascontiguousarray(arr[tuple(index)])
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
    return out


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


def _flip(img, axis_name):
    kind, arr, layout = _unpack(img)
    if kind == "pil":
        return F_pil.hflip(img) if axis_name == "w" else F_pil.vflip(img)
    h_axis, w_axis = _hw_axes(arr, layout)
    axis = w_axis if axis_name == "w" else h_axis
    return np.ascontiguousarray(np.flip(arr, axis=axis))


def hflip(img):
    """Mirror left-right: ``out[..., x] = img[..., W - 1 - x]``."""
    return _flip(img, "w")


def vflip(img):
    """Mirror top-bottom: ``out[y] = img[H - 1 - y]``."""
    return _flip(img, "h")


def rotate(img, angle, interpolation=InterpolationMode.NEAREST, expand=False, center=None, fill=0):
    """Rotate by ``angle`` degrees counter-clockwise about ``center`` (default: the image centre)."""
    F_pil.pil_filter(interpolation)
    return _map_planes(img, lambda pil, f: F_pil.rotate(pil, angle, interpolation, expand, center, f), fill)


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
    F_pil.pil_filter(interpolation)
    return _map_planes(img, lambda pil, f: F_pil.affine(pil, matrix, interpolation, f), fill)


# ---------------------------------------------------------------------------------- colour
# ITU-R 601-2 luma, the weights of Pillow's "L" conversion.
_LUMA = (0.299, 0.587, 0.114)


def _gray_float(arr):
    """Luma of a float CHW RGB array, ``(1, H, W)``."""
    return (_LUMA[0] * arr[0] + _LUMA[1] * arr[1] + _LUMA[2] * arr[2])[None].astype(arr.dtype, copy=False)


def _float_chw(img, argname="img"):
    """The float CHW array of an array/Tensor input; ``None`` for PIL / uint8 (the Pillow path)."""
    kind, arr, _ = _unpack(img, argname)
    if kind == "pil" or arr.dtype == np.uint8:
        return None
    if not np.issubdtype(arr.dtype, np.floating):
        raise TypeError(f"{argname}: expected float values in [0, 1], got dtype {arr.dtype}")
    if arr.ndim == 2:
        arr = arr[None]
    return arr


def to_grayscale(img, num_output_channels=1):
    """Luma ``L = 0.299 R + 0.587 G + 0.114 B`` (Pillow's ``"L"`` conversion), 1 or 3 channels."""
    if num_output_channels not in (1, 3):
        raise ValueError(f"num_output_channels: expected 1 or 3, got {num_output_channels}")
    arr = _float_chw(img)
    if arr is None:
        return _pil_roundtrip(img, lambda pil: F_pil.to_grayscale(pil, num_output_channels))
    if arr.shape[0] == 1:
        gray = arr
    elif arr.shape[0] == 3:
        gray = _gray_float(arr)
    else:
        raise ValueError(f"img: expected 1 or 3 channels, got {arr.shape[0]}")
    return np.repeat(gray, num_output_channels, axis=0)


def _blend(img1, img2, ratio):
    """``ratio * img1 + (1 - ratio) * img2``, clipped to [0, 1]."""
    out = ratio * img1 + (1.0 - ratio) * img2
    return np.clip(out, 0.0, 1.0).astype(img1.dtype, copy=False)


def adjust_brightness(img, brightness_factor):
    """Multiply by ``brightness_factor`` (blend with black), clipped; Pillow's ``ImageEnhance`` on PIL/uint8."""
    if brightness_factor < 0:
        raise ValueError(f"brightness_factor: expected >= 0, got {brightness_factor}")
    arr = _float_chw(img)
    if arr is None:
        return _pil_roundtrip(img, lambda pil: F_pil.adjust_brightness(pil, brightness_factor))
    return _blend(arr, np.zeros_like(arr), brightness_factor)


def adjust_contrast(img, contrast_factor):
    """Blend with the mean luma of the image: 0 gives flat grey, 1 the original."""
    if contrast_factor < 0:
        raise ValueError(f"contrast_factor: expected >= 0, got {contrast_factor}")
    arr = _float_chw(img)
    if arr is None:
        return _pil_roundtrip(img, lambda pil: F_pil.adjust_contrast(pil, contrast_factor))
    mean = (_gray_float(arr) if arr.shape[0] == 3 else arr).mean(dtype=np.float64)
    return _blend(arr, np.full_like(arr, mean), contrast_factor)


def adjust_saturation(img, saturation_factor):
    """Blend with the grey (luma) image: 0 gives grey, 1 the original, 2 doubles the saturation."""
    if saturation_factor < 0:
        raise ValueError(f"saturation_factor: expected >= 0, got {saturation_factor}")
    arr = _float_chw(img)
    if arr is None:
        return _pil_roundtrip(img, lambda pil: F_pil.adjust_saturation(pil, saturation_factor))
    if arr.shape[0] == 1:
        return _array_of(img)
    return _blend(arr, _gray_float(arr), saturation_factor)


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
    arr = _float_chw(img)
    if arr is None:
        return _pil_roundtrip(img, lambda pil: F_pil.adjust_hue(pil, hue_factor))
    if arr.shape[0] == 1:
        return _array_of(img)
    if arr.shape[0] != 3:
        raise ValueError(f"img: expected 1 or 3 channels, got {arr.shape[0]}")
    hsv = _rgb_to_hsv(arr.astype(np.float64))
    hsv[0] = np.fmod(hsv[0] + hue_factor + 1.0, 1.0)
    return _hsv_to_rgb(hsv).astype(arr.dtype)


# ---------------------------------------------------------------------------------- filtering
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
    if kind == "pil":
        source, layout = np.asarray(img), "hwc"
    else:
        source = arr
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
    if not np.issubdtype(source.dtype, np.floating):
        info = np.iinfo(source.dtype)
        x = np.clip(np.round(x), info.min, info.max)
    result = x.astype(source.dtype)
    if kind == "pil":
        return F_pil.from_array_like(result, img)
    return result


# ---------------------------------------------------------------------------------- perspective, sharpness, erasing
def _perspective_coeffs(startpoints, endpoints):
    """The eight coefficients ``(a, b, c, d, e, f, g, h)`` that map each *output* pixel (x, y) of the
    warped image back to the input: ``((a x + b y + c) / (g x + h y + 1), (d x + e y + f) / (g x + h y + 1))``.

    Solved by least squares in float64 from the four corner pairs (``endpoints[k]`` maps to
    ``startpoints[k]``) and rounded to float32, as torchvision's ``_get_perspective_coeffs``.
    """
    if len(startpoints) != 4 or len(endpoints) != 4:
        raise ValueError(f"startpoints, endpoints: expected four corners each, got {len(startpoints)} and "
                         f"{len(endpoints)}")
    a = np.zeros((8, 8), np.float64)
    for i, ((x, y), (u, v)) in enumerate(zip(endpoints, startpoints)):
        a[2 * i] = [x, y, 1, 0, 0, 0, -u * x, -u * y]
        a[2 * i + 1] = [0, 0, 0, x, y, 1, -v * x, -v * y]
    b = np.asarray(startpoints, np.float64).reshape(8)
    return np.linalg.lstsq(a, b, rcond=None)[0].astype(np.float32).tolist()


def perspective(img, startpoints, endpoints, interpolation=InterpolationMode.BILINEAR, fill=None):
    """Warp so that the corners ``startpoints`` (``[top-left, top-right, bottom-right, bottom-left]``,
    ``[x, y]`` each) land on ``endpoints``; pixels from outside the image get ``fill`` (default 0).

    Arrays are warped one channel at a time by Pillow, so they match torchvision's PIL path.
    """
    coeffs = _perspective_coeffs(startpoints, endpoints)
    F_pil.pil_filter(interpolation)
    return _map_planes(img, lambda pil, f: F_pil.perspective(pil, coeffs, interpolation, f),
                       0 if fill is None else fill)


def _blurred_degenerate(arr):
    """The 3x3 smoothing ``[[1, 1, 1], [1, 5, 1], [1, 1, 1]] / 13`` of every channel, border pixels kept
    (PIL's ``SMOOTH`` filter, as torchvision's ``_blurred_degenerate_image``)."""
    x = arr.astype(np.float32 if arr.dtype != np.float64 else np.float64)
    inner = 4.0 * x[..., 1:-1, 1:-1]  # the centre counts 5 = 4 + the 1 of the 3x3 sum
    for dy in (0, 1, 2):
        for dx in (0, 1, 2):
            inner = inner + x[..., dy:dy + x.shape[-2] - 2, dx:dx + x.shape[-1] - 2]
    out = x.copy()
    out[..., 1:-1, 1:-1] = inner / 13.0
    return out


def adjust_sharpness(img, sharpness_factor):
    """Blend with a smoothed copy: 0 gives the blurred image, 1 the original, 2 doubles the sharpness.

    PIL images and uint8 arrays go through Pillow's ``ImageEnhance.Sharpness``; float arrays follow
    torchvision's tensor code (border pixels unchanged, result clipped to [0, 1]).
    """
    if sharpness_factor < 0:
        raise ValueError(f"sharpness_factor: expected >= 0, got {sharpness_factor}")
    arr = _float_chw(img)
    if arr is None:
        return _pil_roundtrip(img, lambda pil: F_pil.adjust_sharpness(pil, sharpness_factor))
    if arr.shape[-1] <= 2 or arr.shape[-2] <= 2:
        return _array_of(img)
    return _blend(arr, _blurred_degenerate(arr).astype(arr.dtype), sharpness_factor)


def erase(img, i, j, h, w, v, inplace=False):
    """Set the ``h x w`` box with top-left corner (row ``i``, column ``j``) to ``v`` (a number, or an
    array broadcasting to ``(C, h, w)``): the RandomErasing step, on CHW arrays (torchvision: Tensors)."""
    kind, arr, layout = _unpack(img)
    if kind == "pil" or layout != "chw":
        raise TypeError("erase: expected a CHW array (apply it after ToTensor), got "
                        + ("a PIL image" if kind == "pil" else f"an HWC array of shape {arr.shape}"))
    out = arr if inplace and isinstance(img, np.ndarray) else arr.copy()
    out[..., i:i + h, j:j + w] = np.asarray(v, dtype=out.dtype)
    return out
