"""The global random generator behind rand, randn, dropout and nn.init.

``minidl.manual_seed(n)`` makes every random draw of a program repeatable.
The state is a NumPy ``Generator`` (PCG64); ``get_rng_state`` / ``set_rng_state``
save and restore it exactly, which is what a resumed training run needs.
"""
from __future__ import annotations

import numpy as np

_generator = np.random.default_rng(0)


def manual_seed(seed: int) -> np.random.Generator:
    """Seed the global generator, as ``torch.manual_seed``."""
    global _generator
    _generator = np.random.default_rng(int(seed))
    return _generator


def seed() -> int:
    """Seed the global generator from the operating system's entropy and return the seed."""
    value = int(np.random.SeedSequence().entropy % (2 ** 63))
    manual_seed(value)
    return value


def default_generator() -> np.random.Generator:
    return _generator


def get_rng_state() -> dict:
    """The generator's state as a plain (JSON-serialisable) dict."""
    return _generator.bit_generator.state


def set_rng_state(state: dict) -> None:
    _generator.bit_generator.state = state
