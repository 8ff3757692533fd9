"""2-D convolution (dense, grouped, depthwise) as a differentiable Function.

The maths and the fast paths (1x1 GEMM, im2col + BLAS, direct depthwise loops)
are in ``kernels/cpu/conv.py``; the plain reference a student can read is
``kernels/reference/conv.py``.
"""
from __future__ import annotations

from ..autograd import Function, get_array_module
from ._common import kernels_for, pair


class Conv2d(Function):
    def forward(self, x, weight, bias, stride=(1, 1), padding=(0, 0), dilation=(1, 1), groups=1):
        kern = kernels_for(get_array_module(x), "conv")
        # backward recomputes im2col from x instead of keeping the (C*kh*kw, N*OH*OW) column buffer:
        # it costs one more im2col but keeps the forward memory at the size of the activations
        self.save_for_backward(x, weight)
        self.options = (stride, padding, dilation, groups)
        return kern.conv2d_forward(x, weight, bias, stride, padding, dilation, groups)

    def backward(self, g):
        x, weight = self.saved
        stride, padding, dilation, groups = self.options
        kern = kernels_for(get_array_module(x), "conv")
        gx, gw, gb = kern.conv2d_backward(
            g, x, weight, stride, padding, dilation, groups,
            needs_input_grad=self.needs_input_grad[0],
            needs_weight_grad=self.needs_input_grad[1],
            needs_bias_grad=len(self.needs_input_grad) > 2 and self.needs_input_grad[2],
        )
        return gx, gw, gb


def _same_padding(weight_shape, dilation):
    """Padding for padding="same" with stride 1 (PyTorch pads the extra pixel on the right/bottom)."""
    pads = []
    for k, d in zip(weight_shape[2:], dilation):
        total = d * (k - 1)
        pads.append((total // 2, total - total // 2))
    return pads


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """2-D cross-correlation of ``input`` (N, C, H, W) with ``weight`` (K, C/groups, kh, kw).

    Output size per spatial dimension: floor((H + 2p - d(k - 1) - 1) / s) + 1.
    ``padding`` may be an int, a pair, "valid" or "same" (stride 1 only).

    >>> import minidl, minidl.nn.functional as F
    >>> F.conv2d(minidl.randn(1, 3, 8, 8), minidl.randn(4, 3, 3, 3), padding=1).shape
    (1, 4, 8, 8)
    """
    from ..tensor import Tensor

    if input.ndim != 4:
        if input.ndim == 3:
            return conv2d(input.unsqueeze(0), weight, bias, stride, padding, dilation, groups).squeeze(0)
        raise ValueError(f"conv2d: input must be 4-D (N, C, H, W) or 3-D, got shape {input.shape}")
    if weight.ndim != 4:
        raise ValueError(f"conv2d: weight must be 4-D (out_channels, in_channels/groups, kh, kw), got {weight.shape}")
    stride = pair(stride, "stride")
    dilation = pair(dilation, "dilation")
    if isinstance(padding, str):
        if padding == "valid":
            padding = (0, 0)
        elif padding == "same":
            if stride != (1, 1):
                raise ValueError(f"conv2d: padding='same' requires stride 1, got stride {stride}")
            (top, bottom), (left, right) = _same_padding(weight.shape, dilation)
            if top != bottom or left != right:
                from ..nn.functional import pad

                input = pad(input, (left, right, top, bottom))
                padding = (0, 0)
            else:
                padding = (top, left)
        else:
            raise ValueError(f"conv2d: padding must be an int, a pair, 'valid' or 'same', got {padding!r}")
    padding = pair(padding, "padding")
    if bias is not None and not isinstance(bias, Tensor):
        bias = Tensor(bias)
    return Conv2d.apply(input, weight, bias, stride=stride, padding=padding, dilation=dilation, groups=int(groups))
