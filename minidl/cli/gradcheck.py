"""``minidl gradcheck``: run the built-in gradient-check suite and print a table.

``--verbose`` prints every case (its input shapes, the max abs/rel error per input, and for a
failing input the worst element with its analytic and numeric values). ``--fn module:function
--shapes 2x3,3x4`` checks a user's own function on float64 random inputs of those shapes.
"""
from __future__ import annotations

import importlib
import importlib.util
import os
import sys

from . import UsageError


def add_parser(subparsers, command):
    p = subparsers.add_parser(command, help="check every op's backward against central differences (float64)")
    p.add_argument("--op", action="append", help="only ops whose name contains this text (repeatable)")
    p.add_argument("--atol", type=float, default=1e-5)
    p.add_argument("--rtol", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=0,
                   help="mixed into every case's own seed (each case draws from a seed made from its name)")
    p.add_argument("--threads", type=int, default=1,
                   help="compute threads (default 1: the inputs are a few dozen numbers, and on one thread "
                        "a first run compiles only the kernels' serial versions, a fraction of the time)")
    p.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1),
                   help="processes that share the ops (default: up to 2, one per core): a first run is mostly "
                        "Numba compiling kernels, one at a time per process; 1 runs everything in this process")
    p.add_argument("-v", "--verbose", action="store_true",
                   help="print every case: input shapes, max abs/rel error per input, the worst element on failure")
    p.add_argument("--fn", metavar="MODULE:FUNCTION",
                   help="check your own function instead of the suite, e.g. mymodule:f (a module importable "
                        "from the current folder, or path/to/file.py:f); it takes tensors and returns a tensor")
    p.add_argument("--shapes", metavar="2x3,3x4",
                   help="with --fn: the shapes of its float64 random inputs, comma-separated (a scalar: 'scalar')")
    p.set_defaults(handler=run)


def parse_shapes(text):
    """'2x3,3x4' -> [(2, 3), (3, 4)]; 'scalar' or '' is a 0-d input."""
    shapes = []
    for part in text.split(","):
        part = part.strip().lower()
        if part in ("", "scalar"):
            shapes.append(())
            continue
        try:
            shape = tuple(int(v) for v in part.split("x"))
        except ValueError:
            raise UsageError(f"--shapes must look like 2x3,3x4 (sizes joined by 'x', shapes by ','), got {text!r}") \
                from None
        if any(v < 0 for v in shape):
            raise UsageError(f"--shapes must hold sizes >= 0, got {text!r}")
        shapes.append(shape)
    return shapes


def load_function(spec):
    """'package.module:function' or 'path/to/file.py:function' -> the function."""
    module_name, sep, attr = spec.rpartition(":")
    if not sep or not module_name or not attr:
        raise UsageError(f"--fn must look like module:function (e.g. mymodule:f), got {spec!r}")
    if module_name.endswith(".py"):
        if not os.path.isfile(module_name):
            raise UsageError(f"--fn: no file {module_name!r}")
        spec_ = importlib.util.spec_from_file_location(os.path.basename(module_name)[:-3], module_name)
        module = importlib.util.module_from_spec(spec_)
        spec_.loader.exec_module(module)
    else:
        if os.getcwd() not in sys.path and "" not in sys.path:
            sys.path.insert(0, os.getcwd())  # as `python -m` does: modules in the current folder
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            raise UsageError(f"--fn: cannot import module {module_name!r} ({exc}); run from the folder that "
                             "holds it or give a path, e.g. path/to/file.py:f") from None
    fn = getattr(module, attr, None)
    if not callable(fn):
        raise UsageError(f"--fn: module {module_name!r} has no function {attr!r}")
    return fn


def run(args):
    from ..gradcheck_suite import check_case, format_case, format_table, run_suite
    from .train import set_num_threads

    if args.threads < 1:
        raise UsageError(f"--threads must be >= 1, got {args.threads}")
    if args.workers < 1:
        raise UsageError(f"--workers must be >= 1, got {args.workers}")
    set_num_threads(args.threads)
    if args.fn:
        if args.shapes is None:
            raise UsageError("--fn needs --shapes, the shapes of the function's inputs, e.g. --shapes 2x3,3x4")
        if args.op:
            raise UsageError("--fn checks one function: leave out --op")
        fn = load_function(args.fn)
        record = check_case(args.fn, "", fn, parse_shapes(args.shapes), args.atol, args.rtol, args.seed,
                            no_ties=False)
        print(format_case(record, verbose=True))
        return 0 if record["passed"] else 1
    if args.shapes is not None:
        raise UsageError("--shapes goes with --fn (the shapes of your function's inputs)")

    failures = []

    def on_case(record):
        if args.verbose:
            print(format_case(record, verbose=True), flush=True)
        elif not record["passed"]:
            failures.append(record)

    rows = run_suite(atol=args.atol, rtol=args.rtol, seed=args.seed, only=args.op, on_case=on_case,
                     workers=args.workers)
    if args.verbose:
        print()
    print(format_table(rows))
    for record in failures:  # without --verbose: the failing cases only, with their worst elements
        print(format_case(record, verbose=False))
    return 0 if all(r[4] for r in rows) else 1
