"""Plain NumPy reference for the 2-D transposed convolution, in float64.

The textbook version of ``minidl/functions/conv_transpose.py`` and the oracle its tests
compare against. A transposed convolution runs a convolution backwards: where a
convolution *gathers* a window of the input into one output pixel, the transposed one
*scatters* each input pixel, weighted by the kernel, onto a window of the output::

    y[n, g*Kg + k, h*s_h - p_h + i*d_h, w*s_w - p_w + j*d_w] += x[n, g*Cg + c, h, w] * W[g*Cg + c, k, i, j]

for every input pixel (h, w), kernel tap (i, j), input channel c of group g and output
channel k of that group; ``W`` has shape (C_in, C_out // G, kh, kw), ``Cg = C_in // G`` and
``Kg = C_out // G``. Positions that land outside [0, OH) x [0, OW) are dropped (that is
what ``padding`` crops). The output size per axis is::

    OH = (H - 1) s_h - 2 p_h + d_h (kh - 1) + output_padding_h + 1

``output_padding`` only lengthens the output on the bottom/right (to pick one of the
input sizes a strided convolution maps onto the same output size).

Example::

    >>> x = np.array([[[[1.0, 2.0]]]])
    >>> w = np.ones((1, 1, 1, 2))
    >>> conv_transpose2d_forward(x, w, None, (1, 1), (0, 0), (0, 0), (1, 1), 1)[0, 0]
    array([[1., 3., 2.]])
"""

import numpy as np


def conv_transpose2d_forward(x, weight, bias, stride, padding, output_padding, dilation, groups):
    """y = conv_transpose2d(x, weight) + bias, one input pixel at a time (float64)."""
    x = np.asarray(x, dtype=np.float64)
    weight = np.asarray(weight, dtype=np.float64)
    n_batch, c_in, h, w = x.shape
    _, k_per_group, kh, kw = weight.shape
    c_per_group = c_in // groups
    oh_size = (h - 1) * stride[0] - 2 * padding[0] + dilation[0] * (kh - 1) + output_padding[0] + 1
    ow_size = (w - 1) * stride[1] - 2 * padding[1] + dilation[1] * (kw - 1) + output_padding[1] + 1
    y = np.zeros((n_batch, k_per_group * groups, oh_size, ow_size))
    for n in range(n_batch):
        for c in range(c_in):
            g = c // c_per_group
            outs = slice(g * k_per_group, (g + 1) * k_per_group)
            for hh in range(h):
                for ww in range(w):
                    for i in range(kh):
                        oh = hh * stride[0] - padding[0] + i * dilation[0]
                        if not 0 <= oh < oh_size:
                            continue
                        for j in range(kw):
                            ow = ww * stride[1] - padding[1] + j * dilation[1]
                            if 0 <= ow < ow_size:
                                y[n, outs, oh, ow] += x[n, c, hh, ww] * weight[c, :, i, j]
    if bias is not None:
        y += np.asarray(bias, dtype=np.float64)[None, :, None, None]
    return y
