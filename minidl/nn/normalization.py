"""Normalisation layers beyond batch norm: LayerNorm, GroupNorm, InstanceNorm1d/2d/3d, RMSNorm.

PyTorch's arguments, defaults, parameter and buffer names; the work is in
``minidl.nn.functional`` (``layer_norm``, ``group_norm``, ``instance_norm``, ``rms_norm``).
"""
from __future__ import annotations

import numpy as np

from ..tensor import Tensor
from . import functional as F
from . import init
from .layers import init_running_stats, reset_running_stats
from .module import Module, Parameter


class LayerNorm(Module):
    """Layer normalisation (Ba et al. 2016) over the last dimensions of each sample (Transformers).

    Formula: y = (x - mean) / sqrt(var + eps) * weight + bias, mean and biased var over the last
             len(normalized_shape) dimensions; the same in train() and eval()

    Args:
        normalized_shape (int or tuple): the trailing shape normalised.
        eps (float): Default: 1e-05.
        elementwise_affine (bool): learn weight (ones) and bias (zeros). Default: True.
        bias (bool): learn the bias. Default: True.
        dtype: Default: None (float32).

    Shape:
        input (*, *normalized_shape), output the same.

    Attributes:
        weight, bias (Parameter): of normalized_shape.

    >>> import minidl, minidl.nn as nn
    >>> nn.LayerNorm(3)(minidl.tensor([[1.0, 2.0, 3.0], [0.0, 0.0, 6.0]]))
    tensor([[-1.2247,  0.    ,  1.2247],
            [-0.7071, -0.7071,  1.4142]], grad_fn=<LayerNormBackward0>)

    See docs/layer_norm.md.
    """

    def __init__(self, normalized_shape, eps=1e-5, elementwise_affine=True, bias=True, dtype=None):
        super().__init__()
        self.normalized_shape = F._normalized_shape(normalized_shape)
        self.eps, self.elementwise_affine = eps, elementwise_affine
        dtype = dtype or np.float32
        if elementwise_affine:
            self.weight = Parameter(np.ones(self.normalized_shape, dtype=dtype))
            if bias:
                self.bias = Parameter(np.zeros(self.normalized_shape, dtype=dtype))
            else:
                self.register_parameter("bias", None)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)

    def reset_parameters(self):
        if self.weight is not None:
            init.ones_(self.weight)
        if self.bias is not None:
            init.zeros_(self.bias)

    def forward(self, x):
        return F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self):
        return (f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}, "
                f"bias={self.bias is not None}")


class GroupNorm(Module):
    """Group normalisation (Wu & He 2018): statistics over groups of channels, independent of the batch.

    Formula: y = (x - mean_g) / sqrt(var_g + eps) * weight_c + bias_c, mean and biased var over the channels
             of group g and all positions of one sample

    Args:
        num_groups (int): G, dividing num_channels.
        num_channels (int): C.
        eps (float): Default: 1e-05.
        affine (bool): learn per-channel weight (ones) and bias (zeros). Default: True.
        dtype: Default: None (float32).
        bias (bool, keyword): learn the bias. Default: True.

    Shape:
        input (N, C, *), output the same.

    Attributes:
        weight, bias (Parameter): (C,).

    >>> import minidl, minidl.nn as nn
    >>> nn.GroupNorm(2, 4)(minidl.tensor([[[1.0], [3.0], [10.0], [10.0]]])).flatten()
    tensor([-1.,  1.,  0.,  0.], grad_fn=<ReshapeBackward0>)

    See docs/layer_norm.md.
    """

    def __init__(self, num_groups, num_channels, eps=1e-5, affine=True, dtype=None, *, bias=True):
        super().__init__()
        if num_channels % num_groups:
            raise ValueError(f"GroupNorm: num_channels={num_channels} must be divisible by num_groups={num_groups}")
        self.num_groups, self.num_channels, self.eps, self.affine = num_groups, num_channels, eps, affine
        dtype = dtype or np.float32
        self.register_parameter("weight", Parameter(np.ones(num_channels, dtype=dtype)) if affine else None)
        self.register_parameter("bias", Parameter(np.zeros(num_channels, dtype=dtype)) if affine and bias else None)

    def forward(self, x):
        return F.group_norm(x, self.num_groups, self.weight, self.bias, self.eps)

    def extra_repr(self):
        return (f"{self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.affine}, "
                f"bias={self.bias is not None}")


class _InstanceNorm(Module):
    """What InstanceNorm1d/2d/3d share; PyTorch's defaults: affine=False, track_running_stats=False."""

    _batched_ndim = 3

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=False, track_running_stats=False, dtype=None, *,
                 bias=True):
        super().__init__()
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        dtype = dtype or np.float32
        self.register_parameter("weight", Parameter(np.ones(num_features, dtype=dtype)) if affine else None)
        self.register_parameter("bias", Parameter(np.zeros(num_features, dtype=dtype)) if affine and bias else None)
        init_running_stats(self, num_features, dtype, track_running_stats)

    def reset_running_stats(self):
        reset_running_stats(self)

    def forward(self, x):
        name, nd = type(self).__name__, self._batched_ndim
        if x.ndim not in (nd - 1, nd):
            raise ValueError(f"{name}: expected a {nd - 1}-D (unbatched) or {nd}-D input, got shape {x.shape}")
        unbatched = x.ndim == nd - 1
        if unbatched:
            x = x.unsqueeze(0)
        if x.shape[1] != self.num_features and (self.affine or self.track_running_stats):
            raise ValueError(f"{name}: expected {self.num_features} channels, got shape {x.shape}")
        momentum = self.momentum if self.momentum is not None else 0.0
        out = F.instance_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                              self.training or not self.track_running_stats, momentum, self.eps)
        return out.squeeze(0) if unbatched else out

    def extra_repr(self):
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
                f"bias={self.bias is not None}, track_running_stats={self.track_running_stats}")


class InstanceNorm1d(_InstanceNorm):
    """Instance normalisation (Ulyanov et al. 2016) of each channel of each (N, C, L) sample.

    Formula: y[n, c] = (x[n, c] - mean) / sqrt(var + eps) (* weight_c + bias_c), mean and biased var over the
             positions of that one sample and channel

    Args:
        num_features (int): C.
        eps (float): Default: 1e-05.
        momentum (float): Default: 0.1.
        affine (bool): learn per-channel weight (ones) and bias (zeros). Default: False.
        track_running_stats (bool): keep running_mean/var for eval(). Default: False.
        dtype: Default: None (float32).
        bias (bool, keyword): learn the bias when affine. Default: True.

    Shape:
        input (N, C, L) or (C, L), output the same.

    >>> import minidl, minidl.nn as nn
    >>> nn.InstanceNorm1d(2)(minidl.tensor([[[1.0, 3.0], [5.0, 5.0]]]))
    tensor([[[-1.,  1.],
             [ 0.,  0.]]])

    See docs/layer_norm.md.
    """
    _batched_ndim = 3


class InstanceNorm2d(_InstanceNorm):
    """Instance normalisation (Ulyanov et al. 2016) of each channel of each image (style transfer).

    Formula: y[n, c] = (x[n, c] - mean) / sqrt(var + eps) (* weight_c + bias_c), mean and biased var over the
             positions of that one sample and channel

    Args:
        num_features (int): C.
        eps (float): Default: 1e-05.
        momentum (float): Default: 0.1.
        affine (bool): learn per-channel weight (ones) and bias (zeros). Default: False.
        track_running_stats (bool): keep running_mean/var for eval(). Default: False.
        dtype: Default: None (float32).
        bias (bool, keyword): learn the bias when affine. Default: True.

    Shape:
        input (N, C, H, W) or (C, H, W), output the same.

    >>> import minidl, minidl.nn as nn
    >>> nn.InstanceNorm2d(1)(minidl.tensor([[[[1.0, 3.0], [5.0, 7.0]]]])).flatten()
    tensor([-1.3416, -0.4472,  0.4472,  1.3416])

    See docs/layer_norm.md.
    """
    _batched_ndim = 4


class InstanceNorm3d(_InstanceNorm):
    """Instance normalisation (Ulyanov et al. 2016) of each channel of each volume.

    Formula: y[n, c] = (x[n, c] - mean) / sqrt(var + eps) (* weight_c + bias_c), mean and biased var over the
             positions of that one sample and channel

    Args:
        num_features (int): C.
        eps (float): Default: 1e-05.
        momentum (float): Default: 0.1.
        affine (bool): learn per-channel weight (ones) and bias (zeros). Default: False.
        track_running_stats (bool): keep running_mean/var for eval(). Default: False.
        dtype: Default: None (float32).
        bias (bool, keyword): learn the bias when affine. Default: True.

    Shape:
        input (N, C, D, H, W) or (C, D, H, W), output the same.

    >>> import minidl, minidl.nn as nn
    >>> nn.InstanceNorm3d(1)(minidl.arange(8.0).reshape(1, 1, 2, 2, 2)).flatten()
    tensor([-1.5275, -1.0911, -0.6547, -0.2182,  0.2182,  0.6547,  1.0911,
             1.5275])

    See docs/layer_norm.md.
    """
    _batched_ndim = 5


class RMSNorm(Module):
    """Root-mean-square normalisation (Zhang & Sennrich 2019): layer norm without centring.

    Formula: y = x / sqrt(mean(x^2) + eps) * weight over the last len(normalized_shape) dimensions

    Args:
        normalized_shape (int or tuple): the trailing shape.
        eps (float, optional): Default: None (the machine epsilon of the input's dtype).
        elementwise_affine (bool): learn weight (ones). Default: True.
        dtype: Default: None (float32).

    Shape:
        input (*, *normalized_shape), output the same.

    Attributes:
        weight (Parameter): of normalized_shape.

    >>> import minidl, minidl.nn as nn
    >>> nn.RMSNorm(2)(minidl.tensor([[3.0, 4.0]]))
    tensor([[0.8485, 1.1314]], grad_fn=<MulBackward0>)

    See docs/layer_norm.md.
    """

    def __init__(self, normalized_shape, eps=None, elementwise_affine=True, dtype=None):
        super().__init__()
        self.normalized_shape = F._normalized_shape(normalized_shape)
        self.eps, self.elementwise_affine = eps, elementwise_affine
        if elementwise_affine:
            self.weight = Parameter(np.ones(self.normalized_shape, dtype=dtype or np.float32))
        else:
            self.register_parameter("weight", None)

    def forward(self, x):
        return F.rms_norm(x, self.normalized_shape, self.weight, self.eps)

    def extra_repr(self):
        return f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}"
