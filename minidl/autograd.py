"""Define-by-run automatic differentiation.

Every differentiable operation is a :class:`Function` subclass with a ``forward``
and a ``backward`` that work on raw arrays (NumPy, or CuPy on a GPU). Calling
``SomeFunction.apply(*inputs)`` runs ``forward`` on the arrays inside the input
tensors and, when gradients are being recorded, links the output tensor to the
function, so that ``Tensor.backward()`` can walk the graph in reverse
topological order (as in micrograd, with gradients accumulated with ``+=``).

A Function keeps only what its backward needs, in ``self.saved`` (each op says
what in a comment); after backward the saved arrays are dropped unless
``retain_graph=True``.
"""
from __future__ import annotations

import contextlib
import sys
import threading

import numpy as np

_state = threading.local()


def is_grad_enabled() -> bool:
    return getattr(_state, "grad_enabled", True)


def set_grad_enabled(mode: bool) -> None:
    _state.grad_enabled = bool(mode)


@contextlib.contextmanager
def _grad_mode(mode: bool):
    previous = is_grad_enabled()
    set_grad_enabled(mode)
    try:
        yield
    finally:
        set_grad_enabled(previous)


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


def get_array_module(array):
    """Return ``numpy`` or ``cupy`` for an array: the one place the backend is chosen."""
    module = type(array).__module__
    if module.startswith("cupy"):
        import cupy

        return cupy
    return np


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


class Function:
    """Base class of differentiable operations.

    Subclasses implement ``forward(self, *arrays, **options) -> array`` and
    ``backward(self, grad_output) -> tuple`` with one gradient (or ``None``) per
    positional input. ``self.needs_input_grad[i]`` tells backward which
    gradients are wanted, so it can skip the others.
    """

    def __init__(self):
        self.saved = ()
        self.parents = ()
        self.needs_input_grad = ()

    def save_for_backward(self, *items):
        self.saved = items

    def forward(self, *args, **kwargs):  # pragma: no cover - abstract
        raise NotImplementedError(f"{type(self).__name__} must implement forward")

    def backward(self, grad_output):  # pragma: no cover - abstract
        raise NotImplementedError(f"{type(self).__name__} has no backward")

    @classmethod
    def apply(cls, *inputs, **options):
        from .tensor import Tensor

        fn = cls()
        arrays = [x.data if isinstance(x, Tensor) else x for x in inputs]
        _check_same_device(cls.__name__, arrays, inputs, Tensor)
        fn.needs_input_grad = tuple(isinstance(x, Tensor) and x.requires_grad for x in inputs)
        record = is_grad_enabled() and any(fn.needs_input_grad)
        out = fn.forward(*arrays, **options)
        result = Tensor._wrap(out, requires_grad=record)
        if record:
            fn.parents = inputs
            result._ctx = fn
        return result

    @property
    def name(self):
        return type(self).__name__


def _device_name(array):
    if type(array).__module__.startswith("cupy"):
        return f"cuda:{array.device.id}"
    return "cpu"


def _check_same_device(op, arrays, inputs, tensor_type):
    """RuntimeError naming the op and both devices when the Tensor inputs live on different devices.

    The common all-NumPy case costs one type test per input.
    """
    first = None
    for array, x in zip(arrays, inputs):
        if not isinstance(x, tensor_type):
            continue
        if first is None:
            first = array
            continue
        if type(array) is np.ndarray and type(first) is np.ndarray:
            continue
        a, b = _device_name(first), _device_name(array)
        if a != b:
            raise RuntimeError(
                f"{op}: expected all tensors on the same device, but found at least two devices, {a} and {b}; "
                f"move them with .to({a!r}) or .to({b!r})")


def _topological_order(root):
    """Tensors reachable from ``root`` through recorded functions, parents before children."""
    order, visited = [], set()
    stack = [(root, False)]
    while stack:
        node, processed = stack.pop()
        if processed:
            order.append(node)
            continue
        if id(node) in visited:
            continue
        visited.add(id(node))
        stack.append((node, True))
        if node._ctx is not None:
            for parent in node._ctx.parents:
                if getattr(parent, "_ctx", None) is not None and id(parent) not in visited:
                    stack.append((parent, False))
    return order


def backward(root, gradient=None, retain_graph=False):
    """Back-propagate from ``root``: fill ``.grad`` of every leaf tensor that requires grad."""
    from .tensor import Tensor

    if not root.requires_grad:
        raise RuntimeError("backward: the tensor does not require grad and has no grad_fn")
    xp = get_array_module(root.data)
    if gradient is None:
        if root.data.size != 1:
            raise RuntimeError(
                f"backward: grad can be implicitly created only for scalar outputs; "
                f"got a tensor of shape {tuple(root.shape)}: pass gradient=... of that shape"
            )
        grad_root = xp.ones_like(root.data)
    else:
        grad_root = gradient.data if isinstance(gradient, Tensor) else xp.asarray(gradient, dtype=root.dtype)
        if grad_root.shape != root.data.shape:
            raise ValueError(
                f"backward: gradient has shape {tuple(grad_root.shape)}, expected the output's shape "
                f"{tuple(root.shape)}"
            )

    if root._ctx is None:  # a leaf
        _accumulate_leaf(root, grad_root)
        return

    grads = {id(root): grad_root}
    adopted = set()  # ids of arrays already stored as some tensor's .grad in this pass
    if gradient is not None:
        adopted.add(id(grad_root))  # the caller's array: never adopt it
    for node in reversed(_topological_order(root)):
        grad = grads.pop(id(node), None)
        fn = node._ctx
        if grad is None or fn is None:
            continue
        if node._retains_grad:
            _accumulate_leaf(node, grad, adopted)
        if fn.saved is None:
            raise RuntimeError(
                "Trying to backward through the graph a second time; the saved values were freed. "
                "Specify retain_graph=True on the first backward call."
            )
        input_grads = fn.backward(grad)
        if not isinstance(input_grads, tuple):
            input_grads = (input_grads,)
        for parent, g, needed in zip(fn.parents, input_grads, fn.needs_input_grad):
            if g is None or not needed:
                continue
            if g.shape != parent.data.shape:
                g = unbroadcast(g, parent.data.shape)
            if g.dtype != parent.data.dtype:
                g = g.astype(parent.data.dtype)
            if parent._ctx is None:
                _accumulate_leaf(parent, g, adopted)
            elif id(parent) in grads:
                grads[id(parent)] = grads[id(parent)] + g
            else:
                grads[id(parent)] = g
        if not retain_graph:
            fn.saved = None


def _owns_its_memory(array):
    """True when nothing but ``array`` can reach its memory: it owns it, or it is the only view
    of a base array that nothing else references (a kernel's ``out.reshape(...)``)."""
    base = array.base
    if base is None:
        return True
    # references to base when nothing else holds it: array's base slot, the local name, getrefcount's argument
    return getattr(base, "base", None) is None and sys.getrefcount(base) <= 3


def _accumulate_leaf(tensor, grad, adopted=None):
    """Add ``grad`` into ``tensor.grad``.

    A fresh array that a backward just computed is adopted as it is (no copy, as PyTorch
    steals the buffer); a view, a read-only array or an array already given to another
    tensor in this pass is copied, so no two ``.grad`` share memory and in-place updates
    of one (``zero_grad(set_to_none=False)``, clipping) never touch another.
    """
    from .tensor import Tensor

    if tensor.grad is not None:
        tensor.grad.data = tensor.grad.data + grad
        return
    writeable = getattr(grad.flags, "writeable", True)  # CuPy arrays have no such flag
    fresh = adopted is not None and writeable and id(grad) not in adopted and _owns_its_memory(grad)
    if fresh:
        adopted.add(id(grad))
    tensor.grad = Tensor._wrap(grad if fresh else grad.copy(), requires_grad=False)
