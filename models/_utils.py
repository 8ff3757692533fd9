"""Building blocks shared by the zoo: channel rounding, Conv-BN-activation, squeeze-and-excitation, drop-path.

Names and state_dict keys follow torchvision (``torchvision/ops/misc.py``: ``Conv2dNormActivation``,
``SqueezeExcitation``; ``torchvision/ops/stochastic_depth.py``; ``torchvision/models/_utils.py``:
``_make_divisible``) and timm (``BatchNormAct2d``), so that their checkpoints load as they are.
"""
from __future__ import annotations

import numpy as np

from minidl import nn
from minidl.ops.stochastic_depth import StochasticDepth, stochastic_depth  # noqa: F401 (one copy, in minidl.ops)


def make_divisible(value, divisor=8, min_value=None, round_limit=0.9):
    """Round a channel count to the nearest multiple of ``divisor`` (torchvision's ``_make_divisible``).

    The result is never below ``min_value`` (default: ``divisor``) and never more than 10% below
    ``value``: rounding 0.35 * 32 = 11.2 gives 8, which would drop 29%, so it goes up to 16.

    >>> make_divisible(32 * 0.35), make_divisible(24 * 1.4), make_divisible(1280 * 1.3)
    (16, 32, 1664)
    """
    if divisor <= 0:
        raise ValueError(f"make_divisible: divisor must be a positive int, got {divisor}")
    min_value = divisor if min_value is None else min_value
    new_value = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if new_value < round_limit * value:  # rounding down must not remove more than 10%
        new_value += divisor
    return new_value


def _inplace(activation_layer):
    """``activation_layer(inplace=True)`` where it takes the option (as torchvision and timm build them).

    An in-place ReLU/ReLU6 right after a batch norm is fused into it (see ``F.relu``).
    """
    try:
        return activation_layer(inplace=True)
    except TypeError:
        return activation_layer()


class Conv2dNormActivation(nn.Sequential):
    """Conv2d -> BatchNorm2d -> activation, as torchvision's ``Conv2dNormActivation``.

    Children are numbered ``0`` (conv), ``1`` (norm), ``2`` (activation) so that the state_dict keys
    are ``<name>.0.weight``, ``<name>.1.running_mean``, ... as torchvision. Padding defaults to
    ``(kernel_size - 1) // 2 * dilation`` ("same" for odd kernels at stride 1); the convolution has a
    bias only when there is no norm layer (a bias before batch-norm is cancelled by its mean).
    """

    def __init__(self, in_channels, out_channels, kernel_size=3, stride=1, padding=None, groups=1,
                 norm_layer=nn.BatchNorm2d, activation_layer=nn.ReLU, dilation=1, bias=None):
        if padding is None:
            padding = (kernel_size - 1) // 2 * dilation
        if bias is None:
            bias = norm_layer is None
        layers = [nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=padding,
                            dilation=dilation, groups=groups, bias=bias)]
        if norm_layer is not None:
            layers.append(norm_layer(out_channels))
        if activation_layer is not None:
            layers.append(_inplace(activation_layer))  # in place, as torchvision: fused into the BN node
        super().__init__(*layers)
        self.out_channels = out_channels


class SqueezeExcitation(nn.Module):
    """Squeeze-and-excitation (Hu et al. 2018), as torchvision's ``SqueezeExcitation``.

    ``scale = sigmoid(fc2(act(fc1(mean_hw(x)))))`` with 1x1 convolutions ``fc1: C -> S`` and
    ``fc2: S -> C`` (both with bias), and the output is ``x * scale`` broadcast over H and W: each
    channel is re-weighted by a gate computed from the global context of all channels.
    """

    def __init__(self, input_channels, squeeze_channels, activation=nn.ReLU, scale_activation=nn.Sigmoid):
        super().__init__()
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(input_channels, squeeze_channels, 1)
        self.fc2 = nn.Conv2d(squeeze_channels, input_channels, 1)
        self.activation = activation()
        self.scale_activation = scale_activation()

    def forward(self, x):
        scale = self.avgpool(x)  # (N, C, 1, 1)
        scale = self.activation(self.fc1(scale))  # (N, S, 1, 1)
        scale = self.scale_activation(self.fc2(scale))  # (N, C, 1, 1)
        return x * scale


def drop_path(input, drop_prob=0.0, training=False):
    """timm's name for per-sample stochastic depth."""
    return stochastic_depth(input, drop_prob, "row", training)


class BatchNormAct2d(nn.BatchNorm2d):
    """Batch-norm followed by an activation in one module, as timm's ``BatchNormAct2d``.

    The state_dict is exactly a BatchNorm2d's (the activation has no parameters), which is what lets
    timm's pre-activation ResNet name its ``norm1`` "BN + ReLU" and still load plain BN weights.
    """

    def __init__(self, num_features, eps=1e-5, momentum=0.1, act_layer=nn.ReLU, apply_act=True):
        super().__init__(num_features, eps=eps, momentum=momentum)
        self.act = _inplace(act_layer) if apply_act else nn.Identity()

    def forward(self, x):
        return self.act(super().forward(x))


def init_conv_bn_(model, conv_mode="fan_out"):
    """He-normal convolutions (``kaiming_normal_(mode=conv_mode, nonlinearity="relu")``), zero conv biases,
    batch-norm weight 1 and bias 0: the initialisation torchvision's ResNet/MobileNet/EfficientNet use."""
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode=conv_mode, nonlinearity="relu")
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)


def num_parameters(model):
    """Total number of parameter elements, as ``sum(p.numel() for p in model.parameters())``."""
    return int(sum(np.prod(p.shape, dtype=np.int64) for p in model.parameters()))
