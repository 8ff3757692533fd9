"""Kernel-level timing of minidl's CPU convolution against PyTorch (scratch script).

Times forward and forward+backward (grad input, weight and bias) of
``minidl.kernels.cpu.conv`` and ``torch.nn.functional.conv2d`` on the same float32
inputs, with torch limited to 2 threads, after a warm-up (so Numba compilation is
never timed), reporting the median of repeats and the ratio minidl/PyTorch.

    python benchmarks/bench_conv_kernels.py [--repeats 10]
"""

import argparse
import time

import numpy as np
import torch

from minidl.functions import conv  # the op's plan over the CPU kernels

# name, (N, C, H, W), K, kernel, stride, padding, groups, target fwd+bwd ratio
SHAPES = [
    ("dense 3x3 32x64->64 @32", (32, 64, 32, 32), 64, 3, 1, 1, 1, 1.5),
    ("3x3 s2 32x128->256 @16", (32, 128, 16, 16), 256, 3, 2, 1, 1, 1.5),
    ("1x1 32x256->64 @16", (32, 256, 16, 16), 64, 1, 1, 0, 1, 1.5),
    ("grouped 3x3 g32 32x128->128 @16", (32, 128, 16, 16), 128, 3, 1, 1, 32, 1.0),
    ("depthwise 3x3 32x144 @28", (32, 144, 28, 28), 144, 3, 1, 1, 144, 0.5),
]


def median_ms(fn, repeats, warmup=3):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1e3 * float(np.median(times))


def bench(shape, k_out, k, s, p, g, repeats):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape, dtype=np.float32)
    w = rng.standard_normal((k_out, shape[1] // g, k, k), dtype=np.float32)
    b = rng.standard_normal(k_out, dtype=np.float32)
    args = ((s, s), (p, p), (1, 1), g)
    gy = rng.standard_normal(conv.conv2d_forward(x, w, b, *args).shape, dtype=np.float32)

    def ours_fwd():
        return conv.conv2d_forward(x, w, b, *args)

    def ours_fwd_bwd():
        conv.conv2d_forward(x, w, b, *args)
        return conv.conv2d_backward(gy, x, w, *args)

    tx = torch.from_numpy(x).requires_grad_()
    tw = torch.from_numpy(w).requires_grad_()
    tb = torch.from_numpy(b).requires_grad_()
    tgy = torch.from_numpy(gy)

    def torch_fwd():
        with torch.no_grad():
            return torch.nn.functional.conv2d(tx, tw, tb, s, p, 1, g)

    def torch_fwd_bwd():
        y = torch.nn.functional.conv2d(tx, tw, tb, s, p, 1, g)
        return torch.autograd.grad(y, (tx, tw, tb), tgy)

    # Interleave the two so that drift on a shared machine hits both alike.
    return (median_ms(ours_fwd, repeats), median_ms(torch_fwd, repeats),
            median_ms(ours_fwd_bwd, repeats), median_ms(torch_fwd_bwd, repeats))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=10)
    opts = parser.parse_args()
    torch.set_num_threads(2)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; numpy {np.__version__}")
    print("| shape | minidl fwd ms | torch fwd ms | fwd ratio | minidl fwd+bwd ms "
          "| torch fwd+bwd ms | fwd+bwd ratio | target |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, shape, k_out, k, s, p, g, target in SHAPES:
        of, tf, ob, tb = bench(shape, k_out, k, s, p, g, opts.repeats)
        ok = "ok" if ob / tb <= target else "MISS"
        print(f"| {name} | {of:.2f} | {tf:.2f} | {of / tf:.2f} | {ob:.2f} | {tb:.2f} "
              f"| {ob / tb:.2f} | <= {target} {ok} |", flush=True)


if __name__ == "__main__":
    main()
