"""Pictures of the autograd graph: :func:`to_dot` writes Graphviz's DOT language.

As Chainer's ``computational_graph`` and torchviz's ``make_dot`` do, the graph has two
kinds of nodes, linked in the direction the data flows:

* **tensor nodes** (boxes): shape and dtype; a leaf that requires grad is blue, a parameter
  (when ``params`` names it) green with its name, a constant white, the output yellow;
* **op nodes** (ellipses): the recorded Function's name (``Mul``, ``Conv2d``, ...).

Arrays an op saved for its backward are listed on the op node when they are its own inputs
or output (``saves x0, x1``); any other saved array (a max-pool's indices, batch norm's
statistics) gets its own orange node, linked to the op by a dashed edge.

>>> import minidl
>>> from minidl.autograd import to_dot
>>> a = minidl.ones(2, 3, requires_grad=True)
>>> print(to_dot((a * 2).sum()).splitlines()[0])
digraph minidl {

Render the text with ``dot -Tsvg graph.dot -o graph.svg`` (Graphviz), or with ``minidl graph``.
"""
from __future__ import annotations

import numpy as np

from .tensor import Tensor


def _quote(text):
    return '"' + str(text).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _describe(array):
    return f"{tuple(int(s) for s in array.shape)} {np.dtype(array.dtype).name}"


def _grad_summary(grad):
    g = (grad.data if isinstance(grad, Tensor) else grad).astype(np.float64)  # NumPy or CuPy
    if g.size == 0:
        return "grad: empty"
    return f"grad: mean {float(g.mean()):.4g}, max|g| {float(abs(g).max()):.4g}"


def to_dot(tensor, show_grad=False, params=None):
    """The graph that produced ``tensor`` (or a sequence of tensors), as Graphviz DOT text.

    ``params``: a ``{name: tensor}`` dict (``dict(model.named_parameters())``) whose tensors
    are labelled with their names. ``show_grad``: add a summary of ``.grad`` (mean and
    largest magnitude) to every tensor that has one (leaves after ``backward``; non-leaf
    tensors only with ``retain_grad()``). The graph must still be alive: after a
    ``backward()`` without ``retain_graph=True`` the ops' inputs are freed, which the op
    nodes say.
    """
    roots = [tensor] if isinstance(tensor, Tensor) else list(tensor)
    if not roots or not all(isinstance(t, Tensor) for t in roots):
        raise TypeError("to_dot: expected a Tensor or a sequence of Tensors")
    names = {id(t): name for name, t in (params or {}).items()}
    lines = ["digraph minidl {", "  graph [rankdir=TB];", '  node [fontname="Helvetica", fontsize=10];']
    tensor_ids, op_ids = {}, {}
    n_saved = 0
    root_ids = {id(t) for t in roots}
    queue = []

    def tensor_node(t):
        if id(t) in tensor_ids:
            return tensor_ids[id(t)]
        node = tensor_ids[id(t)] = f"t{len(tensor_ids)}"
        label = _describe(t.data)
        if id(t) in names:
            label = f"{names[id(t)]}\n{label}"
        if show_grad and t.grad is not None:
            label += "\n" + _grad_summary(t.grad)
        if id(t) in root_ids:
            color = "lightyellow"
        elif id(t) in names:
            color = "darkolivegreen1"
        elif t._ctx is None and t.requires_grad:
            color = "lightblue"
        else:
            color = "white"
        lines.append(f"  {node} [label={_quote(label)}, shape=box, style=filled, fillcolor={color}];")
        queue.append(t)
        return node

    for root in roots:
        tensor_node(root)
    while queue:
        t = queue.pop(0)
        fn = t._ctx
        if fn is None:
            continue
        if id(fn) in op_ids:
            lines.append(f"  {op_ids[id(fn)]} -> {tensor_ids[id(t)]};")
            continue
        op = op_ids[id(fn)] = f"f{len(op_ids)}"
        inputs = [p for p in fn.parents if isinstance(p, Tensor)]
        own = {id(p.data): f"x{i}" for i, p in enumerate(inputs)}
        own.setdefault(id(t.data), "output")
        saved = [s for s in (fn.saved or ()) if hasattr(s, "shape") and hasattr(s, "dtype")]
        label = fn.name
        mine = [own[id(s)] for s in saved if id(s) in own]
        if mine:
            label += "\nsaves " + ", ".join(mine)
        if fn.saved is None:
            label += "\n(freed by backward: use retain_graph=True)"
        lines.append(f"  {op} [label={_quote(label)}, shape=ellipse, style=filled, fillcolor=lightgray];")
        for s in saved:
            if id(s) in own:
                continue
            node = f"s{n_saved}"
            n_saved += 1
            lines.append(f"  {node} [label={_quote('saved ' + _describe(s))}, shape=box, style=filled, "
                         f"fillcolor=orange];")
            lines.append(f"  {node} -> {op} [style=dashed];")
        for p in inputs:
            lines.append(f"  {tensor_node(p)} -> {op};")
        lines.append(f"  {op} -> {tensor_ids[id(t)]};")
    lines.append("}")
    return "\n".join(lines) + "\n"


__all__ = ["to_dot"]
