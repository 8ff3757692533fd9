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
import math
import numbers
import os
import sys
import time

import numpy as np

from minidl.backend import device_name, get_array_module
from minidl.functions import activation as A
from minidl.functions import arith, reduce, shape as S
from minidl.functions import inplace as _inplace_fns
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
        return float32
    if isinstance(flat, np.generic):
        return None
    if isinstance(data, (list, tuple)) and len(data) == 0:
        return float32
    return None


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
        from .device import Device, move_array

        for a in args:
            if isinstance(a, (str, Device)):
                device = a
            else:
                dtype = a
        out = self
        if device is not None:
            array = move_array(self.data, device)
            if array is not self.data:
                out = apply(_ToDevice, out, device=device)
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
            else:  # a float scalar keeps a float tensor's dtype, makes an integer tensor float32
                dtype = self.dtype if self.dtype.kind == "f" else float32
            return Tensor._wrap(xp.asarray(other, dtype=dtype))
        return Tensor._wrap(xp.asarray(other))

    def _binary(self, fn, other, reverse=False):
        other = self._other(other)
        a, b = (other, self) if reverse else (self, other)
        if a.dtype != b.dtype and a.dtype.kind in "iub" and b.dtype.kind == "f" and a.ndim == 0:
            a = Tensor._wrap(a.data.astype(b.dtype))
        elif a.dtype != b.dtype and b.dtype.kind in "iub" and a.dtype.kind == "f" and b.ndim == 0:
            b = Tensor._wrap(b.data.astype(a.dtype))
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
            return self.float() / other  # true division of integers gives floats, as PyTorch
        return self._binary(arith.Div, other)

    def __rtruediv__(self, other):
        if self.dtype.kind in "iub":
            return other / self.float()
        return self._binary(arith.Div, other, reverse=True)

    def __pow__(self, exponent):
        if isinstance(exponent, numbers.Number):
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
        return Tensor._wrap(~self.data)

    def __and__(self, other):
        return self._compare(lambda a, b: a & b, other)

    def __or__(self, other):
        return self._compare(lambda a, b: a | b, other)

    def __xor__(self, other):
        return self._compare(lambda a, b: a ^ b, other)

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

    def div(self, other):
        return self / other

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
            out = self
            if min is not None:
                out = maximum(out, min)
            if max is not None:
                out = minimum(out, max)
            return out
        return apply(arith.Clamp, self, min=min, max=max)

    clip = clamp

    def maximum(self, other):
        return maximum(self, other)

    def minimum(self, other):
        return minimum(self, other)

    def matmul(self, other):
        return matmul(self, other)

    def mm(self, mat2):
        """The product of two 2-D matrices (``matmul`` without broadcasting)."""
        if self.ndim != 2 or _t(mat2).ndim != 2:
            raise RuntimeError(f"mm: expected 2-D tensors, got {self.ndim}-D and {_t(mat2).ndim}-D")
        return matmul(self, mat2)

    # ------------------------------------------------------------------ reductions
    def sum(self, dim=None, keepdim=False):
        out = apply(reduce.Sum, self, dim=dim, keepdim=keepdim)
        if self.dtype.kind == "b":
            return Tensor._wrap(out.data.astype(int64))
        return out

    def mean(self, dim=None, keepdim=False):
        if self.dtype.kind not in "fc":
            raise TypeError(f"mean: expected a floating point tensor, got dtype {self.dtype}")
        return apply(reduce.Mean, self, dim=dim, keepdim=keepdim)

    def var(self, dim=None, keepdim=False, unbiased=None, correction=None):
        if correction is None:
            correction = 0 if unbiased is False else 1
        return apply(reduce.Var, self, dim=dim, keepdim=keepdim, correction=correction)

    def std(self, dim=None, keepdim=False, unbiased=None, correction=None):
        return self.var(dim, keepdim, unbiased, correction).sqrt()

    def max(self, dim=None, keepdim=False):
        """Over all elements a 0-d tensor; over ``dim`` a ``(values, indices)`` pair, as PyTorch."""
        if isinstance(dim, Tensor):
            return maximum(self, dim)
        return self._maxmin(dim, keepdim, largest=True)

    def min(self, dim=None, keepdim=False):
        if isinstance(dim, Tensor):
            return minimum(self, dim)
        return self._maxmin(dim, keepdim, largest=False)

    def _maxmin(self, dim, keepdim, largest):
        values = apply(reduce.MaxMin, self, dim=dim, keepdim=keepdim, largest=largest)
        if dim is None:
            return values
        index = self.argmax(dim, keepdim) if largest else self.argmin(dim, keepdim)
        return MaxMinResult(values, index)

    def amax(self, dim=None, keepdim=False):
        return apply(reduce.MaxMin, self, dim=dim, keepdim=keepdim, largest=True)

    def argmax(self, dim=None, keepdim=False):
        if dim is None:
            return Tensor._wrap(self.data.argmax().astype(int64))
        out = self.data.argmax(axis=dim)
        return Tensor._wrap((get_array_module(out).expand_dims(out, dim) if keepdim else out).astype(int64))

    def argmin(self, dim=None, keepdim=False):
        if dim is None:
            return Tensor._wrap(self.data.argmin().astype(int64))
        out = self.data.argmin(axis=dim)
        return Tensor._wrap((get_array_module(out).expand_dims(out, dim) if keepdim else out).astype(int64))

    def argsort(self, dim=-1, descending=False):
        a = -self.data if descending else self.data
        return Tensor._wrap(get_array_module(a).argsort(a, axis=dim, kind="stable").astype(int64))

    def topk(self, k, dim=-1, largest=True, sorted=True):
        order = self.argsort(dim=dim, descending=largest)
        index = Tensor._wrap(get_array_module(order.data).take(order.data, np.arange(k), axis=dim))
        return MaxMinResult(self.gather(dim, index), index)

    def gather(self, dim, index):
        return self[_gather_index(self.shape, dim, index.data)]

    def all(self):
        return Tensor._wrap(self.data.all())

    def any(self):
        return Tensor._wrap(self.data.any())

    # ------------------------------------------------------------------ shapes
    def reshape(self, *shape):
        shape = _shape_arg(shape)
        return apply(S.Reshape, self, shape=shape)

    view = reshape

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
        return apply(S.GetItem, self, index=_index_arg(index))

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
        self._bump_version()

    def _write_at(self, index, values):
        self.data[index] = values
        self._bump_version()

    def _bump_version(self):
        self._version += 1
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
                if isinstance(p, Tensor) and _memory_root(p.data) is root:
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
        return self

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


def _gather_index(shape, dim, index):
    """An advanced index that picks ``index`` along ``dim`` (torch.gather)."""
    dim = dim % len(shape)
    grids = list(np.meshgrid(*[np.arange(s) for s in index.shape], indexing="ij"))
    grids[dim] = index
    return tuple(grids)


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
    if record:
        fn.parents = inputs
        result._ctx = fn
        versions = []  # each input's version now: backward checks that no in-place op changed it since
        for x in inputs:
            if isinstance(x, Tensor):
                x._uses += 1  # how many recorded ops read each tensor: F.relu(inplace=True) needs it to be 0
                versions.append(x._version)
            else:
                versions.append(0)
        fn.versions = versions
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
            for parent in node._ctx.parents:
                if parent is not None and getattr(parent, "_ctx", None) is not None and id(parent) not in visited:
                    stack.append((parent, False))
    return order


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
        if captured is None and leaf._hooks is None:
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
    for root in roots:
        if root._ctx is None and id(root) in grads:  # a leaf root
            to_leaf(root, grads.pop(id(root)))
    for i in range(len(order) - 1, -1, -1):
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
            input_grads = fn.backward(grad)
        else:
            start = time.perf_counter()
            input_grads = fn.backward(grad)
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
        if leaf._hooks:
            g = _run_hooks(leaf, g)
        if captured is None:
            _accumulate_leaf(leaf, g, adopted)
        elif id(leaf) in captured:
            captured[id(leaf)] = g
    if captured is not None:
        return [captured[id(t)] for t in inputs]
    return None


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


def where(condition, input, other):
    condition = condition.data if isinstance(condition, Tensor) else np.asarray(condition)
    if isinstance(input, Tensor):
        other = input._other(other)
    elif isinstance(other, Tensor):
        input = other._other(input)
    else:
        input, other = _t(input), _t(other)
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

