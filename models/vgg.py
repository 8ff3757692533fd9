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

from minidl.models.registry import register_model

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


@register_model(published=132_863_336)
def vgg11(**kwargs):
    """VGG-11 (configuration A): 132,863,336 parameters."""
    return _vgg("A", False, **kwargs)


@register_model(published=132_868_840)
def vgg11_bn(**kwargs):
    """VGG-11 with batch-norm: 132,868,840 parameters."""
    return _vgg("A", True, **kwargs)


@register_model(published=133_047_848)
def vgg13(**kwargs):
    """VGG-13 (configuration B): 133,047,848 parameters."""
    return _vgg("B", False, **kwargs)


@register_model(published=133_053_736)
def vgg13_bn(**kwargs):
    """VGG-13 with batch-norm: 133,053,736 parameters."""
    return _vgg("B", True, **kwargs)


@register_model(published=138_357_544)
def vgg16(**kwargs):
    """VGG-16 (configuration D): 138,357,544 parameters."""
    return _vgg("D", False, **kwargs)


@register_model(published=138_365_992)
def vgg16_bn(**kwargs):
    """VGG-16 with batch-norm: 138,365,992 parameters."""
    return _vgg("D", True, **kwargs)


@register_model(published=143_667_240)
def vgg19(**kwargs):
    """VGG-19 (configuration E): 143,667,240 parameters."""
    return _vgg("E", False, **kwargs)


@register_model(published=143_678_248)
def vgg19_bn(**kwargs):
    """VGG-19 with batch-norm: 143,678,248 parameters."""
    return _vgg("E", True, **kwargs)
