"""The seed study's custom CIFAR-100 CNN (shared/seeds/000, section 3.2, "Custom CNN").

The study lists its layers by output shape only::

    Two Convolutional layers 128@32x32
    One MaxPool layer 128@15x15
    Two Convolutional layers 256@15x15 and 256@13x13
    One MaxPool layer 512@6x6
    Two convolutional layers 512@6x6
    One MaxPool layer 512@2x2
    Three dense layers of 1024, 1024 and 100 neurons

with ELU activations and dropout "variable (0.1/0.5)". Our reading of those shapes:

- 3x3 convolutions; "same" padding keeps 32x32 and 15x15 and 6x6, and the second
  256-channel convolution is "valid" (15 -> 13): the only kernel/padding choice that gives
  every listed size.
- Each max-pool is 3x3 with stride 2: 32 -> 15, 13 -> 6, 6 -> 2 (a 2x2 pool would give
  16, 6 and 3). "512@6x6" after the second pool must be 256@6x6 (pooling keeps the channels;
  the 512 is the next convolutions' width).
- Flatten 512x2x2 = 2048 -> dense 1024 -> 1024 -> 100 ("three dense layers" counting the output).
- Dropout 0.1 after each pooling stage and 0.5 before each of the last two dense layers.

7,826,660 parameters with 100 classes; no published figure.

>>> from minidl import models
>>> models.cifar_cnn().num_parameters()
7826660
"""
from __future__ import annotations

from minidl import nn

from minidl.models._api import ModelCard
from minidl.models.registry import register_model

# One row per stage: (convolutions as (out channels, padding), ...); a 3x3/2 max-pool ends each stage.
STAGES = [
    ((128, 1), (128, 1)),  # 32x32 -> pool -> 15x15
    ((256, 1), (256, 0)),  # 15x15 -> 13x13 -> pool -> 6x6
    ((512, 1), (512, 1)),  # 6x6 -> pool -> 2x2
]


class CifarCNN(nn.Module):
    """``features`` (3 stages of conv-ELU, conv-ELU, max-pool, dropout) and ``classifier`` (3 Linear)."""

    def __init__(self, num_classes=100, in_channels=3, conv_dropout=0.1, dropout=0.5):
        super().__init__()
        layers = []
        for stage in STAGES:
            for out, padding in stage:
                layers += [nn.Conv2d(in_channels, out, kernel_size=3, padding=padding), nn.ELU()]
                in_channels = out
            layers.append(nn.MaxPool2d(kernel_size=3, stride=2))
            if conv_dropout > 0:
                layers.append(nn.Dropout(conv_dropout))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(
            nn.Linear(512 * 2 * 2, 1024),
            nn.ELU(),
            nn.Dropout(dropout),
            nn.Linear(1024, 1024),
            nn.ELU(),
            nn.Dropout(dropout),
            nn.Linear(1024, num_classes),
        )

    def forward(self, x):
        x = self.features(x)  # (N, 512, 2, 2) for 32x32 input
        if x.shape[1:] != (512, 2, 2):
            raise ValueError(f"CifarCNN: expected a 32x32 input (512x2x2 features), got input of shape {x.shape}")
        x = x.flatten(1)  # (N, 2048)
        return self.classifier(x)  # (N, num_classes)


@register_model(card=ModelCard(input_size=(3, 32, 32)))
def cifar_cnn(num_classes=100, in_channels=3, conv_dropout=0.1, dropout=0.5):
    """The seed's custom CIFAR-100 CNN: 7,826,660 parameters with 100 classes."""
    return CifarCNN(num_classes=num_classes, in_channels=in_channels, conv_dropout=conv_dropout, dropout=dropout)
