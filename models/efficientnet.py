"""EfficientNet B0-B7, laid out as torchvision's ``efficientnet.py``.

Tan & Le 2019, "EfficientNet: Rethinking Model Scaling for Convolutional Neural Networks". The B0
network is a stack of MBConv blocks (MobileNet v2's inverted residual with squeeze-and-excitation and
SiLU); B1-B7 scale it by compound coefficients: channels by ``width_mult`` (rounded to multiples of
8), block repeats by ``ceil(n * depth_mult)``, with more dropout before the classifier. Residual
branches are dropped per sample with a probability that grows linearly with depth, from 0 to
``stochastic_depth_prob`` = 0.2 (stochastic depth, active only in training).

Exact parameter counts (torchvision, 1000 classes): B0 5,288,548; B1 7,794,184; B2 9,109,994;
B3 12,233,232; B4 19,341,616; B5 30,389,784; B6 43,040,704; B7 66,347,960. B5-B7 use batch-norm with
eps=1e-3, momentum=0.01 (the TF reference values), as torchvision.
"""
from __future__ import annotations

import copy
import math
from functools import partial

from minidl import nn

from minidl.models._utils import (
    Conv2dNormActivation,
    SqueezeExcitation,
    StochasticDepth,
    make_divisible,
)
from minidl.models._api import ModelCard, Preset
from minidl.models.registry import register_model

# transforms: the preprocessing of torchvision's EfficientNet B0-B7 IMAGENET1K_V1 weights (bicubic, own sizes)


class MBConvConfig:
    """One stage of the table: expand ratio, kernel, stride, in/out channels and repeats, after scaling."""

    def __init__(self, expand_ratio, kernel, stride, input_channels, out_channels, num_layers, width_mult=1.0,
                 depth_mult=1.0):
        self.expand_ratio = expand_ratio
        self.kernel = kernel
        self.stride = stride
        self.input_channels = self.adjust_channels(input_channels, width_mult)
        self.out_channels = self.adjust_channels(out_channels, width_mult)
        self.num_layers = self.adjust_depth(num_layers, depth_mult)

    @staticmethod
    def adjust_channels(channels, width_mult, min_value=None):
        return make_divisible(channels * width_mult, 8, min_value)

    @staticmethod
    def adjust_depth(num_layers, depth_mult):
        return int(math.ceil(num_layers * depth_mult))

    def __repr__(self):
        return (f"MBConvConfig(expand_ratio={self.expand_ratio}, kernel={self.kernel}, stride={self.stride}, "
                f"input_channels={self.input_channels}, out_channels={self.out_channels}, "
                f"num_layers={self.num_layers})")


class MBConv(nn.Module):
    """1x1 expand -> BN-SiLU -> kxk depthwise -> BN-SiLU -> squeeze-excite -> 1x1 project -> BN,
    plus ``stochastic_depth(branch) + x`` where stride is 1 and widths agree.

    The SE bottleneck has ``max(1, input_channels // 4)`` channels: a quarter of the block's *input*
    width, not of the expanded width (as the TF reference and torchvision).
    """

    def __init__(self, cnf, stochastic_depth_prob, norm_layer):
        super().__init__()
        if not 1 <= cnf.stride <= 2:
            raise ValueError(f"MBConv: stride must be 1 or 2, got {cnf.stride}")
        self.use_res_connect = cnf.stride == 1 and cnf.input_channels == cnf.out_channels
        layers = []
        expanded_channels = cnf.adjust_channels(cnf.input_channels, cnf.expand_ratio)
        if expanded_channels != cnf.input_channels:
            layers.append(Conv2dNormActivation(cnf.input_channels, expanded_channels, kernel_size=1,
                                               norm_layer=norm_layer, activation_layer=nn.SiLU))
        layers.append(Conv2dNormActivation(expanded_channels, expanded_channels, kernel_size=cnf.kernel,
                                           stride=cnf.stride, groups=expanded_channels, norm_layer=norm_layer,
                                           activation_layer=nn.SiLU))
        squeeze_channels = max(1, cnf.input_channels // 4)
        layers.append(SqueezeExcitation(expanded_channels, squeeze_channels, activation=nn.SiLU))
        layers.append(Conv2dNormActivation(expanded_channels, cnf.out_channels, kernel_size=1, norm_layer=norm_layer,
                                           activation_layer=None))
        self.block = nn.Sequential(*layers)
        self.stochastic_depth = StochasticDepth(stochastic_depth_prob, "row")
        self.out_channels = cnf.out_channels

    def forward(self, x):
        result = self.block(x)
        if self.use_res_connect:
            result = self.stochastic_depth(result)
            result = result + x
        return result


class EfficientNet(nn.Module):
    """Stem (3x3 stride 2, BN-SiLU), the MBConv stages, a 1x1 head to 4x the last width, pool, dropout, fc."""

    def __init__(self, inverted_residual_setting, dropout, stochastic_depth_prob=0.2, num_classes=1000,
                 norm_layer=None, last_channel=None, in_channels=3):
        super().__init__()
        if not inverted_residual_setting or not all(isinstance(c, MBConvConfig) for c in inverted_residual_setting):
            raise TypeError("EfficientNet: inverted_residual_setting must be a non-empty list of MBConvConfig, "
                            f"got {inverted_residual_setting!r}")
        norm_layer = norm_layer or nn.BatchNorm2d
        layers = []
        firstconv_output_channels = inverted_residual_setting[0].input_channels
        layers.append(Conv2dNormActivation(in_channels, firstconv_output_channels, kernel_size=3, stride=2,
                                           norm_layer=norm_layer, activation_layer=nn.SiLU))

        total_stage_blocks = sum(cnf.num_layers for cnf in inverted_residual_setting)
        stage_block_id = 0
        for cnf in inverted_residual_setting:
            stage = []
            for _ in range(cnf.num_layers):
                block_cnf = copy.copy(cnf)
                if stage:  # later blocks of a stage keep the width and the resolution
                    block_cnf.input_channels = block_cnf.out_channels
                    block_cnf.stride = 1
                # drop probability grows linearly with the block index (Huang et al. 2016)
                sd_prob = stochastic_depth_prob * float(stage_block_id) / total_stage_blocks
                stage.append(MBConv(block_cnf, sd_prob, norm_layer))
                stage_block_id += 1
            layers.append(nn.Sequential(*stage))

        lastconv_input_channels = inverted_residual_setting[-1].out_channels
        lastconv_output_channels = last_channel if last_channel is not None else 4 * lastconv_input_channels
        layers.append(Conv2dNormActivation(lastconv_input_channels, lastconv_output_channels, kernel_size=1,
                                           norm_layer=norm_layer, activation_layer=nn.SiLU))
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Dropout(p=dropout, inplace=True),
                                        nn.Linear(lastconv_output_channels, num_classes))

        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                init_range = 1.0 / math.sqrt(m.out_features)
                nn.init.uniform_(m.weight, -init_range, init_range)
                nn.init.zeros_(m.bias)

    def forward(self, x):
        x = self.features(x)  # (N, 4 * last stage width, H/32, W/32)
        x = self.avgpool(x).flatten(1)  # (N, 1280 * width)
        return self.classifier(x)


def _efficientnet_conf(width_mult, depth_mult):
    bneck_conf = partial(MBConvConfig, width_mult=width_mult, depth_mult=depth_mult)
    return [
        # expand ratio, kernel, stride, in, out, repeats (B0)
        bneck_conf(1, 3, 1, 32, 16, 1),
        bneck_conf(6, 3, 2, 16, 24, 2),
        bneck_conf(6, 5, 2, 24, 40, 2),
        bneck_conf(6, 3, 2, 40, 80, 3),
        bneck_conf(6, 5, 1, 80, 112, 3),
        bneck_conf(6, 5, 2, 112, 192, 4),
        bneck_conf(6, 3, 1, 192, 320, 1),
    ]


def _efficientnet(width_mult, depth_mult, dropout, norm_layer=None, **kwargs):
    return EfficientNet(_efficientnet_conf(width_mult, depth_mult), dropout, norm_layer=norm_layer, **kwargs)


# B5-B7: torchvision ports the TF batch-norm settings
_TF_BATCH_NORM = partial(nn.BatchNorm2d, eps=1e-3, momentum=0.01)


# (width_mult, depth_mult, resolution, dropout) per variant, from the paper's compound scaling
@register_model(card=ModelCard(num_params=5_288_548, macs=0.3858e9, input_size=(3, 224, 224),
                               transforms=Preset(256, 224, interpolation="bicubic")))
def efficientnet_b0(**kwargs):
    """EfficientNet-B0 (1.0, 1.0, 224, 0.2)."""
    return _efficientnet(1.0, 1.0, kwargs.pop("dropout", 0.2), **kwargs)


@register_model(card=ModelCard(num_params=7_794_184, input_size=(3, 240, 240),
                               transforms=Preset(256, 240, interpolation="bicubic")))
def efficientnet_b1(**kwargs):
    """EfficientNet-B1 (1.0, 1.1, 240, 0.2)."""
    return _efficientnet(1.0, 1.1, kwargs.pop("dropout", 0.2), **kwargs)


@register_model(card=ModelCard(num_params=9_109_994, input_size=(3, 260, 260),
                               transforms=Preset(288, 288, interpolation="bicubic")))
def efficientnet_b2(**kwargs):
    """EfficientNet-B2 (1.1, 1.2, 260, 0.3)."""
    return _efficientnet(1.1, 1.2, kwargs.pop("dropout", 0.3), **kwargs)


@register_model(card=ModelCard(num_params=12_233_232, input_size=(3, 300, 300),
                               transforms=Preset(320, 300, interpolation="bicubic")))
def efficientnet_b3(**kwargs):
    """EfficientNet-B3 (1.2, 1.4, 300, 0.3)."""
    return _efficientnet(1.2, 1.4, kwargs.pop("dropout", 0.3), **kwargs)


@register_model(card=ModelCard(num_params=19_341_616, input_size=(3, 380, 380),
                               transforms=Preset(384, 380, interpolation="bicubic")))
def efficientnet_b4(**kwargs):
    """EfficientNet-B4 (1.4, 1.8, 380, 0.4)."""
    return _efficientnet(1.4, 1.8, kwargs.pop("dropout", 0.4), **kwargs)


@register_model(card=ModelCard(num_params=30_389_784, input_size=(3, 456, 456),
                               transforms=Preset(456, 456, interpolation="bicubic")))
def efficientnet_b5(**kwargs):
    """EfficientNet-B5 (1.6, 2.2, 456, 0.4), TF batch-norm settings."""
    return _efficientnet(1.6, 2.2, kwargs.pop("dropout", 0.4), norm_layer=_TF_BATCH_NORM, **kwargs)


@register_model(card=ModelCard(num_params=43_040_704, input_size=(3, 528, 528),
                               transforms=Preset(528, 528, interpolation="bicubic")))
def efficientnet_b6(**kwargs):
    """EfficientNet-B6 (1.8, 2.6, 528, 0.5), TF batch-norm settings."""
    return _efficientnet(1.8, 2.6, kwargs.pop("dropout", 0.5), norm_layer=_TF_BATCH_NORM, **kwargs)


@register_model(card=ModelCard(num_params=66_347_960, input_size=(3, 600, 600),
                               transforms=Preset(600, 600, interpolation="bicubic")))
def efficientnet_b7(**kwargs):
    """EfficientNet-B7 (2.0, 3.1, 600, 0.5), TF batch-norm settings."""
    return _efficientnet(2.0, 3.1, kwargs.pop("dropout", 0.5), norm_layer=_TF_BATCH_NORM, **kwargs)
