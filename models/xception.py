"""Xception, the original 2017 design, with timm's ``legacy_xception`` names.

Chollet 2017, "Xception: Deep Learning with Depthwise Separable Convolutions". Entry flow (two 3x3
convolutions, then three residual blocks that double the channels and halve the resolution), middle
flow (eight residual blocks of three ReLU-separable conv-BN units at 728 channels), exit flow (one
more down-sampling block to 1024, then separable convolutions to 1536 and 2048), global pooling and
``fc``. A separable convolution is a 3x3 depthwise convolution (``conv1``) and a 1x1 pointwise one
(``pointwise``). Meant for 299x299 inputs; 22,855,952 parameters with 1000 classes.
"""
from __future__ import annotations

from minidl import nn

from minidl.models._api import INCEPTION_MEAN, INCEPTION_STD, ModelCard, Preset
from minidl.models.registry import register_model

# transforms: timm's legacy_xception config (crop 299, crop_pct 0.8975 -> resize 333, Inception mean/std)


class SeparableConv2d(nn.Module):
    """Depthwise kxk convolution then pointwise 1x1, both without bias."""

    def __init__(self, in_channels, out_channels, kernel_size=1, stride=1, padding=0, dilation=1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, in_channels, kernel_size, stride, padding, dilation, groups=in_channels,
                               bias=False)
        self.pointwise = nn.Conv2d(in_channels, out_channels, 1, 1, 0, 1, 1, bias=False)

    def forward(self, x):
        return self.pointwise(self.conv1(x))


class Block(nn.Module):
    """``reps`` x (ReLU, separable conv, BN), an optional 3x3 stride-2 max-pool, plus the shortcut
    (a strided 1x1 conv + BN when the shape changes).

    ``rep`` is one Sequential so the keys are timm's: ``rep.0`` is the first ReLU (or, with
    ``start_with_relu=False``, the first separable conv), and so on.
    """

    def __init__(self, in_channels, out_channels, reps, strides=1, start_with_relu=True, grow_first=True):
        super().__init__()
        if out_channels != in_channels or strides != 1:
            self.skip = nn.Conv2d(in_channels, out_channels, 1, stride=strides, bias=False)
            self.skipbn = nn.BatchNorm2d(out_channels)
        else:
            self.skip = None
        rep = []
        for i in range(reps):
            if grow_first:  # widen in the first unit
                inc = in_channels if i == 0 else out_channels
                outc = out_channels
            else:  # widen in the last unit (exit flow)
                inc = in_channels
                outc = in_channels if i < reps - 1 else out_channels
            rep.append(nn.ReLU())
            rep.append(SeparableConv2d(inc, outc, 3, stride=1, padding=1))
            rep.append(nn.BatchNorm2d(outc))
        if not start_with_relu:
            rep = rep[1:]
        if strides != 1:
            rep.append(nn.MaxPool2d(3, strides, 1))
        self.rep = nn.Sequential(*rep)

    def forward(self, inp):
        x = self.rep(inp)
        skip = self.skipbn(self.skip(inp)) if self.skip is not None else inp
        return x + skip


class Xception(nn.Module):
    """Xception for ImageNet at 299x299 (any size >= 71 works: the stem convolutions are unpadded)."""

    def __init__(self, num_classes=1000, in_channels=3, drop_rate=0.0):
        super().__init__()
        self.drop_rate = drop_rate
        self.num_features = 2048
        # entry flow
        self.conv1 = nn.Conv2d(in_channels, 32, 3, 2, 0, bias=False)
        self.bn1 = nn.BatchNorm2d(32)
        self.act1 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(32, 64, 3, bias=False)
        self.bn2 = nn.BatchNorm2d(64)
        self.act2 = nn.ReLU(inplace=True)
        self.block1 = Block(64, 128, 2, 2, start_with_relu=False)
        self.block2 = Block(128, 256, 2, 2)
        self.block3 = Block(256, 728, 2, 2)
        # middle flow: eight identical blocks
        for i in range(4, 12):
            setattr(self, f"block{i}", Block(728, 728, 3, 1))
        # exit flow
        self.block12 = Block(728, 1024, 2, 2, grow_first=False)
        self.conv3 = SeparableConv2d(1024, 1536, 3, 1, 1)
        self.bn3 = nn.BatchNorm2d(1536)
        self.act3 = nn.ReLU(inplace=True)
        self.conv4 = SeparableConv2d(1536, self.num_features, 3, 1, 1)
        self.bn4 = nn.BatchNorm2d(self.num_features)
        self.act4 = nn.ReLU(inplace=True)
        self.global_pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(self.num_features, num_classes)

        # timm: He-normal (fan_out) convolutions, BN 1/0, the classifier as nn.Linear
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward_features(self, x):
        x = self.act1(self.bn1(self.conv1(x)))  # (N, 32, 149, 149) at 299
        x = self.act2(self.bn2(self.conv2(x)))  # (N, 64, 147, 147)
        for i in range(1, 13):
            x = getattr(self, f"block{i}")(x)  # (N, 728, 19, 19) through the middle flow, (N, 1024, 10, 10) after
        x = self.act3(self.bn3(self.conv3(x)))  # (N, 1536, 10, 10)
        return self.act4(self.bn4(self.conv4(x)))  # (N, 2048, 10, 10)

    def forward(self, x):
        x = self.forward_features(x)
        x = self.global_pool(x).flatten(1)  # (N, 2048)
        x = nn.functional.dropout(x, self.drop_rate, self.training)
        return self.fc(x)


@register_model(card=ModelCard(num_params=22_855_952, input_size=(3, 299, 299),
                               transforms=Preset(333, 299, INCEPTION_MEAN, INCEPTION_STD, "bicubic")))
def xception(**kwargs):
    """Xception (Chollet 2017), timm's ``legacy_xception``."""
    return Xception(**kwargs)
