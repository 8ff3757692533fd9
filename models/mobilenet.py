"""MobileNet v1 (timm's names) and MobileNet v2 (torchvision's names).

MobileNet v1 (Howard et al. 2017): a 3x3 stride-2 stem and 13 depthwise-separable blocks (3x3
depthwise conv -> BN -> ReLU6, 1x1 pointwise conv -> BN -> ReLU6), no residuals. A depthwise-separable
layer with C channels in and out costs ``C * (9 + C)`` weights instead of ``9 C^2``. As timm's
``mobilenetv1_100`` (``_gen_mobilenet_v1`` in ``timm/models/efficientnet.py``): ``conv_stem``, ``bn1``,
``blocks.<stage>.<block>.{conv_dw, bn1, conv_pw, bn2}``, ``classifier``; channels rounded with
``make_divisible(c * width_mult, 8)``. Parameters (1000 classes): 1.0: 4,231,976 (timm
``mobilenetv1_100``); 0.75: 2,585,560; 0.5: 1,331,592; 0.25: 470,072.

``conv_mobilenet_v1`` is the paper's full-convolution baseline (Table 4, "Conv MobileNet": 71.7% top-1,
4866 M mult-adds, 29.3 M parameters): the same layers with every depthwise-separable pair replaced by one
3x3 convolution (``blocks.<stage>.<block>.{conv, bn}``). Its 29,294,088 parameters = 29,281,120 weights
(the paper's 29.3 M: 864 in the stem, 28,256,256 = sum of 9 C_in C_out over the 13 convolutions,
1,024,000 in the classifier) + 12,968 batch-norm scales and shifts and classifier biases. MACs at
224x224: 4,866,269,184 in the convolutions (the paper's 4866 M) + 1,024,000 in the classifier.

MobileNet v2 (Sandler et al. 2018): inverted residual blocks (1x1 expand by t -> ReLU6, 3x3
depthwise -> ReLU6, 1x1 linear projection), a residual where stride is 1 and widths agree, as
torchvision's ``mobilenetv2.py`` (``features.<i>.conv.<j>``, ``classifier.1``). Parameters (1000
classes): 0.35: 1,677,128; 0.5: 1,968,680; 0.75: 2,636,424; 1.0: 3,504,872; 1.3: 5,386,792;
1.4: 6,108,776; 0.7 (not in the paper's table, used by the traffic-sign study): 2,481,384.

``mobilenet_v2(cifar=True)`` keeps every weight (same keys and counts) but makes the stem and the
first stride-2 stage (24 channels) stride 1: a 32x32 image ends at 4x4 instead of 1x1
(``mobilenet_v2(cifar=True, num_classes=10)``: 2,236,682 parameters).
"""
from __future__ import annotations

import math

import minidl.nn.functional as F
from minidl import nn

from minidl.models._utils import BatchNormAct2d, Conv2dNormActivation, make_divisible
from minidl.models._api import ModelCard, Preset, WeightsEnum, torchvision_weights
from minidl.models.registry import register_model

# mobilenet_v1's transforms: timm's mobilenetv1_100 config (crop_pct 0.95 at 224 -> resize 236, bicubic)


# ============================================================================ MobileNet v1
class DepthwiseSeparableConv(nn.Module):
    """3x3 depthwise conv -> BN-ReLU6 -> 1x1 pointwise conv -> BN-ReLU6 (timm's ``DepthwiseSeparableConv``
    with ``pw_act=True`` and no skip, the ``dsa`` block)."""

    def __init__(self, in_chs, out_chs, stride=1, dw_kernel_size=3):
        super().__init__()
        self.conv_dw = nn.Conv2d(in_chs, in_chs, dw_kernel_size, stride=stride, padding=(dw_kernel_size - 1) // 2,
                                 groups=in_chs, bias=False)
        self.bn1 = BatchNormAct2d(in_chs, act_layer=nn.ReLU6)
        self.conv_pw = nn.Conv2d(in_chs, out_chs, 1, bias=False)
        self.bn2 = BatchNormAct2d(out_chs, act_layer=nn.ReLU6)

    def forward(self, x):
        x = self.bn1(self.conv_dw(x))  # (N, C_in, H/s, W/s): one 3x3 filter per channel
        return self.bn2(self.conv_pw(x))  # (N, C_out, H/s, W/s): mixes channels


class FullConv(nn.Module):
    """3x3 convolution -> BN-ReLU6: the layer a depthwise-separable pair stands in for (Conv MobileNet)."""

    def __init__(self, in_chs, out_chs, stride=1):
        super().__init__()
        self.conv = nn.Conv2d(in_chs, out_chs, 3, stride=stride, padding=1, bias=False)
        self.bn = BatchNormAct2d(out_chs, act_layer=nn.ReLU6)

    def forward(self, x):
        return self.bn(self.conv(x))


def _init_weights_goog(model):
    """timm's ``efficientnet_init_weights`` (the TF reference): conv ~ N(0, 2 / fan_out) with
    ``fan_out = kh * kw * out / groups``; linear ~ U(-1/sqrt(out), 1/sqrt(out)); zero biases; BN 1, 0."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            fan_out = m.kernel_size[0] * m.kernel_size[1] * m.out_channels // m.groups
            nn.init.normal_(m.weight, 0.0, math.sqrt(2.0 / fan_out))
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            bound = 1.0 / math.sqrt(m.weight.shape[0])
            nn.init.uniform_(m.weight, -bound, bound)
            nn.init.zeros_(m.bias)


class MobileNetV1(nn.Module):
    """MobileNet v1; ``width_mult`` scales every layer's channels (the paper's alpha); ``full_conv`` replaces
    every depthwise-separable pair by a full 3x3 convolution (the paper's "Conv MobileNet" baseline)."""

    # out channels, blocks, stride of the first block: timm's arch_def 'dsa_r{n}_k3_s{s}_c{c}'
    stage_settings = (
        # c, n, s
        [64, 1, 1],
        [128, 2, 2],
        [256, 2, 2],
        [512, 6, 2],
        [1024, 2, 2],
    )

    def __init__(self, width_mult=1.0, num_classes=1000, dropout=0.0, in_channels=3, full_conv=False):
        super().__init__()
        if width_mult <= 0:
            raise ValueError(f"MobileNetV1: width_mult must be positive, got {width_mult}")
        stem_chs = make_divisible(32 * width_mult)
        self.conv_stem = nn.Conv2d(in_channels, stem_chs, 3, stride=2, padding=1, bias=False)
        self.bn1 = BatchNormAct2d(stem_chs, act_layer=nn.ReLU6)
        self.blocks = nn.Sequential()
        in_chs = stem_chs
        block_fn = FullConv if full_conv else DepthwiseSeparableConv
        for c, n, s in self.stage_settings:
            out_chs = make_divisible(c * width_mult)
            stage = nn.Sequential()
            for i in range(n):
                stage.append(block_fn(in_chs, out_chs, s if i == 0 else 1))
                in_chs = out_chs
            self.blocks.append(stage)
        self.num_features = in_chs
        self.global_pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = dropout
        self.classifier = nn.Linear(in_chs, num_classes)
        _init_weights_goog(self)

    def forward(self, x):
        x = self.bn1(self.conv_stem(x))  # (N, 32a, H/2, W/2)
        x = self.blocks(x)  # (N, 1024a, H/32, W/32)
        x = self.global_pool(x).flatten(1)  # (N, 1024a)
        x = F.dropout(x, self.dropout, self.training)
        return self.classifier(x)


@register_model(card=ModelCard(num_params=4_231_976, transforms=Preset(236, 224, interpolation="bicubic")))
def mobilenet_v1(width_mult=1.0, **kwargs):
    """MobileNet v1 at any width multiplier (default 1.0: timm's ``mobilenetv1_100``)."""
    return MobileNetV1(width_mult=width_mult, **kwargs)


@register_model(card=ModelCard(num_params=29_294_088, macs=4.8673e9))
def conv_mobilenet_v1(**kwargs):
    """The full-convolution baseline of the MobileNet paper (Table 4: 29.3 M parameters, 4866 M mult-adds)."""
    return MobileNetV1(full_conv=True, **kwargs)


@register_model(card=ModelCard())
def mobilenet_v1_075(**kwargs):
    """MobileNet v1 0.75 (2,585,560 parameters; the paper rounds to 2.6M)."""
    return MobileNetV1(width_mult=0.75, **kwargs)


@register_model(card=ModelCard())
def mobilenet_v1_050(**kwargs):
    """MobileNet v1 0.5 (1,331,592 parameters; the paper rounds to 1.3M)."""
    return MobileNetV1(width_mult=0.5, **kwargs)


@register_model(card=ModelCard())
def mobilenet_v1_025(**kwargs):
    """MobileNet v1 0.25 (470,072 parameters; the paper rounds to 0.5M)."""
    return MobileNetV1(width_mult=0.25, **kwargs)


# ============================================================================ MobileNet v2
class InvertedResidual(nn.Module):
    """1x1 expand (t x) -> BN-ReLU6 -> 3x3 depthwise -> BN-ReLU6 -> 1x1 project -> BN (linear bottleneck).

    The projection has no activation: ReLU in the narrow bottleneck would destroy information
    (Sandler et al. 2018, sec. 3.2). ``x + block(x)`` where stride is 1 and ``inp == oup``.
    """

    def __init__(self, inp, oup, stride, expand_ratio, norm_layer=None):
        super().__init__()
        if stride not in (1, 2):
            raise ValueError(f"InvertedResidual: stride must be 1 or 2, got {stride}")
        norm_layer = norm_layer or nn.BatchNorm2d
        self.stride = stride
        hidden_dim = int(round(inp * expand_ratio))
        self.use_res_connect = stride == 1 and inp == oup
        layers = []
        if expand_ratio != 1:
            layers.append(Conv2dNormActivation(inp, hidden_dim, kernel_size=1, norm_layer=norm_layer,
                                               activation_layer=nn.ReLU6))
        layers += [
            Conv2dNormActivation(hidden_dim, hidden_dim, stride=stride, groups=hidden_dim, norm_layer=norm_layer,
                                 activation_layer=nn.ReLU6),
            nn.Conv2d(hidden_dim, oup, 1, 1, 0, bias=False),
            norm_layer(oup),
        ]
        self.conv = nn.Sequential(*layers)
        self.out_channels = oup

    def forward(self, x):
        if self.use_res_connect:
            return x + self.conv(x)
        return self.conv(x)


class MobileNetV2(nn.Module):
    """MobileNet v2 (torchvision's layout); ``width_mult`` scales channels, rounded to ``round_nearest``."""

    def __init__(self, num_classes=1000, width_mult=1.0, inverted_residual_setting=None, round_nearest=8,
                 norm_layer=None, dropout=0.2, cifar=False, in_channels=3):
        super().__init__()
        if width_mult <= 0:
            raise ValueError(f"MobileNetV2: width_mult must be positive, got {width_mult}")
        norm_layer = norm_layer or nn.BatchNorm2d
        input_channel = 32
        last_channel = 1280
        if inverted_residual_setting is None:
            inverted_residual_setting = [
                # t, c, n, s
                [1, 16, 1, 1],
                [6, 24, 2, 2],
                [6, 32, 3, 2],
                [6, 64, 4, 2],
                [6, 96, 3, 1],
                [6, 160, 3, 2],
                [6, 320, 1, 1],
            ]
        if len(inverted_residual_setting) == 0 or any(len(row) != 4 for row in inverted_residual_setting):
            raise ValueError(f"MobileNetV2: inverted_residual_setting must be a non-empty list of [t, c, n, s] rows, "
                             f"got {inverted_residual_setting!r}")
        if cifar:  # stride 1 in the stem and in the first strided stage: 32x32 -> 4x4 at the end
            inverted_residual_setting = [list(row) for row in inverted_residual_setting]
            first_strided = next(i for i, row in enumerate(inverted_residual_setting) if row[3] == 2)
            inverted_residual_setting[first_strided][3] = 1

        input_channel = make_divisible(input_channel * width_mult, round_nearest)
        # the last layer only grows with the width, never shrinks below 1280
        self.last_channel = make_divisible(last_channel * max(1.0, width_mult), round_nearest)
        features = [Conv2dNormActivation(in_channels, input_channel, stride=1 if cifar else 2, norm_layer=norm_layer,
                                         activation_layer=nn.ReLU6)]
        for t, c, n, s in inverted_residual_setting:
            output_channel = make_divisible(c * width_mult, round_nearest)
            for i in range(n):
                stride = s if i == 0 else 1
                features.append(InvertedResidual(input_channel, output_channel, stride, expand_ratio=t,
                                                 norm_layer=norm_layer))
                input_channel = output_channel
        features.append(Conv2dNormActivation(input_channel, self.last_channel, kernel_size=1, norm_layer=norm_layer,
                                             activation_layer=nn.ReLU6))
        self.features = nn.Sequential(*features)
        self.classifier = nn.Sequential(nn.Dropout(p=dropout), nn.Linear(self.last_channel, num_classes))

        # torchvision's initialisation: He-normal (fan_out) convs, BN 1/0, classifier N(0, 0.01)
        init_torchvision_mobilenet(self)

    def forward(self, x):
        x = self.features(x)  # (N, last_channel, H/32, W/32)
        x = F.adaptive_avg_pool2d(x, (1, 1)).flatten(1)  # (N, last_channel)
        return self.classifier(x)


class MobileNet_V2_Weights(WeightsEnum):
    # torchvision's IMAGENET1K_V2 (resized to 232, mobilenet_v2-7ebf99e0.pth) is not recorded here
    IMAGENET1K_V1 = torchvision_weights(
        "mobilenet_v2-b0353104.pth", 3_504_872, macs=0.3008e9,
        recipe="https://github.com/pytorch/vision/tree/main/references/classification#mobilenetv2")
    DEFAULT = IMAGENET1K_V1


@register_model(card=ModelCard(weights=MobileNet_V2_Weights))
def mobilenet_v2(width_mult=1.0, round_nearest=8, **kwargs):
    """MobileNet v2 (Sandler et al. 2018) at any width; ``cifar=True`` for 32x32 inputs."""
    return MobileNetV2(width_mult=width_mult, round_nearest=round_nearest, **kwargs)


def init_torchvision_mobilenet(model):
    """torchvision's MobileNet v2/v3 initialisation: He-normal (fan_out) convs, BN 1/0, Linear N(0, 0.01), zero biases."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0, 0.01)
            nn.init.zeros_(m.bias)
