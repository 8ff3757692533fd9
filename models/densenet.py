"""DenseNet-121/161/169/201, laid out as torchvision's ``densenet.py``.

Huang et al. 2017, "Densely Connected Convolutional Networks". Inside a dense block every layer sees
the concatenation of all earlier feature maps and adds ``growth_rate`` new channels (BN-ReLU-conv1x1 to
``bn_size * growth_rate`` channels, then BN-ReLU-conv3x3 to ``growth_rate``); transition layers between
blocks halve the channels (BN-ReLU-conv1x1) and the resolution (2x2 average pooling).

Exact parameter counts (torchvision, 1000 classes): densenet121 7,978,856; densenet161 28,681,000;
densenet169 14,149,480; densenet201 20,013,928.
"""
from __future__ import annotations

from collections import OrderedDict

from minidl.models._api import ModelCard
from minidl.models.registry import register_model

import minidl.nn.functional as F
from minidl import nn
from minidl.tensor import cat


class _DenseLayer(nn.Module):
    """BN-ReLU-conv1x1 (bottleneck to bn_size * k) -> BN-ReLU-conv3x3 (k new channels), optional dropout."""

    def __init__(self, num_input_features, growth_rate, bn_size, drop_rate):
        super().__init__()
        self.norm1 = nn.BatchNorm2d(num_input_features)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv1 = nn.Conv2d(num_input_features, bn_size * growth_rate, kernel_size=1, stride=1, bias=False)
        self.norm2 = nn.BatchNorm2d(bn_size * growth_rate)
        self.relu2 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(bn_size * growth_rate, growth_rate, kernel_size=3, stride=1, padding=1, bias=False)
        self.drop_rate = float(drop_rate)

    def forward(self, features):
        concated = cat(features, 1) if isinstance(features, (list, tuple)) else features  # (N, C_in, H, W)
        bottleneck = self.conv1(self.relu1(self.norm1(concated)))  # (N, bn_size * k, H, W)
        new_features = self.conv2(self.relu2(self.norm2(bottleneck)))  # (N, k, H, W)
        if self.drop_rate > 0:
            new_features = F.dropout(new_features, p=self.drop_rate, training=self.training)
        return new_features


class _DenseBlock(nn.ModuleDict):
    """``num_layers`` dense layers named ``denselayer1``, ...; the output concatenates the input and every new map."""

    def __init__(self, num_layers, num_input_features, bn_size, growth_rate, drop_rate):
        super().__init__()
        for i in range(num_layers):
            layer = _DenseLayer(num_input_features + i * growth_rate, growth_rate, bn_size, drop_rate)
            self.add_module(f"denselayer{i + 1}", layer)

    def forward(self, init_features):
        features = [init_features]
        for layer in self.values():
            features.append(layer(features))
        return cat(features, 1)  # (N, C_in + num_layers * k, H, W)


class _Transition(nn.Sequential):
    """BN-ReLU-conv1x1 (compress the channels) and 2x2 average pooling (halve the resolution)."""

    def __init__(self, num_input_features, num_output_features):
        super().__init__()
        self.add_module("norm", nn.BatchNorm2d(num_input_features))
        self.add_module("relu", nn.ReLU(inplace=True))
        self.add_module("conv", nn.Conv2d(num_input_features, num_output_features, kernel_size=1, stride=1,
                                          bias=False))
        self.add_module("pool", nn.AvgPool2d(kernel_size=2, stride=2))


class DenseNet(nn.Module):
    """DenseNet-BC: a 7x7 stem, dense blocks separated by transitions, a final BN-ReLU, pooling and ``classifier``."""

    def __init__(self, growth_rate=32, block_config=(6, 12, 24, 16), num_init_features=64, bn_size=4, drop_rate=0.0,
                 num_classes=1000, in_channels=3):
        super().__init__()
        self.features = nn.Sequential(OrderedDict([
            ("conv0", nn.Conv2d(in_channels, num_init_features, kernel_size=7, stride=2, padding=3, bias=False)),
            ("norm0", nn.BatchNorm2d(num_init_features)),
            ("relu0", nn.ReLU(inplace=True)),
            ("pool0", nn.MaxPool2d(kernel_size=3, stride=2, padding=1)),
        ]))
        num_features = num_init_features
        for i, num_layers in enumerate(block_config):
            block = _DenseBlock(num_layers, num_features, bn_size, growth_rate, drop_rate)
            self.features.add_module(f"denseblock{i + 1}", block)
            num_features = num_features + num_layers * growth_rate
            if i != len(block_config) - 1:
                self.features.add_module(f"transition{i + 1}", _Transition(num_features, num_features // 2))
                num_features = num_features // 2
        self.features.add_module("norm5", nn.BatchNorm2d(num_features))
        self.classifier = nn.Linear(num_features, num_classes)

        # torchvision: He-normal (fan_in) convolutions, BN 1/0, zero classifier bias (weight as nn.Linear)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)
            elif isinstance(m, nn.Linear):
                nn.init.constant_(m.bias, 0)

    def forward(self, x):
        features = self.features(x)  # (N, C, H/32, W/32)
        out = F.relu(features)
        out = F.adaptive_avg_pool2d(out, (1, 1)).flatten(1)  # (N, C)
        return self.classifier(out)


@register_model(card=ModelCard(num_params=7_978_856, macs=2.8342e9))
def densenet121(**kwargs):
    """DenseNet-121: k=32, blocks (6, 12, 24, 16), 64 stem channels."""
    return DenseNet(32, (6, 12, 24, 16), 64, **kwargs)


@register_model(card=ModelCard(num_params=28_681_000))
def densenet161(**kwargs):
    """DenseNet-161: k=48, blocks (6, 12, 36, 24), 96 stem channels."""
    return DenseNet(48, (6, 12, 36, 24), 96, **kwargs)


@register_model(card=ModelCard(num_params=14_149_480))
def densenet169(**kwargs):
    """DenseNet-169: k=32, blocks (6, 12, 32, 32), 64 stem channels."""
    return DenseNet(32, (6, 12, 32, 32), 64, **kwargs)


@register_model(card=ModelCard(num_params=20_013_928))
def densenet201(**kwargs):
    """DenseNet-201: k=32, blocks (6, 12, 48, 32), 64 stem channels."""
    return DenseNet(32, (6, 12, 48, 32), 64, **kwargs)
