"""Preprocessing presets for ImageNet-pretrained weights, as torchvision's (and timm's) weight transforms.

A checkpoint is only useful with the preprocessing it was trained with: resize the
shorter side, centre-crop, scale to [0, 1], normalise per channel. The figures below
are those of torchvision's ``Weights.IMAGENET1K_V1.transforms()`` (timm's default
config for the timm-named models).

>>> preset("resnet18")
Preset(resize=256, crop=224, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225), interpolation='bilinear')
"""
from __future__ import annotations

from dataclasses import dataclass

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
INCEPTION_MEAN = (0.5, 0.5, 0.5)
INCEPTION_STD = (0.5, 0.5, 0.5)


@dataclass(frozen=True)
class Preset:
    resize: int
    crop: int
    mean: tuple = IMAGENET_MEAN
    std: tuple = IMAGENET_STD
    interpolation: str = "bilinear"

    def transforms(self):
        """A ``minidl.data.transforms.Compose`` applying this preset to a PIL image."""
        from .data import transforms as T

        mode = {"bilinear": T.InterpolationMode.BILINEAR, "bicubic": T.InterpolationMode.BICUBIC}[self.interpolation]
        return T.Compose([T.Resize(self.resize, interpolation=mode), T.CenterCrop(self.crop), T.ToTensor(),
                          T.Normalize(self.mean, self.std)])


_DEFAULT = Preset(256, 224)

# (resize, crop, interpolation) where a model differs from the default 256 -> 224 bilinear
_PRESETS = {
    "inception_v3": Preset(342, 299),
    "googlenet": Preset(256, 224),
    # torchvision's EfficientNet weights (B0-B7 IMAGENET1K_V1) are bicubic with their own sizes
    "efficientnet_b0": Preset(256, 224, interpolation="bicubic"),
    "efficientnet_b1": Preset(256, 240, interpolation="bicubic"),
    "efficientnet_b2": Preset(288, 288, interpolation="bicubic"),
    "efficientnet_b3": Preset(320, 300, interpolation="bicubic"),
    "efficientnet_b4": Preset(384, 380, interpolation="bicubic"),
    "efficientnet_b5": Preset(456, 456, interpolation="bicubic"),
    "efficientnet_b6": Preset(528, 528, interpolation="bicubic"),
    "efficientnet_b7": Preset(600, 600, interpolation="bicubic"),
    # timm's legacy Xception: 299 crop, crop_pct 0.8975 -> resize 333, Inception mean/std, bicubic
    "xception": Preset(333, 299, INCEPTION_MEAN, INCEPTION_STD, "bicubic"),
    # timm's resnetv2_50 and mobilenetv1_100: crop_pct 0.875 / 0.95 at 224, bicubic
    "preact_resnet50": Preset(236, 224, interpolation="bicubic"),
    "mobilenet_v1": Preset(236, 224, interpolation="bicubic"),
}


def preset(model_name: str) -> Preset:
    """The preprocessing preset for a model's ImageNet weights (torchvision's default otherwise)."""
    return _PRESETS.get(model_name, _DEFAULT)
