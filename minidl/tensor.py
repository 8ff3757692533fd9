"""The Tensor floor: the Tensor, where a Function's output becomes a Tensor, and the graph walk.

A Tensor holds one array (NumPy, or CuPy on a GPU), ``requires_grad``, ``grad``, and the
Function that made it. :func:`apply` runs an array-level Function (``minidl.functions``)
on the arrays inside its inputs and, when gradients are being recorded, links the output
to it; :func:`backward` walks that graph in reverse topological order (as in micrograd,
with gradients accumulated with ``+=``) and drops each Function's saved arrays as soon as
its backward has run, unless ``retain_graph=True``.

Methods are thin wrappers over those Functions; the maths lives there, next to each backward.
"""
from __future__ import annotations

import builtins
import functools
import math
import numbers
import os
import sys
import weakref
import time

import numpy as np

from minidl.backend import device_name, get_array_module
from minidl.functions import activation as A
from minidl.functions import arith, reduce, shape as S
from minidl.functions import index as I
from minidl.functions import inplace as _inplace_fns
from minidl.functions import math as M, scan as Sc
from minidl.functions.function import Function, unbroadcast
import minidl.grad_mode as _grad_mode
import minidl.profiler as _profiler
import minidl.random as _random
from minidl.grad_mode import is_grad_enabled

float16 = np.dtype(np.float16)
float32 = np.dtype(np.float32)
float64 = np.dtype(np.float64)
int8 = np.dtype(np.int8)
int16 = np.dtype(np.int16)
int32 = np.dtype(np.int32)
int64 = np.dtype(np.int64)
uint8 = np.dtype(np.uint8)
bool_ = np.dtype(np.bool_)


def as_dtype(dtype):
    """A NumPy dtype from a dtype, a type or a string such as ``"float64"``."""
    if dtype is None:
        return None
    if dtype == "bool":
        return bool_
    try:
        return np.dtype(dtype)
    except TypeError:
        raise TypeError(f"dtype: expected a NumPy dtype or a name such as 'float32', got {dtype!r}") from None


def _infer_dtype(data):
    """PyTorch's defaults: Python floats -> float32, ints -> int64, bools -> bool."""
    if isinstance(data, np.ndarray) or type(data).__module__.startswith("cupy"):
        return None
    flat = data
    while isinstance(flat, (list, tuple)) and len(flat):
        flat = flat[0]
    if isinstance(flat, (bool, np.bool_)):
        return bool_
    if isinstance(flat, numbers.Integral):
        return int64
    if isinstance(flat, numbers.Real):
        return get_default_dtype()
    if isinstance(flat, np.generic):
        return None
    if isinstance(data, (list, tuple)) and len(data) == 0:
        return float32
    return None


def _accepts_axis(method):
    """Let a method with a ``dim`` argument take ``axis=`` too, as PyTorch's NumPy-style alias."""

    @functools.wraps(method)
    def with_axis(self, *args, axis=None, **kwargs):
        if axis is not None:
            if "dim" in kwargs:
                raise TypeError(f"{method.__name__}: got both dim and axis")
            kwargs["dim"] = axis
        return method(self, *args, **kwargs)

    return with_axis


class Tensor:
    """A multi-dimensional array that can record the operations applied to it.

    >>> import minidl
    >>> x = minidl.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    >>> (x * x).sum().backward()
    >>> x.grad.numpy()
    array([[2., 4.],
           [6., 8.]], dtype=float32)
    """

    __array_priority__ = 1000  # numpy scalars/arrays on the left defer to Tensor's operators

    _uses = 0  # recorded ops that have read this tensor (see apply); in-place ops check it
    _version = 0  # bumped by every in-place change of the values (PyTorch's version counter)
    _before = None  # the graph identity this tensor had before its last recorded in-place op
    _hooks = None  # {handle id: hook} of register_hook, or None
    _post_hooks = None  # {handle id: hook} of register_post_accumulate_grad_hook (leaves), or None
    _view_of = None  # (view Function, base tensor) when this tensor's array is a view made by a view op
    _grad_node = None  # the AccumulateGrad node of a leaf, made on first use by grad_fn.next_functions

    def __init__(self, data, dtype=None, requires_grad=False):
        if isinstance(data, Tensor):
            data = data.data
        dtype = as_dtype(dtype) or _infer_dtype(data)
        xp = get_array_module(data)
        array = xp.asarray(data, dtype=dtype)
        if requires_grad and array.dtype.kind not in "fc":
            raise TypeError(f"requires_grad: only floating point tensors can require gradients, got dtype {array.dtype}")
        self.data = array
        self.requires_grad = bool(requires_grad)
        self.grad = None
        self._ctx = None
        self._retains_grad = False

    @classmethod
    def _wrap(cls, array, requires_grad=False):
        t = cls.__new__(cls)
        t.data = array
        t.requires_grad = requires_grad
        t.grad = None
        t._ctx = None
        t._retains_grad = False
        return t

    # ------------------------------------------------------------------ basics
    @property
    def shape(self):
        return tuple(self.data.shape)

    def size(self, dim=None):
        return self.shape if dim is None else self.shape[dim]

    @property
    def dtype(self):
        return self.data.dtype

    @property
    def ndim(self):
        return self.data.ndim

    def dim(self):
        return self.data.ndim

    def numel(self):
        return int(self.data.size)

    def __len__(self):
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.shape[0]

    @property
    def device(self):
        from .device import device_of

        return device_of(self.data)

    @property
    def is_leaf(self):
        return self._ctx is None

    @property
    def grad_fn(self):
        """The node that made this tensor (``name()``, ``next_functions``), or None for a leaf."""
        return None if self._ctx is None else _node_of(self._ctx)

    def numpy(self):
        """The values as a NumPy array (a copy from the GPU for CUDA tensors)."""
        if get_array_module(self.data) is np:
            return self.data
        return self.data.get()

    def item(self):
        if self.data.size != 1:
            raise ValueError(f"item: only one-element tensors can be converted, got shape {self.shape}")
        return self.data.reshape(()).item()

    def tolist(self):
        return self.numpy().tolist()

    def detach(self):
        return Tensor._wrap(self.data, requires_grad=False)

    def detach_(self):
        """Make this tensor a leaf that does not require grad, in place (it keeps its values)."""
        self._ctx, self.requires_grad = None, False
        return self

    def clone(self):
        return self * 1 if self.requires_grad else Tensor._wrap(self.data.copy())

    def requires_grad_(self, requires_grad=True):
        if self._ctx is not None and not requires_grad:
            raise RuntimeError("you can only change requires_grad flags of leaf variables. If you want to use a "
                               "computed variable in a subgraph that doesn't require differentiation use "
                               "var_no_grad = var.detach().")
        if requires_grad and self.dtype.kind not in "fc":
            raise TypeError(f"requires_grad: only floating point tensors can require gradients, got {self.dtype}")
        self.requires_grad = requires_grad
        return self

    def retain_grad(self):
        """Keep ``.grad`` of a non-leaf after backward (a leaf keeps it anyway)."""
        if not self.requires_grad:
            raise RuntimeError("can't retain_grad on Tensor that has requires_grad=False")
        if self._ctx is not None:
            self._retains_grad = True

    @property
    def retains_grad(self):
        return self._retains_grad

    def register_hook(self, hook):
        """Call ``hook(grad)`` with this tensor's gradient during backward; a returned Tensor replaces it.

        Returns a handle whose ``remove()`` unregisters the hook, as PyTorch's.
        """
        if not self.requires_grad:
            raise RuntimeError("cannot register a hook on a tensor that doesn't require gradient")
        if self._hooks is None:
            self._hooks = {}
        handle = _HookHandle(self._hooks)
        self._hooks[handle.id] = hook
        return handle

    def register_post_accumulate_grad_hook(self, hook):
        """Call ``hook(tensor)`` on a leaf once backward has accumulated its whole gradient into ``.grad``.

        It runs as soon as the walk has passed every node that feeds this leaf, while the rest of
        the backward is still to come (DistributedDataParallel starts its all-reduces from it).
        Returns a handle whose ``remove()`` unregisters the hook, as PyTorch's.
        """
        if not self.requires_grad:
            raise RuntimeError("cannot register a hook on a tensor that doesn't require gradient")
        if self._ctx is not None:
            raise RuntimeError("post accumulate grad hooks cannot be registered on non-leaf tensors")
        if self._post_hooks is None:
            self._post_hooks = {}
        global _post_hooks_registered
        _post_hooks_registered = True  # from now on the walk looks for them
        handle = _HookHandle(self._post_hooks)
        self._post_hooks[handle.id] = hook
        return handle

    def is_inference(self):
        """False: minidl's inference_mode is no_grad, and makes ordinary tensors."""
        return False

    def backward(self, gradient=None, retain_graph=None, create_graph=False, inputs=None):
        """Accumulate the gradient of this tensor into ``.grad`` of the leaves (of ``inputs`` only, if given)."""
        if create_graph:
            raise NotImplementedError("backward: create_graph=True (double backward) is not supported by minidl")
        if inputs is None:
            backward(self, gradient, bool(retain_graph))
            return
        inputs = (inputs,) if isinstance(inputs, Tensor) else tuple(inputs)
        for t, g in zip(inputs, run_backward([self], [gradient], bool(retain_graph), inputs=inputs)):
            if g is not None:
                _accumulate_leaf(t, g)

    def to(self, *args, dtype=None, device=None):
        """``t.to(dtype)``, ``t.to("cuda")`` or ``t.to(device=..., dtype=...)``."""
        from .device import Device

        for a in args:
            if isinstance(a, (str, Device)):
                device = a
            else:
                dtype = a
        out = self
        if device is not None and Device(device) != self.device:
            out = apply(_ToDevice, out, device=device)  # the one copy
        if dtype is not None and as_dtype(dtype) != out.dtype:
            out = out.type(dtype)
        return out

    def cpu(self):
        return self.to("cpu")

    def cuda(self, index=0):
        return self.to(f"cuda:{index}")

    def type(self, dtype):
        dtype = as_dtype(dtype)
        if dtype == self.dtype:
            return self
        if self.requires_grad and dtype.kind in "fc":
            return apply(_Cast, self, dtype=dtype)
        return Tensor._wrap(self.data.astype(dtype))

    def float(self):
        return self.type(float32)

    def double(self):
        return self.type(float64)

    def long(self):
        return self.type(int64)

    def int(self):
        return self.type(int32)

    def bool(self):
        return self.type(bool_)

    def __repr__(self):
        body = np.array2string(self.numpy(), separator=", ", prefix="tensor(", precision=4)
        extras = []
        if self.dtype not in (float32, int64, bool_):
            extras.append(f"dtype=minidl.{self.dtype}")
        if self._ctx is not None:
            extras.append(f"grad_fn=<{_node_of(self._ctx).name()}>")
        elif self.requires_grad:
            extras.append("requires_grad=True")
        return "tensor(" + body + "".join(", " + e for e in extras) + ")"

    def __bool__(self):
        if self.data.size != 1:
            raise RuntimeError(f"Boolean value of a tensor with {self.data.size} values is ambiguous")
        return bool(self.data)

    def __float__(self):
        return builtins.float(self.item())

    def __int__(self):
        return int(self.item())

    def __index__(self):
        if self.dtype.kind not in "iu" or self.data.size != 1:
            raise TypeError("only integer tensors of a single element can be converted to an index")
        return int(self.item())

    def __array__(self, dtype=None, copy=None):
        a = self.numpy()
        return a if dtype is None else a.astype(dtype)

    def __hash__(self):
        return id(self)

    # ------------------------------------------------------------------ arithmetic
    def _other(self, other):
        """Turn a Python number or array into a Tensor of a matching dtype (scalars do not promote)."""
        if isinstance(other, Tensor):
            return other
        xp = get_array_module(self.data)
        if isinstance(other, numbers.Number) and not isinstance(other, np.ndarray):
            if isinstance(other, (bool, np.bool_)):
                dtype = self.dtype
            elif isinstance(other, numbers.Integral):
                dtype = self.dtype
            else:  # a float scalar keeps a float tensor's dtype, makes an integer tensor the default float
                dtype = self.dtype if self.dtype.kind == "f" else get_default_dtype()
            return Tensor._wrap(xp.asarray(other, dtype=dtype))
        return Tensor._wrap(xp.asarray(other))

    def _binary(self, fn, other, reverse=False):
        same = other.dtype == self.dtype if isinstance(other, Tensor) else (
            self.dtype.kind == "f" and isinstance(other, numbers.Real))  # float tensor, Python number: no promotion
        if not same:  # PyTorch's promotion (result_type)
            a, b = _promoted(self, other)
            other = b
            if a is not self:
                return a._binary(fn, other, reverse)
        other = self._other(other)
        a, b = (other, self) if reverse else (self, other)
        _check_broadcast(fn.__name__.lower(), a.shape, b.shape)
        return apply(fn, a, b)

    def __add__(self, other):
        return self._binary(arith.Add, other)

    def __radd__(self, other):
        return self._binary(arith.Add, other, reverse=True)

    def __sub__(self, other):
        return self._binary(arith.Sub, other)

    def __rsub__(self, other):
        return self._binary(arith.Sub, other, reverse=True)

    def __mul__(self, other):
        return self._binary(arith.Mul, other)

    def __rmul__(self, other):
        return self._binary(arith.Mul, other, reverse=True)

    def __truediv__(self, other):
        if self.dtype.kind in "iub" and not (isinstance(other, Tensor) and other.dtype.kind == "f"):
            return self._floating() / other  # true division of integers gives floats, as PyTorch
        return self._binary(arith.Div, other)

    def __rtruediv__(self, other):
        if self.dtype.kind in "iub":
            return other / self._floating()
        return self._binary(arith.Div, other, reverse=True)

    def __pow__(self, exponent):
        if isinstance(exponent, numbers.Number):
            if self.dtype.kind in "iub" and not isinstance(exponent, numbers.Integral):
                return self._floating() ** exponent
            if self.dtype.kind in "iu" and exponent < 0:
                raise RuntimeError("Integers to negative integer powers are not allowed.")
            return apply(arith.PowScalar, self, exponent=exponent)
        return self._binary(arith.Pow, exponent)

    def __rpow__(self, base):
        return self._binary(arith.Pow, base, reverse=True)

    def __neg__(self):
        return apply(arith.Neg, self)

    def __pos__(self):
        return self

    def __matmul__(self, other):
        return matmul(self, other)

    def __rmatmul__(self, other):
        return matmul(self._other(other), self)

    def __iadd__(self, other):
        return self.add_(other)

    def __isub__(self, other):
        return self.sub_(other)

    def __imul__(self, other):
        return self.mul_(other)

    def __itruediv__(self, other):
        return self.div_(other)

    # comparisons: no gradient
    def _compare(self, op, other):
        other = other.data if isinstance(other, Tensor) else other
        return Tensor._wrap(op(self.data, other))

    def __eq__(self, other):  # noqa: D105
        return self._compare(lambda a, b: a == b, other)

    def __ne__(self, other):
        return self._compare(lambda a, b: a != b, other)

    def __lt__(self, other):
        return self._compare(lambda a, b: a < b, other)

    def __le__(self, other):
        return self._compare(lambda a, b: a <= b, other)

    def __gt__(self, other):
        return self._compare(lambda a, b: a > b, other)

    def __ge__(self, other):
        return self._compare(lambda a, b: a >= b, other)

    def __invert__(self):
        return self.bitwise_not()

    def __and__(self, other):
        return self.bitwise_and(other)

    def __or__(self, other):
        return self.bitwise_or(other)

    def __xor__(self, other):
        return self.bitwise_xor(other)

    def eq(self, other):
        return self == other

    def ne(self, other):
        return self != other

    def lt(self, other):
        return self < other

    def le(self, other):
        return self <= other

    def gt(self, other):
        return self > other

    def ge(self, other):
        return self >= other

    # ------------------------------------------------------------------ math
    def add(self, other):
        return self + other

    def sub(self, other):
        return self - other

    def mul(self, other):
        return self * other

    def neg(self):
        return -self

    def pow(self, exponent):
        return self ** exponent

    def exp(self):
        return apply(arith.Exp, self)

    def log(self):
        return apply(arith.Log, self)

    def sqrt(self):
        return apply(arith.Sqrt, self)

    def rsqrt(self):
        return apply(arith.Sqrt, self) ** -1

    def abs(self):
        return apply(arith.Abs, self)

    def clamp(self, min=None, max=None):
        if min is None and max is None:
            raise ValueError("clamp: at least one of min and max must be given")
        if isinstance(min, Tensor) or isinstance(max, Tensor):
            # tensor bounds: the gradient goes to whichever of input, min, max was returned
            low = None if min is None else _promoted(self, min)[1]
            high = None if max is None else _promoted(self, max)[1]
            return apply(M.ClampTensor, self, low, high)
        return apply(arith.Clamp, self, min=min, max=max)

    clip = clamp

    def maximum(self, other):
        return maximum(self, other)

    def minimum(self, other):
        return minimum(self, other)

    def matmul(self, other):
        return matmul(self, other)

    # ------------------------------------------------------------------ reductions
    def sum(self, dim=None, keepdim=False, dtype=None, axis=None):
        """Sum over all elements or ``dim``; integers and bools sum to int64 unless ``dtype`` says otherwise."""
        dim = _dim_or_axis(dim, axis)
        if dtype is not None:
            x = self.type(dtype)
        elif self.dtype.kind in "iub" and self.dtype != int64:
            x = self.type(int64)
        else:
            x = self
        return apply(reduce.Sum, x, dim=dim, keepdim=keepdim)

    def mean(self, dim=None, keepdim=False, dtype=None, axis=None):
        dim = _dim_or_axis(dim, axis)
        x = self.type(dtype) if dtype is not None else self
        if x.dtype.kind not in "fc":
            raise TypeError(f"mean: expected a floating point tensor, got dtype {x.dtype}")
        return apply(reduce.Mean, x, dim=dim, keepdim=keepdim)

    def var(self, dim=None, keepdim=False, unbiased=None, correction=None, axis=None):
        dim = _dim_or_axis(dim, axis)
        if isinstance(dim, bool):
            dim, unbiased = None, dim  # var(False): the positional unbiased of PyTorch's other overload
        if correction is None:
            correction = 0 if unbiased is False else 1
        return apply(reduce.Var, self, dim=dim, keepdim=keepdim, correction=correction)

    def std(self, dim=None, keepdim=False, unbiased=None, correction=None, axis=None):
        return self.var(dim, keepdim, unbiased, correction, axis).sqrt()

    def max(self, dim=None, keepdim=False, axis=None):
        """Over all elements a 0-d tensor; over ``dim`` a ``(values, indices)`` pair, as PyTorch."""
        dim = _dim_or_axis(dim, axis)
        if isinstance(dim, Tensor):
            return maximum(self, dim)
        return self._maxmin(dim, keepdim, largest=True)

    def min(self, dim=None, keepdim=False, axis=None):
        dim = _dim_or_axis(dim, axis)
        if isinstance(dim, Tensor):
            return minimum(self, dim)
        return self._maxmin(dim, keepdim, largest=False)

    def _maxmin(self, dim, keepdim, largest):
        values = apply(reduce.MaxMin, self, dim=dim, keepdim=keepdim, largest=largest)
        if dim is None:
            return values
        index = self.argmax(dim, keepdim) if largest else self.argmin(dim, keepdim)
        return MaxMinResult(values, index)

    def amax(self, dim=None, keepdim=False, axis=None):
        return self._amaxmin(_dim_or_axis(dim, axis), keepdim, largest=True)

    def amin(self, dim=None, keepdim=False, axis=None):
        return self._amaxmin(_dim_or_axis(dim, axis), keepdim, largest=False)

    def _amaxmin(self, dim, keepdim, largest):
        """amax/amin over ``dim`` (an int, a tuple or all); ties share the gradient evenly, as PyTorch."""
        return apply(M.AMaxMin, self, dim=dim, keepdim=keepdim, largest=largest)

    def argmax(self, dim=None, keepdim=False, axis=None):
        dim = _dim_or_axis(dim, axis)
        if dim is None:
            return Tensor._wrap(self.data.argmax().astype(int64))
        out = self.data.argmax(axis=dim)
        return Tensor._wrap((get_array_module(out).expand_dims(out, dim) if keepdim else out).astype(int64))

    def argmin(self, dim=None, keepdim=False, axis=None):
        dim = _dim_or_axis(dim, axis)
        if dim is None:
            return Tensor._wrap(self.data.argmin().astype(int64))
        out = self.data.argmin(axis=dim)
        return Tensor._wrap((get_array_module(out).expand_dims(out, dim) if keepdim else out).astype(int64))

    def argsort(self, dim=-1, descending=False, stable=False):
        """Indices that sort along ``dim`` (always stable here; NaN sorts as the largest value)."""
        if self.ndim == 0:
            return Tensor._wrap(np.zeros((), dtype=int64))
        return Tensor._wrap(Sc.sort_indices(self.data, dim, descending).astype(int64))

    def topk(self, k, dim=-1, largest=True, sorted=True):
        order = self.argsort(dim=dim, descending=largest)
        xp = get_array_module(order.data)
        index = Tensor._wrap(xp.take(order.data, xp.arange(k), axis=dim))  # positions on order's device
        return MaxMinResult(self.gather(dim, index), index)

    def gather(self, dim, index):
        return self[_gather_index(self.shape, dim, _int_index(index, "gather"))]

    # ---- indexing and linear algebra (issue 15)
    def mm(self, mat2):
        """Matrix product of two 2-D tensors (no broadcasting; use matmul for that)."""
        mat2 = _t(mat2)
        if self.ndim != 2 or mat2.ndim != 2 or self.shape[1] != mat2.shape[0]:
            raise RuntimeError(f"mm: expected two 2-D tensors that can be multiplied, got shapes {self.shape} "
                               f"and {mat2.shape}")
        return matmul(self, mat2)

    def bmm(self, mat2):
        """Batched matrix product of two 3-D tensors with the same batch size."""
        mat2 = _t(mat2)
        if self.ndim != 3 or mat2.ndim != 3 or self.shape[0] != mat2.shape[0]:
            raise RuntimeError(f"bmm: expected two 3-D tensors with the same batch size, got shapes "
                               f"{self.shape} and {mat2.shape}")
        return matmul(self, mat2)

    def mv(self, vec):
        """Matrix (2-D) times vector (1-D)."""
        vec = _t(vec)
        if self.ndim != 2 or vec.ndim != 1:
            raise RuntimeError(f"mv: expected a 2-D and a 1-D tensor, got shapes {self.shape} and {vec.shape}")
        return matmul(self, vec)

    def dot(self, other):
        """Inner product of two 1-D tensors of the same size."""
        other = _t(other)
        if self.ndim != 1 or other.ndim != 1:
            raise RuntimeError(f"dot: expected two 1-D tensors, got shapes {self.shape} and {other.shape}")
        if self.shape != other.shape:
            raise RuntimeError(f"dot: inconsistent tensor size, {self.shape[0]} and {other.shape[0]} elements")
        return matmul(self, other)

    def outer(self, vec2):
        """Outer product of two 1-D tensors: out[i, j] = self[i] * vec2[j]."""
        vec2 = _t(vec2)
        if self.ndim != 1 or vec2.ndim != 1:
            raise RuntimeError(f"outer: expected two 1-D tensors, got shapes {self.shape} and {vec2.shape}")
        return self.reshape(-1, 1) * vec2.reshape(1, -1)

    ger = outer

    def inner(self, other):
        """Sum of products over the last dimension of both (a plain product when either is 0-d)."""
        other = _t(other)
        if self.ndim == 0 or other.ndim == 0:
            return self * other
        if self.shape[-1] != other.shape[-1]:
            raise RuntimeError(f"inner: the last dimensions differ, {self.shape} and {other.shape}")
        k = self.shape[-1]
        flat = self.reshape(-1, k) @ other.reshape(-1, k).T
        return flat.reshape(self.shape[:-1] + other.shape[:-1])

    def addmm(self, mat1, mat2, beta=1, alpha=1):
        """beta * self + alpha * (mat1 @ mat2), self broadcast to the product's shape."""
        return _scaled_sum(self, _t(mat1).mm(mat2), beta, alpha)

    def baddbmm(self, batch1, batch2, beta=1, alpha=1):
        """beta * self + alpha * (batch1 @ batch2) for 3-D batches."""
        return _scaled_sum(self, _t(batch1).bmm(batch2), beta, alpha)

    def addbmm(self, batch1, batch2, beta=1, alpha=1):
        """beta * self + alpha * sum over the batch of batch1[b] @ batch2[b]."""
        return _scaled_sum(self, _t(batch1).bmm(batch2).sum(dim=0), beta, alpha)

    def addmv(self, mat, vec, beta=1, alpha=1):
        """beta * self + alpha * (mat @ vec)."""
        return _scaled_sum(self, _t(mat).mv(vec), beta, alpha)

    def addr(self, vec1, vec2, beta=1, alpha=1):
        """beta * self + alpha * outer(vec1, vec2)."""
        return _scaled_sum(self, _t(vec1).outer(vec2), beta, alpha)

    @_accepts_axis
    def cross(self, other, dim=None):
        """Cross product of 3-vectors along ``dim`` (None: the first dimension of size 3, as torch.cross)."""
        other = _t(other)
        shape = np.broadcast_shapes(self.shape, other.shape)
        if dim is None:
            dim = next((d for d, n in enumerate(shape) if n == 3), None)
            if dim is None:
                raise RuntimeError(f"cross: no dimension of size 3 in shape {tuple(shape)}")
        dim = _dim(dim, len(shape), "cross")
        if shape[dim] != 3:
            raise RuntimeError(f"cross: dimension {dim} does not have size 3 (shape {tuple(shape)})")
        a, b = self.expand(shape), other.expand(shape)
        x = [a.select(dim, i) for i in range(3)]
        y = [b.select(dim, i) for i in range(3)]
        return stack([x[1] * y[2] - x[2] * y[1], x[2] * y[0] - x[0] * y[2], x[0] * y[1] - x[1] * y[0]], dim=dim)

    def tril(self, diagonal=0):
        """The lower triangle of the last two dims (on and below ``diagonal``), zeros above."""
        if self.ndim < 2:
            raise RuntimeError(f"tril: input tensor must have at least 2 dimensions, got {self.ndim}")
        return apply(I.Tri, self, diagonal=int(diagonal), upper=False)

    def triu(self, diagonal=0):
        """The upper triangle of the last two dims (on and above ``diagonal``), zeros below."""
        if self.ndim < 2:
            raise RuntimeError(f"triu: input tensor must have at least 2 dimensions, got {self.ndim}")
        return apply(I.Tri, self, diagonal=int(diagonal), upper=True)

    def diagonal(self, offset=0, dim1=0, dim2=1):
        """The diagonal ``offset`` of the plane (dim1, dim2), appended as the last dimension."""
        d1, d2 = _dim(dim1, self.ndim, "diagonal"), _dim(dim2, self.ndim, "diagonal")
        if d1 == d2:
            raise RuntimeError(f"diagonal: dim1 and dim2 cannot be the same dimension, got {dim1} and {dim2}")
        return apply(I.Diagonal, self, offset=int(offset), dim1=d1, dim2=d2)

    def diag_embed(self, offset=0, dim1=-2, dim2=-1):
        """Each last-dim vector put on the diagonal ``offset`` of a new (dim1, dim2) plane."""
        d1, d2 = _dim(dim1, self.ndim + 1, "diag_embed"), _dim(dim2, self.ndim + 1, "diag_embed")
        if d1 == d2:
            raise RuntimeError(f"diag_embed: dim1 and dim2 cannot be the same dimension, got {dim1} and {dim2}")
        return apply(I.DiagEmbed, self, offset=int(offset), dim1=d1, dim2=d2)

    def diag(self, diagonal=0):
        """1-D: a square matrix with the vector on diagonal ``diagonal``; 2-D: that diagonal as a vector."""
        if self.ndim == 1:
            return self.diag_embed(offset=diagonal, dim1=0, dim2=1)
        if self.ndim == 2:
            return self.diagonal(offset=diagonal)
        raise RuntimeError(f"diag: expected a 1-D or 2-D tensor, got {self.ndim} dimensions")

    def trace(self):
        """Sum of the main diagonal of a 2-D tensor."""
        if self.ndim != 2:
            raise RuntimeError(f"trace: expected a 2-D tensor, got {self.ndim} dimensions")
        return self.diagonal().sum()

    def roll(self, shifts, dims=None):
        """Shift elements cyclically; without ``dims`` the flattened tensor is rolled and reshaped back."""
        if dims is None:
            if isinstance(shifts, (tuple, list)):
                if len(shifts) != 1:
                    raise RuntimeError(f"roll: without dims, shifts must be one number, got {tuple(shifts)}")
                shifts = shifts[0]
            return apply(I.Roll, self, shifts=int(shifts), dims=None)
        shifts = tuple(shifts) if isinstance(shifts, (tuple, list)) else (shifts,)
        dims = tuple(dims) if isinstance(dims, (tuple, list)) else (dims,)
        if len(shifts) != len(dims):
            raise RuntimeError(f"roll: shifts and dims must have the same length, got {len(shifts)} and {len(dims)}")
        dims = tuple(_dim(d, self.ndim, "roll") for d in dims)
        return apply(I.Roll, self, shifts=tuple(int(s) for s in shifts), dims=dims)

    def flip(self, *args, dims=None):
        """Reverse the order of elements along each of ``dims`` (``x.flip(0, 1)``, ``x.flip((0, 1))`` or ``dims=``)."""
        dims = _shape_arg(args) if args else tuple(dims) if isinstance(dims, (tuple, list)) else (
            () if dims is None else (dims,))
        dims = tuple(_dim(d, self.ndim, "flip") for d in dims)
        if len(set(dims)) != len(dims):
            raise RuntimeError(f"flip: dim {dims} appears multiple times in the list of dims")
        return apply(I.Flip, self, dims=dims)

    def fliplr(self):
        """Flip the columns (dim 1); needs at least 2 dimensions."""
        if self.ndim < 2:
            raise RuntimeError("fliplr: input must have at least 2 dimensions")
        return self.flip(1)

    def flipud(self):
        """Flip the rows (dim 0); needs at least 1 dimension."""
        if self.ndim < 1:
            raise RuntimeError("flipud: input must have at least 1 dimension")
        return self.flip(0)

    def rot90(self, k=1, dims=(0, 1)):
        """Rotate by 90 degrees ``k`` times in the plane ``dims``, from the first axis towards the second."""
        if len(dims) != 2:
            raise RuntimeError(f"rot90: expected two dims, got {len(dims)}")
        d0, d1 = _dim(dims[0], self.ndim, "rot90"), _dim(dims[1], self.ndim, "rot90")
        if d0 == d1:
            raise RuntimeError(f"rot90: the two dims must differ, got {tuple(dims)}")
        k %= 4
        if k == 0:
            return self.flip(())
        if k == 2:
            return self.flip(d0, d1)
        if k == 1:  # flip the second axis, then exchange the two
            return self.flip(d1).transpose(d0, d1)
        return self.transpose(d0, d1).flip(d1)  # k == 3: exchange, then flip the second axis

    @_accepts_axis
    def repeat_interleave(self, repeats=None, dim=None, output_size=None):
        """Repeat each element ``repeats`` times (an int, or one count per element) along ``dim``.

        Without ``dim`` the flattened tensor is repeated. ``minidl.repeat_interleave(counts)`` alone
        repeats each index ``i`` ``counts[i]`` times.
        """
        if repeats is None:  # torch.repeat_interleave(repeats): the indices 0..n-1 repeated
            counts = self.numpy()
            if self.ndim > 1:
                raise RuntimeError("repeat_interleave: repeats must be a 0-D or 1-D tensor")
            return Tensor._wrap(get_array_module(self.data).asarray(np.repeat(np.arange(counts.size), counts)).astype(int64))
        source = self.reshape(-1) if dim is None else self
        dim = 0 if dim is None else _dim(dim, self.ndim, "repeat_interleave")
        n = source.shape[dim] if source.ndim else 1
        counts = repeats.numpy() if isinstance(repeats, Tensor) else np.asarray(repeats)
        if counts.ndim > 1 or (counts.ndim == 1 and counts.size not in (1, n)):
            raise RuntimeError(f"repeat_interleave: repeats must have shape ({n},) or be a single number, "
                               f"got shape {counts.shape}")
        if (counts < 0).any():
            raise RuntimeError("repeat_interleave: repeats cannot be negative")
        picks = np.repeat(np.arange(n), counts.reshape(-1) if counts.size == n else int(counts.reshape(-1)[0]))
        return source.index_select(dim, get_array_module(self.data).asarray(picks))

    def nonzero(self, as_tuple=False):
        """Indices of the nonzero elements: an (n, ndim) int64 tensor, or one 1-D tensor per dim."""
        xp = get_array_module(self.data)
        if as_tuple:
            found = xp.nonzero(self.data.reshape(1) if self.ndim == 0 else self.data)
            return tuple(Tensor._wrap(i.astype(int64)) for i in found)
        return Tensor._wrap(xp.argwhere(self.data).astype(int64))

    def argwhere(self):
        return self.nonzero()

    def masked_fill(self, mask, value):
        """``self`` with the positions where ``mask`` is True replaced by ``value`` (a number or 0-d tensor)."""
        mask = _bool_mask(mask, "masked_fill")
        if np.broadcast_shapes(mask.shape, self.shape) != self.shape:
            raise RuntimeError(f"masked_fill: mask of shape {mask.shape} cannot be broadcast to {self.shape}")
        if isinstance(value, Tensor):
            if value.ndim != 0:
                raise RuntimeError(f"masked_fill: only a 0-d value tensor is supported, got {value.ndim} dimensions")
            if value.dtype != self.dtype:
                value = value.type(self.dtype)
        else:
            value = Tensor._wrap(get_array_module(self.data).asarray(value, dtype=self.dtype))
        return apply(arith.Where, mask, value, self)

    def masked_select(self, mask):
        """The elements where ``mask`` (broadcast with ``self``) is True, as a 1-D tensor."""
        mask = _bool_mask(mask, "masked_select")
        shape = np.broadcast_shapes(mask.shape, self.shape)
        xp = get_array_module(self.data)
        return self.expand(shape)[xp.broadcast_to(mask, shape)]

    @_accepts_axis
    def index_select(self, dim, index):
        """The slices ``index`` (1-D integer) along ``dim``, in that order."""
        dim = _dim(dim, self.ndim, "index_select")
        index = _int_index(index, "index_select")
        if index.ndim > 1:
            raise RuntimeError(f"index_select: index must be 0-D or 1-D, got {index.ndim} dimensions")
        if self.ndim == 0:
            return self.reshape(1)[index.reshape(-1)].reshape(())
        return self[(slice(None),) * dim + (index.reshape(-1),)]

    @_accepts_axis
    def index_add(self, dim, index, source, alpha=1):
        """A copy of ``self`` with ``alpha * source`` slices added at ``index`` along ``dim`` (out-of-place)."""
        dim = _dim(dim, self.ndim, "index_add")
        index = _int_index(index, "index_add").reshape(-1)
        source = self._other(source)
        if source.ndim != self.ndim or source.shape[dim] != index.size or any(
                source.shape[d] != self.shape[d] for d in range(self.ndim) if d != dim):
            raise RuntimeError(f"index_add: source of shape {source.shape} does not fit self {self.shape} "
                               f"with {index.size} indices along dim {dim}")
        return apply(I.IndexAdd, self, source, index=index, dim=dim, alpha=alpha)

    def take(self, index):
        """Elements of the flattened tensor at ``index``; the result has ``index``'s shape."""
        return self.reshape(-1)[_int_index(index, "take")]

    @_accepts_axis
    def take_along_dim(self, indices, dim=None):
        """gather along ``dim`` after broadcasting ``self`` and ``indices`` in the other dims."""
        indices = _int_index(indices, "take_along_dim")
        if dim is None:
            return self.reshape(-1)[indices.reshape(-1)]
        dim = _dim(dim, self.ndim, "take_along_dim")
        if indices.ndim != self.ndim:
            raise RuntimeError(f"take_along_dim: input and indices should have the same number of dimensions, "
                               f"got {self.ndim} and {indices.ndim}")
        others = np.broadcast_shapes(tuple(1 if d == dim else n for d, n in enumerate(self.shape)),
                                     tuple(1 if d == dim else n for d, n in enumerate(indices.shape)))
        source = self.expand(tuple(self.shape[dim] if d == dim else n for d, n in enumerate(others)))
        xp = get_array_module(indices)
        picks = xp.broadcast_to(indices, tuple(indices.shape[dim] if d == dim else n for d, n in enumerate(others)))
        return source.gather(dim, Tensor._wrap(picks))

    @_accepts_axis
    def scatter(self, dim, index, src=None, value=None, reduce=None):
        """A copy of ``self`` with ``src`` (a tensor or a number) written at ``index`` along ``dim``.

        ``reduce="add"`` or ``"multiply"`` combines instead of overwriting (as scatter_reduce's
        'sum' and 'prod' with include_self=True).
        """
        if src is None and value is None:
            raise TypeError("scatter: expected src or value")
        src = value if src is None else src
        if reduce is not None and reduce not in ("add", "multiply"):
            raise RuntimeError(f"scatter: reduce must be 'add' or 'multiply', got {reduce!r}")
        mode = {None: None, "add": "sum", "multiply": "prod"}[reduce]
        return self._scatter("scatter", dim, index, src, mode, True)

    @_accepts_axis
    def scatter_add(self, dim, index, src):
        """A copy of ``self`` with every element of ``src`` added at ``index`` along ``dim``."""
        return self._scatter("scatter_add", dim, index, src, "sum", True)

    @_accepts_axis
    def scatter_reduce(self, dim, index, src, reduce, include_self=True):
        """Combine ``src`` into a copy of ``self`` at ``index`` along ``dim``: 'sum', 'prod', 'mean', 'amax', 'amin'."""
        if reduce not in ("sum", "prod", "mean", "amax", "amin"):
            raise RuntimeError(f"scatter_reduce: reduce argument must be one of 'sum', 'prod', 'mean', 'amax', "
                               f"'amin', got {reduce!r}")
        return self._scatter("scatter_reduce", dim, index, src, reduce, include_self)

    def _scatter(self, name, dim, index, src, reduce, include_self):
        dim = _dim(dim, self.ndim, name)
        index = _int_index(index, name)
        xp = get_array_module(self.data)
        if not isinstance(src, Tensor):
            if not isinstance(src, numbers.Number):
                raise TypeError(f"{name}: src must be a Tensor or a number, got {type(src).__name__}")
            src = Tensor._wrap(xp.full(index.shape, src, dtype=self.dtype))
        if src.dtype != self.dtype:
            raise RuntimeError(f"{name}: expected self.dtype to be equal to src.dtype, got {self.dtype} and {src.dtype}")
        if index.ndim != self.ndim or (index.size and src.ndim != self.ndim):
            raise RuntimeError(f"{name}: index ({index.ndim}-D), self ({self.ndim}-D) and src ({src.ndim}-D) "
                               f"should all have the same number of dimensions")
        for d in range(index.ndim):
            if index.shape[d] > src.shape[d] or (d != dim and index.shape[d] > self.shape[d]):
                raise RuntimeError(f"{name}: expected index {tuple(index.shape)} to be no larger than self "
                                   f"{self.shape} apart from dimension {dim} and to be no larger than src {src.shape}")
        if index.size and (index.min() < 0 or index.max() >= self.shape[dim]):
            raise RuntimeError(f"{name}: index out of bounds for dimension {dim} with size {self.shape[dim]}")
        return apply(I.ScatterReduce, self, src, index=index, dim=dim, reduce=reduce, include_self=include_self)

    @_accepts_axis
    def unflatten(self, dim, sizes):
        """Split dimension ``dim`` into ``sizes`` (one of them may be -1)."""
        dim = _dim(dim, self.ndim, "unflatten")
        sizes = tuple(int(s) for s in sizes)
        if not sizes:
            raise RuntimeError("unflatten: sizes must be non-empty")
        known = math.prod(s for s in sizes if s != -1)
        if sizes.count(-1) > 1 or (-1 not in sizes and known != self.shape[dim]) or (
                -1 in sizes and (known == 0 or self.shape[dim] % known)):
            raise RuntimeError(f"unflatten: sizes {sizes} do not multiply to dimension {dim}'s size {self.shape[dim]}")
        sizes = tuple(self.shape[dim] // known if s == -1 else s for s in sizes)
        return self.reshape(self.shape[:dim] + sizes + self.shape[dim + 1:])

    def unfold(self, dimension, size, step):
        """Every window of ``size`` elements along ``dimension``, ``step`` apart, as a new last dimension."""
        if self.ndim == 0:
            if dimension not in (0, -1):
                raise IndexError(f"unfold: dimension {dimension} out of range for a 0-d tensor")
            return self.reshape(1).unfold(0, size, step).reshape(-1)
        d = _dim(dimension, self.ndim, "unfold")
        n = self.shape[d]
        if size > n or size < 0:
            raise RuntimeError(f"unfold: size {size} is larger than dimension {dimension}'s size {n}")
        if step <= 0:
            raise RuntimeError(f"unfold: step must be positive, got {step}")
        count = (n - size) // step + 1
        xp = get_array_module(self.data)
        windows = xp.arange(count)[:, None] * step + xp.arange(size)[None, :]  # (count, size)
        picked = self[(slice(None),) * d + (windows,)]  # shape[:d] + (count, size) + shape[d+1:]
        return picked.movedim(d + 1, -1)

    def movedim(self, source, destination):
        """Move dimension(s) ``source`` to position(s) ``destination``, the others keeping their order."""
        source = (source,) if isinstance(source, numbers.Integral) else tuple(source)
        destination = (destination,) if isinstance(destination, numbers.Integral) else tuple(destination)
        if len(source) != len(destination):
            raise RuntimeError(f"movedim: source and destination must have the same length, got {source} and {destination}")
        source = tuple(_dim(s, self.ndim, "movedim") for s in source)
        destination = tuple(_dim(s, self.ndim, "movedim") for s in destination)
        if len(set(source)) != len(source) or len(set(destination)) != len(destination):
            raise RuntimeError("movedim: repeated dim in source or destination")
        order = [d for d in range(self.ndim) if d not in source]
        for dst, src in sorted(zip(destination, source)):
            order.insert(dst, src)
        return apply(S.Permute, self, dims=tuple(order))

    moveaxis = movedim

    def swapaxes(self, axis0, axis1):
        return self.transpose(axis0, axis1)

    swapdims = swapaxes

    @_accepts_axis
    def narrow(self, dim, start, length):
        """The slice ``start:start + length`` of dimension ``dim``."""
        dim = _dim(dim, self.ndim, "narrow")
        start = int(start)
        if start < 0:
            start += self.shape[dim]
        if start < 0 or length < 0 or start + length > self.shape[dim]:
            raise RuntimeError(f"narrow: start {start} + length {length} exceeds dimension {dim}'s size {self.shape[dim]}")
        return self[(slice(None),) * dim + (slice(start, start + length),)]

    @_accepts_axis
    def select(self, dim, index):
        """The slice at ``index`` of dimension ``dim``, that dimension removed."""
        dim = _dim(dim, self.ndim, "select")
        index = int(index)
        if not -self.shape[dim] <= index < self.shape[dim]:
            raise IndexError(f"select: index {index} out of range for dimension {dim} of size {self.shape[dim]}")
        return self[(slice(None),) * dim + (index,)]

    def where(self, condition, other):
        """``self`` where ``condition`` holds, else ``other`` (torch's ``x.where(cond, y)``)."""
        return where(condition, self, other)

    def all(self, dim=None, keepdim=False, axis=None):
        """True where every element (over ``dim``, or all) is non-zero."""
        dim = _dim_or_axis(dim, axis)
        axes = None if dim is None else reduce.normalize_dims(dim, self.ndim)
        return Tensor._wrap(get_array_module(self.data).asarray(self.data.all(axis=axes, keepdims=keepdim)))

    def any(self, dim=None, keepdim=False, axis=None):
        dim = _dim_or_axis(dim, axis)
        axes = None if dim is None else reduce.normalize_dims(dim, self.ndim)
        return Tensor._wrap(get_array_module(self.data).asarray(self.data.any(axis=axes, keepdims=keepdim)))

    # ------------------------------------------------------------------ shapes
    def reshape(self, *shape):
        shape = _shape_arg(shape)
        return apply(S.Reshape, self, shape=shape)

    def view(self, *shape):
        """``reshape``; ``view(dtype)`` reads the same bytes as another dtype (see :meth:`bitcast`)."""
        if len(shape) == 1 and not isinstance(shape[0], (int, tuple, list, np.integer)):
            return self.bitcast(shape[0])
        return self.reshape(*shape)

    def view_as(self, other):
        return self.reshape(other.shape)

    def flatten(self, start_dim=0, end_dim=-1):
        if self.ndim == 0:
            return self.reshape(1)
        start, end = start_dim % self.ndim, end_dim % self.ndim
        # the size written out, not -1: NumPy cannot infer -1 when another dimension is 0 (an empty batch)
        new = self.shape[:start] + (math.prod(self.shape[start:end + 1]),) + self.shape[end + 1:]
        return self.reshape(new) if end >= start else self

    def transpose(self, dim0, dim1):
        dims = list(range(self.ndim))
        dims[dim0], dims[dim1] = dims[dim1], dims[dim0]
        return apply(S.Permute, self, dims=tuple(dims))

    def t(self):
        return self.transpose(0, 1) if self.ndim == 2 else self

    @property
    def T(self):
        return apply(S.Permute, self, dims=tuple(reversed(range(self.ndim))))

    def permute(self, *dims):
        return apply(S.Permute, self, dims=_shape_arg(dims))

    def squeeze(self, dim=None):
        if dim is None:
            return self.reshape(tuple(s for s in self.shape if s != 1))
        dim = dim % max(self.ndim, 1)
        if self.ndim == 0 or self.shape[dim] != 1:
            return self
        return self.reshape(self.shape[:dim] + self.shape[dim + 1:])

    def unsqueeze(self, dim):
        dim = dim % (self.ndim + 1)
        return self.reshape(self.shape[:dim] + (1,) + self.shape[dim:])

    def expand(self, *shape):
        return apply(S.Expand, self, shape=_shape_arg(shape))

    def expand_as(self, other):
        return self.expand(other.shape)

    def repeat(self, *repeats):
        """Tile the tensor ``repeats[d]`` times along each dimension d (leading dimensions added as needed)."""
        repeats = _shape_arg(repeats)
        if len(repeats) < self.ndim:
            raise ValueError(f"repeat: got {len(repeats)} repeats for a tensor with {self.ndim} dimensions")
        out = self.reshape((1,) * (len(repeats) - self.ndim) + self.shape)
        for dim, r in enumerate(repeats):
            if r != 1:
                out = cat([out] * r, dim=dim)
        return out

    def contiguous(self):
        return self

    def split(self, split_size_or_sections, dim=0):
        n = self.shape[dim]
        if isinstance(split_size_or_sections, int):
            sizes = [split_size_or_sections] * (n // split_size_or_sections)
            if n % split_size_or_sections:
                sizes.append(n % split_size_or_sections)
        else:
            sizes = list(split_size_or_sections)
            if sum(sizes) != n:
                raise ValueError(f"split: sections {sizes} sum to {sum(sizes)}, expected dimension size {n}")
        out, start = [], 0
        for size in sizes:
            index = [slice(None)] * self.ndim
            index[dim] = slice(start, start + size)
            out.append(self[tuple(index)])
            start += size
        return tuple(out)

    def chunk(self, chunks, dim=0):
        n = self.shape[dim]
        size = -(-n // chunks)
        return self.split(size, dim)

    def __getitem__(self, index):
        index = _index_arg(index)
        ints_first = _split_int_index(index)
        if ints_first is not None:  # PyTorch: integers select first, the arrays then index what is left
            selected, rest = ints_first
            return apply(S.GetItem, apply(S.GetItem, self, index=selected), index=rest)
        return apply(S.GetItem, self, index=index)

    def __setitem__(self, index, value):
        """``t[index] = value``; differentiable in the graph, as PyTorch's ``index_put_``."""
        self._check_inplace()
        index = _index_arg(index)
        if is_grad_enabled() and (self.requires_grad or (isinstance(value, Tensor) and value.requires_grad)):
            self._inplace(apply(_inplace_fns.IndexPut, self, value, index=index))
            return
        self._write_at(index, value.data if isinstance(value, Tensor) else value)

    # ------------------------------------------------------------------ activations
    def relu(self):
        return apply(A.ReLU, self)

    def sigmoid(self):
        return apply(A.Sigmoid, self)

    def tanh(self):
        return apply(A.Tanh, self)

    def softmax(self, dim=-1, temperature=1.0):
        return apply(A.Softmax, self, dim=dim, temperature=temperature)

    def log_softmax(self, dim=-1, temperature=1.0):
        return apply(A.LogSoftmax, self, dim=dim, temperature=temperature)

    # ---- math: elementwise, rounding, cumulative, sorting (issue 15)
    def _floating(self):
        """Integer and bool tensors become the default float dtype first (``sin`` of ints is float, as PyTorch)."""
        return self if self.dtype.kind in "fc" else self.type(get_default_dtype())

    def _unary(self, fn):
        return apply(fn, self._floating())

    def sin(self):
        return self._unary(M.Sin)

    def cos(self):
        return self._unary(M.Cos)

    def tan(self):
        return self._unary(M.Tan)

    def asin(self):
        return self._unary(M.Asin)

    def acos(self):
        return self._unary(M.Acos)

    def atan(self):
        return self._unary(M.Atan)

    def sinh(self):
        return self._unary(M.Sinh)

    def cosh(self):
        return self._unary(M.Cosh)

    def asinh(self):
        return self._unary(M.Asinh)

    def acosh(self):
        return self._unary(M.Acosh)

    def atanh(self):
        return self._unary(M.Atanh)

    arcsin, arccos, arctan, arcsinh, arccosh, arctanh = asin, acos, atan, asinh, acosh, atanh

    def atan2(self, other):
        a, b = _promoted(self, other, floating=True)
        return apply(M.Atan2, a, b)

    arctan2 = atan2

    def exp2(self):
        return self._unary(M.Exp2)

    def log2(self):
        return self._unary(M.Log2)

    def log10(self):
        return self._unary(M.Log10)

    def log1p(self):
        return self._unary(M.Log1p)

    def expm1(self):
        return self._unary(M.Expm1)

    def erf(self):
        return self._unary(M.Erf)

    def logaddexp(self, other):
        a, b = _promoted(self, other, floating=True)
        return apply(M.LogAddExp, a, b)

    def _rounding(self, mode, decimals=0):
        if self.dtype.kind in "iub" and mode != "sign":
            return self.clone()  # integers are already whole: ceil/floor/round/trunc change nothing
        return apply(M.Rounding, self, mode=mode, decimals=decimals)

    def ceil(self):
        return self._rounding("ceil")

    def floor(self):
        return self._rounding("floor")

    def round(self, decimals=0):
        """Halves round to even, as PyTorch; ``decimals`` rounds to that many decimal places."""
        return self._rounding("round", decimals)

    def trunc(self):
        return self._rounding("trunc")

    fix = trunc

    def frac(self):
        return apply(M.Frac, self)

    def sign(self):
        if self.dtype.kind == "b":
            return self.clone()
        return self._rounding("sign")

    def copysign(self, other):
        a, b = _promoted(self, other, floating=True)
        return apply(M.CopySign, a, b)

    def lerp(self, end, weight):
        """``self + weight * (end - self)``; ``weight`` a number or a tensor."""
        end = self._other(end)
        weight = weight if isinstance(weight, Tensor) else Tensor._wrap(
            get_array_module(self.data).asarray(weight, dtype=self.dtype))
        return apply(M.Lerp, self, end, weight)

    def div(self, other, rounding_mode=None):
        """True division, or rounded ``'floor'`` (as ``//``) or ``'trunc'`` (towards zero)."""
        if rounding_mode is None:
            return self / other
        if rounding_mode not in ("floor", "trunc"):
            raise ValueError(f"div expected rounding_mode to be one of None, 'trunc', or 'floor' but found "
                             f"'{rounding_mode}'")
        a, b = _promoted(self, other)
        return apply(M.DivRounding, a, b, rounding_mode=rounding_mode)

    divide = true_divide = div

    def floor_divide(self, other):
        return self.div(other, rounding_mode="floor")

    def __floordiv__(self, other):
        return self.div(other, rounding_mode="floor")

    def __rfloordiv__(self, other):
        return self._other(other).div(self, rounding_mode="floor")

    def remainder(self, other):
        """Python's ``%``: the result has the sign of ``other``."""
        a, b = _promoted(self, other)
        return apply(M.Remainder, a, b, mode="remainder")

    def __mod__(self, other):
        return self.remainder(other)

    def __rmod__(self, other):
        return self._other(other).remainder(self)

    def fmod(self, other):
        """C's fmod: the result has the sign of ``self``."""
        a, b = _promoted(self, other)
        return apply(M.Remainder, a, b, mode="fmod")

    def fmax(self, other):
        """Element-wise maximum where a NaN loses to a number."""
        a, b = _promoted(self, other)
        return apply(M.FMaxMin, a, b, largest=True)

    def fmin(self, other):
        a, b = _promoted(self, other)
        return apply(M.FMaxMin, a, b, largest=False)

    def clamp_min(self, min):
        return self.clamp(min=min)

    def clamp_max(self, max):
        return self.clamp(max=max)

    # predicates: no gradient
    def isnan(self):
        return Tensor._wrap(get_array_module(self.data).isnan(self.data))

    def isinf(self):
        return Tensor._wrap(get_array_module(self.data).isinf(self.data))

    def isposinf(self):
        return Tensor._wrap(get_array_module(self.data).isinf(self.data) & (self.data > 0))

    def isneginf(self):
        return Tensor._wrap(get_array_module(self.data).isinf(self.data) & (self.data < 0))

    def isfinite(self):
        return Tensor._wrap(get_array_module(self.data).isfinite(self.data))

    def isclose(self, other, rtol=1e-05, atol=1e-08, equal_nan=False):
        """``|self - other| <= atol + rtol * |other|``, element-wise (infinities equal only themselves)."""
        a, b = _promoted(self, other)
        xp = get_array_module(a.data)
        return Tensor._wrap(xp.isclose(a.data, b.data, rtol=rtol, atol=atol, equal_nan=equal_nan))

    def allclose(self, other, rtol=1e-05, atol=1e-08, equal_nan=False):
        return bool(self.isclose(other, rtol, atol, equal_nan).data.all())

    # bitwise and logical ops: no gradient
    def _bitwise(self, op, other):
        if self.dtype.kind == "f" or (isinstance(other, Tensor) and other.dtype.kind == "f"):
            raise RuntimeError(f"\"{op.__name__}_cpu\" not implemented for 'Float': bitwise ops need integer "
                               f"or bool tensors")
        a, b = _promoted(self, other)
        return Tensor._wrap(op(a.data, b.data))

    def bitwise_and(self, other):
        return self._bitwise(np.bitwise_and, other)

    def bitwise_or(self, other):
        return self._bitwise(np.bitwise_or, other)

    def bitwise_xor(self, other):
        return self._bitwise(np.bitwise_xor, other)

    def bitwise_left_shift(self, other):
        return self._bitwise(np.left_shift, other)

    def bitwise_right_shift(self, other):
        return self._bitwise(np.right_shift, other)

    def bitwise_not(self):
        if self.dtype.kind == "f":
            raise RuntimeError("bitwise_not: not implemented for floating point tensors")
        return Tensor._wrap(~self.data)

    def __rand__(self, other):
        return self._other(other).bitwise_and(self)

    def __ror__(self, other):
        return self._other(other).bitwise_or(self)

    def __rxor__(self, other):
        return self._other(other).bitwise_xor(self)

    def __lshift__(self, other):
        return self.bitwise_left_shift(other)

    def __rshift__(self, other):
        return self.bitwise_right_shift(other)

    def __rlshift__(self, other):
        return self._other(other).bitwise_left_shift(self)

    def __rrshift__(self, other):
        return self._other(other).bitwise_right_shift(self)

    def logical_not(self):
        return Tensor._wrap(get_array_module(self.data).logical_not(self.data))

    def logical_and(self, other):
        return Tensor._wrap(np.logical_and(self.data, self._other(other).data))

    def logical_or(self, other):
        return Tensor._wrap(np.logical_or(self.data, self._other(other).data))

    def logical_xor(self, other):
        return Tensor._wrap(np.logical_xor(self.data, self._other(other).data))

    # reductions and scans
    def prod(self, dim=None, keepdim=False, dtype=None, axis=None):
        """Product of all elements, or over one ``dim``; integers and bools give int64, as PyTorch."""
        dim = _dim_or_axis(dim, axis)
        x = self.type(dtype) if dtype is not None else self.type(int64) if self.dtype.kind in "iub" else self
        return apply(M.Prod, x, dim=dim, keepdim=keepdim)

    def logsumexp(self, dim=None, keepdim=False, axis=None):
        return apply(M.LogSumExp, self._floating(), dim=_dim_or_axis(dim, axis), keepdim=keepdim)

    def cumsum(self, dim=None, dtype=None, axis=None):
        dim = _dim_or_axis(dim, axis)
        if dim is None:
            raise TypeError('cumsum() missing 1 required positional arguments: "dim"')
        x = self.type(dtype) if dtype is not None else self.type(int64) if self.dtype.kind in "iub" else self
        if x.ndim == 0:
            return x.clone()
        return apply(Sc.CumSum, x, dim=dim)

    def cumprod(self, dim=None, dtype=None, axis=None):
        dim = _dim_or_axis(dim, axis)
        if dim is None:
            raise TypeError('cumprod() missing 1 required positional arguments: "dim"')
        x = self.type(dtype) if dtype is not None else self.type(int64) if self.dtype.kind in "iub" else self
        if x.ndim == 0:
            return x.clone()
        return apply(Sc.CumProd, x, dim=dim)

    def logcumsumexp(self, dim, axis=None):
        x = self._floating()
        if x.ndim == 0:
            return x.clone()
        return apply(Sc.LogCumSumExp, x, dim=_dim_or_axis(dim, axis))

    def _take_along(self, index, dim):
        return apply(Sc.TakeAlong, self, index, dim=dim)

    def _cum_extreme(self, dim, largest):
        if self.ndim == 0:
            return MaxMinResult(self.clone(), Tensor._wrap(np.zeros((), dtype=int64)))
        index = Sc.cum_extreme_indices(self.data, dim, largest)
        return MaxMinResult(self._take_along(index, dim), Tensor._wrap(index))

    def cummax(self, dim):
        """Running maximum along ``dim``: ``(values, indices)``; on ties the latest index, as PyTorch."""
        return self._cum_extreme(dim, largest=True)

    def cummin(self, dim):
        return self._cum_extreme(dim, largest=False)

    def _picked(self, index, dim, keepdim):
        """``(values, indices)`` for an ``index`` of keepdim shape along ``dim``."""
        values = self._take_along(index, dim)
        index = Tensor._wrap(index.astype(int64))
        if not keepdim:
            values, index = values.squeeze(dim), index.squeeze(dim)
        return MaxMinResult(values, index)

    def sort(self, dim=-1, descending=False, stable=False):
        """``(values, indices)`` sorted along ``dim``; always stable here (``stable=True`` is accepted)."""
        if self.ndim == 0:
            return MaxMinResult(self.clone(), Tensor._wrap(np.zeros((), dtype=int64)))
        index = Sc.sort_indices(self.data, dim, descending)
        return MaxMinResult(self._take_along(index, dim), Tensor._wrap(index.astype(int64)))

    def msort(self):
        return self.sort(dim=0)[0]

    def kthvalue(self, k, dim=-1, keepdim=False):
        """The k-th smallest value along ``dim`` (k counted from 1) and its index."""
        if self.ndim == 0:
            return MaxMinResult(self.clone(), Tensor._wrap(np.zeros((), dtype=int64)))
        n = self.shape[dim]
        if not 1 <= k <= n:
            raise RuntimeError(f"kthvalue(): selected number k out of range for dimension {dim}: k={k}, size {n}")
        return self._picked(Sc.kth_indices(self.data, k - 1, dim), dim, keepdim)

    def median(self, dim=None, keepdim=False):
        """The lower median (the smaller of the two middle values); over ``dim``, ``(values, indices)``."""
        if dim is None:
            flat = self.reshape(-1)
            if flat.numel() == 0:
                return Tensor._wrap(get_array_module(self.data).asarray(np.nan, dtype=self.dtype))
            return flat._picked(Sc.median_indices(flat.data, 0), 0, False)[0]
        if self.ndim == 0:
            return MaxMinResult(self.clone(), Tensor._wrap(np.zeros((), dtype=int64)))
        return self._picked(Sc.median_indices(self.data, dim), dim, keepdim)

    def mode(self, dim=-1, keepdim=False):
        """The most frequent value along ``dim`` (the smallest on a tie) and its last index."""
        if self.ndim == 0:
            return MaxMinResult(self.clone(), Tensor._wrap(np.zeros((), dtype=int64)))
        return self._picked(Sc.mode_indices(self.data, dim), dim, keepdim)

    def unique(self, sorted=True, return_inverse=False, return_counts=False, dim=None):
        """The distinct values (sorted), and optionally where each input landed and how often each occurs."""
        out = np.unique(self.numpy(), return_inverse=True, return_counts=True, axis=dim, equal_nan=False)
        values, inverse, counts = out
        xp = get_array_module(self.data)
        result = [Tensor._wrap(xp.asarray(values))]
        if return_inverse:
            shape = self.shape if dim is None else (self.shape[dim],)
            result.append(Tensor._wrap(xp.asarray(inverse.reshape(shape).astype(int64))))
        if return_counts:
            result.append(Tensor._wrap(xp.asarray(counts.astype(int64))))
        return result[0] if len(result) == 1 else tuple(result)

    def norm(self, p="fro", dim=None, keepdim=False, dtype=None):
        """``torch.norm``: a vector p-norm ('fro' is 2), or the nuclear norm ('nuc') over two dims."""
        x = self.type(dtype) if dtype is not None else self
        if p == "nuc":
            return matrix_norm(x, "nuc", dim=(-2, -1) if dim is None else dim, keepdim=keepdim)
        return vector_norm(x, 2 if p == "fro" else p, dim=dim, keepdim=keepdim)

    def bitcast(self, dtype):
        """The same bytes read as another dtype of the same size (``view(dtype)``): no gradient."""
        dtype = as_dtype(dtype)
        if dtype.itemsize != self.dtype.itemsize:
            raise RuntimeError(f"bitcast: {self.dtype} and {dtype} differ in size; only same-size dtypes are supported")
        return Tensor._wrap(self.data.view(dtype))

    def half(self):
        return self.type(float16)

    # ------------------------------------------------------------------ in-place ops and the version counter
    # Each in-place method computes its result as the out-of-place op would (one recorded node when
    # gradients are recorded), then ``_inplace`` writes it into this tensor's own array, so that every
    # view of the array sees the new values. ``_version`` counts those writes; a recorded node
    # remembers the versions of its inputs (see apply), and backward refuses a node whose saved
    # input or output was overwritten since (PyTorch's "modified by an inplace operation" error).
    # When the op was recorded, this tensor becomes the op's output in the graph, and what it was
    # before lives on as ``_before``, the op's input (nodes that read it earlier find it there).
    def _check_inplace(self):
        if self.requires_grad and self._ctx is None and is_grad_enabled():
            raise RuntimeError("a leaf Variable that requires grad is being used in an in-place operation.")

    def _write(self, values):
        """Overwrite the whole array with ``values`` (array or number) and count the change."""
        self.data[...] = values
        _count_memory_write(self.data)
        self._bump_version()

    def _write_at(self, index, values):
        self.data[index] = values
        _count_memory_write(self.data)
        self._bump_version()

    def _bump_version(self):
        self._version += 1
        bumped = None
        if self._view_of is not None:  # a view: the tensor it views changed too
            bumped = self._view_of[1]
            bumped._bump_version()
        ctx = self._ctx
        if ctx is None:
            return
        if ctx.saved and any(s is self.data for s in ctx.saved):
            # the node that made this tensor kept it for its backward: that backward must now refuse
            expected = ctx.output_version[0] if getattr(ctx, "output_version", None) else self._version - 1
            ctx.output_version = (expected, self._version, self.dtype, self.shape)
        if self.data.base is not None:
            # a view (a slice, a reshape) of the tensor it was made from: that tensor changed too
            root = _memory_root(self.data)
            for p in ctx.parents:
                if isinstance(p, Tensor) and p is not bumped and _memory_root(p.data) is root:
                    p._bump_version()

    def _inplace(self, result):
        """Make this tensor hold ``result`` (its op's out-of-place result), in place; returns self."""
        if result.shape != self.shape:
            raise RuntimeError(f"output with shape {list(self.shape)} doesn't match the broadcast shape "
                               f"{list(result.shape)}")
        if result.dtype != self.dtype and result.dtype.kind in "fc" and self.dtype.kind in "iub":
            raise RuntimeError(f"result type {_type_name(result.dtype)} can't be cast to the desired output "
                               f"type {_type_name(self.dtype)}")
        node = result._ctx
        if node is None:  # nothing recorded (no_grad, or no input requires grad): just overwrite
            self._write(result.data)
            return self
        array = self.data
        before = Tensor._wrap(array, self.requires_grad)  # this tensor's graph identity so far
        before._ctx, before._version, before._before = self._ctx, self._version, self._before
        before._uses, before._hooks = self._uses, self._hooks  # hooks registered so far see the old gradient
        node.parents = tuple(before if p is self else p for p in node.parents)
        if self._uses == 1 and result.dtype == self.dtype and _only_this_op_sees(self, node):
            # Nothing but this op can see the array: the op's fresh result simply becomes the tensor's
            # array (no copy; the old values stay intact for `before`). A residual ``out += identity``
            # then leaves an array that F.relu(inplace=True) can clamp.
            self._bump_version()
            self.data = result.data
        else:
            saved = node.saved
            if saved and any(s is array for s in saved):  # the op's backward reads the old values: keep a copy
                node.saved = saved = tuple(array.copy() if s is array else s for s in saved)
            self._write(result.data)
            if saved and any(s is result.data for s in saved):  # the op keeps its output: that is now this array
                node.saved = tuple(array if s is result.data else s for s in saved)
        self._ctx, self.requires_grad, self._before = node, True, before
        self._uses, self._hooks = 0, None
        shared = getattr(node, "memory_writes", None)
        if shared:  # the op's own write is not a change behind its back
            node.memory_writes = {i: _memory_writes_of(node.parents[i].data) for i in shared}
        if self._view_of is not None:  # a view: the tensor it views changed too, and its graph must say so
            view_fn, base = self._view_of
            base._written_through_view(view_fn, self)
        return self

    def _written_through_view(self, view_fn, view):
        """Re-hang this tensor after an in-place op on ``view`` (made from it by ``view_fn``) changed its memory.

        PyTorch's CopySlices: from now on this tensor is ``WriteThroughView(itself before, view)``, so
        its gradient reaches the in-place op; nodes that read it earlier find the old identity as
        ``_before`` (see :func:`_check_versions`). A view of a view passes the change on upwards.
        """
        if not is_grad_enabled():
            return
        before = Tensor._wrap(self.data, self.requires_grad)
        before._ctx, before._version, before._before = self._ctx, self._version, self._before
        before._uses, before._hooks = self._uses, self._hooks
        node = _inplace_fns.WriteThroughView()
        out = apply(node, before, view, view_fn=view_fn)
        self._ctx, self.requires_grad, self._before = out._ctx, True, before
        self._uses, self._hooks = 0, None
        if self._view_of is not None:
            outer, base = self._view_of
            base._written_through_view(outer, self)

    def add_(self, other, alpha=1):
        self._check_inplace()
        return self._inplace(self + (other * alpha if alpha != 1 else other))

    def sub_(self, other, alpha=1):
        self._check_inplace()
        return self._inplace(self - (other * alpha if alpha != 1 else other))

    def mul_(self, other):
        self._check_inplace()
        return self._inplace(self * other)

    def div_(self, other):
        self._check_inplace()
        return self._inplace(self / other)

    def pow_(self, exponent):
        self._check_inplace()
        return self._inplace(self ** exponent)

    def exp_(self):
        self._check_inplace()
        return self._inplace(self.exp())

    def log_(self):
        self._check_inplace()
        return self._inplace(self.log())

    def sqrt_(self):
        self._check_inplace()
        return self._inplace(self.sqrt())

    def neg_(self):
        self._check_inplace()
        return self._inplace(-self)

    def abs_(self):
        self._check_inplace()
        return self._inplace(self.abs())

    def clamp_(self, min=None, max=None):
        self._check_inplace()
        return self._inplace(self.clamp(min, max))

    clip_ = clamp_

    def clamp_min_(self, min):
        return self.clamp_(min=min)

    def clamp_max_(self, max):
        return self.clamp_(max=max)

    def relu_(self):
        self._check_inplace()
        return self._inplace(self.relu())

    def sigmoid_(self):
        self._check_inplace()
        return self._inplace(self.sigmoid())

    def tanh_(self):
        self._check_inplace()
        return self._inplace(self.tanh())

    def masked_fill_(self, mask, value):
        """Set the elements where ``mask`` (bool, broadcast to this shape) is True to ``value``."""
        mask = mask if isinstance(mask, Tensor) else Tensor(mask)
        if mask.dtype != bool_:
            raise RuntimeError(f"masked_fill_ only supports boolean masks, but got mask with dtype {mask.dtype}")
        if isinstance(value, Tensor) and value.ndim != 0:
            raise RuntimeError(f"masked_fill_ only supports a 0-dimensional value tensor, but got tensor with "
                               f"{value.ndim} dimension(s).")
        self._check_inplace()
        return self._inplace(where(mask, self._other(value).type(self.dtype), self))

    def index_add_(self, dim, index, source, alpha=1):
        """``self[..., index[i], ...] += alpha * source[..., i, ...]`` along ``dim`` (repeated indices add up)."""
        self._check_inplace()
        index = index.data if isinstance(index, Tensor) else np.asarray(index)
        return self._inplace(apply(_inplace_fns.IndexAdd, self, self._other(source), dim=dim % max(self.ndim, 1),
                                   index=index, alpha=alpha))

    def scatter_(self, dim, index, src=None, value=None):
        """``self[index[i][j]][j] = src[i][j]`` for dim 0 (likewise for other dims); ``value`` for a scalar."""
        if src is None:
            src = value
        if src is None:
            raise TypeError("scatter_() missing 1 required argument: 'src' (or 'value')")
        index = index.data if isinstance(index, Tensor) else np.asarray(index)
        if index.dtype != int64:
            raise RuntimeError(f"scatter_(): Expected dtype int64 for index, got {index.dtype}")
        self._check_inplace()
        return self._inplace(apply(_inplace_fns.Scatter, self, src, dim=dim, index=index))

    def _overwrite(self, function, values):
        """zero_/fill_/copy_/uniform_/normal_: the new values do not depend on the old ones."""
        self._check_inplace()
        if is_grad_enabled() and (self.requires_grad or (isinstance(values, Tensor) and values.requires_grad)):
            return self._inplace(apply(function, self, values))
        self._write(values.data if isinstance(values, Tensor) else values)
        return self

    def zero_(self):
        return self._overwrite(_inplace_fns.Fill, 0)

    def fill_(self, value):
        if isinstance(value, Tensor) and value.ndim != 0:
            raise RuntimeError(f"fill_ only supports 0-dimension value tensor but got tensor with {value.ndim} "
                               "dimensions.")
        return self._overwrite(_inplace_fns.Fill, value)

    def copy_(self, src):
        """Copy ``src``'s values (broadcast to this shape, cast to this dtype) into this tensor."""
        if not isinstance(src, Tensor):
            src = Tensor(src)
        if src.ndim > self.ndim or any(s != 1 and s != t for s, t in zip(reversed(src.shape), reversed(self.shape))):
            raise RuntimeError(f"copy_: the source of shape {list(src.shape)} cannot be broadcast to "
                               f"{list(self.shape)}")
        return self._overwrite(_inplace_fns.Copy, src)

    def uniform_(self, a=0.0, b=1.0, generator=None):
        """Fill with numbers drawn uniformly from [a, b) (minidl's global generator unless one is given)."""
        rng = generator or _random.default_generator()
        draw = np.float32 if self.dtype == float32 else np.float64
        values = rng.random(self.shape, dtype=draw) * (b - a) + a
        return self._overwrite(_inplace_fns.Fill, get_array_module(self.data).asarray(values))

    def normal_(self, mean=0.0, std=1.0, generator=None):
        """Fill with numbers drawn from the normal distribution N(mean, std^2)."""
        rng = generator or _random.default_generator()
        draw = np.float32 if self.dtype == float32 else np.float64
        values = rng.standard_normal(self.shape, dtype=draw) * std + mean
        return self._overwrite(_inplace_fns.Fill, get_array_module(self.data).asarray(values))


class MaxMinResult(tuple):
    """``(values, indices)`` with attribute access, as PyTorch's named tuples."""

    def __new__(cls, values, indices):
        return super().__new__(cls, (values, indices))

    @property
    def values(self):
        return self[0]

    @property
    def indices(self):
        return self[1]


class _Cast(Function):
    def forward(self, a, dtype):
        self.in_dtype = a.dtype
        return a.astype(dtype)

    def backward(self, g):
        return (g.astype(self.in_dtype),)


class _ToDevice(Function):
    def forward(self, a, device):
        from .device import move_array

        self.source_device = "cpu" if get_array_module(a) is np else f"cuda:{a.device.id}"
        return move_array(a, device)

    def backward(self, g):
        from .device import move_array

        return (move_array(g, self.source_device),)


def _memory_root(array):
    """The array that owns ``array``'s memory (following ``.base`` through views of views)."""
    while getattr(array, "base", None) is not None:
        array = array.base
    return array


# In-place writes per block of memory, keyed by the id of the array that owns it (its memory root).
# A tensor's ``_version`` counts writes through that tensor; this counts writes through any tensor
# sharing the memory, so that a node which saved a *view* (``h[0]``, ``h.reshape(...)``) notices a
# later write into the tensor it views (``h += 1``), as PyTorch's version counter shared by all views
# of a storage does. Entries leave with their array (weakref.finalize); only written memory has one.
_memory_writes = {}


def _count_memory_write(array):
    root = _memory_root(array)
    key = id(root)
    if key not in _memory_writes:
        weakref.finalize(root, _memory_writes.pop, key, None)
        _memory_writes[key] = 0
    _memory_writes[key] += 1


def _memory_writes_of(array):
    """Writes so far into the memory ``array`` views (0 when never written in place)."""
    return _memory_writes.get(id(_memory_root(array)), 0) if _memory_writes else 0


def _only_this_op_sees(t, node):
    """True when no other tensor nor view can see ``t``'s array, so that an in-place op may replace it.

    ``t`` was computed by a recorded op (``_uses == 1`` has told that only ``node`` read it since);
    its array shares no memory with that op's inputs (a reshape or a slice would: writing into
    it must reach them), and nothing else references it (a ``detach()``, a NumPy view): only
    ``t``, ``before`` (see ``_inplace``), ``node``'s saved arrays, and the caller's local name.
    """
    if t._ctx is None:
        return False
    array = t.data
    root = _memory_root(array)
    if any(isinstance(p, Tensor) and _memory_root(p.data) is root for p in t._ctx.parents):
        return False
    saved = sum(s is array for s in node.saved or ())
    # references: t.data, before.data, _inplace's local, this function's argument and local, getrefcount's
    return sys.getrefcount(array) <= 6 + saved


_TYPE_NAMES = {"float32": "Float", "float64": "Double", "float16": "Half", "int64": "Long", "int32": "Int",
               "int16": "Short", "int8": "Char", "uint8": "Byte", "bool": "Bool"}


def _type_name(dtype):
    """PyTorch's scalar-type name of a dtype, for its error messages ("Float", "Long")."""
    return _TYPE_NAMES.get(str(dtype), str(dtype))


def _shape_arg(shape):
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        return tuple(shape[0])
    return tuple(int(s) for s in shape)


def _index_arg(index):
    """Replace Tensors inside an index by their arrays."""
    if isinstance(index, Tensor):
        return index.data
    if isinstance(index, tuple):
        return tuple(i.data if isinstance(i, Tensor) else i for i in index)
    if isinstance(index, list):
        return np.asarray(index)
    return index


def _split_int_index(index):
    """PyTorch's order for an index mixing integers and arrays: ``(integers only, arrays only)``, else None.

    NumPy counts an integer next to an index array as one more advanced index, which moves
    the broadcast index dimensions; PyTorch applies the integers first (as ``select``), so the
    arrays' dimensions land where the remaining arrays sit. The first index keeps the integers
    (arrays become full slices); the second keeps the arrays (integers vanish, the rest full slices).
    """
    if not isinstance(index, tuple):
        return None
    is_int = [isinstance(i, numbers.Integral) and not isinstance(i, (bool, np.bool_)) for i in index]
    is_array = [not isinstance(i, (numbers.Integral, slice, type(None), type(Ellipsis))) for i in index]
    if not any(is_int) or not any(is_array):
        return None
    selected, rest = [], []
    for item, integer, array in zip(index, is_int, is_array):
        if integer:
            selected.append(item)
        elif array:
            if not hasattr(getattr(item, "dtype", None), "kind"):  # a list, or another library's tensor
                item = np.asarray(item)
            covers = item.ndim if item.dtype.kind == "b" else 1  # a boolean mask spans as many dims as it has
            selected.extend([slice(None)] * covers)
            rest.append(item)
        elif item is Ellipsis:
            selected.append(item)
            rest.append(item)
        else:  # a slice, or None (a new axis of size 1 after the first step)
            selected.append(item)
            rest.append(slice(None))
    return tuple(selected), tuple(rest)


def _gather_index(shape, dim, index):
    """An advanced index that picks ``index`` along ``dim`` (torch.gather)."""
    dim = dim % len(shape)
    grids = list(np.meshgrid(*[np.arange(s) for s in index.shape], indexing="ij"))
    grids[dim] = index
    return tuple(grids)


# ---- helpers of the indexing and linear algebra methods (issue 15)
def _dim(dim, ndim, op):
    """``dim`` as a non-negative axis of an ``ndim``-dimensional tensor; IndexError when out of range."""
    n = max(ndim, 1)
    if not -n <= dim < n:
        raise IndexError(f"{op}: dimension out of range (expected to be in range of [{-n}, {n - 1}], but got {dim})")
    return dim % n


def _int_index(index, op):
    """The integer array inside an index (a Tensor, an array, a list, or anything with ``__array__``)."""
    array = index.data if isinstance(index, Tensor) else index
    if not hasattr(getattr(array, "dtype", None), "kind"):  # a list, or another library's tensor
        array = np.asarray(array)
    if array.dtype.kind not in "iu":
        raise RuntimeError(f"{op}: expected an integer index, got dtype {array.dtype}")
    return array


def _bool_mask(mask, op):
    """The boolean array inside ``mask``; RuntimeError for any other dtype, as PyTorch."""
    array = mask.data if isinstance(mask, Tensor) else mask
    if not hasattr(getattr(array, "dtype", None), "kind"):
        array = np.asarray(array)
    if array.dtype.kind != "b":
        raise RuntimeError(f"{op}: expected a boolean mask, got dtype {array.dtype}")
    return array


def _scaled_sum(input, product, beta, alpha):
    """beta * input + alpha * product, as addmm and friends (beta = 0 ignores input, NaN included)."""
    out = product if alpha == 1 else product * alpha
    if beta == 0:
        return out.expand(np.broadcast_shapes(_t(input).shape, out.shape))
    return out + (_t(input) if beta == 1 else _t(input) * beta)


def _check_broadcast(op, a, b):
    for x, y in zip(reversed(a), reversed(b)):
        if x != y and x != 1 and y != 1:
            raise ValueError(f"{op}: shapes {tuple(a)} and {tuple(b)} cannot be broadcast together "
                             f"(sizes {x} and {y} differ and neither is 1)")


# ---------------------------------------------------------------------- the graph: apply and backward
def apply(function, *inputs, **options):
    """Run an array-level Function on the arrays inside ``inputs``; return its output as a Tensor.

    ``function`` is a :class:`minidl.functions.Function` subclass, or an instance when the
    caller wants to read what forward left on it (max-pool indices, batch statistics).
    Non-Tensor inputs (arrays, numbers, None) are passed through as they are. When any
    Tensor input requires grad and recording is on, the output remembers the Function and
    its inputs, so that :func:`backward` can reach them.
    """
    fn = function() if isinstance(function, type) else function
    arrays = [x.data if isinstance(x, Tensor) else x for x in inputs]
    _check_same_device(fn.name, arrays, inputs)
    fn.needs_input_grad = tuple(isinstance(x, Tensor) and x.requires_grad for x in inputs)
    record = is_grad_enabled() and any(fn.needs_input_grad)
    if _profiler.active is None:
        out = fn(*arrays, **options)
    else:  # minidl.profiler.profile(): time the forward of this Function class
        start = time.perf_counter()
        out = fn(*arrays, **options)
        _profiler.active.add(type(fn), "forward", time.perf_counter() - start)
    result = Tensor._wrap(out, requires_grad=record)
    if fn.makes_view and getattr(out, "base", None) is not None and _inplace_fns.is_view_op(fn) \
            and isinstance(inputs[0], Tensor):
        result._view_of = (fn, inputs[0])  # an in-place op on the view must reach inputs[0] (see _inplace)
    if record:
        fn.parents = inputs
        result._ctx = fn
        versions = []  # each input's version now: backward checks that no in-place op changed it since
        shared = None  # for inputs that are views of other memory: the writes into that memory so far
        for i, x in enumerate(inputs):
            if isinstance(x, Tensor):
                x._uses += 1  # how many recorded ops read each tensor: F.relu(inplace=True) needs it to be 0
                versions.append(x._version)
                if getattr(x.data, "base", None) is not None:
                    shared = shared or {}
                    shared[i] = _memory_writes_of(x.data)
            else:
                versions.append(0)
        fn.versions = versions
        fn.memory_writes = shared
        if _grad_mode._anomaly_enabled:
            fn.created_at = _creation_site()
            _check_forward_anomaly(fn, result.data, arrays)
    return result


# Frames inside these parts of minidl are the engine's, not the caller's: anomaly mode names the
# first frame outside them as the place an op was created (the user's model line, a zoo model's forward).
_MINIDL_DIR = os.path.dirname(os.path.abspath(__file__))
_ENGINE_PATHS = tuple(os.path.join(_MINIDL_DIR, part) for part in (
    "tensor.py", "tensor_functions.py", "creation.py", "autograd.py", "grad_mode.py",
    os.path.join("nn", ""), os.path.join("functions", ""), os.path.join("ops", ""), os.path.join("kernels", "")))


def _creation_site():
    """``"file:line in function"`` of the innermost caller outside the engine (anomaly mode only)."""
    frame = sys._getframe(2)
    innermost = None
    while frame is not None:
        code = frame.f_code
        site = f"{code.co_filename}:{frame.f_lineno} in {code.co_name}"
        innermost = innermost or site
        if not os.path.abspath(code.co_filename).startswith(_ENGINE_PATHS):
            return site
        frame = frame.f_back
    return innermost


def _check_anomaly(fn, input_grads):
    """RuntimeError naming ``fn`` when one of the gradients its backward returned holds NaN or inf."""
    for i, (g, needed) in enumerate(zip(input_grads, fn.needs_input_grad)):
        if g is None or not needed or not hasattr(g, "dtype") or g.dtype.kind not in "fc":
            continue
        xp = get_array_module(g)
        if bool(xp.isfinite(g).all()):
            continue
        kind = "nan" if bool(xp.isnan(g).any()) else "inf"
        where = getattr(fn, "created_at", None)
        raise RuntimeError(
            f"Function '{fn.name}' returned {kind} values in its {_ordinal(i)} output"
            + (f"; the op was created at {where}" if where else "")
            + " (minidl.autograd.detect_anomaly)")


def _has_nan(array):
    if not hasattr(array, "dtype") or array.dtype.kind not in "fc":
        return False
    return bool(get_array_module(array).isnan(array).any())


def _check_forward_anomaly(fn, out, arrays):
    """RuntimeError when ``fn``'s forward made NaN out of NaN-free inputs (the op a NaN loss starts at).

    PyTorch checks only the backward; a NaN loss never reaches it, so anomaly mode here also
    names the first recorded op whose forward output holds NaN that none of its inputs held
    (an infinite output is left alone: ``masked_fill(-inf)`` and friends make those on purpose).
    """
    if _has_nan(out) and not any(_has_nan(a) for a in arrays):
        where = getattr(fn, "created_at", None)
        raise RuntimeError(
            f"Function '{fn.name}' returned nan values in its forward output from inputs without nan"
            + (f"; the op was created at {where}" if where else "")
            + " (minidl.autograd.detect_anomaly)")


def _ordinal(i):
    return f"{i}{'th' if 10 <= i % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(i % 10, 'th')}"


def _check_same_device(op, arrays, inputs):
    """RuntimeError naming the op and both devices when the Tensor inputs live on different devices.

    The common all-NumPy case costs one type test per input.
    """
    first = None
    for array, x in zip(arrays, inputs):
        if not isinstance(x, Tensor):
            continue
        if first is None:
            first = array
            continue
        if type(array) is np.ndarray and type(first) is np.ndarray:
            continue
        a, b = device_name(first), device_name(array)
        if a != b:
            raise RuntimeError(
                f"{op}: expected all tensors on the same device, but found at least two devices, {a} and {b}; "
                f"move them with .to({a!r}) or .to({b!r})")


def _topological_order(roots):
    """Tensors reachable from ``roots`` through recorded functions, parents before children.

    Each node's inputs are checked against in-place changes on the way (:func:`_check_versions`).
    """
    order, visited = [], set()
    stack = [(root, False) for root in reversed(roots)]
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
            _check_versions(node._ctx, strict=True)
            parents = [p for p in node._ctx.parents
                       if p is not None and getattr(p, "_ctx", None) is not None and id(p) not in visited]
            # an op on leaves alone (a weight's transpose) is visited last, so it lands right below its
            # consumer and the walk reaches it right after: the leaf's gradient is complete early
            # (as PyTorch's walk in reverse creation order), which lets DistributedDataParallel start sooner
            parents.sort(key=_reads_only_leaves, reverse=True)
            stack.extend((parent, False) for parent in parents)
    return order


def _reads_only_leaves(tensor):
    return all(getattr(p, "_ctx", None) is None for p in tensor._ctx.parents)


def _check_versions(fn, strict):
    """Refuse ``fn`` when an array its backward reads was overwritten in place after it was recorded;
    otherwise point it at its inputs as they were when it read them (their ``_before`` identities).

    ``fn.versions`` (set by :func:`apply`) holds each input's version at that time; an output that
    ``fn`` saved and that was overwritten since is marked by ``Tensor._bump_version``.
    """
    changed = getattr(fn, "output_version", None)
    if changed is not None and strict:
        raise _modified_error(fn, *changed, "output 0")
    versions = getattr(fn, "versions", None)
    if versions is None:
        return
    parents = fn.parents
    shared = getattr(fn, "memory_writes", None)
    if shared and strict and fn.saved:
        # a saved view whose memory was written through another tensor (the one it views, or a sibling view)
        for i, writes in shared.items():
            p = parents[i]
            if isinstance(p, Tensor) and any(s is p.data for s in fn.saved) and _memory_writes_of(p.data) != writes:
                raise _modified_error(fn, writes, _memory_writes_of(p.data), p.dtype, p.shape,
                                      f"input {i} (a view of memory written in place since)")
    for i, (p, v) in enumerate(zip(parents, versions)):
        if not isinstance(p, Tensor) or p._version == v:
            continue
        if fn.saved and any(s is p.data for s in fn.saved):
            if not strict:
                continue
            raise _modified_error(fn, v, p._version, p.dtype, p.shape, f"input {i}")
        while p._before is not None and v <= p._before._version:
            p = p._before
        versions[i] = p._version
        fn.parents = parents = parents[:i] + (p,) + parents[i + 1:]


def _modified_error(fn, expected, now, dtype, shape, which):
    return RuntimeError(
        "one of the variables needed for gradient computation has been modified by an inplace operation: "
        f"[{dtype} {list(shape)}], which is {which} of {_node_of(fn).name()}, is at version {now}; expected version {expected} "
        "instead. Hint: the in-place op overwrote values this backward reads; use the out-of-place op "
        "(x = x.mul(2) instead of x.mul_(2)) or clone() before it.")


def backward(root, gradient=None, retain_graph=False):
    """Back-propagate from ``root``: fill ``.grad`` of every leaf tensor that requires grad."""
    run_backward([root], [gradient], retain_graph)


def _root_grad(root, gradient):
    if not root.requires_grad:
        raise RuntimeError("backward: the tensor does not require grad and has no grad_fn")
    xp = get_array_module(root.data)
    if gradient is None:
        if root.data.size != 1:
            raise RuntimeError(
                f"backward: grad can be implicitly created only for scalar outputs; "
                f"got a tensor of shape {tuple(root.shape)}: pass gradient=... of that shape"
            )
        return xp.ones_like(root.data)
    grad_root = gradient.data if isinstance(gradient, Tensor) else xp.asarray(gradient, dtype=root.dtype)
    if grad_root.shape != root.data.shape:
        raise ValueError(
            f"backward: gradient has shape {tuple(grad_root.shape)}, expected the output's shape "
            f"{tuple(root.shape)}"
        )
    return grad_root


def _run_hooks(tensor, grad):
    """Pass ``grad`` through the tensor's hooks (register_hook); a hook may return a replacement."""
    for hook in list(tensor._hooks.values()):
        out = hook(Tensor._wrap(grad))
        if out is not None:
            new = out.data if isinstance(out, Tensor) else out
            if new.shape != grad.shape:
                raise RuntimeError(f"hook: expected a gradient of shape {list(grad.shape)}, got {list(new.shape)}")
            grad = new
    return grad


def run_backward(roots, gradients, retain_graph=False, inputs=None):
    """The backward walk from ``roots`` (each with its gradient, or None for a scalar's 1).

    Without ``inputs`` (``Tensor.backward``), the gradients are accumulated into ``.grad`` of the
    leaves that require grad (and of non-leaves that ``retain_grad()``). With ``inputs``
    (``minidl.autograd.grad``), no ``.grad`` is touched: the gradient of each input, an array
    or None where none reached it, is returned, in order.
    """
    grads, adopted = {}, set()  # adopted: ids of arrays already stored as some tensor's .grad in this pass
    for root, gradient in zip(roots, gradients):
        g = _root_grad(root, gradient)
        if gradient is not None:
            adopted.add(id(g))  # the caller's array: never adopt it
        grads[id(root)] = grads[id(root)] + g if id(root) in grads else g
    captured = None if inputs is None else {id(t): None for t in inputs}
    pending = {}  # leaves whose whole gradient is needed first: hooks run on, or captured for grad()

    def to_leaf(leaf, g):
        if captured is None and leaf._hooks is None and not leaf._post_hooks:
            _accumulate_leaf(leaf, g, adopted)
        elif captured is not None and id(leaf) not in captured:
            return  # grad(): only the inputs' gradients are wanted
        elif id(leaf) in pending:
            pending[id(leaf)][1] = pending[id(leaf)][1] + g
        else:
            pending[id(leaf)] = [leaf, g]

    anomaly = _grad_mode._anomaly_enabled  # read once: the check costs nothing when off
    prof = _profiler.active  # read once too: minidl.profiler times each Function's backward
    order = _topological_order(roots)
    finished_after = _post_hook_leaves(order) if captured is None and _post_hooks_registered else None
    for root in roots:
        if root._ctx is None and id(root) in grads:  # a leaf root
            to_leaf(root, grads.pop(id(root)))
    for i in range(len(order) - 1, -1, -1):
        if finished_after and i + 1 in finished_after:  # every node feeding these leaves is done
            for leaf in finished_after.pop(i + 1):
                _finish_leaf(pending.pop(id(leaf), None), adopted)
        node, order[i] = order[i], None  # drop the walk's reference: a used activation can be freed
        grad = grads.pop(id(node), None)
        fn = node._ctx
        if grad is None or fn is None:
            continue
        if node._hooks:
            grad = _run_hooks(node, grad)
        if captured is not None:
            if id(node) in captured:
                captured[id(node)] = grad
        elif node._retains_grad:
            _accumulate_leaf(node, grad, adopted)
        if fn.saved is None:
            raise RuntimeError(
                "Trying to backward through the graph a second time; the saved values were freed. "
                "Specify retain_graph=True on the first backward call."
            )
        if prof is None:
            input_grads = fn.call_backward(grad)
        else:
            start = time.perf_counter()
            input_grads = fn.call_backward(grad)
            prof.add(type(fn), "backward", time.perf_counter() - start)
        if not isinstance(input_grads, tuple):
            input_grads = (input_grads,)
        if anomaly:
            _check_anomaly(fn, input_grads)
        for parent, g, needed in zip(fn.parents, input_grads, fn.needs_input_grad):
            if g is None or not needed:
                continue
            if g.shape != parent.data.shape:
                g = unbroadcast(g, parent.data.shape)
            if g.dtype != parent.data.dtype:
                g = g.astype(parent.data.dtype)
            if parent._ctx is None:
                to_leaf(parent, g)
            elif id(parent) in grads:
                grads[id(parent)] = grads[id(parent)] + g
            else:
                grads[id(parent)] = g
        if not retain_graph:
            # Free what backward no longer needs as soon as this node is done: the saved arrays, and
            # the references to the inputs, so that each intermediate activation is released once
            # its last consumer has been differentiated (PyTorch's behaviour; peak memory of a
            # training step is then the forward's activations, not activations plus all gradients).
            fn.saved = None
            fn.parents = tuple(p if getattr(p, "_ctx", None) is None else None for p in fn.parents)
            node._before = None  # what it was before an in-place op: only this walk's version checks needed it
    for leaf, g in pending.values():
        if captured is None:
            _finish_leaf((leaf, g), adopted)
            continue
        if leaf._hooks:
            g = _run_hooks(leaf, g)
        if id(leaf) in captured:
            captured[id(leaf)] = g
    if captured is not None:
        return [captured[id(t)] for t in inputs]
    return None


_post_hooks_registered = False  # no backward pays for the search below until a post hook exists


def _post_hook_leaves(order):
    """{index in ``order``: leaves with post-accumulate-grad hooks whose last consumer sits there}.

    The walk goes from the end of ``order`` to its start, so a leaf's gradient is complete once the
    walk has passed the smallest index among the nodes that read it.
    """
    last = {}
    for i, node in enumerate(order):
        for parent in node._ctx.parents:
            if isinstance(parent, Tensor) and parent._ctx is None and parent._post_hooks and id(parent) not in last:
                last[id(parent)] = (i, parent)
    finished = {}
    for i, leaf in last.values():
        finished.setdefault(i, []).append(leaf)
    return finished


def _finish_leaf(entry, adopted):
    """A leaf's whole gradient has arrived: its hooks, ``.grad``, then its post-accumulate-grad hooks."""
    if entry is None:  # no gradient reached it in this pass
        return
    leaf, g = entry
    if leaf._hooks:
        g = _run_hooks(leaf, g)
    _accumulate_leaf(leaf, g, adopted)
    if leaf._post_hooks:
        for hook in list(leaf._post_hooks.values()):
            hook(leaf)


# ---------------------------------------------------------------------- the graph as PyTorch shows it
class _HookHandle:
    """What ``register_hook`` returns: ``remove()`` unregisters the hook."""

    _next_id = 0

    def __init__(self, hooks):
        self.hooks = hooks
        self.id = _HookHandle._next_id
        _HookHandle._next_id += 1

    def remove(self):
        self.hooks.pop(self.id, None)


class Node:
    """``Tensor.grad_fn``: PyTorch's view of one recorded array-level Function.

    ``name()`` is PyTorch's style of name ("MulBackward0"); ``next_functions`` holds one
    ``(node, 0)`` pair per Tensor input: the Node of a computed input, the
    :class:`AccumulateGrad` of a leaf that requires grad, or None.
    """

    def __init__(self, function):
        self.function = function  # the array-level Function recorded in the graph

    def name(self):
        custom = getattr(self.function, "backward_name", None)  # minidl.autograd's ctx-style Functions
        return custom or f"{self.function.name}Backward0"

    @property
    def next_functions(self):
        fn = self.function
        if fn.saved is not None:
            _check_versions(fn, strict=False)  # inputs as they were when fn read them
        out = []
        for parent in fn.parents:
            if not isinstance(parent, Tensor):
                if parent is None and fn.saved is None:  # freed by a backward without retain_graph
                    out.append((None, 0))
                continue
            if parent._ctx is not None:
                out.append((_node_of(parent._ctx), 0))
            elif parent.requires_grad:
                if parent._grad_node is None:
                    parent._grad_node = AccumulateGrad(parent)
                out.append((parent._grad_node, 0))
            else:
                out.append((None, 0))
        return tuple(out)

    def __repr__(self):
        return f"<{self.name()} object at {id(self):#x}>"


class AccumulateGrad:
    """The end of the graph at a leaf that requires grad: its gradient is added into ``variable.grad``."""

    next_functions = ()

    def __init__(self, variable):
        self.variable = variable

    def name(self):
        return "torch::autograd::AccumulateGrad"

    def __repr__(self):
        return f"<AccumulateGrad object at {id(self):#x}>"


def _node_of(fn):
    """The one Node of an array-level Function (made on first use, so ``y.grad_fn is y.grad_fn``)."""
    node = getattr(fn, "_node", None)
    if node is None:
        node = fn._node = Node(fn)
    return node


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
    if tensor.grad is not None:
        tensor.grad.data = tensor.grad.data + grad
        return
    writeable = getattr(grad.flags, "writeable", True)  # CuPy arrays have no such flag
    fresh = adopted is not None and writeable and id(grad) not in adopted and _owns_its_memory(grad)
    if fresh:
        adopted.add(id(grad))
    tensor.grad = Tensor._wrap(grad if fresh else grad.copy(), requires_grad=False)


# ---------------------------------------------------------------------- functions on tensors
def _t(x):
    return x if isinstance(x, Tensor) else Tensor(x)


def matmul(a, b):
    a, b = _t(a), _t(b)
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError("matmul: both arguments need at least 1 dimension, got shapes "
                         f"{a.shape} and {b.shape}")
    k_a = a.shape[-1]
    k_b = b.shape[0] if b.ndim == 1 else b.shape[-2]
    if k_a != k_b:
        raise ValueError(f"matmul: shapes {a.shape} and {b.shape} do not align: "
                         f"input has {k_a} columns, other has {k_b} rows")
    if a.ndim > 2 and b.ndim > 2:
        _check_broadcast("matmul", a.shape[:-2], b.shape[:-2])
    return apply(arith.MatMul, a, b)


def maximum(a, b):
    a = _t(a)
    return a._binary(arith.Maximum, b)


def minimum(a, b):
    a = _t(a)
    return a._binary(arith.Minimum, b)


def where(condition, input=None, other=None):
    """``input`` where ``condition`` holds, else ``other``; either may be a Python number.

    A number takes the dtype of the tensor beside it (a float next to an integer tensor makes
    both float32, as PyTorch); two numbers give float32 or int64. ``where(condition)`` alone is
    ``condition.nonzero(as_tuple=True)``.
    """
    if input is None and other is None:
        return _t(condition).nonzero(as_tuple=True)
    if isinstance(condition, Tensor):
        condition = condition.data
    elif get_array_module(condition) is np:  # a CuPy condition stays on its device
        condition = np.asarray(condition)
    if isinstance(input, Tensor) and not isinstance(other, Tensor):
        other = input._other(other)
        if input.dtype.kind in "iub" and other.dtype.kind == "f":
            input = input.type(other.dtype)
    elif isinstance(other, Tensor) and not isinstance(input, Tensor):
        input = other._other(input)
        if other.dtype.kind in "iub" and input.dtype.kind == "f":
            other = other.type(input.dtype)
    elif not isinstance(input, Tensor):
        input, other = _t(input), _t(other)
        if input.dtype != other.dtype and float32 in (input.dtype, other.dtype):
            input, other = input.type(float32), other.type(float32)
    return apply(arith.Where, condition, input, other)


def cat(tensors, dim=0):
    tensors = [_t(t) for t in tensors]
    if not tensors:
        raise ValueError("cat: expected a non-empty list of tensors")
    return apply(S.Cat, *tensors, dim=dim)


concatenate = cat


def stack(tensors, dim=0):
    tensors = [_t(t) for t in tensors]
    if not tensors:
        raise ValueError("stack: expected a non-empty list of tensors")
    return apply(S.Stack, *tensors, dim=dim)



# ---------------------------------------------------------------------- dtypes: default and promotion (issue 15)
_default_dtype = [float32]  # a list so that set_default_dtype can change it in place


def get_default_dtype():
    """The dtype of tensors made from Python floats (float32 unless changed)."""
    return _default_dtype[0]


def set_default_dtype(dtype):
    """Make Python floats (and float creation functions) give ``dtype``: float32 or float64."""
    dtype = as_dtype(dtype)
    if dtype.kind != "f":
        raise TypeError(f"set_default_dtype: only floating-point types are supported as the default type, got {dtype}")
    _default_dtype[0] = dtype


_CATEGORY = {"b": 0, "u": 1, "i": 1, "f": 2, "c": 3}


def promote_types(type1, type2):
    """The smallest dtype both convert to, as PyTorch: a float beats any integer (int64 + float32 is
    float32, where NumPy says float64); within a kind the wider one wins (uint8 + int8 is int16)."""
    a, b = as_dtype(type1), as_dtype(type2)
    if a == b:
        return a
    ca, cb = _CATEGORY[a.kind], _CATEGORY[b.kind]
    if ca != cb:
        return a if ca > cb else b
    return np.promote_types(a, b)


def _scalar_dtype(x):
    if isinstance(x, (bool, np.bool_)):
        return bool_
    if isinstance(x, numbers.Integral):
        return int64
    if isinstance(x, numbers.Real):
        return get_default_dtype()
    return np.dtype(np.complex64)


def result_type(*operands):
    """The dtype of an element-wise op on ``operands`` (tensors and Python numbers), as PyTorch.

    Three tiers: tensors with dimensions decide; a 0-d tensor or a Python number counts only
    when it is of a higher kind (bool < integer < float), so ``int_tensor * 1.5`` is float32
    (the default dtype) and ``float16_tensor * 2.0`` stays float16.
    """
    tiers = [None, None, None]  # tensors with dimensions, 0-d tensors, Python numbers
    for x in operands:
        if isinstance(x, Tensor) or hasattr(x, "dtype") and hasattr(x, "ndim"):
            tier, dtype = (0 if x.ndim else 1), as_dtype(x.dtype)
        else:
            tier, dtype = 2, _scalar_dtype(x)
        tiers[tier] = dtype if tiers[tier] is None else promote_types(tiers[tier], dtype)
    result = None
    for dtype in tiers:
        if dtype is not None and (result is None or _CATEGORY[dtype.kind] > _CATEGORY[result.kind]):
            result = dtype
    return result


def _dim_or_axis(dim, axis):
    """PyTorch's ``axis=`` alias of ``dim=``."""
    if axis is not None:
        if dim is not None:
            raise TypeError("got both dim= and its alias axis=; pass one")
        return axis
    return dim


def _promoted(a, b, floating=False):
    """``a`` and ``b`` as Tensors of their common dtype (``floating``: at least the default float)."""
    dtype = result_type(a, b)
    if floating and dtype.kind not in "fc":
        dtype = get_default_dtype()
    first = a if isinstance(a, Tensor) else b
    xp = get_array_module(first.data) if isinstance(first, Tensor) else np
    out = []
    for x in (a, b):
        if not isinstance(x, Tensor):
            x = Tensor._wrap(xp.asarray(x, dtype=dtype))
        out.append(x.type(dtype) if x.dtype != dtype else x)
    return out


# ---------------------------------------------------------------------- norms (minidl.linalg re-exports them)
def vector_norm(x, ord=2, dim=None, keepdim=False, dtype=None):
    """``(sum |x|^ord)^(1/ord)`` over ``dim`` (all elements by default); ord may be inf, -inf or 0."""
    x = _t(x)
    x = x.type(dtype) if dtype is not None else x._floating()
    return apply(M.VectorNorm, x, ord=ord, dim=dim, keepdim=keepdim)


def matrix_norm(A, ord="fro", dim=(-2, -1), keepdim=False, dtype=None):
    """Matrix norms over the two dims ``dim``: 'fro', 'nuc' (sum of singular values), 2 / -2 (largest /
    smallest singular value), 1 / -1 (max / min column sum of |A|), inf / -inf (max / min row sum)."""
    A = _t(A)
    A = A.type(dtype) if dtype is not None else A._floating()
    if A.ndim < 2:
        raise RuntimeError(f"linalg.matrix_norm: The input tensor A must have at least 2 dimensions, got {A.ndim}")
    rows, cols = (d % A.ndim for d in dim)
    if ord == "fro":
        return vector_norm(A, 2, dim=(rows, cols), keepdim=keepdim)
    rest = [d for d in range(A.ndim) if d not in (rows, cols)]
    m = A.permute(*rest, rows, cols)  # the matrices in the last two dims
    if ord == "nuc":
        out = apply(M.SingularValues, m).sum(-1)
    elif ord in (2, -2):
        s = apply(M.SingularValues, m)
        out = s.amax(-1) if ord == 2 else s.amin(-1)
    elif ord in (1, -1):
        col = m.abs().sum(-2)
        out = col.amax(-1) if ord == 1 else col.amin(-1)
    elif ord in (math.inf, -math.inf):
        row = m.abs().sum(-1)
        out = row.amax(-1) if ord == math.inf else row.amin(-1)
    else:
        raise RuntimeError(f"linalg.matrix_norm: Order {ord} not supported.")
    if keepdim:
        for d in sorted((rows, cols)):
            out = out.unsqueeze(d)
    return out
