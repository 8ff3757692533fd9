"""SyncBatchNorm: batch normalisation over the global batch of all processes.

Forward: each rank sums x and x^2 per channel and counts its values; one all-reduce of
``[sum, sum of squares, count]`` gives every rank the global mean and (biased) variance, so every
sample is normalised as it would be in one process holding the whole batch. Backward: the
gradient of x needs two per-channel sums over the global batch, ``sum(dy)`` and
``sum(dy * x_hat)``; one all-reduce of both, then

    dx = weight / sqrt(var + eps) * (dy - sum(dy) / N - x_hat * sum(dy * x_hat) / N)

with N the global count. The weight and bias gradients stay local sums (DistributedDataParallel
averages them with the other gradients). Statistics are accumulated in float64.
"""
from __future__ import annotations

import numpy as np

from minidl import distributed as dist
from minidl.autograd import Function
from minidl.backend import get_array_module
from minidl.tensor import Tensor

from ..layers import BatchNorm1d, BatchNorm2d, _BatchNorm


def _axes(a):
    return (0,) + tuple(range(2, a.ndim))


def _channel(v, a):
    """Per-channel values shaped to broadcast against (N, C, *)."""
    return v.reshape((1, -1) + (1,) * (a.ndim - 2))


class _SyncBatchNormFunction(Function):
    @staticmethod
    def forward(ctx, x, weight, bias, eps, group, stats):
        a = x.data
        xp = get_array_module(a)
        axes, c = _axes(a), a.shape[1]
        local = xp.concatenate([a.sum(axis=axes, dtype=np.float64), (a.astype(np.float64) ** 2).sum(axis=axes),
                                xp.full(1, a.size // c, dtype=np.float64)])
        dist.all_reduce(local, group=group)
        n = float(local[-1])
        mean = local[:c] / n
        var = xp.maximum(local[c:2 * c] / n - mean * mean, 0.0)
        invstd = 1.0 / xp.sqrt(var + eps)
        x_hat = ((a - _channel(mean, a)) * _channel(invstd, a)).astype(a.dtype)
        y = x_hat if weight is None else x_hat * _channel(weight.data, a)
        if bias is not None:
            y = y + _channel(bias.data, a)
        ctx.x_hat, ctx.invstd, ctx.n, ctx.group = x_hat, invstd, n, group
        ctx.weight = None if weight is None else weight.data
        stats.update(mean=mean, var=var, count=n)
        return Tensor(y.astype(a.dtype, copy=False))

    @staticmethod
    def backward(ctx, grad):
        g, x_hat = grad.data, ctx.x_hat
        xp = get_array_module(g)
        axes, c = _axes(g), g.shape[1]
        sums = xp.concatenate([g.sum(axis=axes, dtype=np.float64), (g * x_hat).sum(axis=axes, dtype=np.float64)])
        grad_bias, grad_weight = sums[:c].astype(g.dtype), sums[c:].astype(g.dtype)  # local, before the all-reduce
        dist.all_reduce(sums, group=ctx.group)
        scale = ctx.invstd if ctx.weight is None else ctx.invstd * ctx.weight
        dx = _channel(scale, g) * (g - _channel(sums[:c] / ctx.n, g) - x_hat * _channel(sums[c:] / ctx.n, g))
        return (Tensor(dx.astype(g.dtype)), None if ctx.weight is None else Tensor(grad_weight),
                None if ctx.weight is None else Tensor(grad_bias), None, None, None)


class SyncBatchNorm(_BatchNorm):
    """``torch.nn.SyncBatchNorm``: BatchNorm whose training statistics span every rank of ``process_group``.

    Formula: as BatchNorm, with mean_B and var_B over the whole global batch: the forward all-reduces
             each channel's sum, sum of squares and count; the backward all-reduces the two sums
             sum(dy) and sum(dy * x_hat) that the input gradient needs.
             In evaluation, or outside a process group of more than one rank (``process_group``, else
             the default one), it is plain batch norm. Build it from a model's BatchNorm layers with
             :meth:`convert_sync_batchnorm`.

    Args:
        num_features (int): C, the number of channels.
        eps (float): added to the variance. Default: 1e-05.
        momentum (float or None): weight of each new batch in the running averages. Default: 0.1.
        affine (bool): learn weight and bias. Default: True.
        track_running_stats (bool): keep running_mean/var. Default: True.
        process_group: the ranks to synchronise over (None: the default group). Default: None.
        dtype: Default: None (float32).

    Shape:
        input (N, C), (N, C, L) or (N, C, H, W); output the same.

    >>> import minidl, minidl.nn as nn
    >>> net = nn.SyncBatchNorm.convert_sync_batchnorm(nn.Sequential(nn.Conv2d(1, 2, 1), nn.BatchNorm2d(2)))
    >>> type(net[1]).__name__, net[1].num_features
    ('SyncBatchNorm', 2)
    >>> net(minidl.ones(2, 1, 2, 2)).shape  # a world of one: plain batch norm
    (2, 2, 2, 2)

    See docs/batch_norm.md.
    """

    _expected_dims = (2, 3, 4)

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True, track_running_stats=True,
                 process_group=None, dtype=None):
        super().__init__(num_features, eps, momentum, affine, track_running_stats, dtype)
        self.process_group = process_group

    def forward(self, x):
        group = self.process_group
        syncing = self.training and (group is not None or dist.is_initialized()) and dist.get_world_size(group) > 1
        if not syncing:
            return super().forward(x)
        if x.ndim not in self._expected_dims or x.shape[1] != self.num_features:
            raise ValueError(f"SyncBatchNorm: expected a 2-D, 3-D or 4-D input with {self.num_features} channels, "
                             f"got shape {x.shape}")
        stats = {}
        out = _SyncBatchNormFunction.apply(x, self.weight, self.bias, self.eps, self.process_group, stats)
        if self.track_running_stats:
            self.num_batches_tracked.data[...] += 1
            momentum = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked.item())
            n = stats["count"]
            rm, rv = self.running_mean.data, self.running_var.data
            rm[...] = (1 - momentum) * rm + momentum * stats["mean"].astype(rm.dtype)
            rv[...] = (1 - momentum) * rv + momentum * (stats["var"] * (n / (n - 1))).astype(rv.dtype)
        return out

    @classmethod
    def convert_sync_batchnorm(cls, module, process_group=None):
        """``module`` with every BatchNorm1d/2d replaced by a SyncBatchNorm sharing its parameters and buffers."""
        output = module
        if isinstance(module, (BatchNorm1d, BatchNorm2d)):
            output = cls(module.num_features, module.eps, module.momentum, module.affine, module.track_running_stats,
                         process_group)
            if module.affine:
                output.weight, output.bias = module.weight, module.bias
            if module.track_running_stats:
                output.running_mean, output.running_var = module.running_mean, module.running_var
                output.num_batches_tracked = module.num_batches_tracked
            output.train(module.training)
        for name, child in module.named_children():
            output.add_module(name, cls.convert_sync_batchnorm(child, process_group))
        return output
