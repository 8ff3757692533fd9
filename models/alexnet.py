"""AlexNet (Krizhevsky, Sutskever & Hinton, "ImageNet Classification with Deep Convolutional
Neural Networks", NeurIPS 2012; Krizhevsky, "One weird trick for parallelizing convolutional
neural networks", arXiv:1404.5997, 2014).

Three builders:

- ``alexnet``: torchvision's layout (the "one weird trick" channels 64-192-384-256-256,
  adaptive average pooling to 6x6, classifier 9216-4096-4096-classes with dropout before
  the first two Linear layers). 61,100,840 parameters (57,044,810 with 10 classes); the
  attribute names and state_dict keys are torchvision's (``features.0.weight`` ...
  ``classifier.6.bias``), so its checkpoints load as they are.
- ``alexnet_bn``: the course variant with batch-norm after every convolution (shared/seeds/004):
  96-256-384-384-256 channels, conv1 11x11 stride 4 padding 2, no adaptive pooling
  (224x224 input only), fc 9216-4096-4096-10. 58,325,066 parameters with 10 classes.
  Names as the course's code: conv1..conv5 (Sequential: conv, bn, relu[, pool]) and
  fc1..fc3.
- ``alexnet_lrn``: the 2012 paper's network: the same 96-256-384-384-256 layout with
  local response normalisation (size 5, alpha 1e-4, beta 0.75, k 2) after the ReLUs of
  conv1 and conv2, and conv2, conv4 and conv5 split in two groups as on the paper's two
  GPUs. 60,965,224 parameters with 1000 classes (the paper's "60 million"); with
  ``groups=1`` 62,378,344.

>>> from minidl import models
>>> models.alexnet(num_classes=10).num_parameters()
57044810
"""
from __future__ import annotations

from minidl import nn

from minidl.models._api import ModelCard, WeightsEnum, torchvision_weights
from minidl.models.registry import register_model

# Course / paper feature extractor, one row per convolution:
# out channels, kernel, stride, padding, max-pool after it, split into the paper's two groups
PAPER_CONVS = [
    (96, 11, 4, 2, True, False),
    (256, 5, 1, 2, True, True),
    (384, 3, 1, 1, False, False),
    (384, 3, 1, 1, False, True),
    (256, 3, 1, 1, True, True),
]


class AlexNet(nn.Module):
    """torchvision's AlexNet: ``features``, ``avgpool`` (adaptive 6x6), ``classifier``."""

    def __init__(self, num_classes=1000, dropout=0.5):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 64, kernel_size=11, stride=4, padding=2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(64, 192, kernel_size=5, padding=2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(192, 384, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(384, 256, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(256, 256, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
        )
        # Adaptive pooling makes the classifier independent of the input size (63x63 and up).
        self.avgpool = nn.AdaptiveAvgPool2d((6, 6))
        self.classifier = nn.Sequential(
            nn.Dropout(p=dropout),
            nn.Linear(256 * 6 * 6, 4096),
            nn.ReLU(inplace=True),
            nn.Dropout(p=dropout),
            nn.Linear(4096, 4096),
            nn.ReLU(inplace=True),
            nn.Linear(4096, num_classes),
        )

    def forward(self, x):
        x = self.features(x)  # (N, 256, H', W')
        x = self.avgpool(x)  # (N, 256, 6, 6)
        x = x.flatten(1)  # (N, 9216)
        return self.classifier(x)  # (N, num_classes)


class AlexNetV1(nn.Module):
    """The 96-256-384-384-256 AlexNet of the paper and the course, with a choice of normalisation.

    Args:
        num_classes: outputs of fc3.
        norm: ``"batch"`` (BatchNorm2d after each convolution, the course variant),
            ``"lrn"`` (local response normalisation after the ReLUs of conv1 and conv2, the
            paper) or ``"none"``.
        groups: 2 splits conv2, conv4 and conv5 into two halves that see only their own
            half of the input channels (the paper's two-GPU network); 1 for dense convolutions.
        dropout: drop probability before fc1 and fc2.

    The classifier expects 256x6x6 features: a 224x224 (or 227x227) input.
    """

    def __init__(self, num_classes=10, norm="batch", groups=1, dropout=0.5):
        super().__init__()
        if norm not in ("batch", "lrn", "none"):
            raise ValueError(f"AlexNetV1: norm must be 'batch', 'lrn' or 'none', got {norm!r}")
        if groups not in (1, 2):
            raise ValueError(f"AlexNetV1: groups must be 1 or 2, got {groups!r}")
        in_channels = 3
        for index, (out, kernel, stride, padding, pool, split) in enumerate(PAPER_CONVS, start=1):
            layers = [nn.Conv2d(in_channels, out, kernel_size=kernel, stride=stride, padding=padding,
                                groups=groups if split else 1)]
            if norm == "batch":
                layers.append(nn.BatchNorm2d(out))
            layers.append(nn.ReLU())
            if norm == "lrn" and index <= 2:
                # Krizhevsky et al. 2012, section 3.3: k=2, n=5, alpha=1e-4, beta=0.75
                layers.append(nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=2.0))
            if pool:
                layers.append(nn.MaxPool2d(kernel_size=3, stride=2))  # overlapping pooling (section 3.4)
            setattr(self, f"conv{index}", nn.Sequential(*layers))
            in_channels = out
        self.fc1 = nn.Sequential(nn.Dropout(dropout), nn.Linear(9216, 4096), nn.ReLU())
        self.fc2 = nn.Sequential(nn.Dropout(dropout), nn.Linear(4096, 4096), nn.ReLU())
        self.fc3 = nn.Sequential(nn.Linear(4096, num_classes))

    def forward(self, x):
        out = self.conv1(x)  # (N, 96, 27, 27) at 224
        out = self.conv2(out)  # (N, 256, 13, 13)
        out = self.conv3(out)  # (N, 384, 13, 13)
        out = self.conv4(out)  # (N, 384, 13, 13)
        out = self.conv5(out)  # (N, 256, 6, 6)
        if out.shape[1:] != (256, 6, 6):
            raise ValueError(f"AlexNetV1: expected a 224x224 input (256x6x6 features), got input features "
                             f"{out.shape[1:]} from input of shape {x.shape}")
        out = out.flatten(1)  # (N, 9216)
        out = self.fc1(out)
        out = self.fc2(out)
        return self.fc3(out)  # (N, num_classes)


class AlexNet_Weights(WeightsEnum):
    IMAGENET1K_V1 = torchvision_weights(
        "alexnet-owt-7be5be79.pth", 61_100_840, macs=0.7142e9,
        recipe="https://github.com/pytorch/vision/tree/main/references/classification#alexnet-and-vgg")
    DEFAULT = IMAGENET1K_V1


@register_model(card=ModelCard(weights=AlexNet_Weights))
def alexnet(num_classes=1000, dropout=0.5):
    """torchvision's AlexNet: 61,100,840 parameters."""
    return AlexNet(num_classes=num_classes, dropout=dropout)


@register_model(card=ModelCard(num_params=58_325_066))
def alexnet_bn(num_classes=10, dropout=0.5, norm="batch"):
    """The course's AlexNet with batch-norm: 58,325,066 parameters with 10 classes."""
    return AlexNetV1(num_classes=num_classes, norm=norm, groups=1, dropout=dropout)


@register_model(card=ModelCard())
def alexnet_lrn(num_classes=1000, dropout=0.5, groups=2):
    """The 2012 paper's AlexNet with local response normalisation: 60,965,224 parameters."""
    return AlexNetV1(num_classes=num_classes, norm="lrn", groups=groups, dropout=dropout)
