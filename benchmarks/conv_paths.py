"""Which path for a dense 3x3 stride-1 convolution: Winograd F(4x4, 3x3) or im2col + GEMM, per layer shape.

    python benchmarks/conv_paths.py [--repeats 7]

Times forward + backward (input and weight gradients) of both CPU paths of minidl and of PyTorch's
convolution on ResNet-shaped layers (CIFAR ResNet-18 at batch 32, ResNet-50's 3x3 at batch 8, and
narrow layers), float32, torch imported first, median of the repeats. The table is the evidence for
``WINOGRAD_MIN_CHANNELS`` and ``WINOGRAD_MIN_OUTPUT`` in minidl/functions/conv.py. Writes
benchmarks/results/cpu-conv-paths.md.
"""
import torch  # noqa: F401  first, as in the other benchmarks

import argparse
import os
import sys

import numpy as np

from minidl import bench
from minidl.bench import median_ms
from minidl.functions.conv import conv_plan
from minidl.kernels.cpu import conv as kc, winograd as wk

LAYERS = [(32, 64, 32), (32, 128, 16), (32, 256, 8), (32, 512, 4), (8, 64, 56), (8, 128, 28), (8, 256, 14),
          (8, 512, 7), (32, 16, 32), (128, 32, 16)]  # (N, C = K, H = W)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    torch.set_num_threads(2)
    rng = np.random.default_rng(0)
    lines = ["| N | C = K | H = W | Winograd ms | im2col ms | PyTorch ms | Winograd / PyTorch | im2col / PyTorch "
             "| minidl's path |", "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
    for n, c, h in LAYERS:
        x = rng.standard_normal((n, c, h, h), dtype=np.float32)
        w = (rng.standard_normal((c, c, 3, 3)) * 0.05).astype(np.float32)
        gy = rng.standard_normal((n, c, h, h), dtype=np.float32)
        wino = median_ms(lambda: (wk.winograd_forward(x, w, None, (1, 1)), wk.winograd_backward(gy, x, w, (1, 1))),
                         args.repeats)
        gemm = median_ms(lambda: (kc.conv2d_forward_gemm(x, w, None, (1, 1), (1, 1), (1, 1), 1),
                                  kc.conv2d_backward_gemm(gy, x, w, (1, 1), (1, 1), (1, 1), 1)), args.repeats)
        tx, tw, tg = torch.from_numpy(x).requires_grad_(), torch.from_numpy(w).requires_grad_(), torch.from_numpy(gy)
        ref = median_ms(lambda: torch.autograd.grad(torch.nn.functional.conv2d(tx, tw, None, 1, 1), (tx, tw), tg),
                        args.repeats)
        path = conv_plan(x.shape, w.shape, (1, 1), (1, 1), 1, (1, 1), winograd=True)
        row = (f"| {n} | {c} | {h} | {wino:.1f} | {gemm:.1f} | {ref:.1f} | {wino / ref:.2f} | {gemm / ref:.2f} "
               f"| {path} |")
        print(row, flush=True)
        lines.append(row)
    text = (f"# Dense 3x3 convolution: Winograd or im2col\n\n{bench.machine_description(2)}\n\n"
            "Forward + backward (input and weight gradients), float32, median of "
            f"{args.repeats}; `python benchmarks/conv_paths.py`.\n\n" + "\n".join(lines) + "\n")
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "cpu-conv-paths.md")
    with open(out, "w") as f:
        f.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
