"""Feed-forward networks (multi-layer perceptrons) on flattened images.

The presets are the seed study's fully connected networks (shared/seeds/000, section 2.5):

- ``mlp_gtsdb``: 300-150 hidden units, ReLU, dropout 0.3, 43 traffic-sign classes, on
  flattened sign crops (3x32x32 by default: the study does not state its crop size,
  so ``input_size`` sets it). 973,543 parameters at 3x32x32.
- ``mlp_cifar100``: 1024-768-512 hidden units, ReLU, dropout 0.2, 100 classes on
  3x32x32 CIFAR-100 images. 4,378,980 parameters.
- ``mlp``: the digits default (1x8x8 optdigits images, 10 classes, 128-64 hidden
  units), used by ``minidl train mlp``. 17,226 parameters.

There is no published reference implementation, so the registry lists no published
count for them. Each hidden layer is Linear -> activation -> Dropout ("dropout between
each layer", as the study's Keras models); the last Linear gives the logits.

>>> from minidl import models
>>> net = models.mlp(hidden_sizes=(32,), activation="tanh")
>>> net.num_parameters()
2410
"""
from __future__ import annotations

import math

from minidl import nn

from minidl.models._api import ModelCard, Recipe
from minidl.models.registry import register_model

# name -> Module class; leaky_relu uses PyTorch's slope 0.01 (Keras' LeakyReLU defaults to 0.3)
ACTIVATIONS = {
    "relu": nn.ReLU,
    "elu": nn.ELU,
    "leaky_relu": nn.LeakyReLU,
    "tanh": nn.Tanh,
}

# preset: (hidden sizes, dropout, classes, input size) as read from the seed study
PRESETS = {
    "mlp": ((128, 64), 0.0, 10, (1, 8, 8)),
    "mlp_gtsdb": ((300, 150), 0.3, 43, (3, 32, 32)),
    "mlp_cifar100": ((1024, 768, 512), 0.2, 100, (3, 32, 32)),
}


class MLP(nn.Module):
    """Flatten -> [Linear -> activation -> Dropout] x len(hidden_sizes) -> Linear.

    Args:
        in_features: length of the flattened input (C*H*W).
        num_classes: number of logits.
        hidden_sizes: widths of the hidden layers, in order (may be empty: a linear classifier).
        activation: one of ``relu``, ``elu``, ``leaky_relu``, ``tanh``.
        dropout: drop probability after every hidden activation (0 disables the Dropout modules).
    """

    def __init__(self, in_features, num_classes, hidden_sizes=(128, 64), activation="relu", dropout=0.0):
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"MLP: activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"MLP: dropout must be in [0, 1), got {dropout}")
        widths = [int(w) for w in hidden_sizes]
        if any(w <= 0 for w in widths) or in_features <= 0 or num_classes <= 0:
            raise ValueError(f"MLP: in_features, num_classes and hidden_sizes must be positive, got "
                             f"in_features={in_features}, num_classes={num_classes}, hidden_sizes={hidden_sizes}")
        self.in_features, self.num_classes = int(in_features), int(num_classes)
        self.flatten = nn.Flatten()
        layers = []
        previous = self.in_features
        for width in widths:
            layers.append(nn.Linear(previous, width))
            layers.append(ACTIVATIONS[activation]())
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            previous = width
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(previous, self.num_classes)

    def forward(self, x):
        x = self.flatten(x)  # (N, C*H*W)
        x = self.features(x)  # (N, hidden_sizes[-1])
        return self.classifier(x)  # (N, num_classes)


def _mlp(preset, num_classes=None, input_size=None, hidden_sizes=None, activation="relu", dropout=None):
    default_hidden, default_dropout, default_classes, default_input = PRESETS[preset]
    input_size = tuple(default_input if input_size is None else input_size)
    return MLP(
        in_features=math.prod(input_size),
        num_classes=default_classes if num_classes is None else num_classes,
        hidden_sizes=default_hidden if hidden_sizes is None else hidden_sizes,
        activation=activation,
        dropout=default_dropout if dropout is None else dropout,
    )


# the seed configuration on the digits (the main job: >= 95% in < 30 s): dense ReLU layers with
# dropout, SGD with momentum
MLP_CARD = ModelCard(input_size=PRESETS["mlp"][3],
                     recipe=Recipe(epochs=30, batch_size=32, lr=0.05, weight_decay=1e-4,
                                   model_kwargs={"dropout": 0.1}))


@register_model(card=MLP_CARD)
def mlp(num_classes=10, input_size=(1, 8, 8), hidden_sizes=(128, 64), activation="relu", dropout=0.0):
    """Digits MLP: 8x8 grey images, 128-64 hidden units (any widths, activation, dropout by argument)."""
    return _mlp("mlp", num_classes, input_size, hidden_sizes, activation, dropout)


@register_model(card=ModelCard(input_size=PRESETS["mlp_gtsdb"][3]))
def mlp_gtsdb(num_classes=43, input_size=(3, 32, 32), hidden_sizes=(300, 150), activation="relu", dropout=0.3):
    """The seed's traffic-sign MLP: 300-150, ReLU, dropout 0.3, 43 classes."""
    return _mlp("mlp_gtsdb", num_classes, input_size, hidden_sizes, activation, dropout)


@register_model(card=ModelCard(input_size=PRESETS["mlp_cifar100"][3]))
def mlp_cifar100(num_classes=100, input_size=(3, 32, 32), hidden_sizes=(1024, 768, 512), activation="relu",
                 dropout=0.2):
    """The seed's CIFAR-100 MLP: 1024-768-512, ReLU, dropout 0.2, 100 classes."""
    return _mlp("mlp_cifar100", num_classes, input_size, hidden_sizes, activation, dropout)
