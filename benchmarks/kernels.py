"""Kernel benchmark: minidl's ops against PyTorch's on the same float32 inputs, in one process.

    python benchmarks/kernels.py [--repeats 10] [--threads 2] [--op conv]

Writes benchmarks/results/cpu-kernels.md (machine, versions, thread counts, the table) and
benchmarks/results/cpu-kernels.png (ratios). ``minidl bench`` prints the same table.
"""
import argparse
import os
import sys

try:  # PyTorch first: its OpenMP runtime reads the wait policy when it loads (see kernels/cpu/__init__.py)
    import torch  # noqa: F401
except ImportError:
    pass

from minidl import bench  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--op", action="append", help="only cases whose name contains this text")
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results"))
    args = parser.parse_args()
    rows = bench.run(repeats=args.repeats, threads=args.threads, only=args.op)
    table = bench.format_table(rows)
    print(table)
    if args.op:
        return 0  # partial runs do not overwrite the committed results
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "cpu-kernels.md"), "w") as f:
        f.write("# CPU kernels: minidl against PyTorch\n\n")
        f.write(bench.machine_description(args.threads) + "\n\n")
        f.write(f"Median of {args.repeats} repeats after warm-up; `python benchmarks/kernels.py`.\n\n")
        f.write(table + "\n")
    bench.plot(rows, os.path.join(args.out, "cpu-kernels.png"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
