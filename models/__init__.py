"""The architecture zoo: one file per family, each a config table, block classes and one-line builders.

>>> from minidl import models
>>> net = models.get_model("lenet5")
"""
from .registry import get_model, get_model_builder, list_models, register_model  # noqa: F401

# Zoo I ------------------------------------------------------------------------------------
# Zoo II -----------------------------------------------------------------------------------
