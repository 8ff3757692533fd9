"""The array-level Function: a differentiable operation on raw arrays (NumPy, or CuPy on a GPU).

A subclass implements ``forward(self, *arrays, **options) -> array`` and
``backward(self, grad_output) -> tuple`` with one gradient (or ``None``) per
positional input, and keeps in ``self.saved`` only what its backward needs (each op
says what in a comment). This floor never sees a Tensor: calling a Function on arrays
runs it, and the Tensor floor (:func:`minidl.tensor.apply`) is what links its output
into the graph.

The backend is chosen once per call, here: :meth:`Function.__call__` reads the array
module of the first array input and, for a Function with a ``kernel_family``, the kernel
module that serves it (``self.kernels``: ``minidl.kernels.cpu.conv`` for NumPy,
``minidl.kernels.cuda.conv`` for CuPy). Backward reuses ``self.xp`` and
``self.kernels``; nothing is looked up twice.

>>> import numpy as np
>>> from minidl.functions.arith import Mul
>>> fn = Mul()
>>> fn(np.array([2.0]), np.array([3.0]))
array([6.])
>>> fn.backward(np.array([1.0]))
(array([3.]), array([2.]))
"""
from __future__ import annotations

import numpy as np

from minidl.backend import get_array_module, kernels_for


class Function:
    """Base class of differentiable operations on arrays.

    ``needs_input_grad[i]`` tells backward which gradients are wanted, so it can skip
    the others (the Tensor floor sets it; called on bare arrays, every array input
    counts as needing one). ``kernel_family`` names the kernel module the op calls
    (``"conv"``, ``"pooling"``, ...), or is None for ops written in plain array code.
    """

    kernel_family = None
    makes_view = False  # True for ops whose output may be a view of their first input (reshape, basic indexing)

    def __init__(self, kernels=None):
        # kernels: an explicit kernel module, for running one backend's kernels on arrays of
        # another (the CUDA kernels on NumPy arrays under the Numba CUDA simulator, in tests)
        self.kernels = kernels
        self.xp = np
        self.saved = ()
        self.parents = ()
        self.needs_input_grad = None
        self.device_index = None  # the GPU of the inputs, for CuPy arrays

    def __call__(self, *arrays, **options):
        """Choose the backend from the inputs, then run ``forward`` (on their GPU, for CuPy inputs)."""
        self.bind(*arrays)
        if self.device_index is None:  # NumPy arrays
            return self.forward(*arrays, **options)
        # CuPy allocates and numba-cuda launches on the *current* device: make it the inputs' device,
        # so that an op on cuda:1 tensors runs on cuda:1 whatever device the program last selected.
        with self.xp.cuda.Device(self.device_index):
            return self.forward(*arrays, **options)

    def call_backward(self, grad_output):
        """``backward`` on the device the forward ran on (what the autograd engine calls)."""
        if self.device_index is None:
            return self.backward(grad_output)
        with self.xp.cuda.Device(self.device_index):
            return self.backward(grad_output)

    def bind(self, *arrays):
        """Choose the backend once: the array module of the first array input and its kernel module."""
        xp = np
        for a in arrays:  # the first array input decides (numbers and None pass)
            kind = type(a)
            if kind is np.ndarray:
                break
            if kind.__module__.startswith("cupy"):
                xp = get_array_module(a)
                self.device_index = getattr(getattr(a, "device", None), "id", None)
                break
            if isinstance(a, np.ndarray):
                break
        self.xp = xp
        if self.kernels is None and self.kernel_family is not None:
            self.kernels = kernels_for(self.xp, self.kernel_family)
        if self.needs_input_grad is None:
            self.needs_input_grad = tuple(hasattr(a, "dtype") and a.dtype.kind == "f" for a in arrays)
        return self

    def save_for_backward(self, *items):
        self.saved = items

    def forward(self, *args, **kwargs):  # pragma: no cover - abstract
        raise NotImplementedError(f"{type(self).__name__} must implement forward")

    def backward(self, grad_output):  # pragma: no cover - abstract
        raise NotImplementedError(f"{type(self).__name__} has no backward")

    @property
    def name(self):
        return type(self).__name__


def unbroadcast(grad, shape):
    """Sum a broadcast gradient back to ``shape`` (the shape of the input that was broadcast)."""
    if grad.shape == tuple(shape):
        return grad
    # Leading dimensions added by broadcasting.
    extra = grad.ndim - len(shape)
    if extra > 0:
        grad = grad.sum(axis=tuple(range(extra)))
    # Dimensions of size 1 that were stretched.
    axes = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
    if axes:
        grad = grad.sum(axis=axes, keepdims=True)
    return grad
