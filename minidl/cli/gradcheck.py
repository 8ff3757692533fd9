"""``minidl gradcheck``: run the built-in gradient-check suite and print a table."""
from __future__ import annotations

from . import UsageError


def add_parser(subparsers, command):
    p = subparsers.add_parser(command, help="check every op's backward against central differences (float64)")
    p.add_argument("--op", action="append", help="only ops whose name contains this text (repeatable)")
    p.add_argument("--atol", type=float, default=1e-5)
    p.add_argument("--rtol", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1,
                   help="compute threads (default 1: the inputs are a few dozen numbers, and on one thread "
                        "a first run compiles only the kernels' serial versions, a fraction of the time)")
    p.set_defaults(handler=run)


def run(args):
    from ..gradcheck_suite import format_table, run_suite
    from .train import set_num_threads

    if args.threads < 1:
        raise UsageError(f"--threads must be >= 1, got {args.threads}")
    set_num_threads(args.threads)
    rows = run_suite(atol=args.atol, rtol=args.rtol, seed=args.seed, only=args.op)
    print(format_table(rows))
    return 0 if all(r[4] for r in rows) else 1
