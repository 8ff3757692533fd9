"""VGG (Simonyan & Zisserman, "Very Deep Convolutional Networks for Large-Scale Image
Recognition", ICLR 2015), with torchvision's layout, names and initialisation.

Configurations A, B, D and E of the paper's table 1 (11, 13, 16 and 19 weight layers):
3x3 convolutions with padding 1 (ReLU after each, BatchNorm2d before the ReLU in the
``_bn`` versions), 2x2 max-pooling ("M"), adaptive average pooling to 7x7 and a
25088-4096-4096-classes classifier with dropout.

Published counts (torchvision): vgg11 132,863,336; vgg11_bn 132,868,840; vgg13 133,047,848;
vgg13_bn 133,053,736; vgg16 138,357,544; vgg16_bn 138,365,992; vgg19 143,667,240;
vgg19_bn 143,678,248. state_dict keys are torchvision's (``features.0.weight`` ...
``classifier.6.bias``), so its checkpoints load as they are. Thanks to the adaptive
pooling any input from 32x32 up works.

>>> import minidl
>>> from minidl import models
>>> net = models.vgg11(num_classes=10)
>>> net(minidl.randn(1, 3, 32, 32)).shape
(1, 10)
"""
from __future__ import annotations

from minidl import nn

from minidl.models._api import ModelCard, WeightsEnum, torchvision_weights
from minidl.models.registry import register_model

# torchvision's recipe for its VGG and AlexNet weights
_RECIPE = "https://github.com/pytorch/vision/tree/main/references/classification#alexnet-and-vgg"

# Paper table 1: output channels of each 3x3 convolution, "M" a 2x2 max-pool.
CONFIGS = {
    "A": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "B": [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "D": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    "E": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"],
}


def make_layers(config, batch_norm=False, in_channels=3):
    """The ``features`` Sequential for one configuration (indices as torchvision's)."""
    layers = []
    for value in config:
        if value == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            continue
        layers.append(nn.Conv2d(in_channels, value, kernel_size=3, padding=1))
        if batch_norm:
            layers.append(nn.BatchNorm2d(value))
        layers.append(nn.ReLU(inplace=True))
        in_channels = value
    return nn.Sequential(*layers)


class VGG(nn.Module):
    """``features`` (convolutions), ``avgpool`` (adaptive 7x7), ``classifier`` (three Linear layers)."""

    def __init__(self, features, num_classes=1000, init_weights=True, dropout=0.5):
        super().__init__()
        self.features = features
        self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
        self.classifier = nn.Sequential(
            nn.Linear(512 * 7 * 7, 4096),
            nn.ReLU(True),
            nn.Dropout(p=dropout),
            nn.Linear(4096, 4096),
            nn.ReLU(True),
            nn.Dropout(p=dropout),
            nn.Linear(4096, num_classes),
        )
        if init_weights:
            self._initialize_weights()

    def _initialize_weights(self):
        # torchvision: He-normal (fan_out) convolutions, N(0, 0.01) Linear weights, zero biases.
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                if m.bias is not None:
                    nn.init.constant_(m.bias, 0)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.constant_(m.bias, 0)

    def forward(self, x):
        x = self.features(x)  # (N, 512, H/32, W/32)
        x = self.avgpool(x)  # (N, 512, 7, 7)
        x = x.flatten(1)  # (N, 25088)
        return self.classifier(x)  # (N, num_classes)


def _vgg(config, batch_norm, num_classes=1000, init_weights=True, dropout=0.5):
    return VGG(make_layers(CONFIGS[config], batch_norm), num_classes=num_classes, init_weights=init_weights,
               dropout=dropout)


class VGG11_Weights(WeightsEnum):
    IMAGENET1K_V1 = torchvision_weights("vgg11-8a719046.pth", 132_863_336, _RECIPE)
    DEFAULT = IMAGENET1K_V1


@register_model(card=ModelCard(weights=VGG11_Weights))
def vgg11(**kwargs):
    """VGG-11 (configuration A): 132,863,336 parameters."""
    return _vgg("A", False, **kwargs)


class VGG11_BN_Weights(WeightsEnum):
    IMAGENET1K_V1 = torchvision_weights("vgg11_bn-6002323d.pth", 132_868_840, _RECIPE)
    DEFAULT = IMAGENET1K_V1


@register_model(card=ModelCard(weights=VGG11_BN_Weights))
def vgg11_bn(**kwargs):
    """VGG-11 with batch-norm: 132,868,840 parameters."""
    return _vgg("A", True, **kwargs)


class VGG13_Weights(WeightsEnum):
    IMAGENET1K_V1 = torchvision_weights("vgg13-19584684.pth", 133_047_848, _RECIPE)
    DEFAULT = IMAGENET1K_V1


@register_model(card=ModelCard(weights=VGG13_Weights))
def vgg13(**kwargs):
    """VGG-13 (configuration B): 133,047,848 parameters."""
    return _vgg("B", False, **kwargs)


class VGG13_BN_Weights(WeightsEnum):
    IMAGENET1K_V1 = torchvision_weights("vgg13_bn-abd245e5.pth", 133_053_736, _RECIPE)
    DEFAULT = IMAGENET1K_V1


@register_model(card=ModelCard(weights=VGG13_BN_Weights))
def vgg13_bn(**kwargs):
    """VGG-13 with batch-norm: 133,053,736 parameters."""
    return _vgg("B", True, **kwargs)


class VGG16_Weights(WeightsEnum):
    IMAGENET1K_V1 = torchvision_weights("vgg16-397923af.pth", 138_357_544, _RECIPE, macs=15.4703e9)
    DEFAULT = IMAGENET1K_V1


@register_model(card=ModelCard(weights=VGG16_Weights))
def vgg16(**kwargs):
    """VGG-16 (configuration D): 138,357,544 parameters."""
    return _vgg("D", False, **kwargs)


class VGG16_BN_Weights(WeightsEnum):
    IMAGENET1K_V1 = torchvision_weights("vgg16_bn-6c64b313.pth", 138_365_992, _RECIPE)
    DEFAULT = IMAGENET1K_V1


@register_model(card=ModelCard(weights=VGG16_BN_Weights))
def vgg16_bn(**kwargs):
    """VGG-16 with batch-norm: 138,365,992 parameters."""
    return _vgg("D", True, **kwargs)


class VGG19_Weights(WeightsEnum):
    IMAGENET1K_V1 = torchvision_weights("vgg19-dcbb9e9d.pth", 143_667_240, _RECIPE)
    DEFAULT = IMAGENET1K_V1


@register_model(card=ModelCard(weights=VGG19_Weights))
def vgg19(**kwargs):
    """VGG-19 (configuration E): 143,667,240 parameters."""
    return _vgg("E", False, **kwargs)


class VGG19_BN_Weights(WeightsEnum):
    IMAGENET1K_V1 = torchvision_weights("vgg19_bn-c79401a0.pth", 143_678_248, _RECIPE)
    DEFAULT = IMAGENET1K_V1


@register_model(card=ModelCard(weights=VGG19_BN_Weights))
def vgg19_bn(**kwargs):
    """VGG-19 with batch-norm: 143,678,248 parameters."""
    return _vgg("E", True, **kwargs)
