"""The model registry: ``list_models()``, ``get_model(name, weights=..., **kwargs)`` and each builder's card.

Each family file decorates its public builders with ``@register_model(card=ModelCard(...))``; the
card (``minidl.models._api``) holds the published parameter count and MACs, the input size, the
preprocessing preset, the ``minidl train`` recipe and the pretrained weights records. For the
readers of older code, ``builder.published_params`` and ``builder.default_input_size`` are the
card's ``num_params`` and ``input_size``.
"""
from __future__ import annotations

import os

from minidl.models._api import ModelCard, WeightsEnum

_MODELS = {}


def register_model(fn=None, *, name=None, card=None, published=None, input_size=None):
    """Register a builder under its function name (or ``name``) with its ``ModelCard``.

    ``published`` and ``input_size`` are a short form of ``card=ModelCard(num_params=published,
    input_size=input_size)`` for builders with no other facts to record.
    """
    if card is not None and (published is not None or input_size is not None):
        raise ValueError("register_model: give either card= or published=/input_size=, not both")
    if card is None:
        card = ModelCard(num_params=published, input_size=(3, 224, 224) if input_size is None else input_size)
    elif not isinstance(card, ModelCard):
        raise TypeError(f"register_model: card must be a ModelCard, got {type(card).__name__}")

    def wrap(builder):
        key = name or builder.__name__
        if key in _MODELS:
            raise ValueError(f"register_model: {key!r} is already registered")
        builder.card = card
        builder.published_params = card.num_params
        builder.default_input_size = card.input_size
        _MODELS[key] = builder
        return builder

    return wrap(fn) if fn is not None else wrap


def list_models():
    """Names of every registered model, sorted."""
    return sorted(_MODELS)


def get_model_builder(name):
    if name not in _MODELS:
        raise ValueError(f"unknown model {name!r}; available: {', '.join(list_models())}")
    return _MODELS[name]


def get_model_card(name) -> ModelCard:
    """The ``ModelCard`` of a registered model."""
    return get_model_builder(name).card


def get_model_weights(name):
    """The ``WeightsEnum`` class of a registered model (None when it has no pretrained weights)."""
    return get_model_card(name).weights


def resolve_weights(name, weights):
    """What ``weights`` names for model ``name``: a ``WeightsEnum`` entry, or the path of a local file.

    Accepts an entry of the model's enum, its name (``"IMAGENET1K_V1"``, ``"DEFAULT"``,
    ``"ResNet18_Weights.IMAGENET1K_V1"``) or a file path (str or ``os.PathLike``). A name is looked
    up among the model's records first, then as a file.
    """
    enum_cls = get_model_weights(name)
    if isinstance(weights, WeightsEnum):
        if enum_cls is None or not isinstance(weights, enum_cls):
            expected = "no weights records" if enum_cls is None else f"entries of {enum_cls.__name__}"
            raise TypeError(f"get_model({name!r}): weights={weights!r} belongs to another model; {name} has {expected}")
        return weights
    if not isinstance(weights, (str, os.PathLike)):
        raise TypeError(f"get_model({name!r}): weights must be a weights entry, its name or a file path, "
                        f"got {type(weights).__name__}")
    text = os.fspath(weights)
    if enum_cls is not None:
        bare = text[len(enum_cls.__name__) + 1:] if text.startswith(enum_cls.__name__ + ".") else text
        if bare in enum_cls.__members__:
            return enum_cls[bare]
    if os.path.isfile(text):
        return text
    known = ", ".join(enum_cls.names()) if enum_cls is not None else "none recorded"
    raise FileNotFoundError(f"weights {text!r} for {name}: no such file, and not a weights name of {name} "
                            f"(names: {known})")


def get_model(name, weights=None, **kwargs):
    """Build a registered model, optionally with weights loaded strictly.

    ``weights``: None; a weights entry (``ResNet18_Weights.IMAGENET1K_V1``) or its name
    (``"IMAGENET1K_V1"``, ``"DEFAULT"``), read from the cache folder after its SHA-256 is checked
    (``WeightsEnum.check``); or the path of a local checkpoint (.pth/.pt/.safetensors/.npz). A
    record with class names sets ``num_classes`` to their number (giving another is an error).
    """
    builder = get_model_builder(name)
    if weights is None:
        return builder(**kwargs)
    record = resolve_weights(name, weights)
    if isinstance(record, WeightsEnum):
        categories = record.meta.get("categories")
        if categories is not None:
            if kwargs.setdefault("num_classes", len(categories)) != len(categories):
                raise ValueError(f"get_model({name!r}): {record!r} has {len(categories)} classes, but "
                                 f"num_classes={kwargs['num_classes']} was given; build without weights and "
                                 f"load them yourself to replace the head (minidl.nn.replace_head)")
        state = record.get_state_dict()  # checked before the model is built
    else:
        from minidl.serialization import load_checkpoint

        state = load_checkpoint(record)
    model = builder(**kwargs)
    model.load_state_dict(state, strict=True)
    return model
