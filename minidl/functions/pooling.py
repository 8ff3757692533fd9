"""Max, average and adaptive pooling as array-level Functions (kernels in ``kernels/cpu/pooling.py``).

Options arrive normalised by ``minidl.nn.functional`` (int pairs, output sizes); the
plain float64 reference is ``kernels/reference/pooling.py``.
"""
from __future__ import annotations

import itertools

import numpy as np

from minidl.functions.conv_nd import kernel_taps, tap_window
from minidl.backend import scatter_add
from minidl.functions.function import Function
from minidl.kernels.shapes import _avg_windows_1d, _output_size_1d


class MaxPool2d(Function):
    kernel_family = "pooling"

    def forward(self, x, kernel_size, stride, padding, dilation, ceil_mode):
        y, indices = self.kernels.max_pool2d_forward(x, kernel_size, stride, padding, dilation, ceil_mode)
        self.save_for_backward(indices)  # the argmax of each window is all backward needs
        self.indices = indices  # for return_indices=True
        self.input_shape = x.shape
        return y

    def backward(self, g):
        (indices,) = self.saved
        return (self.kernels.max_pool2d_backward(g, indices, self.input_shape),)


class AvgPool2d(Function):
    kernel_family = "pooling"

    def forward(self, x, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override):
        self.options = (kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override)
        self.input_shape = x.shape  # only the shape: the gradient is spread evenly over each window
        return self.kernels.avg_pool2d_forward(x, *self.options)

    def backward(self, g):
        return (self.kernels.avg_pool2d_backward(g, self.input_shape, *self.options),)


class AdaptiveAvgPool2d(Function):
    kernel_family = "pooling"

    def forward(self, x, output_size):
        self.input_shape = x.shape
        if output_size == (1, 1):
            return self.kernels.global_avg_pool2d_forward(x)
        return self.kernels.adaptive_avg_pool2d_forward(x, output_size)

    def backward(self, g):
        return (self.kernels.adaptive_avg_pool2d_backward(g, self.input_shape),)


class AdaptiveMaxPool2d(Function):
    kernel_family = "pooling"

    def forward(self, x, output_size):
        y, indices = self.kernels.adaptive_max_pool2d_forward(x, output_size)
        self.save_for_backward(indices)
        self.indices = indices  # for return_indices=True
        self.input_shape = x.shape
        return y

    def backward(self, g):
        (indices,) = self.saved
        return (self.kernels.adaptive_max_pool2d_backward(g, indices, self.input_shape),)


# ---------------------------------------------------------------------------
# N-d pooling in plain array code: avg_pool3d, max pooling of integer inputs and
# max_pool3d, and max_unpool (the scatter of max pooling's values to their indices)
# ---------------------------------------------------------------------------

def pool_nd_output_size(sizes, kernel, stride, padding, dilation, ceil_mode):
    """PyTorch's pooling output size per spatial dimension; padding at most half the kernel."""
    out = []
    for size, k, s, p, d in zip(sizes, kernel, stride, padding, dilation):
        if p > k // 2:
            raise ValueError(f"pad should be at most half of effective kernel size, got padding={tuple(padding)} "
                             f"and kernel_size={tuple(kernel)}")
        o = _output_size_1d(size, k, s, p, d, ceil_mode)
        if o < 1:
            raise ValueError(f"pooled output is too small: input {tuple(sizes)}, kernel_size={tuple(kernel)}, "
                             f"stride={tuple(stride)}, padding={tuple(padding)}")
        out.append(o)
    return tuple(out)


def _pad_for_windows(xp, x, kernel, stride, padding, dilation, out_sizes, value):
    """x padded by ``padding`` on the left and enough on the right for the last (ceil_mode) window."""
    widths = [(0, 0), (0, 0)]
    for size, k, s, p, d, o in zip(x.shape[2:], kernel, stride, padding, dilation, out_sizes):
        widths.append((p, max(0, (o - 1) * s + d * (k - 1) + 1 - size - p)))
    return xp.pad(x, widths, mode="constant", constant_values=value)


class AvgPoolNd(Function):
    """Mean over each window of an (N, C, *S) array, PyTorch's divisor rules, any number of dimensions.

    Window ``o`` along a dimension spans ``[o*s - p, o*s - p + k)`` clipped at ``S + p``: that length
    is the divisor with ``count_include_pad``; clipped again at ``[0, S)`` it is the divisor without.
    The divisor of a window is the product of its lengths over the dimensions. Backward spreads
    ``g / divisor`` evenly over each window.
    """

    def forward(self, x, kernel_size, stride, padding, ceil_mode=False, count_include_pad=True,
                divisor_override=None):
        xp = self.xp
        dims = x.ndim - 2
        ones = (1,) * dims
        out_sizes = pool_nd_output_size(x.shape[2:], kernel_size, stride, padding, ones, ceil_mode)
        divisor = np.ones(out_sizes)
        for axis, (size, o, k, s, p) in enumerate(zip(x.shape[2:], out_sizes, kernel_size, stride, padding)):
            start, end, padded_len = _avg_windows_1d(size, o, k, s, p, ceil_mode, count_include_pad)
            length = padded_len if count_include_pad else end - start
            shape = [1] * dims
            shape[axis] = o
            divisor = divisor * length.reshape(shape)
        if divisor_override:
            divisor = np.full(out_sizes, float(divisor_override))
        self.divisor = xp.asarray(divisor.astype(x.dtype))
        self.options = (kernel_size, stride, padding, out_sizes)
        self.input_shape = x.shape  # backward needs only the shape
        xpad = _pad_for_windows(xp, x, kernel_size, stride, padding, ones, out_sizes, 0)
        total = xp.zeros(x.shape[:2] + out_sizes, dtype=x.dtype)
        for tap in kernel_taps(kernel_size):
            total += xpad[(slice(None), slice(None)) + tap_window(tap, stride, ones, out_sizes)]
        return total / self.divisor

    def backward(self, g):
        xp = self.xp
        kernel_size, stride, padding, out_sizes = self.options
        ones = (1,) * len(kernel_size)
        share = g / self.divisor
        padded_shape = [s + p + max(0, (o - 1) * st + k - s - p)
                        for s, p, o, st, k in zip(self.input_shape[2:], padding, out_sizes, stride, kernel_size)]
        gpad = xp.zeros(self.input_shape[:2] + tuple(padded_shape), dtype=g.dtype)
        for tap in kernel_taps(kernel_size):
            gpad[(slice(None), slice(None)) + tap_window(tap, stride, ones, out_sizes)] += share
        inner = tuple(slice(p, p + s) for p, s in zip(padding, self.input_shape[2:]))
        return (gpad[(slice(None), slice(None)) + inner],)


class MaxPoolNd(Function):
    """Maximum over each window of an (N, C, *S) array of any dtype, any number of dimensions.

    Each window's values are stacked tap by tap; the first maximum in scan order wins (a NaN
    counts as the maximum, as in PyTorch). ``self.indices`` holds its flat position in the
    input plane (``return_indices``); backward adds ``g`` at those positions.
    """

    def forward(self, x, kernel_size, stride, padding, dilation, ceil_mode=False):
        xp = self.xp
        out_sizes = pool_nd_output_size(x.shape[2:], kernel_size, stride, padding, dilation, ceil_mode)
        lowest = -np.inf if x.dtype.kind == "f" else (False if x.dtype.kind == "b" else np.iinfo(x.dtype).min)
        xpad = _pad_for_windows(xp, x, kernel_size, stride, padding, dilation, out_sizes, lowest)
        taps = kernel_taps(kernel_size)
        windows = xp.stack([xpad[(slice(None), slice(None)) + tap_window(t, stride, dilation, out_sizes)]
                            for t in taps])  # (T, N, C, *O)
        best = windows.argmax(axis=0)  # first maximum (or first NaN)
        y = xp.take_along_axis(windows, best[None], axis=0)[0]
        # flat input index of every tap at every output position: sum over dims of coord * plane stride
        flat = np.zeros((len(taps),) + out_sizes, dtype=np.int64)
        plane_stride = 1
        for axis in reversed(range(len(out_sizes))):
            o = np.arange(out_sizes[axis]) * stride[axis] - padding[axis]
            tap_offset = np.array([t[axis] for t in taps]) * dilation[axis]
            coord = tap_offset.reshape((-1,) + (1,) * len(out_sizes)) + o.reshape(
                [1] * (axis + 1) + [-1] + [1] * (len(out_sizes) - axis - 1))
            flat = flat + coord * plane_stride
            plane_stride *= x.shape[2 + axis]
        flat = xp.asarray(np.broadcast_to(flat[:, None, None], (len(taps),) + x.shape[:2] + out_sizes))
        self.indices = xp.take_along_axis(flat, best[None], axis=0)[0]
        self.input_shape = x.shape
        return y

    def backward(self, g):
        return (_scatter_add_planes(self.xp, g, self.indices, self.input_shape),)


class AdaptiveMaxPoolNd(Function):
    """Maximum over the adaptive bins [floor(o S / O), ceil((o + 1) S / O)) of every spatial axis.

    Bins differ in length, so each axis gets ``L`` taps (its longest bin) whose indices past
    a bin's end repeat the bin's last element: a repeat never beats the first maximum. The
    first maximum of each box (scan order) gives ``self.indices``, as :class:`MaxPoolNd`.
    """

    def forward(self, x, output_size):
        xp = self.xp
        sizes = x.shape[2:]
        taps = []  # per axis: (O, L) input indices
        for size, out in zip(sizes, output_size):
            o = np.arange(out)
            start, end = (o * size) // out, -((-(o + 1) * size) // out)
            longest = int((end - start).max())
            taps.append(np.minimum(start[:, None] + np.arange(longest), end[:, None] - 1))
        plane_strides = [int(np.prod(sizes[d + 1:])) for d in range(len(sizes))]
        windows, flats = [], []
        for combo in itertools.product(*(range(t.shape[1]) for t in taps)):
            picks = [t[:, k] for t, k in zip(taps, combo)]
            mesh = np.ix_(*picks)
            windows.append(x[(slice(None), slice(None)) + tuple(xp.asarray(m) for m in mesh)])
            flats.append(sum(m * st for m, st in zip(mesh, plane_strides)))
        windows = xp.stack(windows)  # (T, N, C, *O)
        best = windows.argmax(axis=0)
        flat = xp.asarray(np.stack([np.broadcast_to(f, tuple(output_size)) for f in flats]))
        flat = xp.broadcast_to(flat[:, None, None], windows.shape)
        self.indices = xp.take_along_axis(flat, best[None], axis=0)[0]
        self.input_shape = x.shape
        return xp.take_along_axis(windows, best[None], axis=0)[0]

    def backward(self, g):
        return (_scatter_add_planes(self.xp, g, self.indices, self.input_shape),)


def _scatter_add_planes(xp, values, indices, shape):
    """An array of ``shape`` (N, C, *S), zero but for ``values`` added at the flat plane ``indices``."""
    n, c = shape[:2]
    out = xp.zeros((n * c, int(np.prod(shape[2:]))), dtype=values.dtype)
    rows = xp.arange(n * c).reshape(-1, 1)
    scatter_add(xp, out, (rows, indices.reshape(n * c, -1)), values.reshape(n * c, -1))
    return out.reshape(shape)


class MaxUnpool(Function):
    """The partial inverse of max pooling: ``y.flat_plane[indices] = x``, zero elsewhere.

    ``output_size`` is the spatial size of y. Backward reads the gradient back at the indices.
    """

    def forward(self, x, indices, output_size):
        xp = self.xp
        n, c = x.shape[:2]
        plane = int(np.prod(output_size))
        flat = indices.reshape(n * c, -1).astype(np.int64)
        if flat.size and (int(flat.min()) < 0 or int(flat.max()) >= plane):
            raise ValueError(f"max_unpool: found an index out of bounds for an output of size {tuple(output_size)}")
        y = xp.zeros((n * c, plane), dtype=x.dtype)
        y[xp.arange(n * c).reshape(-1, 1), flat] = x.reshape(n * c, -1)
        self.flat = flat  # backward gathers at the same places
        self.input_shape = x.shape
        return y.reshape((n, c) + tuple(output_size))

    def backward(self, g):
        n, c = self.input_shape[:2]
        gx = self.xp.take_along_axis(g.reshape(n * c, -1), self.flat, axis=1)
        return gx.reshape(self.input_shape), None
