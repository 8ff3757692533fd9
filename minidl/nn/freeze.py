"""Freezing parameters for transfer learning (the seeds' "N frozen layers")."""
from __future__ import annotations


def freeze(model, first_n=None, prefix=None, by="parameters"):
    """Mark parameters ``requires_grad=False``; returns the names frozen.

    - ``first_n``: freeze the first N, counted in ``named_parameters`` order when
      ``by="parameters"`` (a weight and a bias count as two), or the parameters of the
      first N modules that own parameters (a Conv2d with its bias is one module, a
      BatchNorm one module) when ``by="modules"``. Keras' count of layers (every leaf
      module call in forward order, activations and pooling included) needs a forward pass:
      ``minidl.transfer.freeze(model, n, by="layers", input_size=...)``.
    - ``prefix``: freeze every parameter whose name starts with the prefix (a string or
      a sequence of strings), e.g. ``prefix="features"``.
    - neither: freeze everything.
    """
    if by == "layers":
        raise ValueError("freeze: by='layers' counts every leaf-module call in forward order, which needs a forward "
                         "pass: use minidl.transfer.freeze(model, n, by='layers', input_size=(C, H, W)); "
                         "by='modules' counts the modules that own parameters")
    if by not in ("parameters", "modules"):
        raise ValueError(f"freeze: by must be 'parameters' or 'modules', got {by!r}")
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
                raise ValueError(f"freeze: first_n={first_n} but the model has only {len(layers)} modules with "
                                 "parameters")
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


def head_names(model):
    """Names of the classifier layers that ``replace_head`` swaps: the main head first, then auxiliary ones.

    The main head is the module owning the model's last parameter (torchvision's ``fc``,
    ``classifier[-1]``, ``heads.head``, SqueezeNet's 1x1 ``classifier[1]`` convolution); it
    must be a Linear or a 1x1 Conv2d. Auxiliary heads are the last Linear of each top-level
    child whose name contains "aux" (GoogLeNet's ``aux1.fc2``/``aux2.fc2``, Inception v3's
    ``AuxLogits.fc``).
    """
    from .layers import Conv2d, Linear

    names = [name for name, _ in model.named_parameters()]
    if not names:
        raise ValueError(f"replace_head: {type(model).__name__} has no parameters, so no classifier to replace")
    main = _owner(names[-1])
    module = model.get_submodule(main) if main else model
    if not (isinstance(module, Linear) or (isinstance(module, Conv2d) and tuple(module.kernel_size) == (1, 1))):
        raise ValueError(f"replace_head: cannot tell the classifier of {type(model).__name__}: its last parameter "
                         f"{names[-1]!r} belongs to a {type(module).__name__}, not a Linear or a 1x1 Conv2d; "
                         "replace the head yourself (e.g. model.fc = nn.Linear(in_features, num_classes))")
    aux = []
    for child_name, child in model.named_children():
        if child is None or "aux" not in child_name.lower():
            continue
        linears = [f"{child_name}.{n}" if n else child_name for n, m in child.named_modules() if isinstance(m, Linear)]
        if linears:
            aux.append(linears[-1])
    return [main] + aux


def replace_head(model, num_classes):
    """Swap the classifier for one with ``num_classes`` outputs; returns the new main head.

    The layers swapped are :func:`head_names`' (the main head and any auxiliary heads); each
    new layer keeps its predecessor's input size, bias and (for SqueezeNet's 1x1 convolution)
    kernel, with PyTorch's default initialisation.
    """
    from .layers import Conv2d, Linear

    new_layers = []
    for name in head_names(model):
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name)
        old = parent._modules[child]
        if isinstance(old, Linear):
            new = Linear(old.in_features, num_classes, bias=old.bias is not None)
        else:
            new = Conv2d(old.in_channels, num_classes, kernel_size=1, bias=old.bias is not None)
        parent._modules[child] = new
        new_layers.append(new)
    return new_layers[0]
