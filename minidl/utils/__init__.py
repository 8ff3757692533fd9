"""``minidl.utils``: the import paths of ``torch.utils`` (``minidl.utils.data``)."""
from . import data

__all__ = ["data"]
