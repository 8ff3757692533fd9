"""Transposed convolution ("deconvolution") as an array-level Function, in 2-D and 3-D.

A transposed convolution is the adjoint of a convolution: with the weight ``w`` of shape
(C_in, C_out / groups, *k) read as a convolution's weight (K = C_in, C = C_out / groups),
``conv_transpose(x, w)`` is exactly the input gradient of ``conv(., w)`` evaluated at
``grad_out = x``. Every input pixel scatters ``x[n, c, h, w] * w[c, :, i, j]`` onto the output
at ``(h*s - p + i*d, w*s - p + j*d)`` (``kernels/reference/conv_transpose.py`` loops so).
So, per spatial dimension::

    O = (S - 1) * s - 2p + d (k - 1) + output_padding + 1

and the three passes reuse the convolution's own:

* forward  = conv's input gradient (col2im of W^T @ x),
* grad_x   = conv forward of ``gy`` with the same weight,
* grad_w   = conv's weight gradient with ``gy`` as the input and ``x`` as the output gradient,
* grad_b   = ``gy`` summed over batch and positions.

The 2-D case runs through the convolution's planned kernels (``minidl/functions/conv.py``);
the 3-D case (and the rare 2-D one with ``output_padding >= stride``) through the plain
array code of ``minidl/functions/conv_nd.py``.

>>> import numpy as np
>>> x, w = np.ones((1, 1, 2, 2)), np.ones((1, 1, 2, 2))
>>> ConvTranspose()(x, w, None, stride=(1, 1), padding=(0, 0), output_padding=(0, 0), dilation=(1, 1))[0, 0]
array([[1., 2., 1.],
       [2., 4., 2.],
       [1., 2., 1.]])
"""
from __future__ import annotations

from minidl.functions import conv as _conv
from minidl.functions.conv_nd import (check_conv_nd_args, conv_nd_forward, conv_nd_input_grad,
                                      conv_nd_weight_grad)
from minidl.functions.function import Function


def conv_transpose_output_size(sizes, kernel, stride, padding, output_padding, dilation):
    """``(S - 1) s - 2p + d (k - 1) + output_padding + 1`` per spatial dimension (PyTorch's formula)."""
    out = []
    for size, k, s, p, op, d in zip(sizes, kernel, stride, padding, output_padding, dilation):
        if op >= max(s, d) or op < 0:
            raise ValueError(f"conv_transpose: output_padding {op} must be smaller than either stride {s} "
                             f"or dilation {d}")
        o = (size - 1) * s - 2 * p + d * (k - 1) + op + 1
        if o < 1:
            raise ValueError(f"conv_transpose: output size {o} is too small (input {size}, kernel {k}, "
                             f"stride {s}, padding {p})")
        out.append(o)
    return tuple(out)


class ConvTranspose(Function):
    """y = conv_transpose(x, weight) + bias on (N, C_in, *S) arrays with 2 or 3 spatial dimensions."""

    kernel_family = "conv"

    def forward(self, x, weight, bias, stride, padding, output_padding, dilation, groups=1):
        n_spatial = x.ndim - 2
        name = f"conv_transpose{n_spatial}d"
        check_conv_nd_args(x, weight, bias, groups, n_spatial, name)
        if x.shape[1] != weight.shape[0]:
            raise ValueError(f"{name}: input has {x.shape[1]} channels but weight {tuple(weight.shape)} "
                             f"expects weight.shape[0] = {weight.shape[0]}")
        if weight.shape[0] % groups:
            raise ValueError(f"{name}: groups={groups} must divide in_channels={weight.shape[0]}")
        out_sizes = conv_transpose_output_size(x.shape[2:], weight.shape[2:], stride, padding, output_padding,
                                               dilation)
        self.out_shape = (x.shape[0], weight.shape[1] * groups) + out_sizes
        self.options = (stride, padding, dilation, groups)
        # the planned 2-D kernels check the output size by the convolution's formula, which
        # output_padding >= stride (allowed when smaller than dilation) does not satisfy
        self.planned = n_spatial == 2 and all(op < s for op, s in zip(output_padding, stride))
        self.save_for_backward(x, weight)
        if self.planned:
            shape_only = self.xp.empty(self.out_shape, dtype=x.dtype)  # conv2d_backward reads only its shape
            y = _conv.conv2d_backward(x, shape_only, weight, *self.options, needs_input_grad=True,
                                      needs_weight_grad=False, needs_bias_grad=False, kernels=self.kernels)[0]
        else:
            y = conv_nd_input_grad(self.xp, x, weight, self.out_shape, *self.options)
        if bias is not None:
            y += bias.reshape((1, -1) + (1,) * n_spatial)
        return y

    def backward(self, g):
        x, weight = self.saved
        needs = tuple(self.needs_input_grad) + (False,) * 3
        gx = gw = gb = None
        if self.planned:
            if needs[0]:
                gx = _conv.conv2d_forward(g, weight, None, *self.options, kernels=self.kernels)
            if needs[1]:
                gw = _conv.conv2d_backward(x, g, weight, *self.options, needs_input_grad=False,
                                           needs_weight_grad=True, needs_bias_grad=False,
                                           kernels=self.kernels)[1]
        else:
            if needs[0]:
                gx = conv_nd_forward(self.xp, g, weight, *self.options, out_sizes=x.shape[2:])
            if needs[1]:
                gw = conv_nd_weight_grad(self.xp, x, g, weight.shape, *self.options)
        if needs[2]:
            gb = g.sum(axis=(0,) + tuple(range(2, g.ndim)))
        return gx, gw, gb
