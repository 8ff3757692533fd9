"""Batch normalisation and local response normalisation (kernels in ``kernels/cpu/norm.py``)."""
from __future__ import annotations

from ..autograd import Function, get_array_module
from ._common import kernels_for


class BatchNormTrain(Function):
    """Normalise with the batch statistics (biased variance); returns y, and the statistics via attributes."""

    def forward(self, x, weight, bias, eps=1e-5):
        kern = kernels_for(get_array_module(x), "norm")
        y, mean, invstd, var = kern.batch_norm_train_forward(x, weight, bias, eps)
        self.save_for_backward(x, weight, mean, invstd)  # x-hat is recomputed from these in backward
        self.batch_mean, self.batch_var = mean, var
        return y

    def backward(self, g):
        x, weight, mean, invstd = self.saved
        kern = kernels_for(get_array_module(x), "norm")
        gx, gw, gb = kern.batch_norm_backward(
            g, x, weight, mean, invstd, self.needs_input_grad[0],
            len(self.needs_input_grad) > 1 and (self.needs_input_grad[1] or self.needs_input_grad[2]))
        return gx, gw, gb


class BatchNormEval(Function):
    """y = (x - running_mean) / sqrt(running_var + eps) * weight + bias: an affine map per channel."""

    def forward(self, x, weight, bias, running_mean, running_var, eps=1e-5):
        xp = get_array_module(x)
        kern = kernels_for(xp, "norm")
        self.scale = 1.0 / xp.sqrt(running_var.astype(x.dtype) + eps)  # per-channel scale (C,)
        self.save_for_backward(x, weight)
        self.normalised_needed = weight is not None
        self.running_mean = running_mean
        return kern.batch_norm_eval_forward(x, running_mean, running_var, weight, bias, eps)

    def backward(self, g):
        x, weight = self.saved
        shape = (1, -1) + (1,) * (x.ndim - 2)
        scale = self.scale.reshape(shape)
        axes = (0,) + tuple(range(2, x.ndim))
        gx = gw = gb = None
        if self.needs_input_grad[0]:
            gx = g * scale * (weight.reshape(shape) if weight is not None else 1)
        if len(self.needs_input_grad) > 1 and self.needs_input_grad[1]:
            gw = (g * (x - self.running_mean.reshape(shape)) * scale).sum(axis=axes)
        if len(self.needs_input_grad) > 2 and self.needs_input_grad[2]:
            gb = g.sum(axis=axes)
        return gx, gw, gb


def batch_norm(input, running_mean, running_var, weight=None, bias=None, training=False, momentum=0.1, eps=1e-5):
    """Batch normalisation (Ioffe & Szegedy 2015) of (N, C) or (N, C, H, W) inputs.

    Training normalises with the batch mean and biased variance and, when running
    statistics are given, updates them in place: running = (1 - momentum) running +
    momentum * batch, with the *unbiased* variance (as PyTorch). Evaluation uses the
    running statistics.
    """
    from ..tensor import Tensor

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
        out = BatchNormTrain.apply(input, weight, bias, eps=eps)
        fn = out._ctx
        if running_mean is not None and running_var is not None:
            if fn is not None:
                mean, var = fn.batch_mean, fn.batch_var
            else:  # no graph: statistics straight from the data
                axes = (0,) + tuple(range(2, input.ndim))
                mean, var = input.data.mean(axis=axes), input.data.var(axis=axes)
            unbiased = var * (count / (count - 1))
            running_mean.data[...] = (1 - momentum) * running_mean.data + momentum * mean
            running_var.data[...] = (1 - momentum) * running_var.data + momentum * unbiased
        return out
    if running_mean is None or running_var is None:
        raise ValueError("batch_norm: running_mean and running_var are required when training=False")
    w = weight if weight is not None else None
    rm = running_mean.data if isinstance(running_mean, Tensor) else running_mean
    rv = running_var.data if isinstance(running_var, Tensor) else running_var
    return BatchNormEval.apply(input, w, bias, running_mean=rm, running_var=rv, eps=eps)


class LocalResponseNorm(Function):
    def forward(self, x, size, alpha, beta, k):
        kern = kernels_for(get_array_module(x), "norm")
        y, scale = kern.local_response_norm_forward(x, size, alpha, beta, k)
        self.save_for_backward(x, y, scale)
        self.options = (size, alpha, beta, k)
        return y

    def backward(self, g):
        x, y, scale = self.saved
        return (kernels_for(get_array_module(x), "norm").local_response_norm_backward(g, x, y, scale, *self.options),)


def local_response_norm(input, size, alpha=1e-4, beta=0.75, k=1.0):
    """AlexNet's normalisation across channels: x / (k + alpha / n * sum_{window} x^2) ^ beta."""
    if input.ndim < 3:
        raise ValueError(f"local_response_norm: expected 3-D or more input, got shape {input.shape}")
    return LocalResponseNorm.apply(input, size=int(size), alpha=alpha, beta=beta, k=k)
