"""The CIFAR-10 ResNets of He et al., their plain twins, the residual-unit variants of ResNet v2, and the
deep pre-activation bottleneck ResNets.

He, Zhang, Ren & Sun 2016, "Deep Residual Learning for Image Recognition", sec. 4.2: a 3x3 convolution
of 16 channels on the 32x32 image, three stages of ``n`` basic blocks (two 3x3 convolutions) at 32x32,
16x16 and 8x8 with 16, 32 and 64 channels, global average pooling and a 10-way ``fc``: 6n + 2 layers.
The shortcuts are option A, parameter-free: where a stage halves the grid and doubles the width, the
identity takes every other pixel (``x[:, :, ::2, ::2]``) and pads the new channels with zeros
(``shortcut="B"``: a 1x1 convolution + BN projection there instead). Parameters (10 classes), as the
paper's Table 6 (0.27M / 0.46M / 0.66M / 0.85M / 1.7M):

======================  =====  =========
builder                 n      params
======================  =====  =========
resnet20_cifar          3        269,722
resnet32_cifar          5        464,154
resnet44_cifar          7        658,586
resnet56_cifar          9        853,018
resnet110_cifar         18     1,727,962
======================  =====  =========

``shortcut=False`` (``plain20_cifar`` ... ``plain110_cifar``) drops the additions: the "plain"
networks of the degradation experiment (Fig. 6: deeper plain nets train *worse*), same counts.

``unit=`` chooses the residual unit of He et al. 2016, "Identity Mappings in Deep Residual Networks",
Fig. 4 (``F`` = conv-BN-ReLU-conv-BN, ``s`` = the shortcut):

- ``"original"`` (a): ``relu(F(x) + s(x))``;
- ``"bn_after_add"`` (b): ``relu(BN(conv-BN-ReLU-conv(x) + s(x)))``;
- ``"relu_before_add"`` (c): ``ReLU(F(x)) + s(x)``;
- ``"relu_preact"`` (d): ``conv-BN-ReLU-conv-BN(ReLU(x)) + s(x)``, ReLU-only pre-activation;
- ``"full_preact"`` (e): ``conv(ReLU(BN(conv(ReLU(BN(x)))))) + s(x)``, full pre-activation.

The pre-activation units (d, e) leave the last unit's sum unrectified, so the network ends with a ReLU
(d) or BN-ReLU (e, ``final_bn``) before pooling; in (e) the stem is a bare convolution (the first unit
normalises it). All five have the counts above: (e) moves each unit's first BN to the unit's input,
which changes the width it normalises only in the two stage-entry units (16 and 32 channels instead of
32 and 64: -32 - 64 parameters), drops the stem BN (-32) and adds ``final_bn`` (+128): a net change of 0.

The pre-activation bottleneck ResNets of "Identity Mappings" sec. 4.3 (Table 2): three stages of
``n`` bottleneck units (BN-ReLU-1x1, BN-ReLU-3x3, BN-ReLU-1x1 expanding by 4) with 64, 128 and 256
output channels, 9n + 2 layers, built from ``minidl.models.preact_resnet.PreActResNet`` (the first
unit of each stage projects its shortcut with a 1x1 convolution of the pre-activated input).
Derived counts (10 classes): ``preact_resnet164_cifar`` (n = 18) 1,703,258 (the paper: 1.7M);
``preact_resnet1001_cifar`` (n = 111) 10,327,706 (the paper: 10.2M). MACs per 32x32 image (``minidl
summary``): resnet20 40.6 M, resnet32 68.9 M, resnet44 97.2 M, resnet56 125.5 M, resnet110 252.9 M
(the plain nets the same: option A costs nothing), preact164 247.6 M, preact1001 1.49 G.
"""
from __future__ import annotations

import minidl.nn.functional as F
from minidl import nn

from minidl.models._api import ModelCard, Preset, Recipe
from minidl.models.preact_resnet import PreActResNet
from minidl.models.registry import register_model

UNITS = ("original", "bn_after_add", "relu_before_add", "relu_preact", "full_preact")
CIFAR_PRESET = Preset(32, 32, mean=(0.4914, 0.4822, 0.4465), std=(0.2470, 0.2435, 0.2616))
# He et al. sec. 4.2: SGD, lr 0.1, momentum 0.9, weight decay 1e-4, batch 128, 164 epochs (64k iterations)
_RECIPE = Recipe(epochs=164, batch_size=128, lr=0.1, weight_decay=1e-4, augment=True)


def conv3x3(in_planes, out_planes, stride=1):
    """3x3 convolution, padding 1, no bias (a batch-norm follows or precedes)."""
    return nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=stride, padding=1, bias=False)


class PadShortcut(nn.Module):
    """Option A: subsample by ``stride`` and zero-pad the channels from ``in_planes`` to ``out_planes``."""

    def __init__(self, in_planes, out_planes, stride):
        super().__init__()
        self.stride = stride
        self.extra = out_planes - in_planes  # split evenly before and after the old channels

    def forward(self, x):
        x = x[:, :, ::self.stride, ::self.stride]  # (N, C, H/s, W/s)
        before = self.extra // 2
        return F.pad(x, (0, 0, 0, 0, before, self.extra - before))  # (N, C + extra, H/s, W/s)


class CifarBasicBlock(nn.Module):
    """Two 3x3 convolutions with batch-norms, a shortcut (A, B or none) and one of five unit layouts."""

    def __init__(self, in_planes, planes, stride=1, unit="original", shortcut="A"):
        super().__init__()
        if unit not in UNITS:
            raise ValueError(f"CifarBasicBlock: unit must be one of {', '.join(UNITS)}; got {unit!r}")
        self.unit = unit
        self.conv1 = conv3x3(in_planes, planes, stride)
        # full pre-activation normalises the unit's input (in_planes), the others conv1's output
        self.bn1 = nn.BatchNorm2d(in_planes if unit == "full_preact" else planes)
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = None
        if shortcut and (stride != 1 or in_planes != planes):
            if shortcut == "A":
                self.shortcut = PadShortcut(in_planes, planes, stride)
            else:
                self.shortcut = nn.Sequential(nn.Conv2d(in_planes, planes, 1, stride=stride, bias=False),
                                              nn.BatchNorm2d(planes))
        self.residual = bool(shortcut)

    def _branch(self, x):
        """The residual branch F(x) of each layout (for (b) without its final BN, applied after the sum)."""
        if self.unit == "full_preact":
            return self.conv2(F.relu(self.bn2(self.conv1(F.relu(self.bn1(x))))))
        if self.unit == "relu_preact":
            return self.bn2(self.conv2(F.relu(self.bn1(self.conv1(F.relu(x))))))
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.conv2(out)
        return out if self.unit == "bn_after_add" else self.bn2(out)

    def forward(self, x):
        out = self._branch(x)  # (N, planes, H/s, W/s)
        if self.unit == "relu_before_add":
            out = F.relu(out)
        if self.residual:
            out = out + (x if self.shortcut is None else self.shortcut(x))
        if self.unit == "bn_after_add":
            out = self.bn2(out)
        if self.unit in ("original", "bn_after_add"):
            out = F.relu(out)
        return out


class CifarResNet(nn.Module):
    """The 6n + 2 layer CIFAR ResNet of He et al. 2016; ``unit``/``shortcut`` as in the module docstring."""

    def __init__(self, n, num_classes=10, unit="original", shortcut="A", in_channels=3, widths=(16, 32, 64)):
        super().__init__()
        if unit not in UNITS:
            raise ValueError(f"CifarResNet: unit must be one of {', '.join(UNITS)}; got {unit!r}")
        if shortcut not in ("A", "B", False, None):
            raise ValueError(f"CifarResNet: shortcut must be 'A', 'B' or False (plain net), got {shortcut!r}")
        self.unit = unit
        self.conv1 = conv3x3(in_channels, widths[0])
        # (e) starts with a bare convolution: the first unit's BN-ReLU follows it
        self.bn1 = None if unit == "full_preact" else nn.BatchNorm2d(widths[0])
        in_planes = widths[0]
        for i, planes in enumerate(widths):
            blocks = []
            for j in range(n):
                stride = 2 if i > 0 and j == 0 else 1
                blocks.append(CifarBasicBlock(in_planes, planes, stride, unit, shortcut))
                in_planes = planes
            setattr(self, f"layer{i + 1}", nn.Sequential(*blocks))
        self.final_bn = nn.BatchNorm2d(in_planes) if unit == "full_preact" else None
        self.fc = nn.Linear(in_planes, num_classes)
        for m in self.modules():  # He et al. 2015 initialisation (fan_in), BN 1 / 0
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x):
        x = self.conv1(x)  # (N, 16, 32, 32)
        if self.bn1 is not None:
            x = self.bn1(x)
            if self.unit != "relu_preact":  # (d): every unit starts with its own ReLU
                x = F.relu(x)
        x = self.layer3(self.layer2(self.layer1(x)))  # (N, 64, 8, 8)
        if self.final_bn is not None:
            x = self.final_bn(x)
        if self.unit in ("relu_preact", "full_preact"):
            x = F.relu(x)  # the last unit's sum is not rectified in (d) and (e)
        x = x.mean((2, 3))  # global average pooling: (N, 64)
        return self.fc(x)


def _card(num_params, macs):
    return ModelCard(num_params=num_params, macs=macs, input_size=(3, 32, 32), transforms=CIFAR_PRESET,
                     recipe=_RECIPE)


@register_model(card=_card(269_722, 40_551_040))
def resnet20_cifar(**kwargs):
    """ResNet-20 for CIFAR-10 (He et al. 2016, n = 3)."""
    return CifarResNet(3, **kwargs)


@register_model(card=_card(464_154, 68_862_592))
def resnet32_cifar(**kwargs):
    """ResNet-32 for CIFAR-10 (n = 5)."""
    return CifarResNet(5, **kwargs)


@register_model(card=_card(658_586, 97_174_144))
def resnet44_cifar(**kwargs):
    """ResNet-44 for CIFAR-10 (n = 7)."""
    return CifarResNet(7, **kwargs)


@register_model(card=_card(853_018, 125_485_696))
def resnet56_cifar(**kwargs):
    """ResNet-56 for CIFAR-10 (n = 9)."""
    return CifarResNet(9, **kwargs)


@register_model(card=_card(1_727_962, 252_887_680))
def resnet110_cifar(**kwargs):
    """ResNet-110 for CIFAR-10 (n = 18)."""
    return CifarResNet(18, **kwargs)


@register_model(card=_card(269_722, 40_551_040))
def plain20_cifar(**kwargs):
    """The 20-layer plain net of the degradation experiment (ResNet-20 without shortcuts)."""
    return CifarResNet(3, shortcut=False, **kwargs)


@register_model(card=_card(464_154, 68_862_592))
def plain32_cifar(**kwargs):
    """The 32-layer plain net."""
    return CifarResNet(5, shortcut=False, **kwargs)


@register_model(card=_card(658_586, 97_174_144))
def plain44_cifar(**kwargs):
    """The 44-layer plain net."""
    return CifarResNet(7, shortcut=False, **kwargs)


@register_model(card=_card(853_018, 125_485_696))
def plain56_cifar(**kwargs):
    """The 56-layer plain net (worse than plain20 on CIFAR-10 in He et al. Fig. 6)."""
    return CifarResNet(9, shortcut=False, **kwargs)


@register_model(card=_card(1_727_962, 252_887_680))
def plain110_cifar(**kwargs):
    """The 110-layer plain net."""
    return CifarResNet(18, shortcut=False, **kwargs)


def _preact_bottleneck_cifar(n, num_classes=10, **kwargs):
    return PreActResNet([n, n, n], channels=(64, 128, 256), stem_chs=16, cifar=True, num_classes=num_classes,
                        **kwargs)


@register_model(card=_card(1_703_258, 247_646_720))
def preact_resnet164_cifar(**kwargs):
    """Pre-activation bottleneck ResNet-164 for CIFAR (He et al. 2016b, n = 18; the paper: 1.7M)."""
    return _preact_bottleneck_cifar(18, **kwargs)


@register_model(card=_card(10_327_706, 1_490_995_712))
def preact_resnet1001_cifar(**kwargs):
    """Pre-activation bottleneck ResNet-1001 for CIFAR (n = 111; the paper: 10.2M)."""
    return _preact_bottleneck_cifar(111, **kwargs)
