"""Max, average and adaptive pooling as differentiable Functions (kernels in ``kernels/cpu/pooling.py``)."""
from __future__ import annotations

from ..autograd import Function, get_array_module
from ._common import kernels_for, pair


def _adaptive_size(output_size, h, w):
    if isinstance(output_size, (tuple, list)):
        oh, ow = output_size
        return (h if oh is None else int(oh)), (w if ow is None else int(ow))
    return int(output_size), int(output_size)


class MaxPool2d(Function):
    def forward(self, x, kernel_size, stride, padding, dilation, ceil_mode):
        kern = kernels_for(get_array_module(x), "pooling")
        y, indices = kern.max_pool2d_forward(x, kernel_size, stride, padding, dilation, ceil_mode)
        self.save_for_backward(indices)  # the argmax of each window is all backward needs
        self.input_shape = x.shape
        return y

    def backward(self, g):
        (indices,) = self.saved
        return (kernels_for(get_array_module(g), "pooling").max_pool2d_backward(g, indices, self.input_shape),)


class AvgPool2d(Function):
    def forward(self, x, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override):
        self.options = (kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override)
        self.input_shape = x.shape  # only the shape: the gradient is spread evenly over each window
        return kernels_for(get_array_module(x), "pooling").avg_pool2d_forward(x, *self.options)

    def backward(self, g):
        return (kernels_for(get_array_module(g), "pooling").avg_pool2d_backward(g, self.input_shape, *self.options),)


class AdaptiveAvgPool2d(Function):
    def forward(self, x, output_size):
        self.input_shape = x.shape
        kern = kernels_for(get_array_module(x), "pooling")
        if output_size == (1, 1):
            return kern.global_avg_pool2d_forward(x)
        return kern.adaptive_avg_pool2d_forward(x, output_size)

    def backward(self, g):
        return (kernels_for(get_array_module(g), "pooling").adaptive_avg_pool2d_backward(g, self.input_shape),)


class AdaptiveMaxPool2d(Function):
    def forward(self, x, output_size):
        y, indices = kernels_for(get_array_module(x), "pooling").adaptive_max_pool2d_forward(x, output_size)
        self.save_for_backward(indices)
        self.input_shape = x.shape
        return y

    def backward(self, g):
        (indices,) = self.saved
        return (kernels_for(get_array_module(g), "pooling").adaptive_max_pool2d_backward(g, indices, self.input_shape),)


def _batched(fn):
    """Let a pooling function accept a 3-D (C, H, W) input as PyTorch does."""
    def wrapper(input, *args, **kwargs):
        if input.ndim == 3:
            out = fn(input.unsqueeze(0), *args, **kwargs)
            if isinstance(out, tuple):
                return tuple(o.squeeze(0) for o in out)
            return out.squeeze(0)
        if input.ndim != 4:
            raise ValueError(f"{fn.__name__}: expected a 4-D (N, C, H, W) or 3-D input, got shape {input.shape}")
        return fn(input, *args, **kwargs)

    wrapper.__name__ = fn.__name__
    wrapper.__doc__ = fn.__doc__
    return wrapper


@_batched
def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    """Maximum over each window; the gradient goes to the first maximum in scan order (as PyTorch's CPU kernel)."""
    from ..tensor import Tensor

    kernel_size = pair(kernel_size, "max_pool2d")
    stride = kernel_size if stride is None or stride == [] else pair(stride, "max_pool2d")
    out = MaxPool2d.apply(input, kernel_size=kernel_size, stride=stride, padding=pair(padding, "max_pool2d"),
                          dilation=pair(dilation, "max_pool2d"), ceil_mode=bool(ceil_mode))
    if return_indices:
        fn = out._ctx
        if fn is None:  # no graph recorded: recompute the indices
            _, idx = kernels_for(get_array_module(input.data), "pooling").max_pool2d_forward(
                input.data, kernel_size, stride, pair(padding, "max_pool2d"), pair(dilation, "max_pool2d"),
                bool(ceil_mode))
        else:
            idx = fn.saved[0]
        return out, Tensor._wrap(idx)
    return out


@_batched
def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None):
    """Mean over each window; ``count_include_pad`` counts zero padding in the divisor."""
    kernel_size = pair(kernel_size, "avg_pool2d")
    stride = kernel_size if stride is None or stride == [] else pair(stride, "avg_pool2d")
    return AvgPool2d.apply(input, kernel_size=kernel_size, stride=stride, padding=pair(padding, "avg_pool2d"),
                           ceil_mode=bool(ceil_mode), count_include_pad=bool(count_include_pad),
                           divisor_override=divisor_override)


@_batched
def adaptive_avg_pool2d(input, output_size):
    """Average over bins [floor(i H / OH), ceil((i + 1) H / OH)), as PyTorch; any output size."""
    size = _adaptive_size(output_size, input.shape[-2], input.shape[-1])
    return AdaptiveAvgPool2d.apply(input, output_size=size)


@_batched
def adaptive_max_pool2d(input, output_size, return_indices=False):
    size = _adaptive_size(output_size, input.shape[-2], input.shape[-1])
    out = AdaptiveMaxPool2d.apply(input, output_size=size)
    if return_indices:
        from ..tensor import Tensor

        _, idx = kernels_for(get_array_module(input.data), "pooling").adaptive_max_pool2d_forward(input.data, size)
        return out, Tensor._wrap(idx)
    return out
