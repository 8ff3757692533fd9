"""Plain NumPy reference for 2-D convolution (forward and backward), in float64.

This file is the textbook version of ``kernels/cpu/conv.py`` and the oracle its
tests compare against. It is written to be read, not to be fast: every output
position is computed by an explicit loop with one ``einsum`` over the window.

The maths
---------
What deep-learning frameworks call "convolution" is a cross-correlation (the
kernel is not flipped). For an input ``x`` of shape (N, C, H, W), a weight ``w`` of
shape (K, C // G, kh, kw) with ``G`` groups, stride ``s``, symmetric zero padding
``p`` and dilation ``d`` (all per axis)::

    y[n, k, oh, ow] = b[k] + sum_{c, i, j} w[k, c, i, j]
                      * xp[n, g*Cg + c, oh*s_h + i*d_h, ow*s_w + j*d_w]

where ``xp`` is ``x`` zero-padded by ``p`` on each side, ``Cg = C // G`` and
``g = k // (K // G)`` is the group of output channel ``k``: output channel ``k``
only sees the ``Cg`` input channels of its own group. Depthwise convolution is
the case ``G = C``.

The output size per axis is (PyTorch's formula)::

    OH = floor((H + 2 p_h - d_h (kh - 1) - 1) / s_h) + 1

because the dilated kernel spans ``d (k - 1) + 1`` pixels and its first position
can move ``(H + 2p - span) // s`` times.

Backward, given ``gy = dL/dy`` of shape (N, K, OH, OW):

* ``dL/db[k] = sum_{n, oh, ow} gy[n, k, oh, ow]``.
* ``dL/dw[k, c, i, j] = sum_{n, oh, ow} gy[n, k, oh, ow] * xp[n, g*Cg + c, oh*s + i*d, ow*s + j*d]``:
  the correlation of the input with the output gradient.
* ``dL/dxp[n, g*Cg + c, oh*s + i*d, ow*s + j*d] += gy[n, k, oh, ow] * w[k, c, i, j]``:
  every output position scatters its gradient back onto the window it read
  (this is what ``col2im`` does in the fast path). Gathering instead of
  scattering, for stride 1 this is a "full" correlation of ``gy`` (padded by
  ``d (k - 1)``) with the kernel flipped in both spatial axes, i.e. a true
  convolution; with stride ``s`` the same holds after inserting ``s - 1`` zeros
  between the rows and columns of ``gy``. ``dL/dx`` is ``dL/dxp`` with the padding
  cropped off.

Example::

    >>> x = np.arange(16.0).reshape(1, 1, 4, 4)
    >>> w = np.ones((1, 1, 2, 2))
    >>> conv2d_forward(x, w, None, (1, 1), (0, 0), (1, 1), 1)[0, 0, 0]
    array([10., 14., 18.])
"""

import numpy as np


def conv_output_size(h, w, kh, kw, stride, padding, dilation):
    """Return (OH, OW) by PyTorch's formula floor((H + 2p - d(k-1) - 1) / s) + 1."""
    oh = (h + 2 * padding[0] - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    ow = (w + 2 * padding[1] - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    return oh, ow


def _window(xp_nc, oh, ow, kh, kw, stride, dilation):
    """The (C, kh, kw) patch of the padded input that output position (oh, ow) reads."""
    h0 = oh * stride[0]
    w0 = ow * stride[1]
    rows = slice(h0, h0 + dilation[0] * (kh - 1) + 1, dilation[0])
    cols = slice(w0, w0 + dilation[1] * (kw - 1) + 1, dilation[1])
    return xp_nc[:, rows, cols]


def conv2d_forward(x, weight, bias, stride, padding, dilation, groups):
    """y = correlate(x, weight) + bias, one output position at a time (float64)."""
    x = np.asarray(x, dtype=np.float64)
    weight = np.asarray(weight, dtype=np.float64)
    n_batch, c_in, h, w = x.shape
    k_out, c_per_group, kh, kw = weight.shape
    k_per_group = k_out // groups
    oh_size, ow_size = conv_output_size(h, w, kh, kw, stride, padding, dilation)

    xp = np.pad(x, ((0, 0), (0, 0), (padding[0],) * 2, (padding[1],) * 2))
    y = np.zeros((n_batch, k_out, oh_size, ow_size))
    for n in range(n_batch):
        for g in range(groups):
            x_group = xp[n, g * c_per_group:(g + 1) * c_per_group]  # (Cg, Hp, Wp)
            w_group = weight[g * k_per_group:(g + 1) * k_per_group]  # (Kg, Cg, kh, kw)
            for oh in range(oh_size):
                for ow in range(ow_size):
                    patch = _window(x_group, oh, ow, kh, kw, stride, dilation)  # (Cg, kh, kw)
                    y[n, g * k_per_group:(g + 1) * k_per_group, oh, ow] = np.einsum(
                        "kcij,cij->k", w_group, patch)
    if bias is not None:
        y += np.asarray(bias, dtype=np.float64)[None, :, None, None]
    return y


def conv2d_backward(grad_out, x, weight, stride, padding, dilation, groups):
    """Return (grad_x, grad_w, grad_b) in float64 by scattering each output's gradient.

    For every output position the forward read one window ``patch`` of the
    padded input and computed ``y = sum(w * patch)``; so that position adds
    ``gy * patch`` to the weight gradient and ``gy * w`` to the window of the
    padded input gradient. Cropping the padding gives the input gradient.
    """
    grad_out = np.asarray(grad_out, dtype=np.float64)
    x = np.asarray(x, dtype=np.float64)
    weight = np.asarray(weight, dtype=np.float64)
    n_batch, c_in, h, w = x.shape
    k_out, c_per_group, kh, kw = weight.shape
    k_per_group = k_out // groups
    oh_size, ow_size = grad_out.shape[2:]

    xp = np.pad(x, ((0, 0), (0, 0), (padding[0],) * 2, (padding[1],) * 2))
    grad_xp = np.zeros_like(xp)
    grad_w = np.zeros_like(weight)
    for n in range(n_batch):
        for g in range(groups):
            channels = slice(g * c_per_group, (g + 1) * c_per_group)
            outs = slice(g * k_per_group, (g + 1) * k_per_group)
            for oh in range(oh_size):
                for ow in range(ow_size):
                    gy = grad_out[n, outs, oh, ow]  # (Kg,)
                    patch = _window(xp[n, channels], oh, ow, kh, kw, stride, dilation)
                    grad_w[outs] += np.einsum("k,cij->kcij", gy, patch)
                    # The window view aliases grad_xp, so += scatters into it.
                    grad_patch = _window(grad_xp[n, channels], oh, ow, kh, kw, stride, dilation)
                    grad_patch += np.einsum("k,kcij->cij", gy, weight[outs])
    grad_x = grad_xp[:, :, padding[0]:padding[0] + h, padding[1]:padding[1] + w]
    grad_b = grad_out.sum(axis=(0, 2, 3))
    return grad_x, grad_w, grad_b


# ---------------------------------------------------------------------------
# The fast kernels' primitives, so the reference runs as a backend
# ---------------------------------------------------------------------------
# kernels/cpu/conv.py and kernels/cuda/conv.py have one primitive per path of the op's plan
# (minidl/functions/conv.py: 1x1 GEMM, direct, im2col + GEMM). Here every path is the one
# loop above, so ``Conv2d(kernels=minidl.kernels.reference.conv)`` computes any convolution
# through the same plan in float64 (tests/test_backend_dispatch.py compares the backends so).

def pointwise_forward(x, weight, bias):
    return conv2d_forward(x, weight, bias, (1, 1), (0, 0), (1, 1), 1)


def pointwise_backward(grad_out, x, weight, needs_input_grad, needs_weight_grad):
    gx, gw, _ = conv2d_backward(grad_out, x, weight, (1, 1), (0, 0), (1, 1), 1)
    return (gx if needs_input_grad else None), (gw if needs_weight_grad else None)


def grouped_direct_forward(x, weight, bias, stride, padding, dilation, groups):
    return conv2d_forward(x, weight, bias, stride, padding, dilation, groups)


def grouped_direct_backward(grad_out, x, weight, stride, padding, dilation, groups):
    gx, gw, _ = conv2d_backward(grad_out, x, weight, stride, padding, dilation, groups)
    return gx, gw


def grouped_direct_backward_input(grad_out, weight, x_shape, stride, padding, dilation, groups):
    x = np.zeros(x_shape)  # the input gradient does not depend on x
    return conv2d_backward(grad_out, x, weight, stride, padding, dilation, groups)[0]


def grouped_direct_backward_weight(grad_out, x, weight_shape, stride, padding, dilation, groups):
    weight = np.zeros(weight_shape)  # the weight gradient does not depend on the weight
    return conv2d_backward(grad_out, x, weight, stride, padding, dilation, groups)[1]


conv2d_forward_gemm = grouped_direct_forward


def conv2d_backward_gemm(grad_out, x, weight, stride, padding, dilation, groups, needs_input_grad=True,
                         needs_weight_grad=True):
    gx, gw, _ = conv2d_backward(grad_out, x, weight, stride, padding, dilation, groups)
    return (gx if needs_input_grad else None), (gw if needs_weight_grad else None)
