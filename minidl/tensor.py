"""The Tensor: one array (NumPy, or CuPy on a GPU), ``requires_grad``, ``grad``, and the function that made it.

Methods are thin wrappers over the Functions in :mod:`minidl.ops`; the maths
lives there, next to each backward.
"""
from __future__ import annotations

import builtins
import numbers

import numpy as np

from . import autograd
from .autograd import get_array_module
from .ops import activation as A
from .ops import arith, reduce, shape as S

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
        return self._ctx

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

    def clone(self):
        return self * 1 if self.requires_grad else Tensor._wrap(self.data.copy())

    def requires_grad_(self, requires_grad=True):
        if requires_grad and self.dtype.kind not in "fc":
            raise TypeError(f"requires_grad: only floating point tensors can require gradients, got {self.dtype}")
        self.requires_grad = requires_grad
        return self

    def retain_grad(self):
        self._retains_grad = True

    def backward(self, gradient=None, retain_graph=False):
        autograd.backward(self, gradient, retain_graph)

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
                out = _ToDevice.apply(out, device=device)
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
            return _Cast.apply(self, dtype=dtype)
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
            extras.append(f"grad_fn=<{self._ctx.name}Backward>")
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
        return fn.apply(a, b)

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
            return arith.PowScalar.apply(self, exponent=exponent)
        return self._binary(arith.Pow, exponent)

    def __rpow__(self, base):
        return self._binary(arith.Pow, base, reverse=True)

    def __neg__(self):
        return arith.Neg.apply(self)

    def __pos__(self):
        return self

    def __matmul__(self, other):
        return matmul(self, other)

    def __rmatmul__(self, other):
        return matmul(self._other(other), self)

    def __iadd__(self, other):
        return self._inplace(self + other)

    def __isub__(self, other):
        return self._inplace(self - other)

    def __imul__(self, other):
        return self._inplace(self * other)

    def __itruediv__(self, other):
        return self._inplace(self / other)

    def _inplace(self, result):
        if self.requires_grad and autograd.is_grad_enabled():
            # out-of-place under the hood: the name now points at the new node, as PyTorch's in-place on a non-leaf
            if self.is_leaf:
                raise RuntimeError("a leaf Variable that requires grad is being used in an in-place operation.")
            return result
        self.data[...] = result.data
        return self

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
        return arith.Exp.apply(self)

    def log(self):
        return arith.Log.apply(self)

    def sqrt(self):
        return arith.Sqrt.apply(self)

    def rsqrt(self):
        return arith.Sqrt.apply(self) ** -1

    def abs(self):
        return arith.Abs.apply(self)

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
        return arith.Clamp.apply(self, min=min, max=max)

    clip = clamp

    def maximum(self, other):
        return maximum(self, other)

    def minimum(self, other):
        return minimum(self, other)

    def matmul(self, other):
        return matmul(self, other)

    # ------------------------------------------------------------------ reductions
    def sum(self, dim=None, keepdim=False):
        out = reduce.Sum.apply(self, dim=dim, keepdim=keepdim)
        if self.dtype.kind == "b":
            return Tensor._wrap(out.data.astype(int64))
        return out

    def mean(self, dim=None, keepdim=False):
        if self.dtype.kind not in "fc":
            raise TypeError(f"mean: expected a floating point tensor, got dtype {self.dtype}")
        return reduce.Mean.apply(self, dim=dim, keepdim=keepdim)

    def var(self, dim=None, keepdim=False, unbiased=None, correction=None):
        if correction is None:
            correction = 0 if unbiased is False else 1
        return reduce.Var.apply(self, dim=dim, keepdim=keepdim, correction=correction)

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
        values = reduce.MaxMin.apply(self, dim=dim, keepdim=keepdim, largest=largest)
        if dim is None:
            return values
        index = self.argmax(dim, keepdim) if largest else self.argmin(dim, keepdim)
        return MaxMinResult(values, index)

    def amax(self, dim=None, keepdim=False):
        return reduce.MaxMin.apply(self, dim=dim, keepdim=keepdim, largest=True)

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
        return S.Reshape.apply(self, shape=shape)

    view = reshape

    def view_as(self, other):
        return self.reshape(other.shape)

    def flatten(self, start_dim=0, end_dim=-1):
        if self.ndim == 0:
            return self.reshape(1)
        start, end = start_dim % self.ndim, end_dim % self.ndim
        new = self.shape[:start] + (-1,) + self.shape[end + 1:]
        return self.reshape(new) if end >= start else self

    def transpose(self, dim0, dim1):
        dims = list(range(self.ndim))
        dims[dim0], dims[dim1] = dims[dim1], dims[dim0]
        return S.Permute.apply(self, dims=tuple(dims))

    def t(self):
        return self.transpose(0, 1) if self.ndim == 2 else self

    @property
    def T(self):
        return S.Permute.apply(self, dims=tuple(reversed(range(self.ndim))))

    def permute(self, *dims):
        return S.Permute.apply(self, dims=_shape_arg(dims))

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
        return S.Expand.apply(self, shape=_shape_arg(shape))

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
        return S.GetItem.apply(self, index=_index_arg(index))

    def __setitem__(self, index, value):
        if self.requires_grad and autograd.is_grad_enabled():
            raise RuntimeError("__setitem__: in-place assignment into a tensor that requires grad is not supported; "
                               "build the result with minidl.where or minidl.cat instead")
        self.data[_index_arg(index)] = value.data if isinstance(value, Tensor) else value

    # ------------------------------------------------------------------ activations
    def relu(self):
        return A.ReLU.apply(self)

    def sigmoid(self):
        return A.Sigmoid.apply(self)

    def tanh(self):
        return A.Tanh.apply(self)

    def softmax(self, dim=-1, temperature=1.0):
        return A.Softmax.apply(self, dim=dim, temperature=temperature)

    def log_softmax(self, dim=-1, temperature=1.0):
        return A.LogSoftmax.apply(self, dim=dim, temperature=temperature)

    # ------------------------------------------------------------------ in-place helpers used by nn.init
    def zero_(self):
        self.data[...] = 0
        return self

    def fill_(self, value):
        self.data[...] = value
        return self

    def copy_(self, other):
        src = other.data if isinstance(other, Tensor) else other
        self.data[...] = src
        return self




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


class _Cast(autograd.Function):
    def forward(self, a, dtype):
        self.in_dtype = a.dtype
        return a.astype(dtype)

    def backward(self, g):
        return (g.astype(self.in_dtype),)


class _ToDevice(autograd.Function):
    def forward(self, a, device):
        from .device import move_array

        self.source_device = "cpu" if get_array_module(a) is np else f"cuda:{a.device.id}"
        return move_array(a, device)

    def backward(self, g):
        from .device import move_array

        return (move_array(g, self.source_device),)


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
    return arith.MatMul.apply(a, b)


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
    return arith.Where.apply(condition, input, other)


def cat(tensors, dim=0):
    tensors = [_t(t) for t in tensors]
    if not tensors:
        raise ValueError("cat: expected a non-empty list of tensors")
    return S.Cat.apply(*tensors, dim=dim)


concatenate = cat


def stack(tensors, dim=0):
    tensors = [_t(t) for t in tensors]
    if not tensors:
        raise ValueError("stack: expected a non-empty list of tensors")
    return S.Stack.apply(*tensors, dim=dim)

