"""MobileNet v3 Large and Small, with torchvision's layout and names.

Howard et al. 2019, "Searching for MobileNetV3". The blocks are MobileNet v2's inverted residuals
(1x1 expand -> k x k depthwise -> 1x1 linear projection, a residual where stride is 1 and widths agree)
with three changes found by architecture search: 5x5 depthwise kernels in places, a
squeeze-and-excitation gate after the depthwise convolution in some blocks (hard-sigmoid gate,
squeeze to ``make_divisible(expanded / 4)`` channels), and the hard-swish activation
``x * relu6(x + 3) / 6`` ("HS") in the deeper half instead of ReLU ("RE"). The last stage is
cheapened: a 1x1 convolution to 6x the last block's width, global pooling, then a hidden Linear layer
(1280 / 1024 units) with hard-swish, dropout and the classifier. Batch-norms use eps=0.001 and
momentum=0.01 (TensorFlow's defaults).

Parameters (torchvision, 1000 classes): mobilenet_v3_large 5,483,032; mobilenet_v3_small 2,542,856.
"""
from __future__ import annotations

import functools

from minidl import nn

from minidl.models._utils import Conv2dNormActivation, SqueezeExcitation, make_divisible
from minidl.models._api import ModelCard, WeightsEnum, torchvision_weights
from minidl.models.mobilenet import init_torchvision_mobilenet
from minidl.models.registry import register_model

# One row per block (Tables 1 and 2 of the paper):
#   in, kernel, expanded, out, squeeze-excite, activation, stride
_LARGE = (
    (16, 3, 16, 16, False, "RE", 1),
    (16, 3, 64, 24, False, "RE", 2),
    (24, 3, 72, 24, False, "RE", 1),
    (24, 5, 72, 40, True, "RE", 2),
    (40, 5, 120, 40, True, "RE", 1),
    (40, 5, 120, 40, True, "RE", 1),
    (40, 3, 240, 80, False, "HS", 2),
    (80, 3, 200, 80, False, "HS", 1),
    (80, 3, 184, 80, False, "HS", 1),
    (80, 3, 184, 80, False, "HS", 1),
    (80, 3, 480, 112, True, "HS", 1),
    (112, 3, 672, 112, True, "HS", 1),
    (112, 5, 672, 160, True, "HS", 2),
    (160, 5, 960, 160, True, "HS", 1),
    (160, 5, 960, 160, True, "HS", 1),
)
_SMALL = (
    (16, 3, 16, 16, True, "RE", 2),
    (16, 3, 72, 24, False, "RE", 2),
    (24, 3, 88, 24, False, "RE", 1),
    (24, 5, 96, 40, True, "HS", 2),
    (40, 5, 240, 40, True, "HS", 1),
    (40, 5, 240, 40, True, "HS", 1),
    (40, 5, 120, 48, True, "HS", 1),
    (48, 5, 144, 48, True, "HS", 1),
    (48, 5, 288, 96, True, "HS", 2),
    (96, 5, 576, 96, True, "HS", 1),
    (96, 5, 576, 96, True, "HS", 1),
)
_ACTIVATIONS = {"RE": nn.ReLU, "HS": nn.Hardswish}


class InvertedResidual(nn.Module):
    """[1x1 expand -> BN-act] -> kxk depthwise -> BN-act -> [SE] -> 1x1 project -> BN (no activation).

    The expansion is left out when ``expanded == in`` (the first block). ``x + block(x)`` where stride is 1
    and ``in == out``.
    """

    def __init__(self, in_chs, kernel, expanded, out_chs, use_se, activation, stride, norm_layer):
        super().__init__()
        if stride not in (1, 2):
            raise ValueError(f"InvertedResidual: stride must be 1 or 2, got {stride}")
        self.use_res_connect = stride == 1 and in_chs == out_chs
        act = _ACTIVATIONS[activation]
        layers = []
        if expanded != in_chs:
            layers.append(Conv2dNormActivation(in_chs, expanded, kernel_size=1, norm_layer=norm_layer,
                                               activation_layer=act))
        layers.append(Conv2dNormActivation(expanded, expanded, kernel_size=kernel, stride=stride, groups=expanded,
                                           norm_layer=norm_layer, activation_layer=act))
        if use_se:
            layers.append(SqueezeExcitation(expanded, make_divisible(expanded // 4, 8),
                                            scale_activation=nn.Hardsigmoid))
        layers.append(Conv2dNormActivation(expanded, out_chs, kernel_size=1, norm_layer=norm_layer,
                                           activation_layer=None))
        self.block = nn.Sequential(*layers)
        self.out_channels = out_chs

    def forward(self, x):
        out = self.block(x)
        if self.use_res_connect:
            out = out + x
        return out


class MobileNetV3(nn.Module):
    """MobileNet v3 from a block table (``_LARGE`` / ``_SMALL``); ``width_mult`` scales the channels."""

    def __init__(self, settings, last_channel, num_classes=1000, width_mult=1.0, dropout=0.2, in_channels=3):
        super().__init__()
        if width_mult <= 0:
            raise ValueError(f"MobileNetV3: width_mult must be positive, got {width_mult}")
        norm_layer = functools.partial(nn.BatchNorm2d, eps=0.001, momentum=0.01)

        def width(c):
            return make_divisible(c * width_mult, 8)

        first = width(settings[0][0])
        layers = [Conv2dNormActivation(in_channels, first, kernel_size=3, stride=2, norm_layer=norm_layer,
                                       activation_layer=nn.Hardswish)]
        for in_chs, kernel, expanded, out_chs, use_se, activation, stride in settings:
            layers.append(InvertedResidual(width(in_chs), kernel, width(expanded), width(out_chs), use_se, activation,
                                           stride, norm_layer))
        last_in = width(settings[-1][3])
        last_out = 6 * last_in
        layers.append(Conv2dNormActivation(last_in, last_out, kernel_size=1, norm_layer=norm_layer,
                                           activation_layer=nn.Hardswish))
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Linear(last_out, last_channel), nn.Hardswish(inplace=True),
                                        nn.Dropout(p=dropout), nn.Linear(last_channel, num_classes))

        # torchvision's initialisation: He-normal (fan_out) convs, BN 1/0, Linear N(0, 0.01), zero biases
        init_torchvision_mobilenet(self)

    def forward(self, x):
        x = self.features(x)  # (N, 6 * last block width, H/32, W/32)
        x = self.avgpool(x).flatten(1)  # (N, 960) large / (N, 576) small
        return self.classifier(x)


_RECIPE = "https://github.com/pytorch/vision/tree/main/references/classification#mobilenetv3-large--small"


class MobileNet_V3_Large_Weights(WeightsEnum):
    # torchvision's IMAGENET1K_V2 (resized to 232, mobilenet_v3_large-5c1a4163.pth) is not recorded here
    IMAGENET1K_V1 = torchvision_weights("mobilenet_v3_large-8738ca79.pth", 5_483_032, _RECIPE, macs=0.2166e9)
    DEFAULT = IMAGENET1K_V1


@register_model(card=ModelCard(weights=MobileNet_V3_Large_Weights))
def mobilenet_v3_large(**kwargs):
    """MobileNet v3 Large (Howard et al. 2019, Table 1)."""
    return MobileNetV3(_LARGE, 1280, **kwargs)


class MobileNet_V3_Small_Weights(WeightsEnum):
    IMAGENET1K_V1 = torchvision_weights("mobilenet_v3_small-047dcff4.pth", 2_542_856, _RECIPE, macs=0.0565e9)
    DEFAULT = IMAGENET1K_V1


@register_model(card=ModelCard(weights=MobileNet_V3_Small_Weights))
def mobilenet_v3_small(**kwargs):
    """MobileNet v3 Small (Howard et al. 2019, Table 2)."""
    return MobileNetV3(_SMALL, 1024, **kwargs)
