"""The model registry: ``list_models()``, ``get_model(name, **kwargs)`` and the published counts.

Each family file decorates its public builders with ``@register_model(published=...)``,
giving the exact parameter count of the reference implementation
(``shared/reference/param_counts.md``) where one exists.
"""
from __future__ import annotations

_MODELS = {}


def register_model(fn=None, *, name=None, published=None, input_size=(3, 224, 224)):
    """Register a builder under its function name (or ``name``).

    ``published``: the exact parameter count of the reference implementation with the
    default arguments (None when there is no published figure); ``input_size``: the
    (C, H, W) the model is meant for, used by ``minidl models`` and ``summary``.
    """

    def wrap(builder):
        key = name or builder.__name__
        if key in _MODELS:
            raise ValueError(f"register_model: {key!r} is already registered")
        builder.published_params = published
        builder.default_input_size = tuple(input_size)
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


def get_model(name, weights=None, **kwargs):
    """Build a registered model; ``weights`` is an optional checkpoint path loaded strictly."""
    model = get_model_builder(name)(**kwargs)
    if weights is not None:
        from minidl.serialization import load_checkpoint

        model.load_state_dict(load_checkpoint(weights), strict=True)
    return model
