"""``minidl bench``: the kernel benchmark table against PyTorch (see benchmarks/kernels.py)."""
from __future__ import annotations


def add_parser(subparsers, command):
    p = subparsers.add_parser(command, help="time minidl's kernels against PyTorch (forward and forward+backward)")
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--op", action="append", help="only cases whose name contains this text (repeatable)")
    p.set_defaults(handler=run)


def run(args):
    from .. import bench

    print(bench.machine_description(args.threads))
    print()
    print(bench.format_table(bench.run(repeats=args.repeats, threads=args.threads, only=args.op)))
    return 0
