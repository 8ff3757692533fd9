"""GoogLeNet / Inception v1 (Szegedy et al., "Going Deeper with Convolutions", CVPR 2015,
arXiv:1409.4842), with torchvision's layout, names and initialisation.

Nine Inception modules, each four parallel branches concatenated along channels: 1x1;
1x1 -> 3x3; 1x1 -> "5x5"; 3x3 max-pool -> 1x1 (paper table 1). Every convolution is
torchvision's ``BasicConv2d``: conv without bias, BatchNorm2d(eps=0.001), ReLU (the
batch-norm came with the TensorFlow port; the paper predates batch-norm).

torchvision's third branch uses a 3x3 kernel where the paper has 5x5 (torchvision issue
#906); that is the default here, so the counts and checkpoints match torchvision:
6,624,904 parameters without the auxiliary classifiers, 13,004,888 with them (the
default, ``aux_logits=True``). ``branch3_kernel_size=5`` gives the paper's 5x5 branch.

The two auxiliary classifiers (after inception4a and inception4d) run only in training
mode; the model then returns ``GoogLeNetOutputs(logits, aux_logits2, aux_logits1)``, and
``googlenet_loss`` adds 0.3 x each auxiliary loss to the main loss (paper, section 5).
In evaluation mode the model returns the logits alone.

>>> from minidl import models
>>> models.googlenet(aux_logits=False).num_parameters()
6624904
"""
from __future__ import annotations

from collections import namedtuple

from minidl.models._api import ModelCard
from minidl.models.registry import register_model

import minidl.nn.functional as F
from minidl import nn
from minidl.tensor import cat

GoogLeNetOutputs = namedtuple("GoogLeNetOutputs", ["logits", "aux_logits2", "aux_logits1"])

# Paper table 1, one row per Inception module:
# name, in, #1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj
INCEPTIONS = [
    ("inception3a", 192, 64, 96, 128, 16, 32, 32),
    ("inception3b", 256, 128, 128, 192, 32, 96, 64),
    ("inception4a", 480, 192, 96, 208, 16, 48, 64),
    ("inception4b", 512, 160, 112, 224, 24, 64, 64),
    ("inception4c", 512, 128, 128, 256, 24, 64, 64),
    ("inception4d", 512, 112, 144, 288, 32, 64, 64),
    ("inception4e", 528, 256, 160, 320, 32, 128, 128),
    ("inception5a", 832, 256, 160, 320, 32, 128, 128),
    ("inception5b", 832, 384, 192, 384, 48, 128, 128),
]

# ImageNet normalisation -> the (x - 0.5) / 0.5 normalisation the ported TensorFlow weights expect
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


def transform_imagenet_input(x):
    """Map an ImageNet-normalised batch to the [-1, 1] scaling of the TensorFlow checkpoints, per channel:
    x' = x * std / 0.5 + (mean - 0.5) / 0.5."""
    channels = [x[:, c:c + 1] * (_IMAGENET_STD[c] / 0.5) + (_IMAGENET_MEAN[c] - 0.5) / 0.5 for c in range(3)]
    return cat(channels, dim=1)


class BasicConv2d(nn.Module):
    """conv (no bias) -> BatchNorm2d(eps=0.001) -> ReLU."""

    def __init__(self, in_channels, out_channels, **kwargs):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, bias=False, **kwargs)
        self.bn = nn.BatchNorm2d(out_channels, eps=0.001)

    def forward(self, x):
        return F.relu(self.bn(self.conv(x)))


class Inception(nn.Module):
    """Four branches on the same input, concatenated: (N, ch1x1 + ch3x3 + ch5x5 + pool_proj, H, W)."""

    def __init__(self, in_channels, ch1x1, ch3x3red, ch3x3, ch5x5red, ch5x5, pool_proj, branch3_kernel_size=3):
        super().__init__()
        if branch3_kernel_size not in (3, 5):
            raise ValueError(f"Inception: branch3_kernel_size must be 3 (torchvision) or 5 (paper), "
                             f"got {branch3_kernel_size!r}")
        self.branch1 = BasicConv2d(in_channels, ch1x1, kernel_size=1)
        self.branch2 = nn.Sequential(
            BasicConv2d(in_channels, ch3x3red, kernel_size=1),
            BasicConv2d(ch3x3red, ch3x3, kernel_size=3, padding=1),
        )
        self.branch3 = nn.Sequential(
            BasicConv2d(in_channels, ch5x5red, kernel_size=1),
            BasicConv2d(ch5x5red, ch5x5, kernel_size=branch3_kernel_size, padding=branch3_kernel_size // 2),
        )
        self.branch4 = nn.Sequential(
            nn.MaxPool2d(kernel_size=3, stride=1, padding=1, ceil_mode=True),
            BasicConv2d(in_channels, pool_proj, kernel_size=1),
        )

    def forward(self, x):
        branch1 = self.branch1(x)
        branch2 = self.branch2(x)
        branch3 = self.branch3(x)
        branch4 = self.branch4(x)
        return cat([branch1, branch2, branch3, branch4], dim=1)


class InceptionAux(nn.Module):
    """Auxiliary classifier: adaptive avg-pool 4x4 -> 1x1 conv 128 -> fc 1024 -> ReLU -> dropout -> fc."""

    def __init__(self, in_channels, num_classes, dropout=0.7):
        super().__init__()
        self.conv = BasicConv2d(in_channels, 128, kernel_size=1)
        self.fc1 = nn.Linear(2048, 1024)
        self.fc2 = nn.Linear(1024, num_classes)
        self.dropout = nn.Dropout(p=dropout)

    def forward(self, x):
        x = F.adaptive_avg_pool2d(x, (4, 4))  # (N, C, 4, 4)
        x = self.conv(x)  # (N, 128, 4, 4)
        x = x.flatten(1)  # (N, 2048)
        x = F.relu(self.fc1(x))  # (N, 1024)
        x = self.dropout(x)
        return self.fc2(x)  # (N, num_classes)


class GoogLeNet(nn.Module):
    """GoogLeNet with torchvision's attribute names (conv1 ... inception5b, aux1, aux2, fc)."""

    # weight of each auxiliary loss, read by googlenet_loss and minidl.train.Trainer (paper, section 5)
    aux_weight = 0.3

    def __init__(self, num_classes=1000, aux_logits=True, transform_input=False, init_weights=True,
                 dropout=0.2, dropout_aux=0.7, branch3_kernel_size=3):
        super().__init__()
        self.aux_logits = aux_logits
        self.transform_input = transform_input

        self.conv1 = BasicConv2d(3, 64, kernel_size=7, stride=2, padding=3)
        self.maxpool1 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        self.conv2 = BasicConv2d(64, 64, kernel_size=1)
        self.conv3 = BasicConv2d(64, 192, kernel_size=3, padding=1)
        self.maxpool2 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        # Registration order matters for state_dict order: pools sit between the stages, as torchvision's.
        pools_after = {"inception3b": ("maxpool3", 3, 2), "inception4e": ("maxpool4", 2, 2)}
        for name, *channels in INCEPTIONS:
            setattr(self, name, Inception(*channels, branch3_kernel_size=branch3_kernel_size))
            if name in pools_after:
                pool_name, kernel, stride = pools_after[name]
                setattr(self, pool_name, nn.MaxPool2d(kernel, stride=stride, ceil_mode=True))

        if aux_logits:
            self.aux1 = InceptionAux(512, num_classes, dropout=dropout_aux)
            self.aux2 = InceptionAux(528, num_classes, dropout=dropout_aux)
        else:
            self.aux1 = None
            self.aux2 = None

        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.dropout = nn.Dropout(p=dropout)
        self.fc = nn.Linear(1024, num_classes)

        if init_weights:
            self._initialize_weights()

    def _initialize_weights(self):
        # torchvision: truncated normal (std 0.01, cut at +-2 absolute, i.e. effectively untruncated)
        # for every conv and Linear weight; Linear biases keep their default; batch-norm 1 and 0.
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.trunc_normal_(m.weight, mean=0.0, std=0.01, a=-2, b=2)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)

    def forward(self, x):
        if self.transform_input:
            x = transform_imagenet_input(x)
        x = self.conv1(x)  # (N, 64, 112, 112) at 224
        x = self.maxpool1(x)  # (N, 64, 56, 56)
        x = self.conv2(x)  # (N, 64, 56, 56)
        x = self.conv3(x)  # (N, 192, 56, 56)
        x = self.maxpool2(x)  # (N, 192, 28, 28)

        x = self.inception3a(x)  # (N, 256, 28, 28)
        x = self.inception3b(x)  # (N, 480, 28, 28)
        x = self.maxpool3(x)  # (N, 480, 14, 14)
        x = self.inception4a(x)  # (N, 512, 14, 14)
        aux1 = self.aux1(x) if self.aux1 is not None and self.training else None

        x = self.inception4b(x)  # (N, 512, 14, 14)
        x = self.inception4c(x)  # (N, 512, 14, 14)
        x = self.inception4d(x)  # (N, 528, 14, 14)
        aux2 = self.aux2(x) if self.aux2 is not None and self.training else None

        x = self.inception4e(x)  # (N, 832, 14, 14)
        x = self.maxpool4(x)  # (N, 832, 7, 7)
        x = self.inception5a(x)  # (N, 832, 7, 7)
        x = self.inception5b(x)  # (N, 1024, 7, 7)

        x = self.avgpool(x)  # (N, 1024, 1, 1)
        x = x.flatten(1)  # (N, 1024)
        x = self.dropout(x)
        x = self.fc(x)  # (N, num_classes)
        if self.training and self.aux_logits:
            return GoogLeNetOutputs(x, aux2, aux1)
        return x


def googlenet_loss(outputs, target, aux_weight=None, **cross_entropy_kwargs):
    """Training loss with the auxiliary classifiers: CE(logits) + 0.3 CE(aux1) + 0.3 CE(aux2).

    ``outputs`` is what the model returned: a ``GoogLeNetOutputs`` in training mode, or
    plain logits (then this is the cross-entropy alone). ``aux_weight`` defaults to
    ``GoogLeNet.aux_weight`` (0.3), the weight the Trainer uses too.
    """
    aux_weight = GoogLeNet.aux_weight if aux_weight is None else aux_weight
    if not isinstance(outputs, GoogLeNetOutputs):
        return F.cross_entropy(outputs, target, **cross_entropy_kwargs)
    loss = F.cross_entropy(outputs.logits, target, **cross_entropy_kwargs)
    for aux in (outputs.aux_logits1, outputs.aux_logits2):
        if aux is not None:
            loss = loss + aux_weight * F.cross_entropy(aux, target, **cross_entropy_kwargs)
    return loss


@register_model(card=ModelCard(num_params=13_004_888, macs=1.4984e9))
def googlenet(num_classes=1000, aux_logits=True, transform_input=False, init_weights=True, dropout=0.2,
              dropout_aux=0.7, branch3_kernel_size=3):
    """GoogLeNet (torchvision layout): 13,004,888 parameters with the aux classifiers, 6,624,904 without."""
    return GoogLeNet(num_classes=num_classes, aux_logits=aux_logits, transform_input=transform_input,
                     init_weights=init_weights, dropout=dropout, dropout_aux=dropout_aux,
                     branch3_kernel_size=branch3_kernel_size)
