"""Kernel benchmark: minidl's ops against PyTorch's on the same float32 inputs, in one process.

    python benchmarks/kernels.py [--repeats 10] [--threads 2] [--op conv]

torch is imported first, before minidl, as in a user's script that uses both. A full run (no
--op) writes this machine's section of benchmarks/results/cpu-kernels.md (the machine, the
versions, the threads and BLAS kernels, the table; other machines' sections are kept) and
benchmarks/results/cpu-kernels.png (the ratios). ``minidl bench`` prints the same table.
"""
try:
    import torch  # noqa: F401  first: the process's OpenMP runtime and BLAS are loaded as in a user's script
except ImportError:  # minidl times only
    torch = None

import argparse
import os
import sys

from minidl import bench

TITLE = "CPU kernels: minidl against PyTorch"

PREAMBLE = """Each op runs on the same float32 inputs in minidl and in PyTorch, in one process (`import torch`
first), forward only and forward + backward (the sum of the output back-propagated), after warm-up.
minidl's repeats and PyTorch's run in separate blocks that alternate over three rounds; each figure
is the median over all of its samples. Ratio = minidl / PyTorch: below 1, minidl is faster. One
section per machine: a full run of `python benchmarks/kernels.py` replaces its own machine's section."""


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--op", action="append", help="only cases whose name contains this text")
    parser.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "results"))
    args = parser.parse_args()
    rows = bench.run(repeats=args.repeats, threads=args.threads, only=args.op)
    description = bench.machine_description(args.threads)
    table = bench.format_table(rows)
    print(f"{bench.SECTION}{bench.machine_heading()}\n\n{description}\n\n{table}")
    if args.op:
        return 0  # partial runs do not overwrite the committed results
    os.makedirs(args.out, exist_ok=True)
    body = (f"{description}\n- median of {args.repeats} repeats per side after warm-up, "
            f"`python benchmarks/kernels.py --repeats {args.repeats} --threads {args.threads}`\n\n{table}")
    bench.write_results(os.path.join(args.out, "cpu-kernels.md"), TITLE, PREAMBLE, body)
    bench.plot(rows, os.path.join(args.out, "cpu-kernels.png"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
