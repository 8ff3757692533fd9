"""Inception v4, with timm's ``inception_v4`` layout and names.

Szegedy, Ioffe, Vanhoucke & Alemi 2017, "Inception-v4, Inception-ResNet and the Impact of Residual
Connections on Learning" (arXiv:1602.07261), Figures 3-9. A 299x299 image goes through

- the stem (Fig. 3): three 3x3 convolutions (32/2, 32, 64), then three concatenations of a pooling
  and a convolution branch (``Mixed3a``: max-pool | 3x3/2 -> 160 channels; ``Mixed4a``: two
  branches with 7x1/1x7 factorised convolutions -> 192; ``Mixed5a``: 3x3/2 | max-pool -> 384) at 35x35;
- 4 x Inception-A (35x35, 384 channels), Reduction-A (-> 17x17, 1024), 7 x Inception-B (17x17,
  1024, 1x7/7x1 factorised), Reduction-B (-> 8x8, 1536), 3 x Inception-C (8x8, 1536, 1x3 and 3x1
  branches side by side);
- global average pooling and ``last_linear`` (1536 -> classes).

Every convolution is timm's ``ConvNormAct``: conv without bias (``conv``), batch-norm with eps=0.001
followed by ReLU (``bn``), padding 0 unless stated ("valid" in the paper's figures, marked V).
42,679,816 parameters with 1000 classes (timm's count).
"""
from __future__ import annotations

import minidl.nn.functional as F
from minidl import nn
from minidl.tensor import cat

from minidl.models._api import INCEPTION_MEAN, INCEPTION_STD, ModelCard, Preset
from minidl.models._utils import BatchNormAct2d
from minidl.models.registry import register_model

# timm's config for the ported TensorFlow weights: crop_pct 0.875 at 299 -> resize floor(299 / 0.875) = 341,
# bicubic, [-1, 1] scaling
INCEPTION_V4_PRESET = Preset(341, 299, mean=INCEPTION_MEAN, std=INCEPTION_STD, interpolation="bicubic")


class ConvNormAct(nn.Module):
    """conv (no bias) -> batch-norm (eps 0.001) + ReLU, as timm's ``ConvNormAct``: keys ``conv.*``, ``bn.*``."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=padding, bias=False)
        self.bn = BatchNormAct2d(out_channels, eps=0.001)

    def forward(self, x):
        return self.bn(self.conv(x))


def _avg_pool_branch(in_channels, out_channels):
    """3x3 average pooling (padding not counted, as TensorFlow's 'SAME' pooling) -> 1x1 projection."""
    return nn.Sequential(nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False),
                         ConvNormAct(in_channels, out_channels, 1))


class Mixed3a(nn.Module):
    """Stem, 147 -> 73: max-pool 3x3/2 | 3x3/2 conv 96; 64 + 96 = 160 channels."""

    def __init__(self):
        super().__init__()
        self.maxpool = nn.MaxPool2d(3, stride=2)
        self.conv = ConvNormAct(64, 96, 3, stride=2)

    def forward(self, x):
        return cat([self.maxpool(x), self.conv(x)], dim=1)


class Mixed4a(nn.Module):
    """Stem, 73 -> 71: 1x1 64 -> 3x3 96 | 1x1 64 -> 1x7 64 -> 7x1 64 -> 3x3 96; 192 channels."""

    def __init__(self):
        super().__init__()
        self.branch0 = nn.Sequential(ConvNormAct(160, 64, 1), ConvNormAct(64, 96, 3))
        self.branch1 = nn.Sequential(ConvNormAct(160, 64, 1), ConvNormAct(64, 64, (1, 7), padding=(0, 3)),
                                     ConvNormAct(64, 64, (7, 1), padding=(3, 0)), ConvNormAct(64, 96, 3))

    def forward(self, x):
        return cat([self.branch0(x), self.branch1(x)], dim=1)


class Mixed5a(nn.Module):
    """Stem, 71 -> 35: 3x3/2 conv 192 | max-pool 3x3/2; 384 channels."""

    def __init__(self):
        super().__init__()
        self.conv = ConvNormAct(192, 192, 3, stride=2)
        self.maxpool = nn.MaxPool2d(3, stride=2)

    def forward(self, x):
        return cat([self.conv(x), self.maxpool(x)], dim=1)


class InceptionA(nn.Module):
    """Fig. 4, 35x35: 1x1 96 | 1x1 64 -> 3x3 96 | 1x1 64 -> 3x3 96 -> 3x3 96 | avg-pool -> 1x1 96; 384."""

    def __init__(self):
        super().__init__()
        self.branch0 = ConvNormAct(384, 96, 1)
        self.branch1 = nn.Sequential(ConvNormAct(384, 64, 1), ConvNormAct(64, 96, 3, padding=1))
        self.branch2 = nn.Sequential(ConvNormAct(384, 64, 1), ConvNormAct(64, 96, 3, padding=1),
                                     ConvNormAct(96, 96, 3, padding=1))
        self.branch3 = _avg_pool_branch(384, 96)

    def forward(self, x):
        return cat([self.branch0(x), self.branch1(x), self.branch2(x), self.branch3(x)], dim=1)


class ReductionA(nn.Module):
    """Fig. 7 with (k, l, m, n) = (192, 224, 256, 384), 35 -> 17: 3x3/2 384 | 1x1 192 -> 3x3 224 -> 3x3/2 256 |
    max-pool 3x3/2; 384 + 256 + 384 = 1024 channels."""

    def __init__(self):
        super().__init__()
        self.branch0 = ConvNormAct(384, 384, 3, stride=2)
        self.branch1 = nn.Sequential(ConvNormAct(384, 192, 1), ConvNormAct(192, 224, 3, padding=1),
                                     ConvNormAct(224, 256, 3, stride=2))
        self.branch2 = nn.MaxPool2d(3, stride=2)

    def forward(self, x):
        return cat([self.branch0(x), self.branch1(x), self.branch2(x)], dim=1)


class InceptionB(nn.Module):
    """Fig. 5, 17x17: 1x1 384 | 1x1 192 -> 1x7 224 -> 7x1 256 | 1x1 192 -> 7x1 192 -> 1x7 224 -> 7x1 224 -> 1x7
    256 | avg-pool -> 1x1 128; 1024 channels."""

    def __init__(self):
        super().__init__()
        self.branch0 = ConvNormAct(1024, 384, 1)
        self.branch1 = nn.Sequential(ConvNormAct(1024, 192, 1), ConvNormAct(192, 224, (1, 7), padding=(0, 3)),
                                     ConvNormAct(224, 256, (7, 1), padding=(3, 0)))
        self.branch2 = nn.Sequential(ConvNormAct(1024, 192, 1), ConvNormAct(192, 192, (7, 1), padding=(3, 0)),
                                     ConvNormAct(192, 224, (1, 7), padding=(0, 3)),
                                     ConvNormAct(224, 224, (7, 1), padding=(3, 0)),
                                     ConvNormAct(224, 256, (1, 7), padding=(0, 3)))
        self.branch3 = _avg_pool_branch(1024, 128)

    def forward(self, x):
        return cat([self.branch0(x), self.branch1(x), self.branch2(x), self.branch3(x)], dim=1)


class ReductionB(nn.Module):
    """Fig. 8, 17 -> 8: 1x1 192 -> 3x3/2 192 | 1x1 256 -> 1x7 256 -> 7x1 320 -> 3x3/2 320 | max-pool 3x3/2; 1536."""

    def __init__(self):
        super().__init__()
        self.branch0 = nn.Sequential(ConvNormAct(1024, 192, 1), ConvNormAct(192, 192, 3, stride=2))
        self.branch1 = nn.Sequential(ConvNormAct(1024, 256, 1), ConvNormAct(256, 256, (1, 7), padding=(0, 3)),
                                     ConvNormAct(256, 320, (7, 1), padding=(3, 0)),
                                     ConvNormAct(320, 320, 3, stride=2))
        self.branch2 = nn.MaxPool2d(3, stride=2)

    def forward(self, x):
        return cat([self.branch0(x), self.branch1(x), self.branch2(x)], dim=1)


class InceptionC(nn.Module):
    """Fig. 6, 8x8: 1x1 256 | 1x1 384 -> (1x3 256, 3x1 256) | 1x1 384 -> 3x1 448 -> 1x3 512 -> (1x3 256, 3x1 256) |
    avg-pool -> 1x1 256; 256 + 512 + 512 + 256 = 1536 channels."""

    def __init__(self):
        super().__init__()
        self.branch0 = ConvNormAct(1536, 256, 1)
        self.branch1_0 = ConvNormAct(1536, 384, 1)
        self.branch1_1a = ConvNormAct(384, 256, (1, 3), padding=(0, 1))
        self.branch1_1b = ConvNormAct(384, 256, (3, 1), padding=(1, 0))
        self.branch2_0 = ConvNormAct(1536, 384, 1)
        self.branch2_1 = ConvNormAct(384, 448, (3, 1), padding=(1, 0))
        self.branch2_2 = ConvNormAct(448, 512, (1, 3), padding=(0, 1))
        self.branch2_3a = ConvNormAct(512, 256, (1, 3), padding=(0, 1))
        self.branch2_3b = ConvNormAct(512, 256, (3, 1), padding=(1, 0))
        self.branch3 = _avg_pool_branch(1536, 256)

    def forward(self, x):
        x1 = self.branch1_0(x)
        x1 = cat([self.branch1_1a(x1), self.branch1_1b(x1)], dim=1)  # the 1x3 and 3x1 side by side
        x2 = self.branch2_2(self.branch2_1(self.branch2_0(x)))
        x2 = cat([self.branch2_3a(x2), self.branch2_3b(x2)], dim=1)
        return cat([self.branch0(x), x1, x2, self.branch3(x)], dim=1)


class InceptionV4(nn.Module):
    """Inception v4: ``features`` (stem, 4 A, reduction A, 7 B, reduction B, 3 C), pooling, ``last_linear``."""

    def __init__(self, num_classes=1000, in_channels=3, dropout=0.0):
        super().__init__()
        blocks = [ConvNormAct(in_channels, 32, 3, stride=2), ConvNormAct(32, 32, 3), ConvNormAct(32, 64, 3, padding=1),
                  Mixed3a(), Mixed4a(), Mixed5a()]
        blocks += [InceptionA() for _ in range(4)] + [ReductionA()]
        blocks += [InceptionB() for _ in range(7)] + [ReductionB()]
        blocks += [InceptionC() for _ in range(3)]
        self.features = nn.Sequential(*blocks)
        self.num_features = 1536
        self.global_pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = dropout
        self.last_linear = nn.Linear(self.num_features, num_classes)

    def forward(self, x):
        x = self.features(x)  # (N, 1536, 8, 8) at 299x299
        x = self.global_pool(x).flatten(1)  # (N, 1536)
        x = F.dropout(x, self.dropout, self.training)
        return self.last_linear(x)


@register_model(card=ModelCard(num_params=42_679_816, macs=12.2540e9, input_size=(3, 299, 299),
                               transforms=INCEPTION_V4_PRESET))
def inception_v4(**kwargs):
    """Inception v4 (Szegedy et al. 2017), timm's ``inception_v4``."""
    return InceptionV4(**kwargs)
