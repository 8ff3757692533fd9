"""Indexing ops on arrays: flip, roll, tril/triu, diagonals, scatter/scatter_reduce, index_add.

Gather, take, index_select, masked_select, repeat_interleave and unfold need no Function
of their own: they are advanced indexing (``GetItem`` in ``shape.py``, whose backward
scatters with ``add.at``). The ops here either write into a copy of their input (scatter,
index_add) or have a backward cheaper than a scatter-add (flip, roll, tril).
"""
from __future__ import annotations

import numpy as np

from minidl.backend import scatter_add, scatter_max, scatter_min
from minidl.functions.function import Function


class Flip(Function):
    """Reverse the order of elements along ``dims``; backward reverses the gradient the same way."""

    def forward(self, a, dims):
        self.dims = dims
        return self.xp.flip(a, axis=dims) if dims else a.copy()

    def backward(self, g):
        return (self.xp.flip(g, axis=self.dims) if self.dims else g,)


class Roll(Function):
    """Shift elements cyclically by ``shifts`` along ``dims`` (the flattened tensor when ``dims`` is None)."""

    def forward(self, a, shifts, dims):
        self.shifts, self.dims = shifts, dims
        return self.xp.roll(a, shifts, axis=dims)

    def backward(self, g):
        back = tuple(-s for s in self.shifts) if isinstance(self.shifts, tuple) else -self.shifts
        return (self.xp.roll(g, back, axis=self.dims),)


class Tri(Function):
    """Keep the lower (``upper=False``, tril) or upper (triu) triangle of the last two dims, zero the rest.

    The output is the input times a fixed 0/1 mask, so the gradient is the same mask applied to g.
    """

    def forward(self, a, diagonal=0, upper=False):
        self.diagonal, self.upper = diagonal, upper
        return self._mask(a)

    def _mask(self, a):
        return self.xp.triu(a, self.diagonal) if self.upper else self.xp.tril(a, self.diagonal)

    def backward(self, g):
        return (self._mask(g),)


def _diagonal_index(shape, offset, dim1, dim2, xp=np):
    """An index into an array of ``shape`` that picks its diagonal ``offset`` between ``dim1`` and ``dim2``.

    Indexing with it gives the diagonal as the last axis (as ``numpy.diagonal``): the other
    axes are full slices, ``dim1`` and ``dim2`` are two equal-length arange arrays.
    """
    rows, cols = shape[dim1], shape[dim2]
    start_row, start_col = max(-offset, 0), max(offset, 0)
    length = max(min(rows - start_row, cols - start_col), 0)
    index = [slice(None)] * len(shape)
    index[dim1] = xp.arange(length) + start_row
    index[dim2] = xp.arange(length) + start_col
    return index, length


class Diagonal(Function):
    """The diagonal ``offset`` of the plane (dim1, dim2), as a new last axis (``torch.diagonal``)."""

    def forward(self, a, offset=0, dim1=0, dim2=1):
        xp = self.xp
        self.shape, self.dtype = a.shape, a.dtype
        self.offset, self.dim1, self.dim2 = offset, dim1, dim2
        # move the plane to the end so that the two index arrays are adjacent: the diagonal lands last
        moved = xp.moveaxis(a, (dim1, dim2), (-2, -1))
        index, _ = _diagonal_index(moved.shape, offset, moved.ndim - 2, moved.ndim - 1, xp)
        return moved[tuple(index)]

    def backward(self, g):
        # each diagonal element came from one input element: write g back there, zeros elsewhere
        xp = self.xp
        grad = xp.zeros(self.shape, dtype=g.dtype)
        moved = xp.moveaxis(grad, (self.dim1, self.dim2), (-2, -1))  # a view of grad
        index, _ = _diagonal_index(moved.shape, self.offset, moved.ndim - 2, moved.ndim - 1, xp)
        moved[tuple(index)] = g
        return (grad,)


class DiagEmbed(Function):
    """Put the last axis of ``a`` on the diagonal ``offset`` of a new plane (dim1, dim2), zeros elsewhere."""

    def forward(self, a, offset=0, dim1=-2, dim2=-1):
        xp = self.xp
        n = a.shape[-1] + abs(offset)
        ndim = a.ndim + 1
        self.offset, self.dim1, self.dim2 = offset, dim1 % ndim, dim2 % ndim
        out = xp.zeros(a.shape[:-1] + (n, n), dtype=a.dtype)
        index, _ = _diagonal_index(out.shape, offset, ndim - 2, ndim - 1, xp)
        out[tuple(index)] = a
        return xp.moveaxis(out, (-2, -1), (self.dim1, self.dim2))

    def backward(self, g):
        # the inverse of the forward: read the diagonal back
        xp = self.xp
        moved = xp.moveaxis(g, (self.dim1, self.dim2), (-2, -1))
        index, _ = _diagonal_index(moved.shape, self.offset, moved.ndim - 2, moved.ndim - 1, xp)
        return (moved[tuple(index)],)


def scatter_positions(index, dim, xp=np):
    """The advanced index of the positions ``index`` writes to along ``dim`` (torch.scatter's rule).

    ``out[i][j][k]`` with ``dim=1`` goes to ``out[i][index[i][j][k]][k]``: every axis but
    ``dim`` is the element's own coordinate (an arange shaped to broadcast along its axis),
    axis ``dim`` is the value of ``index``.
    """
    ndim = index.ndim
    grids = [xp.arange(n).reshape([n if k == axis else 1 for k in range(ndim)]) for axis, n in enumerate(index.shape)]
    grids[dim] = index
    return tuple(grids)


def multiply_at(xp, out, target, values):
    """``out[target] *= values`` where repeated targets multiply in turn (NumPy's ``multiply.at``).

    Written with plain fancy indexing because CuPy has no ``multiply.at``: the elements are
    grouped by how many earlier elements share their target (their rank), and within one
    rank the targets are distinct, so ``out[t] *= v`` is exact. ``out`` must be contiguous.
    """
    flat = xp.ravel_multi_index(tuple(xp.broadcast_arrays(*target)), out.shape).reshape(-1)
    values = values.reshape(-1)  # values has the targets' (index's) shape
    order = xp.argsort(flat)
    sorted_flat = flat[order]
    rank = xp.arange(flat.size) - xp.searchsorted(sorted_flat, sorted_flat, side="left")
    out_flat = out.reshape(-1)  # a view: writes land in out
    for r in range(int(rank.max()) + 1 if rank.size else 0):
        pick = order[rank == r]
        out_flat[flat[pick]] *= values[pick]


_IDENTITY = {"sum": 0.0, "mean": 0.0, "prod": 1.0, "amax": -np.inf, "amin": np.inf}


class ScatterReduce(Function):
    """``a.scatter_reduce(dim, index, src, reduce, include_self)``, and plain ``scatter`` (reduce=None).

    Every element ``src[p]`` for ``p`` in ``index``'s shape is combined into
    ``out[p with p[dim] replaced by index[p]]``; positions nothing is written to keep ``a``.
    ``reduce=None`` overwrites (with repeated targets, one of the writes wins, as PyTorch).
    """

    def forward(self, a, src, index, dim, reduce=None, include_self=True):
        xp = self.xp
        self.dim, self.reduce, self.include_self = dim, reduce, include_self
        self.shape = a.shape
        self.target = scatter_positions(index, dim, xp)
        self.src_shape, self.used = src.shape, tuple(slice(0, s) for s in index.shape)
        src = src[self.used]  # src may be larger than index: only its leading corner is read
        out = a.copy()
        if reduce is None:
            out[self.target] = src
            self.save_for_backward()
            return out
        # scattered: the positions at least one element is written to; count: how many are
        count = xp.zeros(a.shape, dtype=np.int64)
        scatter_add(xp, count, self.target, 1)
        scattered = count > 0
        if not include_self:  # start the scattered positions from the reduction's identity
            identity = _IDENTITY[reduce] if a.dtype.kind == "f" else _int_identity(reduce, a.dtype)
            out[scattered] = identity
        if reduce in ("sum", "mean"):
            scatter_add(xp, out, self.target, src)
            if reduce == "mean":
                total = count + (1 if include_self else 0)
                total = xp.maximum(total, 1).astype(out.dtype)
                out = out / total if out.dtype.kind == "f" else out // total
                self.total = total
        elif reduce == "prod":
            multiply_at(xp, out, self.target, src)
        elif reduce == "amax":
            scatter_max(xp, out, self.target, src)
        elif reduce == "amin":
            scatter_min(xp, out, self.target, src)
        else:
            raise RuntimeError(f"scatter_reduce: reduce must be one of 'sum', 'prod', 'mean', 'amax', 'amin', "
                               f"got {reduce!r}")
        self.scattered = scattered
        if reduce in ("prod", "amax", "amin"):
            self.save_for_backward(a, src, out)
        else:
            self.save_for_backward()
        return out

    def backward(self, g):
        grad_a, grad_src = self._backward(g)
        if grad_src.shape != self.src_shape:  # the unread part of src gets no gradient
            full = self.xp.zeros(self.src_shape, dtype=grad_src.dtype)
            full[self.used] = grad_src
            grad_src = full
        return grad_a, grad_src

    def _backward(self, g):
        xp = self.xp
        target, reduce = self.target, self.reduce
        if reduce is None:
            # overwritten positions do not depend on a; each src element reads the gradient of where it went
            grad_a = g.copy()
            grad_a[target] = 0
            return grad_a, g[target]
        kept = 1 if self.include_self else 0  # does a's value take part at a scattered position?
        if reduce in ("sum", "mean"):
            scale = 1 / self.total if reduce == "mean" else 1
            grad_a = g * scale * xp.where(self.scattered, kept, 1)
            return grad_a, (g * scale)[target]
        a, src, out = self.saved
        if reduce == "prod":
            return self._prod_backward(g, a, src, out)
        # amax/amin: the gradient is shared evenly between every contributor equal to the result
        a_wins = (a == out) & (~self.scattered | bool(kept))
        src_wins = src == out[target]
        ties = a_wins.astype(g.dtype)
        scatter_add(xp, ties, target, src_wins.astype(g.dtype))
        share = g / xp.maximum(ties, 1)
        return share * a_wins, share[target] * src_wins

    def _prod_backward(self, g, a, src, out):
        """d out / d x = product of the other factors, computed without dividing by zero.

        Per target: ``zeros`` counts the zero factors, ``nonzero_prod`` multiplies the others.
        A nonzero factor's cofactor is nonzero_prod / x when there are no zeros (else 0); a zero
        factor's cofactor is nonzero_prod when it is the only zero (else 0).
        """
        xp = self.xp
        target = self.target
        a_in = ~self.scattered | self.include_self  # a is a factor of its own output
        zeros = (a_in & (a == 0)).astype(np.int64)
        scatter_add(xp, zeros, target, (src == 0).astype(np.int64))
        nonzero_prod = xp.where(a_in & (a != 0), a, 1).astype(g.dtype)
        multiply_at(xp, nonzero_prod, target, xp.where(src != 0, src, 1).astype(g.dtype))

        def cofactor(x, zeros_here, prod_here):
            safe = xp.where(x != 0, x, 1)
            return xp.where(x != 0, xp.where(zeros_here == 0, prod_here / safe, 0),
                            xp.where(zeros_here == 1, prod_here, 0))

        grad_a = xp.where(a_in, g * cofactor(a, zeros, nonzero_prod), 0).astype(g.dtype)
        grad_src = g[target] * cofactor(src, zeros[target], nonzero_prod[target])
        return grad_a, grad_src.astype(g.dtype)


def _int_identity(reduce, dtype):
    """The starting value of a reduction over integers (or booleans): the type's extreme for amax/amin."""
    info = np.iinfo(dtype) if dtype.kind in "iu" else None
    if reduce == "amax":
        return info.min if info else False
    if reduce == "amin":
        return info.max if info else True
    return 1 if reduce == "prod" else 0


class IndexAdd(Function):
    """``a.index_add(dim, index, source, alpha)``: ``out = a`` plus ``alpha * source`` added at ``index`` along ``dim``."""

    def forward(self, a, source, index, dim, alpha=1):
        xp = self.xp
        self.index, self.dim, self.alpha = index, dim, alpha
        out = a.copy()
        scatter_add(xp, xp.moveaxis(out, dim, 0), index, xp.moveaxis(source * alpha if alpha != 1 else source, dim, 0))
        return out

    def backward(self, g):
        # every source slice was added to one slice of out: read that slice's gradient back
        return g, self.xp.take(g, self.index, axis=self.dim) * self.alpha
