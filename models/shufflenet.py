"""ShuffleNet v2, with torchvision's layout and names.

Ma et al. 2018, "ShuffleNet V2: Practical Guidelines for Efficient CNN Architecture Design". Each unit
splits its channels in two: at stride 1 one half passes through untouched and the other goes through
1x1 conv -> 3x3 depthwise conv -> 1x1 conv; at stride 2 both halves see the whole input (the left one
through a strided depthwise conv and a 1x1 conv), which doubles the channels. The halves are
concatenated and then *shuffled* (``channel_shuffle``) so that information crosses between the two
halves in the next unit.

Stages (Table 5 of the paper, out channels for 0.5x / 1.0x / 1.5x / 2.0x): conv1 24, stage2 (4 units)
48/116/176/244, stage3 (8 units) 96/232/352/488, stage4 (4 units) 192/464/704/976, conv5 1024 (2048 for
2.0x), global average pooling, fc. Parameters (torchvision, 1000 classes): x0_5 1,366,792; x1_0
2,278,604; x1_5 3,503,624; x2_0 7,393,996.
"""
from __future__ import annotations

from minidl import nn
from minidl.tensor import cat

from minidl.models._api import ModelCard
from minidl.models.registry import register_model


def channel_shuffle(x, groups):
    """Interleave the channels of ``groups`` groups: (N, g*k, H, W) -> (N, k, g, H, W) order, flattened back.

    Channel ``i*k + j`` of the input (group i, position j) becomes channel ``j*g + i``.
    """
    n, c, h, w = x.shape
    x = x.reshape(n, groups, c // groups, h, w)  # (N, g, k, H, W)
    x = x.transpose(1, 2)  # (N, k, g, H, W)
    return x.reshape(n, c, h, w)


def depthwise_conv(channels, kernel_size, stride=1, padding=0):
    """One ``kernel_size`` filter per channel, no bias (a batch-norm follows)."""
    return nn.Conv2d(channels, channels, kernel_size, stride=stride, padding=padding, bias=False, groups=channels)


class InvertedResidual(nn.Module):
    """The ShuffleNet v2 unit (Fig. 3c and 3d of the paper); ``oup`` output channels, half per branch."""

    def __init__(self, inp, oup, stride):
        super().__init__()
        if stride not in (1, 2, 3):
            raise ValueError(f"InvertedResidual: stride must be 1, 2 or 3, got {stride}")
        self.stride = stride
        branch_features = oup // 2
        if stride == 1 and inp != branch_features * 2:
            raise ValueError(f"InvertedResidual: at stride 1 the input has to be the output's width "
                             f"({inp} != {branch_features * 2})")
        if stride > 1:  # the left branch: strided depthwise 3x3 -> BN -> 1x1 -> BN -> ReLU
            self.branch1 = nn.Sequential(
                depthwise_conv(inp, 3, stride, 1), nn.BatchNorm2d(inp),
                nn.Conv2d(inp, branch_features, 1, bias=False), nn.BatchNorm2d(branch_features), nn.ReLU(inplace=True))
        else:  # the left half passes through
            self.branch1 = nn.Sequential()
        self.branch2 = nn.Sequential(
            nn.Conv2d(inp if stride > 1 else branch_features, branch_features, 1, bias=False),
            nn.BatchNorm2d(branch_features), nn.ReLU(inplace=True),
            depthwise_conv(branch_features, 3, stride, 1), nn.BatchNorm2d(branch_features),
            nn.Conv2d(branch_features, branch_features, 1, bias=False), nn.BatchNorm2d(branch_features),
            nn.ReLU(inplace=True))

    def forward(self, x):
        if self.stride == 1:
            x1, x2 = x.chunk(2, dim=1)  # (N, C/2, H, W) each
            out = cat([x1, self.branch2(x2)], dim=1)
        else:
            out = cat([self.branch1(x), self.branch2(x)], dim=1)  # (N, oup, H/s, W/s)
        return channel_shuffle(out, 2)


class ShuffleNetV2(nn.Module):
    """ShuffleNet v2: ``conv1``, ``maxpool``, ``stage2..4`` (``stages_repeats`` units each), ``conv5``, ``fc``."""

    def __init__(self, stages_repeats, stages_out_channels, num_classes=1000, in_channels=3):
        super().__init__()
        if len(stages_repeats) != 3:
            raise ValueError(f"ShuffleNetV2: stages_repeats must have 3 entries, got {stages_repeats!r}")
        if len(stages_out_channels) != 5:
            raise ValueError(f"ShuffleNetV2: stages_out_channels must have 5 entries, got {stages_out_channels!r}")
        self._stage_out_channels = list(stages_out_channels)
        output_channels = stages_out_channels[0]
        self.conv1 = nn.Sequential(nn.Conv2d(in_channels, output_channels, 3, 2, 1, bias=False),
                                   nn.BatchNorm2d(output_channels), nn.ReLU(inplace=True))
        input_channels = output_channels
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        for name, repeats, output_channels in zip(("stage2", "stage3", "stage4"), stages_repeats,
                                                  stages_out_channels[1:]):
            units = [InvertedResidual(input_channels, output_channels, 2)]
            units += [InvertedResidual(output_channels, output_channels, 1) for _ in range(repeats - 1)]
            setattr(self, name, nn.Sequential(*units))
            input_channels = output_channels
        output_channels = stages_out_channels[-1]
        self.conv5 = nn.Sequential(nn.Conv2d(input_channels, output_channels, 1, 1, 0, bias=False),
                                   nn.BatchNorm2d(output_channels), nn.ReLU(inplace=True))
        self.fc = nn.Linear(output_channels, num_classes)

    def forward(self, x):
        x = self.maxpool(self.conv1(x))  # (N, 24, H/4, W/4)
        x = self.stage2(x)  # (N, c2, H/8, W/8)
        x = self.stage3(x)  # (N, c3, H/16, W/16)
        x = self.stage4(x)  # (N, c4, H/32, W/32)
        x = self.conv5(x)  # (N, 1024, H/32, W/32)
        x = x.mean((2, 3))  # global average pooling
        return self.fc(x)


_REPEATS = [4, 8, 4]


@register_model(card=ModelCard(num_params=1_366_792, macs=0.0405e9))
def shufflenet_v2_x0_5(**kwargs):
    """ShuffleNet v2 0.5x."""
    return ShuffleNetV2(_REPEATS, [24, 48, 96, 192, 1024], **kwargs)


@register_model(card=ModelCard(num_params=2_278_604, macs=0.1449e9))
def shufflenet_v2_x1_0(**kwargs):
    """ShuffleNet v2 1.0x (the paper: 146 MFLOPs, 2.3M parameters)."""
    return ShuffleNetV2(_REPEATS, [24, 116, 232, 464, 1024], **kwargs)


@register_model(card=ModelCard(num_params=3_503_624, macs=0.2958e9))
def shufflenet_v2_x1_5(**kwargs):
    """ShuffleNet v2 1.5x."""
    return ShuffleNetV2(_REPEATS, [24, 176, 352, 704, 1024], **kwargs)


@register_model(card=ModelCard(num_params=7_393_996, macs=0.5833e9))
def shufflenet_v2_x2_0(**kwargs):
    """ShuffleNet v2 2.0x (conv5 of 2048 channels)."""
    return ShuffleNetV2(_REPEATS, [24, 244, 488, 976, 2048], **kwargs)
