"""Image operations on ``PIL.Image`` objects (torchvision's ``_functional_pil``).

Every function takes a PIL image and returns a PIL image of the same mode (``to_grayscale``
excepted). ``functional.py`` calls them for PIL inputs, and for NumPy arrays one channel
at a time (each channel as an ``"L"`` or ``"F"`` plane), so that arrays and PIL images are
resampled by the same code.

Interpolation names are the strings of ``functional.InterpolationMode``.
"""

import numbers

import numpy as np
from PIL import Image, ImageEnhance

__all__ = [
    "pil_filter", "get_image_size", "get_image_num_channels", "fill_for", "from_array_like",
    "resize", "crop", "pad", "hflip", "vflip", "rotate", "affine", "to_grayscale",
    "adjust_brightness", "adjust_contrast", "adjust_saturation", "adjust_hue",
]

_PIL_FILTERS = {
    "nearest": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "box": Image.Resampling.BOX,
    "hamming": Image.Resampling.HAMMING,
    "lanczos": Image.Resampling.LANCZOS,
}


def pil_filter(interpolation):
    """Pillow's resampling filter for an interpolation name (or a ``PIL.Image.Resampling``)."""
    if isinstance(interpolation, Image.Resampling):
        return interpolation
    key = str(interpolation).lower()
    if key not in _PIL_FILTERS:
        raise ValueError(f"interpolation: expected one of {sorted(_PIL_FILTERS)}, got {interpolation!r}")
    return _PIL_FILTERS[key]


def get_image_size(img):
    """``(height, width)``."""
    return img.height, img.width


def get_image_num_channels(img):
    return len(img.getbands())


def channel_fill(fill, channels, integer):
    """Per-channel fill values from a number or a sequence (``None`` means 0)."""
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


def fill_for(img, fill):
    """``fill`` in the form Pillow wants for ``img``: one number for one band, else a tuple."""
    bands = len(img.getbands())
    values = channel_fill(fill, bands, img.mode != "F")
    return values[0] if bands == 1 else tuple(values)


def from_array_like(array, like):
    """A PIL image of ``array`` with the mode (and palette) of the PIL image ``like``."""
    if like.mode == "1":
        return Image.fromarray(array.astype(bool))
    out = Image.fromarray(array)
    if like.mode == "P":
        out.putpalette(like.getpalette())  # turns the "L" image of indices into a "P" image
    return out


def resize(img, size, interpolation="bilinear"):
    """Resize to ``size = (h, w)`` exactly (Pillow antialiases when it shrinks)."""
    out_h, out_w = size
    return img.resize((out_w, out_h), pil_filter(interpolation))


def crop(img, top, left, height, width):
    """The ``height x width`` window at ``(top, left)``; Pillow fills outside parts with zeros."""
    return img.crop((left, top, left + width, top + height))


def pad(img, widths, fill=0, padding_mode="constant"):
    """Pad by ``widths = (left, top, right, bottom)``, through ``np.pad`` on the HW(C) array."""
    left, top, right, bottom = widths
    arr = np.asarray(img)
    spatial = [(top, bottom), (left, right)]
    if padding_mode != "constant":
        out = np.pad(arr, spatial + [(0, 0)] * (arr.ndim - 2), mode=padding_mode)
    elif arr.ndim == 2:
        out = np.pad(arr, spatial, mode="constant", constant_values=channel_fill(fill, 1, img.mode != "F")[0])
    else:
        fills = channel_fill(fill, arr.shape[2], True)
        out = np.stack([np.pad(arr[..., c], spatial, mode="constant", constant_values=fills[c])
                        for c in range(arr.shape[2])], axis=2)
    return from_array_like(out.astype(arr.dtype, copy=False), img)


def hflip(img):
    return img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)


def vflip(img):
    return img.transpose(Image.Transpose.FLIP_TOP_BOTTOM)


def rotate(img, angle, interpolation="nearest", expand=False, center=None, fill=0):
    """Rotate by ``angle`` degrees counter-clockwise; ``fill`` is already in Pillow's form."""
    return img.rotate(angle, resample=pil_filter(interpolation), expand=expand, center=center, fillcolor=fill)


def affine(img, matrix, interpolation="nearest", fill=0):
    """Pillow's affine transform with the output-to-input ``matrix`` (six coefficients), same size."""
    return img.transform(img.size, Image.Transform.AFFINE, matrix, pil_filter(interpolation), fillcolor=fill)


def to_grayscale(img, num_output_channels=1):
    """Pillow's ``"L"`` conversion (luma 0.299 R + 0.587 G + 0.114 B), 1 band or 3 equal bands."""
    gray = img.convert("L")
    return gray if num_output_channels == 1 else Image.merge("RGB", (gray, gray, gray))


def adjust_brightness(img, brightness_factor):
    return ImageEnhance.Brightness(img).enhance(brightness_factor)


def adjust_contrast(img, contrast_factor):
    return ImageEnhance.Contrast(img).enhance(contrast_factor)


def adjust_saturation(img, saturation_factor):
    return ImageEnhance.Color(img).enhance(saturation_factor)


def adjust_hue(img, hue_factor):
    """As torchvision: Pillow's 8-bit HSV, hue shifted by ``int(hue_factor * 255)`` modulo 256."""
    if img.mode in ("L", "1", "I", "F"):
        return img
    h, s, v = img.convert("HSV").split()
    hue = (np.asarray(h).astype(np.int64) + int(hue_factor * 255)) % 256
    shifted = Image.merge("HSV", (Image.fromarray(hue.astype(np.uint8)), s, v))
    return shifted.convert(img.mode)


def perspective(img, coeffs, interpolation="bilinear", fill=0):
    """Pillow's perspective transform with the output-to-input ``coeffs`` (eight), same size."""
    return img.transform(img.size, Image.Transform.PERSPECTIVE, coeffs, pil_filter(interpolation), fillcolor=fill)


def adjust_sharpness(img, sharpness_factor):
    return ImageEnhance.Sharpness(img).enhance(sharpness_factor)
