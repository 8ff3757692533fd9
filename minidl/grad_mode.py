"""Whether operations record a graph: ``no_grad``, ``enable_grad``, ``set_grad_enabled`` (thread-local).

No imports from the rest of minidl: the Tensor floor reads this flag when it applies a
Function, and ``minidl.autograd`` re-exports these names.
"""
from __future__ import annotations

import contextlib
import threading

_state = threading.local()


def is_grad_enabled() -> bool:
    return getattr(_state, "grad_enabled", True)


def set_grad_enabled(mode: bool) -> None:
    _state.grad_enabled = bool(mode)


class no_grad(contextlib.ContextDecorator):
    """Context manager (and decorator) that disables graph recording, as ``torch.no_grad``."""

    def __enter__(self):
        self._previous = is_grad_enabled()
        set_grad_enabled(False)
        return self

    def __exit__(self, *exc):
        set_grad_enabled(self._previous)
        return False


class enable_grad(contextlib.ContextDecorator):
    """Context manager that re-enables graph recording inside ``no_grad``."""

    def __enter__(self):
        self._previous = is_grad_enabled()
        set_grad_enabled(True)
        return self

    def __exit__(self, *exc):
        set_grad_enabled(self._previous)
        return False
