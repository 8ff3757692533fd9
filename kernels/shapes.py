"""Shape arithmetic and argument checks that every backend shares (CPU, CUDA).

Output sizes follow PyTorch's formulas; the checks raise ValueError/TypeError naming the
argument. Plain Python and NumPy on host integers: no kernels, no device arrays, so
``kernels/cpu`` and ``kernels/cuda`` both import from here instead of from each other.
(``kernels/reference`` keeps its own copies on purpose: it reads as a standalone textbook.)
"""

import numpy as np


# --------------------------------------------------------------------------- convolution

def conv_output_size(h, w, kh, kw, stride, padding, dilation):
    """Output (OH, OW) by PyTorch's formula ``floor((H + 2p - d(k-1) - 1) / s) + 1``.

    The dilated kernel spans ``d(k-1) + 1`` pixels; it must fit in the padded
    input, otherwise there is no output position at all.

    >>> conv_output_size(32, 32, 3, 3, (1, 1), (1, 1), (1, 1))
    (32, 32)
    """
    sizes = []
    for axis, size, k in (("height", h, kh), ("width", w, kw)):
        i = 0 if axis == "height" else 1
        span = dilation[i] * (k - 1) + 1
        padded = size + 2 * padding[i]
        if span > padded:
            raise ValueError(
                f"kernel {axis} {k} with dilation {dilation[i]} spans {span} pixels, larger than "
                f"the padded input {axis} {size} + 2*{padding[i]} = {padded}")
        sizes.append((padded - span) // stride[i] + 1)
    return sizes[0], sizes[1]


def check_conv_args(x, weight, bias, stride, padding, dilation, groups):
    """Raise TypeError/ValueError naming the argument for anything the kernels cannot take."""
    if x.ndim != 4:
        raise ValueError(f"x must be 4-D (N, C, H, W), got shape {x.shape}")
    if weight.ndim != 4:
        raise ValueError(f"weight must be 4-D (K, C // groups, kh, kw), got shape {weight.shape}")
    if x.dtype not in (np.float32, np.float64):
        raise TypeError(f"x must be float32 or float64, got {x.dtype}")
    if weight.dtype != x.dtype:
        raise TypeError(f"weight dtype must match x dtype {x.dtype}, got {weight.dtype}")
    if bias is not None and (bias.shape != (weight.shape[0],) or bias.dtype != x.dtype):
        raise ValueError(f"bias must have shape ({weight.shape[0]},) and dtype {x.dtype}, "
                         f"got shape {bias.shape} and dtype {bias.dtype}")
    for name, pair, low in (("stride", stride, 1), ("padding", padding, 0), ("dilation", dilation, 1)):
        if len(pair) != 2 or min(pair) < low:
            raise ValueError(f"{name} must be a pair of ints >= {low}, got {pair}")
    c_in, k_out = x.shape[1], weight.shape[0]
    if groups < 1 or c_in % groups != 0 or k_out % groups != 0:
        raise ValueError(f"groups={groups} must divide both in_channels={c_in} and out_channels={k_out}")
    if c_in != weight.shape[1] * groups:
        raise ValueError(f"x has {c_in} channels but weight expects weight.shape[1] * groups = "
                         f"{weight.shape[1]} * {groups} = {weight.shape[1] * groups}")


# --------------------------------------------------------------------------- pooling

def _check_pair(value, name, minimum):
    """Validate an int 2-tuple (h, w) whose entries are >= minimum."""
    if len(value) != 2 or any(int(v) != v or v < minimum for v in value):
        raise ValueError(f"{name} must be a pair of ints >= {minimum}, got {value}")
    return int(value[0]), int(value[1])


def _output_size_1d(size, kernel, stride, padding, dilation, ceil_mode):
    """PyTorch's ``pooling_output_shape`` for one axis."""
    effective = dilation * (kernel - 1) + 1
    numerator = size + 2 * padding - effective + ((stride - 1) if ceil_mode else 0)
    out = numerator // stride + 1  # floor division, as PyTorch's div_rtn
    # With ceil_mode the last window must start inside the input or the left padding;
    # a window that would start in the right padding only is dropped.
    if ceil_mode and (out - 1) * stride >= size + padding:
        out -= 1
    return out


def pool_output_size(h, w, kernel, stride, padding, dilation, ceil_mode):
    """Output height and width of a 2-D pooling window, PyTorch's rule.

    ``out = floor((size + 2*pad - dilation*(k-1) - 1 [+ stride-1 if ceil_mode]) / stride) + 1``,
    and with ``ceil_mode`` the last window is dropped when it would start beyond the
    input plus the left padding. ``padding`` must be at most half the kernel size.

    >>> pool_output_size(56, 56, (3, 3), (2, 2), (1, 1), (1, 1), False)
    (28, 28)
    """
    kh, kw = _check_pair(kernel, "kernel_size", 1)
    sh, sw = _check_pair(stride, "stride", 1)
    ph, pw = _check_pair(padding, "padding", 0)
    dh, dw = _check_pair(dilation, "dilation", 1)
    if ph > kh // 2 or pw > kw // 2:
        raise ValueError(
            f"padding should be at most half of kernel_size, got padding={(ph, pw)} "
            f"and kernel_size={(kh, kw)}"
        )
    oh = _output_size_1d(h, kh, sh, ph, dh, ceil_mode)
    ow = _output_size_1d(w, kw, sw, pw, dw, ceil_mode)
    if oh < 1 or ow < 1:
        raise ValueError(
            f"pooled output is too small: input (H, W)={(h, w)}, kernel_size={(kh, kw)}, "
            f"stride={(sh, sw)}, padding={(ph, pw)}, dilation={(dh, dw)} give output "
            f"(OH, OW)={(oh, ow)}, expected both >= 1"
        )
    return oh, ow


def _avg_windows_1d(size, out_size, kernel, stride, padding, ceil_mode, count_include_pad):
    """Clipped window bounds [start, end) and the padded window length per output position.

    PyTorch clips the window at ``size + padding`` first (that length counts the padding
    for ``count_include_pad``) and then at the image bounds.
    """
    o = np.arange(out_size)
    start = o * stride - padding
    end = np.minimum(start + kernel, size + padding)
    padded_len = end - start
    start = np.maximum(start, 0)
    end = np.minimum(end, size)
    return start.astype(np.int64), end.astype(np.int64), padded_len.astype(np.int64)


def avg_pool_plan(h, w, kernel, stride, padding, ceil_mode, count_include_pad, divisor_override):
    """Window bounds per output row/column and the divisor of every output (OH, OW)."""
    oh, ow = pool_output_size(h, w, kernel, stride, padding, (1, 1), ceil_mode)
    r0, r1, rlen = _avg_windows_1d(h, oh, kernel[0], stride[0], padding[0], ceil_mode, count_include_pad)
    c0, c1, clen = _avg_windows_1d(w, ow, kernel[1], stride[1], padding[1], ceil_mode, count_include_pad)
    if divisor_override is not None:
        if int(divisor_override) != divisor_override or divisor_override == 0:
            raise ValueError(f"divisor_override must be a non-zero int or None, got {divisor_override}")
        divisor = np.full((oh, ow), float(divisor_override))
    elif count_include_pad:
        divisor = np.outer(rlen, clen).astype(np.float64)
    else:
        divisor = np.outer(r1 - r0, c1 - c0).astype(np.float64)
    # A window lying entirely in the padding gives 0 (PyTorch), not 0/0.
    inv = np.zeros_like(divisor)
    np.divide(1.0, divisor, out=inv, where=divisor != 0)
    empty = (r1 <= r0)[:, None] | (c1 <= c0)[None, :]  # (OH, OW)
    inv[empty] = 0.0
    return r0, r1, c0, c1, inv


def check_output_size(output_size):
    if len(output_size) != 2 or any(int(v) != v or v < 1 for v in output_size):
        raise ValueError(f"output_size must be a pair of ints >= 1, got {output_size}")
    return int(output_size[0]), int(output_size[1])


# --------------------------------------------------------------------------- non-maximum suppression

def check_iou_threshold(iou_threshold):
    """The IoU threshold as a float in [0, 1]; ValueError naming it for NaN or anything outside.

    >>> check_iou_threshold(0.5)
    0.5
    """
    try:
        value = float(iou_threshold)
    except (TypeError, ValueError):
        raise TypeError(f"iou_threshold must be a number in [0, 1], got {iou_threshold!r}") from None
    if not 0.0 <= value <= 1.0:  # False for NaN too
        raise ValueError(f"iou_threshold must be in [0, 1], got {iou_threshold!r}")
    return value
