"""``minidl bench``: the kernel benchmark table against PyTorch (see benchmarks/kernels.py)."""
from __future__ import annotations


def add_parser(subparsers, command):
    p = subparsers.add_parser(command, help="time minidl's kernels against PyTorch (forward and forward+backward)",
                              description="Time minidl's kernels against PyTorch's on the same float32 inputs, "
                                          "forward and forward+backward, and print the machine, the ratios and, "
                                          "for convolutions, the achieved GFLOP/s next to NumPy's SGEMM GFLOP/s.")
    p.add_argument("--repeats", type=int, default=10, help="timed calls per side and mode (default 10)")
    p.add_argument("--threads", type=int, default=2, help="threads for PyTorch and for Numba (default 2)")
    p.add_argument("--op", action="append", help="only cases whose name contains this text (repeatable)")
    p.set_defaults(handler=run)


def run(args):
    try:  # before any timing, so that its thread pools and BLAS are loaded as in the benchmark scripts
        import torch  # noqa: F401
    except ImportError:
        pass
    from .. import bench

    rows = bench.run(repeats=args.repeats, threads=args.threads, only=args.op)
    print(bench.machine_description(args.threads))
    print()
    print(bench.format_table(rows))
    return 0
