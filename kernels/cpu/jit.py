"""Parallel kernels compiled only when a run uses more than one thread.

Numba compiles a kernel on its first call for each argument type and keeps the machine code
in ``__pycache__`` (``cache=True``), so only a first run pays. A ``parallel=True`` kernel
costs two to four times as much to compile as the same loops without it (Numba turns the
``prange`` loop into a threaded ufunc and compiles and optimises it apart), and a run on one
thread gains nothing from it: the digits' default (``minidl train --threads 1``), and
``minidl gradcheck``'s tiny float64 inputs. :func:`parallel_kernel` therefore compiles the
same Python function under two names: the parallel version, called while Numba runs more
than one thread (``numba.set_num_threads``), and a serial one (``prange`` runs as
``range``) otherwise. Each is compiled on its own first call, so a run compiles only the one
it uses.

In a kernels module (Numba caches only functions defined in a file)::

    @parallel_kernel(fastmath={"reassoc"})
    def _row_sums(x):
        out = np.empty(x.shape[0], x.dtype)
        for i in prange(x.shape[0]):   # one row per thread, or all rows on one
            out[i] = x[i].sum()
        return out
"""
from __future__ import annotations

import functools
import types

import numba
from numba import njit

from minidl.kernels.cpu import serialise_parallel_kernels


def _renamed(fn, suffix):
    """A copy of function ``fn`` whose qualified name ends in ``suffix``.

    Numba names a function's cache files after its qualified name (and line), so the
    serial twin's machine code is stored next to, not over, the parallel one's."""
    twin = types.FunctionType(fn.__code__, fn.__globals__, fn.__name__, fn.__defaults__, fn.__closure__)
    twin.__qualname__ = f"{fn.__qualname__}{suffix}"
    twin.__module__ = fn.__module__
    twin.__doc__ = fn.__doc__
    twin.__kwdefaults__ = fn.__kwdefaults__
    return twin


class ParallelKernel:
    """A ``prange`` kernel compiled as ``njit(parallel=True)`` and as plain ``njit``.

    Called from Python (not from other jitted code), it runs the parallel version when
    ``numba.get_num_threads() > 1`` and the serial one otherwise. ``.parallel`` and
    ``.serial`` are the two Numba dispatchers. The parallel one is called through the
    process-wide lock every parallel kernel of kernels/cpu takes (``serialise_parallel_kernels``);
    the serial one launches no threads and holds the GIL, so it needs none."""

    def __init__(self, fn, options):
        self.parallel = njit(parallel=True, cache=True, **options)(fn)
        self.serial = njit(cache=True, **options)(_renamed(fn, "__serial"))
        locked = {fn.__name__: self.parallel}
        serialise_parallel_kernels(locked)
        self._run_parallel = locked[fn.__name__]
        functools.update_wrapper(self, fn)

    def __call__(self, *args):
        if numba.get_num_threads() > 1:
            return self._run_parallel(*args)
        return self.serial(*args)


def parallel_kernel(**options):
    """Decorator: ``njit(parallel=True, cache=True, **options)`` with a serial twin for one thread."""
    def decorate(fn):
        return ParallelKernel(fn, options)

    return decorate
