"""ResNet, ResNeXt and Wide ResNet, laid out as torchvision's ``resnet.py``.

He et al. 2016, "Deep Residual Learning for Image Recognition"; Xie et al. 2017, "Aggregated Residual
Transformations" (ResNeXt: grouped 3x3 convolutions); Zagoruyko & Komodakis 2016, "Wide Residual
Networks". As torchvision (ResNet v1.5), the bottleneck puts the stride on its 3x3 convolution, not on
the first 1x1, and a 1x1 convolution + batch-norm projects the shortcut when the shape changes.
``stride_in_1x1=True`` gives the paper's original layout (ResNet v1, the released Caffe models): the
stride sits on the first 1x1, so the 3x3 already runs on the subsampled grid. Same parameters, fewer
MACs: 3.86 G (ResNet-50), 7.57 G (ResNet-101), 11.28 G (ResNet-152) at 224x224, the paper's Table 1
figures (3.8 / 7.6 / 11.3 x 10^9 "FLOPs", multiply-adds), against torchvision's 4.09 / 7.80 / 11.51 G.

Exact parameter counts (torchvision, 1000 classes): resnet18 11,689,512; resnet34 21,797,672; resnet50
25,557,032; resnet101 44,549,160; resnet152 60,192,808; resnext50_32x4d 25,028,904; resnext101_32x8d
88,791,336; wide_resnet50_2 68,883,240.

``cifar=True`` replaces the 7x7 stride-2 stem and its max-pool with a 3x3 stride-1 convolution, so a
32x32 image reaches the last stage at 4x4 instead of 1x1. With 10 classes: resnet18 11,173,962;
resnet34 21,282,122; resnet50 23,520,842.
"""
from __future__ import annotations

from minidl import nn

from minidl.models._utils import init_conv_bn_
from minidl.models._api import ModelCard, WeightsEnum, torchvision_weights
from minidl.models.registry import register_model

# torchvision's recipes for its V1 weights (the V2 weights, resized to 232, are not recorded here)
_RECIPE = "https://github.com/pytorch/vision/tree/main/references/classification#resnet"
_RECIPE_RESNEXT = "https://github.com/pytorch/vision/tree/main/references/classification#resnext"
_RECIPE_WIDE = "https://github.com/pytorch/vision/pull/912#issue-445437439"


def conv3x3(in_planes, out_planes, stride=1, groups=1, dilation=1):
    """3x3 convolution with padding (no bias: a batch-norm follows)."""
    return nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=stride, padding=dilation, groups=groups,
                     bias=False, dilation=dilation)


def conv1x1(in_planes, out_planes, stride=1):
    """1x1 convolution (no bias)."""
    return nn.Conv2d(in_planes, out_planes, kernel_size=1, stride=stride, bias=False)


class BasicBlock(nn.Module):
    """Two 3x3 convolutions and an identity (or projected) shortcut: ``relu(F(x) + x)``."""

    expansion = 1

    def __init__(self, inplanes, planes, stride=1, downsample=None, groups=1, base_width=64, dilation=1,
                 norm_layer=None, stride_in_1x1=False):
        super().__init__()
        norm_layer = norm_layer or nn.BatchNorm2d
        if stride_in_1x1:
            raise ValueError("BasicBlock: stride_in_1x1 applies to bottleneck blocks only (it has no 1x1)")
        if groups != 1 or base_width != 64:
            raise ValueError(f"BasicBlock: only groups=1 and base_width=64 are supported, got groups={groups}, "
                             f"base_width={base_width}")
        if dilation > 1:
            raise ValueError(f"BasicBlock: dilation > 1 is not supported, got {dilation}")
        self.conv1 = conv3x3(inplanes, planes, stride)
        self.bn1 = norm_layer(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = norm_layer(planes)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x):
        identity = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.downsample is not None:
            identity = self.downsample(x)
        out = out + identity
        return self.relu(out)


class Bottleneck(nn.Module):
    """1x1 reduce -> 3x3 (strided, grouped for ResNeXt) -> 1x1 expand by 4, plus the shortcut.

    The 3x3 has ``width = planes * base_width / 64 * groups`` channels: 64 for ResNet-50's first stage,
    32 groups x 4 = 128 for ResNeXt-50 32x4d, 128 for Wide ResNet-50-2 (base_width 128).
    ``stride_in_1x1``: stride the first 1x1 instead of the 3x3 (He et al.'s original layout).
    """

    expansion = 4

    def __init__(self, inplanes, planes, stride=1, downsample=None, groups=1, base_width=64, dilation=1,
                 norm_layer=None, stride_in_1x1=False):
        super().__init__()
        norm_layer = norm_layer or nn.BatchNorm2d
        width = int(planes * (base_width / 64.0)) * groups
        stride_1x1, stride_3x3 = (stride, 1) if stride_in_1x1 else (1, stride)
        self.conv1 = conv1x1(inplanes, width, stride_1x1)
        self.bn1 = norm_layer(width)
        self.conv2 = conv3x3(width, width, stride_3x3, groups, dilation)
        self.bn2 = norm_layer(width)
        self.conv3 = conv1x1(width, planes * self.expansion)
        self.bn3 = norm_layer(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x):
        identity = x
        out = self.relu(self.bn1(self.conv1(x)))  # (N, width, H, W)
        out = self.relu(self.bn2(self.conv2(out)))  # (N, width, H/s, W/s)
        out = self.bn3(self.conv3(out))  # (N, 4 * planes, H/s, W/s)
        if self.downsample is not None:
            identity = self.downsample(x)
        out = out + identity
        return self.relu(out)


class ResNet(nn.Module):
    """The ResNet family: a stem, four stages of residual blocks, global average pooling and ``fc``.

    ``layers``: blocks per stage; ``groups``/``width_per_group``: ResNeXt cardinality and group width;
    ``zero_init_residual``: start the last batch-norm of every block at zero so each residual branch
    begins as the identity (Goyal et al. 2017); ``cifar``: 3x3 stride-1 stem without max-pool;
    ``stride_in_1x1``: bottlenecks stride their first 1x1 (the paper's layout) rather than the 3x3.
    """

    def __init__(self, block, layers, num_classes=1000, zero_init_residual=False, groups=1, width_per_group=64,
                 replace_stride_with_dilation=None, norm_layer=None, cifar=False, in_channels=3, stride_in_1x1=False):
        super().__init__()
        # only bottlenecks take the option (BasicBlock refuses stride_in_1x1=True)
        self._block_options = {"stride_in_1x1": True} if stride_in_1x1 else {}
        if len(layers) != 4:
            raise ValueError(f"ResNet: layers must list the blocks of 4 stages, got {layers!r}")
        norm_layer = norm_layer or nn.BatchNorm2d
        self._norm_layer = norm_layer
        self.inplanes = 64
        self.dilation = 1
        replace_stride_with_dilation = replace_stride_with_dilation or [False, False, False]
        if len(replace_stride_with_dilation) != 3:
            raise ValueError(f"ResNet: replace_stride_with_dilation must have 3 entries, "
                             f"got {replace_stride_with_dilation!r}")
        self.groups = groups
        self.base_width = width_per_group
        if cifar:
            self.conv1 = nn.Conv2d(in_channels, self.inplanes, kernel_size=3, stride=1, padding=1, bias=False)
        else:
            self.conv1 = nn.Conv2d(in_channels, self.inplanes, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = norm_layer(self.inplanes)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.Identity() if cifar else nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(block, 64, layers[0])
        self.layer2 = self._make_layer(block, 128, layers[1], stride=2, dilate=replace_stride_with_dilation[0])
        self.layer3 = self._make_layer(block, 256, layers[2], stride=2, dilate=replace_stride_with_dilation[1])
        self.layer4 = self._make_layer(block, 512, layers[3], stride=2, dilate=replace_stride_with_dilation[2])
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(512 * block.expansion, num_classes)

        init_conv_bn_(self, conv_mode="fan_out")
        if zero_init_residual:
            for m in self.modules():
                if isinstance(m, Bottleneck):
                    nn.init.zeros_(m.bn3.weight)
                elif isinstance(m, BasicBlock):
                    nn.init.zeros_(m.bn2.weight)

    def _make_layer(self, block, planes, blocks, stride=1, dilate=False):
        norm_layer = self._norm_layer
        downsample = None
        previous_dilation = self.dilation
        if dilate:
            self.dilation *= stride
            stride = 1
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(conv1x1(self.inplanes, planes * block.expansion, stride),
                                       norm_layer(planes * block.expansion))
        layers = [block(self.inplanes, planes, stride, downsample, self.groups, self.base_width, previous_dilation,
                        norm_layer, **self._block_options)]
        self.inplanes = planes * block.expansion
        for _ in range(1, blocks):
            layers.append(block(self.inplanes, planes, groups=self.groups, base_width=self.base_width,
                                dilation=self.dilation, norm_layer=norm_layer, **self._block_options))
        return nn.Sequential(*layers)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))  # (N, 64, H/4, W/4); CIFAR: (N, 64, H, W)
        x = self.layer1(x)
        x = self.layer2(x)
        x = self.layer3(x)
        x = self.layer4(x)  # (N, 512 * expansion, H/32, W/32)
        x = self.avgpool(x).flatten(1)  # (N, 512 * expansion)
        return self.fc(x)


def _resnet(block, layers, **kwargs):
    return ResNet(block, layers, **kwargs)


class ResNet18_Weights(WeightsEnum):
    IMAGENET1K_V1 = torchvision_weights("resnet18-f37072fd.pth", 11_689_512, _RECIPE, macs=1.8141e9)
    DEFAULT = IMAGENET1K_V1


@register_model(card=ModelCard(weights=ResNet18_Weights))
def resnet18(**kwargs):
    """ResNet-18 (He et al. 2016)."""
    return _resnet(BasicBlock, [2, 2, 2, 2], **kwargs)


class ResNet34_Weights(WeightsEnum):
    IMAGENET1K_V1 = torchvision_weights("resnet34-b627a593.pth", 21_797_672, _RECIPE)
    DEFAULT = IMAGENET1K_V1


@register_model(card=ModelCard(weights=ResNet34_Weights))
def resnet34(**kwargs):
    """ResNet-34 (He et al. 2016)."""
    return _resnet(BasicBlock, [3, 4, 6, 3], **kwargs)


class ResNet50_Weights(WeightsEnum):
    IMAGENET1K_V1 = torchvision_weights("resnet50-0676ba61.pth", 25_557_032, _RECIPE, macs=4.0892e9)
    DEFAULT = IMAGENET1K_V1


@register_model(card=ModelCard(weights=ResNet50_Weights))
def resnet50(**kwargs):
    """ResNet-50 (He et al. 2016; stride on the 3x3, torchvision's v1.5)."""
    return _resnet(Bottleneck, [3, 4, 6, 3], **kwargs)


class ResNet101_Weights(WeightsEnum):
    IMAGENET1K_V1 = torchvision_weights("resnet101-63fe2227.pth", 44_549_160, _RECIPE, macs=7.8014e9)
    DEFAULT = IMAGENET1K_V1


@register_model(card=ModelCard(weights=ResNet101_Weights))
def resnet101(**kwargs):
    """ResNet-101 (He et al. 2016)."""
    return _resnet(Bottleneck, [3, 4, 23, 3], **kwargs)


class ResNet152_Weights(WeightsEnum):
    IMAGENET1K_V1 = torchvision_weights("resnet152-394f9c45.pth", 60_192_808, _RECIPE, macs=11.5136e9)
    DEFAULT = IMAGENET1K_V1


@register_model(card=ModelCard(weights=ResNet152_Weights))
def resnet152(**kwargs):
    """ResNet-152 (He et al. 2016)."""
    return _resnet(Bottleneck, [3, 8, 36, 3], **kwargs)


class ResNeXt50_32X4D_Weights(WeightsEnum):
    IMAGENET1K_V1 = torchvision_weights("resnext50_32x4d-7cdf4587.pth", 25_028_904, _RECIPE_RESNEXT)
    DEFAULT = IMAGENET1K_V1


@register_model(card=ModelCard(weights=ResNeXt50_32X4D_Weights))
def resnext50_32x4d(**kwargs):
    """ResNeXt-50 32x4d (Xie et al. 2017): 32 groups of width 4 in the first stage."""
    return _resnet(Bottleneck, [3, 4, 6, 3], groups=32, width_per_group=4, **kwargs)


class ResNeXt101_32X8D_Weights(WeightsEnum):
    IMAGENET1K_V1 = torchvision_weights("resnext101_32x8d-8ba56ff5.pth", 88_791_336, _RECIPE_RESNEXT)
    DEFAULT = IMAGENET1K_V1


@register_model(card=ModelCard(weights=ResNeXt101_32X8D_Weights))
def resnext101_32x8d(**kwargs):
    """ResNeXt-101 32x8d (Xie et al. 2017)."""
    return _resnet(Bottleneck, [3, 4, 23, 3], groups=32, width_per_group=8, **kwargs)


class Wide_ResNet50_2_Weights(WeightsEnum):
    IMAGENET1K_V1 = torchvision_weights("wide_resnet50_2-95faca4d.pth", 68_883_240, _RECIPE_WIDE)
    DEFAULT = IMAGENET1K_V1


@register_model(card=ModelCard(weights=Wide_ResNet50_2_Weights))
def wide_resnet50_2(**kwargs):
    """Wide ResNet-50-2 (Zagoruyko & Komodakis 2016): bottleneck 3x3 twice as wide."""
    return _resnet(Bottleneck, [3, 4, 6, 3], width_per_group=64 * 2, **kwargs)
