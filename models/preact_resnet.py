"""Pre-activation ResNet (ResNet v2), with timm's ``resnetv2`` names.

He et al. 2016, "Identity Mappings in Deep Residual Networks": every unit is BN -> ReLU -> conv
(``x + F(BN-ReLU(x))``), so the shortcut path from any unit to any later one is a pure identity and
the signal is normalised once more, by a final BN-ReLU (``norm``), before the head. As timm's
``ResNetV2`` (``timm/models/resnetv2.py`` with ``BatchNormAct2d`` and plain convolutions):

- ``stem.conv`` (7x7 stride 2, no norm: the first unit normalises it), ``stem.pool`` (3x3 max-pool);
- ``stages.<i>.blocks.<j>`` with ``norm1, conv1, norm2, conv2, norm3, conv3`` (bottleneck; stride on
  the 3x3) and, in the first block of a stage, ``downsample.conv`` (1x1) fed by the pre-activated input;
- ``norm`` (BN-ReLU over the last stage), ``head.fc`` (a 1x1 convolution with bias on the pooled
  features, timm's ``use_conv=True`` classifier, so its weight is (classes, 2048, 1, 1)).

``preact_resnet50`` has 25,549,352 parameters, timm's ``resnetv2_50``. ``cifar=True``: 3x3 stride-1
stem without max-pool (``preact_resnet18(cifar=True, num_classes=10)``: 11,172,170).
"""
from __future__ import annotations

from minidl import nn

from minidl.models._utils import BatchNormAct2d
from minidl.models._api import ModelCard, Preset
from minidl.models.registry import register_model

# preact_resnet50's transforms: timm's resnetv2_50 config (crop_pct 0.95 at 224 -> resize 236, bicubic)


class DownsampleConv(nn.Module):
    """1x1 projection of the shortcut, applied to the pre-activated input (no norm after: pre-activation)."""

    def __init__(self, in_chs, out_chs, stride=1):
        super().__init__()
        self.conv = nn.Conv2d(in_chs, out_chs, 1, stride=stride, bias=False)

    def forward(self, x):
        return self.conv(x)


class PreActBasic(nn.Module):
    """BN-ReLU-conv3x3, BN-ReLU-conv3x3, plus the shortcut."""

    def __init__(self, in_chs, out_chs, stride=1, project=False):
        super().__init__()
        self.downsample = DownsampleConv(in_chs, out_chs, stride) if project else None
        self.norm1 = BatchNormAct2d(in_chs)
        self.conv1 = nn.Conv2d(in_chs, out_chs, 3, stride=stride, padding=1, bias=False)
        self.norm2 = BatchNormAct2d(out_chs)
        self.conv2 = nn.Conv2d(out_chs, out_chs, 3, padding=1, bias=False)

    def forward(self, x):
        x_preact = self.norm1(x)
        # the projection, when there is one, sees the normalised input (He et al. 2016, fig. 4e)
        shortcut = self.downsample(x_preact) if self.downsample is not None else x
        out = self.conv1(x_preact)
        out = self.conv2(self.norm2(out))
        return out + shortcut


class PreActBottleneck(nn.Module):
    """BN-ReLU-conv1x1 (reduce by 4), BN-ReLU-conv3x3 (strided), BN-ReLU-conv1x1 (expand), plus the shortcut."""

    def __init__(self, in_chs, out_chs, stride=1, project=False, bottle_ratio=0.25):
        super().__init__()
        mid_chs = int(out_chs * bottle_ratio)
        self.downsample = DownsampleConv(in_chs, out_chs, stride) if project else None
        self.norm1 = BatchNormAct2d(in_chs)
        self.conv1 = nn.Conv2d(in_chs, mid_chs, 1, bias=False)
        self.norm2 = BatchNormAct2d(mid_chs)
        self.conv2 = nn.Conv2d(mid_chs, mid_chs, 3, stride=stride, padding=1, bias=False)
        self.norm3 = BatchNormAct2d(mid_chs)
        self.conv3 = nn.Conv2d(mid_chs, out_chs, 1, bias=False)

    def forward(self, x):
        x_preact = self.norm1(x)
        shortcut = self.downsample(x_preact) if self.downsample is not None else x
        out = self.conv1(x_preact)  # (N, mid, H, W)
        out = self.conv2(self.norm2(out))  # (N, mid, H/s, W/s)
        out = self.conv3(self.norm3(out))  # (N, out, H/s, W/s)
        return out + shortcut


class ResNetStage(nn.Module):
    """``depth`` blocks; the first one strides and projects its shortcut (as timm: always, for bottlenecks)."""

    def __init__(self, in_chs, out_chs, stride, depth, block_fn):
        super().__init__()
        self.blocks = nn.Sequential()
        for i in range(depth):
            first = i == 0
            # timm projects the first shortcut of every bottleneck stage, and of a basic stage only
            # where the shape changes
            project = first and (block_fn is PreActBottleneck or stride != 1 or in_chs != out_chs)
            self.blocks.append(block_fn(in_chs if first else out_chs, out_chs, stride if first else 1, project))

    def forward(self, x):
        return self.blocks(x)


class ClassifierHead(nn.Module):
    """Global average pooling and a 1x1-convolution classifier (timm's ``ClassifierHead(use_conv=True)``)."""

    def __init__(self, in_features, num_classes):
        super().__init__()
        self.global_pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Conv2d(in_features, num_classes, 1, bias=True)
        self.flatten = nn.Flatten(1)

    def forward(self, x):
        return self.flatten(self.fc(self.global_pool(x)))  # (N, C, 1, 1) -> (N, classes, 1, 1) -> (N, classes)


class PreActResNet(nn.Module):
    """Pre-activation ResNet; ``layers`` blocks per stage, ``channels`` output channels per stage."""

    def __init__(self, layers, channels=(256, 512, 1024, 2048), block="bottleneck", num_classes=1000,
                 stem_chs=64, cifar=False, in_channels=3, zero_init_last=False):
        super().__init__()
        if block not in ("basic", "bottleneck"):
            raise ValueError(f"PreActResNet: block must be 'basic' or 'bottleneck', got {block!r}")
        if len(layers) != len(channels):
            raise ValueError(f"PreActResNet: layers ({len(layers)} stages) and channels ({len(channels)}) differ")
        block_fn = PreActBasic if block == "basic" else PreActBottleneck
        self.stem = nn.Sequential()
        if cifar:
            self.stem.add_module("conv", nn.Conv2d(in_channels, stem_chs, 3, stride=1, padding=1, bias=False))
        else:
            self.stem.add_module("conv", nn.Conv2d(in_channels, stem_chs, 7, stride=2, padding=3, bias=False))
            self.stem.add_module("pool", nn.MaxPool2d(kernel_size=3, stride=2, padding=1))
        self.stages = nn.Sequential()
        prev_chs = stem_chs
        for i, (depth, out_chs) in enumerate(zip(layers, channels)):
            self.stages.append(ResNetStage(prev_chs, out_chs, 1 if i == 0 else 2, depth, block_fn))
            prev_chs = out_chs
        self.num_features = prev_chs
        self.norm = BatchNormAct2d(prev_chs)
        self.head = ClassifierHead(prev_chs, num_classes)
        self._init_weights(zero_init_last)

    def _init_weights(self, zero_init_last):
        """timm's ``_init_weights``: He-normal (fan_out) convolutions, N(0, 0.01) classifier, zero biases,
        BN weight 1 / bias 0; with ``zero_init_last`` the last convolution of every residual branch starts
        at zero, so each unit begins as the identity."""
        for name, m in self.named_modules():
            if isinstance(m, nn.Conv2d) and name.startswith("head.fc"):
                nn.init.normal_(m.weight, 0.0, 0.01)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        if zero_init_last:
            for m in self.modules():
                if isinstance(m, PreActBottleneck):
                    nn.init.zeros_(m.conv3.weight)
                elif isinstance(m, PreActBasic):
                    nn.init.zeros_(m.conv2.weight)

    def forward(self, x):
        x = self.stem(x)  # (N, 64, H/4, W/4)
        x = self.stages(x)  # (N, 2048, H/32, W/32)
        x = self.norm(x)  # final BN-ReLU: the last unit's output is not normalised otherwise
        return self.head(x)


@register_model(card=ModelCard())
def preact_resnet18(**kwargs):
    """Pre-activation ResNet-18 (timm ``resnetv2_18`` layout: basic units)."""
    return PreActResNet([2, 2, 2, 2], channels=(64, 128, 256, 512), block="basic", **kwargs)


@register_model(card=ModelCard())
def preact_resnet34(**kwargs):
    """Pre-activation ResNet-34 (timm ``resnetv2_34`` layout)."""
    return PreActResNet([3, 4, 6, 3], channels=(64, 128, 256, 512), block="basic", **kwargs)


@register_model(card=ModelCard(num_params=25_549_352, transforms=Preset(236, 224, interpolation="bicubic")))
def preact_resnet50(**kwargs):
    """Pre-activation ResNet-50 (He et al. 2016), timm's ``resnetv2_50``."""
    return PreActResNet([3, 4, 6, 3], **kwargs)


@register_model(card=ModelCard())
def preact_resnet101(**kwargs):
    """Pre-activation ResNet-101 (timm ``resnetv2_101`` layout)."""
    return PreActResNet([3, 4, 23, 3], **kwargs)


@register_model(card=ModelCard())
def preact_resnet152(**kwargs):
    """Pre-activation ResNet-152 (timm ``resnetv2_152`` layout)."""
    return PreActResNet([3, 8, 36, 3], **kwargs)
