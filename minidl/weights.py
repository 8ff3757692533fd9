"""Preprocessing presets for ImageNet-pretrained weights: a thin lookup over the model cards.

The presets themselves live next to each builder, in its ``ModelCard`` or ``X_Weights`` record
(``minidl.models._api.Preset``); ``preset(name)`` reads the registered model's card and gives
torchvision's default (256 -> 224, bilinear) for a name that is not registered.

>>> preset("resnet18")
Preset(resize=256, crop=224, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225), interpolation='bilinear')
"""
from __future__ import annotations

from minidl.models import get_model_card, list_models
from minidl.models._api import (  # noqa: F401  (the names this module has always offered)
    DEFAULT_PRESET, IMAGENET_MEAN, IMAGENET_STD, INCEPTION_MEAN, INCEPTION_STD, Preset,
)


def preset(model_name: str) -> Preset:
    """The preprocessing preset for a model's ImageNet weights (torchvision's default otherwise)."""
    if model_name not in list_models():
        return DEFAULT_PRESET
    return get_model_card(model_name).preset
