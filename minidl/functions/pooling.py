"""Max, average and adaptive pooling as array-level Functions (kernels in ``kernels/cpu/pooling.py``).

Options arrive normalised by ``minidl.nn.functional`` (int pairs, output sizes); the
plain float64 reference is ``kernels/reference/pooling.py``.
"""
from __future__ import annotations

from minidl.functions.function import Function


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
