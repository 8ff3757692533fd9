"""Image transforms with torchvision's names, arguments and semantics, on NumPy arrays and Pillow images.

Split by concern, as ``torchvision.transforms``:

=====================  ==============================================================
``functional``         the operations on NumPy arrays (and the dispatch to PIL):
                       ``resize``, ``crop``, ``hflip``, ``adjust_hue``, ``to_tensor``, ...
``functional_pil``     the same operations on ``PIL.Image`` objects
``transforms``         the transform classes (``Compose``, ``RandomResizedCrop``, ...) and
                       the thread-local generator they draw from (``use_rng``)
``presets``            ready-made pipelines: classification train/eval presets and the
                       ImageNet eval transform of pretrained weights
=====================  ==============================================================

Every public name is re-exported here: ``from minidl.data import transforms as T``, then
``T.Compose``, ``T.resize``, ``T.use_rng``, ``T.ImageClassification``. Samples stay NumPy
arrays or PIL images through every transform (``ToTensor`` gives a CHW float32 NumPy
array); the ``DataLoader``'s ``default_collate`` makes the batch a ``minidl.Tensor``.

Example::

    >>> import numpy as np
    >>> from minidl.data import transforms as T
    >>> t = T.Compose([T.Resize(16), T.CenterCrop(12), T.ToTensor()])
    >>> out = t(np.zeros((20, 30, 3), np.uint8))
    >>> type(out).__name__, out.shape, out.dtype
    ('ndarray', (3, 12, 12), dtype('float32'))
"""

from minidl.data.transforms import functional, functional_pil, presets
from minidl.data.transforms.functional import (
    InterpolationMode,
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
from minidl.data.transforms.presets import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    ClassificationPresetEval,
    ClassificationPresetTrain,
    ImageClassification,
)
from minidl.data.transforms.transforms import (
    CenterCrop,
    ColorJitter,
    Compose,
    GaussianBlur,
    Grayscale,
    Lambda,
    Normalize,
    Pad,
    PILToTensor,
    RandomAdjustSharpness,
    RandomAffine,
    RandomCrop,
    RandomErasing,
    RandomHorizontalFlip,
    RandomPerspective,
    RandomResizedCrop,
    RandomRotation,
    RandomVerticalFlip,
    Resize,
    ToTensor,
    Transform,
    get_rng,
    seed,
    use_rng,
)

__all__ = [
    "functional", "functional_pil", "presets",
    "seed", "get_rng", "use_rng", "InterpolationMode", "Transform",
    "Compose", "ToTensor", "PILToTensor", "Normalize", "Resize", "CenterCrop", "Pad", "RandomCrop",
    "RandomResizedCrop", "RandomHorizontalFlip", "RandomVerticalFlip", "RandomRotation", "RandomAffine",
    "ColorJitter", "Grayscale", "GaussianBlur", "Lambda", "RandomPerspective", "RandomAdjustSharpness",
    "RandomErasing",
    "to_tensor", "pil_to_tensor", "normalize", "resize", "crop", "center_crop", "pad", "resized_crop",
    "hflip", "vflip", "rotate", "affine", "to_grayscale", "adjust_brightness", "adjust_contrast",
    "adjust_saturation", "adjust_hue", "gaussian_blur", "perspective", "adjust_sharpness", "erase", "get_image_size", "get_image_num_channels",
    "IMAGENET_MEAN", "IMAGENET_STD", "ClassificationPresetTrain", "ClassificationPresetEval",
    "ImageClassification",
]
