"""ConvNeXt-T, laid out as torchvision's ``convnext.py``.

Liu et al. 2022, "A ConvNet for the 2020s": a ResNet modernised step by step towards a Vision
Transformer. A 4x4 stride-4 "patchify" stem; four stages of (96, 192, 384, 768) channels with
(3, 3, 9, 3) blocks, joined by a LayerNorm and a 2x2 stride-2 convolution; global average
pooling, LayerNorm and the classifier. Each block is

    x + stochastic_depth(layer_scale * pw2(GELU(pw1(LayerNorm(dwconv7x7(x))))))

a depthwise 7x7 convolution (one filter per channel: the spatial mixing of a self-attention layer
at a fraction of its cost), then an inverted bottleneck of two pointwise layers 4x wide, written
as ``nn.Linear`` on the channels-last tensor, with a per-channel ``layer_scale`` that starts at
1e-6 so that each block begins near the identity. LayerNorm normalises over the channels only
(``LayerNorm2d``: channels-last, then back). Stochastic depth grows linearly from 0 to 0.1.

Exact parameter count (torchvision, 1000 classes): 28,589,128; 4.46 G multiply-accumulates at
224x224 (torchvision's "4.456 GFLOPS").
"""
from __future__ import annotations

from functools import partial

from minidl import nn
from minidl.creation import ones
from minidl.ops import StochasticDepth

from minidl.models._api import ModelCard, Preset, WeightsEnum, torchvision_weights
from minidl.models._utils import Conv2dNormActivation
from minidl.models.registry import register_model

__all__ = ["CNBlock", "CNBlockConfig", "ConvNeXt", "ConvNeXt_Tiny_Weights", "LayerNorm2d", "Permute", "convnext_tiny"]


class Permute(nn.Module):
    """``x.permute(*dims)`` as a layer (torchvision's ``ops.misc.Permute``)."""

    def __init__(self, dims):
        super().__init__()
        self.dims = list(dims)

    def forward(self, x):
        return x.permute(*self.dims)

    def extra_repr(self):
        return f"dims={self.dims}"


class LayerNorm2d(nn.LayerNorm):
    """LayerNorm over the channels of an (N, C, H, W) tensor: each pixel's C values are normalised."""

    def forward(self, x):
        x = x.permute(0, 2, 3, 1)  # (N, H, W, C): the channels last, where LayerNorm normalises
        x = super().forward(x)
        return x.permute(0, 3, 1, 2)


class CNBlock(nn.Module):
    """dw 7x7 -> LayerNorm -> Linear(C, 4C) -> GELU -> Linear(4C, C), scaled per channel, plus the input."""

    def __init__(self, dim, layer_scale, stochastic_depth_prob, norm_layer=None):
        super().__init__()
        norm_layer = norm_layer or partial(nn.LayerNorm, eps=1e-6)
        self.block = nn.Sequential(
            nn.Conv2d(dim, dim, kernel_size=7, padding=3, groups=dim, bias=True),  # depthwise: groups = channels
            Permute([0, 2, 3, 1]),  # (N, H, W, C): the pointwise layers are Linear layers on the last dim
            norm_layer(dim),
            nn.Linear(dim, 4 * dim),
            nn.GELU(),
            nn.Linear(4 * dim, dim),
            Permute([0, 3, 1, 2]),
        )
        self.layer_scale = nn.Parameter(ones(dim, 1, 1) * layer_scale)
        self.stochastic_depth = StochasticDepth(stochastic_depth_prob, "row")

    def forward(self, input):
        result = self.layer_scale * self.block(input)
        return self.stochastic_depth(result) + input


class CNBlockConfig:
    """One stage: its width, the width of the downsampling layer after it (None for the last), its depth."""

    def __init__(self, input_channels, out_channels, num_layers):
        self.input_channels = input_channels
        self.out_channels = out_channels
        self.num_layers = num_layers

    def __repr__(self):
        return (f"CNBlockConfig(input_channels={self.input_channels}, out_channels={self.out_channels}, "
                f"num_layers={self.num_layers})")


class ConvNeXt(nn.Module):
    """Patchify stem, the CNBlock stages with their downsampling layers, pool, LayerNorm, Linear."""

    def __init__(self, block_setting, stochastic_depth_prob=0.0, layer_scale=1e-6, num_classes=1000, block=None,
                 norm_layer=None, in_channels=3):
        super().__init__()
        if not block_setting:
            raise ValueError("ConvNeXt: block_setting must not be empty")
        if not all(isinstance(s, CNBlockConfig) for s in block_setting):
            raise TypeError(f"ConvNeXt: block_setting must be a list of CNBlockConfig, got {block_setting!r}")
        block = block or CNBlock
        norm_layer = norm_layer or partial(LayerNorm2d, eps=1e-6)

        first = block_setting[0].input_channels
        layers = [Conv2dNormActivation(in_channels, first, kernel_size=4, stride=4, padding=0, norm_layer=norm_layer,
                                       activation_layer=None, bias=True)]
        total_stage_blocks = sum(cnf.num_layers for cnf in block_setting)
        stage_block_id = 0
        for cnf in block_setting:
            stage = []
            for _ in range(cnf.num_layers):
                # drop probability grows linearly from 0 (first block) to stochastic_depth_prob (last block)
                sd_prob = stochastic_depth_prob * stage_block_id / max(total_stage_blocks - 1.0, 1.0)
                stage.append(block(cnf.input_channels, layer_scale, sd_prob))
                stage_block_id += 1
            layers.append(nn.Sequential(*stage))
            if cnf.out_channels is not None:  # downsampling: LayerNorm, then 2x2 stride-2 conv
                layers.append(nn.Sequential(norm_layer(cnf.input_channels),
                                            nn.Conv2d(cnf.input_channels, cnf.out_channels, kernel_size=2, stride=2)))
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        last = block_setting[-1]
        last_channels = last.out_channels if last.out_channels is not None else last.input_channels
        self.classifier = nn.Sequential(norm_layer(last_channels), nn.Flatten(1), nn.Linear(last_channels, num_classes))

        for m in self.modules():  # torchvision's initialisation: truncated N(0, 0.02), zero biases
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def forward(self, x):
        x = self.features(x)  # (N, 768, H/32, W/32)
        x = self.avgpool(x)  # (N, 768, 1, 1)
        return self.classifier(x)


_RECIPE = "https://github.com/pytorch/vision/tree/main/references/classification#convnext"


class ConvNeXt_Tiny_Weights(WeightsEnum):
    IMAGENET1K_V1 = torchvision_weights("convnext_tiny-983f1562.pth", 28_589_128, _RECIPE, macs=4.456e9,
                                        transforms=Preset(236, 224))
    DEFAULT = IMAGENET1K_V1


@register_model(card=ModelCard(weights=ConvNeXt_Tiny_Weights))
def convnext_tiny(**kwargs):
    """ConvNeXt-T (Liu et al. 2022): stages of 96/192/384/768 channels, 3/3/9/3 blocks."""
    kwargs.setdefault("stochastic_depth_prob", 0.1)
    setting = [CNBlockConfig(96, 192, 3), CNBlockConfig(192, 384, 3), CNBlockConfig(384, 768, 9),
               CNBlockConfig(768, None, 3)]
    return ConvNeXt(setting, **kwargs)
