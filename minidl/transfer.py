"""Transfer learning: freezing by layers, modules, parameters or prefix; frozen batch norm; gradual unfreezing.

The seeds' garbage study freezes "the first 50 / 80 / 110 layers" of ResNeXt-50 and
MobileNet v2, counting layers as its framework (Keras) does: every layer in the order the
forward pass runs it, convolutions, batch norms, activations, pooling and all.
``freeze(model, n, by="layers", input_size=...)`` counts the same way: every call of a leaf
module (a module without sub-modules) in the order one forward pass makes them, found by
recording that pass (``minidl.summary``'s per-call record). A module called twice counts
twice, as Keras has one layer per use (torchvision's ResNet blocks call one ``relu`` three
times: ResNeXt-50 has 158 layers, Keras-style). The counts still differ from Keras' where
the frameworks build a block differently: Keras has ``InputLayer``, ``Add`` and
``ZeroPadding2D`` layers, PyTorch adds and pads inside a forward (MobileNet v2: 141 layers
here, 155 in Keras without its top).

Frozen batch norm: a batch-norm layer whose parameters are all frozen stays in eval mode
while the rest of the model trains (it normalises with its running statistics and does not
update them), as Keras does for a ``BatchNormalization`` layer with ``trainable=False``
(PyTorch users get the same by calling ``.eval()`` on those layers after ``model.train()``).
:class:`FrozenLayers` does that at the start of every epoch and, with ``unfreeze_at``, makes
everything trainable at the start of that epoch (gradual unfreezing).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from minidl import nn
from minidl.nn.layers import _BatchNorm

FREEZE_BY = ("layers", "modules", "parameters", "prefix")


def forward_layers(model, input_size):
    """The layers of ``model`` as Keras counts them: the name of each leaf-module call of one forward pass.

    ``input_size`` is one sample's shape, e.g. ``(3, 224, 224)``; the pass runs in eval mode. A
    module called twice (LeNet-5's pooling) appears twice. Leaf modules the pass does not call
    (auxiliary classifiers, which run only in training) follow, once each, in registration order.
    """
    from minidl.summary import summary

    leaves = [name for name, module in model.named_modules() if name and not module._modules]
    is_leaf = set(leaves)
    record = summary(model, tuple(input_size), depth=10**6)
    order = [call.name for call in record.layers if call.name in is_leaf]  # every call, in call order
    called = set(order)
    return order + [name for name in leaves if name not in called]


@dataclass
class FreezeResult:
    """What :func:`freeze` froze: ``params`` (names), ``modules`` (names of modules now wholly frozen),
    and the count in the unit asked for (``count`` of ``total`` ``unit``)."""
    params: list
    modules: list
    count: int
    total: int
    unit: str
    frozen_numel: int = 0
    numel: int = 0
    batchnorms: list = field(default_factory=list)

    def __str__(self):
        return (f"froze {self.count} of {self.total} {self.unit} ({self.frozen_numel:,} of {self.numel:,} "
                f"parameters; {len(self.batchnorms)} frozen batch-norm layers kept in eval mode)")


def _owns(param_name, module_name):
    return param_name.rpartition(".")[0] == module_name


def _under(name, prefix):
    """``name`` is ``prefix`` or inside it (``layer1`` matches ``layer1.0.conv1.weight``, not ``layer10``)."""
    prefix = prefix.rstrip(".")
    return name == prefix or name.startswith(prefix + ".")


def freeze(model, n, by="layers", input_size=None):
    """Freeze the start of ``model`` for fine-tuning; returns a :class:`FreezeResult` (``str()``: one line).

    - ``by="layers"``: the first ``n`` layers in forward order, Keras' count (needs ``input_size``,
      see :func:`forward_layers`); "froze 110 of 158 layers" (ResNeXt-50).
    - ``by="modules"``: the first ``n`` modules that own parameters (``nn.freeze(by="modules")``).
    - ``by="parameters"``: the first ``n`` parameter tensors (a weight and a bias are two).
    - ``by="prefix"``: ``n`` is a name prefix or a list of them (``"features"``, ``["conv1", "layer1"]``);
      a prefix matches whole name parts (``layer1`` is not ``layer10``).
    """
    if by not in FREEZE_BY:
        raise ValueError(f"freeze: by must be one of {', '.join(FREEZE_BY)}, got {by!r}")
    named = list(model.named_parameters())
    if by == "prefix":
        prefixes = [n] if isinstance(n, str) else list(n)
        for prefix in prefixes:
            if not any(_under(name, prefix) for name, _ in named):
                raise ValueError(f"freeze: no parameter name starts with {prefix!r} (names look like "
                                 f"{named[0][0]!r}; see `minidl summary` for the model's layer names)")
        chosen = [name for name, _ in named if any(_under(name, prefix) for prefix in prefixes)]
        count, total, unit = len(chosen), len(named), "parameter tensors"
    else:
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise ValueError(f"freeze: n must be an int >= 0 for by={by!r}, got {n!r}")
        if by == "layers":
            if input_size is None:
                raise ValueError("freeze: by='layers' needs input_size (one sample's shape) for the forward pass")
            layers = forward_layers(model, input_size)
            if n > len(layers):
                raise ValueError(f"freeze: cannot freeze {n} layers: {type(model).__name__} has {len(layers)} "
                                 "layers (leaf-module calls in forward order)")
            chosen = [name for name, _ in named if any(_owns(name, layer) for layer in layers[:n])]
            count, total, unit = n, len(layers), "layers"
        else:
            chosen = nn.freeze(model, first_n=n, by=by) if n else []
            total = len(named) if by == "parameters" else len({name.rpartition(".")[0] for name, _ in named})
            count, unit = n, ("parameter tensors" if by == "parameters" else "modules with parameters")
    chosen_set = set(chosen)
    for name, p in named:
        if name in chosen_set:
            p.requires_grad = False
            p.grad = None
    if by == "layers":
        frozen_modules = list(dict.fromkeys(layers[:n]))
    else:  # the modules all of whose own parameters are frozen
        frozen_modules = [name for name, module in model.named_modules()
                          if module._parameters and all((f"{name}.{k}" if name else k) in chosen_set
                                                        for k, v in module._parameters.items() if v is not None)]
    batchnorms = [name for name in frozen_modules if isinstance(model.get_submodule(name), _BatchNorm)]
    return FreezeResult(params=chosen, modules=frozen_modules, count=count, total=total, unit=unit,
                        frozen_numel=sum(p.numel() for name, p in named if name in chosen_set),
                        numel=sum(p.numel() for _, p in named), batchnorms=batchnorms)


class FrozenLayers:
    """Keeps a :func:`freeze`'s batch norms in eval mode each epoch and unfreezes at ``unfreeze_at``.

    Give it to ``Trainer(on_epoch_start=...)``: called with the 1-based number of the epoch about
    to run, after the Trainer's ``model.train()``. From epoch ``unfreeze_at`` on (None: never)
    every parameter :func:`freeze` froze is trainable and its batch norms train again; the
    optimizer must already hold those parameters (``param_groups(..., trainable_only=False)``),
    which it skips while their gradient is None.
    """

    def __init__(self, model, result, unfreeze_at=None, log=print):
        self.model, self.result, self.unfreeze_at, self.log = model, result, unfreeze_at, log
        self.frozen = bool(result.params)

    def __call__(self, trainer, epoch):
        if self.frozen and self.unfreeze_at is not None and epoch >= self.unfreeze_at:
            wanted = set(self.result.params)
            for name, p in self.model.named_parameters():
                if name in wanted:
                    p.requires_grad = True
            self.frozen = False
            self.log(f"epoch {epoch}: unfroze the {self.result.count} frozen {self.result.unit} "
                     f"({self.result.frozen_numel:,} parameters)")
        if self.frozen:
            for name in self.result.batchnorms:
                self.model.get_submodule(name).eval()
