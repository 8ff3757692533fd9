"""Shape and indexing operations: reshape, permute, expand, indexing, cat, stack, pad."""
from __future__ import annotations

import numpy as np

from minidl.backend import scatter_add
from minidl.functions.function import Function


class Reshape(Function):
    makes_view = True

    def forward(self, a, shape):
        self.in_shape = a.shape
        try:
            out = a.reshape(shape)
            self.out_shape = out.shape
            return out
        except ValueError:
            raise ValueError(
                f"reshape: shape {tuple(shape)} is invalid for input of shape {tuple(a.shape)} "
                f"({a.size} elements)"
            ) from None

    def backward(self, g):
        return (g.reshape(self.in_shape),)


class Permute(Function):
    makes_view = True

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

    makes_view = True  # with a basic index

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
            scatter_add(xp, grad, self.index, g)
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
        bounds = np.cumsum(self.sizes)[:-1].tolist()  # a list: CuPy takes no NumPy array here
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


class PadModeError(ValueError, NotImplementedError):
    """An unknown padding mode: a ValueError, and the NotImplementedError PyTorch raises."""


PAD_MODES = ("constant", "reflect", "replicate", "circular")


def pad_source_positions(n, lo, hi, mode):
    """For one dimension of size n padded by (lo, hi): the input position each output position copies.

    Output position o is input position ``o - lo`` folded back into [0, n): mirrored without
    repeating the edge (reflect), clamped (replicate) or wrapped (circular). Negative ``lo`` or
    ``hi`` crop, so the positions start at ``-lo`` and end before ``n + hi``; circular padding
    crops first and wraps around what is left.
    """
    positions = np.arange(-lo, n + hi)
    if mode == "reflect":
        period = 2 * (n - 1) if n > 1 else 1
        positions = np.abs(positions) % period
        return np.where(positions >= n, period - positions, positions)
    if mode == "replicate":
        return np.clip(positions, 0, n - 1)
    # circular (as PyTorch): negative amounts crop first, and the wrap-around reads the cropped input
    start, kept = max(-lo, 0), n - max(-lo, 0) - max(-hi, 0)
    return start + np.arange(-max(lo, 0), kept + max(hi, 0)) % max(kept, 1)


class Pad(Function):
    """Constant, reflect, replicate or circular padding, as F.pad.

    ``pad`` lists (before, after) amounts from the last dimension backwards; negative amounts
    crop. Constant padding crops then pads; the other modes gather every output element from
    the input position it copies (:func:`pad_source_positions`), and backward adds the gradient
    of every copy back onto that position.
    """

    def forward(self, a, pad, mode="constant", value=0.0):
        xp = self.xp
        if len(pad) % 2 or len(pad) // 2 > a.ndim:
            raise ValueError(f"pad: expected an even number of values, at most {2 * a.ndim}, got {len(pad)}")
        if mode not in PAD_MODES:
            raise PadModeError(f"pad: mode must be one of {PAD_MODES}, got {mode!r}")
        widths = [(0, 0)] * a.ndim
        for i in range(len(pad) // 2):
            widths[a.ndim - 1 - i] = (int(pad[2 * i]), int(pad[2 * i + 1]))
        for n, (lo, hi) in zip(a.shape, widths):
            if n + lo + hi < 0:
                raise ValueError(f"pad: padding {tuple(pad)} gives a negative size for a dimension of size {n}")
            if mode == "reflect" and (lo >= n or hi >= n) and (lo > 0 or hi > 0):
                raise ValueError(f"pad: reflect padding {(lo, hi)} must be smaller than the dimension size {n}")
            if mode == "circular" and (lo > n or hi > n):
                raise ValueError(f"pad: circular padding {(lo, hi)} may wrap around at most once (size {n})")
            if mode == "circular" and n - max(-lo, 0) - max(-hi, 0) <= 0 and (lo > 0 or hi > 0):
                raise ValueError(f"pad: circular padding {(lo, hi)} of a dimension cropped to nothing (size {n})")
            if mode != "constant" and n == 0 and (lo > 0 or hi > 0):
                raise ValueError(f"pad: {mode} padding of an empty dimension")
        self.widths, self.shape, self.mode = widths, a.shape, mode
        if mode == "constant":
            kept = tuple(slice(max(-lo, 0), n - max(-hi, 0)) for n, (lo, hi) in zip(a.shape, widths))
            return xp.pad(a[kept], [(max(lo, 0), max(hi, 0)) for lo, hi in widths], mode="constant",
                          constant_values=value)
        self.sources = [pad_source_positions(n, lo, hi, mode) for n, (lo, hi) in zip(a.shape, widths)]
        return a[tuple(xp.asarray(i) for i in np.ix_(*self.sources))]

    def backward(self, g):
        xp = self.xp
        grad = xp.zeros(self.shape, dtype=g.dtype)
        if self.mode == "constant":  # the kept part of the input got the inner part of the output
            kept = tuple(slice(max(-lo, 0), n - max(-hi, 0)) for n, (lo, hi) in zip(self.shape, self.widths))
            inner = tuple(slice(max(lo, 0), max(lo, 0) + (k.stop - k.start)) for k, (lo, _) in zip(kept, self.widths))
            grad[kept] = g[inner]
            return (grad,)
        scatter_add(xp, grad, tuple(xp.asarray(i) for i in np.ix_(*self.sources)), g)
        return (grad,)
