"""The global random generator behind rand, randn, dropout and nn.init.

``minidl.manual_seed(n)`` makes every random draw of a program repeatable.
The state is a NumPy ``Generator`` (PCG64); ``get_rng_state`` / ``set_rng_state``
save and restore it exactly, which is what a resumed training run needs.
A :class:`Generator` (``torch.Generator``) is a generator of its own, passed as ``generator=``.
"""
from __future__ import annotations

import copy

import numpy as np

_generator = np.random.default_rng(0)


def manual_seed(seed: int) -> np.random.Generator:
    """Seed the global generator, as ``torch.manual_seed``."""
    global _generator
    _generator = np.random.default_rng(int(seed))
    _device_streams.clear()
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


# The seed of a fresh torch.Generator (and of minidl's Generator): torch's default_rng_seed_val.
_DEFAULT_SEED = 67280421310721


class Generator:
    """A random number generator of its own, as ``torch.Generator``: pass it as ``generator=``.

    ``rand``/``randn``/``randint``/``randperm``, ``random_split``, ``DataLoader`` and the
    samplers of ``minidl.utils.data`` draw from it instead of the global generator, so one
    part of a program can be made repeatable without touching the rest::

        >>> import minidl
        >>> g = minidl.Generator().manual_seed(42)
        >>> a = minidl.randn(3, generator=g)
        >>> b = minidl.randn(3, generator=minidl.Generator().manual_seed(42))
        >>> bool((a == b).all())
        True

    The bits come from a NumPy PCG64 generator (not torch's Mersenne Twister: the same seed
    gives other numbers than in PyTorch). ``get_state()`` returns its state as a plain dict
    (PyTorch returns a ByteTensor) that ``set_state`` takes back. ``device`` is recorded for
    PyTorch's signature; the numbers are always drawn on the host.
    """

    def __init__(self, device="cpu"):
        self.device = str(device)
        self.manual_seed(_DEFAULT_SEED)

    def manual_seed(self, seed):
        """Reseed; returns the generator. Negative seeds wrap modulo 2**64, as in PyTorch."""
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
            raise TypeError(f"manual_seed expected an int seed, got {type(seed).__name__}")
        self._initial_seed = int(seed) % 2**64
        self.rng = np.random.default_rng(self._initial_seed)   # the NumPy generator draws come from
        return self

    def seed(self):
        """Reseed from the operating system's entropy; returns the new seed."""
        value = int(np.random.SeedSequence().entropy % 2**63)
        self.manual_seed(value)
        return value

    def initial_seed(self):
        """The seed given last to ``manual_seed`` (or ``seed``)."""
        return self._initial_seed

    def get_state(self):
        """The generator's state, a dict (a copy: drawing later does not change it)."""
        return copy.deepcopy(self.rng.bit_generator.state)

    def set_state(self, new_state):
        """Restore a state from ``get_state``; returns the generator."""
        self.rng.bit_generator.state = copy.deepcopy(new_state)
        return self

    def __repr__(self):
        return f"<minidl.Generator object (initial_seed={self._initial_seed})>"


def numpy_generator(generator=None):
    """The ``numpy.random.Generator`` to draw from for a ``generator=`` argument.

    ``None`` gives the global generator (``minidl.manual_seed``), a :class:`Generator` its NumPy
    generator, and a ``numpy.random.Generator`` itself.
    """
    if generator is None:
        return _generator
    if isinstance(generator, Generator):
        return generator.rng
    if isinstance(generator, np.random.Generator):
        return generator
    raise TypeError(f"generator: expected a minidl.Generator (or numpy.random.Generator) or None, "
                    f"got {type(generator).__name__}")


# Random streams on a GPU, one per (host generator, device): each is seeded once by a draw from its host
# generator, so manual_seed makes device draws repeatable too, and a mask is drawn where it is used.
_device_streams = {}


def uniform(xp, shape, generator=None):
    """U[0, 1) numbers of ``shape`` on ``xp``'s device (the masks of dropout and stochastic depth).

    On the host they come from the NumPy generator (``generator=`` or the global one, float64);
    on a GPU from a CuPy stream seeded from that generator, drawn on the device in float32: no
    host-to-device copy per call. The same seed gives other numbers on the two devices.
    """
    rng = numpy_generator(generator)
    if xp is np:
        return rng.random(shape)
    key = (id(rng), xp.cuda.Device().id)
    stream = _device_streams.get(key)
    if stream is None or stream[0] is not rng:
        stream = _device_streams[key] = (rng, xp.random.RandomState(int(rng.integers(2 ** 63))))
    return stream[1].random_sample(shape, dtype=np.float32)
