"""``minidl.cuda.is_available()``, as ``torch.cuda``."""
from .device import is_available  # noqa: F401
