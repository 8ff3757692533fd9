"""2-D convolution (dense, grouped, depthwise) as an array-level Function, and its path plan.

The plan — which of the three kernel paths runs — is decided here, once per call, from
the shapes and options alone, and backward reuses it; every backend (``kernels/cpu/conv.py``,
``kernels/cuda/conv.py``) supplies the same primitives for each path:

* ``pointwise``: 1x1, stride 1, no padding, one group: a matrix product per image;
* ``direct``: depthwise, and grouped with at most ``DIRECT_MAX_CHANNELS_PER_GROUP``
  channels per group: loops over shifted rows of the input (im2col would be kh*kw times
  larger than the input and feed tiny products);
* ``winograd``: dense 3x3, stride 1, no dilation, with at least ``WINOGRAD_MIN_CHANNELS``
  input and output channels, on a backend that has it (the CPU): Winograd's F(4x4, 3x3),
  36 GEMMs on transformed tiles with a quarter of im2col's multiply-adds
  (``kernels/reference/winograd.py`` explains it);
* ``gemm``: everything else: im2col + one GEMM per group, chunk by chunk.

The plain float64 reference a student can read is ``kernels/reference/conv.py``.

>>> import numpy as np
>>> x, w = np.ones((1, 2, 4, 4), np.float32), np.ones((3, 2, 3, 3), np.float32)
>>> Conv2d()(x, w, None, stride=(1, 1), padding=(1, 1))[0, 0, 0]
array([ 8., 12., 12.,  8.], dtype=float32)
"""
from __future__ import annotations

from minidl.functions.function import Function
from minidl.kernels.shapes import check_conv_args, conv_output_size

# Above this many input channels per group, im2col + batched GEMM beats the direct kernel
# (measured by benchmarks/bench_conv_kernels.py on 2 cores).
DIRECT_MAX_CHANNELS_PER_GROUP = 8
# A dense stride-1 convolution with at most this many (input, output) channel pairs also runs
# direct: im2col would copy each tiny input plane kh*kw times to feed a GEMM a few rows tall.
# Measured fwd+bwd on the development machine: LeNet-5's conv1 (1 -> 6, 5x5, batch 128) 4.5 ms
# direct against 11.3 by im2col; 3 -> 16 3x3 at 32x32 3.6 against 8.0; 3 -> 32 7.2 against 6.5
# (im2col ahead); stride 2 direct was 5x slower, so only stride 1.
DIRECT_MAX_DENSE_PAIRS = 48


# Below this many input or output channels the Winograd transforms cost more than the GEMMs
# they save (e.g. a first layer on RGB images): im2col serves. Below an 8x8 output the 4x4 tiles
# waste too much (a 7x7 output computes 8x8) and the per-plane loops are too short: measured on
# the development machine (benchmarks/results/cpu-conv-paths.md, from benchmarks/conv_paths.py),
# 512 channels at 7x7 took 74 ms by Winograd against 56 by im2col, at 8x8 (256) 55 against 78.
WINOGRAD_MIN_CHANNELS = 16
WINOGRAD_MIN_OUTPUT = 8


def conv_plan(x_shape, weight_shape, stride, padding, groups, dilation=(1, 1), winograd=False):
    """``"pointwise"``, ``"direct"``, ``"winograd"`` or ``"gemm"``: the path a convolution takes.

    The same on every backend, except that ``"winograd"`` is chosen only where the backend's
    kernels have it (``winograd=True``); elsewhere those convolutions take ``"gemm"``.
    """
    c_in, k_out = x_shape[1], weight_shape[0]
    if tuple(weight_shape[2:]) == (1, 1) and stride == (1, 1) and padding == (0, 0) and groups == 1:
        return "pointwise"
    depthwise = groups == c_in and k_out % c_in == 0
    if groups > 1 and (depthwise or c_in // groups <= DIRECT_MAX_CHANNELS_PER_GROUP):
        return "direct"
    if groups == 1 and stride == (1, 1) and c_in * k_out <= DIRECT_MAX_DENSE_PAIRS:
        return "direct"  # a first layer on 1-3 channels with few outputs (LeNet-5's conv1)
    if (winograd and groups == 1 and tuple(weight_shape[2:]) == (3, 3) and stride == (1, 1)
            and dilation == (1, 1) and min(c_in, k_out) >= WINOGRAD_MIN_CHANNELS
            and min(x_shape[2] + 2 * padding[0], x_shape[3] + 2 * padding[1]) - 2 >= WINOGRAD_MIN_OUTPUT):
        return "winograd"
    return "gemm"


class Conv2d(Function):
    """y = conv2d(x, weight) + bias on arrays; stride, padding, dilation are int pairs (h, w)."""

    kernel_family = "conv"

    def forward(self, x, weight, bias, stride=(1, 1), padding=(0, 0), dilation=(1, 1), groups=1):
        self.plan(x, weight, bias, stride, padding, dilation, groups)
        if x.shape[0] == 0:  # an empty batch: an empty output, as PyTorch (no kernel launch)
            oh, ow = conv_output_size(x.shape[2], x.shape[3], weight.shape[2], weight.shape[3], stride, padding,
                                      dilation)
            return self.xp.zeros((0, weight.shape[0], oh, ow), dtype=x.dtype)
        kern = self.kernels
        if self.path == "pointwise":
            return kern.pointwise_forward(x, weight, bias)
        if self.path == "direct":
            return kern.grouped_direct_forward(x, weight, bias, stride, padding, dilation, groups)
        if self.path == "winograd":
            return kern.winograd_forward(x, weight, bias, padding)
        return kern.conv2d_forward_gemm(x, weight, bias, stride, padding, dilation, groups)

    def plan(self, x, weight, bias, stride, padding, dilation, groups):
        """Check the arguments, choose the path, keep what backward needs."""
        check_conv_args(x, weight, bias, stride, padding, dilation, groups)
        conv_output_size(x.shape[2], x.shape[3], weight.shape[2], weight.shape[3], stride, padding,
                         dilation)  # raises if the kernel does not fit
        self.path = conv_plan(x.shape, weight.shape, stride, padding, groups, dilation,
                              winograd=hasattr(self.kernels, "winograd_forward"))
        self.options = (stride, padding, dilation, groups)
        # backward recomputes im2col from x instead of keeping the (C*kh*kw, N*OH*OW) column buffer:
        # it costs one more im2col but keeps the forward memory at the size of the activations
        self.save_for_backward(x, weight)

    def backward(self, g):
        x, weight = self.saved
        stride, padding, dilation, groups = self.options
        needs_x, needs_w = self.needs_input_grad[0], self.needs_input_grad[1]
        needs_b = len(self.needs_input_grad) > 2 and self.needs_input_grad[2]
        expected = (x.shape[0], weight.shape[0]) + conv_output_size(
            x.shape[2], x.shape[3], weight.shape[2], weight.shape[3], stride, padding, dilation)
        if tuple(g.shape) != expected or g.dtype != x.dtype:
            raise ValueError(f"conv2d backward: grad_out must have shape {expected} and dtype {x.dtype}, "
                             f"got shape {tuple(g.shape)} and dtype {g.dtype}")
        kern = self.kernels
        gb = g.sum(axis=(0, 2, 3)) if needs_b else None
        if x.shape[0] == 0:  # empty batch: zero gradients for the weight, an empty one for x
            return (self.xp.zeros_like(x) if needs_x else None,
                    self.xp.zeros_like(weight) if needs_w else None, gb)
        if self.path == "pointwise":
            gx, gw = kern.pointwise_backward(g, x, weight, needs_x, needs_w)
        elif self.path == "direct" and needs_x and needs_w:
            gx, gw = kern.grouped_direct_backward(g, x, weight, stride, padding, dilation, groups)
        elif self.path == "direct":
            gx = gw = None
            if needs_x:
                gx = kern.grouped_direct_backward_input(g, weight, x.shape, stride, padding, dilation, groups)
            if needs_w:
                gw = kern.grouped_direct_backward_weight(g, x, weight.shape, stride, padding, dilation, groups)
        elif self.path == "winograd":
            gx, gw = kern.winograd_backward(g, x, weight, padding, needs_x, needs_w)
        else:
            gx, gw = kern.conv2d_backward_gemm(g, x, weight, stride, padding, dilation, groups, needs_x, needs_w)
        return gx, gw, gb


# ---------------------------------------------------------------------------
# The same on bare arrays (kernel tests and benchmarks): one call through the plan
# ---------------------------------------------------------------------------

def conv2d_forward(x, weight, bias, stride, padding, dilation, groups, kernels=None):
    """y (N, K, OH, OW) = conv2d(x (N, C, H, W), weight (K, C // groups, kh, kw)) + bias, on arrays.

    ``kernels`` forces a backend's kernel module (the CUDA kernels on NumPy arrays under the
    CUDA simulator); by default the arrays' own backend serves.
    """
    return Conv2d(kernels)(x, weight, bias, stride=stride, padding=padding, dilation=dilation, groups=groups)


def conv2d_backward(grad_out, x, weight, stride, padding, dilation, groups, needs_input_grad=True,
                    needs_weight_grad=True, needs_bias_grad=True, kernels=None):
    """(grad_x, grad_w, grad_b) of :func:`conv2d_forward`; None for those not needed."""
    fn = Conv2d(kernels)
    fn.needs_input_grad = (needs_input_grad, needs_weight_grad, needs_bias_grad)
    fn.bind(x, weight)
    fn.plan(x, weight, None, stride, padding, dilation, groups)
    return fn.backward(grad_out)
