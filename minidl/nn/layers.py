"""Layers as Modules: containers, Linear, convolution, pooling, normalisation, dropout, activations."""
from __future__ import annotations

import math
from collections import OrderedDict

import numpy as np

from ..tensor import Tensor
from . import functional as F
from . import init
from .module import Module, Parameter


def _pair(value):
    return tuple(value) if isinstance(value, (tuple, list)) else (value, value)


# ----------------------------------------------------------------------------- containers
class Sequential(Module):
    """A container that applies its modules in order (an MLP, a block of a network).

    Formula: y = m_k(... m_2(m_1(x)))

    Args:
        *modules (Module): in order, or one OrderedDict of named modules.

    Shape:
        the input of the first module, the output of the last.

    >>> import minidl, minidl.nn as nn
    >>> g = minidl.manual_seed(0)
    >>> net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    >>> net(minidl.ones(3, 4)).shape
    (3, 2)
    >>> len(net), type(net[1]).__name__
    (3, 'ReLU')

    See docs/linear.md.
    """

    def __init__(self, *modules):
        super().__init__()
        if len(modules) == 1 and isinstance(modules[0], OrderedDict):
            for name, module in modules[0].items():
                self.add_module(name, module)
        else:
            for i, module in enumerate(modules):
                self.add_module(str(i), module)

    def forward(self, x):
        for module in self._modules.values():
            x = module(x)
        return x

    def __getitem__(self, index):
        items = list(self._modules.items())
        if isinstance(index, slice):
            return Sequential(OrderedDict(items[index]))
        return items[index][1]

    def __setitem__(self, index, module):
        name = list(self._modules)[index]
        self._modules[name] = module

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def append(self, module):
        self.add_module(str(len(self._modules)), module)
        return self


class ModuleList(Module):
    """A list of modules whose parameters are registered (a plain list would hide them).

    Formula: no forward; iterate over it in your own forward

    Args:
        modules (iterable of Module, optional): the first entries. Default: None.

    Shape:
        not applicable.

    >>> import minidl, minidl.nn as nn
    >>> layers = nn.ModuleList([nn.Linear(2, 2) for _ in range(3)])
    >>> len(layers), len(list(layers.parameters()))
    (3, 6)

    See docs/linear.md.
    """
    def __init__(self, modules=None):
        super().__init__()
        for module in modules or []:
            self.append(module)

    def append(self, module):
        self.add_module(str(len(self._modules)), module)
        return self

    def extend(self, modules):
        for module in modules:
            self.append(module)
        return self

    def __getitem__(self, index):
        values = list(self._modules.values())
        if isinstance(index, slice):
            return ModuleList(values[index])
        return values[index]

    def __setitem__(self, index, module):
        name = list(self._modules)[index]
        self._modules[name] = module

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())


class ModuleDict(Module):
    """A dict of named modules whose parameters are registered.

    Formula: no forward; look modules up by name in your own forward

    Args:
        modules (dict of Module, optional): the first entries. Default: None.

    Shape:
        not applicable.

    >>> import minidl, minidl.nn as nn
    >>> heads = nn.ModuleDict({'cls': nn.Linear(4, 10), 'box': nn.Linear(4, 4)})
    >>> sorted(heads.keys()), heads['box'].out_features
    (['box', 'cls'], 4)

    See docs/linear.md.
    """
    def __init__(self, modules=None):
        super().__init__()
        for name, module in (modules or {}).items():
            self.add_module(name, module)

    def __getitem__(self, key):
        return self._modules[key]

    def __setitem__(self, key, module):
        self.add_module(key, module)

    def __contains__(self, key):
        return key in self._modules

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules)

    def keys(self):
        return self._modules.keys()

    def values(self):
        return self._modules.values()

    def items(self):
        return self._modules.items()


# ----------------------------------------------------------------------------- simple layers
class Identity(Module):
    """A layer that returns its input (a placeholder, e.g. a removed classifier head).

    Formula: y = x

    Args:
        *args, **kwargs: ignored (PyTorch's signature).

    Shape:
        input (*), output (*).

    >>> import minidl, minidl.nn as nn
    >>> nn.Identity(54, unused='x')(minidl.tensor([1.0, 2.0]))
    tensor([1., 2.])

    See docs/linear.md.
    """
    def __init__(self, *args, **kwargs):
        super().__init__()

    def forward(self, x):
        return x


class Flatten(Module):
    """Flatten a range of dimensions into one (e.g. feature maps into a vector for a Linear).

    Formula: (N, C, H, W) -> (N, C*H*W) with the defaults

    Args:
        start_dim (int): first dimension flattened. Default: 1.
        end_dim (int): last one. Default: -1.

    Shape:
        input (*, S_start, ..., S_end, *), output (*, prod S, *).

    >>> import minidl, minidl.nn as nn
    >>> nn.Flatten()(minidl.ones(2, 3, 4, 5)).shape
    (2, 60)
    >>> nn.Flatten(0, 1)(minidl.ones(2, 3, 4)).shape
    (6, 4)

    See docs/linear.md.
    """
    def __init__(self, start_dim=1, end_dim=-1):
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, x):
        return x.flatten(self.start_dim, self.end_dim)

    def extra_repr(self):
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class Linear(Module):
    """Fully connected layer: an affine map of the last dimension.

    Formula: y = x W^T + b;
             weight and bias ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (PyTorch's kaiming_uniform_ with a = sqrt(5))

    Args:
        in_features (int): size of each input sample.
        out_features (int): size of each output sample.
        bias (bool): learn b. Default: True.
        dtype: parameter dtype. Default: None (float32).

    Shape:
        input (*, in_features), output (*, out_features).

    Attributes:
        weight (Parameter): (out_features, in_features).
        bias (Parameter or None): (out_features,).

    >>> import minidl, minidl.nn as nn
    >>> g = minidl.manual_seed(0)
    >>> fc = nn.Linear(3, 2)
    >>> fc.weight.shape, fc.bias.shape
    ((2, 3), (2,))
    >>> fc(minidl.ones(5, 3)).shape
    (5, 2)

    See docs/linear.md.
    """

    def __init__(self, in_features, out_features, bias=True, dtype=None):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.weight = Parameter(np.empty((out_features, in_features), dtype=dtype or np.float32))
        self.bias = Parameter(np.empty(out_features, dtype=dtype or np.float32)) if bias else None
        if not bias:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self):
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            bound = 1 / math.sqrt(self.in_features) if self.in_features > 0 else 0
            init.uniform_(self.bias, -bound, bound)

    def forward(self, x):
        return F.linear(x, self.weight, self.bias)

    def extra_repr(self):
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


class Dropout(Module):
    """Dropout (Srivastava et al. 2014): in train() zero elements with probability p, scale the rest.

    Formula: train(): y = x * m / (1 - p), m ~ Bernoulli(1 - p); eval(): y = x

    Args:
        p (float): probability of zeroing, in [0, 1]. Default: 0.5.
        inplace (bool): accepted for PyTorch's signature; a new tensor is returned. Default: False.

    Shape:
        input (*), output (*).

    >>> import minidl, minidl.nn as nn
    >>> g = minidl.manual_seed(0)
    >>> drop = nn.Dropout(0.5)
    >>> drop(minidl.ones(6))
    tensor([2., 0., 0., 0., 2., 2.])
    >>> drop.eval()(minidl.ones(6))
    tensor([1., 1., 1., 1., 1., 1.])

    See docs/lrn_dropout.md.
    """
    def __init__(self, p=0.5, inplace=False):
        super().__init__()
        if not 0 <= p <= 1:
            raise ValueError(f"Dropout: p must be in [0, 1], got {p}")
        self.p, self.inplace = p, inplace

    def forward(self, x):
        return F.dropout(x, self.p, self.training)

    def extra_repr(self):
        return f"p={self.p}, inplace={self.inplace}"


class Dropout2d(Dropout):
    """Spatial dropout (Tompson et al. 2015): in train() zero whole channels with probability p.

    Formula: train(): y[n, c] = x[n, c] * m[n, c] / (1 - p), m ~ Bernoulli(1 - p); eval(): y = x

    Args:
        p (float): probability of zeroing a channel. Default: 0.5.
        inplace (bool): accepted; a new tensor is returned. Default: False.

    Shape:
        input (N, C, H, W) or (C, H, W), output the same.

    >>> import minidl, minidl.nn as nn
    >>> g = minidl.manual_seed(0)
    >>> nn.Dropout2d(0.5)(minidl.ones(1, 4, 2, 2))[0, :, 0, 0]
    tensor([2., 0., 0., 0.])

    See docs/lrn_dropout.md.
    """
    def forward(self, x):
        return F.dropout2d(x, self.p, self.training)


# ----------------------------------------------------------------------------- activations
def _activation(name, fn, doc, args=()):
    """A Module class calling ``fn`` with the keyword options listed in ``args`` (name, default)."""

    def __init__(self, *values, inplace=False, **kwargs):
        Module.__init__(self)
        for (arg, default), value in zip(args, values):
            kwargs.setdefault(arg, value)
        for arg, default in args:
            setattr(self, arg, kwargs.get(arg, default))
        self.inplace = inplace

    def forward(self, x):
        options = {arg: getattr(self, arg) for arg, _ in args}
        if self.inplace:
            options["inplace"] = True
        return fn(x, **options)

    def extra_repr(self):
        parts = [f"{arg}={getattr(self, arg)}" for arg, _ in args]
        if self.inplace:
            parts.append("inplace=True")
        return ", ".join(parts)

    return type(name, (Module,), {"__init__": __init__, "forward": forward, "extra_repr": extra_repr,
                                  "__doc__": doc})


ReLU = _activation("ReLU", F.relu, """Rectified linear unit layer (F.relu).

    Formula: relu(x) = max(0, x)

    Args:
        inplace (bool): overwrite the input where autograd allows (e.g. Conv -> BN -> ReLU(inplace=True)
            fuses into batch norm). Default: False.

    Shape:
        input (*), output (*): the same shape.

    >>> import minidl, minidl.nn as nn
    >>> x = minidl.tensor([-2.0, -0.5, 0.0, 1.0, 3.0])
    >>> nn.ReLU()(x)
    tensor([0., 0., 0., 1., 3.])

    See docs/activations.md.
    """)
ReLU6 = _activation("ReLU6", F.relu6, """ReLU capped at 6 (MobileNet v2) layer.

    Formula: relu6(x) = min(max(0, x), 6)

    Args:
        inplace (bool): as in ReLU. Default: False.

    Shape:
        input (*), output (*): the same shape.

    >>> import minidl, minidl.nn as nn
    >>> x = minidl.tensor([-2.0, -0.5, 0.0, 1.0, 3.0])
    >>> nn.ReLU6()(3 * x)
    tensor([0., 0., 0., 3., 6.])

    See docs/activations.md.
    """)
LeakyReLU = _activation("LeakyReLU", F.leaky_relu, """Leaky ReLU layer.

    Formula: x if x >= 0 else negative_slope * x

    Args:
        negative_slope (float): Default: 0.01.
        inplace (bool): accepted for PyTorch's signature; a new tensor is returned. Default: False.

    Shape:
        input (*), output (*): the same shape.

    >>> import minidl, minidl.nn as nn
    >>> x = minidl.tensor([-2.0, -0.5, 0.0, 1.0, 3.0])
    >>> nn.LeakyReLU(0.1)(x)
    tensor([-0.2 , -0.05,  0.  ,  1.  ,  3.  ])

    See docs/activations.md.
    """, (("negative_slope", 0.01),))
ELU = _activation("ELU", F.elu, """Exponential linear unit layer (Clevert et al. 2015).

    Formula: x if x > 0 else alpha (exp(x) - 1)

    Args:
        alpha (float): Default: 1.0.
        inplace (bool): accepted for PyTorch's signature; a new tensor is returned. Default: False.

    Shape:
        input (*), output (*): the same shape.

    >>> import minidl, minidl.nn as nn
    >>> x = minidl.tensor([-2.0, -0.5, 0.0, 1.0, 3.0])
    >>> nn.ELU()(x)
    tensor([-0.8647, -0.3935,  0.    ,  1.    ,  3.    ])

    See docs/activations.md.
    """, (("alpha", 1.0),))
SELU = _activation("SELU", F.selu, """Scaled ELU layer (Klambauer et al. 2017), self-normalising.

    Formula: scale * (x if x > 0 else alpha (exp(x) - 1)), alpha = 1.6733, scale = 1.0507

    Args:
        inplace (bool): accepted for PyTorch's signature; a new tensor is returned. Default: False.

    Shape:
        input (*), output (*): the same shape.

    >>> import minidl, minidl.nn as nn
    >>> x = minidl.tensor([-2.0, -0.5, 0.0, 1.0, 3.0])
    >>> nn.SELU()(x)
    tensor([-1.5202, -0.6918,  0.    ,  1.0507,  3.1521])

    See docs/activations.md.
    """)
SiLU = _activation("SiLU", F.silu, """SiLU / swish layer (EfficientNet).

    Formula: x * sigmoid(x)

    Args:
        inplace (bool): accepted for PyTorch's signature; a new tensor is returned. Default: False.

    Shape:
        input (*), output (*): the same shape.

    >>> import minidl, minidl.nn as nn
    >>> x = minidl.tensor([-2.0, -0.5, 0.0, 1.0, 3.0])
    >>> nn.SiLU()(x)
    tensor([-0.2384, -0.1888,  0.    ,  0.7311,  2.8577])

    See docs/activations.md.
    """)
GELU = _activation("GELU", F.gelu, """Gaussian error linear unit layer (Transformers).

    Formula: x * Phi(x) = x/2 (1 + erf(x / sqrt 2)); 'tanh': x/2 (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))

    Args:
        approximate (str): 'none' or 'tanh'. Default: 'none'.

    Shape:
        input (*), output (*): the same shape.

    >>> import minidl, minidl.nn as nn
    >>> x = minidl.tensor([-2.0, -0.5, 0.0, 1.0, 3.0])
    >>> nn.GELU(approximate='tanh')(x)
    tensor([-0.0454, -0.1543,  0.    ,  0.8412,  2.9964])

    See docs/activations.md.
    """, (("approximate", "none"),))
Sigmoid = _activation("Sigmoid", F.sigmoid, """Logistic sigmoid layer.

    Formula: 1 / (1 + exp(-x))

    Args:
        None.

    Shape:
        input (*), output (*): the same shape.

    >>> import minidl, minidl.nn as nn
    >>> x = minidl.tensor([-2.0, -0.5, 0.0, 1.0, 3.0])
    >>> nn.Sigmoid()(x)
    tensor([0.1192, 0.3775, 0.5   , 0.7311, 0.9526])

    See docs/activations.md.
    """)
Tanh = _activation("Tanh", F.tanh, """Hyperbolic tangent layer.

    Formula: tanh(x)

    Args:
        None.

    Shape:
        input (*), output (*): the same shape.

    >>> import minidl, minidl.nn as nn
    >>> x = minidl.tensor([-2.0, -0.5, 0.0, 1.0, 3.0])
    >>> nn.Tanh()(x)
    tensor([-0.964 , -0.4621,  0.    ,  0.7616,  0.9951])

    See docs/activations.md.
    """)
Hardswish = _activation("Hardswish", F.hardswish, """Hard swish layer (MobileNet v3).

    Formula: x * relu6(x + 3) / 6

    Args:
        inplace (bool): accepted for PyTorch's signature; a new tensor is returned. Default: False.

    Shape:
        input (*), output (*): the same shape.

    >>> import minidl, minidl.nn as nn
    >>> x = minidl.tensor([-2.0, -0.5, 0.0, 1.0, 3.0])
    >>> nn.Hardswish()(x)
    tensor([-0.3333, -0.2083,  0.    ,  0.6667,  3.    ])

    See docs/activations.md.
    """)
Hardsigmoid = _activation("Hardsigmoid", F.hardsigmoid, """Hard sigmoid layer (MobileNet v3 squeeze-excitation).

    Formula: relu6(x + 3) / 6

    Args:
        inplace (bool): accepted for PyTorch's signature; a new tensor is returned. Default: False.

    Shape:
        input (*), output (*): the same shape.

    >>> import minidl, minidl.nn as nn
    >>> x = minidl.tensor([-2.0, -0.5, 0.0, 1.0, 3.0])
    >>> nn.Hardsigmoid()(x)
    tensor([0.1667, 0.4167, 0.5   , 0.6667, 1.    ])

    See docs/activations.md.
    """)
Softplus = _activation("Softplus", F.softplus, """Softplus layer, a smooth ReLU.

    Formula: log(1 + exp(beta x)) / beta; x itself where beta x > threshold

    Args:
        beta (float): Default: 1.0.
        threshold (float): Default: 20.0.

    Shape:
        input (*), output (*): the same shape.

    >>> import minidl, minidl.nn as nn
    >>> x = minidl.tensor([-2.0, -0.5, 0.0, 1.0, 3.0])
    >>> nn.Softplus(beta=2.0)(x)
    tensor([0.0091, 0.1566, 0.3466, 1.0635, 3.0012])

    See docs/activations.md.
    """, (("beta", 1.0), ("threshold", 20.0)))
Softmax = _activation("Softmax", F.softmax, """Softmax layer along ``dim`` with a temperature (a minidl extra).

    Formula: exp(x_i / T) / sum_j exp(x_j / T), after subtracting max(x)

    Args:
        dim (int): the dimension that sums to 1. Default: -1 (PyTorch: None, an implicit choice).
        temperature (float): T. Default: 1.0.

    Shape:
        input (*), output (*): the same shape.

    >>> import minidl, minidl.nn as nn
    >>> # probabilities summing to 1
    >>> nn.Softmax(dim=0)(minidl.tensor([1.0, 2.0, 3.0]))
    tensor([0.09  , 0.2447, 0.6652])

    See docs/softmax_cross_entropy.md.
    """, (("dim", -1), ("temperature", 1.0)))
LogSoftmax = _activation("LogSoftmax", F.log_softmax, """Log-softmax layer along ``dim`` (pair with NLLLoss).

    Formula: x_i / T - log sum_j exp(x_j / T)

    Args:
        dim (int): Default: -1.
        temperature (float): T. Default: 1.0.

    Shape:
        input (*), output (*): the same shape.

    >>> import minidl, minidl.nn as nn
    >>> # no overflow for large logits
    >>> nn.LogSoftmax(dim=0)(minidl.tensor([1000.0, 1001.0]))
    tensor([-1.3133, -0.3133])

    See docs/softmax_cross_entropy.md.
    """,
                         (("dim", -1), ("temperature", 1.0)))
CELU = _activation("CELU", F.celu, """Continuously differentiable ELU layer.

    Formula: max(0, x) + min(0, alpha (exp(x / alpha) - 1))

    Args:
        alpha (float): Default: 1.0.
        inplace (bool): accepted for PyTorch's signature; a new tensor is returned. Default: False.

    Shape:
        input (*), output (*): the same shape.

    >>> import minidl, minidl.nn as nn
    >>> x = minidl.tensor([-2.0, -0.5, 0.0, 1.0, 3.0])
    >>> nn.CELU(alpha=2.0)(x)
    tensor([-1.2642, -0.4424,  0.    ,  1.    ,  3.    ])

    See docs/activations.md.
    """, (("alpha", 1.0),))
Mish = _activation("Mish", F.mish, """Mish layer (Misra 2019).

    Formula: x * tanh(softplus(x))

    Args:
        inplace (bool): accepted for PyTorch's signature; a new tensor is returned. Default: False.

    Shape:
        input (*), output (*): the same shape.

    >>> import minidl, minidl.nn as nn
    >>> x = minidl.tensor([-2.0, -0.5, 0.0, 1.0, 3.0])
    >>> nn.Mish()(x)
    tensor([-0.2525, -0.2207,  0.    ,  0.8651,  2.9865])

    See docs/activations.md.
    """)
Hardtanh = _activation("Hardtanh", F.hardtanh, """Hard tanh layer: clip to [min_val, max_val].

    Formula: min(max(x, min_val), max_val)

    Args:
        min_val (float): Default: -1.0.
        max_val (float): Default: 1.0.
        inplace (bool): accepted for PyTorch's signature; a new tensor is returned. Default: False.

    Shape:
        input (*), output (*): the same shape.

    >>> import minidl, minidl.nn as nn
    >>> x = minidl.tensor([-2.0, -0.5, 0.0, 1.0, 3.0])
    >>> nn.Hardtanh()(x)
    tensor([-1. , -0.5,  0. ,  1. ,  1. ])

    See docs/activations.md.
    """,
                       (("min_val", -1.0), ("max_val", 1.0)))
LogSigmoid = _activation("LogSigmoid", F.logsigmoid, """Log-sigmoid layer, without overflow.

    Formula: log(sigmoid(x)) = -softplus(-x)

    Args:
        None.

    Shape:
        input (*), output (*): the same shape.

    >>> import minidl, minidl.nn as nn
    >>> x = minidl.tensor([-2.0, -0.5, 0.0, 1.0, 3.0])
    >>> nn.LogSigmoid()(x)
    tensor([-2.1269, -0.9741, -0.6931, -0.3133, -0.0486])

    See docs/activations.md.
    """)
Softsign = _activation("Softsign", F.softsign, """Softsign layer.

    Formula: x / (1 + |x|)

    Args:
        None.

    Shape:
        input (*), output (*): the same shape.

    >>> import minidl, minidl.nn as nn
    >>> x = minidl.tensor([-2.0, -0.5, 0.0, 1.0, 3.0])
    >>> nn.Softsign()(x)
    tensor([-0.6667, -0.3333,  0.    ,  0.5   ,  0.75  ])

    See docs/activations.md.
    """)
Tanhshrink = _activation("Tanhshrink", F.tanhshrink, """Tanh-shrink layer.

    Formula: x - tanh(x)

    Args:
        None.

    Shape:
        input (*), output (*): the same shape.

    >>> import minidl, minidl.nn as nn
    >>> x = minidl.tensor([-2.0, -0.5, 0.0, 1.0, 3.0])
    >>> nn.Tanhshrink()(x)
    tensor([-1.036 , -0.0379,  0.    ,  0.2384,  2.0049])

    See docs/activations.md.
    """)
Hardshrink = _activation("Hardshrink", F.hardshrink, """Hard shrinkage layer.

    Formula: x if |x| > lambd else 0

    Args:
        lambd (float): Default: 0.5.

    Shape:
        input (*), output (*): the same shape.

    >>> import minidl, minidl.nn as nn
    >>> x = minidl.tensor([-2.0, -0.5, 0.0, 1.0, 3.0])
    >>> nn.Hardshrink()(x)
    tensor([-2.,  0.,  0.,  1.,  3.])

    See docs/activations.md.
    """, (("lambd", 0.5),))
Softshrink = _activation("Softshrink", F.softshrink, """Soft shrinkage (soft thresholding) layer.

    Formula: x - lambd above lambd, x + lambd below -lambd, else 0

    Args:
        lambd (float): Default: 0.5.

    Shape:
        input (*), output (*): the same shape.

    >>> import minidl, minidl.nn as nn
    >>> x = minidl.tensor([-2.0, -0.5, 0.0, 1.0, 3.0])
    >>> nn.Softshrink()(x)
    tensor([-1.5,  0. ,  0. ,  0.5,  2.5])

    See docs/activations.md.
    """, (("lambd", 0.5),))
GLU = _activation("GLU", F.glu, """Gated linear unit layer: one half of ``dim`` gated by the sigmoid of the other.

    Formula: glu(a, b) = a * sigmoid(b); the size along dim halves

    Args:
        dim (int): Default: -1.

    Shape:
        input (*), output (*): the same shape.

    >>> import minidl, minidl.nn as nn
    >>> # (*, 2M) -> (*, M)
    >>> nn.GLU()(minidl.tensor([[1.0, -2.0, 0.0, 100.0]]))
    tensor([[ 0.5, -2. ]])

    See docs/activations.md.
    """, (("dim", -1),))
Softmin = _activation("Softmin", F.softmin, """Softmin layer: softmax of -x along ``dim``.

    Formula: exp(-x_i) / sum_j exp(-x_j)

    Args:
        dim (int or None): None picks PyTorch's legacy choice (0 for 0-, 1- and 3-D inputs, else 1).
            Default: None.

    Shape:
        input (*), output (*): the same shape.

    >>> import minidl, minidl.nn as nn
    >>> # the smallest value gets the largest weight
    >>> nn.Softmin(dim=0)(minidl.tensor([1.0, 2.0, 3.0]))
    tensor([0.6652, 0.2447, 0.09  ])

    See docs/softmax_cross_entropy.md.
    """, (("dim", None),))


# ----------------------------------------------------------------------------- convolution
class Conv2d(Module):
    """2-D convolution layer: C_out learned filters slid over an image (cross-correlation).

    Formula: y[n, o] = b[o] + sum_c w[o, c] ⋆ x[n, c], ⋆ the 2-D cross-correlation, c over the channels of o's group;
             out = floor((H + 2p - d (k - 1) - 1) / s) + 1;
             weight and bias ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (PyTorch's kaiming_uniform_ with a = sqrt(5))

    Args:
        in_channels (int): C_in.
        out_channels (int): C_out.
        kernel_size (int or tuple): (kh, kw).
        stride (int or tuple): step of the window. Default: 1.
        padding (int, tuple, 'valid' or 'same'): added on both sides; 'same' keeps the size (stride 1). Default: 0.
        dilation (int or tuple): spacing between kernel taps. Default: 1.
        groups (int): independent channel groups; groups = in_channels = out_channels is depthwise. Default: 1.
        bias (bool): learn an additive bias. Default: True.
        padding_mode (str): 'zeros', 'reflect', 'replicate' or 'circular'. Default: 'zeros'.
        dtype: parameter dtype. Default: None (float32).

    Shape:
        input (N, C_in, H, W) or (C_in, H, W), output (N, C_out, H_out, W_out).

    Attributes:
        weight (Parameter): (C_out, C_in/groups, kh, kw).
        bias (Parameter or None): (C_out,).

    >>> import minidl, minidl.nn as nn
    >>> g = minidl.manual_seed(0)
    >>> conv = nn.Conv2d(3, 8, 3, stride=2, padding=1)
    >>> conv.weight.shape, conv(minidl.ones(1, 3, 32, 32)).shape
    ((8, 3, 3, 3), (1, 8, 16, 16))
    >>> nn.Conv2d(8, 8, 3, groups=8).weight.shape  # depthwise: one 3x3 filter per channel
    (8, 1, 3, 3)

    See docs/convolution.md.
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1,
                 bias=True, padding_mode="zeros", dtype=None):
        super().__init__()
        if in_channels % groups or out_channels % groups:
            raise ValueError(f"Conv2d: groups={groups} must divide in_channels={in_channels} and "
                             f"out_channels={out_channels}")
        if padding_mode not in ("zeros", "reflect", "replicate", "circular"):
            raise ValueError(f"Conv2d: padding_mode must be 'zeros', 'reflect', 'replicate' or 'circular', "
                             f"got {padding_mode!r}")
        self.padding_mode = padding_mode
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size = _pair(kernel_size)
        self.stride = _pair(stride)
        self.padding = padding if isinstance(padding, str) else _pair(padding)
        self.dilation = _pair(dilation)
        self.groups = groups
        shape = (out_channels, in_channels // groups) + self.kernel_size
        self.weight = Parameter(np.empty(shape, dtype=dtype or np.float32))
        if bias:
            self.bias = Parameter(np.empty(out_channels, dtype=dtype or np.float32))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self):
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in = self.weight.shape[1] * self.kernel_size[0] * self.kernel_size[1]
            bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
            init.uniform_(self.bias, -bound, bound)

    def forward(self, x):
        if x.ndim >= 3 and x.shape[-3] != self.in_channels:
            raise ValueError(f"Conv2d: expected input with {self.in_channels} channels, got shape {x.shape}")
        # padding_mode other than zeros: F.pad first (a Conv2d pickled before padding_mode existed pads zeros)
        x, padding = _pad_by_mode(x, self.padding, getattr(self, "padding_mode", "zeros"), self.kernel_size,
                                  self.dilation)
        return F.conv2d(x, self.weight, self.bias, self.stride, padding, self.dilation, self.groups)

    def extra_repr(self):
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        if self.padding not in ((0, 0), "valid"):
            s += f", padding={self.padding}"
        if self.dilation != (1, 1):
            s += f", dilation={self.dilation}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        if getattr(self, "padding_mode", "zeros") != "zeros":
            s += f", padding_mode={self.padding_mode}"
        return s


def _pad_by_mode(x, padding, padding_mode, kernel_size, dilation):
    """(x, padding) for the convolution: with a padding_mode other than "zeros", x padded by F.pad
    in that mode and no padding left for the convolution ("same": the odd pixel on the right)."""
    if padding_mode == "zeros":
        return x, padding
    if padding == "valid":
        return x, 0
    if padding == "same":
        spans = [d * (k - 1) for k, d in zip(kernel_size, dilation)]
        sides = [(span // 2, span - span // 2) for span in spans]
    else:
        sides = [(p, p) for p in padding]
    amounts = []
    for lo, hi in reversed(sides):  # F.pad lists the last dimension first
        amounts += [lo, hi]
    return F.pad(x, tuple(amounts), mode=padding_mode), 0


class _ConvNd(Module):
    """Shared body of Conv1d, Conv3d and the transposed convolutions (PyTorch's initialisation).

    The weight is (out, in/groups, *k), or (in, out/groups, *k) when transposed; both start
    kaiming-uniform (a=sqrt(5)) with the bias uniform in +-1/sqrt(fan_in), as PyTorch.
    """

    n_dims = 2
    transposed = False

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1,
                 bias=True, padding_mode="zeros", dtype=None, output_padding=0):
        super().__init__()
        name = type(self).__name__
        if in_channels % groups or out_channels % groups:
            raise ValueError(f"{name}: groups={groups} must divide in_channels={in_channels} and "
                             f"out_channels={out_channels}")
        if padding_mode not in ("zeros", "reflect", "replicate", "circular"):
            raise ValueError(f"{name}: padding_mode must be 'zeros', 'reflect', 'replicate' or 'circular', "
                             f"got {padding_mode!r}")
        if self.transposed and padding_mode != "zeros":
            raise ValueError(f"{name}: only padding_mode='zeros' is supported for transposed convolutions")
        n = self.n_dims
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.kernel_size = F._ntuple(kernel_size, n, name)
        self.stride = F._ntuple(stride, n, name)
        self.padding = padding if isinstance(padding, str) else F._ntuple(padding, n, name)
        self.dilation = F._ntuple(dilation, n, name)
        self.output_padding = F._ntuple(output_padding, n, name)
        self.padding_mode = padding_mode
        if self.transposed:
            shape = (in_channels, out_channels // groups) + self.kernel_size
        else:
            shape = (out_channels, in_channels // groups) + self.kernel_size
        self.weight = Parameter(np.empty(shape, dtype=dtype or np.float32))
        if bias:
            self.bias = Parameter(np.empty(out_channels, dtype=dtype or np.float32))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self):
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in = self.weight.shape[1] * int(np.prod(self.kernel_size))
            bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
            init.uniform_(self.bias, -bound, bound)

    def extra_repr(self):
        s = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
             f"stride={self.stride}")
        if self.padding != (0,) * self.n_dims:
            s += f", padding={self.padding}"
        if self.dilation != (1,) * self.n_dims:
            s += f", dilation={self.dilation}"
        if self.output_padding != (0,) * self.n_dims:
            s += f", output_padding={self.output_padding}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        if self.padding_mode != "zeros":
            s += f", padding_mode={self.padding_mode}"
        return s


class Conv1d(_ConvNd):
    """1-D convolution layer over sequences (N, C, L).

    Formula: y[n, o, l] = b[o] + sum_{c, j} w[o, c, j] x[n, c, l s + j d - p];
             weight and bias ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (PyTorch's kaiming_uniform_ with a = sqrt(5))

    Args:
        in_channels (int): C_in.
        out_channels (int): C_out.
        kernel_size (int or tuple): k.
        stride (int or tuple): step of the window. Default: 1.
        padding (int, tuple, 'valid' or 'same'): added on both sides; 'same' keeps the size (stride 1). Default: 0.
        dilation (int or tuple): spacing between kernel taps. Default: 1.
        groups (int): independent channel groups; groups = in_channels = out_channels is depthwise. Default: 1.
        bias (bool): learn an additive bias. Default: True.
        padding_mode (str): 'zeros', 'reflect', 'replicate' or 'circular'. Default: 'zeros'.
        dtype: parameter dtype. Default: None (float32).

    Shape:
        input (N, C_in, L) or (C_in, L), output (N, C_out, L_out), L_out = floor((L + 2p - d(k-1) - 1) / s) + 1.

    Attributes:
        weight (Parameter): (C_out, C_in/groups, k).
        bias (Parameter or None): (C_out,).

    >>> import minidl, minidl.nn as nn
    >>> g = minidl.manual_seed(0)
    >>> conv = nn.Conv1d(4, 6, 3, padding='same')
    >>> conv.weight.shape, conv(minidl.ones(2, 4, 10)).shape
    ((6, 4, 3), (2, 6, 10))

    See docs/convolution.md.
    """

    n_dims = 1

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1,
                 bias=True, padding_mode="zeros", dtype=None):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias,
                         padding_mode, dtype)

    def forward(self, x):
        x, padding = _pad_by_mode(x, self.padding, self.padding_mode, self.kernel_size, self.dilation)
        return F.conv1d(x, self.weight, self.bias, self.stride, padding, self.dilation, self.groups)


class Conv3d(_ConvNd):
    """3-D convolution layer over volumes (N, C, D, H, W).

    Formula: as Conv2d with a third spatial dimension;
             weight and bias ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (PyTorch's kaiming_uniform_ with a = sqrt(5))

    Args:
        in_channels (int): C_in.
        out_channels (int): C_out.
        kernel_size (int or tuple): (kd, kh, kw).
        stride (int or tuple): step of the window. Default: 1.
        padding (int, tuple, 'valid' or 'same'): added on both sides; 'same' keeps the size (stride 1). Default: 0.
        dilation (int or tuple): spacing between kernel taps. Default: 1.
        groups (int): independent channel groups; groups = in_channels = out_channels is depthwise. Default: 1.
        bias (bool): learn an additive bias. Default: True.
        padding_mode (str): 'zeros', 'reflect', 'replicate' or 'circular'. Default: 'zeros'.
        dtype: parameter dtype. Default: None (float32).

    Shape:
        input (N, C_in, D, H, W) or unbatched, output (N, C_out, D_out, H_out, W_out).

    Attributes:
        weight (Parameter): (C_out, C_in/groups, kd, kh, kw).
        bias (Parameter or None): (C_out,).

    >>> import minidl, minidl.nn as nn
    >>> g = minidl.manual_seed(0)
    >>> nn.Conv3d(2, 4, 3, padding=1)(minidl.ones(1, 2, 4, 4, 4)).shape
    (1, 4, 4, 4, 4)

    See docs/convolution.md.
    """

    n_dims = 3

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1,
                 bias=True, padding_mode="zeros", dtype=None):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias,
                         padding_mode, dtype)

    def forward(self, x):
        x, padding = _pad_by_mode(x, self.padding, self.padding_mode, self.kernel_size, self.dilation)
        return F.conv3d(x, self.weight, self.bias, self.stride, padding, self.dilation, self.groups)


class _ConvTransposeNd(_ConvNd):
    transposed = True

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, output_padding=0, groups=1,
                 bias=True, dilation=1, padding_mode="zeros", dtype=None):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias,
                         padding_mode, dtype, output_padding)

    def _output_padding(self, x, output_size):
        """output_padding, or the one that makes the output ``output_size`` (PyTorch's forward argument)."""
        if output_size is None:
            return self.output_padding
        n = self.n_dims
        wanted = tuple(int(v) for v in tuple(output_size)[-n:])
        extra = []
        for i in range(n):
            smallest = ((x.shape[-n + i] - 1) * self.stride[i] - 2 * self.padding[i]
                        + self.dilation[i] * (self.kernel_size[i] - 1) + 1)
            if not smallest <= wanted[i] < smallest + max(self.stride[i], self.dilation[i]):
                raise ValueError(f"{type(self).__name__}: requested output size {wanted} is not reachable; "
                                 f"dimension {i} must be in [{smallest}, {smallest + self.stride[i] - 1}]")
            extra.append(wanted[i] - smallest)
        return tuple(extra)


class ConvTranspose1d(_ConvTransposeNd):
    """Transposed 1-D convolution layer (learned upsampling; the gradient of Conv1d).

    Formula: each input value scatters x[c_in, i] * w[c_in, c_out, :] at i*s;
             L_out = (L - 1) s - 2p + d (k - 1) + output_padding + 1;
             weight and bias ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (PyTorch's kaiming_uniform_ with a = sqrt(5))

    Args:
        in_channels (int): C_in.
        out_channels (int): C_out.
        kernel_size (int or tuple): k.
        stride (int or tuple): upsampling step. Default: 1.
        padding (int or tuple): cropped from each side of the full output. Default: 0.
        output_padding (int or tuple): extra size on one side, to pick among output sizes. Default: 0.
        groups (int): independent channel groups. Default: 1.
        bias (bool): Default: True.
        dilation (int or tuple): Default: 1.
        padding_mode (str): only 'zeros'. Default: 'zeros'.
        dtype: parameter dtype. Default: None (float32).

    Shape:
        input (N, C_in, L), output (N, C_out, L_out). forward(x, output_size=None) may ask for a size.

    Attributes:
        weight (Parameter): (C_in, C_out/groups, k).
        bias (Parameter or None): (C_out,).

    >>> import minidl, minidl.nn as nn
    >>> g = minidl.manual_seed(0)
    >>> nn.ConvTranspose1d(4, 2, 3, stride=2)(minidl.ones(1, 4, 5)).shape
    (1, 2, 11)

    See docs/convolution.md.
    """

    n_dims = 1

    def forward(self, x, output_size=None):
        return F.conv_transpose1d(x, self.weight, self.bias, self.stride, self.padding,
                                  self._output_padding(x, output_size), self.groups, self.dilation)


class ConvTranspose2d(_ConvTransposeNd):
    """Transposed 2-D convolution layer (learned upsampling, "deconvolution"; the gradient of Conv2d).

    Formula: H_out = (H - 1) s - 2p + d (kh - 1) + output_padding + 1 (and W alike);
             weight and bias ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (PyTorch's kaiming_uniform_ with a = sqrt(5))

    Args:
        in_channels (int): C_in.
        out_channels (int): C_out.
        kernel_size (int or tuple): (kh, kw).
        stride (int or tuple): upsampling step. Default: 1.
        padding (int or tuple): cropped from each side of the full output. Default: 0.
        output_padding (int or tuple): extra size on one side, to pick among output sizes. Default: 0.
        groups (int): independent channel groups. Default: 1.
        bias (bool): Default: True.
        dilation (int or tuple): Default: 1.
        padding_mode (str): only 'zeros'. Default: 'zeros'.
        dtype: parameter dtype. Default: None (float32).

    Shape:
        input (N, C_in, H, W), output (N, C_out, H_out, W_out). forward(x, output_size=None).

    Attributes:
        weight (Parameter): (C_in, C_out/groups, kh, kw).
        bias (Parameter or None): (C_out,).

    >>> import minidl, minidl.nn as nn
    >>> g = minidl.manual_seed(0)
    >>> up = nn.ConvTranspose2d(8, 4, 3, stride=2, padding=1)
    >>> up(minidl.ones(1, 8, 5, 5)).shape, up(minidl.ones(1, 8, 5, 5), output_size=(10, 10)).shape
    ((1, 4, 9, 9), (1, 4, 10, 10))

    See docs/convolution.md.
    """

    n_dims = 2

    def forward(self, x, output_size=None):
        return F.conv_transpose2d(x, self.weight, self.bias, self.stride, self.padding,
                                  self._output_padding(x, output_size), self.groups, self.dilation)


class ConvTranspose3d(_ConvTransposeNd):
    """Transposed 3-D convolution layer (learned upsampling of volumes).

    Formula: D_out = (D - 1) s - 2p + d (kd - 1) + output_padding + 1 per dimension;
             weight and bias ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (PyTorch's kaiming_uniform_ with a = sqrt(5))

    Args:
        in_channels (int): C_in.
        out_channels (int): C_out.
        kernel_size (int or tuple): (kd, kh, kw).
        stride (int or tuple): upsampling step. Default: 1.
        padding (int or tuple): cropped from each side of the full output. Default: 0.
        output_padding (int or tuple): extra size on one side, to pick among output sizes. Default: 0.
        groups (int): independent channel groups. Default: 1.
        bias (bool): Default: True.
        dilation (int or tuple): Default: 1.
        padding_mode (str): only 'zeros'. Default: 'zeros'.
        dtype: parameter dtype. Default: None (float32).

    Shape:
        input (N, C_in, D, H, W), output (N, C_out, D_out, H_out, W_out).

    Attributes:
        weight (Parameter): (C_in, C_out/groups, kd, kh, kw).
        bias (Parameter or None): (C_out,).

    >>> import minidl, minidl.nn as nn
    >>> g = minidl.manual_seed(0)
    >>> nn.ConvTranspose3d(2, 3, 2, stride=2)(minidl.ones(1, 2, 2, 2, 2)).shape
    (1, 3, 4, 4, 4)

    See docs/convolution.md.
    """

    n_dims = 3

    def forward(self, x, output_size=None):
        return F.conv_transpose3d(x, self.weight, self.bias, self.stride, self.padding,
                                  self._output_padding(x, output_size), self.groups, self.dilation)


# ----------------------------------------------------------------------------- pooling
class MaxPool2d(Module):
    """2-D max pooling layer: the largest value of each window (see F.max_pool2d).

    Formula: y[n, c, i, j] = max over the window at (i s - p, j s - p);
             out = floor((in + 2 p - d (k - 1) - 1) / s) + 1 per dimension;
             backward: the gradient goes to the first maximum in scan order

    Args:
        kernel_size (int or tuple): window size.
        stride (int or tuple, optional): Default: None (= kernel_size).
        padding (int or tuple): implicit -inf padding on both sides. Default: 0.
        dilation (int or tuple): spacing between window taps. Default: 1.
        return_indices (bool): forward also returns the argmax indices (for MaxUnpool). Default: False.
        ceil_mode (bool): round the output size up. Default: False.

    Shape:
        input (N, C, H, W) or (C, H, W), output (N, C, H_out, W_out).

    >>> import minidl, minidl.nn as nn
    >>> x = minidl.tensor([[[[1.0, 5, 2, 0], [3, 4, 8, 1], [0, 2, 6, 7], [9, 1, 3, 2]]]])
    >>> nn.MaxPool2d(2)(x)
    tensor([[[[5., 8.],
              [9., 7.]]]])
    >>> nn.MaxPool2d(3, stride=1, padding=1)(x).shape
    (1, 1, 4, 4)

    See docs/pooling.md.
    """
    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, return_indices=False, ceil_mode=False):
        super().__init__()
        self.kernel_size, self.stride = kernel_size, stride if stride is not None else kernel_size
        self.padding, self.dilation = padding, dilation
        self.return_indices, self.ceil_mode = return_indices, ceil_mode

    def forward(self, x):
        return F.max_pool2d(x, self.kernel_size, self.stride, self.padding, self.dilation, self.ceil_mode,
                            self.return_indices)

    def extra_repr(self):
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
                f"dilation={self.dilation}, ceil_mode={self.ceil_mode}")


class AvgPool2d(Module):
    """2-D average pooling layer: the mean of each window (see F.avg_pool2d).

    Formula: y = (1 / (kh kw)) sum over the window;
             out = floor((in + 2 p - d (k - 1) - 1) / s) + 1 per dimension (d = 1)

    Args:
        kernel_size (int or tuple): window size.
        stride (int or tuple, optional): Default: None (= kernel_size).
        padding (int or tuple): implicit zero padding on both sides. Default: 0.
        ceil_mode (bool): round the output size up. Default: False.
        count_include_pad (bool): count padded zeros in the divisor. Default: True.
        divisor_override (int, optional): divide each window sum by this instead. Default: None.

    Shape:
        input (N, C, H, W) or (C, H, W), output (N, C, H_out, W_out).

    >>> import minidl, minidl.nn as nn
    >>> x = minidl.tensor([[[[1.0, 5, 2, 0], [3, 4, 8, 1], [0, 2, 6, 7], [9, 1, 3, 2]]]])
    >>> nn.AvgPool2d(2)(x)
    tensor([[[[3.25, 2.75],
              [3.  , 4.5 ]]]])

    See docs/pooling.md.
    """
    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
                 divisor_override=None):
        super().__init__()
        self.kernel_size, self.stride = kernel_size, stride if stride is not None else kernel_size
        self.padding, self.ceil_mode = padding, ceil_mode
        self.count_include_pad, self.divisor_override = count_include_pad, divisor_override

    def forward(self, x):
        return F.avg_pool2d(x, self.kernel_size, self.stride, self.padding, self.ceil_mode, self.count_include_pad,
                            self.divisor_override)

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class AdaptiveAvgPool2d(Module):
    """Adaptive 2-D average pooling layer: any input size to a fixed output size.

    Formula: bin i covers [floor(i in / out), ceil((i + 1) in / out)) of each dimension;
             output_size 1 is global average pooling

    Args:
        output_size (int or tuple): (OH, OW); None in a tuple keeps that size.

    Shape:
        input (N, C, H, W) or (C, H, W), output (N, C, OH, OW).

    >>> import minidl, minidl.nn as nn
    >>> x = minidl.tensor([[[[1.0, 5, 2, 0], [3, 4, 8, 1], [0, 2, 6, 7], [9, 1, 3, 2]]]])
    >>> nn.AdaptiveAvgPool2d(1)(x)
    tensor([[[[3.375]]]])
    >>> nn.AdaptiveAvgPool2d((2, None))(x).shape
    (1, 1, 2, 4)

    See docs/pooling.md.
    """
    def __init__(self, output_size):
        super().__init__()
        self.output_size = output_size

    def forward(self, x):
        return F.adaptive_avg_pool2d(x, self.output_size)

    def extra_repr(self):
        return f"output_size={self.output_size}"


class AdaptiveMaxPool2d(AdaptiveAvgPool2d):
    """Adaptive 2-D max pooling layer: any input size to a fixed output size.

    Formula: bin i covers [floor(i in / out), ceil((i + 1) in / out)) of each dimension

    Args:
        output_size (int or tuple): (OH, OW); None in a tuple keeps that size.
        return_indices (bool): also return the argmax indices. Default: False.

    Shape:
        input (N, C, H, W) or (C, H, W), output (N, C, OH, OW).

    >>> import minidl, minidl.nn as nn
    >>> x = minidl.tensor([[[[1.0, 5, 2, 0], [3, 4, 8, 1], [0, 2, 6, 7], [9, 1, 3, 2]]]])
    >>> nn.AdaptiveMaxPool2d(2)(x)
    tensor([[[[5., 8.],
              [9., 7.]]]])

    See docs/pooling.md.
    """
    def __init__(self, output_size, return_indices=False):
        super().__init__(output_size)
        self.return_indices = return_indices

    def forward(self, x):
        return F.adaptive_max_pool2d(x, self.output_size, self.return_indices)


class MaxPool1d(Module):
    """1-D max pooling layer over sequences (see F.max_pool1d).

    Formula: y[n, c, l] = max_j x[n, c, l s + j d - p]; out = floor((in + 2 p - d (k - 1) - 1) / s) + 1 per dimension

    Args:
        kernel_size (int or tuple): window size.
        stride (int or tuple, optional): Default: None (= kernel_size).
        padding (int or tuple): implicit -inf padding on both sides. Default: 0.
        dilation (int or tuple): spacing between window taps. Default: 1.
        return_indices (bool): forward also returns the argmax indices (for MaxUnpool). Default: False.
        ceil_mode (bool): round the output size up. Default: False.

    Shape:
        input (N, C, L) or (C, L), output (N, C, L_out).

    >>> import minidl, minidl.nn as nn
    >>> x = minidl.tensor([[[1.0, 5, 2, 0, 3, 4]]])
    >>> nn.MaxPool1d(2)(x)
    tensor([[[5., 2., 4.]]])

    See docs/pooling.md.
    """
    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, return_indices=False, ceil_mode=False):
        super().__init__()
        self.kernel_size, self.stride = kernel_size, stride if stride is not None else kernel_size
        self.padding, self.dilation = padding, dilation
        self.return_indices, self.ceil_mode = return_indices, ceil_mode

    def forward(self, x):
        return F.max_pool1d(x, self.kernel_size, self.stride, self.padding, self.dilation, self.ceil_mode,
                            self.return_indices)

    def extra_repr(self):
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
                f"dilation={self.dilation}, ceil_mode={self.ceil_mode}")


class MaxPool3d(MaxPool1d):
    """3-D max pooling layer over volumes (see F.max_pool3d).

    Formula: y = max over each (kd, kh, kw) window; out = floor((in + 2 p - d (k - 1) - 1) / s) + 1 per dimension

    Args:
        kernel_size (int or tuple): window size.
        stride (int or tuple, optional): Default: None (= kernel_size).
        padding (int or tuple): implicit -inf padding on both sides. Default: 0.
        dilation (int or tuple): spacing between window taps. Default: 1.
        return_indices (bool): forward also returns the argmax indices (for MaxUnpool). Default: False.
        ceil_mode (bool): round the output size up. Default: False.

    Shape:
        input (N, C, D, H, W) or (C, D, H, W), output (N, C, D_out, H_out, W_out).

    >>> import minidl, minidl.nn as nn
    >>> x = minidl.arange(8.0).reshape(1, 1, 2, 2, 2)
    >>> nn.MaxPool3d(2)(x)
    tensor([[[[[7.]]]]])

    See docs/pooling.md.
    """
    def forward(self, x):
        return F.max_pool3d(x, self.kernel_size, self.stride, self.padding, self.dilation, self.ceil_mode,
                            self.return_indices)


class AvgPool1d(Module):
    """1-D average pooling layer over sequences (see F.avg_pool1d).

    Formula: y[n, c, l] = mean_j x[n, c, l s + j - p]; out = floor((in + 2 p - d (k - 1) - 1) / s) + 1 per dimension

    Args:
        kernel_size (int or tuple): window size.
        stride (int or tuple, optional): Default: None (= kernel_size).
        padding (int or tuple): implicit zero padding on both sides. Default: 0.
        ceil_mode (bool): round the output size up. Default: False.
        count_include_pad (bool): count padded zeros in the divisor. Default: True.

    Shape:
        input (N, C, L) or (C, L), output (N, C, L_out).

    >>> import minidl, minidl.nn as nn
    >>> x = minidl.tensor([[[1.0, 5, 2, 0, 3, 4]]])
    >>> nn.AvgPool1d(2)(x)
    tensor([[[3. , 1. , 3.5]]])

    See docs/pooling.md.
    """
    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True):
        super().__init__()
        self.kernel_size, self.stride = kernel_size, stride if stride is not None else kernel_size
        self.padding, self.ceil_mode, self.count_include_pad = padding, ceil_mode, count_include_pad

    def forward(self, x):
        return F.avg_pool1d(x, self.kernel_size, self.stride, self.padding, self.ceil_mode, self.count_include_pad)

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class AvgPool3d(AvgPool2d):
    """3-D average pooling layer over volumes (see F.avg_pool3d).

    Formula: y = mean over each (kd, kh, kw) window; out = floor((in + 2 p - d (k - 1) - 1) / s) + 1 per dimension

    Args:
        kernel_size (int or tuple): window size.
        stride (int or tuple, optional): Default: None (= kernel_size).
        padding (int or tuple): implicit zero padding on both sides. Default: 0.
        ceil_mode (bool): round the output size up. Default: False.
        count_include_pad (bool): count padded zeros in the divisor. Default: True.
        divisor_override (int, optional): divide each window sum by this instead. Default: None.

    Shape:
        input (N, C, D, H, W) or (C, D, H, W), output (N, C, D_out, H_out, W_out).

    >>> import minidl, minidl.nn as nn
    >>> x = minidl.arange(8.0).reshape(1, 1, 2, 2, 2)
    >>> nn.AvgPool3d(2)(x)
    tensor([[[[[3.5]]]]])

    See docs/pooling.md.
    """
    def forward(self, x):
        return F.avg_pool3d(x, self.kernel_size, self.stride, self.padding, self.ceil_mode, self.count_include_pad,
                            self.divisor_override)


class AdaptiveAvgPool1d(AdaptiveAvgPool2d):
    """Adaptive 1-D average pooling layer: any length to output_size bins.

    Formula: bin i covers [floor(i in / out), ceil((i + 1) in / out)) of each dimension

    Args:
        output_size (int): the number of bins.

    Shape:
        input (N, C, L) or (C, L), output (N, C, output_size).

    >>> import minidl, minidl.nn as nn
    >>> x = minidl.tensor([[[1.0, 5, 2, 0, 3, 4]]])
    >>> nn.AdaptiveAvgPool1d(2)(x)
    tensor([[[2.6667, 2.3333]]])

    See docs/pooling.md.
    """
    def forward(self, x):
        return F.adaptive_avg_pool1d(x, self.output_size)


class AdaptiveMaxPool1d(AdaptiveMaxPool2d):
    """Adaptive 1-D max pooling layer: any length to output_size bins.

    Formula: bin i covers [floor(i in / out), ceil((i + 1) in / out)) of each dimension

    Args:
        output_size (int): the number of bins.
        return_indices (bool): Default: False.

    Shape:
        input (N, C, L) or (C, L), output (N, C, output_size).

    >>> import minidl, minidl.nn as nn
    >>> x = minidl.tensor([[[1.0, 5, 2, 0, 3, 4]]])
    >>> nn.AdaptiveMaxPool1d(2)(x)
    tensor([[[5., 4.]]])

    See docs/pooling.md.
    """
    def forward(self, x):
        return F.adaptive_max_pool1d(x, self.output_size, self.return_indices)


class AdaptiveAvgPool3d(AdaptiveAvgPool2d):
    """Adaptive 3-D average pooling layer: any volume to an (OD, OH, OW) grid of bins.

    Formula: bin i covers [floor(i in / out), ceil((i + 1) in / out)) of each dimension

    Args:
        output_size (int or tuple): (OD, OH, OW).

    Shape:
        input (N, C, D, H, W) or (C, D, H, W), output (N, C, OD, OH, OW).

    >>> import minidl, minidl.nn as nn
    >>> x = minidl.arange(8.0).reshape(1, 1, 2, 2, 2)
    >>> nn.AdaptiveAvgPool3d(1)(x)
    tensor([[[[[3.5]]]]])

    See docs/pooling.md.
    """
    def forward(self, x):
        return F.adaptive_avg_pool3d(x, self.output_size)


class AdaptiveMaxPool3d(AdaptiveMaxPool2d):
    """Adaptive 3-D max pooling layer: any volume to an (OD, OH, OW) grid of bins.

    Formula: bin i covers [floor(i in / out), ceil((i + 1) in / out)) of each dimension

    Args:
        output_size (int or tuple): (OD, OH, OW).
        return_indices (bool): Default: False.

    Shape:
        input (N, C, D, H, W) or (C, D, H, W), output (N, C, OD, OH, OW).

    >>> import minidl, minidl.nn as nn
    >>> x = minidl.arange(8.0).reshape(1, 1, 2, 2, 2)
    >>> nn.AdaptiveMaxPool3d(1)(x)
    tensor([[[[[7.]]]]])

    See docs/pooling.md.
    """
    def forward(self, x):
        return F.adaptive_max_pool3d(x, self.output_size, self.return_indices)


class _LPPoolNd(Module):
    """Power-average pooling: (sum over each window of x^p)^(1/p)."""

    pool = None

    def __init__(self, norm_type, kernel_size, stride=None, ceil_mode=False):
        super().__init__()
        self.norm_type, self.kernel_size, self.stride, self.ceil_mode = norm_type, kernel_size, stride, ceil_mode

    def forward(self, x):
        return type(self).pool(x, self.norm_type, self.kernel_size, self.stride, self.ceil_mode)

    def extra_repr(self):
        return f"norm_type={self.norm_type}, kernel_size={self.kernel_size}, stride={self.stride}"


class LPPool1d(_LPPoolNd):
    """1-D power-average pooling layer: the p-norm of each window.

    Formula: y = (sum_{window} x^p)^(1/p)

    Args:
        norm_type (float): p.
        kernel_size (int or tuple): window size.
        stride (int or tuple, optional): Default: None (= kernel_size).
        ceil_mode (bool): Default: False.

    Shape:
        input (N, C, L) or (C, L), output (N, C, L_out).

    >>> import minidl, minidl.nn as nn
    >>> nn.LPPool1d(2, 2)(minidl.tensor([[[3.0, 4.0, 1.0, 1.0]]]))
    tensor([[[5.    , 1.4142]]])

    See docs/pooling.md.
    """
    pool = staticmethod(F.lp_pool1d)


class LPPool2d(_LPPoolNd):
    """2-D power-average pooling layer: the p-norm of each window.

    Formula: y = (sum_{window} x^p)^(1/p)

    Args:
        norm_type (float): p.
        kernel_size (int or tuple): window size.
        stride (int or tuple, optional): Default: None (= kernel_size).
        ceil_mode (bool): Default: False.

    Shape:
        input (N, C, H, W) or (C, H, W), output (N, C, H_out, W_out).

    >>> import minidl, minidl.nn as nn
    >>> nn.LPPool2d(1, 2)(minidl.ones(1, 1, 4, 4))
    tensor([[[[4., 4.],
              [4., 4.]]]])

    See docs/pooling.md.
    """
    pool = staticmethod(F.lp_pool2d)


class LPPool3d(_LPPoolNd):
    """3-D power-average pooling layer: the p-norm of each window.

    Formula: y = (sum_{window} x^p)^(1/p)

    Args:
        norm_type (float): p.
        kernel_size (int or tuple): window size.
        stride (int or tuple, optional): Default: None (= kernel_size).
        ceil_mode (bool): Default: False.

    Shape:
        input (N, C, D, H, W) or (C, D, H, W), output (N, C, D_out, H_out, W_out).

    >>> import minidl, minidl.nn as nn
    >>> nn.LPPool3d(2, 2)(minidl.ones(1, 1, 2, 2, 2))
    tensor([[[[[2.8284]]]]])

    See docs/pooling.md.
    """
    pool = staticmethod(F.lp_pool3d)


class _MaxUnpoolNd(Module):
    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__()
        self.kernel_size, self.stride = kernel_size, stride if stride is not None else kernel_size
        self.padding = padding

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class MaxUnpool1d(_MaxUnpoolNd):
    """Partial inverse of MaxPool1d: values back at their argmax positions, zeros elsewhere.

    Formula: y[indices[l]] = x[l]; L_out = (L - 1) s - 2p + k

    Args:
        kernel_size (int or tuple): the pool's window size.
        stride (int or tuple, optional): the pool's stride. Default: None (= kernel_size).
        padding (int or tuple): the pool's padding. Default: 0.

    Shape:
        input and indices (N, C, L), output (N, C, L_out). forward(x, indices, output_size=None).

    >>> import minidl, minidl.nn as nn
    >>> x = minidl.tensor([[[1.0, 5, 2, 0, 3, 4]]])
    >>> y, idx = nn.MaxPool1d(2, return_indices=True)(x)
    >>> nn.MaxUnpool1d(2)(y, idx)
    tensor([[[0., 5., 2., 0., 0., 4.]]])

    See docs/pooling.md.
    """
    def forward(self, x, indices, output_size=None):
        return F.max_unpool1d(x, indices, self.kernel_size, self.stride, self.padding, output_size)


class MaxUnpool2d(_MaxUnpoolNd):
    """Partial inverse of MaxPool2d: values back at their argmax positions, zeros elsewhere.

    Formula: y.flat[indices[i, j]] = x[i, j] per plane; H_out = (H - 1) s - 2p + k

    Args:
        kernel_size (int or tuple): the pool's window size.
        stride (int or tuple, optional): the pool's stride. Default: None (= kernel_size).
        padding (int or tuple): the pool's padding. Default: 0.

    Shape:
        input and indices (N, C, H, W), output (N, C, H_out, W_out). forward(x, indices, output_size=None).

    >>> import minidl, minidl.nn as nn
    >>> x = minidl.tensor([[[[1.0, 5, 2, 0], [3, 4, 8, 1], [0, 2, 6, 7], [9, 1, 3, 2]]]])
    >>> y, idx = nn.MaxPool2d(2, return_indices=True)(x)
    >>> nn.MaxUnpool2d(2)(y, idx)
    tensor([[[[0., 5., 0., 0.],
              [0., 0., 8., 0.],
              [0., 0., 0., 7.],
              [9., 0., 0., 0.]]]])

    See docs/pooling.md.
    """

    def forward(self, x, indices, output_size=None):
        return F.max_unpool2d(x, indices, self.kernel_size, self.stride, self.padding, output_size)


class MaxUnpool3d(_MaxUnpoolNd):
    """Partial inverse of MaxPool3d: values back at their argmax positions, zeros elsewhere.

    Formula: y.flat[indices] = x per volume; D_out = (D - 1) s - 2p + k per dimension

    Args:
        kernel_size (int or tuple): the pool's window size.
        stride (int or tuple, optional): the pool's stride. Default: None (= kernel_size).
        padding (int or tuple): the pool's padding. Default: 0.

    Shape:
        input and indices (N, C, D, H, W), output (N, C, D_out, H_out, W_out).

    >>> import minidl, minidl.nn as nn
    >>> x = minidl.arange(8.0).reshape(1, 1, 2, 2, 2)
    >>> y, idx = nn.MaxPool3d(2, return_indices=True)(x)
    >>> nn.MaxUnpool3d(2)(y, idx).flatten()
    tensor([0., 0., 0., 0., 0., 0., 0., 7.])

    See docs/pooling.md.
    """
    def forward(self, x, indices, output_size=None):
        return F.max_unpool3d(x, indices, self.kernel_size, self.stride, self.padding, output_size)


# ----------------------------------------------------------------------------- resampling
class _PadNd(Module):
    """F.pad as a layer: ``padding`` an int (every side) or (left, right, top, bottom, ...)."""

    mode, n_dims = "constant", 2

    def __init__(self, padding, value=0.0):
        super().__init__()
        if isinstance(padding, (tuple, list)):
            if len(padding) != 2 * self.n_dims:
                raise ValueError(f"{type(self).__name__}: padding must be an int or {2 * self.n_dims} ints, "
                                 f"got {padding}")
            self.padding = tuple(int(p) for p in padding)
        else:
            self.padding = (int(padding),) * (2 * self.n_dims)
        self.value = value

    def forward(self, x):
        return F.pad(x, self.padding, mode=self.mode, value=self.value)

    def extra_repr(self):
        return f"{self.padding}" + (f", value={self.value}" if self.mode == "constant" else "")


def _pad_layer(name, mode, n_dims, zero=False):
    def __init__(self, padding, *value):
        _PadNd.__init__(self, padding, *((0.0,) if zero else value))

    return type(name, (_PadNd,), {"__init__": __init__, "__doc__": _pad_doc(name, mode, n_dims, zero), "mode": mode,
                                  "n_dims": n_dims})


_PAD_RULES = {  # mode: (what the border holds, [1, 2, 3] padded by 2 on each side)
    "constant": ("a constant value", "tensor([[[0., 0., 1., 2., 3., 0., 0.]]])"),
    "reflect": ("the input mirrored without repeating the edge: x2 x1 | x0 x1 x2 | x1 x0",
                "tensor([[[3., 2., 1., 2., 3., 2., 1.]]])"),
    "replicate": ("the edge value repeated: x0 x0 | x0 x1 x2 | x2 x2", "tensor([[[1., 1., 1., 2., 3., 3., 3.]]])"),
    "circular": ("the input wrapped around: x1 x2 | x0 x1 x2 | x0 x1", "tensor([[[2., 3., 1., 2., 3., 1., 2.]]])"),
}


def _pad_doc(name, mode, n_dims, zero):
    """The docstring of a padding layer (ZeroPad1d ... CircularPad3d), one per mode and dimension count."""
    sides = ("left, right", "left, right, top, bottom", "left, right, top, bottom, front, back")[n_dims - 1]
    what, example = _PAD_RULES[mode]
    value_arg = "" if mode != "constant" or zero else (
        "\n        value (float): the fill (PyTorch requires it; here it defaults to 0.0).")
    call = f"{name}(2, 9.0)" if mode == "constant" and not zero else f"{name}(2)"
    if mode == "constant" and not zero:
        example = example.replace("0., 0., 1", "9., 9., 1").replace("3., 0., 0.", "3., 9., 9.")
    if n_dims == 1:
        shown = f">>> nn.{call}(minidl.tensor([[[1.0, 2.0, 3.0]]]))\n    {example}"
    else:
        shown = (f">>> nn.{call}(minidl.ones((1, 1) + (3,) * {n_dims})).shape\n"
                 f"    {(1, 1) + (7,) * n_dims}")
    kind = "zero" if zero else {"constant": "constant", "reflect": "reflection"}.get(mode, mode)
    plural = "s" if n_dims > 1 else ""
    return f"""Pad the last {n_dims} dimension{plural} of a tensor ({kind} padding, F.pad mode={mode!r}).

    Formula: the border holds {'zeros' if zero else what}; out = in + before + after per dimension.

    Args:
        padding (int or tuple): the same amount on every side, or {2 * n_dims} ints ({sides}), last
            dimension first.{value_arg}

    Shape:
        input (*, {', '.join('S%d' % i for i in range(1, n_dims + 1))}), output the same with each S grown by
            its two amounts.

    >>> import minidl, minidl.nn as nn
    {shown}

    See docs/convolution.md.
    """


ZeroPad1d, ZeroPad2d, ZeroPad3d = (_pad_layer(f"ZeroPad{n}d", "constant", n, zero=True) for n in (1, 2, 3))
ConstantPad1d, ConstantPad2d, ConstantPad3d = (_pad_layer(f"ConstantPad{n}d", "constant", n) for n in (1, 2, 3))
ReflectionPad1d, ReflectionPad2d, ReflectionPad3d = (_pad_layer(f"ReflectionPad{n}d", "reflect", n) for n in (1, 2, 3))
ReplicationPad1d, ReplicationPad2d, ReplicationPad3d = (_pad_layer(f"ReplicationPad{n}d", "replicate", n)
                                                        for n in (1, 2, 3))
CircularPad1d, CircularPad2d, CircularPad3d = (_pad_layer(f"CircularPad{n}d", "circular", n) for n in (1, 2, 3))


class Upsample(Module):
    """Upsampling layer: F.interpolate with fixed options.

    Formula: nearest: y[i] = x[floor(i / scale)];
             (bi/tri)linear and bicubic weigh the nearest taps (see F.interpolate)

    Args:
        size (int or tuple, optional): output spatial size. Default: None.
        scale_factor (float or tuple, optional): Default: None. Give exactly one of the two.
        mode (str): 'nearest', 'nearest-exact', 'linear', 'bilinear', 'bicubic', 'trilinear' or 'area'.
            Default: 'nearest'.
        align_corners (bool, optional): Default: None (False).
        recompute_scale_factor (bool, optional): Default: None.

    Shape:
        input (N, C, *S), output (N, C, *S_out).

    >>> import minidl, minidl.nn as nn
    >>> nn.Upsample(scale_factor=2)(minidl.tensor([[[1.0, 2.0]]]))
    tensor([[[1., 1., 2., 2.]]])
    >>> nn.Upsample(size=3, mode='linear', align_corners=True)(minidl.tensor([[[1.0, 2.0]]]))
    tensor([[[1. , 1.5, 2. ]]])

    See docs/convolution.md.
    """

    def __init__(self, size=None, scale_factor=None, mode="nearest", align_corners=None,
                 recompute_scale_factor=None):
        super().__init__()
        self.size, self.scale_factor, self.mode = size, scale_factor, mode
        self.align_corners, self.recompute_scale_factor = align_corners, recompute_scale_factor

    def forward(self, x):
        return F.interpolate(x, self.size, self.scale_factor, self.mode, self.align_corners,
                             recompute_scale_factor=self.recompute_scale_factor)

    def extra_repr(self):
        what = f"scale_factor={self.scale_factor}" if self.size is None else f"size={self.size}"
        return f"{what}, mode={self.mode!r}"


class UpsamplingNearest2d(Upsample):
    """Nearest-neighbour 2-D upsampling (Upsample with mode='nearest').

    Formula: y[i, j] = x[floor(i / s), floor(j / s)]

    Args:
        size (int or tuple, optional): Default: None.
        scale_factor (float, optional): Default: None.

    Shape:
        input (N, C, H, W), output (N, C, H_out, W_out).

    >>> import minidl, minidl.nn as nn
    >>> nn.UpsamplingNearest2d(scale_factor=2)(minidl.tensor([[[[1.0, 2.0]]]]))
    tensor([[[[1., 1., 2., 2.],
              [1., 1., 2., 2.]]]])

    See docs/convolution.md.
    """
    def __init__(self, size=None, scale_factor=None):
        super().__init__(size, scale_factor, mode="nearest")


class UpsamplingBilinear2d(Upsample):
    """Bilinear 2-D upsampling with align_corners=True.

    Formula: src = i (in - 1) / (out - 1), 2 x 2 taps

    Args:
        size (int or tuple, optional): Default: None.
        scale_factor (float, optional): Default: None.

    Shape:
        input (N, C, H, W), output (N, C, H_out, W_out).

    >>> import minidl, minidl.nn as nn
    >>> nn.UpsamplingBilinear2d(size=(1, 4))(minidl.tensor([[[[0.0, 3.0]]]]))
    tensor([[[[0., 1., 2., 3.]]]])

    See docs/convolution.md.
    """
    def __init__(self, size=None, scale_factor=None):
        super().__init__(size, scale_factor, mode="bilinear", align_corners=True)


class PixelShuffle(Module):
    """Channels to space (sub-pixel convolution, Shi et al. 2016).

    Formula: y[n, c, h r + i, w r + j] = x[n, c r^2 + i r + j, h, w]

    Args:
        upscale_factor (int): r.

    Shape:
        input (*, C r^2, H, W), output (*, C, H r, W r).

    >>> import minidl, minidl.nn as nn
    >>> nn.PixelShuffle(2)(minidl.arange(4.0).reshape(1, 4, 1, 1))
    tensor([[[[0., 1.],
              [2., 3.]]]])

    See docs/convolution.md.
    """

    def __init__(self, upscale_factor):
        super().__init__()
        self.upscale_factor = upscale_factor

    def forward(self, x):
        return F.pixel_shuffle(x, self.upscale_factor)

    def extra_repr(self):
        return f"upscale_factor={self.upscale_factor}"


class PixelUnshuffle(Module):
    """Space to channels: the inverse of PixelShuffle.

    Formula: y[n, c r^2 + i r + j, h, w] = x[n, c, h r + i, w r + j]

    Args:
        downscale_factor (int): r.

    Shape:
        input (*, C, H r, W r), output (*, C r^2, H, W).

    >>> import minidl, minidl.nn as nn
    >>> nn.PixelUnshuffle(2)(minidl.ones(1, 3, 4, 4)).shape
    (1, 12, 2, 2)

    See docs/convolution.md.
    """

    def __init__(self, downscale_factor):
        super().__init__()
        self.downscale_factor = downscale_factor

    def forward(self, x):
        return F.pixel_unshuffle(x, self.downscale_factor)

    def extra_repr(self):
        return f"downscale_factor={self.downscale_factor}"


class Unfold(Module):
    """im2col as a layer: sliding blocks as columns (see F.unfold).

    Formula: column l holds the C kh kw values of block l

    Args:
        kernel_size (int or tuple): (kh, kw).
        dilation (int or tuple): Default: 1.
        padding (int or tuple): Default: 0.
        stride (int or tuple): Default: 1.

    Shape:
        input (N, C, H, W), output (N, C kh kw, L), L the number of blocks.

    >>> import minidl, minidl.nn as nn
    >>> nn.Unfold(2)(minidl.ones(1, 3, 4, 4)).shape
    (1, 12, 9)

    See docs/convolution.md.
    """

    def __init__(self, kernel_size, dilation=1, padding=0, stride=1):
        super().__init__()
        self.kernel_size, self.dilation, self.padding, self.stride = kernel_size, dilation, padding, stride

    def forward(self, x):
        return F.unfold(x, self.kernel_size, self.dilation, self.padding, self.stride)

    def extra_repr(self):
        return (f"kernel_size={self.kernel_size}, dilation={self.dilation}, padding={self.padding}, "
                f"stride={self.stride}")


class Fold(Unfold):
    """col2im as a layer: sum sliding-block columns back into an image (see F.fold).

    Formula: y[block l's pixels] += x[:, :, l]

    Args:
        output_size (int or tuple): (H, W).
        kernel_size (int or tuple): (kh, kw).
        dilation (int or tuple): Default: 1.
        padding (int or tuple): Default: 0.
        stride (int or tuple): Default: 1.

    Shape:
        input (N, C kh kw, L), output (N, C, H, W).

    >>> import minidl, minidl.nn as nn
    >>> nn.Fold((3, 3), 2)(nn.Unfold(2)(minidl.ones(1, 1, 3, 3)))
    tensor([[[[1., 2., 1.],
              [2., 4., 2.],
              [1., 2., 1.]]]])

    See docs/convolution.md.
    """

    def __init__(self, output_size, kernel_size, dilation=1, padding=0, stride=1):
        super().__init__(kernel_size, dilation, padding, stride)
        self.output_size = output_size

    def forward(self, x):
        return F.fold(x, self.output_size, self.kernel_size, self.dilation, self.padding, self.stride)

    def extra_repr(self):
        return f"output_size={self.output_size}, " + super().extra_repr()


class ChannelShuffle(Module):
    """Interleave the channels of g groups (ShuffleNet).

    Formula: y[:, k g + i] = x[:, i (C/g) + k]

    Args:
        groups (int): g, dividing C.

    Shape:
        input (N, C, *), output (N, C, *).

    >>> import minidl, minidl.nn as nn
    >>> nn.ChannelShuffle(3)(minidl.arange(6.0).reshape(1, 6, 1, 1)).flatten()
    tensor([0., 2., 4., 1., 3., 5.])

    See docs/grouped_depthwise.md.
    """

    def __init__(self, groups):
        super().__init__()
        self.groups = groups

    def forward(self, x):
        return F.channel_shuffle(x, self.groups)

    def extra_repr(self):
        return f"groups={self.groups}"


class Unflatten(Module):
    """Split one dimension into several (the inverse of Flatten).

    Formula: (N, C*H*W) -> (N, C, H, W) for dim=1, (C, H, W)

    Args:
        dim (int): the dimension split.
        unflattened_size (tuple): its new shape (product = its size).

    Shape:
        input (*, prod S, *), output (*, S..., *).

    >>> import minidl, minidl.nn as nn
    >>> nn.Unflatten(1, (2, 3))(minidl.ones(4, 6)).shape
    (4, 2, 3)

    See docs/linear.md.
    """

    def __init__(self, dim, unflattened_size):
        super().__init__()
        self.dim, self.unflattened_size = dim, tuple(unflattened_size)

    def forward(self, x):
        dim = self.dim % x.ndim
        return x.reshape(x.shape[:dim] + self.unflattened_size + x.shape[dim + 1:])

    def extra_repr(self):
        return f"dim={self.dim}, unflattened_size={self.unflattened_size}"


# ----------------------------------------------------------------------------- normalisation
def init_running_stats(module, num_features, dtype, track):
    """running_mean (zeros), running_var (ones) and num_batches_tracked buffers, or None when not ``track``
    (batch norm and instance norm keep the same statistics under the same names)."""
    if track:
        module.register_buffer("running_mean", Tensor(np.zeros(num_features, dtype=dtype)))
        module.register_buffer("running_var", Tensor(np.ones(num_features, dtype=dtype)))
        module.register_buffer("num_batches_tracked", Tensor(np.array(0, dtype=np.int64)))
    else:
        module.running_mean = module.running_var = module.num_batches_tracked = None


def reset_running_stats(module):
    if module.track_running_stats:
        module.running_mean.data[...] = 0
        module.running_var.data[...] = 1
        module.num_batches_tracked.data[...] = 0


class _BatchNorm(Module):
    _expected_dims = (2, 3, 4)

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True, track_running_stats=True, dtype=None):
        super().__init__()
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        dtype = dtype or np.float32
        if affine:
            self.weight = Parameter(np.ones(num_features, dtype=dtype))
            self.bias = Parameter(np.zeros(num_features, dtype=dtype))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        init_running_stats(self, num_features, dtype, track_running_stats)

    def reset_running_stats(self):
        reset_running_stats(self)

    def forward(self, x):
        if x.ndim not in self._expected_dims:
            raise ValueError(f"{type(self).__name__}: expected a {' or '.join(f'{d}-D' for d in self._expected_dims)} "
                             f"input, got shape {x.shape}")
        if x.shape[1] != self.num_features:
            raise ValueError(f"{type(self).__name__}: expected {self.num_features} channels, got shape {x.shape}")
        momentum = self.momentum
        use_batch_stats = self.training or not self.track_running_stats
        if self.training and self.track_running_stats:
            self.num_batches_tracked.data[...] += 1
            if momentum is None:  # cumulative moving average
                momentum = 1.0 / float(self.num_batches_tracked.item())
        running = self.track_running_stats  # updated when training, used when evaluating
        return F.batch_norm(x, self.running_mean if running else None, self.running_var if running else None,
                            self.weight, self.bias, use_batch_stats, momentum if momentum is not None else 0.0,
                            self.eps)

    def extra_repr(self):
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
                f"track_running_stats={self.track_running_stats}")


class BatchNorm1d(_BatchNorm):
    """Batch normalisation (Ioffe & Szegedy 2015) of (N, C) features or (N, C, L) sequences.

    Formula: train(): y = (x - mean_B) / sqrt(var_B + eps) * weight + bias, mean and biased var over (N, *spatial)
             of each channel; eval(): the same with running_mean, running_var

    Args:
        num_features (int): C, the number of channels.
        eps (float): added to the variance. Default: 1e-05.
        momentum (float or None): weight of each new batch in the running averages; None: a cumulative
            average over all batches. Default: 0.1.
        affine (bool): learn weight (ones) and bias (zeros). Default: True.
        track_running_stats (bool): keep running_mean/var (used in eval mode); False: batch statistics
            always. Default: True.
        dtype: Default: None (float32).

    Shape:
        input (N, C) or (N, C, L), output the same.

    Attributes:
        weight, bias (Parameter): (C,) affine map, ones and zeros at first.
        running_mean, running_var (buffer): (C,), zeros and ones at first;
            running = (1 - momentum) running + momentum * batch (unbiased variance).
        num_batches_tracked (buffer): the number of training batches seen.

    >>> import minidl, minidl.nn as nn
    >>> bn = nn.BatchNorm1d(2)
    >>> x = minidl.tensor([[1.0, 10.0], [3.0, 30.0]])
    >>> bn(x)
    tensor([[-1., -1.],
            [ 1.,  1.]], grad_fn=<BatchNormTrainBackward0>)
    >>> bn.running_mean, bn.running_var
    (tensor([0.2, 2. ]), tensor([ 1.1, 20.9]))
    >>> bn.eval()(x)
    tensor([[0.7628, 1.7499],
            [2.6697, 6.1247]], grad_fn=<BatchNormEvalBackward0>)

    See docs/batch_norm.md.
    """
    _expected_dims = (2, 3)


class BatchNorm2d(_BatchNorm):
    """Batch normalisation (Ioffe & Szegedy 2015) of each channel of (N, C, H, W) feature maps.

    Formula: train(): y = (x - mean_B) / sqrt(var_B + eps) * weight + bias, mean and biased var over (N, *spatial)
             of each channel; eval(): the same with running_mean, running_var.
             Call model.eval() before inference: batch statistics of a single image are noise.

    Args:
        num_features (int): C, the number of channels.
        eps (float): added to the variance. Default: 1e-05.
        momentum (float or None): weight of each new batch in the running averages; None: a cumulative
            average over all batches. Default: 0.1.
        affine (bool): learn weight (ones) and bias (zeros). Default: True.
        track_running_stats (bool): keep running_mean/var (used in eval mode); False: batch statistics
            always. Default: True.
        dtype: Default: None (float32).

    Shape:
        input (N, C, H, W), output the same.

    Attributes:
        weight, bias (Parameter): (C,) affine map, ones and zeros at first.
        running_mean, running_var (buffer): (C,), zeros and ones at first;
            running = (1 - momentum) running + momentum * batch (unbiased variance).
        num_batches_tracked (buffer): the number of training batches seen.

    >>> import minidl, minidl.nn as nn
    >>> bn = nn.BatchNorm2d(1)
    >>> x = minidl.tensor([[[[1.0, 3.0]]], [[[5.0, 7.0]]]])
    >>> bn(x).flatten()
    tensor([-1.3416, -0.4472,  0.4472,  1.3416], grad_fn=<ReshapeBackward0>)
    >>> bn.running_mean, bn.running_var, bn.num_batches_tracked
    (tensor([0.4]), tensor([1.5667]), tensor(1))
    >>> bn.eval()(x).flatten()
    tensor([0.4794, 2.0772, 3.6751, 5.273 ], grad_fn=<ReshapeBackward0>)

    See docs/batch_norm.md.
    """
    _expected_dims = (4,)


class LocalResponseNorm(Module):
    """Local response normalisation across neighbouring channels (AlexNet).

    Formula: y_c = x_c / (k + alpha / n * sum_{c' = c - n//2}^{c + (n-1)//2} x_{c'}^2)^beta

    Args:
        size (int): n, neighbouring channels.
        alpha (float): Default: 0.0001.
        beta (float): Default: 0.75.
        k (float): Default: 1.0.

    Shape:
        input (N, C, *), output the same.

    >>> import minidl, minidl.nn as nn
    >>> nn.LocalResponseNorm(2, alpha=1.0, beta=1.0)(minidl.tensor([[[1.0], [2.0]]]))
    tensor([[[0.6667],
             [0.5714]]])

    See docs/lrn_dropout.md.
    """
    def __init__(self, size, alpha=1e-4, beta=0.75, k=1.0):
        super().__init__()
        self.size, self.alpha, self.beta, self.k = size, alpha, beta, k

    def forward(self, x):
        return F.local_response_norm(x, self.size, self.alpha, self.beta, self.k)

    def extra_repr(self):
        return f"{self.size}, alpha={self.alpha}, beta={self.beta}, k={self.k}"


# ----------------------------------------------------------------------------- losses
class _Loss(Module):
    def __init__(self, reduction="mean"):
        super().__init__()
        self.reduction = reduction


class CrossEntropyLoss(_Loss):
    """Softmax cross-entropy of logits against class indices or probabilities (see F.cross_entropy).

    Formula: loss_n = w[t_n] (logsumexp(x_n) - x_n[t_n]); label smoothing ls: target (1 - ls) onehot + ls / C

    Args:
        weight (Tensor, optional): (C,) class weights. Default: None.
        ignore_index (int): target value that adds no loss. Default: -100.
        reduction (str): 'none', 'mean' or 'sum'. Default: 'mean'.
        label_smoothing (float): in [0, 1]. Default: 0.0.

    Shape:
        input (N, C) or (N, C, d1, ...) logits, target (N,) / (N, d1, ...) int64 or input-shaped
        probabilities, output () or target-shaped with reduction='none'.

    >>> import minidl, minidl.nn as nn
    >>> loss = nn.CrossEntropyLoss()
    >>> loss(minidl.tensor([[2.0, 0.0, 0.0], [0.0, 0.0, 0.0]]), minidl.tensor([0, 2]))
    tensor(0.6691)

    See docs/softmax_cross_entropy.md.
    """
    def __init__(self, weight=None, ignore_index=-100, reduction="mean", label_smoothing=0.0):
        super().__init__(reduction)
        self.weight, self.ignore_index, self.label_smoothing = weight, ignore_index, label_smoothing

    def forward(self, input, target):
        return F.cross_entropy(input, target, self.weight, self.ignore_index, self.reduction, self.label_smoothing)


class NLLLoss(_Loss):
    """Negative log-likelihood of log-probabilities (use after LogSoftmax).

    Formula: loss_n = -w[t_n] input[n, t_n]

    Args:
        weight (Tensor, optional): (C,). Default: None.
        ignore_index (int): Default: -100.
        reduction (str): 'none', 'mean' or 'sum'. Default: 'mean'.

    Shape:
        input (N, C) or (N, C, d1, ...), target (N,) or (N, d1, ...), output () or target-shaped.

    >>> import minidl, minidl.nn as nn
    >>> logp = nn.LogSoftmax(dim=1)(minidl.tensor([[2.0, 0.0, 0.0]]))
    >>> nn.NLLLoss()(logp, minidl.tensor([0]))
    tensor(0.2395)

    See docs/softmax_cross_entropy.md.
    """
    def __init__(self, weight=None, ignore_index=-100, reduction="mean"):
        super().__init__(reduction)
        self.weight, self.ignore_index = weight, ignore_index

    def forward(self, input, target):
        return F.nll_loss(input, target, self.weight, self.ignore_index, self.reduction)


class MSELoss(_Loss):
    """Mean squared error loss.

    Formula: loss = reduce((x - y)^2)

    Args:
        reduction (str): 'none', 'mean' or 'sum'. Default: 'mean'.

    Shape:
        input (*), target (*), output () or (*) with reduction='none'.

    >>> import minidl, minidl.nn as nn
    >>> nn.MSELoss()(minidl.tensor([1.0, 2.0]), minidl.tensor([0.0, 0.0]))
    tensor(2.5)
    >>> nn.MSELoss(reduction='sum')(minidl.tensor([1.0, 2.0]), minidl.tensor([0.0, 0.0]))
    tensor(5.)

    See docs/linear.md.
    """
    def forward(self, input, target):
        return F.mse_loss(input, target, self.reduction)


class L1Loss(_Loss):
    """Mean absolute error loss.

    Formula: loss = reduce(|x - y|)

    Args:
        reduction (str): 'none', 'mean' or 'sum'. Default: 'mean'.

    Shape:
        input (*), target (*), output () or (*) with reduction='none'.

    >>> import minidl, minidl.nn as nn
    >>> nn.L1Loss()(minidl.tensor([1.0, -3.0]), minidl.tensor([0.0, 0.0]))
    tensor(2.)

    See docs/linear.md.
    """
    def forward(self, input, target):
        return F.l1_loss(input, target, self.reduction)


class SmoothL1Loss(_Loss):
    """Smooth L1 loss (Fast R-CNN's box regression): quadratic near 0, linear beyond beta.

    Formula: d = |x - y|; loss = reduce(0.5 d^2 / beta if d < beta else d - 0.5 beta)

    Args:
        reduction (str): 'none', 'mean' or 'sum'. Default: 'mean'.
        beta (float): Default: 1.0.

    Shape:
        input (*), target (*), output () or (*).

    >>> import minidl, minidl.nn as nn
    >>> nn.SmoothL1Loss(reduction='none')(minidl.tensor([0.5, 3.0]), minidl.tensor([0.0, 0.0]))
    tensor([0.125, 2.5  ])

    See docs/detection_ops.md.
    """
    def __init__(self, reduction="mean", beta=1.0):
        super().__init__(reduction)
        self.beta = beta

    def forward(self, input, target):
        return F.smooth_l1_loss(input, target, self.reduction, self.beta)


class BCEWithLogitsLoss(_Loss):
    """Binary cross-entropy on logits (sigmoid + BCE in one stable formula).

    Formula: loss = w [(1 - t) x + (1 + (pw - 1) t) softplus(-x)] = -w [pw t log s(x) + (1 - t) log(1 - s(x))]

    Args:
        weight (Tensor, optional): broadcast to the input. Default: None.
        reduction (str): 'none', 'mean' or 'sum'. Default: 'mean'.
        pos_weight (Tensor, optional): pw per class. Default: None.

    Shape:
        input (*) logits, target (*) in [0, 1], output () or (*).

    >>> import minidl, minidl.nn as nn
    >>> nn.BCEWithLogitsLoss()(minidl.tensor([0.0, 0.0]), minidl.tensor([1.0, 0.0]))
    tensor(0.6931)

    See docs/softmax_cross_entropy.md.
    """
    def __init__(self, weight=None, reduction="mean", pos_weight=None):
        super().__init__(reduction)
        self.weight, self.pos_weight = weight, pos_weight

    def forward(self, input, target):
        return F.binary_cross_entropy_with_logits(input, target, self.weight, self.reduction, self.pos_weight)


class BCELoss(_Loss):
    """Binary cross-entropy on probabilities (use after Sigmoid; BCEWithLogitsLoss is stabler).

    Formula: loss = -w [t log p + (1 - t) log(1 - p)], logs clamped at -100

    Args:
        weight (Tensor, optional): broadcast to the input. Default: None.
        reduction (str): 'none', 'mean' or 'sum'. Default: 'mean'.

    Shape:
        input (*) probabilities, target (*), output () or (*).

    >>> import minidl, minidl.nn as nn
    >>> nn.BCELoss()(minidl.tensor([0.5, 0.5]), minidl.tensor([1.0, 0.0]))
    tensor(0.6931)

    See docs/softmax_cross_entropy.md.
    """
    def __init__(self, weight=None, reduction="mean"):
        super().__init__(reduction)
        self.weight = weight

    def forward(self, input, target):
        return F.binary_cross_entropy(input, target, self.weight, self.reduction)
