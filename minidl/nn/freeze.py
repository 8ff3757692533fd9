"""Freezing parameters for transfer learning (the seeds' "N frozen layers")."""
from __future__ import annotations


def freeze(model, first_n=None, prefix=None, by="parameters"):
    """Mark parameters ``requires_grad=False``; returns the names frozen.

    - ``first_n``: freeze the first N, counted in ``named_parameters`` order when
      ``by="parameters"`` (a weight and a bias count as two, as Keras' ``layers[:N]``
      over weights does), or the parameters of the first N parameterised modules
      (a Conv2d with its bias is one layer, a BatchNorm one layer) when ``by="layers"``.
    - ``prefix``: freeze every parameter whose name starts with the prefix (a string or
      a sequence of strings), e.g. ``prefix="features"``.
    - neither: freeze everything.
    """
    if by not in ("parameters", "layers"):
        raise ValueError(f"freeze: by must be 'parameters' or 'layers', got {by!r}")
    names = [name for name, _ in model.named_parameters()]
    chosen = set()
    if first_n is not None:
        if first_n < 0:
            raise ValueError(f"freeze: first_n must be >= 0, got {first_n}")
        if by == "parameters":
            if first_n > len(names):
                raise ValueError(f"freeze: first_n={first_n} but the model has only {len(names)} parameters")
            chosen.update(names[:first_n])
        else:
            layers = _parameterised_modules(model)
            if first_n > len(layers):
                raise ValueError(f"freeze: first_n={first_n} but the model has only {len(layers)} layers with parameters")
            for module_name in layers[:first_n]:
                chosen.update(n for n in names if _owner(n) == module_name)
    if prefix is not None:
        prefixes = (prefix,) if isinstance(prefix, str) else tuple(prefix)
        matched = [n for n in names if n.startswith(prefixes)]
        if not matched:
            raise ValueError(f"freeze: no parameter name starts with {prefixes}")
        chosen.update(matched)
    if first_n is None and prefix is None:
        chosen.update(names)
    for name, p in model.named_parameters():
        if name in chosen:
            p.requires_grad = False
            p.grad = None
    return [n for n in names if n in chosen]


def unfreeze(model, prefix=None):
    """Make parameters trainable again (all, or those whose name starts with ``prefix``)."""
    for name, p in model.named_parameters():
        if prefix is None or name.startswith(prefix):
            p.requires_grad = True


def _owner(param_name):
    return param_name.rpartition(".")[0]


def _parameterised_modules(model):
    """Names of modules that own parameters directly, in order."""
    seen, order = set(), []
    for name, _ in model.named_parameters():
        owner = _owner(name)
        if owner not in seen:
            seen.add(owner)
            order.append(owner)
    return order


def replace_head(model, num_classes):
    """Swap the final Linear classifier for one with ``num_classes`` outputs; returns the new layer.

    Looks for the last Linear module (torchvision's ``fc``, ``classifier[-1]``, ``head``) and
    replaces it in its parent, keeping in_features and bias.
    """
    from .layers import Linear

    last = None
    for name, module in model.named_modules():
        if isinstance(module, Linear):
            last = name
    if last is None:
        raise ValueError(f"replace_head: {type(model).__name__} has no Linear layer to replace")
    parent_name, _, child = last.rpartition(".")
    parent = model.get_submodule(parent_name)
    old = parent._modules[child]
    new = Linear(old.in_features, num_classes, bias=old.bias is not None)
    parent._modules[child] = new
    return new
