"""Inception-ResNet v2, with timm's ``inception_resnet_v2`` layout and names.

Szegedy, Ioffe, Vanhoucke & Alemi 2017, "Inception-v4, Inception-ResNet and the Impact of Residual
Connections on Learning" (arXiv:1602.07261), Figures 3 and 15-20. Inception modules whose
concatenated branches are projected back to the input width by a 1x1 convolution (with bias, no
batch-norm: ``conv2d``) and added to the input as a residual, scaled down first: ``relu(x + s * F(x))``
with s = 0.17, 0.10 and 0.20 in the three repeated blocks. The paper (sec. 3.3) scales the residuals
because without it the network "died" early in training when there were more than ~1000 filters.

Layout (TF-slim's, which the released weights follow; its stem differs from Fig. 3): ``conv2d_1a``
3x3/2 32, ``conv2d_2a`` 3x3 32, ``conv2d_2b`` 3x3 64, max-pool, ``conv2d_3b`` 1x1 80, ``conv2d_4a`` 3x3 192,
max-pool, ``mixed_5b`` (-> 320 channels, 35x35), ``repeat``: 10 x Block35, ``mixed_6a`` (-> 1088, 17x17),
``repeat_1``: 20 x Block17, ``mixed_7a`` (-> 2080, 8x8), ``repeat_2``: 9 x Block8, ``block8`` (scale 1,
no ReLU), ``conv2d_7b`` 1x1 1536, global average pooling, ``classif``. Convolutions are timm's
``ConvNormAct`` (``conv``, ``bn`` with eps=0.001 and ReLU). 55,843,464 parameters with 1000 classes (timm).
"""
from __future__ import annotations

import minidl.nn.functional as F
from minidl import nn
from minidl.tensor import cat

from minidl.models._api import INCEPTION_MEAN, INCEPTION_STD, ModelCard, Preset
from minidl.models.inception_v4 import ConvNormAct
from minidl.models.registry import register_model

# transforms: timm's config, crop_pct 0.8975 at 299 -> resize floor(299 / 0.8975) = 333, bicubic, [-1, 1] scaling


class Mixed5b(nn.Module):
    """35x35, 192 -> 320: 1x1 96 | 1x1 48 -> 5x5 64 | 1x1 64 -> 3x3 96 -> 3x3 96 | avg-pool -> 1x1 64."""

    def __init__(self):
        super().__init__()
        self.branch0 = ConvNormAct(192, 96, 1)
        self.branch1 = nn.Sequential(ConvNormAct(192, 48, 1), ConvNormAct(48, 64, 5, padding=2))
        self.branch2 = nn.Sequential(ConvNormAct(192, 64, 1), ConvNormAct(64, 96, 3, padding=1),
                                     ConvNormAct(96, 96, 3, padding=1))
        self.branch3 = nn.Sequential(nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False),
                                     ConvNormAct(192, 64, 1))

    def forward(self, x):
        return cat([self.branch0(x), self.branch1(x), self.branch2(x), self.branch3(x)], dim=1)


class Block35(nn.Module):
    """Inception-ResNet-A (Fig. 16), 35x35x320: 1x1 32 | 1x1 32 -> 3x3 32 | 1x1 32 -> 3x3 48 -> 3x3 64, 1x1 -> 320."""

    def __init__(self, scale=1.0):
        super().__init__()
        self.scale = scale
        self.branch0 = ConvNormAct(320, 32, 1)
        self.branch1 = nn.Sequential(ConvNormAct(320, 32, 1), ConvNormAct(32, 32, 3, padding=1))
        self.branch2 = nn.Sequential(ConvNormAct(320, 32, 1), ConvNormAct(32, 48, 3, padding=1),
                                     ConvNormAct(48, 64, 3, padding=1))
        self.conv2d = nn.Conv2d(128, 320, 1)
        self.act = nn.ReLU()

    def forward(self, x):
        out = cat([self.branch0(x), self.branch1(x), self.branch2(x)], dim=1)  # (N, 128, 35, 35)
        out = self.conv2d(out)  # (N, 320, 35, 35): back to the input's width
        return self.act(out * self.scale + x)


class Mixed6a(nn.Module):
    """Reduction-A (Fig. 7, k=256, l=256, m=384, n=384), 35 -> 17: 3x3/2 384 | 1x1 256 -> 3x3 256 -> 3x3/2 384 |
    max-pool; 384 + 384 + 320 = 1088 channels."""

    def __init__(self):
        super().__init__()
        self.branch0 = ConvNormAct(320, 384, 3, stride=2)
        self.branch1 = nn.Sequential(ConvNormAct(320, 256, 1), ConvNormAct(256, 256, 3, padding=1),
                                     ConvNormAct(256, 384, 3, stride=2))
        self.branch2 = nn.MaxPool2d(3, stride=2)

    def forward(self, x):
        return cat([self.branch0(x), self.branch1(x), self.branch2(x)], dim=1)


class Block17(nn.Module):
    """Inception-ResNet-B (Fig. 17), 17x17x1088: 1x1 192 | 1x1 128 -> 1x7 160 -> 7x1 192, 1x1 -> 1088."""

    def __init__(self, scale=1.0):
        super().__init__()
        self.scale = scale
        self.branch0 = ConvNormAct(1088, 192, 1)
        self.branch1 = nn.Sequential(ConvNormAct(1088, 128, 1), ConvNormAct(128, 160, (1, 7), padding=(0, 3)),
                                     ConvNormAct(160, 192, (7, 1), padding=(3, 0)))
        self.conv2d = nn.Conv2d(384, 1088, 1)
        self.act = nn.ReLU()

    def forward(self, x):
        out = cat([self.branch0(x), self.branch1(x)], dim=1)  # (N, 384, 17, 17)
        out = self.conv2d(out)  # (N, 1088, 17, 17)
        return self.act(out * self.scale + x)


class Mixed7a(nn.Module):
    """Reduction-B (Fig. 18), 17 -> 8: 1x1 256 -> 3x3/2 384 | 1x1 256 -> 3x3/2 288 | 1x1 256 -> 3x3 288 -> 3x3/2 320 |
    max-pool; 384 + 288 + 320 + 1088 = 2080 channels."""

    def __init__(self):
        super().__init__()
        self.branch0 = nn.Sequential(ConvNormAct(1088, 256, 1), ConvNormAct(256, 384, 3, stride=2))
        self.branch1 = nn.Sequential(ConvNormAct(1088, 256, 1), ConvNormAct(256, 288, 3, stride=2))
        self.branch2 = nn.Sequential(ConvNormAct(1088, 256, 1), ConvNormAct(256, 288, 3, padding=1),
                                     ConvNormAct(288, 320, 3, stride=2))
        self.branch3 = nn.MaxPool2d(3, stride=2)

    def forward(self, x):
        return cat([self.branch0(x), self.branch1(x), self.branch2(x), self.branch3(x)], dim=1)


class Block8(nn.Module):
    """Inception-ResNet-C (Fig. 19), 8x8x2080: 1x1 192 | 1x1 192 -> 1x3 224 -> 3x1 256, 1x1 -> 2080.

    ``no_relu``: the last block leaves the sum unrectified (a ConvNormAct follows).
    """

    def __init__(self, scale=1.0, no_relu=False):
        super().__init__()
        self.scale = scale
        self.branch0 = ConvNormAct(2080, 192, 1)
        self.branch1 = nn.Sequential(ConvNormAct(2080, 192, 1), ConvNormAct(192, 224, (1, 3), padding=(0, 1)),
                                     ConvNormAct(224, 256, (3, 1), padding=(1, 0)))
        self.conv2d = nn.Conv2d(448, 2080, 1)
        self.relu = None if no_relu else nn.ReLU()

    def forward(self, x):
        out = cat([self.branch0(x), self.branch1(x)], dim=1)  # (N, 448, 8, 8)
        out = self.conv2d(out) * self.scale + x  # (N, 2080, 8, 8)
        return out if self.relu is None else self.relu(out)


class InceptionResnetV2(nn.Module):
    """Inception-ResNet v2 (timm's names; see the module docstring for the layout)."""

    def __init__(self, num_classes=1000, in_channels=3, dropout=0.0):
        super().__init__()
        self.conv2d_1a = ConvNormAct(in_channels, 32, 3, stride=2)
        self.conv2d_2a = ConvNormAct(32, 32, 3)
        self.conv2d_2b = ConvNormAct(32, 64, 3, padding=1)
        self.maxpool_3a = nn.MaxPool2d(3, stride=2)
        self.conv2d_3b = ConvNormAct(64, 80, 1)
        self.conv2d_4a = ConvNormAct(80, 192, 3)
        self.maxpool_5a = nn.MaxPool2d(3, stride=2)
        self.mixed_5b = Mixed5b()
        self.repeat = nn.Sequential(*[Block35(scale=0.17) for _ in range(10)])
        self.mixed_6a = Mixed6a()
        self.repeat_1 = nn.Sequential(*[Block17(scale=0.10) for _ in range(20)])
        self.mixed_7a = Mixed7a()
        self.repeat_2 = nn.Sequential(*[Block8(scale=0.20) for _ in range(9)])
        self.block8 = Block8(no_relu=True)
        self.num_features = 1536
        self.conv2d_7b = ConvNormAct(2080, self.num_features, 1)
        self.global_pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = dropout
        self.classif = nn.Linear(self.num_features, num_classes)

    def forward(self, x):
        x = self.conv2d_2b(self.conv2d_2a(self.conv2d_1a(x)))  # (N, 64, 147, 147) at 299x299
        x = self.conv2d_4a(self.conv2d_3b(self.maxpool_3a(x)))  # (N, 192, 71, 71)
        x = self.mixed_5b(self.maxpool_5a(x))  # (N, 320, 35, 35)
        x = self.mixed_6a(self.repeat(x))  # (N, 1088, 17, 17)
        x = self.mixed_7a(self.repeat_1(x))  # (N, 2080, 8, 8)
        x = self.block8(self.repeat_2(x))
        x = self.conv2d_7b(x)  # (N, 1536, 8, 8)
        x = self.global_pool(x).flatten(1)
        x = F.dropout(x, self.dropout, self.training)
        return self.classif(x)


@register_model(card=ModelCard(num_params=55_843_464, macs=13.1558e9, input_size=(3, 299, 299),
                               transforms=Preset(333, 299, INCEPTION_MEAN, INCEPTION_STD, "bicubic")))
def inception_resnet_v2(**kwargs):
    """Inception-ResNet v2 (Szegedy et al. 2017), timm's ``inception_resnet_v2``."""
    return InceptionResnetV2(**kwargs)
