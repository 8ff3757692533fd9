"""minidl: a deep-learning engine from scratch on NumPy, with hand-written Numba kernels.

PyTorch's names and habits::

    import minidl
    import minidl.nn as nn
    import minidl.nn.functional as F

    x = minidl.randn(8, 3, requires_grad=True)
    loss = F.relu(x @ minidl.randn(3, 2)).sum()
    loss.backward()
"""
from .kernels import allocator

allocator.configure()  # glibc keeps freed activation memory for the next step (kernels/allocator.py)

from . import autograd  # noqa: E402
from .grad_mode import enable_grad, is_grad_enabled, no_grad, set_grad_enabled
from .grad_mode import inference_mode  # the autograd API (issue 15): = no_grad here
from .device import Device, device
from .random import Generator, get_rng_state, manual_seed, seed, set_rng_state
from .tensor import (
    Tensor,
    bool_ as bool,  # noqa: A001 - torch.bool
    cat,
    concatenate,
    float16,
    float32,
    float64,
    int8,
    int16,
    int32,
    int64,
    get_default_dtype,
    matmul,
    maximum,
    minimum,
    promote_types,
    result_type,
    set_default_dtype,
    stack,
    uint8,
    where,
)
from .creation import (
    arange,
    empty,
    empty_like,
    eye,
    from_numpy,
    full,
    full_like,
    linspace,
    ones,
    ones_like,
    rand,
    rand_like,
    randint,
    randint_like,
    randn,
    randn_like,
    randperm,
    tensor,
    zeros,
    zeros_like,
)
from .tensor_functions import *  # noqa: F401,F403 - exp, log, sum, mean, relu, softmax, ... as minidl.* functions
from .tensor_functions import __all__ as _function_names
from .gradcheck import gradcheck
from . import linalg  # noqa: E402 - minidl.linalg.vector_norm, matrix_norm, norm
from . import nn  # noqa: E402

float = float32  # noqa: A001 - torch.float
double = float64
half = float16
long = int64
int = int32  # noqa: A001 - torch.int

__version__ = "0.1.0"


def __getattr__(name):
    # Parts that pull in more modules load on first use.
    import importlib

    if name == "summary":
        from .summary import summary

        globals()["summary"] = summary  # importing the submodule set minidl.summary to the module: put the function back
        return summary
    if name in ("save", "load", "load_checkpoint"):
        from . import serialization

        return getattr(serialization, "load_object" if name == "load" else name)
    if name in ("cuda", "optim", "models", "datasets", "data", "metrics", "ops", "kernels", "utils"):
        return importlib.import_module(f"minidl.{name}")
    raise AttributeError(f"module 'minidl' has no attribute {name!r}")
