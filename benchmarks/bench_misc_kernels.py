"""Time the pooling, batch-norm, softmax-CE and NMS kernels against PyTorch (CPU, 2 threads).

Forward + backward, float32, median of repeats after warm-up; prints a markdown table
with the ratio minidl / PyTorch (lower is better). torchvision is not installed here, so
NMS is compared with a straightforward PyTorch greedy loop (one vectorised IoU row per
kept box). Run: ``python benchmarks/bench_misc_kernels.py [--repeats 15]``.
"""

import argparse
import platform
import time

import numpy as np
import torch

from minidl.kernels.cpu import loss, nms, norm, pooling


def median_ms(ours, ref, repeats):
    """Median milliseconds of both functions, run alternately so they see the same machine load."""
    for fn in (ours, ref, ours, ref):
        fn()  # warm-up: compilation and first-touch page faults are not timed
    times = ([], [])
    for _ in range(repeats):
        for fn, out in zip((ours, ref), times):
            start = time.perf_counter()
            fn()
            out.append(time.perf_counter() - start)
    return 1e3 * float(np.median(times[0])), 1e3 * float(np.median(times[1]))


def torch_nms(boxes, scores, threshold):
    """Greedy NMS in plain PyTorch: sort once, then one vectorised IoU row per kept box."""
    order = torch.argsort(scores, descending=True, stable=True)
    b = boxes[order]
    area = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    suppressed = torch.zeros(len(b), dtype=torch.bool)
    keep = []
    for i in range(len(b)):
        if suppressed[i]:
            continue
        keep.append(i)
        lt = torch.maximum(b[i, :2], b[i + 1:, :2])
        rb = torch.minimum(b[i, 2:], b[i + 1:, 2:])
        wh = (rb - lt).clamp(min=0)
        inter = wh[:, 0] * wh[:, 1]
        suppressed[i + 1:] |= inter / (area[i] + area[i + 1:] - inter) > threshold
    return order[torch.tensor(keep, dtype=torch.long)]


def cases(rng):
    F = torch.nn.functional

    x = rng.standard_normal((32, 64, 56, 56)).astype(np.float32)
    xt = torch.tensor(x, requires_grad=True)
    g_mp = rng.standard_normal((32, 64, 28, 28)).astype(np.float32)
    g_mpt = torch.tensor(g_mp)

    def mp_ours():
        y, idx = pooling.max_pool2d_forward(x, (3, 3), (2, 2), (1, 1), (1, 1), False)
        pooling.max_pool2d_backward(g_mp, idx, x.shape)

    def mp_torch():
        y = F.max_pool2d(xt, 3, 2, 1)
        torch.autograd.grad(y, xt, g_mpt)

    yield "max_pool2d 3x3 s2 p1, 32x64x56x56", mp_ours, mp_torch, 0.5

    def ap_ours():
        pooling.avg_pool2d_forward(x, (2, 2), (2, 2), (0, 0), False, True, None)
        pooling.avg_pool2d_backward(g_mp, x.shape, (2, 2), (2, 2), (0, 0), False, True, None)

    def ap_torch():
        y = F.avg_pool2d(xt, 2, 2)
        torch.autograd.grad(y, xt, g_mpt)

    yield "avg_pool2d 2x2 s2, 32x64x56x56", ap_ours, ap_torch, 1.2

    xb = rng.standard_normal((32, 64, 32, 32)).astype(np.float32)
    wb = rng.standard_normal(64).astype(np.float32)
    bb = rng.standard_normal(64).astype(np.float32)
    gb = rng.standard_normal(xb.shape).astype(np.float32)
    xbt, wbt, bbt, gbt = (torch.tensor(a, requires_grad=True) for a in (xb, wb, bb, gb))

    def bn_ours():
        y, mean, invstd, var = norm.batch_norm_train_forward(xb, wb, bb, 1e-5)
        norm.batch_norm_backward(gb, xb, wb, mean, invstd, True, True)

    def bn_torch():
        y = F.batch_norm(xbt, None, None, wbt, bbt, training=True)
        torch.autograd.grad(y, (xbt, wbt, bbt), gbt)

    yield "batch_norm train, 32x64x32x32", bn_ours, bn_torch, 1.2

    z = rng.standard_normal((1024, 1000)).astype(np.float32) * 3
    t = rng.integers(0, 1000, 1024)
    zt, tt = torch.tensor(z, requires_grad=True), torch.tensor(t)

    def ce_ours():
        per, lse, sw = loss.softmax_cross_entropy_forward(z, t, None, -100, 0.0)
        g = np.full(1024, 1.0 / sw.sum(), np.float32)
        loss.softmax_cross_entropy_backward(z, lse, t, None, -100, 0.0, g)

    def ce_torch():
        torch.autograd.grad(F.cross_entropy(zt, tt), zt)

    yield "softmax_cross_entropy, 1024x1000", ce_ours, ce_torch, 1.2

    xy = rng.random((5000, 2)).astype(np.float32) * 1000
    wh = rng.random((5000, 2)).astype(np.float32) * 100 + 10
    boxes = np.concatenate([xy, xy + wh], axis=1)
    scores = rng.random(5000).astype(np.float32)
    boxes_t, scores_t = torch.tensor(boxes), torch.tensor(scores)
    assert np.array_equal(nms.nms(boxes, scores, 0.5), torch_nms(boxes_t, scores_t, 0.5).numpy())
    yield "nms 5000 boxes, IoU 0.5", lambda: nms.nms(boxes, scores, 0.5), lambda: torch_nms(boxes_t, scores_t, 0.5), 0.5


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    torch.set_num_threads(2)
    rng = np.random.default_rng(0)
    print(f"machine: {platform.processor() or platform.machine()}, torch {torch.__version__}, 2 threads, float32, fwd+bwd")
    print("| op | minidl ms | torch ms | ratio | target |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name, ours, ref, target in cases(rng):
        a, b = median_ms(ours, ref, args.repeats)
        mark = "ok" if a / b <= target else "MISSED"
        print(f"| {name} | {a:.2f} | {b:.2f} | {a / b:.2f} | <= {target} {mark} |", flush=True)


if __name__ == "__main__":
    main()
