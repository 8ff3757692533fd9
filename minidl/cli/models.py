"""``minidl models`` and ``minidl summary``: the model zoo's parameter counts, and one model's layer table.

    minidl models                      # every registered model: params, published, match, input size
    minidl models vgg 'resnet*'        # only names matching these patterns (substring or glob)
    minidl summary lenet5
    minidl summary vgg16 --input 3x224x224 --depth 2
    minidl summary lenet5 --flops        # FLOPs (2 x MACs + bias adds + pooling/activation ops), receptive fields
"""
from __future__ import annotations

import fnmatch
import inspect
import sys

from . import UsageError


def add_parser(subparsers, command):
    if command == "models":
        parser = subparsers.add_parser("models", help="list the model zoo with parameter counts",
                                       description="Build every registered model once (its weights left "
                                                   "uninitialised) and compare its parameter count with the "
                                                   "published count.")
        parser.add_argument("patterns", nargs="*", metavar="PATTERN",
                            help="only models whose name contains PATTERN or matches it as a glob")
        parser.set_defaults(handler=run_models)
    elif command == "summary":
        parser = subparsers.add_parser("summary", help="per-layer table of one model (shapes, params, MACs, memory)")
        parser.add_argument("model", help="registered model name (see `minidl models`)")
        parser.add_argument("--input", dest="input_size", default=None, metavar="CxHxW",
                            help="input size of one sample, e.g. 3x224x224 (default: the model's own)")
        parser.add_argument("--depth", type=int, default=3, help="nesting depth of the rows shown (default 3)")
        parser.add_argument("--flops", action="store_true",
                            help="add FLOPs (2 x MACs + bias additions + pooling and activation operations) "
                                 "and the receptive field (size/jump) of every row")
        parser.add_argument("--batch-size", type=int, default=1, help="batch size of the forward pass (default 1)")
        parser.add_argument("--num-classes", type=int, default=None, help="build the model with this many classes")
        parser.set_defaults(handler=run_summary)
    else:  # pragma: no cover - the dispatcher only routes the two commands above here
        raise ValueError(f"minidl.cli.models: unknown command {command!r}")


def parse_input_size(text):
    """'3x224x224' -> (3, 224, 224); also accepts commas ('3,224,224')."""
    parts = text.lower().replace(",", "x").split("x")
    try:
        size = tuple(int(p) for p in parts)
    except ValueError:
        raise UsageError(f"--input must look like 3x224x224 (positive integers joined by 'x'), got {text!r}") from None
    if not size or any(v <= 0 for v in size):
        raise UsageError(f"--input must hold positive integers, got {text!r}")
    return size


def _selected(names, patterns):
    if not patterns:
        return names
    return [n for n in names if any(p in n or fnmatch.fnmatch(n, p) for p in patterns)]


def model_rows(names):
    """(name, params, published, match, input size) for each model, building each once.

    Each model is built as its builder builds it, but with the weights' initialisation
    skipped (``minidl.nn.utils.skip_init``): its parameters get their shapes and no values,
    and the memory of a VGG's half a gigabyte of weights is never written. The published
    count and the input size are those of the model's card (``get_model_card``)."""
    from minidl.models import get_model_builder, get_model_card
    from minidl.nn.utils import skip_init

    for name in names:
        card = get_model_card(name)
        params = skip_init(get_model_builder(name)).num_parameters()
        published = card.num_params
        match = None if published is None else params == published
        yield name, params, published, match, card.input_size


def format_models_table(rows):
    header = ("model", "params", "published", "match", "input")
    body = [(name, f"{params:,}", "--" if published is None else f"{published:,}",
             "--" if match is None else ("✓" if match else "✗"), "x".join(map(str, size)))
            for name, params, published, match, size in rows]
    widths = [max(len(r[i]) for r in [header] + body) for i in range(len(header))]
    lines = []
    for row in [header] + body:
        cells = [row[0].ljust(widths[0]), row[1].rjust(widths[1]), row[2].rjust(widths[2]),
                 row[3].center(widths[3]), row[4].ljust(widths[4])]
        lines.append("  ".join(cells).rstrip())
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)


def run_models(args):
    from minidl.models import list_models

    names = _selected(list_models(), args.patterns)
    if not names:
        raise UsageError(f"no registered model matches {' '.join(args.patterns)}; try `minidl models`")
    rows = model_rows(names)
    if sys.stderr.isatty():
        from tqdm import tqdm

        rows = tqdm(rows, total=len(names), desc="building", unit="model", leave=False)
    rows = list(rows)
    print(format_models_table(rows))
    mismatched = [name for name, _, _, match, _ in rows if match is False]
    if mismatched:
        print(f"{len(mismatched)} model(s) differ from the published count: {', '.join(mismatched)}", file=sys.stderr)
        return 1
    return 0


def run_summary(args):
    from minidl.models import get_model, get_model_builder, list_models
    from minidl.summary import summary

    if args.model not in list_models():
        raise UsageError(f"unknown model {args.model!r}; see `minidl models` for the {len(list_models())} names")
    if args.depth < 1:
        raise UsageError(f"--depth must be >= 1, got {args.depth}")
    if args.batch_size < 1:
        raise UsageError(f"--batch-size must be >= 1, got {args.batch_size}")
    builder = get_model_builder(args.model)
    input_size = parse_input_size(args.input_size) if args.input_size else builder.card.input_size
    kwargs = {} if args.num_classes is None else {"num_classes": args.num_classes}
    if args.input_size and "input_size" in inspect.signature(builder).parameters:
        kwargs["input_size"] = input_size  # models sized by their input (the MLPs) are built for it
    model = get_model(args.model, **kwargs)
    try:
        result = summary(model, input_size, depth=args.depth, batch_size=args.batch_size, flops=args.flops)
    except ValueError as exc:
        raise UsageError(f"{args.model} cannot run on input {'x'.join(map(str, input_size))}: {exc}") from exc
    print(result)
    return 0
