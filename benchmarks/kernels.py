"""Kernel benchmark: minidl's ops against PyTorch's on the same float32 inputs, in one process.

    python benchmarks/kernels.py [--repeats 10] [--threads 2] [--op conv]

Writes benchmarks/results/cpu-kernels.md (machine, versions, thread counts, the table) and
benchmarks/results/cpu-kernels.png (ratios). ``minidl bench`` prints the same table.
"""
import argparse
import os
import sys

import minidl.kernels.cpu  # noqa: F401  first: sets OMP_WAIT_POLICY=PASSIVE before any OpenMP runtime loads
from minidl import bench


READING = """
## Reading the table

- Dense 3x3 convolution (plain and stride 2) is bound by the matrix product: im2col feeds one
  OpenBLAS SGEMM of (K, C*9) @ (C*9, N*OH*OW), which runs at about 90-100 GFLOP/s on this machine,
  while PyTorch's oneDNN convolution reaches about 200 GFLOP/s here (2.4 GFLOP in 11.6 ms). Around the
  GEMM, im2col, col2im and the layout transposes add about 10-20%. Getting under 1.5 needs a faster
  GEMM than NumPy's OpenBLAS on this CPU (or a hand-written blocked micro-kernel), not less overhead.
- Depthwise convolution, pooling and NMS are memory- or branch-bound and PyTorch's CPU paths for them
  are not tuned: the direct Numba loops beat them by 2-10x.
- Threads: Numba's OpenMP workers are set to sleep, not spin, between parallel loops
  (OMP_WAIT_POLICY=PASSIVE, set by minidl.kernels.cpu); with the spinning default the dense
  convolution was 3x slower here, because the spinning workers took the cores OpenBLAS needed.
"""


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
        f.write(READING)
    bench.plot(rows, os.path.join(args.out, "cpu-kernels.png"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
