"""Shape and indexing operations: reshape, permute, expand, indexing, cat, stack, pad."""
from __future__ import annotations

import numpy as np

from minidl.functions.function import Function


class Reshape(Function):
    def forward(self, a, shape):
        self.in_shape = a.shape
        try:
            return a.reshape(shape)
        except ValueError:
            raise ValueError(
                f"reshape: shape {tuple(shape)} is invalid for input of shape {tuple(a.shape)} "
                f"({a.size} elements)"
            ) from None

    def backward(self, g):
        return (g.reshape(self.in_shape),)


class Permute(Function):
    def forward(self, a, dims):
        if sorted(d % max(a.ndim, 1) for d in dims) != list(range(a.ndim)):
            raise ValueError(f"permute: dims {tuple(dims)} are not a permutation of {a.ndim} dimensions")
        self.dims = tuple(d % a.ndim for d in dims)
        return a.transpose(self.dims)

    def backward(self, g):
        inverse = np.argsort(self.dims)
        return (g.transpose(tuple(inverse)),)


class Expand(Function):
    def forward(self, a, shape):
        xp = self.xp
        lead = len(shape) - a.ndim
        if lead < 0:
            raise ValueError(f"expand: target shape {tuple(shape)} has fewer dimensions than input {tuple(a.shape)}")
        target = tuple(a.shape[i - lead] if (s == -1 and i >= lead) else s for i, s in enumerate(shape))
        try:
            return xp.broadcast_to(a, target)
        except ValueError:
            raise ValueError(f"expand: cannot expand shape {tuple(a.shape)} to {tuple(shape)}") from None

    def backward(self, g):
        return (g,)  # the engine sums broadcast dimensions back


def _is_basic_index(index):
    items = index if isinstance(index, tuple) else (index,)
    return all(isinstance(i, (int, slice, type(None), type(Ellipsis))) and not isinstance(i, bool)
               for i in items)


class GetItem(Function):
    """``a[index]`` for ints, slices, steps, None, Ellipsis, integer arrays and boolean masks."""

    def forward(self, a, index):
        self.index = index
        self.shape = a.shape
        self.basic = _is_basic_index(index)
        return a[index]

    def backward(self, g):
        xp = self.xp
        grad = xp.zeros(self.shape, dtype=g.dtype)
        if self.basic:
            grad[self.index] = g  # a view: each element appears once
        else:
            # integer arrays may repeat an index: accumulate, do not overwrite
            xp.add.at(grad, self.index, g)
        return (grad,)


class Cat(Function):
    def forward(self, *arrays, dim=0):
        xp = self.xp
        ndim = arrays[0].ndim
        self.axis = dim % ndim
        for i, a in enumerate(arrays):
            if a.ndim != ndim or any(a.shape[d] != arrays[0].shape[d] for d in range(ndim) if d != self.axis):
                raise ValueError(
                    f"cat: tensor {i} has shape {tuple(a.shape)}, expected {tuple(arrays[0].shape)} "
                    f"except in dimension {self.axis}"
                )
        self.sizes = [a.shape[self.axis] for a in arrays]
        return xp.concatenate(arrays, axis=self.axis)

    def backward(self, g):
        bounds = np.cumsum(self.sizes)[:-1]
        xp = self.xp
        return tuple(xp.split(g, bounds, axis=self.axis))


class Stack(Function):
    def forward(self, *arrays, dim=0):
        xp = self.xp
        for i, a in enumerate(arrays):
            if a.shape != arrays[0].shape:
                raise ValueError(f"stack: tensor {i} has shape {tuple(a.shape)}, expected {tuple(arrays[0].shape)}")
        self.axis = dim % (arrays[0].ndim + 1)
        return xp.stack(arrays, axis=self.axis)

    def backward(self, g):
        xp = self.xp
        return tuple(xp.moveaxis(g, self.axis, 0))


class Pad(Function):
    """Constant, reflect or replicate padding; ``pad`` lists (before, after) from the last dim backwards, as F.pad."""

    def forward(self, a, pad, mode="constant", value=0.0):
        xp = self.xp
        if len(pad) % 2 or len(pad) // 2 > a.ndim:
            raise ValueError(f"pad: expected an even number of values, at most {2 * a.ndim}, got {len(pad)}")
        widths = [(0, 0)] * a.ndim
        for i in range(len(pad) // 2):
            widths[a.ndim - 1 - i] = (pad[2 * i], pad[2 * i + 1])
        self.widths = widths
        self.shape = a.shape
        self.mode = mode
        if any(lo < 0 or hi < 0 for lo, hi in widths):
            raise ValueError(f"pad: negative padding {tuple(pad)} is not supported")
        if mode == "constant":
            return xp.pad(a, widths, mode="constant", constant_values=value)
        if mode in ("reflect", "replicate"):
            return xp.pad(a, widths, mode="reflect" if mode == "reflect" else "edge")
        raise ValueError(f"pad: mode must be 'constant', 'reflect' or 'replicate', got {mode!r}")

    def backward(self, g):
        if self.mode == "constant":
            inner = tuple(slice(lo, g.shape[i] - hi) for i, (lo, hi) in enumerate(self.widths))
            return (g[inner],)
        # reflect/replicate copy input elements: fold the padded border back with a scatter-add
        xp = self.xp
        index_arrays = []
        for dim, (lo, hi) in enumerate(self.widths):
            n = self.shape[dim]
            positions = np.arange(-lo, n + hi)
            if self.mode == "reflect":
                period = 2 * (n - 1) if n > 1 else 1
                positions = np.abs(positions) % period
                positions = np.where(positions >= n, period - positions, positions)
            else:
                positions = np.clip(positions, 0, n - 1)
            index_arrays.append(positions)
        grad = xp.zeros(self.shape, dtype=g.dtype)
        mesh = np.ix_(*index_arrays)
        xp.add.at(grad, mesh, g)
        return (grad,)
