"""``minidl graph MODEL --input 1x3x32x32 -o graph.svg``: draw a model's autograd graph.

The model runs one forward pass on a random input of that shape; the graph that pass
records is written by :func:`minidl.autograd.to_dot`, with the parameters named. When the
Graphviz program ``dot`` is on the PATH the picture is rendered in the format of the output's
suffix (svg, png, pdf); otherwise the DOT text is written (to ``graph.dot`` for ``-o graph.svg``)
with the line that says how to install Graphviz.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys

from . import UsageError

INSTALL_HINT = ("Graphviz's `dot` program is not installed: install it (apt install graphviz, "
                "or conda install graphviz, or brew install graphviz) and rerun, or render the DOT file "
                "later with `dot -Tsvg {dot} -o {out}`")


def add_parser(subparsers, command):
    p = subparsers.add_parser(command, help="draw a model's autograd graph (Graphviz DOT, rendered by `dot`)")
    p.add_argument("model", help="a model name from `minidl models`")
    p.add_argument("--input", dest="input_size", default=None, metavar="NxCxHxW",
                   help="input shape with the batch, e.g. 1x3x32x32 (default: one sample of the model's own size)")
    p.add_argument("-o", "--output", default="graph.svg",
                   help="output file: .svg/.png/.pdf rendered by dot, .dot or .gv for the DOT text (default graph.svg)")
    p.add_argument("--show-grad", action="store_true",
                   help="run a backward pass (of the output's sum) and summarise each parameter's gradient")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(handler=run)


def run(args):
    import numpy as np

    from minidl.autograd import to_dot
    from minidl.models import get_model, get_model_builder, list_models
    from minidl.tensor import Tensor

    from .models import parse_input_size

    if args.model not in list_models():
        raise UsageError(f"unknown model {args.model!r}; see `minidl models` for the {len(list_models())} names")
    builder = get_model_builder(args.model)
    shape = parse_input_size(args.input_size) if args.input_size else builder.card.input_size
    if len(shape) == len(builder.card.input_size):  # one sample's size (as `minidl summary` takes): a batch of 1
        shape = (1, *shape)
    model = get_model(args.model)
    x = Tensor(np.random.default_rng(args.seed).standard_normal(shape).astype(np.float32))
    try:
        out = model(x)
    except ValueError as exc:
        raise UsageError(f"{args.model} cannot run on input {'x'.join(map(str, shape))}: {exc}") from exc
    outputs = [o for o in (out if isinstance(out, (tuple, list)) else (out,)) if isinstance(o, Tensor)]
    if args.show_grad:
        total = outputs[0].sum()
        for o in outputs[1:]:
            total = total + o.sum()
        total.backward(retain_graph=True)
    dot_text = to_dot(outputs, show_grad=args.show_grad, params=dict(model.named_parameters()))

    stem, suffix = os.path.splitext(args.output)
    fmt = suffix.lstrip(".").lower()
    if fmt in ("dot", "gv", ""):
        _write(args.output, dot_text)
        print(f"wrote the DOT text of {args.model}'s graph to {args.output}")
        return 0
    dot = shutil.which("dot")
    if dot is None:
        dot_path = stem + ".dot"
        _write(dot_path, dot_text)
        print(f"wrote the DOT text of {args.model}'s graph to {dot_path}")
        print(INSTALL_HINT.format(dot=dot_path, out=args.output), file=sys.stderr)
        return 0
    result = subprocess.run([dot, f"-T{fmt}", "-o", args.output], input=dot_text.encode(), capture_output=True)
    if result.returncode != 0:
        raise UsageError(f"dot could not render {args.output}: {result.stderr.decode(errors='replace').strip()}")
    print(f"wrote {args.model}'s graph to {args.output}")
    return 0


def _write(path, text):
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
