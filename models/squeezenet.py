"""SqueezeNet 1.0 and 1.1, with torchvision's layout and names.

Iandola et al. 2016, "SqueezeNet: AlexNet-level accuracy with 50x fewer parameters and <0.5MB model
size". The network is built from Fire modules: a 1x1 "squeeze" convolution to few channels, then two
parallel "expand" convolutions (1x1 and 3x3) whose outputs are concatenated. There is no fully
connected layer: a 1x1 convolution to ``num_classes`` channels, ReLU and global average pooling give
the logits. Max-pooling uses ``ceil_mode=True`` (Caffe's rounding), as torchvision.

Version 1.1 (from the SqueezeNet repository, not the paper) starts with a 3x3/2 convolution of 64
channels instead of 7x7/2 of 96 and pools earlier: 2.4x fewer MACs at the same accuracy.

Parameters (torchvision, 1000 classes): squeezenet1_0 1,248,424; squeezenet1_1 1,235,496.
"""
from __future__ import annotations

from minidl import nn
from minidl.tensor import cat

from minidl.models._api import ModelCard, WeightsEnum, torchvision_weights
from minidl.models.registry import register_model



class Fire(nn.Module):
    """squeeze 1x1 -> ReLU, then expand 1x1 -> ReLU | expand 3x3 -> ReLU, concatenated on channels."""

    def __init__(self, inplanes, squeeze_planes, expand1x1_planes, expand3x3_planes):
        super().__init__()
        self.inplanes = inplanes
        self.squeeze = nn.Conv2d(inplanes, squeeze_planes, kernel_size=1)
        self.squeeze_activation = nn.ReLU(inplace=True)
        self.expand1x1 = nn.Conv2d(squeeze_planes, expand1x1_planes, kernel_size=1)
        self.expand1x1_activation = nn.ReLU(inplace=True)
        self.expand3x3 = nn.Conv2d(squeeze_planes, expand3x3_planes, kernel_size=3, padding=1)
        self.expand3x3_activation = nn.ReLU(inplace=True)

    def forward(self, x):
        x = self.squeeze_activation(self.squeeze(x))  # (N, s, H, W)
        return cat([self.expand1x1_activation(self.expand1x1(x)),  # (N, e1 + e3, H, W)
                    self.expand3x3_activation(self.expand3x3(x))], dim=1)


class SqueezeNet(nn.Module):
    """SqueezeNet ``version`` "1_0" or "1_1"; ``features`` then ``classifier`` (dropout, 1x1 conv, ReLU, pool)."""

    def __init__(self, version="1_0", num_classes=1000, dropout=0.5, in_channels=3):
        super().__init__()
        self.num_classes = num_classes

        def pool():
            return nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True)

        if version == "1_0":
            self.features = nn.Sequential(
                nn.Conv2d(in_channels, 96, kernel_size=7, stride=2), nn.ReLU(inplace=True), pool(),
                Fire(96, 16, 64, 64), Fire(128, 16, 64, 64), Fire(128, 32, 128, 128), pool(),
                Fire(256, 32, 128, 128), Fire(256, 48, 192, 192), Fire(384, 48, 192, 192), Fire(384, 64, 256, 256),
                pool(), Fire(512, 64, 256, 256))
        elif version == "1_1":
            self.features = nn.Sequential(
                nn.Conv2d(in_channels, 64, kernel_size=3, stride=2), nn.ReLU(inplace=True), pool(),
                Fire(64, 16, 64, 64), Fire(128, 16, 64, 64), pool(),
                Fire(128, 32, 128, 128), Fire(256, 32, 128, 128), pool(),
                Fire(256, 48, 192, 192), Fire(384, 48, 192, 192), Fire(384, 64, 256, 256), Fire(512, 64, 256, 256))
        else:
            raise ValueError(f"SqueezeNet: version must be '1_0' or '1_1', got {version!r}")
        final_conv = nn.Conv2d(512, num_classes, kernel_size=1)
        self.classifier = nn.Sequential(nn.Dropout(p=dropout), final_conv, nn.ReLU(inplace=True),
                                        nn.AdaptiveAvgPool2d((1, 1)))
        # torchvision's initialisation: the class convolution N(0, 0.01), the others He-uniform; zero biases
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                if m is final_conv:
                    nn.init.normal_(m.weight, mean=0.0, std=0.01)
                else:
                    nn.init.kaiming_uniform_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x):
        x = self.features(x)  # (N, 512, H', W')
        x = self.classifier(x)  # (N, classes, 1, 1)
        return x.flatten(1)


_RECIPE = "https://github.com/pytorch/vision/pull/49#issuecomment-277560717"


class SqueezeNet1_0_Weights(WeightsEnum):
    IMAGENET1K_V1 = torchvision_weights("squeezenet1_0-b66bff10.pth", 1_248_424, _RECIPE, macs=0.8189e9)
    DEFAULT = IMAGENET1K_V1


class SqueezeNet1_1_Weights(WeightsEnum):
    IMAGENET1K_V1 = torchvision_weights("squeezenet1_1-b8a52dc0.pth", 1_235_496, _RECIPE, macs=0.3492e9)
    DEFAULT = IMAGENET1K_V1


@register_model(card=ModelCard(num_params=1_248_424, macs=0.8189e9, weights=SqueezeNet1_0_Weights))
def squeezenet1_0(**kwargs):
    """SqueezeNet 1.0 (the paper's model, 7x7/2 stem of 96 channels)."""
    return SqueezeNet("1_0", **kwargs)


@register_model(card=ModelCard(num_params=1_235_496, macs=0.3492e9, weights=SqueezeNet1_1_Weights))
def squeezenet1_1(**kwargs):
    """SqueezeNet 1.1: 3x3/2 stem of 64 channels and earlier pooling, 2.4x cheaper than 1.0."""
    return SqueezeNet("1_1", **kwargs)
