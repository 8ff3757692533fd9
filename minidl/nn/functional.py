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


# ----------------------------------------------------------------------------- linear
def linear(input, weight, bias=None):
    """y = x W^T + b, with W of shape (out_features, in_features)."""
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
