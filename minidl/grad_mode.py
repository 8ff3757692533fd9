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


# ---------------------------------------------------------------------- anomaly detection
# One process-wide flag, as PyTorch's: the backward walk reads it once per call, ``apply``
# once per op, so the mode costs nothing measurable when it is off.
_anomaly_enabled = False


def is_anomaly_enabled() -> bool:
    """True inside :class:`detect_anomaly` (or after ``set_detect_anomaly(True)``)."""
    return _anomaly_enabled


def set_detect_anomaly(mode: bool) -> None:
    """Turn anomaly detection on or off for the whole process (see :class:`detect_anomaly`)."""
    global _anomaly_enabled
    _anomaly_enabled = bool(mode)


class detect_anomaly(contextlib.ContextDecorator):
    """Context manager (and decorator) that checks every backward step, as ``torch.autograd.detect_anomaly``.

    Inside it, each op remembers where it was created (the line of user code that called it),
    and the backward walk checks the input gradients every Function's ``backward`` returns:
    the first NaN or infinite value raises ``RuntimeError("Function 'Log' returned nan values
    in its 0th output; the op was created at model.py:12 in forward")``. Beyond PyTorch, a
    recorded op whose forward turns NaN-free inputs into NaN raises the same way (a NaN loss
    stops the Trainer before any backward). Slow (a stack walk per op, a NaN check per output
    and gradient): for debugging only. ``check_nan=False`` turns it into a no-op,
    as PyTorch's argument does.
    """

    def __init__(self, check_nan: bool = True):
        self.check_nan = bool(check_nan)

    def __enter__(self):
        self._previous = _anomaly_enabled
        set_detect_anomaly(self.check_nan or self._previous)
        return self

    def __exit__(self, *exc):
        set_detect_anomaly(self._previous)
        return False


class inference_mode(no_grad):
    """``torch.inference_mode``: here the same as :class:`no_grad` (no graph is recorded).

    A context manager and a decorator (``@inference_mode()`` or bare ``@inference_mode``);
    ``inference_mode(False)`` changes nothing.
    """

    def __new__(cls, mode=True):
        if callable(mode):  # used bare, as @inference_mode: decorate the function
            return cls()(mode)
        return super().__new__(cls)

    def __init__(self, mode=True):
        self.mode = bool(mode)

    def __enter__(self):
        self._previous = is_grad_enabled()
        if self.mode:
            set_grad_enabled(False)
        return self
