"""Ready-made pipelines: the classification presets of torchvision's references and the ImageNet eval transform.

* ``ClassificationPresetTrain`` / ``ClassificationPresetEval``: torchvision's
  ``references/classification/presets.py`` (random resized crop and flip for training;
  resize, centre crop for evaluation; then ``ToTensor`` and ``Normalize``).
* ``ImageClassification``: the transform torchvision's ImageNet weights carry
  (``torchvision.transforms._presets.ImageClassification``, what
  ``ResNet50_Weights.IMAGENET1K_V1.transforms()`` returns): resize the shorter side to
  ``resize_size``, centre-crop ``crop_size``, scale to [0, 1], normalise per channel.

Each takes a PIL image (or an HWC uint8 array) and returns a CHW float32 NumPy array; the
``DataLoader``'s ``default_collate`` stacks these into a ``minidl.Tensor``.

Example::

    >>> import numpy as np
    >>> from minidl.data.transforms import ImageClassification
    >>> t = ImageClassification(crop_size=224)
    >>> t(np.zeros((300, 400, 3), np.uint8)).shape
    (3, 224, 224)
"""

from minidl.data.transforms.functional import InterpolationMode, to_tensor
from minidl.data.transforms.transforms import (
    CenterCrop,
    Compose,
    Normalize,
    RandomHorizontalFlip,
    RandomResizedCrop,
    Resize,
    ToTensor,
    Transform,
)

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "ClassificationPresetTrain", "ClassificationPresetEval",
           "ImageClassification"]

# per-channel statistics of the ImageNet-1k training set, in RGB order
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class ClassificationPresetTrain(Transform):
    """Training augmentation: ``RandomResizedCrop(crop_size)``, horizontal flip, ``ToTensor``, ``Normalize``."""

    def __init__(self, *, crop_size, mean=IMAGENET_MEAN, std=IMAGENET_STD,
                 interpolation=InterpolationMode.BILINEAR, hflip_prob=0.5):
        steps = [RandomResizedCrop(crop_size, interpolation=interpolation)]
        if hflip_prob > 0:
            steps.append(RandomHorizontalFlip(hflip_prob))
        steps += [ToTensor(), Normalize(mean, std)]
        self.transforms = Compose(steps)

    def __call__(self, img):
        return self.transforms(img)

    def __repr__(self):
        return f"{type(self).__name__}({self.transforms!r})"


class ClassificationPresetEval(Transform):
    """Evaluation: ``Resize(resize_size)`` of the shorter side, ``CenterCrop(crop_size)``, ``ToTensor``, ``Normalize``."""

    def __init__(self, *, crop_size, resize_size=256, mean=IMAGENET_MEAN, std=IMAGENET_STD,
                 interpolation=InterpolationMode.BILINEAR):
        self.transforms = Compose([Resize(resize_size, interpolation=interpolation), CenterCrop(crop_size),
                                   ToTensor(), Normalize(mean, std)])

    def __call__(self, img):
        return self.transforms(img)

    def __repr__(self):
        return f"{type(self).__name__}({self.transforms!r})"


class ImageClassification(Transform):
    """The ImageNet eval transform of pretrained weights, torchvision's signature and order of steps.

    ``resize_size`` may be an int (the shorter side) or ``(h, w)``. Non-PIL inputs that are
    already float CHW (e.g. a ``ToTensor`` output) are resized and cropped as they are.
    """

    def __init__(self, *, crop_size, resize_size=256, mean=IMAGENET_MEAN, std=IMAGENET_STD,
                 interpolation=InterpolationMode.BILINEAR, antialias=True):
        self.crop_size = [int(crop_size)]
        self.resize_size = [int(resize_size)] if isinstance(resize_size, int) else [int(s) for s in resize_size]
        self.mean = list(mean)
        self.std = list(std)
        self.interpolation = interpolation
        self.antialias = antialias
        self._resize = Resize(self.resize_size, interpolation=interpolation, antialias=antialias)
        self._crop = CenterCrop(self.crop_size)
        self._normalize = Normalize(self.mean, self.std)

    def __call__(self, img):
        img = self._crop(self._resize(img))
        if not (hasattr(img, "dtype") and img.dtype.kind == "f"):
            img = to_tensor(img)
        return self._normalize(img)

    def __repr__(self):
        return (f"{type(self).__name__}(crop_size={self.crop_size}, resize_size={self.resize_size}, "
                f"mean={self.mean}, std={self.std}, interpolation={self.interpolation!r})")

    def describe(self):
        """One paragraph on the preprocessing, as torchvision's ``describe()``."""
        return (f"Accepts PIL images and HWC uint8 NumPy arrays. The images are resized to "
                f"resize_size={self.resize_size} using interpolation={self.interpolation}, followed by a "
                f"central crop of crop_size={self.crop_size}. Finally the values are first rescaled to "
                f"[0.0, 1.0] and then normalized using mean={self.mean} and std={self.std}.")
