"""A test double of CuPy over NumPy: the GPU code paths of minidl, run and audited on a CPU.

Put ``tests/fake_cupy`` first on ``sys.path`` (with ``NUMBA_ENABLE_CUDASIM=1``, so that the
``numba.cuda`` kernels run in the simulator) and ``import cupy`` gives this module: minidl then
takes every "cuda" path it takes on a GPU. The double keeps CuPy's habits where they catch bugs:

* a device array is a ``cupy.ndarray`` (a NumPy subclass whose ``type().__module__`` is
  ``cupy``); mixing it with a host ``numpy.ndarray`` in an operation raises CuPy's TypeError,
  as does ``cupy.ascontiguousarray(numpy_array)`` and any cupy function given a host array
  except the explicit copies (``cupy.asarray``/``array``);
* reductions and scalar indexing give 0-d device arrays, not Python numbers;
* every device-to-host transfer is counted in :data:`counters` (``.get()``, ``cupy.asnumpy``,
  ``float()``/``int()``/``bool()``/``.item()``/``.tolist()``/printing: each is a
  synchronisation on a GPU), and so is every host-to-device copy (``cupy.asarray`` of host
  data);
* a ``numba.cuda`` kernel launched with a host array raises (numba-cuda would copy it to the
  device and back, synchronising, on every call); launches are recorded with their stream.

What it cannot catch: ``numpy.asarray(device_array)`` (NumPy does not ask a subclass), so
minidl's code must not rely on it (it reads device arrays through ``.get()`` only).
"""
from __future__ import annotations

import contextlib
import math
import sys
import types

import numpy as _np

counters = {"d2h": 0, "h2d": 0}
transfers = []  # (kind, where in minidl) per counted transfer: what a failing test prints
launches = []  # (kernel name, stream, current device) per numba.cuda launch, see install_kernel_audit()


def reset_counters():
    counters["d2h"] = 0
    counters["h2d"] = 0
    transfers.clear()
    launches.clear()


def _count(kind):
    """Count one transfer and remember the innermost minidl frame that asked for it."""
    counters[kind] += 1
    import traceback

    frames = [f for f in traceback.extract_stack()[:-2] if "fake_cupy" not in f.filename]
    ours = [f for f in frames if "minidl" in f.filename or "/kernels/" in f.filename or "/models/" in f.filename]
    transfers.append((kind, " <- ".join("/".join(f.filename.split("/")[-2:]) + f":{f.lineno}"
                                        for f in reversed((ours or frames)[-3:]))))


class ndarray(_np.ndarray):
    """A device array: NumPy memory that refuses to meet host arrays and counts its reads."""

    __module__ = "cupy"

    # ----------------------------------------------------------------- transfers and syncs
    def get(self, stream=None, order="C", out=None):
        _count("d2h")
        host = _np.array(_base(self), copy=True)
        if out is not None:
            out[...] = host
            return out
        return host

    def _sync(self):
        _count("d2h")
        return _base(self)

    def __float__(self):
        return float(self._sync())

    def __int__(self):
        return int(self._sync())

    def __index__(self):
        return int(self._sync())

    def __bool__(self):
        return bool(self._sync())

    def __complex__(self):
        return complex(self._sync())

    def item(self, *args):
        return self._sync().item(*args)

    def tolist(self):
        return self._sync().tolist()

    def __repr__(self):
        return "cupy." + repr(self._sync()).replace("array(", "array(", 1)

    def __str__(self):
        return str(self._sync())

    def __format__(self, spec):
        return format(self._sync().item() if self.ndim == 0 else self._sync(), spec)

    def __array_finalize__(self, obj):
        # an array lives on the device that was current when it was made (a view: its base's)
        self._device_id = getattr(obj, "_device_id", cuda._current[0])

    @property
    def device(self):
        return cuda.Device(self._device_id)

    # ----------------------------------------------------------------- NumPy protocol
    def __array_ufunc__(self, ufunc, method, *inputs, out=None, **kwargs):
        _refuse_host(inputs + (out or ()), f"cupy.{ufunc.__name__}")
        args = _unwrap(inputs)
        if out is not None:
            kwargs["out"] = tuple(_unwrap(out))
        result = getattr(ufunc, method)(*args, **kwargs)
        if out is not None:
            return out[0] if len(out) == 1 else out
        return _wrap(result)

    def __array_function__(self, func, types, args, kwargs):
        _refuse_host((args, kwargs), f"cupy.{func.__name__}")
        return _wrap(func(*_unwrap(args), **_unwrap(kwargs)))

    def __getitem__(self, index):
        if _host_array(index) or (isinstance(index, tuple) and any(_host_array(i) for i in index)):
            _count("h2d")  # CuPy copies a host index array to the device
        return _wrap(_base(self)[_unwrap(index)])

    def __setitem__(self, index, value):
        _refuse_host((index, value), "cupy.ndarray.__setitem__")
        _base(self)[_unwrap(index)] = _unwrap(value)


def _method(name):
    def method(self, *args, **kwargs):
        _refuse_host((args, kwargs), f"cupy.ndarray.{name}")
        return _wrap(getattr(_base(self), name)(*_unwrap(args), **_unwrap(kwargs)))

    method.__name__ = name
    return method


# methods whose NumPy versions return scalars or go through Python numbers: CuPy gives 0-d arrays
for _name in ("sum", "mean", "var", "std", "max", "min", "prod", "argmax", "argmin", "all", "any",
              "cumsum", "cumprod", "dot", "clip", "round", "nonzero", "ptp", "trace", "take",
              "repeat", "astype", "copy", "reshape", "transpose", "ravel", "flatten", "squeeze",
              "swapaxes", "sort", "argsort", "fill", "view"):
    setattr(ndarray, _name, _method(_name))


def _base(a):
    """The NumPy view of a device array (the memory the double keeps it in)."""
    return _np.ndarray.view(a, _np.ndarray)


def _host_array(x):
    return isinstance(x, _np.ndarray) and not isinstance(x, ndarray)


def _refuse_host(obj, where):
    """CuPy's TypeError when a host ndarray is among the (nested) operands."""
    if _host_array(obj):
        raise TypeError(f"Unsupported type {type(obj)} in {where}: a numpy.ndarray cannot be an operand of a "
                        "CuPy operation (move it with cupy.asarray first)")
    if isinstance(obj, (list, tuple)):
        for item in obj:
            _refuse_host(item, where)
    elif isinstance(obj, dict):
        for item in obj.values():
            _refuse_host(item, where)


def _unwrap(obj):
    if isinstance(obj, ndarray):
        return _base(obj)
    if isinstance(obj, list):
        return [_unwrap(o) for o in obj]
    if isinstance(obj, tuple):
        return tuple(_unwrap(o) for o in obj)
    if isinstance(obj, dict):
        return {k: _unwrap(v) for k, v in obj.items()}
    return obj


def _wrap(obj):
    if isinstance(obj, _np.ndarray):
        return _np.ndarray.view(obj, ndarray)
    if isinstance(obj, _np.generic):
        return _np.asarray(obj).view(ndarray)
    if isinstance(obj, tuple):
        return tuple(_wrap(o) for o in obj)
    if isinstance(obj, list) and obj and all(isinstance(o, _np.ndarray) for o in obj):
        return [_wrap(o) for o in obj]
    return obj


def _device_function(fn, name):
    def wrapper(*args, **kwargs):
        _refuse_host((args, kwargs), f"cupy.{name}")
        return _wrap(fn(*_unwrap(args), **_unwrap(kwargs)))

    wrapper.__name__ = name
    return wrapper


def asarray(a, dtype=None, order=None, **kwargs):
    """Host data -> a device array (one host-to-device copy, counted); device arrays pass through."""
    if isinstance(a, ndarray):
        return a if dtype is None or a.dtype == dtype else a.astype(dtype)
    _count("h2d")
    return _np.array(_unwrap(a), dtype=dtype, order=order or "K", copy=True).view(ndarray)


def array(a, dtype=None, copy=True, order="K", ndmin=0, **kwargs):
    if isinstance(a, ndarray):
        out = _np.array(_base(a), dtype=dtype, copy=copy, order=order, ndmin=ndmin)
        return out.view(ndarray)
    _count("h2d")
    return _np.array(_unwrap(a), dtype=dtype, order=order, ndmin=ndmin, copy=True).view(ndarray)


def asnumpy(a, stream=None, order="C", out=None):
    if isinstance(a, ndarray):
        return a.get(out=out)
    return _np.asarray(a, order=order)


def get_array_module(*args):
    return sys.modules[__name__] if any(isinstance(a, ndarray) for a in args) else _np


class _Ufunc:
    """A NumPy ufunc on device arrays: call, ``at`` (CuPy >= 13), ``reduce``, ``accumulate``, ``outer``."""

    def __init__(self, ufunc):
        self._ufunc = ufunc
        self.__name__ = ufunc.__name__
        for method in ("__call__", "at", "reduce", "accumulate", "outer"):
            setattr(self, "_" + method.strip("_"), _device_function(getattr(ufunc, method), f"{ufunc.__name__}.{method}"))

    def __call__(self, *args, **kwargs):
        return self._call(*args, **kwargs)

    def at(self, *args, **kwargs):
        return self._at(*args, **kwargs)

    def reduce(self, *args, **kwargs):
        return self._reduce(*args, **kwargs)

    def accumulate(self, *args, **kwargs):
        return self._accumulate(*args, **kwargs)

    def outer(self, *args, **kwargs):
        return self._outer(*args, **kwargs)


def __getattr__(name):
    """Every other cupy name: NumPy's function on device arrays only, or NumPy's constant/type."""
    value = getattr(_np, name)
    if isinstance(value, _np.ufunc):
        value = _Ufunc(value)
    elif callable(value) and not isinstance(value, type):
        value = _device_function(value, name)
    globals()[name] = value
    return value


# ----------------------------------------------------------------------------- submodules
def _submodule(name, numpy_module, **extra):
    module = types.ModuleType(f"cupy.{name}")

    def module_getattr(attr):
        value = getattr(numpy_module, attr)
        return _device_function(value, f"{name}.{attr}") if callable(value) and not isinstance(value, type) else value

    module.__getattr__ = module_getattr
    for key, value in extra.items():
        setattr(module, key, value)
    sys.modules[f"cupy.{name}"] = module
    return module


linalg = _submodule("linalg", _np.linalg)
fft = _submodule("fft", _np.fft)


class _RandomState:
    """Device random numbers (drawn here on the host; on a GPU by cuRAND): arrays come back on the device."""

    def __init__(self, seed=None):
        self._rng = _np.random.default_rng(seed)

    def seed(self, seed=None):
        self._rng = _np.random.default_rng(seed)

    def random_sample(self, size=None, dtype=float):
        return _np.asarray(self._rng.random(size, dtype=_np.dtype(dtype))).view(ndarray)

    rand = random = random_sample

    def standard_normal(self, size=None, dtype=float):
        return _np.asarray(self._rng.standard_normal(size, dtype=_np.dtype(dtype))).view(ndarray)

    def normal(self, loc=0.0, scale=1.0, size=None, dtype=float):
        return (self.standard_normal(size, dtype) * scale + loc).astype(dtype)

    def uniform(self, low=0.0, high=1.0, size=None, dtype=float):
        return (self.random_sample(size, dtype) * (high - low) + low).astype(dtype)

    def randint(self, low, high=None, size=None, dtype=int):
        return _np.asarray(self._rng.integers(low, high, size, dtype=dtype)).view(ndarray)

    def integers(self, low, high=None, size=None, dtype=_np.int64, endpoint=False):
        return _np.asarray(self._rng.integers(low, high, size, dtype=dtype, endpoint=endpoint)).view(ndarray)

    def permutation(self, n):
        return _np.asarray(self._rng.permutation(n)).view(ndarray)

    def bernoulli(self, p, size=None):
        return (self.random_sample(size) < p)


_global_random = _RandomState(0)
random = types.ModuleType("cupy.random")
random.RandomState = _RandomState
random.Generator = _RandomState
random.default_rng = _RandomState
random.get_random_state = lambda: _global_random
random.seed = lambda seed=None: _global_random.seed(seed)
for _name in ("random_sample", "random", "rand", "standard_normal", "normal", "uniform", "randint",
              "permutation"):
    setattr(random, _name, getattr(_global_random, _name))
random.randn = lambda *size: _global_random.standard_normal(size)
sys.modules["cupy.random"] = random


class _Stream:
    _next_ptr = 1000

    def __init__(self, null=False, non_blocking=False, ptr=None):
        if ptr is None:
            ptr = 0 if null else _Stream._next_ptr
            _Stream._next_ptr += 1
        self.ptr = ptr
        self._previous = []

    def synchronize(self):
        pass

    def use(self):
        cuda._stream[0] = self
        return self

    def __enter__(self):
        self._previous.append(cuda._stream[0])
        cuda._stream[0] = self
        return self

    def __exit__(self, *exc):
        cuda._stream[0] = self._previous.pop()

    def __repr__(self):
        return f"<cupy fake Stream ptr={self.ptr}>"


class _Device:
    def __init__(self, device=None):
        self.id = cuda._current[0] if device is None else int(device)
        self._previous = []

    def __enter__(self):
        self._previous.append(cuda._current[0])
        cuda._current[0] = self.id
        return self

    def __exit__(self, *exc):
        cuda._current[0] = self._previous.pop()

    def use(self):
        cuda._current[0] = self.id

    def synchronize(self):
        pass

    def __eq__(self, other):
        return isinstance(other, _Device) and other.id == self.id

    def __hash__(self):
        return hash(self.id)

    def __repr__(self):
        return f"<CUDA Device {self.id}>"


class _Runtime:
    device_count = 1

    @classmethod
    def getDeviceCount(cls):
        return cls.device_count

    @staticmethod
    def deviceSynchronize():
        pass

    @staticmethod
    def getDevice():
        return cuda._current[0]


class _MemoryPool:
    def used_bytes(self):
        return 0

    def total_bytes(self):
        return 0

    def free_all_blocks(self):
        pass


cuda = types.ModuleType("cupy.cuda")
cuda._current = [0]
cuda.Device = _Device
cuda.Stream = _Stream
cuda.ExternalStream = lambda ptr, device_id=-1: _Stream(ptr=ptr)
cuda.runtime = _Runtime
cuda._stream = [_Stream(null=True)]
cuda.get_current_stream = lambda device=None: cuda._stream[0]
cuda.Stream.null = cuda._stream[0]
cuda._pool = _MemoryPool()
cuda.get_device_id = lambda: cuda._current[0]
sys.modules["cupy.cuda"] = cuda
sys.modules["cupy.cuda.runtime"] = _Runtime
get_default_memory_pool = lambda: cuda._pool  # noqa: E731
get_default_pinned_memory_pool = lambda: cuda._pool  # noqa: E731
__version__ = "14.0.0"


def install_kernel_audit():
    """Make every ``numba.cuda`` simulator launch refuse host arrays and record (kernel, stream).

    The simulator takes NumPy arrays; on a GPU numba-cuda would silently copy a host array to
    the device and back (a synchronisation per launch), so a host array reaching a kernel is a
    bug this double turns into an error. Device arrays are handed to the simulator as plain
    NumPy views (its per-element indexing must not see 0-d device arrays).
    """
    from numba.cuda.simulator import kernel as simulator

    if getattr(simulator.FakeCUDAKernel, "_fake_cupy_audit", False):
        return
    original_call = simulator.FakeCUDAKernel.__call__
    original_getitem = simulator.FakeCUDAKernel.__getitem__

    def getitem(self, configuration):
        self._fake_cupy_stream = configuration[2] if len(configuration) > 2 else 0
        return original_getitem(self, configuration)

    def call(self, *args):
        if not self._device:
            for i, a in enumerate(args):
                if _host_array(a) and a.ndim > 0:
                    raise TypeError(f"kernel {self.fn.__name__}: argument {i} is a host numpy.ndarray "
                                    f"{a.shape}; numba-cuda would copy it to the device and back on every launch")
            launches.append((self.fn.__name__, getattr(self, "_fake_cupy_stream", 0), cuda._current[0]))
            args = tuple(_base(a) if isinstance(a, ndarray) else a for a in args)
        return original_call(self, *args)

    simulator.FakeCUDAKernel.__getitem__ = getitem
    simulator.FakeCUDAKernel.__call__ = call
    simulator.FakeCUDAKernel._fake_cupy_audit = True


del contextlib, math
