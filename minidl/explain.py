"""``minidl explain OP``: one op on a tiny input, step by step, as a student would work it by hand.

Each ``explain_<op>`` function runs the float64 reference computation one step at a time
(the im2col matrix, the GEMM, the reshaped output; the max-pool argmax map; batch norm's
mean and variance; cross-entropy's log-sum-exp, ...), compares the result with the reference
kernel in ``kernels/reference`` and with the fast kernel minidl trains with (float32, through
autograd), derives the backward the same way, and ends with a float64 gradcheck. It returns an
:class:`Explanation`: the steps in order, each a title, a value (an array, a number or text)
and an optional note. ``str(explanation)`` is what the command prints.

>>> from minidl.explain import explain
>>> e = explain("linear", shape=(2, 3), out_features=2)
>>> e["output y = x @ W.T + b"].shape
(2, 2)
>>> e["max |y - y_fast|"] < 1e-5
True
"""
from __future__ import annotations

import math
import os

import numpy as np

from minidl.kernels.cpu import conv as cpu_conv
from minidl.kernels.reference import conv as ref_conv
from minidl.kernels.reference import loss as ref_loss
from minidl.kernels.reference import nms as ref_nms
from minidl.kernels.reference import norm as ref_norm
from minidl.kernels.reference import pooling as ref_pool
from minidl.kernels.reference import roi as ref_roi
from minidl.kernels.reference import softmax as ref_softmax

from .functions.conv import conv_plan
from .gradcheck import gradcheck_report
from .nn import functional as F
from .ops import boxes as ops_boxes
from .ops import roi as ops_roi
from .tensor import Tensor

# op -> (docs chapter, reference kernel shown first)
OPS = {
    "conv2d": ("docs/convolution.md", "kernels/reference/conv.py::conv2d_forward"),
    "depthwise": ("docs/grouped_depthwise.md", "kernels/reference/conv.py::conv2d_forward"),
    "max_pool2d": ("docs/pooling.md", "kernels/reference/pooling.py::max_pool2d_forward"),
    "avg_pool2d": ("docs/pooling.md", "kernels/reference/pooling.py::avg_pool2d_forward"),
    "batch_norm": ("docs/batch_norm.md", "kernels/reference/norm.py::batch_norm_train_forward"),
    "cross_entropy": ("docs/softmax_cross_entropy.md", "kernels/reference/loss.py::softmax_cross_entropy_forward"),
    "softmax": ("docs/softmax_cross_entropy.md", "kernels/reference/softmax.py::softmax_forward"),
    "nms": ("docs/detection_ops.md", "kernels/reference/nms.py::nms"),
    "roi_align": ("docs/detection_ops.md", "kernels/reference/roi.py::roi_align_forward"),
    "linear": ("docs/linear.md", "the formula y = x W^T + b (NumPy float64)"),
    "relu": ("docs/activations.md", "the formula y = max(x, 0) (NumPy float64)"),
}

DEFAULT_SHAPES = {"conv2d": (1, 2, 4, 4), "depthwise": (1, 2, 4, 4), "max_pool2d": (1, 1, 4, 4),
                  "avg_pool2d": (1, 1, 4, 4), "batch_norm": (2, 2, 2, 2), "cross_entropy": (3, 4),
                  "softmax": (2, 4), "nms": (5, 4), "roi_align": (1, 1, 6, 6), "linear": (2, 3), "relu": (2, 4)}


class Explanation:
    """The steps of one explained op, in order; ``e[title]`` is a step's value, ``str(e)`` the printout."""

    def __init__(self, op, precision=4):
        self.op = op
        self.precision = precision
        self.steps = []  # (section, title, value, note)
        self._section = "setup"

    def section(self, name):
        self._section = name

    def step(self, title, value, note=None):
        """Record one step and return its value (so a step reads ``y = e.step("y", ...)``)."""
        self.steps.append((self._section, title, value, note))
        return value

    def __getitem__(self, title):
        for _, t, value, _ in self.steps:
            if t == title:
                return value
        raise KeyError(f"{self.op}: no step {title!r}; the steps are {[t for _, t, _, _ in self.steps]}")

    def format_value(self, value):
        if isinstance(value, np.ndarray):
            if value.dtype.kind in "iub":
                return np.array2string(value, max_line_width=100)
            return np.array2string(value, precision=self.precision, floatmode="fixed", suppress_small=True,
                                   max_line_width=100)
        if isinstance(value, (float, np.floating)):
            small = 0 < abs(value) < 10 ** -(self.precision - 1)
            return f"{float(value):.2e}" if small else f"{float(value):.{self.precision}f}"
        return str(value)

    def __str__(self):
        chapter, reference = OPS[self.op]
        lines = [f"minidl explain {self.op}   (reference: {reference}; chapter: {chapter})"]
        section = None
        for sec, title, value, note in self.steps:
            if sec != section:
                section = sec
                lines += ["", f"== {sec} " + "=" * max(3, 60 - len(sec))]
            text = self.format_value(value)
            shape = f" {value.shape}" if isinstance(value, np.ndarray) else ""
            comment = f"   # {note}" if note else ""
            if "\n" in text or (isinstance(value, np.ndarray) and len(title) + len(text) > 90):
                lines += [f"{title}{shape}:{comment}", *("    " + line for line in text.splitlines())]
            else:
                lines.append(f"{title}: {text}{comment}")
        return "\n".join(lines)


# ---------------------------------------------------------------------------------------- shared steps
def _draw(rng, shape):
    """Readable inputs: standard normal values rounded to two decimals, as float64."""
    return np.round(rng.standard_normal(shape), 2) + 0.0  # + 0.0: no -0.00


def _fast(e, fn, arrays, grad_out, compare, names):
    """Run ``fn`` on float32 tensors (the fast kernels, through autograd); record the largest differences.

    ``compare``: the float64 reference output then the reference gradient of each input in ``names``.
    """
    tensors = [Tensor(a.astype(np.float32), requires_grad=True) for a in arrays]
    out = fn(*tensors)
    out.backward(Tensor(np.asarray(grad_out, dtype=np.float32)))
    e.step("max |y - y_fast|", float(np.abs(out.data - compare[0]).max()), "fast kernel in float32")
    for name, t, ref in zip(names, tensors, compare[1:]):
        e.step(f"max |{name} - {name}_fast|", float(np.abs(t.grad.data - ref).max()), "float32 backward")


def _gradcheck(e, fn, arrays):
    """The gradcheck line: fn's float64 backward against central differences, over every input."""
    tensors = [Tensor(np.asarray(a, dtype=np.float64), requires_grad=True) for a in arrays]
    report = gradcheck_report(fn, tensors)
    worst = max(float(item["abs_error"].max(initial=0.0)) for item in report)
    size = sum(item["abs_error"].size for item in report)
    passed = all(np.all(item["abs_error"] <= 1e-5 + 1e-3 * np.abs(item["numeric"])) for item in report)
    e.section("gradcheck")
    e.step("gradcheck max abs error", worst, f"float64 backward against central differences over {size} input "
                                             f"elements: {'passed' if passed else 'FAILED'}")


def _pair(v):
    return (int(v), int(v)) if np.isscalar(v) else tuple(int(i) for i in v)


# ---------------------------------------------------------------------------------------- the ops
def explain_conv2d(shape=None, out_channels=3, kernel_size=3, stride=1, padding=1, dilation=1, groups=1, bias=True,
                   seed=0, precision=4, op="conv2d"):
    """Convolution as im2col + GEMM: unfold the windows into columns, one matrix product, reshape."""
    shape = tuple(shape or DEFAULT_SHAPES[op])
    kh, kw = _pair(kernel_size)
    stride, padding, dilation = _pair(stride), _pair(padding), _pair(dilation)
    n, c, h, w = shape
    if c % groups or out_channels % groups:
        raise ValueError(f"explain {op}: channels {c} and out_channels {out_channels} must divide by groups {groups}")
    rng = np.random.default_rng(seed)
    e = Explanation(op, precision)
    x = e.step("input x", _draw(rng, shape))
    weight = e.step("weight", _draw(rng, (out_channels, c // groups, kh, kw)))
    b = e.step("bias", _draw(rng, (out_channels,))) if bias else None
    oh, ow = ref_conv.conv_output_size(h, w, kh, kw, stride, padding, dilation)
    e.step("output size", f"OH = (H + 2p - d(k-1) - 1) // s + 1 = ({h} + {2 * padding[0]} - {dilation[0] * (kh - 1)}"
                          f" - 1) // {stride[0]} + 1 = {oh}; OW = {ow}")

    e.section("forward: im2col + GEMM")
    e.step("padded input xp", np.pad(x, ((0, 0), (0, 0), (padding[0],) * 2, (padding[1],) * 2)))
    col = e.step("im2col matrix", cpu_conv.im2col(x, kh, kw, stride, padding, dilation),
                 "rows (c, i, j): one per weight tap; columns (n, oh, ow): one per output position")
    cg, kg = c // groups, out_channels // groups
    products = []
    for g in range(groups):
        w_mat = weight[g * kg:(g + 1) * kg].reshape(kg, cg * kh * kw)
        col_g = col[g * cg * kh * kw:(g + 1) * cg * kh * kw]
        label = "" if groups == 1 else f" of group {g}"
        e.step(f"weight matrix{label}", w_mat, "weight reshaped to (K, C*kh*kw)" if groups == 1 else
               f"output channels {g * kg}..{(g + 1) * kg - 1} see input channels {g * cg}..{(g + 1) * cg - 1} only")
        products.append(e.step(f"GEMM{label}", w_mat @ col_g, "weight matrix @ im2col matrix"))
    gemm = np.concatenate(products, axis=0)
    if b is not None:
        gemm = e.step("GEMM + bias", gemm + b[:, None])
    y = e.step("output y", gemm.reshape(out_channels, n, oh, ow).transpose(1, 0, 2, 3),
               "(K, N*OH*OW) reshaped to (K, N, OH, OW), then N and K swapped")
    y_ref = ref_conv.conv2d_forward(x, weight, b, stride, padding, dilation, groups)
    e.step("max |y - reference|", float(np.abs(y - y_ref).max()), "kernels/reference/conv.py::conv2d_forward")
    e.step("fast path", conv_plan(shape, weight.shape, stride, padding, groups, dilation, winograd=True),
           "minidl.functions.conv.conv_plan: pointwise / direct / winograd / gemm")

    e.section("backward")
    gy = e.step("upstream gradient gy", _draw(rng, y.shape))
    gb = e.step("grad bias = gy summed over (N, OH, OW)", gy.sum(axis=(0, 2, 3))) if b is not None else None
    gy_mat = e.step("gy matrix", gy.transpose(1, 0, 2, 3).reshape(out_channels, n * oh * ow), "gy as (K, N*OH*OW)")
    gw_parts, gcol_parts = [], []
    for g in range(groups):
        w_mat = weight[g * kg:(g + 1) * kg].reshape(kg, cg * kh * kw)
        col_g = col[g * cg * kh * kw:(g + 1) * cg * kh * kw]
        gw_parts.append(gy_mat[g * kg:(g + 1) * kg] @ col_g.T)
        gcol_parts.append(w_mat.T @ gy_mat[g * kg:(g + 1) * kg])
    gw = e.step("grad weight = gy matrix @ im2col matrix^T", np.concatenate(gw_parts).reshape(weight.shape))
    gcol = e.step("grad columns = weight matrix^T @ gy matrix", np.concatenate(gcol_parts),
                  "the gradient of every entry of the im2col matrix")
    gx = e.step("grad x = col2im(grad columns)", cpu_conv.col2im(gcol, shape, kh, kw, stride, padding, dilation),
                "each column entry added back onto the input pixel it was read from")
    if stride == (1, 1) and dilation == (1, 1) and groups == 1 and padding[0] < kh and padding[1] < kw:
        flipped = weight.transpose(1, 0, 2, 3)[:, :, ::-1, ::-1]  # (C, K, kh, kw), rotated by 180 degrees
        full = (kh - 1 - padding[0], kw - 1 - padding[1])
        as_conv = ref_conv.conv2d_forward(gy, flipped, None, (1, 1), full, (1, 1), 1)
        e.step("max |grad x - conv(gy, flipped weight)|", float(np.abs(as_conv - gx).max()),
               f"the same gradient gathered: gy padded by k - 1 - p = {full}, correlated with the kernel "
               "rotated by 180 degrees (in and out channels swapped)")
    gx_ref, gw_ref, gb_ref = ref_conv.conv2d_backward(gy, x, weight, stride, padding, dilation, groups)
    diffs = [np.abs(gx - gx_ref).max(), np.abs(gw - gw_ref).max()] + ([np.abs(gb - gb_ref).max()] if bias else [])
    e.step("max |grads - reference|", float(max(diffs)), "kernels/reference/conv.py::conv2d_backward (a scatter)")

    def fn(*t):
        return F.conv2d(t[0], t[1], t[2] if bias else None, stride, padding, dilation, groups)

    arrays = [x, weight] + ([b] if bias else [])
    e.section("fast kernel")
    _fast(e, fn, arrays, gy, [y_ref, gx_ref, gw_ref] + ([gb_ref] if bias else []), ["gx", "gw", "gb"])
    _gradcheck(e, fn, arrays)
    return e


def explain_depthwise(shape=None, kernel_size=3, stride=1, padding=1, dilation=1, multiplier=1, bias=True, seed=0,
                      precision=4):
    """Depthwise convolution: conv2d with groups = channels, one small GEMM per channel."""
    shape = tuple(shape or DEFAULT_SHAPES["depthwise"])
    return explain_conv2d(shape, out_channels=shape[1] * multiplier, kernel_size=kernel_size, stride=stride,
                          padding=padding, dilation=dilation, groups=shape[1], bias=bias, seed=seed,
                          precision=precision, op="depthwise")


def explain_max_pool2d(shape=None, kernel_size=2, stride=None, padding=0, dilation=1, ceil_mode=False, seed=0,
                       precision=4):
    """Max pooling: the maximum of each window, and the argmax map that routes the gradient back."""
    shape = tuple(shape or DEFAULT_SHAPES["max_pool2d"])
    kernel = _pair(kernel_size)
    stride = kernel if stride is None else _pair(stride)
    padding, dilation = _pair(padding), _pair(dilation)
    rng = np.random.default_rng(seed)
    e = Explanation("max_pool2d", precision)
    x = e.step("input x", _draw(rng, shape))
    e.section("forward")
    y, idx = ref_pool.max_pool2d_forward(x, kernel, stride, padding, dilation, ceil_mode)
    e.step("argmax map", idx, "flat index r*W + c of each window's first maximum (reference kernel)")
    e.step("output y", y, "x at the argmax")
    ties = _window_ties(x, kernel, stride, padding, dilation, y)
    if ties:
        e.step("ties", ties, "several elements equal the maximum: the first one takes the whole gradient")

    def fn(t):
        return F.max_pool2d(t, kernel, stride, padding, dilation, ceil_mode)

    e.section("backward")
    gy = e.step("upstream gradient gy", _draw(rng, y.shape))
    gx = e.step("grad x", ref_pool.max_pool2d_backward(gy, idx, shape),
                "each gy added at its window's argmax; every other input gets 0")
    e.section("fast kernel")
    fast_y, fast_idx = F.max_pool2d(Tensor(x.astype(np.float32)), kernel, stride, padding, dilation, ceil_mode,
                                    return_indices=True)
    e.step("argmax maps equal", bool(np.array_equal(fast_idx.data, idx)))
    _fast(e, fn, [x], gy, [y, gx], ["gx"])
    if ties:  # a tie is a kink: central differences straddle it
        e.section("gradcheck")
        e.step("gradcheck", "skipped: the input has ties, where max pooling is not differentiable (--seed another)")
    else:
        _gradcheck(e, fn, [x])
    return e


def _window_ties(x, kernel, stride, padding, dilation, y):
    """How many windows hold their maximum more than once."""
    xp = np.pad(x, ((0, 0), (0, 0), (padding[0],) * 2, (padding[1],) * 2), constant_values=-np.inf)
    count = 0
    for (b, ch, i, j), best in np.ndenumerate(y):
        r0, c0 = i * stride[0], j * stride[1]
        window = xp[b, ch, r0:r0 + dilation[0] * (kernel[0] - 1) + 1:dilation[0],
                    c0:c0 + dilation[1] * (kernel[1] - 1) + 1:dilation[1]]
        count += int((window == best).sum() > 1)
    return count


def explain_avg_pool2d(shape=None, kernel_size=2, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
                       seed=0, precision=4):
    """Average pooling: window sum over a divisor, and the gradient spread evenly over each window."""
    shape = tuple(shape or DEFAULT_SHAPES["avg_pool2d"])
    kernel = _pair(kernel_size)
    stride = kernel if stride is None else _pair(stride)
    padding = _pair(padding)
    rng = np.random.default_rng(seed)
    e = Explanation("avg_pool2d", precision)
    x = e.step("input x", _draw(rng, shape))
    options = (kernel, stride, padding, ceil_mode, count_include_pad, None)
    e.section("forward")
    ones = np.ones((1, 1) + shape[2:])
    window = (kernel, stride, padding, ceil_mode, count_include_pad, 1)  # divisor 1: the plain window sum
    sums = e.step("window sums", ref_pool.avg_pool2d_forward(x, *window))
    divisor = e.step("divisors", ref_pool.avg_pool2d_forward(ones, *window)[0, 0]
                     / ref_pool.avg_pool2d_forward(ones, *options)[0, 0],
                     "kernel area, padding counted" if count_include_pad else "in-image elements of each window")
    y = e.step("output y", ref_pool.avg_pool2d_forward(x, *options), "window sum / divisor")

    def fn(t):
        return F.avg_pool2d(t, kernel, stride, padding, ceil_mode, count_include_pad)

    e.step("max |sums / divisors - y|", float(np.abs(sums / divisor - y).max()))
    e.section("backward")
    gy = e.step("upstream gradient gy", _draw(rng, y.shape))
    gx = e.step("grad x", ref_pool.avg_pool2d_backward(gy, shape, *options),
                "every input of a window receives gy / divisor; overlapping windows add")
    e.section("fast kernel")
    _fast(e, fn, [x], gy, [y, gx], ["gx"])
    _gradcheck(e, fn, [x])
    return e


def explain_batch_norm(shape=None, eps=1e-5, momentum=0.1, seed=0, precision=4):
    """Batch norm in training mode: per-channel batch mean and biased variance; running stats with unbiased."""
    shape = tuple(shape or DEFAULT_SHAPES["batch_norm"])
    rng = np.random.default_rng(seed)
    e = Explanation("batch_norm", precision)
    x = e.step("input x", _draw(rng, shape))
    weight = e.step("weight (gamma)", np.round(1 + 0.5 * rng.standard_normal(shape[1]), 2))
    bias = e.step("bias (beta)", _draw(rng, shape[1]))
    axes = (0,) + tuple(range(2, len(shape)))
    m = int(np.prod([shape[a] for a in axes]))
    e.section("forward (training)")
    e.step("values per channel M", m, "N * H * W")
    mean = e.step("mean", x.mean(axis=axes))
    var = e.step("var (biased, / M)", x.var(axis=axes), "what the forward normalises with")
    invstd = e.step("invstd = 1 / sqrt(var + eps)", 1 / np.sqrt(var + eps))
    bshape = (1, -1) + (1,) * (len(shape) - 2)
    xhat = e.step("xhat = (x - mean) * invstd", (x - mean.reshape(bshape)) * invstd.reshape(bshape))
    y = e.step("output y = weight * xhat + bias", weight.reshape(bshape) * xhat + bias.reshape(bshape))
    y_ref, _, _, _ = ref_norm.batch_norm_train_forward(x, weight, bias, eps)
    e.step("max |y - reference|", float(np.abs(y - y_ref).max()), "kernels/reference/norm.py")
    unbiased = e.step("var (unbiased, / (M - 1))", var * m / (m - 1), "what the running estimate is updated with")
    e.step("running_mean after one step", momentum * mean, f"(1 - {momentum}) * 0 + {momentum} * mean")
    e.step("running_var after one step", (1 - momentum) * 1.0 + momentum * unbiased,
           f"(1 - {momentum}) * 1 + {momentum} * unbiased var")

    e.section("backward")
    gy = e.step("upstream gradient gy", _draw(rng, shape))
    gb = e.step("grad bias = sum gy", gy.sum(axis=axes))
    gw = e.step("grad weight = sum gy * xhat", (gy * xhat).sum(axis=axes))
    mean_g = e.step("mean(gy)", gy.mean(axis=axes))
    mean_gx = e.step("mean(gy * xhat)", (gy * xhat).mean(axis=axes))
    gx = e.step("grad x = weight * invstd * (gy - mean(gy) - xhat * mean(gy * xhat))",
                (weight * invstd).reshape(bshape) * (gy - mean_g.reshape(bshape) - xhat * mean_gx.reshape(bshape)))
    gx_ref, gw_ref, gb_ref = ref_norm.batch_norm_backward(gy, x, weight, mean, invstd)
    e.step("max |grads - reference|", float(max(np.abs(gx - gx_ref.reshape(shape)).max(), np.abs(gw - gw_ref).max(),
                                                np.abs(gb - gb_ref).max())), "kernels/reference/norm.py")

    def fn(t, w_, b_):
        return F.batch_norm(t, None, None, w_, b_, training=True, eps=eps)

    e.section("fast kernel")
    _fast(e, fn, [x, weight, bias], gy, [y, gx, gw, gb], ["gx", "gw", "gb"])
    _gradcheck(e, fn, [x, weight, bias])
    return e


def explain_cross_entropy(shape=None, label_smoothing=0.0, seed=0, precision=4):
    """Cross-entropy from logits: log-softmax by the log-sum-exp trick, then the mean negative log-likelihood."""
    shape = tuple(shape or DEFAULT_SHAPES["cross_entropy"])
    if len(shape) != 2:
        raise ValueError(f"explain cross_entropy: --shape must be NxC (samples x classes), got {shape}")
    rng = np.random.default_rng(seed)
    e = Explanation("cross_entropy", precision)
    z = e.step("logits z", np.round(2 * rng.standard_normal(shape), 2))
    target = e.step("target", rng.integers(0, shape[1], shape[0]))
    n, c = shape
    e.section("forward: log-sum-exp")
    m = e.step("row max m", z.max(axis=1))
    shifted = e.step("z - m", z - m[:, None], "every exponent <= 0: exp cannot overflow")
    ex = e.step("exp(z - m)", np.exp(shifted))
    lse = e.step("lse = m + log sum exp(z - m)", m + np.log(ex.sum(axis=1)))
    log_p = e.step("log p = z - lse", z - lse[:, None])
    onehot = np.eye(c)[target]
    q = e.step("target distribution q", (1 - label_smoothing) * onehot + label_smoothing / c,
               f"one-hot, smoothed by {label_smoothing}" if label_smoothing else "one-hot")
    losses = e.step("loss per sample = -sum q log p", -(q * log_p).sum(axis=1))
    loss = e.step("loss = mean", float(losses.mean()))
    ref, ref_lse, _ = ref_loss.softmax_cross_entropy_forward(z, target, None, -100, label_smoothing)
    e.step("max |loss per sample - reference|", float(np.abs(losses - ref).max()), "kernels/reference/loss.py")
    e.section("backward")
    p = e.step("p = softmax(z) = exp(log p)", np.exp(log_p))
    gz = e.step("grad z = (p - q) / N", (p - q) / n, "d loss / d z for the mean over N samples")
    gz_ref = ref_loss.softmax_cross_entropy_backward(z, ref_lse, target, None, -100, label_smoothing, 1.0 / n)
    e.step("max |grad z - reference|", float(np.abs(gz - gz_ref).max()))
    tgt = Tensor(target)

    def fn(t):
        return F.cross_entropy(t, tgt, label_smoothing=label_smoothing)

    e.section("fast kernel")
    _fast(e, fn, [z], 1.0, [loss, gz], ["gz"])
    _gradcheck(e, fn, [z])
    return e


def explain_softmax(shape=None, seed=0, precision=4):
    """Softmax over the last dimension: shift by the row max, exponentiate, normalise; y * (g - sum(g y)) back."""
    shape = tuple(shape or DEFAULT_SHAPES["softmax"])
    rng = np.random.default_rng(seed)
    e = Explanation("softmax", precision)
    z = e.step("input z", np.round(2 * rng.standard_normal(shape), 2))
    e.section("forward")
    m = e.step("row max m", z.max(axis=-1, keepdims=True))
    ex = e.step("exp(z - m)", np.exp(z - m))
    y = e.step("output y = exp(z - m) / sum", ex / ex.sum(axis=-1, keepdims=True))
    e.step("max |y - reference|", float(np.abs(y - ref_softmax.softmax_forward(z)).max()))
    e.section("backward")
    g = e.step("upstream gradient g", _draw(rng, shape))
    dot = e.step("sum(g * y) per row", (g * y).sum(axis=-1, keepdims=True))
    gz = e.step("grad z = y * (g - sum(g * y))", y * (g - dot))
    e.step("max |grad z - reference|", float(np.abs(gz - ref_softmax.softmax_backward(y, g)).max()))

    def fn(t):
        return F.softmax(t, dim=-1)

    e.section("fast kernel")
    _fast(e, fn, [z], g, [y, gz], ["gz"])
    _gradcheck(e, fn, [z])
    return e


def explain_linear(shape=None, out_features=3, bias=True, seed=0, precision=4):
    """A fully connected layer: y = x W^T + b, and its three gradients as matrix products."""
    shape = tuple(shape or DEFAULT_SHAPES["linear"])
    rng = np.random.default_rng(seed)
    e = Explanation("linear", precision)
    x = e.step("input x", _draw(rng, shape))
    weight = e.step("weight W", _draw(rng, (out_features, shape[-1])), "(out_features, in_features)")
    b = e.step("bias b", _draw(rng, out_features)) if bias else None
    e.section("forward")
    y = e.step("output y = x @ W.T + b", x @ weight.T + (b if bias else 0))
    e.section("backward")
    gy = e.step("upstream gradient gy", _draw(rng, y.shape))
    gx = e.step("grad x = gy @ W", gy @ weight)
    rows_gy, rows_x = gy.reshape(-1, out_features), x.reshape(-1, shape[-1])
    gw = e.step("grad W = gy^T @ x", rows_gy.T @ rows_x, "summed over every leading (batch) index")
    gb = e.step("grad b = gy summed over rows", rows_gy.sum(axis=0)) if bias else None

    def fn(*t):
        return F.linear(t[0], t[1], t[2] if bias else None)

    arrays = [x, weight] + ([b] if bias else [])
    e.section("fast kernel")
    _fast(e, fn, arrays, gy, [y, gx, gw] + ([gb] if bias else []), ["gx", "gW", "gb"])
    _gradcheck(e, fn, arrays)
    return e


def explain_relu(shape=None, seed=0, precision=4):
    """ReLU: y = max(x, 0); the gradient passes where x > 0 and stops elsewhere."""
    shape = tuple(shape or DEFAULT_SHAPES["relu"])
    rng = np.random.default_rng(seed)
    e = Explanation("relu", precision)
    x = e.step("input x", _draw(rng, shape))
    e.section("forward")
    mask = e.step("mask x > 0", x > 0)
    y = e.step("output y = x where mask, else 0", np.where(mask, x, 0.0))
    e.section("backward")
    gy = e.step("upstream gradient gy", _draw(rng, shape))
    gx = e.step("grad x = gy where mask, else 0", np.where(mask, gy, 0.0), "PyTorch's choice at x = 0: gradient 0")
    e.section("fast kernel")
    _fast(e, F.relu, [x], gy, [y, gx], ["gx"])
    if np.any(x == 0):
        e.section("gradcheck")
        e.step("gradcheck", "skipped: an input is exactly 0, where relu has a kink (--seed another)")
    else:
        _gradcheck(e, F.relu, [x])
    return e


def explain_nms(shape=None, iou_threshold=0.5, seed=0, precision=4):
    """Greedy non-maximum suppression: sort by score, keep the best, drop boxes overlapping it, repeat."""
    n = (shape or DEFAULT_SHAPES["nms"])[0]
    rng = np.random.default_rng(seed)
    e = Explanation("nms", precision)
    centres = rng.uniform(3, 6, (n, 2)).round(1)  # crowded: some boxes overlap a lot
    sizes = rng.uniform(3, 5, (n, 2)).round(1)
    boxes = e.step("boxes (x1, y1, x2, y2)", np.concatenate([centres - sizes / 2, centres + sizes / 2], axis=1))
    scores = e.step("scores", rng.uniform(0, 1, n).round(2))
    e.section("forward")
    iou = e.step("IoU matrix", ref_nms.box_iou(boxes, boxes))
    order = e.step("order (by decreasing score)", np.array(sorted(range(n), key=lambda i: (-scores[i], i))))
    suppressed, keep, log = set(), [], []
    for i in order:
        if i in suppressed:
            log.append(f"box {i} (score {scores[i]:.2f}): already suppressed")
            continue
        keep.append(int(i))
        gone = [int(j) for j in order if j not in suppressed and j not in keep and iou[i, j] > iou_threshold]
        suppressed.update(gone)
        said = ", ".join(f"{j} (IoU {iou[i, j]:.2f})" for j in gone) or "nothing"
        log.append(f"box {i} (score {scores[i]:.2f}): kept; suppresses {said}")
    e.step("greedy steps", "\n".join(log), f"suppress when IoU > {iou_threshold}")
    kept = e.step("kept", np.array(keep, dtype=np.int64))
    e.step("reference equal", bool(np.array_equal(kept, ref_nms.nms(boxes, scores, iou_threshold))),
           "kernels/reference/nms.py::nms")
    fast = ops_boxes.nms(Tensor(boxes.astype(np.float32)), Tensor(scores.astype(np.float32)), iou_threshold)
    e.section("fast kernel")
    e.step("fast kernel equal", bool(np.array_equal(kept, fast.data)), "minidl.ops.nms in float32")
    e.section("gradcheck")
    e.step("gradcheck", "none: nms returns indices, it has no gradient (its boxes' scores train through the losses)")
    return e


def explain_roi_align(shape=None, output_size=2, spatial_scale=1.0, sampling_ratio=2, aligned=True, seed=0,
                      precision=4):
    """RoI Align: each bin of a box is the average of bilinear samples on a regular sub-grid."""
    shape = tuple(shape or DEFAULT_SHAPES["roi_align"])
    out_h, out_w = _pair(output_size)
    rng = np.random.default_rng(seed)
    e = Explanation("roi_align", precision)
    x = e.step("input x", _draw(rng, shape))
    h, w = shape[2:]
    x1, y1 = rng.uniform(0, w / 3), rng.uniform(0, h / 3)
    roi = np.round([0.0, x1, y1, x1 + rng.uniform(w / 3, w / 2), y1 + rng.uniform(h / 3, h / 2)], 2) / spatial_scale
    rois = e.step("box (batch index, x1, y1, x2, y2)", np.array([roi]))
    e.section("forward")
    offset = 0.5 if aligned else 0.0
    bx1, by1, bx2, by2 = (v * spatial_scale - offset for v in roi[1:])
    roi_w, roi_h = bx2 - bx1, by2 - by1
    if not aligned:
        roi_w, roi_h = max(roi_w, 1.0), max(roi_h, 1.0)
    e.step("box on the feature map", np.array([bx1, by1, bx2, by2]),
           "coordinates * spatial_scale" + (" - 0.5 (aligned)" if aligned else ""))
    bin_h, bin_w = roi_h / out_h, roi_w / out_w
    e.step("bin size (h, w)", np.array([bin_h, bin_w]))
    grid_h = sampling_ratio if sampling_ratio > 0 else math.ceil(roi_h / out_h)
    grid_w = sampling_ratio if sampling_ratio > 0 else math.ceil(roi_w / out_w)
    e.step("samples per bin", f"{grid_h} x {grid_w}")
    points, values = [], []
    for iy in range(grid_h):
        for ix in range(grid_w):
            sy, sx = by1 + (iy + 0.5) * bin_h / grid_h, bx1 + (ix + 0.5) * bin_w / grid_w
            taps = ref_roi.bilinear_weights(h, w, sy, sx)
            points.append([sy, sx])
            values.append(sum(wt * x[0, 0, r, c] for r, c, wt in taps))
    e.step("bin (0, 0): sample points (y, x)", np.array(points))
    e.step("bin (0, 0): bilinear values (channel 0)", np.array(values), "from the four neighbours of each point")
    e.step("bin (0, 0): average", float(np.mean(values)))
    y = e.step("output y", ref_roi.roi_align_forward(x, rois, (out_h, out_w), spatial_scale, sampling_ratio, aligned),
               "kernels/reference/roi.py::roi_align_forward")
    e.section("backward")
    gy = e.step("upstream gradient gy", _draw(rng, y.shape))
    gx = e.step("grad x", ref_roi.roi_align_backward(gy, rois, shape, spatial_scale, sampling_ratio, aligned),
                "each gy scattered through the same bilinear weights, / samples per bin")
    boxes = Tensor(rois)

    def fn(t):
        return ops_roi.roi_align(t, boxes, (out_h, out_w), spatial_scale, sampling_ratio, aligned)

    e.section("fast kernel")
    _fast(e, fn, [x], gy, [y, gx], ["gx"])
    _gradcheck(e, fn, [x])
    return e


EXPLAINERS = {"conv2d": explain_conv2d, "depthwise": explain_depthwise, "max_pool2d": explain_max_pool2d,
              "avg_pool2d": explain_avg_pool2d, "batch_norm": explain_batch_norm,
              "cross_entropy": explain_cross_entropy, "softmax": explain_softmax, "nms": explain_nms,
              "roi_align": explain_roi_align, "linear": explain_linear, "relu": explain_relu}


def explain(op, **options):
    """Run ``explain_<op>`` with the options it takes (``shape``, ``kernel_size``, ``seed``, ...)."""
    if op not in EXPLAINERS:
        raise ValueError(f"explain: unknown op {op!r}; choose one of {', '.join(EXPLAINERS)}")
    return EXPLAINERS[op](**options)


def chapter_path(op):
    """The docs chapter of ``op``: an absolute path when the docs folder is next to the package, else docs/..."""
    if op not in OPS:
        raise ValueError(f"explain: unknown op {op!r}; choose one of {', '.join(OPS)}")
    relative = OPS[op][0]
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    full = os.path.join(root, relative)
    return full if os.path.exists(full) else relative


__all__ = ["Explanation", "EXPLAINERS", "OPS", "chapter_path", "explain"]
