"""The array-level Functions behind in-place ops that have no out-of-place twin elsewhere.

Each computes the *new* value of the tensor out of place; the Tensor floor
(``Tensor._inplace`` in ``minidl/tensor.py``) then writes it into the tensor's own
array and re-hangs the graph. So these Functions stay ordinary: forward returns a
fresh array, backward returns one gradient per input.

* :class:`Copy` / :class:`Fill`: ``copy_(src)``, ``fill_(value)``, ``zero_()``,
  ``uniform_``/``normal_``: the old values are overwritten, so they get a zero gradient
  and the source gets all of it (summed back over broadcast dimensions by the walk).
* :class:`IndexPut`: ``t[index] = value`` (PyTorch's ``index_put_``).
* :class:`IndexAdd`: ``index_add_(dim, index, source, alpha)``.
* :class:`Scatter`: ``scatter_(dim, index, src)`` and ``scatter_(dim, index, value)``.
* :class:`WriteThroughView`: the tensor a view was taken from, after an in-place op on the
  view (PyTorch's ``CopySlices``): ``h[0].mul_(3)`` changes ``h``, and ``h``'s gradient must
  flow through the ``mul_``.

>>> import numpy as np
>>> fn = IndexPut()
>>> fn(np.zeros(4), np.array(5.0), index=(slice(1, 3),))
array([0., 5., 5., 0.])
>>> fn.backward(np.array([1.0, 2.0, 3.0, 4.0]))
(array([1., 0., 0., 4.]), array([2., 3.]))
"""
from __future__ import annotations

from minidl.backend import scatter_add
from minidl.functions.function import Function


class Copy(Function):
    """out = src broadcast to a's shape and cast to a's dtype; a is only overwritten."""

    def forward(self, a, src):
        out = self.xp.empty_like(a)
        out[...] = src
        return out

    def backward(self, g):
        # d out / d a = 0 (every old value is overwritten); d out / d src = 1 (the walk sums broadcast dims)
        return (self.xp.zeros_like(g) if self.needs_input_grad[0] else None,
                g if self.needs_input_grad[1] else None)


class Fill(Copy):
    """``fill_(value)`` and ``zero_()``: Copy from a scalar (a 0-d tensor value gets ``g.sum()``)."""


class IndexPut(Function):
    """out = a with ``out[index] = value``; value broadcast to the indexed shape."""

    def forward(self, a, value, index):
        self.index = index  # backward needs only where the values went
        out = a.copy()
        out[index] = value
        return out

    def backward(self, g):
        ga = gv = None
        if self.needs_input_grad[0]:
            ga = g.copy()
            ga[self.index] = 0  # overwritten elements do not depend on a
        if self.needs_input_grad[1]:
            gv = g[self.index]  # the walk sums it back to value's shape
        return ga, gv


def _along(ndim, dim, index):
    """The index tuple that selects ``index`` (1-d) along ``dim`` and everything along the others."""
    where = [slice(None)] * ndim
    where[dim] = index
    return tuple(where)


class IndexAdd(Function):
    """out = a, then ``out[..., index[i], ...] += alpha * source[..., i, ...]`` along ``dim``."""

    def forward(self, a, source, dim, index, alpha=1):
        self.dim, self.index, self.alpha = dim, index, alpha
        out = a.copy()
        scatter_add(self.xp, out, _along(a.ndim, dim, index), source * alpha if alpha != 1 else source)
        return out

    def backward(self, g):
        # d out / d a = 1; d out[..., index[i], ...] / d source[..., i, ...] = alpha
        gs = None
        if self.needs_input_grad[1]:
            gs = self.xp.take(g, self.index, axis=self.dim)
            if self.alpha != 1:
                gs = gs * self.alpha
        return g, gs


def _scatter_index(xp, dim, index):
    """The advanced index that sends element ``i`` of ``index`` to position ``index[i]`` along ``dim``."""
    grids = list(xp.meshgrid(*[xp.arange(s) for s in index.shape], indexing="ij"))
    grids[dim] = index
    return tuple(grids)


class Scatter(Function):
    """out = a, then ``out[index[i][j]][j] = src[i][j]`` (for dim 0; likewise for other dims).

    ``src`` is an array at least as large as ``index`` in every dimension (only its leading
    ``index.shape`` block is read), or a scalar value.
    """

    def forward(self, a, src, dim, index):
        xp = self.xp
        self.target = _scatter_index(xp, dim % a.ndim, index)  # positions written in out
        self.block = tuple(slice(0, s) for s in index.shape)  # positions read in src
        self.src_shape = getattr(src, "shape", ())
        out = a.copy()
        out[self.target] = src[self.block] if self.src_shape else src
        return out

    def backward(self, g):
        xp = self.xp
        ga = gs = None
        if self.needs_input_grad[0]:
            ga = g.copy()
            ga[self.target] = 0
        if self.needs_input_grad[1]:
            gs = xp.zeros(self.src_shape, dtype=g.dtype)
            gs[self.block] = g[self.target]
        return ga, gs


def view_of(view_fn, array):
    """``array`` seen through the view op ``view_fn`` (a GetItem with a basic index, a Reshape or a Permute)."""
    name = type(view_fn).__name__
    if name == "GetItem":
        return array[view_fn.index]
    if name == "Reshape":
        return array.reshape(view_fn.out_shape)
    if name == "Permute":
        return array.transpose(view_fn.dims)
    raise TypeError(f"{name} is not a view op")


def is_view_op(fn):
    """True for the Functions whose output is a view of their input's memory, and that :func:`view_of` replays."""
    name = type(fn).__name__
    return (name == "GetItem" and fn.basic) or (name == "Reshape" and hasattr(fn, "out_shape")) or name == "Permute"


class WriteThroughView(Function):
    """base_new = base with the region seen by ``view_fn`` replaced by ``view_new``.

    The write itself has already happened (the view shares the base's memory), so forward
    returns ``base`` as it now is, without a copy. Backward: the region's old values were
    overwritten (gradient 0 there for ``base``), and ``view_new`` receives the region's gradient.
    """

    def forward(self, base, view_new, view_fn):
        self.view_fn = view_fn
        return base

    def backward(self, g):
        xp = self.xp
        g_base = g_view = None
        if self.needs_input_grad[1]:
            g_view = xp.ascontiguousarray(view_of(self.view_fn, g))
        if self.needs_input_grad[0]:
            g_base = xp.array(g, copy=True, order="C")
            view_of(self.view_fn, g_base)[...] = 0
        return g_base, g_view
