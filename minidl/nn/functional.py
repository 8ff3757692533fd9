"""``minidl.nn.functional``: the stateless layer functions, with PyTorch's names and arguments.

Conventionally imported as ``F``::

    import minidl.nn.functional as F
    y = F.relu(F.conv2d(x, w, padding=1))
"""
from __future__ import annotations

import functools

import numpy as np

from minidl import random as _random
from minidl.backend import get_array_module, pair
from minidl.functions import activation as A
from minidl.functions import attention as _attention
from minidl.functions import conv as _conv
from minidl.functions import conv_nd as _conv_nd
from minidl.functions import conv_transpose as _conv_t
from minidl.functions import norm as _norm
from minidl.functions import pooling as _pool
from minidl.functions import resample as _resample
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
    """Affine map y = x W^T + b, the layer of an MLP.

    Formula: y[..., o] = sum_i x[..., i] W[o, i] + b[o]

    Args:
        input (Tensor): (*, in_features).
        weight (Tensor): (out_features, in_features).
        bias (Tensor, optional): (out_features,). Default: None.

    Shape:
        input (*, in_features), output (*, out_features).

    >>> import minidl, minidl.nn.functional as F
    >>> x = minidl.tensor([[1.0, 2.0, 3.0]])
    >>> w = minidl.tensor([[1.0, 0.0, -1.0], [0.5, 0.5, 0.5]])
    >>> F.linear(x, w, minidl.tensor([0.0, 1.0]))
    tensor([[-2.,  4.]])

    See docs/linear.md.
    """
    _check_same_dtype("linear", input, weight, bias)
    if input.shape[-1] != weight.shape[-1]:
        raise ValueError(f"linear: input has {input.shape[-1]} features in its last dimension, "
                         f"weight expects in_features={weight.shape[-1]} (input shape {input.shape})")
    if input.ndim > 2:  # (..., in) as one (rows, in) matrix: one BLAS product instead of a batch of small ones
        lead = input.shape[:-1]
        out = (input.reshape(-1, input.shape[-1]) @ weight.T).reshape(*lead, weight.shape[0])
    else:
        out = input @ weight.T
    return out + bias if bias is not None else out


# ----------------------------------------------------------------------------- activations
def relu(input, inplace=False):
    """Rectified linear unit, elementwise.

    Formula: relu(x) = max(0, x)

    Args:
        input (Tensor): any shape.
        inplace (bool): overwrite the input where autograd allows (a fresh batch-norm or conv output;
            see _inplace_activation), else return a new tensor. Default: False.

    Shape:
        input (*), output (*): the same shape.

    >>> import minidl, minidl.nn.functional as F
    >>> x = minidl.tensor([-2.0, -0.5, 0.0, 1.0, 3.0])
    >>> F.relu(x)
    tensor([0., 0., 0., 1., 3.])

    See docs/activations.md.
    """
    if inplace:
        done = _inplace_activation(input, _norm.ACT_RELU)
        if done is not None:
            return done
    return apply(A.ReLU, input)


def relu6(input, inplace=False):
    """ReLU capped at 6 (MobileNet), elementwise.

    Formula: relu6(x) = min(max(0, x), 6)

    Args:
        input (Tensor): any shape.
        inplace (bool): as in relu. Default: False.

    Shape:
        input (*), output (*): the same shape.

    >>> import minidl, minidl.nn.functional as F
    >>> x = minidl.tensor([-2.0, -0.5, 0.0, 1.0, 3.0])
    >>> F.relu6(3 * x)
    tensor([0., 0., 0., 3., 6.])

    See docs/activations.md.
    """
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
    """Leaky ReLU: a small slope for negative inputs, elementwise.

    Formula: leaky_relu(x) = x if x >= 0 else negative_slope * x

    Args:
        input (Tensor): any shape.
        negative_slope (float): slope for x < 0. Default: 0.01.
        inplace (bool): accepted for PyTorch's signature; a new tensor is returned. Default: False.

    Shape:
        input (*), output (*): the same shape.

    >>> import minidl, minidl.nn.functional as F
    >>> x = minidl.tensor([-2.0, -0.5, 0.0, 1.0, 3.0])
    >>> F.leaky_relu(x, negative_slope=0.1)
    tensor([-0.2 , -0.05,  0.  ,  1.  ,  3.  ])

    See docs/activations.md.
    """
    return apply(A.LeakyReLU, input, negative_slope=negative_slope)


def elu(input, alpha=1.0, inplace=False):
    """Exponential linear unit (Clevert et al. 2015), elementwise.

    Formula: elu(x) = x if x > 0 else alpha * (exp(x) - 1)

    Args:
        input (Tensor): any shape.
        alpha (float): the negative saturation value -alpha. Default: 1.0.
        inplace (bool): accepted for PyTorch's signature; a new tensor is returned. Default: False.

    Shape:
        input (*), output (*): the same shape.

    >>> import minidl, minidl.nn.functional as F
    >>> x = minidl.tensor([-2.0, -0.5, 0.0, 1.0, 3.0])
    >>> F.elu(x)
    tensor([-0.8647, -0.3935,  0.    ,  1.    ,  3.    ])

    See docs/activations.md.
    """
    return apply(A.ELU, input, alpha=alpha)


def selu(input, inplace=False):
    """Scaled ELU (Klambauer et al. 2017), self-normalising, elementwise.

    Formula: selu(x) = scale * (x if x > 0 else alpha * (exp(x) - 1)),
             alpha = 1.6732632423543772, scale = 1.0507009873554805

    Args:
        input (Tensor): any shape.
        inplace (bool): accepted for PyTorch's signature; a new tensor is returned. Default: False.

    Shape:
        input (*), output (*): the same shape.

    >>> import minidl, minidl.nn.functional as F
    >>> x = minidl.tensor([-2.0, -0.5, 0.0, 1.0, 3.0])
    >>> F.selu(x)
    tensor([-1.5202, -0.6918,  0.    ,  1.0507,  3.1521])

    See docs/activations.md.
    """
    return apply(A.ELU, input, alpha=A.SELU_ALPHA, scale=A.SELU_SCALE)


def silu(input, inplace=False):
    """SiLU / swish (EfficientNet), elementwise.

    Formula: silu(x) = x * sigmoid(x)

    Args:
        input (Tensor): any shape.
        inplace (bool): accepted for PyTorch's signature; a new tensor is returned. Default: False.

    Shape:
        input (*), output (*): the same shape.

    >>> import minidl, minidl.nn.functional as F
    >>> x = minidl.tensor([-2.0, -0.5, 0.0, 1.0, 3.0])
    >>> F.silu(x)
    tensor([-0.2384, -0.1888,  0.    ,  0.7311,  2.8577])

    See docs/activations.md.
    """
    return apply(A.SiLU, input)


def gelu(input, approximate="none"):
    """Gaussian error linear unit (Hendrycks & Gimpel 2016), elementwise.

    Formula: gelu(x) = x * Phi(x) = x/2 * (1 + erf(x / sqrt(2)));
             approximate='tanh': x/2 * (1 + tanh(sqrt(2/pi) * (x + 0.044715 x^3)))

    Args:
        input (Tensor): any shape.
        approximate (str): 'none' (exact erf) or 'tanh'. Default: 'none'.

    Shape:
        input (*), output (*): the same shape.

    >>> import minidl, minidl.nn.functional as F
    >>> x = minidl.tensor([-2.0, -0.5, 0.0, 1.0, 3.0])
    >>> F.gelu(x)
    tensor([-0.0455, -0.1543,  0.    ,  0.8413,  2.996 ])

    See docs/activations.md.
    """
    return apply(A.GELU, input, approximate=approximate)


def sigmoid(input):
    """Logistic sigmoid, elementwise.

    Formula: sigmoid(x) = 1 / (1 + exp(-x))

    Args:
        input (Tensor): any shape.


    Shape:
        input (*), output (*): the same shape.

    >>> import minidl, minidl.nn.functional as F
    >>> x = minidl.tensor([-2.0, -0.5, 0.0, 1.0, 3.0])
    >>> F.sigmoid(x)
    tensor([0.1192, 0.3775, 0.5   , 0.7311, 0.9526])

    See docs/activations.md.
    """
    return apply(A.Sigmoid, input)


def tanh(input):
    """Hyperbolic tangent, elementwise.

    Formula: tanh(x) = (exp(x) - exp(-x)) / (exp(x) + exp(-x))

    Args:
        input (Tensor): any shape.


    Shape:
        input (*), output (*): the same shape.

    >>> import minidl, minidl.nn.functional as F
    >>> x = minidl.tensor([-2.0, -0.5, 0.0, 1.0, 3.0])
    >>> F.tanh(x)
    tensor([-0.964 , -0.4621,  0.    ,  0.7616,  0.9951])

    See docs/activations.md.
    """
    return apply(A.Tanh, input)


def hardswish(input, inplace=False):
    """Hard swish (MobileNet v3), elementwise.

    Formula: hardswish(x) = x * relu6(x + 3) / 6

    Args:
        input (Tensor): any shape.
        inplace (bool): accepted for PyTorch's signature; a new tensor is returned. Default: False.

    Shape:
        input (*), output (*): the same shape.

    >>> import minidl, minidl.nn.functional as F
    >>> x = minidl.tensor([-2.0, -0.5, 0.0, 1.0, 3.0])
    >>> F.hardswish(x)
    tensor([-0.3333, -0.2083,  0.    ,  0.6667,  3.    ])

    See docs/activations.md.
    """
    return apply(A.Hardswish, input)


def hardsigmoid(input, inplace=False):
    """Hard sigmoid (MobileNet v3), elementwise.

    Formula: hardsigmoid(x) = relu6(x + 3) / 6

    Args:
        input (Tensor): any shape.
        inplace (bool): accepted for PyTorch's signature; a new tensor is returned. Default: False.

    Shape:
        input (*), output (*): the same shape.

    >>> import minidl, minidl.nn.functional as F
    >>> x = minidl.tensor([-2.0, -0.5, 0.0, 1.0, 3.0])
    >>> F.hardsigmoid(x)
    tensor([0.1667, 0.4167, 0.5   , 0.6667, 1.    ])

    See docs/activations.md.
    """
    return apply(A.Hardsigmoid, input)


def softplus(input, beta=1.0, threshold=20.0):
    """Softplus, a smooth ReLU, elementwise.

    Formula: softplus(x) = log(1 + exp(beta x)) / beta, and x itself where beta x > threshold

    Args:
        input (Tensor): any shape.
        beta (float): sharpness. Default: 1.0.
        threshold (float): above it the function is linear (avoids overflow). Default: 20.0.

    Shape:
        input (*), output (*): the same shape.

    >>> import minidl, minidl.nn.functional as F
    >>> x = minidl.tensor([-2.0, -0.5, 0.0, 1.0, 3.0])
    >>> F.softplus(x)
    tensor([0.1269, 0.4741, 0.6931, 1.3133, 3.0486])

    See docs/activations.md.
    """
    return apply(A.Softplus, input, beta=beta, threshold=threshold)


def softmax(input, dim=-1, temperature=1.0):
    """Softmax along ``dim``, with a temperature T (a minidl extra): probabilities that sum to 1.

    Formula: softmax(x)_i = exp(x_i / T) / sum_j exp(x_j / T), computed after subtracting max(x)
    (log-sum-exp trick, no overflow). T > 1 flattens the distribution, T < 1 sharpens it.

    Args:
        input (Tensor): any shape.
        dim (int): the dimension that sums to 1. Default: -1 (PyTorch's default None picks a legacy
            dimension with a warning: 0 for 0-, 1- and 3-D inputs, else 1; pass dim explicitly).
        temperature (float): T. Default: 1.0.

    Shape:
        input (*), output (*): the same shape.

    >>> import minidl, minidl.nn.functional as F
    >>> x = minidl.tensor([1.0, 2.0, 3.0])
    >>> F.softmax(x, dim=0)
    tensor([0.09  , 0.2447, 0.6652])
    >>> F.softmax(x, dim=0, temperature=10.0)
    tensor([0.3006, 0.3322, 0.3672])

    See docs/softmax_cross_entropy.md.
    """
    return apply(A.Softmax, input, dim=dim, temperature=temperature)


def log_softmax(input, dim=-1, temperature=1.0):
    """Logarithm of the softmax along ``dim``, computed stably (never log of a rounded 0).

    Formula: log_softmax(x)_i = x_i / T - log(sum_j exp(x_j / T)), the log-sum-exp taken after
    subtracting max(x).

    Args:
        input (Tensor): any shape.
        dim (int): the dimension over which the exponentials sum to 1. Default: -1 (PyTorch: None, as softmax).
        temperature (float): T (a minidl extra). Default: 1.0.

    Shape:
        input (*), output (*): the same shape.

    >>> import minidl, minidl.nn.functional as F
    >>> F.log_softmax(minidl.tensor([1000.0, 1001.0]), dim=0)
    tensor([-1.3133, -0.3133])

    See docs/softmax_cross_entropy.md.
    """
    return apply(A.LogSoftmax, input, dim=dim, temperature=temperature)


# ----------------------------------------------------------------------------- layers for issue 15/16
# conv1d / conv3d, transposed convolutions, 1-D and 3-D pooling, unpooling, interpolation,
# unfold / fold, pixel and channel shuffle, Lp pooling and scaled dot-product attention.
def _ntuple(value, n, name):
    """An int, or a sequence of n (or 1) ints, as an n-tuple of ints; ValueError otherwise."""
    if isinstance(value, (tuple, list)):
        if len(value) == 1:
            value = tuple(value) * n
        if len(value) != n:
            raise ValueError(f"{name}: expected an int or {n} ints, got {tuple(value)}")
        return tuple(int(v) for v in value)
    return (int(value),) * n


def _unbatched(fn, input, spatial, *args, **kwargs):
    """Run ``fn`` on a batch of one when ``input`` has no batch dimension (C, *S), as PyTorch allows."""
    if input.ndim == spatial + 1:
        out = fn(input.unsqueeze(0), *args, **kwargs)
        return tuple(o.squeeze(0) for o in out) if isinstance(out, tuple) else out.squeeze(0)
    if input.ndim != spatial + 2:
        raise ValueError(f"expected a {spatial + 1}-D or {spatial + 2}-D input, got shape {input.shape}")
    return fn(input, *args, **kwargs)


def _as_tensor(t):
    return t if t is None or isinstance(t, Tensor) else Tensor(t)


def conv1d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """1-D convolution (cross-correlation) of a sequence with a bank of filters.

    Runs as a 2-D convolution over a unit height (conv2d).

    Formula: y[n, o, l] = b[o] + sum_{c, j} w[o, c, j] x[n, g Cg + c, l s + j d - p], with Cg = C_in/groups
             channels per group, c in [0, Cg) and g = o // (C_out/groups) the group of output channel o

    Args:
        input (Tensor): (N, C_in, L) or unbatched (C_in, L).
        weight (Tensor): (C_out, C_in/groups, k).
        bias (Tensor, optional): (C_out,). Default: None.
        stride (int or tuple): step of the window. Default: 1.
        padding (int, tuple, 'valid' or 'same'): zeros added on both sides; 'same' keeps the size
            (stride 1 only; an odd total puts the extra zero at the end, as PyTorch). Default: 0.
        dilation (int or tuple): spacing between kernel taps. Default: 1.
        groups (int): split C_in and C_out into this many independent groups (C_in for depthwise). Default: 1.

    Shape:
        input (N, C_in, L), output (N, C_out, L_out), L_out = floor((L + 2p - d(k - 1) - 1) / s) + 1.

    >>> import minidl, minidl.nn.functional as F
    >>> F.conv1d(minidl.tensor([[[1.0, 2, 3, 4]]]), minidl.tensor([[[1.0, 0, -1]]]))
    tensor([[[-2., -2.]]])
    >>> F.conv1d(minidl.ones(2, 3, 10), minidl.ones(4, 3, 3), padding='same').shape
    (2, 4, 10)

    See docs/convolution.md.
    """
    if input.ndim == 2:
        return conv1d(input.unsqueeze(0), weight, bias, stride, padding, dilation, groups).squeeze(0)
    if input.ndim != 3 or weight.ndim != 3:
        raise ValueError(f"conv1d: expected input (N, C, L) and weight (K, C/groups, k), got {input.shape} "
                         f"and {weight.shape}")
    pad2 = padding if isinstance(padding, str) else (0, _ntuple(padding, 1, "conv1d padding")[0])
    y = conv2d(input.unsqueeze(2), weight.unsqueeze(2), bias, (1, _ntuple(stride, 1, "conv1d stride")[0]), pad2,
               (1, _ntuple(dilation, 1, "conv1d dilation")[0]), groups)
    return y.squeeze(2)


def conv3d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """3-D convolution (cross-correlation) of volumes (video, CT) with a bank of filters.

    Plain array code, im2col-style (minidl/functions/conv_nd.py).

    Formula: as conv2d with a third spatial dimension; out = floor((D + 2p - d(k - 1) - 1) / s) + 1 per dimension

    Args:
        input (Tensor): (N, C_in, D, H, W) or unbatched (C_in, D, H, W).
        weight (Tensor): (C_out, C_in/groups, kd, kh, kw).
        bias (Tensor, optional): (C_out,). Default: None.
        stride (int or tuple): step of the window. Default: 1.
        padding (int, tuple, 'valid' or 'same'): zeros added on both sides; 'same' keeps the size
            (stride 1 only; an odd total puts the extra zero at the end, as PyTorch). Default: 0.
        dilation (int or tuple): spacing between kernel taps. Default: 1.
        groups (int): split C_in and C_out into this many independent groups (C_in for depthwise). Default: 1.

    Shape:
        input (N, C_in, D, H, W), output (N, C_out, D_out, H_out, W_out).

    >>> import minidl, minidl.nn.functional as F
    >>> F.conv3d(minidl.ones(1, 2, 4, 4, 4), minidl.ones(3, 2, 3, 3, 3)).shape
    (1, 3, 2, 2, 2)
    >>> F.conv3d(minidl.ones(1, 2, 4, 4, 4), minidl.ones(3, 2, 3, 3, 3))[0, 0, 0, 0, 0].item()
    54.0

    See docs/convolution.md.
    """
    if input.ndim == 4:
        return conv3d(input.unsqueeze(0), weight, bias, stride, padding, dilation, groups).squeeze(0)
    if input.ndim != 5 or weight.ndim != 5:
        raise ValueError(f"conv3d: expected input (N, C, D, H, W) and weight (K, C/groups, kd, kh, kw), got "
                         f"{input.shape} and {weight.shape}")
    stride, dilation = _ntuple(stride, 3, "conv3d stride"), _ntuple(dilation, 3, "conv3d dilation")
    if isinstance(padding, str):
        if padding == "valid":
            padding = (0, 0, 0)
        elif padding == "same":
            if stride != (1, 1, 1):
                raise ValueError(f"conv3d: padding='same' requires stride 1, got stride {stride}")
            pads = _same_padding(weight.shape, dilation)
            padding = tuple(lo for lo, _ in pads)
            extra = [hi - lo for lo, hi in pads]
            if any(extra):
                input = pad(input, (0, extra[2], 0, extra[1], 0, extra[0]))
        else:
            raise ValueError(f"conv3d: padding must be an int, a triple, 'valid' or 'same', got {padding!r}")
    return apply(_conv_nd.Conv3d, input, weight, _as_tensor(bias), stride=stride,
                 padding=_ntuple(padding, 3, "conv3d padding"), dilation=dilation, groups=int(groups))


def _conv_transpose(input, weight, bias, stride, padding, output_padding, groups, dilation, n):
    name = f"conv_transpose{n}d"
    if input.ndim == n + 1:
        return _conv_transpose(input.unsqueeze(0), weight, bias, stride, padding, output_padding, groups,
                               dilation, n).squeeze(0)
    if input.ndim != n + 2 or weight.ndim != n + 2:
        raise ValueError(f"{name}: expected a {n + 2}-D input and weight (C_in, C_out/groups, *k), got "
                         f"{input.shape} and {weight.shape}")
    return apply(_conv_t.ConvTranspose, input, weight, _as_tensor(bias), stride=_ntuple(stride, n, name),
                 padding=_ntuple(padding, n, name), output_padding=_ntuple(output_padding, n, name),
                 dilation=_ntuple(dilation, n, name), groups=int(groups))


def conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """Transposed 2-D convolution ("deconvolution"): the gradient of conv2d with respect to its input.

    The adjoint of conv2d (minidl/functions/conv_transpose.py).

    Formula: out = (in - 1) s - 2 p + d (k - 1) + output_padding + 1 per dimension; y is the adjoint (the gradient)
             of conv with the same weight: each input value scatters x[c_in, i] * w[c_in, c_out, :] at i*s.

    Args:
        input (Tensor): (N, C_in, H, W) or (C_in, H, W).
        weight (Tensor): (C_in, C_out/groups, kh, kw).
        bias (Tensor, optional): (C_out,). Default: None.
        stride (int or tuple): upsampling step. Default: 1.
        padding (int or tuple): rows/columns cropped from each side of the full output. Default: 0.
        output_padding (int or tuple): extra size added on one side to pick among sizes. Default: 0.
        groups (int): independent channel groups. Default: 1.
        dilation (int or tuple): spacing between kernel taps. Default: 1.

    Shape:
        input (N, C_in, H, W), output (N, C_out, H_out, W_out),
        H_out = (H - 1) s - 2p + d (kh - 1) + output_padding + 1.

    >>> import minidl, minidl.nn.functional as F
    >>> F.conv_transpose2d(minidl.ones(1, 4, 5, 5), minidl.ones(4, 2, 3, 3), stride=2, padding=1,
    ...                    output_padding=1).shape
    (1, 2, 10, 10)

    See docs/convolution.md.
    """
    return _conv_transpose(input, weight, bias, stride, padding, output_padding, groups, dilation, 2)


def conv_transpose3d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """Transposed 3-D convolution: the gradient of conv3d with respect to its input.

    The adjoint of conv3d (minidl/functions/conv_transpose.py).

    Formula: out = (in - 1) s - 2 p + d (k - 1) + output_padding + 1 per dimension; y is the adjoint (the gradient)
             of conv with the same weight: each input value scatters x[c_in, i] * w[c_in, c_out, :] at i*s.

    Args:
        input (Tensor): (N, C_in, D, H, W) or (C_in, D, H, W).
        weight (Tensor): (C_in, C_out/groups, kd, kh, kw).
        bias (Tensor, optional): (C_out,). Default: None.
        stride (int or tuple): upsampling step. Default: 1.
        padding (int or tuple): rows/columns cropped from each side of the full output. Default: 0.
        output_padding (int or tuple): extra size added on one side to pick among sizes. Default: 0.
        groups (int): independent channel groups. Default: 1.
        dilation (int or tuple): spacing between kernel taps. Default: 1.

    Shape:
        input (N, C_in, D, H, W), output (N, C_out, D_out, H_out, W_out), each as in conv_transpose2d.

    >>> import minidl, minidl.nn.functional as F
    >>> F.conv_transpose3d(minidl.ones(1, 2, 2, 2, 2), minidl.ones(2, 3, 2, 2, 2), stride=2).shape
    (1, 3, 4, 4, 4)

    See docs/convolution.md.
    """
    return _conv_transpose(input, weight, bias, stride, padding, output_padding, groups, dilation, 3)


def conv_transpose1d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """Transposed 1-D convolution (the gradient of conv1d with respect to its input).

    Runs as the 2-D one over a unit height.

    Formula: out = (in - 1) s - 2 p + d (k - 1) + output_padding + 1 per dimension; y is the adjoint (the gradient)
             of conv with the same weight: each input value scatters x[c_in, i] * w[c_in, c_out, :] at i*s.

    Args:
        input (Tensor): (N, C_in, L) or (C_in, L).
        weight (Tensor): (C_in, C_out/groups, k).
        bias (Tensor, optional): (C_out,). Default: None.
        stride (int or tuple): upsampling step. Default: 1.
        padding (int or tuple): rows/columns cropped from each side of the full output. Default: 0.
        output_padding (int or tuple): extra size added on one side to pick among sizes. Default: 0.
        groups (int): independent channel groups. Default: 1.
        dilation (int or tuple): spacing between kernel taps. Default: 1.

    Shape:
        input (N, C_in, L), output (N, C_out, (L - 1) s - 2p + d (k - 1) + output_padding + 1).

    >>> import minidl, minidl.nn.functional as F
    >>> F.conv_transpose1d(minidl.tensor([[[1.0, 2.0]]]), minidl.tensor([[[1.0, 1.0, 1.0]]]), stride=2)
    tensor([[[1., 1., 3., 2., 2.]]])

    See docs/convolution.md.
    """
    if input.ndim == 2:
        return conv_transpose1d(input.unsqueeze(0), weight, bias, stride, padding, output_padding, groups,
                                dilation).squeeze(0)
    if input.ndim != 3 or weight.ndim != 3:
        raise ValueError(f"conv_transpose1d: expected input (N, C, L) and weight (C_in, C_out/groups, k), got "
                         f"{input.shape} and {weight.shape}")
    s, p, op, d = (_ntuple(v, 1, "conv_transpose1d")[0] for v in (stride, padding, output_padding, dilation))
    # the unit height: stride and dilation 1, no padding
    y = conv_transpose2d(input.unsqueeze(2), weight.unsqueeze(2), bias, (1, s), (0, p), (0, op), groups, (1, d))
    return y.squeeze(2)


# 1-D pooling runs as 2-D pooling over a unit height
def max_pool1d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    """1-D max pooling: the largest value of each window of a sequence.

    Formula: y[n, c, l] = max_j x[n, c, l s + j d - p];
             out = floor((in + 2 p - d (k - 1) - 1) / s) + 1 (ceil with ceil_mode)

    Args:
        input (Tensor): (N, C, L) or (C, L).
        kernel_size (int or tuple): window size.
        stride (int or tuple, optional): window step. Default: None (= kernel_size).
        padding (int or tuple): implicit -inf padding on both sides (at most half the kernel). Default: 0.
        dilation (int or tuple): spacing between window taps. Default: 1.
        ceil_mode (bool): round the output size up (a last partial window). Default: False.
        return_indices (bool): also return the flat index of each maximum in its input plane. Default: False.

    Shape:
        input (N, C, L), output (N, C, L_out).

    >>> import minidl, minidl.nn.functional as F
    >>> x = minidl.tensor([[[1.0, 5, 2, 0, 3, 4]]])
    >>> F.max_pool1d(x, 2)
    tensor([[[5., 2., 4.]]])
    >>> F.max_pool1d(x, 3, stride=1, return_indices=True)[1]
    tensor([[[1, 1, 4, 5]]])

    See docs/pooling.md.
    """
    k = _ntuple(kernel_size, 1, "max_pool1d")[0]
    s = k if stride is None or stride == [] else _ntuple(stride, 1, "max_pool1d")[0]
    out = max_pool2d(input.unsqueeze(-2), (1, k), (1, s), (0, _ntuple(padding, 1, "max_pool1d")[0]),
                     (1, _ntuple(dilation, 1, "max_pool1d")[0]), ceil_mode, return_indices)
    return tuple(o.squeeze(-2) for o in out) if return_indices else out.squeeze(-2)


def avg_pool1d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True):
    """1-D average pooling: the mean of each window of a sequence.

    Formula: y[n, c, l] = (1 / k) sum_j x[n, c, l s + j - p];
             out = floor((in + 2 p - d (k - 1) - 1) / s) + 1 (ceil with ceil_mode) with d = 1

    Args:
        input (Tensor): (N, C, L) or (C, L).
        kernel_size (int or tuple): window size.
        stride (int or tuple, optional): window step. Default: None (= kernel_size).
        padding (int or tuple): implicit zero padding on both sides. Default: 0.
        ceil_mode (bool): round the output size up (a last partial window). Default: False.
        count_include_pad (bool): count padded zeros in the divisor. Default: True.

    Shape:
        input (N, C, L), output (N, C, L_out).

    >>> import minidl, minidl.nn.functional as F
    >>> x = minidl.tensor([[[1.0, 5, 2, 0, 3, 4]]])
    >>> F.avg_pool1d(x, 2)
    tensor([[[3. , 1. , 3.5]]])

    See docs/pooling.md.
    """
    k = _ntuple(kernel_size, 1, "avg_pool1d")[0]
    s = k if stride is None or stride == [] else _ntuple(stride, 1, "avg_pool1d")[0]
    return avg_pool2d(input.unsqueeze(-2), (1, k), (1, s), (0, _ntuple(padding, 1, "avg_pool1d")[0]), ceil_mode,
                      count_include_pad).squeeze(-2)


def adaptive_avg_pool1d(input, output_size):
    """Adaptive 1-D average pooling: the mean over ``output_size`` bins covering the sequence.

    Formula: bin i covers [floor(i in / out), ceil((i + 1) in / out)) of each dimension, so any output size works

    Args:
        input (Tensor): (N, C, L) or (C, L).
        output_size (int): the number of bins.

    Shape:
        input (N, C, L), output (N, C, output_size).

    >>> import minidl, minidl.nn.functional as F
    >>> x = minidl.tensor([[[1.0, 5, 2, 0, 3, 4]]])
    >>> F.adaptive_avg_pool1d(x, 4)
    tensor([[[3. , 3.5, 1.5, 3.5]]])

    See docs/pooling.md.
    """
    size = _ntuple(output_size, 1, "adaptive_avg_pool1d")[0]
    return adaptive_avg_pool2d(input.unsqueeze(-2), (1, size)).squeeze(-2)


def adaptive_max_pool1d(input, output_size, return_indices=False):
    """Adaptive 1-D max pooling: the maximum over ``output_size`` bins covering the sequence.

    Formula: bin i covers [floor(i in / out), ceil((i + 1) in / out)) of each dimension, so any output size works

    Args:
        input (Tensor): (N, C, L) or (C, L).
        output_size (int): the number of bins.
        return_indices (bool): also return the argmax indices into L. Default: False.

    Shape:
        input (N, C, L), output (N, C, output_size).

    >>> import minidl, minidl.nn.functional as F
    >>> x = minidl.tensor([[[1.0, 5, 2, 0, 3, 4]]])
    >>> F.adaptive_max_pool1d(x, 4)
    tensor([[[5., 5., 3., 4.]]])

    See docs/pooling.md.
    """
    size = _ntuple(output_size, 1, "adaptive_max_pool1d")[0]
    out = adaptive_max_pool2d(input.unsqueeze(-2), (1, size), return_indices)
    return tuple(o.squeeze(-2) for o in out) if return_indices else out.squeeze(-2)


def avg_pool3d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None):
    """3-D average pooling: the mean of each (kd, kh, kw) window.

    Formula: y = (1 / (kd kh kw)) * sum over the window;
             out = floor((in + 2 p - d (k - 1) - 1) / s) + 1 (ceil with ceil_mode) with d = 1

    Args:
        input (Tensor): (N, C, D, H, W) or (C, D, H, W).
        kernel_size (int or tuple): window size.
        stride (int or tuple, optional): window step. Default: None (= kernel_size).
        padding (int or tuple): implicit zero padding on both sides. Default: 0.
        ceil_mode (bool): round the output size up (a last partial window). Default: False.
        count_include_pad (bool): count padded zeros in the divisor. Default: True.
        divisor_override (int, optional): divide every window sum by this instead. Default: None.

    Shape:
        input (N, C, D, H, W), output (N, C, D_out, H_out, W_out).

    >>> import minidl, minidl.nn.functional as F
    >>> x = minidl.arange(8.0).reshape(1, 1, 2, 2, 2)
    >>> F.avg_pool3d(x, 2)
    tensor([[[[[3.5]]]]])

    See docs/pooling.md.
    """
    kernel = _ntuple(kernel_size, 3, "avg_pool3d")
    stride = kernel if stride is None or stride == [] else _ntuple(stride, 3, "avg_pool3d")
    return _unbatched(lambda x: apply(_pool.AvgPoolNd, x, kernel_size=kernel, stride=stride,
                                      padding=_ntuple(padding, 3, "avg_pool3d"), ceil_mode=bool(ceil_mode),
                                      count_include_pad=bool(count_include_pad), divisor_override=divisor_override),
                      input, 3)


def _max_pool_nd(input, kernel_size, stride, padding, dilation, ceil_mode, return_indices, n, name):
    kernel = _ntuple(kernel_size, n, name)
    stride = kernel if stride is None or stride == [] else _ntuple(stride, n, name)

    def run(x):
        fn = _pool.MaxPoolNd()
        out = apply(fn, x, kernel_size=kernel, stride=stride, padding=_ntuple(padding, n, name),
                    dilation=_ntuple(dilation, n, name), ceil_mode=bool(ceil_mode))
        return (out, Tensor._wrap(fn.indices)) if return_indices else out

    return _unbatched(run, input, n)


def max_pool3d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    """3-D max pooling: the largest value of each (kd, kh, kw) window.

    Formula: y = max over the window at (d s - p, h s - p, w s - p);
             out = floor((in + 2 p - d (k - 1) - 1) / s) + 1 (ceil with ceil_mode)

    Args:
        input (Tensor): (N, C, D, H, W) or (C, D, H, W).
        kernel_size (int or tuple): window size.
        stride (int or tuple, optional): window step. Default: None (= kernel_size).
        padding (int or tuple): implicit -inf padding on both sides (at most half the kernel). Default: 0.
        dilation (int or tuple): spacing between window taps. Default: 1.
        ceil_mode (bool): round the output size up (a last partial window). Default: False.
        return_indices (bool): also return the flat index of each maximum in its input plane. Default: False.

    Shape:
        input (N, C, D, H, W), output (N, C, D_out, H_out, W_out).

    >>> import minidl, minidl.nn.functional as F
    >>> x = minidl.arange(8.0).reshape(1, 1, 2, 2, 2)
    >>> F.max_pool3d(x, 2)
    tensor([[[[[7.]]]]])

    See docs/pooling.md.
    """
    return _max_pool_nd(input, kernel_size, stride, padding, dilation, ceil_mode, return_indices, 3, "max_pool3d")


def _max_unpool(input, indices, kernel_size, stride, padding, output_size, n):
    name = f"max_unpool{n}d"
    kernel = _ntuple(kernel_size, n, name)
    stride = kernel if stride is None or stride == [] else _ntuple(stride, n, name)
    padding = _ntuple(padding, n, name)
    if output_size is None:
        size = tuple((i - 1) * s - 2 * p + k for i, s, p, k in zip(input.shape[-n:], stride, padding, kernel))
    else:
        size = tuple(int(v) for v in tuple(output_size)[-n:])  # a leading (N, C) is ignored
        if len(size) != n:
            raise ValueError(f"{name}: output_size must have {n} (or {n + 2}) entries, got {output_size}")
    idx = indices.data if isinstance(indices, Tensor) else np.asarray(indices)
    if input.ndim == n + 1:  # unbatched (C, *S)
        return apply(_pool.MaxUnpool, input.unsqueeze(0), idx[None], output_size=size).squeeze(0)
    if input.ndim != n + 2 or tuple(idx.shape) != input.shape:
        raise ValueError(f"{name}: expected a {n + 2}-D input and indices of its shape, got {input.shape} "
                         f"and {tuple(idx.shape)}")
    return apply(_pool.MaxUnpool, input, idx, output_size=size)


def max_unpool1d(input, indices, kernel_size, stride=None, padding=0, output_size=None):
    """Partial inverse of max_pool1d: each value goes back to its argmax position, zeros elsewhere.

    Formula: y[n, c, indices[n, c, l]] = x[n, c, l]; L_out = (L - 1) s - 2p + k

    Args:
        input (Tensor): (N, C, L) pooled values.
        indices (Tensor): the indices returned by the max pool (same shape as input).
        kernel_size (int or tuple): the pool's window size.
        stride (int or tuple, optional): the pool's stride. Default: None (= kernel_size).
        padding (int or tuple): the pool's padding. Default: 0.
        output_size (tuple, optional): the exact output size (to undo a pool that dropped a remainder). Default: None.

    Shape:
        input (N, C, L), output (N, C, L_out).

    >>> import minidl, minidl.nn.functional as F
    >>> x = minidl.tensor([[[1.0, 5, 2, 0, 3, 4]]])
    >>> y, idx = F.max_pool1d(x, 2, return_indices=True)
    >>> F.max_unpool1d(y, idx, 2)
    tensor([[[0., 5., 2., 0., 0., 4.]]])

    See docs/pooling.md.
    """
    return _max_unpool(input, indices, kernel_size, stride, padding, output_size, 1)


def max_unpool2d(input, indices, kernel_size, stride=None, padding=0, output_size=None):
    """Partial inverse of max_pool2d: each value goes back to its argmax position, zeros elsewhere.

    Formula: y[n, c].flat[indices[n, c, i, j]] = x[n, c, i, j]; H_out = (H - 1) s - 2p + k

    Args:
        input (Tensor): (N, C, H, W) pooled values.
        indices (Tensor): the indices returned by the max pool (same shape as input).
        kernel_size (int or tuple): the pool's window size.
        stride (int or tuple, optional): the pool's stride. Default: None (= kernel_size).
        padding (int or tuple): the pool's padding. Default: 0.
        output_size (tuple, optional): the exact output size (to undo a pool that dropped a remainder). Default: None.

    Shape:
        input (N, C, H, W), output (N, C, H_out, W_out).

    >>> import minidl, minidl.nn.functional as F
    >>> x = minidl.tensor([[[[1.0, 5, 2, 0], [3, 4, 8, 1], [0, 2, 6, 7], [9, 1, 3, 2]]]])
    >>> y, idx = F.max_pool2d(x, 2, return_indices=True)
    >>> F.max_unpool2d(y, idx, 2)
    tensor([[[[0., 5., 0., 0.],
              [0., 0., 8., 0.],
              [0., 0., 0., 7.],
              [9., 0., 0., 0.]]]])

    See docs/pooling.md.
    """
    return _max_unpool(input, indices, kernel_size, stride, padding, output_size, 2)


def max_unpool3d(input, indices, kernel_size, stride=None, padding=0, output_size=None):
    """Partial inverse of max_pool3d: each value goes back to its argmax position, zeros elsewhere.

    Formula: y[n, c].flat[indices] = x; D_out = (D - 1) s - 2p + k per dimension

    Args:
        input (Tensor): (N, C, D, H, W) pooled values.
        indices (Tensor): the indices returned by the max pool (same shape as input).
        kernel_size (int or tuple): the pool's window size.
        stride (int or tuple, optional): the pool's stride. Default: None (= kernel_size).
        padding (int or tuple): the pool's padding. Default: 0.
        output_size (tuple, optional): the exact output size (to undo a pool that dropped a remainder). Default: None.

    Shape:
        input (N, C, D, H, W), output (N, C, D_out, H_out, W_out).

    >>> import minidl, minidl.nn.functional as F
    >>> y, idx = F.max_pool3d(minidl.arange(8.0).reshape(1, 1, 2, 2, 2), 2, return_indices=True)
    >>> F.max_unpool3d(y, idx, 2).flatten()
    tensor([0., 0., 0., 0., 0., 0., 0., 7.])

    See docs/pooling.md.
    """
    return _max_unpool(input, indices, kernel_size, stride, padding, output_size, 3)


_INTERPOLATE_DIMS = {"linear": 1, "bilinear": 2, "bicubic": 2, "trilinear": 3}


def interpolate(input, size=None, scale_factor=None, mode="nearest", align_corners=None,
                recompute_scale_factor=None, antialias=False):
    """Resize the spatial dimensions of (N, C, *S) by nearest, (bi/tri)linear, bicubic or area sampling.

    Formula: output pixel i samples the input at src = (i + 0.5) / scale - 0.5 (align_corners=False) or
             i (in - 1) / (out - 1) (align_corners=True); linear modes weigh the 2 nearest taps per
             dimension, bicubic 4 (a = -0.75), nearest takes floor(i / scale). Rules: minidl/functions/resample.py.

    Args:
        input (Tensor): (N, C, L), (N, C, H, W) or (N, C, D, H, W).
        size (int or tuple, optional): the output spatial size. Default: None.
        scale_factor (float or tuple, optional): out = floor(in * scale_factor). Default: None.
            Give exactly one of size and scale_factor.
        mode (str): 'nearest', 'nearest-exact', 'linear', 'bilinear', 'bicubic', 'trilinear' or 'area'.
            Default: 'nearest'.
        align_corners (bool, optional): linear/bicubic modes: map corner pixel centres onto each other.
            Default: None (False).
        recompute_scale_factor (bool, optional): use out/in rather than scale_factor for the sampling. Default: None.
        antialias (bool): PyTorch's antialiased downsampling. Default: False.

    Shape:
        input (N, C, *S), output (N, C, *S_out).

    >>> import minidl, minidl.nn.functional as F
    >>> F.interpolate(minidl.tensor([[[1.0, 2.0, 4.0]]]), scale_factor=2)
    tensor([[[1., 1., 2., 2., 4., 4.]]])
    >>> F.interpolate(minidl.tensor([[[1.0, 2.0, 4.0]]]), size=5, mode='linear', align_corners=True)
    tensor([[[1. , 1.5, 2. , 3. , 4. ]]])
    >>> F.interpolate(minidl.ones(1, 1, 2, 2), scale_factor=2, mode='bilinear').shape
    (1, 1, 4, 4)

    See docs/convolution.md.
    """
    dims = input.ndim - 2
    if dims < 1 or dims > 3:
        raise ValueError(f"interpolate: expected a 3-D, 4-D or 5-D input, got shape {input.shape}")
    if mode not in ("nearest", "nearest-exact", "area", "linear", "bilinear", "bicubic", "trilinear"):
        raise ValueError(f"interpolate: unknown mode {mode!r}")
    if mode in _INTERPOLATE_DIMS and _INTERPOLATE_DIMS[mode] != dims:
        raise ValueError(f"interpolate: mode {mode!r} expects a {_INTERPOLATE_DIMS[mode] + 2}-D input, "
                         f"got shape {input.shape}")
    if align_corners is not None and mode not in _INTERPOLATE_DIMS:
        raise ValueError("interpolate: align_corners option can only be set with the interpolating modes: "
                         "linear | bilinear | bicubic | trilinear")
    if antialias and mode not in ("bilinear", "bicubic"):
        raise ValueError(f"interpolate: antialias=True works with modes bilinear and bicubic, got {mode!r}")
    if (size is None) == (scale_factor is None):
        raise ValueError("interpolate: give exactly one of size and scale_factor")
    in_sizes = input.shape[2:]
    if size is not None:
        out_sizes = _ntuple(size, dims, "interpolate size")
        scales = (None,) * dims
    else:
        factors = tuple(float(f) for f in scale_factor) if isinstance(scale_factor, (tuple, list)) \
            else (float(scale_factor),) * dims
        if len(factors) != dims:
            raise ValueError(f"interpolate: scale_factor must have {dims} entries, got {scale_factor}")
        out_sizes = tuple(int(np.floor(s * f)) for s, f in zip(in_sizes, factors))
        scales = (None,) * dims if recompute_scale_factor else factors
    if min(out_sizes) < 1:
        raise ValueError(f"interpolate: output size {out_sizes} must be positive")
    taps = []
    for n_in, n_out, sf in zip(in_sizes, out_sizes, scales):
        if mode in ("nearest", "nearest-exact"):
            taps.append(_resample.nearest_taps(n_in, n_out, sf, exact=mode == "nearest-exact"))
        elif mode == "area":
            taps.append(_resample.area_taps(n_in, n_out))
        elif antialias:
            taps.append(_resample.antialias_taps(n_in, n_out, sf, bool(align_corners), cubic=mode == "bicubic"))
        elif mode == "bicubic":
            taps.append(_resample.cubic_taps(n_in, n_out, sf, bool(align_corners)))
        else:
            taps.append(_resample.linear_taps(n_in, n_out, sf, bool(align_corners)))
    return apply(_resample.Resample, input, taps=tuple(taps))


def pixel_shuffle(input, upscale_factor):
    """Rearrange channels into space (sub-pixel convolution, Shi et al. 2016).

    Formula: y[n, c, h r + i, w r + j] = x[n, c r^2 + i r + j, h, w]

    Args:
        input (Tensor): (*, C r^2, H, W).
        upscale_factor (int): r.

    Shape:
        input (*, C r^2, H, W), output (*, C, H r, W r).

    >>> import minidl, minidl.nn.functional as F
    >>> F.pixel_shuffle(minidl.arange(4.0).reshape(1, 4, 1, 1), 2)
    tensor([[[[0., 1.],
              [2., 3.]]]])

    See docs/convolution.md.
    """
    r = int(upscale_factor)
    *lead, c, h, w = input.shape
    if c % (r * r):
        raise ValueError(f"pixel_shuffle: channels {c} must be divisible by upscale_factor^2 = {r * r}")
    n = len(lead)
    x = input.reshape(*lead, c // (r * r), r, r, h, w)
    x = x.permute(*range(n), n, n + 3, n + 1, n + 4, n + 2)  # (*, C, H, r, W, r)
    return x.reshape(*lead, c // (r * r), h * r, w * r)


def pixel_unshuffle(input, downscale_factor):
    """Rearrange space into channels: the inverse of pixel_shuffle.

    Formula: y[n, c r^2 + i r + j, h, w] = x[n, c, h r + i, w r + j]

    Args:
        input (Tensor): (*, C, H r, W r).
        downscale_factor (int): r.

    Shape:
        input (*, C, H r, W r), output (*, C r^2, H, W).

    >>> import minidl, minidl.nn.functional as F
    >>> F.pixel_unshuffle(minidl.arange(4.0).reshape(1, 1, 2, 2), 2).flatten()
    tensor([0., 1., 2., 3.])

    See docs/convolution.md.
    """
    r = int(downscale_factor)
    *lead, c, hr, wr = input.shape
    if hr % r or wr % r:
        raise ValueError(f"pixel_unshuffle: height {hr} and width {wr} must be divisible by {r}")
    n = len(lead)
    x = input.reshape(*lead, c, hr // r, r, wr // r, r)
    x = x.permute(*range(n), n, n + 2, n + 4, n + 1, n + 3)  # (*, C, r, r, H, W)
    return x.reshape(*lead, c * r * r, hr // r, wr // r)


def unfold(input, kernel_size, dilation=1, padding=0, stride=1):
    """Extract sliding blocks as columns (im2col): the matrix that turns convolution into a GEMM.

    Formula: column l holds x[n, :, i s + u d - p, j s + v d - p] for all (c, u, v) of block l = (i, j);
             conv2d(x, w) = (w.reshape(C_out, -1) @ unfold(x)).reshape(N, C_out, OH, OW)

    Args:
        input (Tensor): (N, C, H, W).
        kernel_size (int or tuple): block size (kh, kw).
        dilation (int or tuple): Default: 1.
        padding (int or tuple): zeros on both sides. Default: 0.
        stride (int or tuple): Default: 1.

    Shape:
        input (N, C, H, W), output (N, C kh kw, L) with L = OH * OW blocks.

    >>> import minidl, minidl.nn.functional as F
    >>> F.unfold(minidl.arange(9.0).reshape(1, 1, 3, 3), 2)
    tensor([[[0., 1., 3., 4.],
             [1., 2., 4., 5.],
             [3., 4., 6., 7.],
             [4., 5., 7., 8.]]])

    See docs/convolution.md.
    """
    if input.ndim == 3:
        return unfold(input.unsqueeze(0), kernel_size, dilation, padding, stride).squeeze(0)
    if input.ndim != 4:
        raise ValueError(f"unfold: expected a 3-D or 4-D input, got shape {input.shape}")
    return apply(_resample.Unfold, input, kernel_size=pair(kernel_size, "unfold"), dilation=pair(dilation, "unfold"),
                 padding=pair(padding, "unfold"), stride=pair(stride, "unfold"))


def fold(input, output_size, kernel_size, dilation=1, padding=0, stride=1):
    """Sum columns of sliding blocks back into an image (col2im): the adjoint of unfold.

    Formula: y[n, c, i s + u d - p, j s + v d - p] += x[n, (c, u, v), l] for every block l = (i, j)

    Args:
        input (Tensor): (N, C kh kw, L).
        output_size (int or tuple): (H, W) of the result.
        kernel_size (int or tuple): block size.
        dilation (int or tuple): Default: 1.
        padding (int or tuple): Default: 0.
        stride (int or tuple): Default: 1.

    Shape:
        input (N, C kh kw, L), output (N, C, H, W).

    >>> import minidl, minidl.nn.functional as F
    >>> F.fold(F.unfold(minidl.ones(1, 1, 3, 3), 2), (3, 3), 2)
    tensor([[[[1., 2., 1.],
              [2., 4., 2.],
              [1., 2., 1.]]]])

    See docs/convolution.md.
    """
    if input.ndim == 2:
        return fold(input.unsqueeze(0), output_size, kernel_size, dilation, padding, stride).squeeze(0)
    if input.ndim != 3:
        raise ValueError(f"fold: expected a 2-D or 3-D input, got shape {input.shape}")
    return apply(_resample.Fold, input, output_size=pair(output_size, "fold"), kernel_size=pair(kernel_size, "fold"),
                 dilation=pair(dilation, "fold"), padding=pair(padding, "fold"), stride=pair(stride, "fold"))


def adaptive_avg_pool3d(input, output_size):
    """Adaptive 3-D average pooling: the mean over a (OD, OH, OW) grid of bins.

    Formula: bin i covers [floor(i in / out), ceil((i + 1) in / out)) of each dimension, so any output size works

    Args:
        input (Tensor): (N, C, D, H, W) or (C, D, H, W).
        output_size (int or tuple): (OD, OH, OW); an int for all three.

    Shape:
        input (N, C, D, H, W), output (N, C, OD, OH, OW).

    >>> import minidl, minidl.nn.functional as F
    >>> x = minidl.arange(8.0).reshape(1, 1, 2, 2, 2)
    >>> F.adaptive_avg_pool3d(x, 1)
    tensor([[[[[3.5]]]]])

    See docs/pooling.md.
    """
    sizes = input.shape[-3:]
    if isinstance(output_size, (tuple, list)):
        out = tuple(s if o is None else int(o) for s, o in zip(sizes, output_size))
    else:
        out = (int(output_size),) * 3
    if input.ndim not in (4, 5):
        raise ValueError(f"adaptive_avg_pool3d: expected a 4-D or 5-D input, got shape {input.shape}")
    taps = tuple(_resample.area_taps(s, o) for s, o in zip(sizes, out))
    return apply(_resample.Resample, input, taps=taps)


def adaptive_max_pool3d(input, output_size, return_indices=False):
    """Adaptive 3-D max pooling: the maximum over a (OD, OH, OW) grid of bins.

    Formula: bin i covers [floor(i in / out), ceil((i + 1) in / out)) of each dimension, so any output size works

    Args:
        input (Tensor): (N, C, D, H, W) or (C, D, H, W).
        output_size (int or tuple): (OD, OH, OW); an int for all three.
        return_indices (bool): also return the flat argmax indices into D*H*W. Default: False.

    Shape:
        input (N, C, D, H, W), output (N, C, OD, OH, OW).

    >>> import minidl, minidl.nn.functional as F
    >>> x = minidl.arange(8.0).reshape(1, 1, 2, 2, 2)
    >>> F.adaptive_max_pool3d(x, 1)
    tensor([[[[[7.]]]]])

    See docs/pooling.md.
    """
    sizes = input.shape[-3:]
    if isinstance(output_size, (tuple, list)):
        out = tuple(s if o is None else int(o) for s, o in zip(sizes, output_size))
    else:
        out = (int(output_size),) * 3

    def run(x):
        fn = _pool.AdaptiveMaxPoolNd()
        y = apply(fn, x, output_size=out)
        return (y, Tensor._wrap(fn.indices)) if return_indices else y

    return _unbatched(run, input, 3)


def adaptive_max_pool3d_with_indices(input, output_size, return_indices=False):
    """adaptive_max_pool3d returning (output, indices).

    Formula: as adaptive_max_pool3d

    Args:
        input, output_size: as adaptive_max_pool3d.
        return_indices (bool): ignored (as PyTorch); indices are always returned. Default: False.

    Shape:
        input (N, C, D, H, W), output and indices (N, C, OD, OH, OW).

    >>> import minidl, minidl.nn.functional as F
    >>> F.adaptive_max_pool3d_with_indices(minidl.arange(8.0).reshape(1, 1, 2, 2, 2), 1)[1]
    tensor([[[[[7]]]]])

    See docs/pooling.md.
    """
    return adaptive_max_pool3d(input, output_size, return_indices=True)


def lp_pool1d(input, norm_type, kernel_size, stride=None, ceil_mode=False):
    """1-D power-average pooling: the p-norm of each window (no padding, as PyTorch).

    Formula: y = (sum_{window} x^p)^(1/p); p = 1 is sum pooling, p -> inf max pooling

    Args:
        input (Tensor): (N, C, L) or (C, L).
        norm_type (float): p.
        kernel_size (int or tuple): window size.
        stride (int or tuple, optional): window step. Default: None (= kernel_size).
        ceil_mode (bool): round the output size up. Default: False.

    Shape:
        input (N, C, L), output (N, C, L_out).

    >>> import minidl, minidl.nn.functional as F
    >>> F.lp_pool1d(minidl.tensor([[[3.0, 4.0, 1.0, 1.0]]]), 2, 2)
    tensor([[[5.    , 1.4142]]])

    See docs/pooling.md.
    """
    k = _ntuple(kernel_size, 1, "lp_pool1d")[0]
    return (avg_pool1d(input ** norm_type, k, stride, 0, ceil_mode) * k) ** (1.0 / norm_type)


def lp_pool2d(input, norm_type, kernel_size, stride=None, ceil_mode=False):
    """2-D power-average pooling: the p-norm of each window (no padding, as PyTorch).

    Formula: y = (sum_{window} x^p)^(1/p)

    Args:
        input (Tensor): (N, C, H, W) or (C, H, W).
        norm_type (float): p.
        kernel_size (int or tuple): window size.
        stride (int or tuple, optional): window step. Default: None (= kernel_size).
        ceil_mode (bool): round the output size up. Default: False.

    Shape:
        input (N, C, H, W), output (N, C, H_out, W_out).

    >>> import minidl, minidl.nn.functional as F
    >>> F.lp_pool2d(minidl.ones(1, 1, 4, 4), 2, 2)
    tensor([[[[2., 2.],
              [2., 2.]]]])

    See docs/pooling.md.
    """
    kh, kw = pair(kernel_size, "lp_pool2d")
    return (avg_pool2d(input ** norm_type, (kh, kw), stride, 0, ceil_mode) * (kh * kw)) ** (1.0 / norm_type)


def lp_pool3d(input, norm_type, kernel_size, stride=None, ceil_mode=False):
    """3-D power-average pooling: the p-norm of each window (no padding, as PyTorch).

    Formula: y = (sum_{window} x^p)^(1/p)

    Args:
        input (Tensor): (N, C, D, H, W) or (C, D, H, W).
        norm_type (float): p.
        kernel_size (int or tuple): window size.
        stride (int or tuple, optional): window step. Default: None (= kernel_size).
        ceil_mode (bool): round the output size up. Default: False.

    Shape:
        input (N, C, D, H, W), output (N, C, D_out, H_out, W_out).

    >>> import minidl, minidl.nn.functional as F
    >>> F.lp_pool3d(minidl.ones(1, 1, 2, 2, 2), 1, 2)
    tensor([[[[[8.]]]]])

    See docs/pooling.md.
    """
    kernel = _ntuple(kernel_size, 3, "lp_pool3d")
    return (avg_pool3d(input ** norm_type, kernel, stride, 0, ceil_mode) * int(np.prod(kernel))) ** (1.0 / norm_type)


def max_pool1d_with_indices(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
                            return_indices=False):
    """max_pool1d returning (output, indices) (PyTorch's name for return_indices=True).

    Formula: as max_pool1d

    Args:
        input, kernel_size, stride, padding, dilation, ceil_mode: as max_pool1d.
        return_indices (bool): ignored (as PyTorch); indices are always returned. Default: False.

    Shape:
        input (N, C, L), output and indices (N, C, L_out).

    >>> import minidl, minidl.nn.functional as F
    >>> x = minidl.tensor([[[1.0, 5, 2, 0, 3, 4]]])
    >>> F.max_pool1d_with_indices(x, 2)[1]
    tensor([[[1, 2, 5]]])

    See docs/pooling.md.
    """
    return max_pool1d(input, kernel_size, stride, padding, dilation, ceil_mode, return_indices=True)


def max_pool2d_with_indices(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
                            return_indices=False):
    """max_pool2d returning (output, indices) (PyTorch's name for return_indices=True).

    Formula: as max_pool2d

    Args:
        input, kernel_size, stride, padding, dilation, ceil_mode: as max_pool2d.
        return_indices (bool): ignored (as PyTorch); indices are always returned. Default: False.

    Shape:
        input (N, C, H, W), output and indices (N, C, H_out, W_out).

    >>> import minidl, minidl.nn.functional as F
    >>> x = minidl.tensor([[[[1.0, 5, 2, 0], [3, 4, 8, 1], [0, 2, 6, 7], [9, 1, 3, 2]]]])
    >>> F.max_pool2d_with_indices(x, 2)[1]
    tensor([[[[ 1,  6],
              [12, 11]]]])

    See docs/pooling.md.
    """
    return max_pool2d(input, kernel_size, stride, padding, dilation, ceil_mode, return_indices=True)


def max_pool3d_with_indices(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
                            return_indices=False):
    """max_pool3d returning (output, indices) (PyTorch's name for return_indices=True).

    Formula: as max_pool3d

    Args:
        input, kernel_size, stride, padding, dilation, ceil_mode: as max_pool3d.
        return_indices (bool): ignored (as PyTorch); indices are always returned. Default: False.

    Shape:
        input (N, C, D, H, W), output and indices (N, C, D_out, H_out, W_out).

    >>> import minidl, minidl.nn.functional as F
    >>> F.max_pool3d_with_indices(minidl.arange(8.0).reshape(1, 1, 2, 2, 2), 2)[1]
    tensor([[[[[7]]]]])

    See docs/pooling.md.
    """
    return max_pool3d(input, kernel_size, stride, padding, dilation, ceil_mode, return_indices=True)


def adaptive_max_pool1d_with_indices(input, output_size, return_indices=False):
    """adaptive_max_pool1d returning (output, indices).

    Formula: as adaptive_max_pool1d

    Args:
        input, output_size: as adaptive_max_pool1d.
        return_indices (bool): ignored (as PyTorch); indices are always returned. Default: False.

    Shape:
        input (N, C, L), output and indices (N, C, output_size).

    >>> import minidl, minidl.nn.functional as F
    >>> x = minidl.tensor([[[1.0, 5, 2, 0, 3, 4]]])
    >>> F.adaptive_max_pool1d_with_indices(x, 2)[1]
    tensor([[[1, 5]]])

    See docs/pooling.md.
    """
    return adaptive_max_pool1d(input, output_size, return_indices=True)


def adaptive_max_pool2d_with_indices(input, output_size, return_indices=False):
    """adaptive_max_pool2d returning (output, indices).

    Formula: as adaptive_max_pool2d

    Args:
        input, output_size: as adaptive_max_pool2d.
        return_indices (bool): ignored (as PyTorch); indices are always returned. Default: False.

    Shape:
        input (N, C, H, W), output and indices (N, C, OH, OW).

    >>> import minidl, minidl.nn.functional as F
    >>> x = minidl.tensor([[[[1.0, 5, 2, 0], [3, 4, 8, 1], [0, 2, 6, 7], [9, 1, 3, 2]]]])
    >>> F.adaptive_max_pool2d_with_indices(x, 1)[1]
    tensor([[[[12]]]])

    See docs/pooling.md.
    """
    return adaptive_max_pool2d(input, output_size, return_indices=True)


def upsample(input, size=None, scale_factor=None, mode="nearest", align_corners=None):
    """The deprecated name of interpolate (same arguments, same result).

    Formula: as interpolate

    Args:
        input, size, scale_factor, mode, align_corners: as interpolate.

    Shape:
        input (N, C, *S), output (N, C, *S_out).

    >>> import minidl, minidl.nn.functional as F
    >>> F.upsample(minidl.tensor([[[1.0, 2.0]]]), scale_factor=2)
    tensor([[[1., 1., 2., 2.]]])

    See docs/convolution.md.
    """
    return interpolate(input, size, scale_factor, mode, align_corners)


def upsample_nearest(input, size=None, scale_factor=None):
    """interpolate with mode='nearest' (deprecated in PyTorch).

    Formula: y[i] = x[floor(i / scale)]

    Args:
        input (Tensor): (N, C, *S).
        size (int or tuple, optional): output size. Default: None.
        scale_factor (float, optional): Default: None. Give exactly one of the two.

    Shape:
        input (N, C, *S), output (N, C, *S_out).

    >>> import minidl, minidl.nn.functional as F
    >>> F.upsample_nearest(minidl.tensor([[[[1.0, 2.0]]]]), scale_factor=2)
    tensor([[[[1., 1., 2., 2.],
              [1., 1., 2., 2.]]]])

    See docs/convolution.md.
    """
    return interpolate(input, size, scale_factor, mode="nearest")


def upsample_bilinear(input, size=None, scale_factor=None):
    """interpolate with mode='bilinear' and align_corners=True (deprecated in PyTorch).

    Formula: src = i (in - 1) / (out - 1), weights of the 2 x 2 nearest pixels

    Args:
        input (Tensor): (N, C, H, W).
        size (int or tuple, optional): output size. Default: None.
        scale_factor (float, optional): Default: None. Give exactly one of the two.

    Shape:
        input (N, C, H, W), output (N, C, H_out, W_out).

    >>> import minidl, minidl.nn.functional as F
    >>> F.upsample_bilinear(minidl.tensor([[[[0.0, 3.0]]]]), size=(1, 4))
    tensor([[[[0., 1., 2., 3.]]]])

    See docs/convolution.md.
    """
    return interpolate(input, size, scale_factor, mode="bilinear", align_corners=True)


def channel_shuffle(input, groups):
    """Interleave the channels of g groups (ShuffleNet), so the next grouped conv mixes groups.

    Formula: view channels as (g, C/g), transpose to (C/g, g), flatten: y[:, k g + i] = x[:, i (C/g) + k]

    Args:
        input (Tensor): (N, C, *).
        groups (int): g, dividing C.

    Shape:
        input (N, C, *), output (N, C, *).

    >>> import minidl, minidl.nn.functional as F
    >>> F.channel_shuffle(minidl.arange(6.0).reshape(1, 6, 1, 1), 2).flatten()
    tensor([0., 3., 1., 4., 2., 5.])

    See docs/grouped_depthwise.md.
    """
    n, c = input.shape[:2]
    if c % groups:
        raise ValueError(f"channel_shuffle: channels {c} must be divisible by groups={groups}")
    rest = input.shape[2:]
    x = input.reshape(n, groups, c // groups, *rest).transpose(1, 2)
    return x.reshape(n, c, *rest)


def scaled_dot_product_attention(query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None,
                                 enable_gqa=False):
    """Attention (Vaswani et al. 2017): each query takes a softmax-weighted mean of the values.

    Formula: softmax(q k^T * scale + mask) v, scale = 1/sqrt(E) unless given; attn_mask bool (True = may attend)
             or float (added to the scores); is_causal: query i sees keys j <= i. Backward:
             minidl/functions/attention.py

    Args:
        query (Tensor): (..., Hq, L, E).
        key (Tensor): (..., H, S, E).
        value (Tensor): (..., H, S, Ev).
        attn_mask (Tensor, optional): broadcast to (..., L, S). Default: None.
        dropout_p (float): dropout on the attention weights. Default: 0.0.
        is_causal (bool): a causal mask (not together with attn_mask). Default: False.
        scale (float, optional): Default: None (1/sqrt(E)).
        enable_gqa (bool): Hq a multiple of H, query heads share key/value heads in groups. Default: False.

    Shape:
        query (..., L, E), key (..., S, E), value (..., S, Ev), output (..., L, Ev).

    >>> import minidl, minidl.nn.functional as F
    >>> q = minidl.tensor([[[1.0, 0.0], [0.0, 1.0]]])
    >>> v = minidl.tensor([[[1.0, 2.0], [3.0, 4.0]]])
    >>> F.scaled_dot_product_attention(q, q, v, is_causal=True)
    tensor([[[1.    , 2.    ],
             [2.3395, 3.3395]]])

    See docs/attention.md.
    """
    if is_causal and attn_mask is not None:
        raise RuntimeError("scaled_dot_product_attention: explicit attn_mask should not be set when is_causal=True")
    if query.ndim < 2 or key.ndim != query.ndim or value.ndim != query.ndim:
        raise ValueError(f"scaled_dot_product_attention: query, key and value must have the same number of "
                         f"(>= 2) dimensions, got {query.shape}, {key.shape}, {value.shape}")
    if query.shape[-1] != key.shape[-1] or key.shape[-2] != value.shape[-2]:
        raise ValueError(f"scaled_dot_product_attention: query {query.shape}, key {key.shape} and value "
                         f"{value.shape} do not fit (E of query and key, S of key and value)")
    if query.ndim >= 3 and query.shape[-3] != key.shape[-3]:
        hq, hk = query.shape[-3], key.shape[-3]
        if not enable_gqa or hq % hk or key.shape[-3] != value.shape[-3]:
            raise ValueError(f"scaled_dot_product_attention: {hq} query heads and {hk} key/value heads need "
                             f"enable_gqa=True and a multiple")
    length, source = query.shape[-2], key.shape[-2]
    scale = float(1.0 / np.sqrt(query.shape[-1]) if scale is None else scale)  # a Python float keeps float32
    xp = get_array_module(query.data)
    bias = None
    if is_causal:
        allowed = np.tril(np.ones((length, source), dtype=bool))
        bias = Tensor._wrap(xp.asarray(np.where(allowed, 0.0, -np.inf).astype(query.dtype)))
    elif attn_mask is not None:
        attn_mask = _as_tensor(attn_mask)
        if attn_mask.dtype == np.bool_:
            bias = Tensor._wrap(xp.where(xp.asarray(attn_mask.data), 0.0, -np.inf).astype(query.dtype))
        else:
            bias = attn_mask
    drop = None
    if dropout_p > 0:
        shape = query.shape[:-1] + (source,)
        keep = _random.uniform(xp, shape) >= dropout_p
        drop = keep.astype(query.dtype) / (1 - dropout_p) if dropout_p < 1 else xp.zeros(shape, query.dtype)
    return apply(_attention.ScaledDotProductAttention, query, key, value, bias, scale=scale, drop=drop)


# ----------------------------------------------------------------------------- dropout
def dropout(input, p=0.5, training=True, inplace=False, generator=None):
    """Dropout (Srivastava et al. 2014): zero random elements while training, inverted scaling.

    Formula: y = x * m / (1 - p), m ~ Bernoulli(1 - p) per element, so E[y] = x; identity when not training

    Args:
        input (Tensor): any shape.
        p (float): probability of zeroing an element, in [0, 1]. Default: 0.5.
        training (bool): apply dropout; False returns the input unchanged. Default: True.
        inplace (bool): accepted for PyTorch's signature; a new tensor is returned. Default: False.
        generator (minidl.Generator, optional): the random source. Default: None (the global one).

    Shape:
        input (*), output (*): the same shape.

    >>> import minidl, minidl.nn.functional as F
    >>> g = minidl.manual_seed(0)
    >>> F.dropout(minidl.ones(8), p=0.5)
    tensor([2., 0., 0., 0., 2., 2., 2., 2.])
    >>> F.dropout(minidl.ones(3), p=0.5, training=False)
    tensor([1., 1., 1.])

    See docs/lrn_dropout.md.
    """
    if not 0 <= p <= 1:
        raise ValueError(f"dropout: p must be in [0, 1], got {p}")
    if not training or p == 0:
        return input
    xp = get_array_module(input.data)  # the mask is drawn on the input's device
    keep = _random.uniform(xp, input.shape, generator) >= p
    mask = keep.astype(input.dtype) / (1 - p) if p < 1 else xp.zeros(input.shape, input.dtype)
    return apply(A.MaskMultiply, input, mask)


def dropout2d(input, p=0.5, training=True, inplace=False, generator=None):
    """Spatial dropout (Tompson et al. 2015): zero whole channels while training.

    Formula: y[n, c] = x[n, c] * m[n, c] / (1 - p), m ~ Bernoulli(1 - p) per (sample, channel)

    Args:
        input (Tensor): (N, C, H, W) or (C, H, W).
        p (float): probability of zeroing an element, in [0, 1]. Default: 0.5.
        training (bool): apply dropout; False returns the input unchanged. Default: True.
        inplace (bool): accepted for PyTorch's signature; a new tensor is returned. Default: False.
        generator (minidl.Generator, optional): the random source. Default: None (the global one).

    Shape:
        input (N, C, H, W), output the same.

    >>> import minidl, minidl.nn.functional as F
    >>> g = minidl.manual_seed(0)
    >>> F.dropout2d(minidl.ones(1, 4, 2, 2), p=0.5)[0, :, 0, 0]
    tensor([2., 0., 0., 0.])

    See docs/lrn_dropout.md.
    """
    if not 0 <= p <= 1:
        raise ValueError(f"dropout2d: p must be in [0, 1], got {p}")
    if input.ndim not in (3, 4):
        raise ValueError(f"dropout2d: expected a 3-D or 4-D input, got shape {input.shape}")
    if not training or p == 0:
        return input
    shape = input.shape[:-2] + (1, 1)
    xp = get_array_module(input.data)
    keep = _random.uniform(xp, shape, generator) >= p
    mask = keep.astype(input.dtype) / (1 - p) if p < 1 else xp.zeros(shape, input.dtype)
    return apply(A.MaskMultiply, input, xp.broadcast_to(mask, input.shape))


# ----------------------------------------------------------------------------- padding
def pad(input, pad, mode="constant", value=None):
    """Pad (or, with negative amounts, crop) the last dimensions of a tensor.

    Formula: pad = (left, right) for the last dimension, then (top, bottom) for the one before, ...;
             'reflect' mirrors without the edge (x1 x0 | x0 x1 x2), 'replicate' repeats the edge,
             'circular' wraps around

    Args:
        input (Tensor): any shape with at least len(pad) / 2 dimensions.
        pad (tuple of ints): amounts, last dimension first.
        mode (str): 'constant', 'reflect', 'replicate' or 'circular'. Default: 'constant'.
        value (float, optional): the fill of 'constant'. Default: None (0).

    Shape:
        input (*, D1, ..., Dk), output (*, D1 + pads, ..., Dk + pads).

    >>> import minidl, minidl.nn.functional as F
    >>> x = minidl.tensor([[[1.0, 2.0, 3.0]]])
    >>> F.pad(x, (2, 1))
    tensor([[[0., 0., 1., 2., 3., 0.]]])
    >>> F.pad(x, (2, 1), mode='reflect')
    tensor([[[3., 2., 1., 2., 3., 2.]]])
    >>> F.pad(x, (2, 1), mode='replicate')
    tensor([[[1., 1., 1., 2., 3., 3.]]])
    >>> F.pad(x, (2, 1), mode='circular')
    tensor([[[2., 3., 1., 2., 3., 1.]]])

    See docs/convolution.md.
    """
    return apply(S.Pad, input, pad=tuple(pad), mode=mode, value=0.0 if value is None else value)


# ----------------------------------------------------------------------------- losses
def _reduce(loss, reduction, name):
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    if reduction == "none":
        return loss
    raise ValueError(f"{name}: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def _on_device_of(value, like, name, dtype=None):
    """``value`` as an array on ``like``'s device: a Tensor must already be there (the usual device
    error otherwise); NumPy arrays, lists and numbers are host data and are copied there once."""
    if isinstance(value, Tensor):
        if value.device != like.device:
            raise RuntimeError(f"{name}: expected all tensors on the same device, but found at least two devices, "
                               f"{like.device} and {value.device}; move them with .to({str(like.device)!r})")
        array = value.data
    else:
        xp = get_array_module(like.data)
        array = value if hasattr(value, "dtype") and get_array_module(value) is xp else xp.asarray(np.asarray(value))
    return array if dtype is None else array.astype(dtype, copy=False)


def _check_class_target(name, input, target, ignore_index):
    """Shape and dtype of a class-index target; its values when it lives on the host.

    A target on a GPU is not read back (that would stall every step): there the loss kernels
    themselves turn an out-of-range class into a NaN loss, as PyTorch's CUDA kernels assert
    asynchronously instead of checking on the host.
    """
    if target.dtype.kind not in "iu":
        raise TypeError(f"{name}: target must hold integer class indices (int64) of shape {input.shape[:1] + input.shape[2:]}, "
                        f"or class probabilities of the input's shape {input.shape}; got dtype {target.dtype} "
                        f"and shape {target.shape}")
    expected = input.shape[:1] + input.shape[2:] if input.ndim > 1 else ()
    if target.shape != expected:
        raise ValueError(f"{name}: target has shape {target.shape}, expected {expected} for input of shape {input.shape}")
    if get_array_module(target.data) is not np:
        return
    values = target.data
    classes = input.shape[1] if input.ndim > 1 else input.shape[0]
    valid = values[values != ignore_index]
    if valid.size and (valid.min() < 0 or valid.max() >= classes):
        raise ValueError(f"{name}: target values must be in [0, {classes}) (or ignore_index={ignore_index}), "
                         f"got values from {valid.min()} to {valid.max()}")


def _target_tensor(name, input, target, ignore_index):
    """``target`` as an integer Tensor on ``input``'s device, checked (host data is checked, then moved)."""
    target = target if isinstance(target, Tensor) else Tensor(target)
    _check_class_target(name, input, target, ignore_index)
    if target.device != input.device:
        target = Tensor._wrap(_on_device_of(target.data, input, name))  # host class indices: copied once
    return target


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
    """Softmax cross-entropy of logits against class indices or class probabilities.

    Formula: loss_n = -w[t_n] * log_softmax(x_n)[t_n] = w[t_n] * (logsumexp(x_n) - x_n[t_n]); with label
             smoothing ls the target is (1 - ls) onehot + ls / C; 'mean' divides by the sum of the
             weights of the non-ignored targets. Stable for any logits (log-sum-exp).

    Args:
        input (Tensor): logits (N, C) or (N, C, d1, ...), or (C,).
        target (Tensor): int64 class indices (N,) / (N, d1, ...), or probabilities of input's shape.
        weight (Tensor, optional): (C,) per-class weights. Default: None.
        ignore_index (int): targets with this value add no loss and no count. Default: -100.
        reduction (str): 'none', 'mean' or 'sum' over the elements. Default: 'mean'.
        label_smoothing (float): ls in [0, 1]. Default: 0.0.

    Shape:
        input (N, C), target (N,), output () or (N,) with reduction='none'.

    >>> import minidl, minidl.nn.functional as F
    >>> logits = minidl.tensor([[2.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    >>> target = minidl.tensor([0, 2])
    >>> F.cross_entropy(logits, target, reduction='none')
    tensor([0.2395, 1.0986])
    >>> round(F.cross_entropy(logits, target).item(), 4)
    0.6691
    >>> round(F.cross_entropy(logits, target, label_smoothing=0.1).item(), 4)
    0.7357

    See docs/softmax_cross_entropy.md.
    """
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"cross_entropy: label_smoothing must be in [0, 1], got {label_smoothing}")
    _check_kernel_dtype("cross_entropy", input)
    if isinstance(target, Tensor) and target.dtype.kind == "f" and target.shape == input.shape:
        return _cross_entropy_probabilities(input, target, weight, reduction, label_smoothing)
    target = _target_tensor("cross_entropy", input, target, ignore_index)
    out_shape = target.shape
    logits, flat_target = _classes_last(input, target)
    w = None if weight is None else _on_device_of(weight, input, "cross_entropy", input.dtype)
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
    """Negative log-likelihood: minus the log-probability given to the target class.

    Formula: loss_n = -w[t_n] * input[n, t_n]; 'mean' divides by sum of w[t_n] over non-ignored targets

    Args:
        input (Tensor): log-probabilities (N, C) or (N, C, d1, ...) (log_softmax outputs).
        target (Tensor): int64 class indices (N,) or (N, d1, ...).
        weight (Tensor, optional): (C,) per-class weights. Default: None.
        ignore_index (int): targets with this value add no loss. Default: -100.
        reduction (str): 'none', 'mean' or 'sum' over the elements. Default: 'mean'.

    Shape:
        input (N, C), target (N,), output () or (N,) with reduction='none'.

    >>> import minidl, minidl.nn.functional as F
    >>> logp = F.log_softmax(minidl.tensor([[2.0, 0.0, 0.0], [0.0, 0.0, 0.0]]), dim=1)
    >>> F.nll_loss(logp, minidl.tensor([0, 2]), reduction='none')
    tensor([0.2395, 1.0986])

    See docs/softmax_cross_entropy.md.
    """
    target = _target_tensor("nll_loss", input, target, ignore_index)
    out_shape = target.shape
    logp, flat = _classes_last(input, target)
    xp = get_array_module(logp.data)
    t = flat.data.astype(np.int64)
    valid = t != ignore_index
    safe = xp.where(valid, t, 0)
    w = xp.ones(logp.shape[1], dtype=input.dtype) if weight is None else _on_device_of(weight, input, "nll_loss",
                                                                                        input.dtype)
    # an out-of-range class (possible only for a GPU target, see _check_class_target) weighs NaN
    in_range = (safe >= 0) & (safe < logp.shape[1])
    picked_w = xp.where(in_range, w[xp.clip(safe, 0, logp.shape[1] - 1)], np.nan)
    sample_weight = xp.where(valid, picked_w, 0).astype(input.dtype)
    picked = logp.gather(1, Tensor._wrap(xp.clip(safe, 0, logp.shape[1] - 1)[:, None]))[:, 0]
    loss = -picked * Tensor._wrap(sample_weight)
    if reduction == "mean":  # divided by a device scalar: no read back to the host
        return loss.sum() / Tensor._wrap(sample_weight.sum())
    if reduction == "none":
        return loss.reshape(out_shape)
    return _reduce(loss, reduction, "nll_loss")


def _check_same_shape(name, input, target):
    if input.shape != target.shape:
        raise ValueError(f"{name}: input shape {input.shape} and target shape {target.shape} differ")


def mse_loss(input, target, reduction="mean"):
    """Mean squared error.

    Formula: loss = reduce((x - y)^2)

    Args:
        input (Tensor): any shape.
        target (Tensor): the same shape.
        reduction (str): 'none', 'mean' or 'sum' over the elements. Default: 'mean'.

    Shape:
        input (*), target (*), output () or (*) with reduction='none'.

    >>> import minidl, minidl.nn.functional as F
    >>> F.mse_loss(minidl.tensor([1.0, 2.0, 3.0]), minidl.tensor([1.0, 0.0, 0.0]))
    tensor(4.3333)

    See docs/linear.md.
    """
    target = target if isinstance(target, Tensor) else Tensor(target, dtype=input.dtype)
    _check_same_shape("mse_loss", input, target)
    diff = input - target
    return _reduce(diff * diff, reduction, "mse_loss")


def l1_loss(input, target, reduction="mean"):
    """Mean absolute error.

    Formula: loss = reduce(|x - y|)

    Args:
        input (Tensor): any shape.
        target (Tensor): the same shape.
        reduction (str): 'none', 'mean' or 'sum' over the elements. Default: 'mean'.

    Shape:
        input (*), target (*), output () or (*) with reduction='none'.

    >>> import minidl, minidl.nn.functional as F
    >>> F.l1_loss(minidl.tensor([1.0, 2.0, 3.0]), minidl.tensor([1.0, 0.0, 0.0]))
    tensor(1.6667)

    See docs/linear.md.
    """
    target = target if isinstance(target, Tensor) else Tensor(target, dtype=input.dtype)
    _check_same_shape("l1_loss", input, target)
    return _reduce((input - target).abs(), reduction, "l1_loss")


def smooth_l1_loss(input, target, reduction="mean", beta=1.0):
    """Smooth L1 (Huber-like) loss, Fast R-CNN's box-regression loss.

    Formula: d = |x - y|; loss = reduce(0.5 d^2 / beta if d < beta else d - 0.5 beta)

    Args:
        input (Tensor): any shape.
        target (Tensor): the same shape.
        reduction (str): 'none', 'mean' or 'sum' over the elements. Default: 'mean'.
        beta (float): where the quadratic part ends (0: plain L1). Default: 1.0.

    Shape:
        input (*), target (*), output () or (*) with reduction='none'.

    >>> import minidl, minidl.nn.functional as F
    >>> F.smooth_l1_loss(minidl.tensor([0.5, 3.0]), minidl.tensor([0.0, 0.0]), reduction='none')
    tensor([0.125, 2.5  ])

    See docs/detection_ops.md.
    """
    target = target if isinstance(target, Tensor) else Tensor(target, dtype=input.dtype)
    _check_same_shape("smooth_l1_loss", input, target)
    d = (input - target).abs()
    if beta == 0:
        return _reduce(d, reduction, "smooth_l1_loss")
    loss = where(d < beta, d * d * (0.5 / beta), d - 0.5 * beta)
    return _reduce(loss, reduction, "smooth_l1_loss")


def binary_cross_entropy_with_logits(input, target, weight=None, reduction="mean", pos_weight=None):
    """Binary cross-entropy on logits: sigmoid and BCE in one stable formula.

    Formula: loss = -w [pw t log s(x) + (1 - t) log(1 - s(x))] = w [(1 - t) x + (1 + (pw - 1) t) softplus(-x)]

    Args:
        input (Tensor): logits, any shape.
        target (Tensor): the same shape, values in [0, 1].
        weight (Tensor, optional): broadcast to the input, multiplies each loss. Default: None.
        reduction (str): 'none', 'mean' or 'sum' over the elements. Default: 'mean'.
        pos_weight (Tensor, optional): pw, weight of the positive term per class. Default: None.

    Shape:
        input (*), target (*), output () or (*) with reduction='none'.

    >>> import minidl, minidl.nn.functional as F
    >>> F.binary_cross_entropy_with_logits(minidl.tensor([0.0, 100.0]), minidl.tensor([1.0, 0.0]), reduction='none')
    tensor([  0.6931, 100.    ])

    See docs/softmax_cross_entropy.md.
    """
    target = target if isinstance(target, Tensor) else Tensor(target, dtype=input.dtype)
    _check_same_shape("binary_cross_entropy_with_logits", input, target)
    log_weight = 1 if pos_weight is None else (pos_weight - 1) * target + 1
    loss = (1 - target) * input + log_weight * softplus(-input)
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction, "binary_cross_entropy_with_logits")


def binary_cross_entropy(input, target, weight=None, reduction="mean"):
    """Binary cross-entropy on probabilities (logs clamped at -100, as PyTorch).

    Formula: loss = -w [t log p + (1 - t) log(1 - p)]

    Args:
        input (Tensor): probabilities in [0, 1], any shape.
        target (Tensor): the same shape.
        weight (Tensor, optional): broadcast to the input. Default: None.
        reduction (str): 'none', 'mean' or 'sum' over the elements. Default: 'mean'.

    Shape:
        input (*), target (*), output () or (*) with reduction='none'.

    >>> import minidl, minidl.nn.functional as F
    >>> F.binary_cross_entropy(minidl.tensor([0.5, 0.9]), minidl.tensor([1.0, 1.0]), reduction='none')
    tensor([0.6931, 0.1054])

    See docs/softmax_cross_entropy.md.
    """
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
    """2-D convolution (cross-correlation) of images with a bank of filters.

    Formula: y[n, o, i, j] = b[o] + sum_{c, u, v} w[o, c, u, v] x[n, g Cg + c, i s + u d - p, j s + v d - p],
             Cg = C_in/groups, g = o // (C_out/groups); out = floor((H + 2p - d(k - 1) - 1) / s) + 1.
             Runs as a 1x1 GEMM, a direct kernel or im2col + GEMM (minidl/functions/conv.py).

    Args:
        input (Tensor): (N, C_in, H, W) or unbatched (C_in, H, W).
        weight (Tensor): (C_out, C_in/groups, kh, kw).
        bias (Tensor, optional): (C_out,). Default: None.
        stride (int or tuple): step of the window. Default: 1.
        padding (int, tuple, 'valid' or 'same'): zeros added on both sides; 'same' keeps the size
            (stride 1 only; an odd total puts the extra zero at the end, as PyTorch). Default: 0.
        dilation (int or tuple): spacing between kernel taps. Default: 1.
        groups (int): split C_in and C_out into this many independent groups (C_in for depthwise). Default: 1.

    Shape:
        input (N, C_in, H, W), output (N, C_out, H_out, W_out).

    >>> import minidl, minidl.nn.functional as F
    >>> x = minidl.arange(16.0).reshape(1, 1, 4, 4)
    >>> F.conv2d(x, minidl.ones(1, 1, 2, 2), stride=2)
    tensor([[[[10., 18.],
              [42., 50.]]]])
    >>> F.conv2d(minidl.ones(1, 3, 8, 8), minidl.ones(4, 3, 3, 3), padding=1).shape
    (1, 4, 8, 8)

    See docs/convolution.md.
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
        if fn.__name__ != "max_pool2d":  # max_pool2d takes float16 (and integers) through the plain N-d path
            _check_kernel_dtype(fn.__name__, input)
        if input.ndim == 3:
            out = fn(input.unsqueeze(0), *args, **kwargs)
            if isinstance(out, tuple):
                return tuple(o.squeeze(0) for o in out)
            return out.squeeze(0)
        if input.ndim != 4:
            raise ValueError(f"{fn.__name__}: expected a 4-D (N, C, H, W) or 3-D input, got shape {input.shape}")
        return fn(input, *args, **kwargs)

    return functools.wraps(fn)(wrapper)  # its name, docstring and signature (help, inspect)


@_batched
def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    """2-D max pooling: the largest value of each window.

    Formula: y[n, c, i, j] = max_{u, v} x[n, c, i s + u d - p, j s + v d - p];
             out = floor((in + 2 p - d (k - 1) - 1) / s) + 1 (ceil with ceil_mode).
             Backward sends the gradient to the first maximum in scan order (ties).

    Args:
        input (Tensor): (N, C, H, W) or (C, H, W).
        kernel_size (int or tuple): window size.
        stride (int or tuple, optional): window step. Default: None (= kernel_size).
        padding (int or tuple): implicit -inf padding on both sides (at most half the kernel). Default: 0.
        dilation (int or tuple): spacing between window taps. Default: 1.
        ceil_mode (bool): round the output size up (a last partial window). Default: False.
        return_indices (bool): also return the flat index of each maximum in its input plane. Default: False.

    Shape:
        input (N, C, H, W), output (N, C, H_out, W_out).

    >>> import minidl, minidl.nn.functional as F
    >>> x = minidl.tensor([[[[1.0, 5, 2, 0], [3, 4, 8, 1], [0, 2, 6, 7], [9, 1, 3, 2]]]])
    >>> F.max_pool2d(x, 2)
    tensor([[[[5., 8.],
              [9., 7.]]]])
    >>> F.max_pool2d(x, 2, return_indices=True)[1]
    tensor([[[[ 1,  6],
              [12, 11]]]])

    See docs/pooling.md.
    """
    kernel_size = pair(kernel_size, "max_pool2d")
    stride = kernel_size if stride is None or stride == [] else pair(stride, "max_pool2d")
    if input.dtype not in (np.float32, np.float64):  # integers (forward only), float16: the plain N-d max pool
        return _max_pool_nd(input, kernel_size, stride, padding, dilation, ceil_mode, return_indices, 2,
                            "max_pool2d")
    fn = _pool.MaxPool2d()
    out = apply(fn, input, kernel_size=kernel_size, stride=stride, padding=pair(padding, "max_pool2d"),
                dilation=pair(dilation, "max_pool2d"), ceil_mode=bool(ceil_mode))
    if return_indices:
        return out, Tensor._wrap(fn.indices)
    return out


@_batched
def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None):
    """2-D average pooling: the mean of each window.

    Formula: y[n, c, i, j] = (1 / (kh kw)) sum_{u, v} x[n, c, i s + u - p, j s + v - p];
             out = floor((in + 2 p - d (k - 1) - 1) / s) + 1 (ceil with ceil_mode) with d = 1

    Args:
        input (Tensor): (N, C, H, W) or (C, H, W).
        kernel_size (int or tuple): window size.
        stride (int or tuple, optional): window step. Default: None (= kernel_size).
        padding (int or tuple): implicit zero padding on both sides. Default: 0.
        ceil_mode (bool): round the output size up (a last partial window). Default: False.
        count_include_pad (bool): count padded zeros in the divisor. Default: True.
        divisor_override (int, optional): divide every window sum by this instead. Default: None.

    Shape:
        input (N, C, H, W), output (N, C, H_out, W_out).

    >>> import minidl, minidl.nn.functional as F
    >>> x = minidl.tensor([[[[1.0, 5, 2, 0], [3, 4, 8, 1], [0, 2, 6, 7], [9, 1, 3, 2]]]])
    >>> F.avg_pool2d(x, 2)
    tensor([[[[3.25, 2.75],
              [3.  , 4.5 ]]]])
    >>> F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)[0, 0, 0]
    tensor([3.25  , 3.8333, 3.3333, 2.75  ])

    See docs/pooling.md.
    """
    kernel_size = pair(kernel_size, "avg_pool2d")
    stride = kernel_size if stride is None or stride == [] else pair(stride, "avg_pool2d")
    return apply(_pool.AvgPool2d, input, kernel_size=kernel_size, stride=stride, padding=pair(padding, "avg_pool2d"),
                 ceil_mode=bool(ceil_mode), count_include_pad=bool(count_include_pad),
                 divisor_override=divisor_override)


@_batched
def adaptive_avg_pool2d(input, output_size):
    """Adaptive 2-D average pooling: the mean over a grid of bins of any requested size.

    Formula: bin i covers [floor(i in / out), ceil((i + 1) in / out)) of each dimension,
             so any output size works (1x1: global average pooling)

    Args:
        input (Tensor): (N, C, H, W) or (C, H, W).
        output_size (int or tuple): (OH, OW); an int for both, None in a tuple keeps that size.

    Shape:
        input (N, C, H, W), output (N, C, OH, OW).

    >>> import minidl, minidl.nn.functional as F
    >>> x = minidl.tensor([[[[1.0, 5, 2, 0], [3, 4, 8, 1], [0, 2, 6, 7], [9, 1, 3, 2]]]])
    >>> F.adaptive_avg_pool2d(x, 1)
    tensor([[[[3.375]]]])
    >>> F.adaptive_avg_pool2d(x, (3, 2)).shape
    (1, 1, 3, 2)

    See docs/pooling.md.
    """
    size = _adaptive_size(output_size, input.shape[-2], input.shape[-1])
    return apply(_pool.AdaptiveAvgPool2d, input, output_size=size)


@_batched
def adaptive_max_pool2d(input, output_size, return_indices=False):
    """Adaptive 2-D max pooling: the maximum over a grid of bins of any requested size.

    Formula: bin i covers [floor(i in / out), ceil((i + 1) in / out)) of each dimension, so any output size works

    Args:
        input (Tensor): (N, C, H, W) or (C, H, W).
        output_size (int or tuple): (OH, OW); an int for both, None keeps that size.
        return_indices (bool): also return the flat argmax indices into H*W. Default: False.

    Shape:
        input (N, C, H, W), output (N, C, OH, OW).

    >>> import minidl, minidl.nn.functional as F
    >>> x = minidl.tensor([[[[1.0, 5, 2, 0], [3, 4, 8, 1], [0, 2, 6, 7], [9, 1, 3, 2]]]])
    >>> F.adaptive_max_pool2d(x, 1)
    tensor([[[[9.]]]])
    >>> F.adaptive_max_pool2d(x, 2, return_indices=True)[1]
    tensor([[[[ 1,  6],
              [12, 11]]]])

    See docs/pooling.md.
    """
    size = _adaptive_size(output_size, input.shape[-2], input.shape[-1])
    fn = _pool.AdaptiveMaxPool2d()
    out = apply(fn, input, output_size=size)
    if return_indices:
        return out, Tensor._wrap(fn.indices)
    return out


# ----------------------------------------------------------------------------- normalisation
def batch_norm(input, running_mean, running_var, weight=None, bias=None, training=False, momentum=0.1, eps=1e-5):
    """Batch normalisation (Ioffe & Szegedy 2015): normalise each channel with batch or running statistics.

    Formula: y = (x - mean_c) / sqrt(var_c + eps) * weight_c + bias_c. Training: mean and biased variance over
             (N, *spatial), and running = (1 - momentum) running + momentum * batch with the unbiased
             variance (as PyTorch). Evaluation: the running statistics.

    Args:
        input (Tensor): (N, C), (N, C, L) or (N, C, H, W).
        running_mean, running_var (Tensor or None): (C,), updated in place when training.
        weight, bias (Tensor, optional): (C,) affine map. Default: None.
        training (bool): batch statistics (True) or running ones (False). Default: False.
        momentum (float): weight of the new batch in the running averages. Default: 0.1.
        eps (float): added to the variance. Default: 1e-05.

    Shape:
        input (N, C, *), output (N, C, *).

    >>> import minidl, minidl.nn.functional as F
    >>> x = minidl.tensor([[1.0], [3.0]])
    >>> rm, rv = minidl.zeros(1), minidl.ones(1)
    >>> F.batch_norm(x, rm, rv, training=True)
    tensor([[-1.],
            [ 1.]])
    >>> rm, rv
    (tensor([0.2]), tensor([1.1]))

    See docs/batch_norm.md.
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
    """Local response normalisation across channels (AlexNet, Krizhevsky et al. 2012).

    Formula: y_c = x_c / (k + alpha / n * sum_{c' = c - n//2}^{c + (n-1)//2} x_{c'}^2)^beta, zeros beyond the channels

    Args:
        input (Tensor): (N, C, *).
        size (int): n, the number of neighbouring channels.
        alpha (float): Default: 0.0001.
        beta (float): Default: 0.75.
        k (float): Default: 1.0.

    Shape:
        input (N, C, *), output (N, C, *).

    >>> import minidl, minidl.nn.functional as F
    >>> F.local_response_norm(minidl.tensor([[[1.0], [2.0]]]), size=2, alpha=1.0, beta=1.0)
    tensor([[[0.6667],
             [0.5714]]])

    See docs/lrn_dropout.md.
    """
    if input.ndim < 3:
        raise ValueError(f"local_response_norm: expected 3-D or more input, got shape {input.shape}")
    return apply(_norm.LocalResponseNorm, input, size=int(size), alpha=alpha, beta=beta, k=k)


# ----------------------------------------------------------------------------- more activations, one_hot, normalize (issue 15)
def celu(input, alpha=1.0, inplace=False):
    """Continuously differentiable ELU (Barron 2017), elementwise.

    Formula: celu(x) = max(0, x) + min(0, alpha * (exp(x / alpha) - 1))

    Args:
        input (Tensor): any shape.
        alpha (float): the negative saturation value -alpha. Default: 1.0.
        inplace (bool): accepted for PyTorch's signature; a new tensor is returned. Default: False.

    Shape:
        input (*), output (*): the same shape.

    >>> import minidl, minidl.nn.functional as F
    >>> x = minidl.tensor([-2.0, -0.5, 0.0, 1.0, 3.0])
    >>> F.celu(x)
    tensor([-0.8647, -0.3935,  0.    ,  1.    ,  3.    ])

    See docs/activations.md.
    """
    return apply(A.CELU, input, alpha=alpha)


def mish(input, inplace=False):
    """Mish (Misra 2019), elementwise.

    Formula: mish(x) = x * tanh(softplus(x))

    Args:
        input (Tensor): any shape.
        inplace (bool): accepted for PyTorch's signature; a new tensor is returned. Default: False.

    Shape:
        input (*), output (*): the same shape.

    >>> import minidl, minidl.nn.functional as F
    >>> x = minidl.tensor([-2.0, -0.5, 0.0, 1.0, 3.0])
    >>> F.mish(x)
    tensor([-0.2525, -0.2207,  0.    ,  0.8651,  2.9865])

    See docs/activations.md.
    """
    return apply(A.Mish, input)


def hardtanh(input, min_val=-1.0, max_val=1.0, inplace=False):
    """Hard tanh: the input clipped to an interval, elementwise.

    Formula: hardtanh(x) = min(max(x, min_val), max_val)

    Args:
        input (Tensor): any shape.
        min_val (float): lower bound. Default: -1.0.
        max_val (float): upper bound. Default: 1.0.
        inplace (bool): accepted for PyTorch's signature; a new tensor is returned. Default: False.

    Shape:
        input (*), output (*): the same shape.

    >>> import minidl, minidl.nn.functional as F
    >>> x = minidl.tensor([-2.0, -0.5, 0.0, 1.0, 3.0])
    >>> F.hardtanh(x)
    tensor([-1. , -0.5,  0. ,  1. ,  1. ])

    See docs/activations.md.
    """
    if min_val > max_val:
        raise ValueError(f"hardtanh: min_val {min_val} cannot be greater than max_val {max_val}")
    return apply(A.Hardtanh, input, min_val=min_val, max_val=max_val)


def logsigmoid(input):
    """Log of the sigmoid, elementwise, without overflow.

    Formula: logsigmoid(x) = log(1 / (1 + exp(-x))) = -softplus(-x)

    Args:
        input (Tensor): any shape.


    Shape:
        input (*), output (*): the same shape.

    >>> import minidl, minidl.nn.functional as F
    >>> x = minidl.tensor([-2.0, -0.5, 0.0, 1.0, 3.0])
    >>> F.logsigmoid(x)
    tensor([-2.1269, -0.9741, -0.6931, -0.3133, -0.0486])

    See docs/activations.md.
    """
    return apply(A.LogSigmoid, input)


def softsign(input):
    """Softsign, elementwise.

    Formula: softsign(x) = x / (1 + |x|)

    Args:
        input (Tensor): any shape.


    Shape:
        input (*), output (*): the same shape.

    >>> import minidl, minidl.nn.functional as F
    >>> x = minidl.tensor([-2.0, -0.5, 0.0, 1.0, 3.0])
    >>> F.softsign(x)
    tensor([-0.6667, -0.3333,  0.    ,  0.5   ,  0.75  ])

    See docs/activations.md.
    """
    return apply(A.Softsign, input)


def tanhshrink(input):
    """Tanh shrink, elementwise.

    Formula: tanhshrink(x) = x - tanh(x)

    Args:
        input (Tensor): any shape.


    Shape:
        input (*), output (*): the same shape.

    >>> import minidl, minidl.nn.functional as F
    >>> x = minidl.tensor([-2.0, -0.5, 0.0, 1.0, 3.0])
    >>> F.tanhshrink(x)
    tensor([-1.036 , -0.0379,  0.    ,  0.2384,  2.0049])

    See docs/activations.md.
    """
    return apply(A.Tanhshrink, input)


def hardshrink(input, lambd=0.5):
    """Hard shrinkage: zero inside [-lambd, lambd], elementwise.

    Formula: hardshrink(x) = x if |x| > lambd else 0

    Args:
        input (Tensor): any shape.
        lambd (float): the threshold. Default: 0.5.

    Shape:
        input (*), output (*): the same shape.

    >>> import minidl, minidl.nn.functional as F
    >>> x = minidl.tensor([-2.0, -0.5, 0.0, 1.0, 3.0])
    >>> F.hardshrink(x)
    tensor([-2.,  0.,  0.,  1.,  3.])

    See docs/activations.md.
    """
    return apply(A.Shrink, input, lambd=lambd, soft=False)


def softshrink(input, lambd=0.5):
    """Soft shrinkage (soft thresholding), elementwise.

    Formula: softshrink(x) = x - lambd if x > lambd, x + lambd if x < -lambd, else 0

    Args:
        input (Tensor): any shape.
        lambd (float): the threshold. Default: 0.5.

    Shape:
        input (*), output (*): the same shape.

    >>> import minidl, minidl.nn.functional as F
    >>> x = minidl.tensor([-2.0, -0.5, 0.0, 1.0, 3.0])
    >>> F.softshrink(x)
    tensor([-1.5,  0. ,  0. ,  0.5,  2.5])

    See docs/activations.md.
    """
    if lambd < 0:
        raise RuntimeError(f"softshrink: lambd must be at least 0, got {lambd}")
    return apply(A.Shrink, input, lambd=lambd, soft=True)


def glu(input, dim=-1):
    """Gated linear unit (Dauphin et al. 2017): one half of ``dim`` gated by the sigmoid of the other.

    Formula: glu(a, b) = a * sigmoid(b), where a and b are the first and second halves of ``dim``.

    Args:
        input (Tensor): any shape with an even size along ``dim``.
        dim (int): the dimension that is split in two. Default: -1.

    Shape:
        input (*, 2M, *), output (*, M, *).

    >>> import minidl, minidl.nn.functional as F
    >>> F.glu(minidl.tensor([[1.0, -2.0, 0.0, 100.0]]))
    tensor([[ 0.5, -2. ]])

    See docs/activations.md.
    """
    n = input.shape[dim]
    if n % 2:
        raise RuntimeError(f"glu: halving dimension {dim} needs an even size, got {n}")
    a, b = input.split(n // 2, dim=dim)
    return a * sigmoid(b)


def _softmax_dim(ndim):
    """PyTorch's implicit dim for softmax-like functions called without one."""
    return 0 if ndim in (0, 1, 3) else 1


def softmin(input, dim=None, dtype=None):
    """Softmin along ``dim``: the softmax of -x, largest weight to the smallest value.

    Formula: softmin(x)_i = exp(-x_i) / sum_j exp(-x_j)

    Args:
        input (Tensor): any shape.
        dim (int): the dimension that sums to 1; None picks PyTorch's legacy choice
            (0 for 0-, 1- and 3-D inputs, else 1). Default: None.
        dtype: if given, the input is cast to it first. Default: None.

    Shape:
        input (*), output (*): the same shape.

    >>> import minidl, minidl.nn.functional as F
    >>> F.softmin(minidl.tensor([1.0, 2.0, 3.0]), dim=0)
    tensor([0.6652, 0.2447, 0.09  ])

    See docs/softmax_cross_entropy.md.
    """
    if dtype is not None:
        input = input.type(dtype)
    return softmax(-input, dim=_softmax_dim(input.ndim) if dim is None else dim)


def normalize(input, p=2.0, dim=1, eps=1e-12):
    """Divide by the Lp norm along a dimension (unit vectors).

    Formula: y = x / max(||x||_p, eps) along dim (p = inf: the largest |x|; p = 0: the count of nonzeros)

    Args:
        input (Tensor): any shape.
        p (float): the norm's order. Default: 2.0.
        dim (int): the dimension normalised. Default: 1.
        eps (float): lower bound of the norm. Default: 1e-12.

    Shape:
        input (*), output (*): the same shape.

    >>> import minidl, minidl.nn.functional as F
    >>> F.normalize(minidl.tensor([[3.0, 4.0]]))
    tensor([[0.6, 0.8]])

    See docs/layer_norm.md.
    """
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
    """One-hot encoding of integer class values.

    Formula: y[..., k] = 1 if x[...] == k else 0

    Args:
        tensor (Tensor): int64 class values in [0, num_classes).
        num_classes (int): size of the new dimension; -1 takes max + 1. Default: -1.

    Shape:
        input (*), output (*, num_classes), int64.

    >>> import minidl, minidl.nn.functional as F
    >>> F.one_hot(minidl.tensor([0, 2]), 3)
    tensor([[1, 0, 0],
            [0, 0, 1]])

    See docs/softmax_cross_entropy.md.
    """
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
    """Layer normalisation (Ba et al. 2016) over the last dimensions of each sample.

    Formula: y = (x - mean) / sqrt(var + eps) * weight + bias, mean and biased var over the last
             len(normalized_shape) dimensions; no running statistics (train = eval)

    Args:
        input (Tensor): (*, *normalized_shape).
        normalized_shape (int or tuple): the trailing shape.
        weight, bias (Tensor, optional): of normalized_shape. Default: None.
        eps (float): added to the variance. Default: 1e-05.

    Shape:
        input (*, *normalized_shape), output the same.

    >>> import minidl, minidl.nn.functional as F
    >>> F.layer_norm(minidl.tensor([[1.0, 2.0, 3.0]]), (3,))
    tensor([[-1.2247,  0.    ,  1.2247]])

    See docs/layer_norm.md.
    """
    shape = _normalized_shape(normalized_shape)
    if len(shape) == 0 or tuple(input.shape[input.ndim - len(shape):]) != shape or input.ndim < len(shape):
        raise ValueError(f"layer_norm: normalized_shape={list(shape)} expects an input of shape [*, "
                         f"{', '.join(map(str, shape))}], got {list(input.shape)}")
    _check_affine("layer_norm: weight", weight, shape)
    _check_affine("layer_norm: bias", bias, shape)
    return apply(_layer_norm.LayerNorm, input, weight, bias, normalized_ndim=len(shape), eps=eps)


def group_norm(input, num_groups, weight=None, bias=None, eps=1e-5):
    """Group normalisation (Wu & He 2018): statistics over groups of channels of each sample.

    Formula: channels split into G groups; y = (x - mean_g) / sqrt(var_g + eps) * weight_c + bias_c with mean
             and biased var over the group's channels and positions (G = 1: layer norm, G = C: instance norm)

    Args:
        input (Tensor): (N, C, *).
        num_groups (int): G, dividing C.
        weight, bias (Tensor, optional): (C,). Default: None.
        eps (float): Default: 1e-05.

    Shape:
        input (N, C, *), output the same.

    >>> import minidl, minidl.nn.functional as F
    >>> F.group_norm(minidl.tensor([[[1.0], [3.0], [10.0], [10.0]]]), 2).flatten()
    tensor([-1.,  1.,  0.,  0.])

    See docs/layer_norm.md.
    """
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
    """Instance normalisation (Ulyanov et al. 2016): each channel of each sample on its own.

    Formula: y = (x - mean_{n,c}) / sqrt(var_{n,c} + eps) * weight_c + bias_c over the spatial positions;
             running stats, when given and use_input_stats, updated with the batch average (unbiased var)

    Args:
        input (Tensor): (N, C, *).
        running_mean, running_var (Tensor, optional): (C,). Default: None.
        weight, bias (Tensor, optional): (C,). Default: None.
        use_input_stats (bool): the sample's own statistics (else the running ones). Default: True.
        momentum (float): Default: 0.1.
        eps (float): Default: 1e-05.

    Shape:
        input (N, C, *), output the same.

    >>> import minidl, minidl.nn.functional as F
    >>> F.instance_norm(minidl.tensor([[[1.0, 3.0], [5.0, 5.0]]]))
    tensor([[[-1.,  1.],
             [ 0.,  0.]]])

    See docs/layer_norm.md.
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
    """Root-mean-square normalisation (Zhang & Sennrich 2019): layer norm without the mean.

    Formula: y = x / sqrt(mean(x^2) + eps) * weight over the last len(normalized_shape) dimensions

    Args:
        input (Tensor): (*, *normalized_shape).
        normalized_shape (int or tuple): the trailing shape.
        weight (Tensor, optional): of normalized_shape. Default: None.
        eps (float, optional): Default: None (the machine epsilon of the input's dtype).

    Shape:
        input (*, *normalized_shape), output the same.

    >>> import minidl, minidl.nn.functional as F
    >>> F.rms_norm(minidl.tensor([[3.0, 4.0]]), (2,))
    tensor([[0.8485, 1.1314]])

    See docs/layer_norm.md.
    """
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
    """Look up rows of an embedding table by integer index (a linear layer on one-hot inputs).

    Formula: y[..., :] = weight[input[...], :]; backward adds each output gradient into its row.
             padding_idx: that row gets no gradient; max_norm: looked-up rows with a larger norm are
             rescaled in place (this modifies weight, as PyTorch); scale_grad_by_freq divides a row's
             gradient by its count in input; sparse is accepted, the gradient is dense

    Args:
        input (Tensor): int64 indices, any shape.
        weight (Tensor): (num_embeddings, embedding_dim).
        padding_idx (int, optional): Default: None.
        max_norm (float, optional): Default: None.
        norm_type (float): the p of max_norm. Default: 2.0.
        scale_grad_by_freq (bool): Default: False.
        sparse (bool): Default: False.

    Shape:
        input (*), weight (V, D), output (*, D).

    >>> import minidl, minidl.nn.functional as F
    >>> w = minidl.tensor([[0.0, 0.0], [1.0, 2.0], [3.0, 4.0]])
    >>> F.embedding(minidl.tensor([[2, 1], [0, 2]]), w)
    tensor([[[3., 4.],
             [1., 2.]],
    <BLANKLINE>
            [[0., 0.],
             [3., 4.]]])

    See docs/linear.md.
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
    """One Elman RNN step with tanh.

    Formula: h' = tanh(x W_ih^T + b_ih + h W_hh^T + b_hh)

    Args:
        input (Tensor): (N, I) or unbatched (I,).
        hx: the state (see Shape).
        w_ih (Tensor): (G*H, I), G gates stacked.
        w_hh (Tensor): (G*H, H).
        b_ih, b_hh (Tensor, optional): (G*H,). Default: None.

    Shape:
        input (N, I), hx (N, H), output (N, H); G = 1.

    >>> import minidl, minidl.nn.functional as F
    >>> x, h = minidl.ones(1, 2), minidl.zeros(1, 1)
    >>> F.rnn_tanh_cell(x, h, minidl.ones(1, 2), minidl.ones(1, 1))
    tensor([[0.964]])

    See docs/recurrent.md.
    """
    return (linear(input, w_ih, b_ih) + linear(hx, w_hh, b_hh)).tanh()


def rnn_relu_cell(input, hx, w_ih, w_hh, b_ih=None, b_hh=None):
    """One Elman RNN step with ReLU.

    Formula: h' = relu(x W_ih^T + b_ih + h W_hh^T + b_hh)

    Args:
        input (Tensor): (N, I) or unbatched (I,).
        hx: the state (see Shape).
        w_ih (Tensor): (G*H, I), G gates stacked.
        w_hh (Tensor): (G*H, H).
        b_ih, b_hh (Tensor, optional): (G*H,). Default: None.

    Shape:
        input (N, I), hx (N, H), output (N, H); G = 1.

    >>> import minidl, minidl.nn.functional as F
    >>> x, h = minidl.ones(1, 2), minidl.ones(1, 1)
    >>> F.rnn_relu_cell(x, h, minidl.ones(1, 2), minidl.ones(1, 1))
    tensor([[3.]])

    See docs/recurrent.md.
    """
    return (linear(input, w_ih, b_ih) + linear(hx, w_hh, b_hh)).relu()


def lstm_cell(input, hx, w_ih, w_hh, b_ih=None, b_hh=None):
    """One LSTM step (Hochreiter & Schmidhuber 1997), gates in PyTorch's order i, f, g, o.

    Formula: i, f, g, o = split(x W_ih^T + b_ih + h W_hh^T + b_hh, 4); i, f, o sigmoid, g tanh;
             c' = f * c + i * g; h' = o * tanh(c')

    Args:
        input (Tensor): (N, I) or unbatched (I,).
        hx (tuple): (h, c), each (N, H).
        w_ih (Tensor): (G*H, I), G gates stacked.
        w_hh (Tensor): (G*H, H).
        b_ih, b_hh (Tensor, optional): (G*H,). Default: None.

    Shape:
        input (N, I), h and c (N, H), output (h', c') each (N, H); G = 4.

    >>> import minidl, minidl.nn.functional as F
    >>> x, h, c = minidl.zeros(1, 2), minidl.zeros(1, 1), minidl.ones(1, 1)
    >>> F.lstm_cell(x, (h, c), minidl.zeros(4, 2), minidl.zeros(4, 1))
    (tensor([[0.2311]]), tensor([[0.5]]))

    See docs/recurrent.md.
    """
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
    """One GRU step (Cho et al. 2014), gates in PyTorch's order r, z, n.

    Formula: r, z = sigmoid(W_ir x + b_ir + W_hr h + b_hr), sigmoid(W_iz x + b_iz + W_hz h + b_hz);
             n = tanh(W_in x + b_in + r * (W_hn h + b_hn)); h' = (1 - z) * n + z * h

    Args:
        input (Tensor): (N, I) or unbatched (I,).
        hx: the state (see Shape).
        w_ih (Tensor): (G*H, I), G gates stacked.
        w_hh (Tensor): (G*H, H).
        b_ih, b_hh (Tensor, optional): (G*H,). Default: None.

    Shape:
        input (N, I), hx (N, H), output (N, H); G = 3.

    >>> import minidl, minidl.nn.functional as F
    >>> x, h = minidl.zeros(1, 2), minidl.ones(1, 1)
    >>> F.gru_cell(x, h, minidl.zeros(3, 2), minidl.zeros(3, 1))
    tensor([[0.5]])

    See docs/recurrent.md.
    """
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
    """Sums, means or maxima of bags of embeddings, without materialising each lookup.

    An empty bag gives zeros; per_sample_weights only with mode 'sum'.

    Formula: bag b = the rows of a 2-D input, or input[offsets[b]:offsets[b+1]] of a 1-D one;
             y[b] = sum / mean / max of weight[i] over its indices i; sum and mean are one product
             S @ weight with S the (bags, V) share matrix, so the gradient is S^T @ grad

    Args:
        input (Tensor): int64 (B, L) bags, or 1-D with offsets.
        weight (Tensor): (V, D).
        offsets (Tensor, optional): (B,) start of each bag in a 1-D input. Default: None.
        max_norm, norm_type, scale_grad_by_freq, sparse: as embedding. Defaults: None, 2, False, False.
        mode (str): 'sum', 'mean' or 'max'. Default: 'mean'.
        per_sample_weights (Tensor, optional): input's shape, weighs each row (mode 'sum'). Default: None.
        include_last_offset (bool): offsets has B + 1 entries, the last the input's length. Default: False.
        padding_idx (int, optional): entries left out of their bag (and of a mean's count). Default: None.

    Shape:
        input (B, L) or (n,) with offsets (B,), output (B, D).

    >>> import minidl, minidl.nn.functional as F
    >>> w = minidl.tensor([[0.0, 0.0], [1.0, 2.0], [3.0, 4.0]])
    >>> F.embedding_bag(minidl.tensor([1, 2, 0, 2]), w, minidl.tensor([0, 2]), mode='sum')
    tensor([[4., 6.],
            [3., 4.]])

    See docs/linear.md.
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
