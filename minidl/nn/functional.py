"""``minidl.nn.functional``: the stateless layer functions, with PyTorch's names and arguments.

Conventionally imported as ``F``::

    import minidl.nn.functional as F
    y = F.relu(F.conv2d(x, w, padding=1))
"""
from __future__ import annotations

import numpy as np

from minidl import random as _random
from minidl.backend import get_array_module, pair
from minidl.functions import activation as A
from minidl.functions import conv as _conv
from minidl.functions import norm as _norm
from minidl.functions import pooling as _pool
from minidl.functions import shape as S
from minidl.functions.loss import SoftmaxCrossEntropy
from minidl.tensor import Tensor, _owns_its_memory, apply, where


# ----------------------------------------------------------------------------- dtype checks (issue 15)
_TORCH_TYPE_NAMES = {"float16": "Half", "float32": "Float", "float64": "Double", "int64": "Long", "int32": "Int"}


def _check_same_dtype(op, input, weight, bias=None):
    """RuntimeError, in PyTorch's words, when a layer's input, weight and bias differ in dtype
    (a float64 batch into a float32 layer would otherwise be computed in float64 silently)."""
    if not isinstance(input, Tensor) or not isinstance(weight, Tensor):
        return
    names = {k: _TORCH_TYPE_NAMES.get(str(t.dtype), str(t.dtype)) for k, t in
             (("input", input), ("weight", weight), ("bias", bias)) if isinstance(t, Tensor)}
    if op == "linear" and input.dtype != weight.dtype:
        raise RuntimeError(f"mat1 and mat2 must have the same dtype, but got {names['input']} and {names['weight']}")
    for other in ("weight", "bias"):
        if other in names and names[other] != names["input"]:
            raise RuntimeError(f"{op}: Input type ({names['input'].lower()}) and {other} type "
                               f"({names[other].lower()}) should be the same")


def _check_kernel_dtype(op, input):
    """TypeError naming the op for float16 into a kernel that computes in float32 or float64 only."""
    if isinstance(input, Tensor) and input.dtype == np.float16:
        raise TypeError(f"{op}: float16 input is not supported (its kernels compute in float32 or float64); "
                        f"convert with .float() first")


# ----------------------------------------------------------------------------- linear
def linear(input, weight, bias=None):
    """y = x W^T + b, with W of shape (out_features, in_features)."""
    _check_same_dtype("linear", input, weight, bias)
    if input.shape[-1] != weight.shape[-1]:
        raise ValueError(f"linear: input has {input.shape[-1]} features in its last dimension, "
                         f"weight expects in_features={weight.shape[-1]} (input shape {input.shape})")
    out = input @ weight.T
    return out + bias if bias is not None else out


# ----------------------------------------------------------------------------- activations
def relu(input, inplace=False):
    """max(0, x). With ``inplace=True`` the input is overwritten where autograd allows (see _inplace_activation)."""
    if inplace:
        done = _inplace_activation(input, _norm.ACT_RELU)
        if done is not None:
            return done
    return apply(A.ReLU, input)


def relu6(input, inplace=False):
    """min(max(0, x), 6). ``inplace=True`` as in :func:`relu`."""
    if inplace:
        done = _inplace_activation(input, _norm.ACT_RELU6)
        if done is not None:
            return done
    return apply(A.ReLU6, input)


def _inplace_activation(t, act):
    """ReLU/ReLU6 written into ``t`` itself, where autograd allows; None where it does not.

    * ``t`` is outside the graph (no grad needed, e.g. inference under no_grad): clamped in place.
    * ``t`` is the output of a batch norm (training or eval) that no recorded op has read yet: the
      activation becomes part of the batch-norm node (fused: clamped in place now, its derivative
      applied inside batch-norm's backward passes; see kernels/cpu/norm.py). This is the
      Conv -> BN -> ReLU(inplace=True) of ResNet and of Conv2dNormActivation.
    * ``t`` is the output of another op that no recorded op has read yet, whose backward does not
      need that output, and which owns its memory (a residual ``out + identity``, a convolution):
      clamped in place and the op's node re-hung under a new activation node, as PyTorch's
      in-place ops do; no second full-size array is kept for backward.
    * Otherwise (a leaf that requires grad, a tensor already read by another op, a view): None,
      and the caller computes a new tensor, as the out-of-place op would.
    """
    if not isinstance(t, Tensor) or t.data.dtype.kind != "f" or not t.data.flags.c_contiguous:
        return None
    ctx = t._ctx
    xp = get_array_module(t.data)
    if ctx is None:
        if t.requires_grad:
            return None
        _clamp(xp, t.data, act)
        t._version += 1  # an in-place change, counted as Tensor's in-place methods count theirs
        return t
    if t._uses:
        return None
    if isinstance(ctx, _norm.BatchNorm):
        if not ctx.fuse_activation(t.data, act):
            return None
        t._version += 1
        return t
    saved = ctx.saved or ()
    if not _owns_its_memory(t.data) or any(a is t.data or getattr(a, "base", None) is t.data for a in saved):
        return None  # a view, or an output its own backward reads
    _clamp(xp, t.data, act)
    before = Tensor._wrap(t.data, requires_grad=True)  # the op's output, now only a node in the graph
    before._ctx, before._uses = ctx, 1
    node = A.ReLU() if act == _norm.ACT_RELU else A.ReLU6()
    node.bind(t.data)
    node.needs_input_grad = (True,)
    node.parents = (before,)
    node.save_for_backward(t.data)  # ReLU's mask reads its output; ReLU6's reads its input: both agree after clamping
    node.versions = [before._version]
    t._ctx = node
    t._version += 1
    return t


def _clamp(xp, a, act):
    if act == _norm.ACT_RELU:
        xp.maximum(a, 0, out=a)
    else:
        xp.clip(a, 0, 6, out=a)


def leaky_relu(input, negative_slope=0.01, inplace=False):
    return apply(A.LeakyReLU, input, negative_slope=negative_slope)


def elu(input, alpha=1.0, inplace=False):
    return apply(A.ELU, input, alpha=alpha)


def selu(input, inplace=False):
    return apply(A.ELU, input, alpha=A.SELU_ALPHA, scale=A.SELU_SCALE)


def silu(input, inplace=False):
    return apply(A.SiLU, input)


def gelu(input, approximate="none"):
    return apply(A.GELU, input, approximate=approximate)


def sigmoid(input):
    return apply(A.Sigmoid, input)


def tanh(input):
    return apply(A.Tanh, input)


def hardswish(input, inplace=False):
    return apply(A.Hardswish, input)


def hardsigmoid(input, inplace=False):
    return apply(A.Hardsigmoid, input)


def softplus(input, beta=1.0, threshold=20.0):
    return apply(A.Softplus, input, beta=beta, threshold=threshold)


def softmax(input, dim=-1, temperature=1.0):
    """softmax(x / T) along ``dim``; a temperature T > 1 flattens the distribution, T < 1 sharpens it."""
    return apply(A.Softmax, input, dim=dim, temperature=temperature)


def log_softmax(input, dim=-1, temperature=1.0):
    return apply(A.LogSoftmax, input, dim=dim, temperature=temperature)


# ----------------------------------------------------------------------------- dropout
def dropout(input, p=0.5, training=True, inplace=False, generator=None):
    """Zero each element with probability p and scale the rest by 1 / (1 - p) (inverted dropout)."""
    if not 0 <= p <= 1:
        raise ValueError(f"dropout: p must be in [0, 1], got {p}")
    if not training or p == 0:
        return input
    rng = generator or _random.default_generator()
    keep = rng.random(input.shape) >= p
    mask = keep.astype(input.dtype) / (1 - p) if p < 1 else np.zeros(input.shape, input.dtype)
    xp = get_array_module(input.data)
    return apply(A.MaskMultiply, input, xp.asarray(mask))


def dropout2d(input, p=0.5, training=True, inplace=False, generator=None):
    """Zero whole channels (N, C) of an (N, C, H, W) input with probability p (Tompson et al. 2015)."""
    if not 0 <= p <= 1:
        raise ValueError(f"dropout2d: p must be in [0, 1], got {p}")
    if input.ndim not in (3, 4):
        raise ValueError(f"dropout2d: expected a 3-D or 4-D input, got shape {input.shape}")
    if not training or p == 0:
        return input
    rng = generator or _random.default_generator()
    shape = input.shape[:-2] + (1, 1)
    keep = rng.random(shape) >= p
    mask = keep.astype(input.dtype) / (1 - p) if p < 1 else np.zeros(shape, input.dtype)
    xp = get_array_module(input.data)
    return apply(A.MaskMultiply, input, xp.asarray(np.broadcast_to(mask, input.shape)))


# ----------------------------------------------------------------------------- padding
def pad(input, pad, mode="constant", value=0.0):
    """Pad the last dimensions: ``pad = (left, right, top, bottom, ...)`` as torch.nn.functional.pad."""
    return apply(S.Pad, input, pad=tuple(pad), mode=mode, value=value)


# ----------------------------------------------------------------------------- losses
def _reduce(loss, reduction, name):
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    if reduction == "none":
        return loss
    raise ValueError(f"{name}: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def _check_class_target(name, input, target, ignore_index):
    if target.dtype.kind not in "iu":
        raise TypeError(f"{name}: target must hold integer class indices (int64) of shape {input.shape[:1] + input.shape[2:]}, "
                        f"or class probabilities of the input's shape {input.shape}; got dtype {target.dtype} "
                        f"and shape {target.shape}")
    expected = input.shape[:1] + input.shape[2:] if input.ndim > 1 else ()
    if target.shape != expected:
        raise ValueError(f"{name}: target has shape {target.shape}, expected {expected} for input of shape {input.shape}")
    values = target.numpy()
    classes = input.shape[1] if input.ndim > 1 else input.shape[0]
    valid = values[values != ignore_index]
    if valid.size and (valid.min() < 0 or valid.max() >= classes):
        raise ValueError(f"{name}: target values must be in [0, {classes}) (or ignore_index={ignore_index}), "
                         f"got values from {valid.min()} to {valid.max()}")


def _classes_last(input, target=None):
    """(N, C, d1, ...) -> (N*d1*..., C), so every loss kernel sees plain 2-D logits."""
    if input.ndim == 1:
        return input.reshape(1, -1), (target.reshape(1) if target is not None else None)
    if input.ndim == 2:
        return input, target
    c = input.shape[1]
    moved = input.permute(0, *range(2, input.ndim), 1).reshape(-1, c)
    if target is None:
        return moved, None
    return moved, target.reshape(-1)


def cross_entropy(input, target, weight=None, ignore_index=-100, reduction="mean", label_smoothing=0.0):
    """Softmax cross-entropy of logits ``input`` (N, C) or (N, C, d1, ...) against ``target``.

    ``target`` holds class indices (int64, shape (N,) or (N, d1, ...)) or class
    probabilities (the input's shape). With label smoothing ls the target becomes
    (1 - ls) * onehot + ls / C. Stable for logits of any magnitude (log-sum-exp).
    """
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"cross_entropy: label_smoothing must be in [0, 1], got {label_smoothing}")
    _check_kernel_dtype("cross_entropy", input)
    target = target if isinstance(target, Tensor) else Tensor(target)
    if target.dtype.kind == "f" and target.shape == input.shape:
        return _cross_entropy_probabilities(input, target, weight, reduction, label_smoothing)
    _check_class_target("cross_entropy", input, target, ignore_index)
    out_shape = target.shape
    logits, flat_target = _classes_last(input, target)
    w = None if weight is None else (weight.data if isinstance(weight, Tensor) else np.asarray(weight, dtype=input.dtype))
    if w is not None and w.shape != (logits.shape[1],):
        raise ValueError(f"cross_entropy: weight must have shape ({logits.shape[1]},), got {tuple(w.shape)}")
    loss = apply(SoftmaxCrossEntropy, logits, flat_target.data.astype(np.int64), w, ignore_index=ignore_index,
                 label_smoothing=label_smoothing, reduction=reduction)
    if reduction == "none":
        return loss.reshape(out_shape)
    return loss


def _cross_entropy_probabilities(input, target, weight, reduction, label_smoothing):
    classes = input.shape[1] if input.ndim > 1 else input.shape[0]
    dim = 1 if input.ndim > 1 else 0
    if label_smoothing:
        target = target * (1 - label_smoothing) + label_smoothing / classes
    logp = log_softmax(input, dim=dim)
    if weight is not None:
        shape = [1] * input.ndim
        shape[dim] = classes
        w = weight if isinstance(weight, Tensor) else Tensor(np.asarray(weight, dtype=input.dtype))
        logp = logp * w.reshape(shape)
    loss = -(logp * target).sum(dim=dim)
    return _reduce(loss, reduction, "cross_entropy")


def nll_loss(input, target, weight=None, ignore_index=-100, reduction="mean"):
    """Negative log-likelihood of log-probabilities ``input`` (N, C) at the target classes."""
    target = target if isinstance(target, Tensor) else Tensor(target)
    _check_class_target("nll_loss", input, target, ignore_index)
    out_shape = target.shape
    logp, flat = _classes_last(input, target)
    t = flat.numpy().astype(np.int64)
    valid = t != ignore_index
    safe = np.where(valid, t, 0)
    w = np.ones(logp.shape[1], dtype=input.dtype) if weight is None else np.asarray(
        weight.numpy() if isinstance(weight, Tensor) else weight, dtype=input.dtype)
    sample_weight = np.where(valid, w[safe], 0).astype(input.dtype)
    picked = logp[np.arange(logp.shape[0]), safe]
    loss = -picked * Tensor._wrap(sample_weight)
    if reduction == "mean":
        return loss.sum() / float(sample_weight.sum())
    if reduction == "none":
        return loss.reshape(out_shape)
    return _reduce(loss, reduction, "nll_loss")


def _check_same_shape(name, input, target):
    if input.shape != target.shape:
        raise ValueError(f"{name}: input shape {input.shape} and target shape {target.shape} differ")


def mse_loss(input, target, reduction="mean"):
    target = target if isinstance(target, Tensor) else Tensor(target, dtype=input.dtype)
    _check_same_shape("mse_loss", input, target)
    diff = input - target
    return _reduce(diff * diff, reduction, "mse_loss")


def l1_loss(input, target, reduction="mean"):
    target = target if isinstance(target, Tensor) else Tensor(target, dtype=input.dtype)
    _check_same_shape("l1_loss", input, target)
    return _reduce((input - target).abs(), reduction, "l1_loss")


def smooth_l1_loss(input, target, reduction="mean", beta=1.0):
    """Huber-like loss: 0.5 d^2 / beta where |d| < beta, |d| - 0.5 beta elsewhere (Fast R-CNN's box loss)."""
    target = target if isinstance(target, Tensor) else Tensor(target, dtype=input.dtype)
    _check_same_shape("smooth_l1_loss", input, target)
    d = (input - target).abs()
    if beta == 0:
        return _reduce(d, reduction, "smooth_l1_loss")
    loss = where(d.data < beta, d * d * (0.5 / beta), d - 0.5 * beta)
    return _reduce(loss, reduction, "smooth_l1_loss")


def binary_cross_entropy_with_logits(input, target, weight=None, reduction="mean", pos_weight=None):
    """-[pw * t log s(x) + (1 - t) log(1 - s(x))], computed as (1 - t) x + (1 + (pw - 1) t) softplus(-x)."""
    target = target if isinstance(target, Tensor) else Tensor(target, dtype=input.dtype)
    _check_same_shape("binary_cross_entropy_with_logits", input, target)
    log_weight = 1 if pos_weight is None else (pos_weight - 1) * target + 1
    loss = (1 - target) * input + log_weight * softplus(-input)
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction, "binary_cross_entropy_with_logits")


def binary_cross_entropy(input, target, weight=None, reduction="mean"):
    """-[t log p + (1 - t) log(1 - p)] on probabilities, logs clamped at -100 as PyTorch."""
    target = target if isinstance(target, Tensor) else Tensor(target, dtype=input.dtype)
    _check_same_shape("binary_cross_entropy", input, target)
    loss = -(target * input.log().clamp(min=-100) + (1 - target) * (1 - input).log().clamp(min=-100))
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction, "binary_cross_entropy")


# ----------------------------------------------------------------------------- convolution
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
    ``padding`` may be an int, a pair, "valid" or "same" (stride 1 only). The Function, its
    path plan (1x1 GEMM, direct, im2col + GEMM) and backward are in ``minidl/functions/conv.py``.

    >>> import minidl, minidl.nn.functional as F
    >>> F.conv2d(minidl.randn(1, 3, 8, 8), minidl.randn(4, 3, 3, 3), padding=1).shape
    (1, 4, 8, 8)
    """
    if input.ndim != 4:
        if input.ndim == 3:
            return conv2d(input.unsqueeze(0), weight, bias, stride, padding, dilation, groups).squeeze(0)
        raise ValueError(f"conv2d: input must be 4-D (N, C, H, W) or 3-D, got shape {input.shape}")
    if weight.ndim != 4:
        raise ValueError(f"conv2d: weight must be 4-D (out_channels, in_channels/groups, kh, kw), got {weight.shape}")
    _check_same_dtype("conv2d", input, weight, bias)
    _check_kernel_dtype("conv2d", input)
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
                input = pad(input, (left, right, top, bottom))
                padding = (0, 0)
            else:
                padding = (top, left)
        else:
            raise ValueError(f"conv2d: padding must be an int, a pair, 'valid' or 'same', got {padding!r}")
    padding = pair(padding, "padding")
    if bias is not None and not isinstance(bias, Tensor):
        bias = Tensor(bias)
    return apply(_conv.Conv2d, input, weight, bias, stride=stride, padding=padding, dilation=dilation,
                 groups=int(groups))


# ----------------------------------------------------------------------------- pooling
def _adaptive_size(output_size, h, w):
    if isinstance(output_size, (tuple, list)):
        oh, ow = output_size
        return (h if oh is None else int(oh)), (w if ow is None else int(ow))
    return int(output_size), int(output_size)


def _batched(fn):
    """Let a pooling function accept a 3-D (C, H, W) input as PyTorch does."""
    def wrapper(input, *args, **kwargs):
        _check_kernel_dtype(fn.__name__, input)
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
    kernel_size = pair(kernel_size, "max_pool2d")
    stride = kernel_size if stride is None or stride == [] else pair(stride, "max_pool2d")
    fn = _pool.MaxPool2d()
    out = apply(fn, input, kernel_size=kernel_size, stride=stride, padding=pair(padding, "max_pool2d"),
                dilation=pair(dilation, "max_pool2d"), ceil_mode=bool(ceil_mode))
    if return_indices:
        return out, Tensor._wrap(fn.indices)
    return out


@_batched
def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None):
    """Mean over each window; ``count_include_pad`` counts zero padding in the divisor."""
    kernel_size = pair(kernel_size, "avg_pool2d")
    stride = kernel_size if stride is None or stride == [] else pair(stride, "avg_pool2d")
    return apply(_pool.AvgPool2d, input, kernel_size=kernel_size, stride=stride, padding=pair(padding, "avg_pool2d"),
                 ceil_mode=bool(ceil_mode), count_include_pad=bool(count_include_pad),
                 divisor_override=divisor_override)


@_batched
def adaptive_avg_pool2d(input, output_size):
    """Average over bins [floor(i H / OH), ceil((i + 1) H / OH)), as PyTorch; any output size."""
    size = _adaptive_size(output_size, input.shape[-2], input.shape[-1])
    return apply(_pool.AdaptiveAvgPool2d, input, output_size=size)


@_batched
def adaptive_max_pool2d(input, output_size, return_indices=False):
    size = _adaptive_size(output_size, input.shape[-2], input.shape[-1])
    fn = _pool.AdaptiveMaxPool2d()
    out = apply(fn, input, output_size=size)
    if return_indices:
        return out, Tensor._wrap(fn.indices)
    return out


# ----------------------------------------------------------------------------- normalisation
def batch_norm(input, running_mean, running_var, weight=None, bias=None, training=False, momentum=0.1, eps=1e-5):
    """Batch normalisation (Ioffe & Szegedy 2015) of (N, C) or (N, C, H, W) inputs.

    Training normalises with the batch mean and biased variance and, when running
    statistics are given, updates them in place: running = (1 - momentum) running +
    momentum * batch, with the *unbiased* variance (as PyTorch). Evaluation uses the
    running statistics.
    """
    _check_kernel_dtype("batch_norm", input)
    if input.ndim not in (2, 3, 4):
        raise ValueError(f"batch_norm: expected a 2-D, 3-D or 4-D input, got shape {input.shape}")
    c = input.shape[1]
    for name, t in (("running_mean", running_mean), ("running_var", running_var), ("weight", weight), ("bias", bias)):
        if t is not None and tuple(t.shape) != (c,):
            raise ValueError(f"batch_norm: {name} must have shape ({c},) for {c} channels, got {tuple(t.shape)}")
    if training:
        count = input.numel() // c
        if count <= 1:
            raise ValueError(f"batch_norm: expected more than 1 value per channel when training, got input {input.shape}")
        fn = _norm.BatchNormTrain()
        out = apply(fn, input, weight, bias, eps=eps)
        if running_mean is not None and running_var is not None:
            unbiased = fn.batch_var * (count / (count - 1))
            running_mean.data[...] = (1 - momentum) * running_mean.data + momentum * fn.batch_mean
            running_var.data[...] = (1 - momentum) * running_var.data + momentum * unbiased
        return out
    if running_mean is None or running_var is None:
        raise ValueError("batch_norm: running_mean and running_var are required when training=False")
    rm = running_mean.data if isinstance(running_mean, Tensor) else running_mean
    rv = running_var.data if isinstance(running_var, Tensor) else running_var
    return apply(_norm.BatchNormEval, input, weight, bias, running_mean=rm, running_var=rv, eps=eps)


def local_response_norm(input, size, alpha=1e-4, beta=0.75, k=1.0):
    """AlexNet's normalisation across channels: x / (k + alpha / n * sum_{window} x^2) ^ beta."""
    if input.ndim < 3:
        raise ValueError(f"local_response_norm: expected 3-D or more input, got shape {input.shape}")
    return apply(_norm.LocalResponseNorm, input, size=int(size), alpha=alpha, beta=beta, k=k)


# ----------------------------------------------------------------------------- more activations, one_hot, normalize (issue 15)
def celu(input, alpha=1.0, inplace=False):
    """max(0, x) + min(0, alpha * (exp(x / alpha) - 1))."""
    return apply(A.CELU, input, alpha=alpha)


def mish(input, inplace=False):
    """x * tanh(softplus(x))."""
    return apply(A.Mish, input)


def hardtanh(input, min_val=-1.0, max_val=1.0, inplace=False):
    """x clipped to [min_val, max_val]."""
    if min_val > max_val:
        raise ValueError(f"hardtanh: min_val {min_val} cannot be greater than max_val {max_val}")
    return apply(A.Hardtanh, input, min_val=min_val, max_val=max_val)


def logsigmoid(input):
    """log(sigmoid(x)), computed without overflow."""
    return apply(A.LogSigmoid, input)


def softsign(input):
    """x / (1 + |x|)."""
    return apply(A.Softsign, input)


def tanhshrink(input):
    """x - tanh(x)."""
    return apply(A.Tanhshrink, input)


def hardshrink(input, lambd=0.5):
    """x where |x| > lambd, else 0."""
    return apply(A.Shrink, input, lambd=lambd, soft=False)


def softshrink(input, lambd=0.5):
    """x - lambd above lambd, x + lambd below -lambd, 0 in between."""
    if lambd < 0:
        raise RuntimeError(f"softshrink: lambd must be at least 0, got {lambd}")
    return apply(A.Shrink, input, lambd=lambd, soft=True)


def glu(input, dim=-1):
    """Gated linear unit: the first half of ``dim`` times the sigmoid of the second half."""
    n = input.shape[dim]
    if n % 2:
        raise RuntimeError(f"glu: halving dimension {dim} needs an even size, got {n}")
    a, b = input.split(n // 2, dim=dim)
    return a * sigmoid(b)


def _softmax_dim(ndim):
    """PyTorch's implicit dim for softmax-like functions called without one."""
    return 0 if ndim in (0, 1, 3) else 1


def softmin(input, dim=None, dtype=None):
    """softmax(-x) along ``dim``."""
    if dtype is not None:
        input = input.type(dtype)
    return softmax(-input, dim=_softmax_dim(input.ndim) if dim is None else dim)


def normalize(input, p=2.0, dim=1, eps=1e-12):
    """x / max(||x||_p, eps) along ``dim`` (p = inf: the largest |x|; p = 0: the number of nonzeros)."""
    absolute = input.abs()
    if p == float("inf"):
        norm = absolute.max(dim=dim, keepdim=True)[0]
    elif p == float("-inf"):
        norm = absolute.min(dim=dim, keepdim=True)[0]
    elif p == 0:  # a count: piecewise constant, no gradient
        norm = Tensor((input.data != 0).sum(axis=dim, keepdims=True).astype(input.dtype))
    else:
        norm = (absolute ** p).sum(dim=dim, keepdim=True) ** (1.0 / p)
    return input / norm.clamp(min=eps).expand_as(input)


def one_hot(tensor, num_classes=-1):
    """An int64 tensor with one more dimension of size ``num_classes``: 1 at each value's position, 0 elsewhere."""
    data = tensor.data if isinstance(tensor, Tensor) else np.asarray(tensor)
    if data.dtype.kind not in "iu":
        raise RuntimeError(f"one_hot: class values must be an integer tensor, got dtype {data.dtype}")
    xp = get_array_module(data)
    if data.size and int(data.min()) < 0:
        raise RuntimeError("one_hot: class values must be non-negative")
    if num_classes == -1:
        if data.size == 0:
            raise RuntimeError("one_hot: cannot infer the number of classes of an empty tensor")
        num_classes = int(data.max()) + 1
    elif data.size and int(data.max()) >= num_classes:
        raise RuntimeError(f"one_hot: class values must be smaller than num_classes={num_classes}")
    return Tensor._wrap((data[..., None] == xp.arange(num_classes)).astype(np.int64))


# ---- normalisation, embedding, recurrent (issue 16)
from minidl.functions import embedding as _embedding  # noqa: E402
from minidl.functions import layer_norm as _layer_norm  # noqa: E402
from minidl.functions import recurrent as _recurrent  # noqa: E402
from minidl.grad_mode import no_grad as _no_grad  # noqa: E402
from minidl.tensor import stack as _stack  # noqa: E402


def _normalized_shape(normalized_shape):
    if isinstance(normalized_shape, int):
        return (int(normalized_shape),)
    return tuple(int(s) for s in normalized_shape)


def _check_affine(name, t, shape):
    if t is not None and tuple(t.shape) != tuple(shape):
        raise ValueError(f"{name}: expected a parameter of shape {tuple(shape)}, got {tuple(t.shape)}")


def layer_norm(input, normalized_shape, weight=None, bias=None, eps=1e-5):
    """Layer normalisation (Ba et al. 2016) over the last ``len(normalized_shape)`` dimensions.

    Each slice ``x[..., *normalized_shape]`` is brought to zero mean and unit biased variance,
    then scaled elementwise by ``weight`` and shifted by ``bias`` (both of ``normalized_shape``).
    """
    shape = _normalized_shape(normalized_shape)
    if len(shape) == 0 or tuple(input.shape[input.ndim - len(shape):]) != shape or input.ndim < len(shape):
        raise ValueError(f"layer_norm: normalized_shape={list(shape)} expects an input of shape [*, "
                         f"{', '.join(map(str, shape))}], got {list(input.shape)}")
    _check_affine("layer_norm: weight", weight, shape)
    _check_affine("layer_norm: bias", bias, shape)
    return apply(_layer_norm.LayerNorm, input, weight, bias, normalized_ndim=len(shape), eps=eps)


def group_norm(input, num_groups, weight=None, bias=None, eps=1e-5):
    """Group normalisation (Wu & He 2018): the C channels of (N, C, *) in ``num_groups`` groups, each group
    normalised over its channels and positions, then a per-channel affine map."""
    if input.ndim < 2:
        raise ValueError(f"group_norm: expected an input of at least 2 dimensions (N, C, *), got shape {input.shape}")
    c = input.shape[1]
    if num_groups <= 0 or c % num_groups:
        raise ValueError(f"group_norm: expected the number of channels {c} to be divisible by num_groups={num_groups}")
    _check_affine("group_norm: weight", weight, (c,))
    _check_affine("group_norm: bias", bias, (c,))
    return apply(_layer_norm.GroupNorm, input, weight, bias, num_groups=int(num_groups), eps=eps)


def instance_norm(input, running_mean=None, running_var=None, weight=None, bias=None, use_input_stats=True,
                  momentum=0.1, eps=1e-5):
    """Instance normalisation (Ulyanov et al. 2016): each channel of each sample of (N, C, *) normalised alone.

    With ``use_input_stats`` (training, or no running statistics) the statistics are the
    sample's own, and running statistics, when given, are updated in place with their batch
    average (``running = (1 - momentum) running + momentum * mean over N``, the variance
    unbiased, as PyTorch). Otherwise the running statistics normalise, as in batch norm's
    evaluation mode.
    """
    if input.ndim < 3:
        raise ValueError(f"instance_norm: expected an input of at least 3 dimensions (N, C, *), "
                         f"got shape {input.shape}")
    c = input.shape[1]
    for name, t in (("running_mean", running_mean), ("running_var", running_var), ("weight", weight), ("bias", bias)):
        _check_affine(f"instance_norm: {name}", t, (c,))
    if not use_input_stats:
        if running_mean is None or running_var is None:
            raise ValueError("instance_norm: running_mean and running_var are required when use_input_stats=False")
        view = (1, c) + (1,) * (input.ndim - 2)
        rm = running_mean.data if isinstance(running_mean, Tensor) else running_mean
        rv = running_var.data if isinstance(running_var, Tensor) else running_var
        xp = get_array_module(input.data)
        scale = Tensor._wrap(xp.asarray(1.0 / np.sqrt(np.asarray(rv, np.float64) + eps), input.dtype).reshape(view))
        out = (input - Tensor._wrap(xp.asarray(rm, input.dtype).reshape(view))) * scale
        if weight is not None:
            out = out * weight.reshape(view)
        return out + bias.reshape(view) if bias is not None else out
    length = input.numel() // max(input.shape[0] * c, 1)
    if length <= 1:
        raise ValueError(f"instance_norm: expected more than 1 spatial element when training, got input {input.shape}")
    out = apply(_layer_norm.GroupNorm, input, weight, bias, num_groups=c, eps=eps)
    if running_mean is not None and running_var is not None:
        flat = input.data.reshape(input.shape[0], c, length)
        running_mean.data[...] = (1 - momentum) * running_mean.data + momentum * flat.mean(axis=2).mean(axis=0)
        running_var.data[...] = (1 - momentum) * running_var.data + momentum * flat.var(axis=2, ddof=1).mean(axis=0)
    return out


def rms_norm(input, normalized_shape, weight=None, eps=None):
    """Root-mean-square normalisation (Zhang & Sennrich 2019): x / sqrt(mean(x^2) + eps) * weight over the
    last dimensions; ``eps`` None is the machine epsilon of the input's dtype (as PyTorch)."""
    shape = _normalized_shape(normalized_shape)
    if len(shape) == 0 or tuple(input.shape[input.ndim - len(shape):]) != shape or input.ndim < len(shape):
        raise ValueError(f"rms_norm: normalized_shape={list(shape)} expects an input of shape [*, "
                         f"{', '.join(map(str, shape))}], got {list(input.shape)}")
    _check_affine("rms_norm: weight", weight, shape)
    if eps is None:
        eps = float(np.finfo(input.dtype).eps)
    dims = tuple(range(input.ndim - len(shape), input.ndim))
    out = input * ((input * input).mean(dim=dims, keepdim=True) + eps).rsqrt()
    return out * weight if weight is not None else out


def embedding(input, weight, padding_idx=None, max_norm=None, norm_type=2.0, scale_grad_by_freq=False,
              sparse=False):
    """Rows of ``weight`` (num_embeddings, embedding_dim) picked by the integer indices ``input``: (*) -> (*, D).

    ``padding_idx``: that row gets no gradient. ``max_norm``: the rows looked up whose
    ``norm_type``-norm exceeds it are rescaled in place to norm ``max_norm`` first (as
    PyTorch, this modifies ``weight``). ``scale_grad_by_freq``: each row's gradient is divided
    by how often its index occurs in ``input``. ``sparse`` is accepted; the gradient is dense.
    """
    if weight.ndim != 2:
        raise ValueError(f"embedding: weight must be 2-D (num_embeddings, embedding_dim), got shape {weight.shape}")
    num = weight.shape[0]
    indices = input.data if isinstance(input, Tensor) else get_array_module(weight.data).asarray(input)
    if indices.dtype.kind not in "iu":
        raise TypeError(f"embedding: expected integer indices (int64 or int32), got {indices.dtype}")
    if indices.size and (int(indices.min()) < 0 or int(indices.max()) >= num):
        raise IndexError(f"embedding: index out of range for {num} embeddings "
                         f"(got indices in [{int(indices.min())}, {int(indices.max())}])")
    if padding_idx is not None:
        if not -num <= padding_idx < num:
            raise ValueError(f"embedding: padding_idx must be within [-{num}, {num}), got {padding_idx}")
        padding_idx = int(padding_idx) % num
    if max_norm is not None:
        with _no_grad():
            _embedding_renorm_(weight.data, indices, max_norm, norm_type)
    return apply(_embedding.Embedding, weight, indices, padding_idx=padding_idx,
                 scale_grad_by_freq=bool(scale_grad_by_freq))


def _embedding_renorm_(table, indices, max_norm, norm_type):
    """Rescale in place the rows of ``table`` named in ``indices`` whose norm exceeds ``max_norm``."""
    xp = get_array_module(table)
    rows = xp.unique(indices.reshape(-1))
    norms = (xp.abs(table[rows].astype(np.float64)) ** norm_type).sum(axis=1) ** (1.0 / norm_type)
    over = norms > max_norm
    scale = max_norm / (norms[over] + 1e-7)  # PyTorch's margin: the rescaled norm lands just under max_norm
    table[rows[over]] = (table[rows[over]] * scale[:, None]).astype(table.dtype)


def rnn_tanh_cell(input, hx, w_ih, w_hh, b_ih=None, b_hh=None):
    """One Elman RNN step: h' = tanh(x W_ih^T + b_ih + h W_hh^T + b_hh)."""
    return (linear(input, w_ih, b_ih) + linear(hx, w_hh, b_hh)).tanh()


def rnn_relu_cell(input, hx, w_ih, w_hh, b_ih=None, b_hh=None):
    """One Elman RNN step with ReLU: h' = relu(x W_ih^T + b_ih + h W_hh^T + b_hh)."""
    return (linear(input, w_ih, b_ih) + linear(hx, w_hh, b_hh)).relu()


def lstm_cell(input, hx, w_ih, w_hh, b_ih=None, b_hh=None):
    """One LSTM step (Hochreiter & Schmidhuber 1997), gate order i, f, g, o as PyTorch: returns (h', c')."""
    return _lstm_step(linear(input, w_ih, b_ih), hx, w_hh, b_hh)


def _lstm_step(gi, hx, w_hh, b_hh):
    """An LSTM step from the input's pre-activations gi (B, 4H): one GEMM for h, then the fused cell."""
    h, c = hx
    hc = apply(_recurrent.LSTMCell, gi, linear(h, w_hh, b_hh), c)  # (B, 2, H): h' and c'
    return hc[:, 0], hc[:, 1]


def _lstm_layer(gi, hx, w_hh, b_hh, reverse=False):
    """One direction of an LSTM layer over gi (T, B, 4H) from hx = (h0, c0): returns (output (T, B, H), (h_n, c_n))."""
    h0, c0 = hx
    hidden = h0.shape[1]
    states = apply(_recurrent.LSTMLayer, gi, h0, c0, w_hh, b_hh, reverse=reverse)  # (T, B, 2H): h_t and c_t
    last = 0 if reverse else gi.shape[0] - 1
    return states[:, :, :hidden], (states[last, :, :hidden], states[last, :, hidden:])


def _gru_layer(gi, h0, w_hh, b_hh, reverse=False):
    """One direction of a GRU layer over gi (T, B, 3H) from h0: returns (output (T, B, H), h_n)."""
    out = apply(_recurrent.GRULayer, gi, h0, w_hh, b_hh, reverse=reverse)
    return out, out[0 if reverse else gi.shape[0] - 1]


def _rnn_layer(gi, h0, w_hh, b_hh, nonlinearity="tanh", reverse=False):
    """One direction of an Elman RNN layer over gi (T, B, H) from h0: returns (output (T, B, H), h_n)."""
    out = apply(_recurrent.RNNLayer, gi, h0, w_hh, b_hh, nonlinearity=nonlinearity, reverse=reverse)
    return out, out[0 if reverse else gi.shape[0] - 1]


def gru_cell(input, hx, w_ih, w_hh, b_ih=None, b_hh=None):
    """One GRU step (Cho et al. 2014), gate order r, z, n as PyTorch: n = tanh(W_in x + b_in + r * (W_hn h + b_hn))."""
    return _gru_step(linear(input, w_ih, b_ih), hx, w_hh, b_hh)


def _gru_step(gi, h, w_hh, b_hh):
    """A GRU step from the input's pre-activations gi (B, 3H)."""
    gi_r, gi_z, gi_n = gi.chunk(3, 1)
    gh_r, gh_z, gh_n = linear(h, w_hh, b_hh).chunk(3, 1)
    r = (gi_r + gh_r).sigmoid()
    z = (gi_z + gh_z).sigmoid()
    n = (gi_n + r * gh_n).tanh()
    return n + z * (h - n)  # (1 - z) * n + z * h


def embedding_bag(input, weight, offsets=None, max_norm=None, norm_type=2, scale_grad_by_freq=False, mode="mean",
                  sparse=False, per_sample_weights=None, include_last_offset=False, padding_idx=None):
    """Sums, means or maxima of bags of embeddings, without materialising the bags' lookups one by one.

    Bags are the rows of a 2-D ``input`` (B, L), or, for a 1-D ``input``, the runs starting
    at ``offsets`` (with ``include_last_offset``, ``offsets`` has one more entry, the input's
    length). Entries equal to ``padding_idx`` are left out of their bag (and
    of a mean's count); an empty bag gives zeros. ``per_sample_weights`` (mode "sum" only)
    weighs each looked-up row. Sum and mean are one product ``S @ rows`` with S the (bags, n)
    matrix of each entry's share in its bag, so their gradient is the product's.
    """
    if mode not in ("sum", "mean", "max"):
        raise ValueError(f"embedding_bag: mode must be 'sum', 'mean' or 'max', got {mode!r}")
    if per_sample_weights is not None and mode != "sum":
        raise ValueError(f"embedding_bag: per_sample_weights is only supported for mode='sum', got mode={mode!r}")
    xp = get_array_module(weight.data)
    indices = input.data if isinstance(input, Tensor) else xp.asarray(input)
    n = indices.size
    if indices.ndim == 2:
        if offsets is not None:
            raise ValueError("embedding_bag: offsets must be None when input is 2-D (one bag per row)")
        bags = indices.shape[0]
        bag_of = np.repeat(np.arange(bags), indices.shape[1])
        keep = np.ones(n, bool)
    elif indices.ndim == 1:
        if offsets is None:
            raise ValueError("embedding_bag: offsets are required when input is 1-D")
        off = np.asarray(offsets.data if isinstance(offsets, Tensor) else offsets).astype(np.int64).reshape(-1)
        if off.size == 0 or off[0] != 0 or np.any(np.diff(off) < 0) or off[-1] > n:
            raise ValueError(f"embedding_bag: offsets must start at 0 and not decrease past the input's length {n}, "
                             f"got {off.tolist()}")
        starts = off[:-1] if include_last_offset else off  # with include_last_offset, offsets[-1] is the input's end
        bags = len(starts)
        bag_of = np.searchsorted(starts, np.arange(n), side="right") - 1  # the last bag starting at or before i
        keep = np.ones(n, bool)
    else:
        raise ValueError(f"embedding_bag: expected a 1-D or 2-D input, got shape {tuple(indices.shape)}")
    flat = indices.reshape(-1)
    if padding_idx is not None:
        padding_idx = int(padding_idx) % weight.shape[0]
        keep &= np.asarray(flat != padding_idx) if xp is np else xp.asnumpy(flat != padding_idx)
    rows = embedding(Tensor._wrap(flat), weight, None, max_norm, norm_type, scale_grad_by_freq)  # (n, D)
    positions = np.nonzero(keep)[0]
    if mode == "max":
        out = []
        for b in range(bags):
            mine = positions[bag_of[positions] == b]
            out.append(rows[mine].max(dim=0)[0] if mine.size else
                       Tensor._wrap(xp.zeros(weight.shape[1], dtype=weight.dtype)))
        return _stack(out, 0) if out else Tensor._wrap(xp.zeros((0, weight.shape[1]), dtype=weight.dtype))
    share = np.zeros((bags, n), dtype=weight.dtype)
    share[bag_of[positions], positions] = 1
    if mode == "mean":
        share /= np.maximum(share.sum(axis=1, keepdims=True), 1)
    share = Tensor._wrap(xp.asarray(share))
    if per_sample_weights is not None:
        if tuple(per_sample_weights.shape) != tuple(indices.shape):
            raise ValueError(f"embedding_bag: per_sample_weights must have the input's shape {tuple(indices.shape)}, "
                             f"got {tuple(per_sample_weights.shape)}")
        share = share * per_sample_weights.reshape(1, n)
    return share @ rows
