"""BN-Inception ("Inception v2"), Ioffe & Szegedy 2015, "Batch Normalization: Accelerating Deep Network
Training by Reducing Internal Covariate Shift" (arXiv:1502.03167), Figure 5 (appendix).

GoogLeNet with batch-norm after every convolution and three changes: each 5x5 convolution becomes two
stacked 3x3 convolutions ("double 3x3", 128 more channels of depth per module), the pooling branch
averages instead of taking maxima in most modules, and the grid reductions are Inception modules with
stride 2 (3c, 4e: no 1x1 branch, the last 3x3 of both 3x3 branches strided, and a 3x3/2 max-pool passed
through without a projection). Here every convolution is ``BasicConv2d`` (conv without bias ->
BatchNorm2d -> ReLU, as GoogLeNet), the first max-pools round up (``ceil_mode``) as GoogLeNet's, there are
no auxiliary classifiers, and the first convolution is a plain 7x7/2 (the table's asterisk marks it as
special; the released Caffe model uses a plain one).

The table's rows (#1x1, #3x3 reduce, #3x3, double #3x3 reduce, double #3x3, pool + proj)::

    3a  64   64  64   64  96  avg + 32       4c  160 128 160 128 160 avg + 128
    3b  64   64  96   64  96  avg + 64       4d   96 128 192 160 192 avg + 128
    3c   0  128 160   64  96  max, stride 2  4e    0 128 192 192 256 max, stride 2
    4a 224   64  96   96 128  avg + 128      5a  352 192 320 160 224 avg + 128
    4b 192   96 128   96 128  avg + 128      5b  352 192 320 192 224 max + 128

Their channels add up to 608 for 4c and 4d, where the table's "output size" column says 576; the
branches are followed here (as the released model does), so 4d sees 608 channels, 4e gives
192 + 256 + 608 = 1056 and 5a reduces that to 352 + 320 + 224 + 128 = 1024.

Parameter count, by hand. A convolution k x k from C_in to C_out with its batch-norm holds
k^2 C_in C_out weights + 2 C_out (scale and shift); an Inception module with input C and the row above
holds ``C (a + r + d + p) + 9 (r b + d e + e^2) + 2 (a + r + b + d + 2 e + p)`` with a = #1x1, r, b = 3x3
reduce and 3x3, d, e = double 3x3 reduce and double 3x3, p = pool projection:

============  =====  ====================================================  ==========
layer         C in   weights + BN                                          parameters
============  =====  ====================================================  ==========
conv1         3      49 x 3 x 64 + 2 x 64                                       9,536
conv2_reduce  64     64 x 64 + 2 x 64                                           4,224
conv2         64     9 x 64 x 192 + 2 x 192                                   110,976
3a            192    192 x 224 + 9 x (4096 + 6144 + 9216) + 2 x 480           219,072
3b            256    256 x 256 + 9 x (6144 + 6144 + 9216) + 2 x 544           260,160
3c            320    320 x 192 + 9 x (20480 + 6144 + 9216) + 2 x 544          385,088
4a            576    576 x 512 + 9 x (6144 + 12288 + 16384) + 2 x 864         609,984
4b            576    576 x 512 + 9 x (12288 + 12288 + 16384) + 2 x 896        665,344
4c            576    576 x 544 + 9 x (20480 + 20480 + 25600) + 2 x 1024       914,432
4d            608    608 x 512 + 9 x (24576 + 30720 + 36864) + 2 x 1088     1,142,912
4e            608    608 x 320 + 9 x (24576 + 49152 + 65536) + 2 x 1024     1,449,984
5a            1056   1056 x 832 + 9 x (61440 + 35840 + 50176) + 2 x 1600    2,208,896
5b            1024   1024 x 864 + 9 x (61440 + 43008 + 50176) + 2 x 1632    2,279,616
fc            1024   1024 x 1000 + 1000                                     1,025,000
total                                                                      11,285,224
============  =====  ====================================================  ==========

11,285,224 parameters with 1000 classes (10,260,224 without the classifier); 2.03 G multiply-adds at
224x224 (``minidl summary``), against GoogLeNet's 1.5 G.
"""
from __future__ import annotations

import minidl.nn.functional as F
from minidl import nn
from minidl.tensor import cat

from minidl.models._api import ModelCard
from minidl.models.googlenet import BasicConv2d
from minidl.models.registry import register_model

# Figure 5 of the paper, one row per module:
#   name, in, #1x1, #3x3 reduce, #3x3, double #3x3 reduce, double #3x3, pool, pool projection (0: pass through)
INCEPTIONS = [
    ("inception3a", 192, 64, 64, 64, 64, 96, "avg", 32),
    ("inception3b", 256, 64, 64, 96, 64, 96, "avg", 64),
    ("inception3c", 320, 0, 128, 160, 64, 96, "max", 0),
    ("inception4a", 576, 224, 64, 96, 96, 128, "avg", 128),
    ("inception4b", 576, 192, 96, 128, 96, 128, "avg", 128),
    ("inception4c", 576, 160, 128, 160, 128, 160, "avg", 128),
    ("inception4d", 608, 96, 128, 192, 160, 192, "avg", 128),
    ("inception4e", 608, 0, 128, 192, 192, 256, "max", 0),
    ("inception5a", 1056, 352, 192, 320, 160, 224, "avg", 128),
    ("inception5b", 1024, 352, 192, 320, 192, 224, "max", 128),
]


class BNInceptionModule(nn.Module):
    """1x1 | 1x1 -> 3x3 | 1x1 -> 3x3 -> 3x3 | 3x3 pool [-> 1x1], concatenated on channels.

    A reduction module (``ch1x1 == 0``, no projection) has no 1x1 branch, strides the last convolution of
    both 3x3 branches and passes its 3x3/2 max-pool through: (N, C + ch3x3 + ch3x3dbl, H/2, W/2).
    """

    def __init__(self, in_channels, ch1x1, ch3x3red, ch3x3, ch3x3dblred, ch3x3dbl, pool, pool_proj):
        super().__init__()
        if pool not in ("avg", "max"):
            raise ValueError(f"BNInceptionModule: pool must be 'avg' or 'max', got {pool!r}")
        reduction = ch1x1 == 0
        stride = 2 if reduction else 1
        self.branch1 = BasicConv2d(in_channels, ch1x1, kernel_size=1) if ch1x1 else None
        self.branch2 = nn.Sequential(BasicConv2d(in_channels, ch3x3red, kernel_size=1),
                                     BasicConv2d(ch3x3red, ch3x3, kernel_size=3, stride=stride, padding=1))
        self.branch3 = nn.Sequential(BasicConv2d(in_channels, ch3x3dblred, kernel_size=1),
                                     BasicConv2d(ch3x3dblred, ch3x3dbl, kernel_size=3, padding=1),
                                     BasicConv2d(ch3x3dbl, ch3x3dbl, kernel_size=3, stride=stride, padding=1))
        pool_layer = (nn.AvgPool2d(3, stride=1, padding=1) if pool == "avg"
                      else nn.MaxPool2d(3, stride=stride, padding=1))
        self.branch4 = nn.Sequential(pool_layer)
        if pool_proj:
            self.branch4.append(BasicConv2d(in_channels, pool_proj, kernel_size=1))

    def forward(self, x):
        branches = [] if self.branch1 is None else [self.branch1(x)]
        branches += [self.branch2(x), self.branch3(x), self.branch4(x)]
        return cat(branches, dim=1)


class BNInception(nn.Module):
    """BN-Inception: stem (conv1, conv2_reduce, conv2), ten Inception modules, average pooling, ``fc``."""

    def __init__(self, num_classes=1000, dropout=0.0, in_channels=3):
        super().__init__()
        self.conv1 = BasicConv2d(in_channels, 64, kernel_size=7, stride=2, padding=3)
        self.maxpool1 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        self.conv2_reduce = BasicConv2d(64, 64, kernel_size=1)
        self.conv2 = BasicConv2d(64, 192, kernel_size=3, padding=1)
        self.maxpool2 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        for name, *row in INCEPTIONS:
            setattr(self, name, BNInceptionModule(*row))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.dropout = dropout
        self.fc = nn.Linear(1024, num_classes)
        for m in self.modules():  # He-normal convolutions, BN 1 / 0
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x):
        x = self.maxpool1(self.conv1(x))  # (N, 64, 56, 56) at 224
        x = self.maxpool2(self.conv2(self.conv2_reduce(x)))  # (N, 192, 28, 28)
        for name, *_ in INCEPTIONS:  # 28x28 -> 3c -> 14x14 -> 4e -> 7x7
            x = getattr(self, name)(x)
        x = self.avgpool(x).flatten(1)  # (N, 1024)
        x = F.dropout(x, self.dropout, self.training)
        return self.fc(x)


@register_model(card=ModelCard(num_params=11_285_224, macs=2.0326e9))
def bn_inception(**kwargs):
    """BN-Inception (Ioffe & Szegedy 2015, Fig. 5); the count is derived in the module docstring."""
    return BNInception(**kwargs)


@register_model(card=ModelCard(num_params=11_285_224, macs=2.0326e9))
def inception_v2(**kwargs):
    """Inception v2: BN-Inception under the name the Inception-v4 paper gives it (the Inception-v3 paper uses
    "Inception-v2" for one of its own intermediate models); the same network as ``bn_inception``."""
    return BNInception(**kwargs)
