"""``minidl.nn.functional``: the stateless layer functions, with PyTorch's names and arguments.

Conventionally imported as ``F``::

    import minidl.nn.functional as F
    y = F.relu(F.conv2d(x, w, padding=1))
"""
from __future__ import annotations

import numpy as np

from .. import random as _random
from ..autograd import get_array_module
from ..ops import activation as A
from ..ops import shape as S
from ..tensor import Tensor, where


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
    return A.ReLU.apply(input)


def relu6(input, inplace=False):
    return A.ReLU6.apply(input)


def leaky_relu(input, negative_slope=0.01, inplace=False):
    return A.LeakyReLU.apply(input, negative_slope=negative_slope)


def elu(input, alpha=1.0, inplace=False):
    return A.ELU.apply(input, alpha=alpha)


def selu(input, inplace=False):
    return A.ELU.apply(input, alpha=A.SELU_ALPHA, scale=A.SELU_SCALE)


def silu(input, inplace=False):
    return A.SiLU.apply(input)


def gelu(input, approximate="none"):
    return A.GELU.apply(input, approximate=approximate)


def sigmoid(input):
    return A.Sigmoid.apply(input)


def tanh(input):
    return A.Tanh.apply(input)


def hardswish(input, inplace=False):
    return A.Hardswish.apply(input)


def hardsigmoid(input, inplace=False):
    return A.Hardsigmoid.apply(input)


def softplus(input, beta=1.0, threshold=20.0):
    return A.Softplus.apply(input, beta=beta, threshold=threshold)


def softmax(input, dim=-1, temperature=1.0):
    """softmax(x / T) along ``dim``; a temperature T > 1 flattens the distribution, T < 1 sharpens it."""
    return A.Softmax.apply(input, dim=dim, temperature=temperature)


def log_softmax(input, dim=-1, temperature=1.0):
    return A.LogSoftmax.apply(input, dim=dim, temperature=temperature)


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
    return A.MaskMultiply.apply(input, xp.asarray(mask))


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
    return A.MaskMultiply.apply(input, xp.asarray(np.broadcast_to(mask, input.shape)))


# ----------------------------------------------------------------------------- padding
def pad(input, pad, mode="constant", value=0.0):
    """Pad the last dimensions: ``pad = (left, right, top, bottom, ...)`` as torch.nn.functional.pad."""
    return S.Pad.apply(input, pad=tuple(pad), mode=mode, value=value)


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
    from ..ops.loss import SoftmaxCrossEntropy

    loss = SoftmaxCrossEntropy.apply(logits, flat_target.data.astype(np.int64), w, ignore_index=ignore_index,
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


# ----------------------------------------------------------------------------- CNN layers
# Their Functions live in minidl/ops/{conv,pooling,norm}.py next to the kernels they call.
from ..ops.conv import conv2d  # noqa: E402,F401
from ..ops.pooling import (  # noqa: E402,F401
    adaptive_avg_pool2d,
    adaptive_max_pool2d,
    avg_pool2d,
    max_pool2d,
)
from ..ops.norm import batch_norm, local_response_norm  # noqa: E402,F401
