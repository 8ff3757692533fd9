"""Image transform classes with torchvision's names, arguments and semantics (``transforms.transforms``).

Each class is a small callable over one sample image holding its options; the work is done by
``functional`` (NumPy arrays, Tensors) and ``functional_pil`` (PIL images). What goes in and
what comes out is described in ``functional``: PIL in, PIL out; array in, NumPy array out.
``ToTensor`` gives a CHW float32 NumPy array (torchvision's layout); the sample becomes a
``minidl.Tensor`` only when ``default_collate`` stacks the batch.

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
    >>> (t(img) * 255).round().astype(int).ravel().tolist()
    [5, 4, 3, 2, 1, 0]
"""

import contextlib
import math
import numbers
import threading

import numpy as np

from minidl.data.transforms import functional_pil as F_pil
from minidl.data.transforms.functional import (
    InterpolationMode,
    _pair,
    adjust_brightness,
    adjust_contrast,
    adjust_hue,
    adjust_saturation,
    adjust_sharpness,
    affine,
    center_crop,
    crop,
    erase,
    gaussian_blur,
    get_image_num_channels,
    get_image_size,
    hflip,
    normalize,
    pad,
    perspective,
    pil_to_tensor,
    resize,
    resized_crop,
    rotate,
    to_grayscale,
    to_tensor,
    vflip,
)

__all__ = [
    "seed", "get_rng", "use_rng", "Transform",
    "Compose", "ToTensor", "PILToTensor", "Normalize", "Resize", "CenterCrop", "Pad", "RandomCrop",
    "RandomResizedCrop", "RandomHorizontalFlip", "RandomVerticalFlip", "RandomRotation", "RandomAffine",
    "ColorJitter", "Grayscale", "GaussianBlur", "Lambda",
    "RandomPerspective", "RandomAdjustSharpness", "RandomErasing",
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
    if rng is None:
        return _default_rng
    if not isinstance(rng, np.random.Generator):  # a factory: make the generator on the first draw
        rng = rng()
        _local.rng = rng
    return rng


@contextlib.contextmanager
def use_rng(rng):
    """Make ``rng`` the current generator of this thread for the ``with`` block (blocks nest).

    ``rng`` is a ``numpy.random.Generator``, or a function of no arguments that returns one:
    it is called on the first draw inside the block, so a sample whose transforms draw
    nothing does not pay for making a generator (the ``DataLoader`` passes such a function).
    """
    if not isinstance(rng, np.random.Generator) and not callable(rng):
        raise TypeError(f"rng: expected a numpy.random.Generator (or a function making one), "
                        f"got {type(rng).__name__}")
    previous = getattr(_local, "rng", None)
    _local.rng = rng
    try:
        yield rng
    finally:
        _local.rng = previous


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
    """PIL image or HWC ``uint8`` array -> CHW float32 NumPy array in [0, 1] (``default_collate`` makes the Tensor)."""

    def __call__(self, pic):
        return to_tensor(pic)


class PILToTensor(Transform):
    """PIL image -> CHW NumPy array keeping dtype and values (``uint8`` stays ``uint8``)."""

    def __call__(self, pic):
        return pil_to_tensor(pic)


class Normalize(Transform):
    """``(x - mean[c]) / std[c]`` per channel of a float CHW array (or Tensor)."""

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
        F_pil.pil_filter(interpolation)
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
        F_pil.pil_filter(interpolation)
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
        F_pil.pil_filter(interpolation)
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
        F_pil.pil_filter(interpolation)
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


class RandomPerspective(Transform):
    """With probability ``p``, move each corner inward by up to ``distortion_scale`` of half the side
    and warp the image so (torchvision's corner sampling, integer corners)."""

    def __init__(self, distortion_scale=0.5, p=0.5, interpolation=InterpolationMode.BILINEAR, fill=0):
        if not 0.0 <= distortion_scale <= 1.0:
            raise ValueError(f"distortion_scale: expected a value in [0, 1], got {distortion_scale}")
        F_pil.pil_filter(interpolation)
        self.distortion_scale = distortion_scale
        self.p = p
        self.interpolation = interpolation
        self.fill = fill

    @staticmethod
    def get_params(width, height, distortion_scale, rng=None):
        """``(startpoints, endpoints)``: the image's corners and where they go, ``[x, y]`` each."""
        rng = get_rng() if rng is None else rng
        dx, dy = int(distortion_scale * (width // 2)), int(distortion_scale * (height // 2))

        def left():
            return int(rng.integers(0, dx + 1))

        def right():
            return int(rng.integers(width - dx - 1, width))

        def top():
            return int(rng.integers(0, dy + 1))

        def bottom():
            return int(rng.integers(height - dy - 1, height))

        endpoints = [[left(), top()], [right(), top()], [right(), bottom()], [left(), bottom()]]
        startpoints = [[0, 0], [width - 1, 0], [width - 1, height - 1], [0, height - 1]]
        return startpoints, endpoints

    def __call__(self, img):
        if get_rng().random() >= self.p:
            return img
        h, w = get_image_size(img)
        startpoints, endpoints = self.get_params(w, h, self.distortion_scale)
        return perspective(img, startpoints, endpoints, self.interpolation, self.fill)


class RandomAdjustSharpness(Transform):
    """With probability ``p``, ``adjust_sharpness(img, sharpness_factor)``."""

    def __init__(self, sharpness_factor, p=0.5):
        if sharpness_factor < 0:
            raise ValueError(f"sharpness_factor: expected >= 0, got {sharpness_factor}")
        self.sharpness_factor = float(sharpness_factor)
        self.p = p

    def __call__(self, img):
        return adjust_sharpness(img, self.sharpness_factor) if get_rng().random() < self.p else img


class RandomErasing(Transform):
    """With probability ``p``, erase a random box of a CHW array (after ``ToTensor``): area fraction
    uniform in ``scale``, aspect ratio log-uniform in ``ratio``, filled with ``value`` (a number, one
    per channel, or ``"random"``: standard normal noise). Zhong et al., "Random Erasing Data
    Augmentation", 2017; torchvision's arguments and defaults."""

    def __init__(self, p=0.5, scale=(0.02, 0.33), ratio=(0.3, 3.3), value=0, inplace=False):
        if not isinstance(value, (numbers.Number, str, tuple, list)):
            raise TypeError(f"value: expected a number, a sequence or 'random', got {type(value).__name__}")
        if isinstance(value, str) and value != "random":
            raise ValueError(f"value: the only string accepted is 'random', got {value!r}")
        if scale[0] > scale[1] or ratio[0] > ratio[1]:
            raise ValueError(f"scale, ratio: expected (min, max) ranges, got scale={scale}, ratio={ratio}")
        if scale[0] < 0 or scale[1] > 1:
            raise ValueError(f"scale: expected fractions in [0, 1], got {scale}")
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"p: expected a probability in [0, 1], got {p}")
        self.p = p
        self.scale = tuple(scale)
        self.ratio = tuple(ratio)
        self.value = value
        self.inplace = inplace

    @staticmethod
    def get_params(img, scale, ratio, value=None, rng=None):
        """``(i, j, h, w, v)`` of the box to erase; ``value=None`` draws normal noise. After 10 boxes
        that do not fit, the whole image unchanged (``v`` is the image itself)."""
        rng = get_rng() if rng is None else rng
        arr = np.asarray(img)
        c, height, width = arr.shape[-3], arr.shape[-2], arr.shape[-1]
        area = height * width
        log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
        for _ in range(10):
            erase_area = area * rng.uniform(scale[0], scale[1])
            aspect = math.exp(rng.uniform(log_ratio[0], log_ratio[1]))
            h = int(round(math.sqrt(erase_area * aspect)))
            w = int(round(math.sqrt(erase_area / aspect)))
            if not (h < height and w < width):
                continue
            if value is None:
                v = rng.standard_normal((c, h, w)).astype(np.float32)
            else:
                v = np.asarray(value, np.float32)[:, None, None]
            i = int(rng.integers(0, height - h + 1))
            j = int(rng.integers(0, width - w + 1))
            return i, j, h, w, v
        return 0, 0, height, width, arr

    def __call__(self, img):
        if get_rng().random() >= self.p:
            return img
        channels = get_image_num_channels(img)
        if isinstance(self.value, str):
            value = None
        else:
            value = [float(v) for v in np.atleast_1d(self.value)]
            if len(value) not in (1, channels):
                raise ValueError(f"value: expected one number or {channels} (one per channel), got {len(value)}")
        i, j, h, w, v = self.get_params(img, self.scale, self.ratio, value)
        return erase(img, i, j, h, w, v, self.inplace)
