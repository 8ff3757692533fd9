"""``minidl.summary``: a per-layer table of a model, measured on one real forward pass.

For every module call (up to ``depth`` levels below the model) the table gives the
output shape, the parameters (all of them, and how many of those are frozen), the
multiply-accumulates and the bytes of the output; the totals add the parameter memory
and the forward activation memory.

How it works: the core ``Module`` has no forward hooks, so for the duration of one
forward pass (under ``no_grad``) the ``__call__`` of the model's module classes is
replaced by a wrapper that records each call (module, parent call, output), and restored
afterwards, also when the forward pass raises.

Multiply-accumulates (MACs): one MAC is one multiply-add of a dot product, counted where
the dot products are, for the whole batch. The convention is fvcore's (and
``torch.utils.flop_counter``'s, halved): bias additions, normalisation, pooling and
activations are not counted, so the figures agree with the usual published tables
(LeNet-5: 0.42 M; VGG-16 at 224: 15.47 G). Per layer kind:

- Conv1d / Conv2d / Conv3d: output elements x (in_channels / groups) x kernel volume (every
  output element is a dot product of that length). torchinfo counts the same products
  plus one addition per output element for the bias.
- ConvTranspose1d / 2d / 3d: *input* elements x (out_channels / groups) x kernel volume
  (every input element is scattered through the kernel into out_channels / groups maps),
  as fvcore and torch.utils.flop_counter. torchinfo multiplies the weight's size by the
  *output* positions instead, which counts stride**dims times too many for a strided
  transposed convolution; we do not follow it there.
- Linear: output elements x in_features (every leading dimension counts, a (N, L, E)
  input as N x L rows; torchinfo counts only the first dimension N).
- RNN / LSTM / GRU: per time step, per sample, per layer and direction,
  gates x hidden_size x (layer input width + hidden_size) (gates: 1, 4, 3), i.e. the
  products x W_ih^T and h W_hh^T. That is torchinfo's "weights' size x sequence length x
  batch" without its biases; the gates' elementwise arithmetic is not counted.
  RNNCell / LSTMCell / GRUCell: the same for one step.
- MultiheadAttention: the query, key and value projections (L x E x E, S x kdim x E,
  S x vdim x E per sample) and the two matrix products of attention, Q K^T and A V,
  L x S x E each (S counting the bias_k / zero-attention keys); its ``out_proj`` is a
  Linear, counted in its own row. torchinfo sees neither the attention products nor the
  key/value length (it counts the in-projection weight x L x N).
- ``F.scaled_dot_product_attention`` called in a module's forward (any layer that calls it
  directly, looked up as ``F.scaled_dot_product_attention`` at call time): Q K^T and A V,
  (query rows) x S x (E + Ev), added to that module's own MACs (a causal mask does not
  halve it: the products are computed in full, then masked). torchinfo does not count
  these (it sees modules only); fvcore and torch.utils.flop_counter do, and so do we.
  Inside a MultiheadAttention they are already in its formula and not counted twice.
- Embedding / EmbeddingBag (a table look-up), LayerNorm, GroupNorm, BatchNorm, RMSNorm,
  InstanceNorm: 0. torchinfo counts N x (weight + bias size) for any layer with a
  ``weight`` (N x num_embeddings x dim for an Embedding), which is no multiply-add count.

FLOPs (``summary(..., flops=True)``, ``minidl summary --flops``; ``ModelSummary.total_flops``
is always filled): the course's convention (one MAC = 2 FLOPs, a multiply and an add, and
the bias is one more addition per output), so a layer's FLOPs are

- Conv / ConvTranspose / Linear: 2 x MACs + one addition per output element if it has a bias
  (the course's perceptron: 3 inputs, 3 MACs + 1 bias = 7 FLOPs; its exercise on a 28x28
  image: FC-256 401,664 FLOPs, conv 256 3x3 3,288,064);
- RNN / LSTM / GRU (and cells), MultiheadAttention, ``F.scaled_dot_product_attention``:
  2 x MACs (their biases and gate arithmetic are not counted);
- MaxPool: (window - 1) comparisons per output element; AvgPool: window - 1 additions and
  one division, ``window`` per output element; adaptive pools: the same over their windows;
- activation modules (ReLU, ReLU6, SiLU, GELU, Sigmoid, ...): one per output element;
- everything else 0: normalisation (folded into the convolution at inference), dropout,
  reshapes, and functional calls in a forward (an ``F.relu`` or a residual ``x + y``).

Receptive field (the ``RF`` column with ``flops=True``; ``LayerInfo.rf``, ``LayerInfo.jump``):
the input pixels one output element sees, and the input pixels between two neighbouring
output elements, per spatial dimension. Along a path, a convolution or pooling window of k
(dilation d) and stride s gives ``rf' = rf + d(k - 1) * jump``, ``jump' = jump * s``; an
adaptive pool from n to o acts as a window of ``n - (o - 1) * (n // o)`` and stride ``n // o``;
layers that keep the spatial size keep the receptive field; others (a transposed convolution,
an upsampling) show "-". At a branch (Inception's
concatenation, a residual addition) the input was made outside any module; it takes the
largest receptive field among the earlier outputs of the same spatial size: the max over
the branches. Rows without spatial dimensions (after a flatten) show "-".

Rows for modules that hold parameters but were not called in the pass (an auxiliary
classifier in eval mode: Inception v3's ``AuxLogits``, GoogLeNet's ``aux1``/``aux2``) are
added, marked "training only", so that the parameter column adds up to the total.

Activation memory: the sum of the outputs of every leaf module call, once (what the forward
pass of training keeps for backward). torchinfo's "Forward/backward pass size" is twice
the outputs of the leaf layers that have parameters (x2 "for gradients").

Other functional calls inside a forward (an ``F.linear`` or ``F.conv2d`` of a custom
module) are not seen. The model itself is counted too when it is one of the layers above
(``summary(nn.LSTM(8, 16), (5, 8))``).

>>> import minidl
>>> from minidl import models
>>> s = minidl.summary(models.lenet5(), (1, 32, 32))
>>> s.total_params, s["conv1"].params
(61706, 156)
>>> minidl.summary(minidl.nn.LSTM(8, 16, batch_first=True), (5, 8)).total_macs  # 5 steps x 4 gates x 16 x (8 + 16)
7680
"""
from __future__ import annotations

import contextlib
import sys
import types
from dataclasses import dataclass, field

import numpy as np

from .grad_mode import no_grad
from .nn import functional as F
from .nn.attention import MultiheadAttention
from .nn.layers import (
    CELU, ELU, GELU, SELU, AdaptiveAvgPool2d, AdaptiveMaxPool2d, AvgPool1d, AvgPool2d, Conv2d, Hardsigmoid,
    Hardswish, Hardtanh, LeakyReLU, Linear, LogSigmoid, MaxPool1d, MaxPool2d, Mish, ReLU, ReLU6, Sigmoid, SiLU,
    Softplus, Softsign, Tanh, _ConvNd,
)
from .nn.module import Module
from .nn.rnn import _GATES, RNNBase, RNNCellBase
from .tensor import Tensor

_MiB = 1024 ** 2
_ACTIVATIONS = (CELU, ELU, GELU, SELU, Hardsigmoid, Hardswish, Hardtanh, LeakyReLU, LogSigmoid, Mish, ReLU, ReLU6,
                Sigmoid, SiLU, Softplus, Softsign, Tanh)


@dataclass
class LayerInfo:
    """One module call: what went in, what came out, what it holds and costs."""

    name: str  # dotted name in the model, as in named_modules()
    type: str  # class name
    depth: int  # 1 for the model's children, 2 for theirs, ...
    parent: LayerInfo | None = field(default=None, repr=False)
    children: list = field(default_factory=list, repr=False)
    output_shapes: list = field(default_factory=list)  # one shape per output tensor
    output_bytes: int = 0
    own_params: int = 0  # parameters registered directly on this module
    own_non_trainable: int = 0
    params: int = 0  # parameters of the whole sub-module (what the row shows)
    non_trainable: int = 0
    own_macs: int = 0  # MACs of this call itself (its own products, not its sub-modules')
    macs: int = 0  # MACs of this call and every call made inside it
    own_flops: int = 0  # FLOPs of this call itself (the convention: the module docstring)
    flops: int = 0  # FLOPs of this call and every call made inside it
    kernel: str = ""  # a convolution's or pooling's window: "3x3", "3x3 s2 dw", "1x1 g4"
    rf: tuple | None = None  # receptive field of the output per spatial dimension (None: not spatial)
    jump: tuple | None = None  # input pixels between neighbouring output elements
    note: str = ""  # "training only": a module with parameters that the pass did not call

    @property
    def output_shape(self):
        return self.output_shapes[0] if len(self.output_shapes) == 1 else self.output_shapes

    @property
    def trainable(self):
        return self.params - self.non_trainable

    @property
    def is_leaf(self):
        return not self.children


class ModelSummary:
    """The result of ``summary``: ``str()`` is the table; totals are attributes.

    Attributes:
        layers: every recorded call (all depths), in call order.
        rows: the calls shown in the table (depth <= max depth).
        total_params, trainable_params, non_trainable_params: over the model's unique parameters.
        total_macs: multiply-accumulates of the forward pass (the convention: the module's docstring).
        total_flops: floating-point operations of the forward pass: 2 x MACs + bias additions +
            pooling and activation operations (the course's convention: the module's docstring).
        training_only_params: parameters of modules the pass did not call (auxiliary heads in
            eval mode); they are in total_params and have rows marked "training only".
        input_bytes, param_bytes, buffer_bytes: sizes of the input batch, the parameters
            and the buffers (batch-norm running statistics).
        activation_bytes: sum of the outputs of the leaf module calls, the memory a training
            forward pass keeps for backward (outputs of functional ops inside a module's
            forward, e.g. an ``F.relu``, are not seen and not counted).
        total_bytes: input + activations + parameters + buffers.
    """

    def __init__(self, model_name, input_shape, layers, max_depth, model, input_bytes, unrecorded_macs=0,
                 unrecorded_flops=0, uncalled=(), show_flops=False):
        self.model_name = model_name
        self.input_shape = tuple(input_shape)
        self.layers = layers
        self.max_depth = max_depth
        self.show_flops = show_flops
        self.rows = _with_uncalled([info for info in layers if info.depth <= max_depth],
                                   [info for info in uncalled if info.depth <= max_depth], model)
        self.training_only_params = sum(info.params for info in uncalled)
        params = list(model.parameters())
        self.total_params = sum(p.numel() for p in params)
        self.trainable_params = sum(p.numel() for p in params if p.requires_grad)
        self.non_trainable_params = self.total_params - self.trainable_params
        self.param_bytes = sum(p.data.nbytes for p in params)
        self.buffer_bytes = sum(b.data.nbytes for b in model.buffers())
        # unrecorded_macs: those of the model's own forward (the model is one layer, or calls
        # F.scaled_dot_product_attention itself), which has no row.
        self.total_macs = sum(info.own_macs for info in layers) + unrecorded_macs
        self.total_flops = sum(info.own_flops for info in layers) + unrecorded_flops
        self.input_bytes = input_bytes
        self.activation_bytes = sum(info.output_bytes for info in layers if info.is_leaf)
        self.total_bytes = self.input_bytes + self.activation_bytes + self.param_bytes + self.buffer_bytes

    def __getitem__(self, name):
        """The first recorded call of the module called ``name``."""
        for info in self.layers + self.rows:
            if info.name == name:
                return info
        raise KeyError(f"summary: no recorded call of a module named {name!r}")

    def __str__(self):
        header = ["Layer", "Type", "Kernel", "Output shape", "Params", "Non-trainable", "MACs", "Output memory"]
        if self.show_flops:
            header[7:7] = ["FLOPs", "RF (size/jump)"]
        body = []
        for info in self.rows:
            collapsed = info.depth == self.max_depth or info.is_leaf
            params = info.params if collapsed else info.own_params
            frozen = info.non_trainable if collapsed else info.own_non_trainable
            macs = info.macs if collapsed else info.own_macs
            flops = info.flops if collapsed else info.own_flops
            row = [
                "  " * (info.depth - 1) + info.name.rpartition(".")[2],
                info.type,
                info.kernel or "--",
                info.note or _format_shapes(info.output_shapes),
                f"{params:,}" if params else "--",
                f"{frozen:,}" if frozen else "--",
                f"{macs:,}" if macs else "--",
                _format_bytes(info.output_bytes) if not info.note else "--",
            ]
            if self.show_flops:
                row[7:7] = [f"{flops:,}" if flops else "--", _format_rf(info.rf, info.jump)]
            body.append(row)
        widths = [max(len(row[i]) for row in [header] + body) for i in range(len(header))]
        left = {0, 1, 2, 3}  # names, types, kernels and shapes left-aligned, numbers right-aligned

        def line(row):
            return "  ".join(cell.ljust(w) if i in left else cell.rjust(w)
                             for i, (cell, w) in enumerate(zip(row, widths))).rstrip()

        rule = "=" * len(line(header))
        out = [f"{self.model_name} summary, input {list(self.input_shape)}", rule, line(header),
               "-" * len(rule)]
        out += [line(row) for row in body]
        out += [
            rule,
            f"Total params: {self.total_params:,}",
            f"Trainable params: {self.trainable_params:,}",
            f"Non-trainable params: {self.non_trainable_params:,}",
        ]
        if self.training_only_params:
            out.append(f"Training-only params (not run in this pass, in the total): {self.training_only_params:,}")
        out.append(f"Total mult-adds: {self.total_macs:,} ({_format_count(self.total_macs)})")
        if self.show_flops:
            out += [f"Total FLOPs: {self.total_flops:,} ({_format_count(self.total_flops)})",
                    "  FLOPs = 2 x MACs + bias additions + pooling and activation operations; "
                    "normalisation and functional ops not counted",
                    "  RF: receptive field size/jump in input pixels; at a branch, the largest among the branches"]
        out += [
            "-" * len(rule),
            f"Input size: {_format_bytes(self.input_bytes)}",
            f"Forward activations (leaf outputs): {_format_bytes(self.activation_bytes)}",
            "  every leaf module's output once, kept for backward (torchinfo: 2 x leaf outputs of layers with params)",
            f"Params size: {_format_bytes(self.param_bytes)}",
            f"Buffers size: {_format_bytes(self.buffer_bytes)}",
            f"Estimated total size: {_format_bytes(self.total_bytes)}",
            rule,
        ]
        return "\n".join(out)

    def __repr__(self):
        return str(self)


def summary(model, input_size, depth=3, batch_size=1, dtype=np.float32, mode="eval", verbose=False, flops=False):
    """Run one forward pass of ``model`` on a random batch and tabulate every module call.

    Args:
        model: a ``minidl.nn.Module``.
        input_size: (C, H, W) of one sample (or any per-sample shape); the batch is
            ``(batch_size, *input_size)``.
        depth: rows are shown down to this nesting depth (1: the model's children);
            a row at the limit shows the totals of everything inside it.
        batch_size: samples in the batch; shapes, MACs and memory are for the whole batch.
        dtype: dtype of the random input; an integer or bool dtype gives an all-zero input
            (token ids for an Embedding, as torchinfo's ``torch.rand(...).type(dtype)``).
        mode: ``"eval"`` (default: dropout off, batch-norm on running statistics, auxiliary
            classifiers off) or ``"train"``. The model's own modes, parameters and buffers
            are left as they were.
        verbose: print the table as well as returning it.
        flops: show the FLOPs and receptive-field columns (``total_flops`` is filled either way).

    Returns:
        ``ModelSummary``: ``str(result)`` is the table; totals are attributes.

    Example::

        s = minidl.summary(models.vgg16(), (3, 224, 224), depth=2)
        print(s)
        s.total_macs  # 15,470,264,320
    """
    if not isinstance(model, Module):
        raise TypeError(f"summary: model must be a minidl.nn.Module, got {type(model).__name__}")
    if isinstance(input_size, int) or not all(isinstance(v, (int, np.integer)) and v > 0 for v in input_size):
        raise ValueError(f"summary: input_size must be a tuple of positive ints such as (3, 224, 224), "
                         f"got {input_size!r}")
    if not isinstance(depth, (int, np.integer)) or depth < 1:
        raise ValueError(f"summary: depth must be an int >= 1, got {depth!r}")
    if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"summary: batch_size must be an int >= 1, got {batch_size!r}")
    if mode not in ("eval", "train"):
        raise ValueError(f"summary: mode must be 'eval' or 'train', got {mode!r}")

    shape = (int(batch_size),) + tuple(int(v) for v in input_size)
    # A private generator: the summary must not shift the global random stream.
    if np.dtype(dtype).kind in "biu":
        data = np.zeros(shape, dtype=dtype)
    else:
        data = np.random.default_rng(0).standard_normal(shape).astype(dtype)
    recorder = _CallRecorder(model)
    x = Tensor(data)
    recorder.fields[id(x)] = (x, (1,) * (x.ndim - 2), (1,) * (x.ndim - 2))  # the input: one pixel sees itself
    recorder.field_log.append(recorder.fields[id(x)])
    with _preserved_state(model, mode), no_grad(), recorder.patched():
        output = model(x)
    recorder.fields.clear()
    recorder.field_log.clear()
    _accumulate(recorder.roots)
    model_macs = _macs(model, (x,), {}, _tensors_in(output))
    model_flops = _flops(model, (x,), {}, _tensors_in(output), model_macs) + 2 * recorder.model_functional_macs
    model_macs += recorder.model_functional_macs
    uncalled = _uncalled_modules(model, recorder.calls, "training only" if mode == "eval" else "not called")
    result = ModelSummary(type(model).__name__, shape, recorder.calls, int(depth), model, data.nbytes, model_macs,
                          model_flops, uncalled, show_flops=bool(flops))
    if verbose:
        print(result)
    return result


# ----------------------------------------------------------------------------- recording calls
class _CallRecorder:
    """Wraps ``__call__`` of the model's module classes and records each call of a named sub-module."""

    def __init__(self, model):
        self.model = model
        self.names = {}
        for name, module in model.named_modules():
            self.names.setdefault(id(module), name)
        self.calls = []  # every recorded call, in the order the calls began
        self.roots = []  # calls of the model's direct children (and deeper ones made from the model itself)
        self.stack = []  # (module, info) of the calls in progress
        self.model_functional_macs = 0  # F.scaled_dot_product_attention called by the model's own forward
        self.fields = {}  # id(tensor) -> (tensor, receptive field, jump) of every output seen so far
        self.field_log = []  # the same (tensor, rf, jump), in the order the calls ended
        self.starts = {}  # id(info) -> len(field_log) when the call began

    def _enter(self, module):
        name = self.names[id(module)]
        parent = self.stack[-1][1] if self.stack else None
        info = LayerInfo(name=name, type=type(module).__name__, depth=name.count(".") + 1, parent=parent)
        for p in module._parameters.values():
            if p is not None:
                info.own_params += p.numel()
                info.own_non_trainable += 0 if p.requires_grad else p.numel()
        for p in module.parameters():
            info.params += p.numel()
            info.non_trainable += 0 if p.requires_grad else p.numel()
        (parent.children if parent is not None else self.roots).append(info)
        self.calls.append(info)
        self.stack.append((module, info))
        self.starts[id(info)] = len(self.field_log)
        return info

    def _exit(self, module, info, args, kwargs, output):
        self.stack.pop()
        tensors = _tensors_in(output)
        info.output_shapes = [list(t.shape) for t in tensors]
        info.output_bytes = sum(t.data.nbytes for t in tensors)
        macs = _macs(module, args, kwargs, tensors)
        info.own_flops += _flops(module, args, kwargs, tensors, macs) + 2 * info.own_macs  # own_macs: attention so far
        info.own_macs += macs  # += : attention seen during the call
        info.kernel = _kernel(module)
        if tensors:
            x = args[0] if args else None
            starts = [self.starts[id(i)] for _, i in reversed(self.stack)] + [0]  # the enclosing calls, inner first
            field = None
            if info.is_leaf and isinstance(x, Tensor):
                field = _receptive_field(module, self._field_of(x, starts), x, tensors[0])
            if field is None and not info.is_leaf:  # a container: what its last layer (or its branches) made
                field = self._field_of(tensors[0], [self.starts[id(info)]] + starts)
            if field is not None:
                info.rf, info.jump = field
                self.fields[id(tensors[0])] = (tensors[0], *field)
                self.field_log.append((tensors[0], *field))

    def _field_of(self, x, starts):
        """(rf, jump) of a tensor: recorded; or, made outside any module (a concatenation, a residual sum,
        an F.relu), the largest among the outputs of its spatial size made since the innermost enclosing
        call began (the branches of that block)."""
        if not isinstance(x, Tensor) or x.ndim < 3:
            return None
        known = self.fields.get(id(x))
        if known is not None and known[0] is x:
            return known[1:]
        for start in starts:
            same = [(rf, jump) for t, rf, jump in self.field_log[start:]
                    if t.shape[2:] == x.shape[2:] and len(rf) == x.ndim - 2]
            if same:  # the largest per dimension
                return (tuple(max(v) for v in zip(*[rf for rf, _ in same])),
                        tuple(max(v) for v in zip(*[jump for _, jump in same])))
        return None

    def _attention_called(self, query, key, value):
        """Count one F.scaled_dot_product_attention for the innermost module call in progress."""
        module, info = self.stack[-1] if self.stack else (self.model, None)
        if isinstance(module, MultiheadAttention):
            return  # already in MultiheadAttention's own formula
        macs = _sdpa_macs(query, key, value)
        if info is None:
            self.model_functional_macs += macs
        else:
            info.own_macs += macs

    @contextlib.contextmanager
    def patched(self):
        owners = {}
        for module in self.model.modules():
            for klass in type(module).__mro__:
                if "__call__" in klass.__dict__:
                    owners.setdefault(klass, klass.__dict__["__call__"])
                    break
        recorder = self

        def wrap(original):
            def __call__(module, *args, **kwargs):
                # The root model, modules outside the model, and a class's __call__ reached again through
                # super() for the same module are passed straight through.
                if (module is recorder.model or id(module) not in recorder.names
                        or (recorder.stack and recorder.stack[-1][0] is module)):
                    return original(module, *args, **kwargs)
                info = recorder._enter(module)
                try:
                    output = original(module, *args, **kwargs)
                except BaseException:
                    recorder.stack.pop()
                    raise
                recorder._exit(module, info, args, kwargs, output)
                return output

            return __call__

        sdpa = F.scaled_dot_product_attention

        def scaled_dot_product_attention(query, key, value, *args, **kwargs):
            recorder._attention_called(query, key, value)
            return sdpa(query, key, value, *args, **kwargs)

        try:
            for klass, original in owners.items():
                klass.__call__ = wrap(original)
            F.scaled_dot_product_attention = scaled_dot_product_attention
            yield
        finally:
            for klass, original in owners.items():
                klass.__call__ = original
            F.scaled_dot_product_attention = sdpa


@contextlib.contextmanager
def _preserved_state(model, mode):
    """Set train/eval for the pass; afterwards restore every module's mode and, in train mode, the buffers."""
    modes = [(module, module.training) for module in model.modules()]
    saved = [(b, b.data.copy()) for b in model.buffers()] if mode == "train" else []
    model.train(mode == "train")
    try:
        yield
    finally:
        for module, training in modes:
            object.__setattr__(module, "training", training)
        for buffer, data in saved:
            buffer.data[...] = data


def _tensors_in(output):
    if isinstance(output, Tensor):
        return [output]
    if isinstance(output, dict):
        output = list(output.values())
    if isinstance(output, (list, tuple)):
        return [t for item in output for t in _tensors_in(item)]
    return []


def _macs(module, args, kwargs, outputs):
    """Multiply-accumulates of one call of a layer (0 for a module not listed in the module docstring).

    ``args`` / ``kwargs`` are the call's arguments, ``outputs`` the tensors it returned.
    """
    if not outputs:
        return 0
    out = outputs[0]
    if isinstance(module, (Conv2d, _ConvNd)):
        kernel_volume = int(np.prod(module.kernel_size))
        if getattr(module, "transposed", False):
            # each input element is multiplied into out_channels / groups kernels
            x = _argument(args, kwargs, 0, "input")
            return x.numel() * (module.out_channels // module.groups) * kernel_volume
        # each output element is a dot product over in_channels / groups kernels
        return out.numel() * (module.in_channels // module.groups) * kernel_volume
    if isinstance(module, Linear):
        return out.numel() * module.in_features
    if isinstance(module, RNNBase):
        return _rnn_macs(module, out)
    if isinstance(module, RNNCellBase):
        gates = module.weight_ih.shape[0]  # num_chunks x hidden_size
        rows = out.numel() // module.hidden_size  # the batch (h' is the first output)
        return rows * gates * (module.input_size + module.hidden_size)
    if isinstance(module, MultiheadAttention):
        return _attention_macs(module, args, kwargs, out)
    return 0


def _argument(args, kwargs, index, name):
    return args[index] if len(args) > index else kwargs[name]


def _flops(module, args, kwargs, outputs, macs):
    """FLOPs of one call of a layer, given its MACs (the convention: the module docstring)."""
    if not outputs:
        return 0
    out = outputs[0]
    if isinstance(module, (Conv2d, _ConvNd, Linear)):
        return 2 * macs + (out.numel() if module.bias is not None else 0)
    if isinstance(module, (MaxPool1d, MaxPool2d, AvgPool1d, AvgPool2d)):
        window = int(np.prod(_tuple(module.kernel_size, out.ndim - 2)))
        return out.numel() * (window - (1 if isinstance(module, (MaxPool1d, MaxPool2d)) else 0))
    if isinstance(module, AdaptiveAvgPool2d):  # AdaptiveMaxPool2d is a subclass
        x = _argument(args, kwargs, 0, "input")
        windows = 1  # sum over the output positions of the window sizes, dimension by dimension
        for n, o in zip(x.shape[2:], out.shape[2:]):
            starts, ends = np.arange(o) * n // o, -(-(np.arange(o) + 1) * n // o)
            windows *= int((ends - starts).sum())
        reads = windows * int(np.prod(out.shape[:2]))
        return reads - (out.numel() if isinstance(module, AdaptiveMaxPool2d) else 0)
    if isinstance(module, _ACTIVATIONS):
        return out.numel()
    return 2 * macs  # recurrent layers and attention


def _tuple(value, dims):
    return tuple(value) if isinstance(value, (tuple, list)) else (value,) * dims


def _kernel(module):
    """The window of a convolution or pooling layer as the table shows it: "3x3 s2 dw", "1x1 g4", "2x2 s2"."""
    if not isinstance(module, (Conv2d, _ConvNd, MaxPool1d, MaxPool2d, AvgPool1d, AvgPool2d)):
        return ""
    name = type(module).__name__  # Conv1d, MaxPool3d, ...: the dimensions are in the name
    dims = int(name[-2]) if name[-1] == "d" and name[-2].isdigit() else 2
    text = "x".join(str(k) for k in _tuple(module.kernel_size, dims))
    stride = _tuple(module.stride, dims)
    if any(s != 1 for s in stride):
        text += " s" + "x".join(str(s) for s in stride) if len(set(stride)) > 1 else f" s{stride[0]}"
    dilation = _tuple(getattr(module, "dilation", 1), dims)
    if any(d != 1 for d in dilation):
        text += f" d{dilation[0]}"
    groups = getattr(module, "groups", 1)
    if groups > 1:
        text += " dw" if groups == module.in_channels else f" g{groups}"
    return text


def _receptive_field(module, field, x, out):
    """(rf, jump) of a leaf layer's output from its input ``x``'s, or None when it is not spatial."""
    if field is None or out.ndim < 3 or len(field[0]) != out.ndim - 2 or x.ndim != out.ndim:
        return None
    rf, jump = field
    dims = out.ndim - 2
    if isinstance(module, (Conv2d, _ConvNd)) and not getattr(module, "transposed", False):
        kernel, stride, dilation = (_tuple(v, dims) for v in (module.kernel_size, module.stride, module.dilation))
    elif isinstance(module, (MaxPool1d, MaxPool2d, AvgPool1d, AvgPool2d)):
        kernel, stride = _tuple(module.kernel_size, dims), _tuple(module.stride, dims)
        dilation = _tuple(getattr(module, "dilation", 1), dims)
    elif isinstance(module, AdaptiveAvgPool2d):  # as a window n - (o - 1)(n // o), stride n // o
        stride = tuple(n // o for n, o in zip(x.shape[2:], out.shape[2:]))
        kernel = tuple(n - (o - 1) * s for n, o, s in zip(x.shape[2:], out.shape[2:], stride))
        dilation = (1,) * dims
    elif x.shape[2:] == out.shape[2:]:  # activations, normalisation, dropout: the field stays
        return field
    else:
        return None
    rf = tuple(r + d * (k - 1) * j for r, k, d, j in zip(rf, kernel, dilation, jump))
    return rf, tuple(j * s for j, s in zip(jump, stride))


def _rnn_macs(module, output):
    """RNN / LSTM / GRU over a sequence: x W_ih^T and h W_hh^T at every step, layer and direction."""
    directions = 2 if module.bidirectional else 1
    steps_times_batch = output.numel() // (directions * module.hidden_size)  # output: (T, N, D*H)
    gates = _GATES[module.mode] * module.hidden_size
    per_step = 0
    for layer in range(module.num_layers):
        width = module.input_size if layer == 0 else directions * module.hidden_size
        per_step += directions * gates * (width + module.hidden_size)
    return steps_times_batch * per_step


def _attention_macs(module, args, kwargs, output):
    """MultiheadAttention: the q, k, v projections and Q K^T, A V (out_proj is its own Linear row)."""
    key = _argument(args, kwargs, 1, "key")
    value = _argument(args, kwargs, 2, "value")
    e = module.embed_dim
    query_rows = output.numel() // e  # N x L
    key_rows = key.numel() // module.kdim  # N x S
    value_rows = value.numel() // module.vdim  # N x S
    projections = query_rows * e * e + key_rows * module.kdim * e + value_rows * module.vdim * e
    if key.ndim == 3:
        batch = key.shape[0] if module.batch_first else key.shape[1]
    else:
        batch = 1
    keys = key_rows // batch + (module.bias_k is not None) + bool(module.add_zero_attn)  # S with the added keys
    # per head: (L x d) @ (d x S) and (L x S) @ (S x d); over the heads d adds up to E
    return projections + 2 * query_rows * keys * e


def _sdpa_macs(query, key, value):
    """F.scaled_dot_product_attention: Q K^T ((L, E) @ (E, S)) and A V ((L, S) @ (S, Ev)) per batch entry."""
    query_rows = query.numel() // query.shape[-1]  # every query vector of every head and batch entry
    source = key.shape[-2]
    return query_rows * source * (query.shape[-1] + value.shape[-1])


def _accumulate(infos):
    """Fill ``macs`` and ``flops`` (own plus everything called inside) bottom-up."""
    for info in infos:
        _accumulate(info.children)
        info.macs = info.own_macs + sum(child.macs for child in info.children)
        info.flops = info.own_flops + sum(child.flops for child in info.children)


def _uncalled_modules(model, calls, note):
    """Rows for the modules with parameters that the pass never called, nor anything inside them (auxiliary
    heads in eval mode); a ModuleList, which is never called itself, has its called members as rows."""
    called = {info.name for info in calls}
    inside_called = {name.rpartition(".")[0] for name in called}  # every ancestor of a called module
    for name in list(inside_called):
        while name:
            name = name.rpartition(".")[0]
            inside_called.add(name)
    rows = []
    for name, module in model.named_modules():
        if not name or name in called or name in inside_called:
            continue
        if any(name.startswith(row.name + ".") for row in rows):
            continue  # inside a module that already has its row
        params = list(module.parameters())
        if not params:
            continue
        info = LayerInfo(name=name, type=type(module).__name__, depth=name.count(".") + 1, note=note)
        info.params = sum(p.numel() for p in params)
        info.non_trainable = sum(p.numel() for p in params if not p.requires_grad)
        rows.append(info)
    return rows


def _with_uncalled(rows, uncalled, model):
    """``rows`` with each uncalled module's row placed after the last row registered before it."""
    if not uncalled:
        return rows
    order = {name: i for i, (name, _) in enumerate(model.named_modules())}
    rows = list(rows)
    for info in uncalled:
        position = 0
        for i, row in enumerate(rows):
            if order.get(row.name, -1) < order[info.name]:
                position = i + 1
        rows.insert(position, info)
    return rows


# ----------------------------------------------------------------------------- formatting
def _format_rf(rf, jump):
    if rf is None:
        return "-"
    size = str(rf[0]) if len(set(rf)) == 1 else "x".join(map(str, rf))
    step = str(jump[0]) if len(set(jump)) == 1 else "x".join(map(str, jump))
    return f"{size}/{step}"


def _format_shapes(shapes):
    if not shapes:
        return "--"
    return ", ".join(str(list(s)) for s in shapes)


def _format_bytes(n):
    if n < 1024:
        return f"{n} B"
    if n < _MiB:
        return f"{n / 1024:.2f} KiB"
    return f"{n / _MiB:.2f} MiB"


def _format_count(n):
    for unit, size in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= size:
            return f"{n / size:.4f} {unit}"
    return str(n)


__all__ = ["LayerInfo", "ModelSummary", "summary"]


class _CallableModule(types.ModuleType):
    """``minidl.summary`` is both this module and the function.

    ``minidl/__init__.py`` exposes ``summary`` lazily with ``from .summary import summary``;
    importing the submodule makes Python bind ``minidl.summary`` to the module itself, so
    from the second access on the name is the module. Making the module callable keeps
    ``minidl.summary(model, input_size)`` working however it is reached.
    """

    def __call__(self, *args, **kwargs):
        return summary(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
