"""GPU benchmarks: minidl's CUDA kernels and a ResNet-50 training step against PyTorch CUDA.

Cases (the CPU benchmarks' shapes, issue 7):

=========================  ===============================================
conv3x3                    32x64 -> 64 at 32x32, padding 1 (fwd + bwd)
depthwise3x3               32x144 at 28x28, padding 1 (fwd + bwd)
maxpool3x3s2               32x64 at 56x56, kernel 3, stride 2, padding 1
batchnorm-train            32x64 at 32x32 (fwd + bwd)
softmax-ce                 1024 x 1000 logits (fwd + bwd)
nms                        5000 random boxes, IoU 0.5
resnet50-train-step        batch 32 at 224: forward, backward, SGD step,
                           plus peak GPU memory reserved (CuPy pool total vs torch max_memory_reserved)
=========================  ===============================================

Every case runs minidl and PyTorch on the same inputs in one process; GPU work is
timed between device synchronisations, as the median of ``--repeats`` runs after
``--warmup`` runs (compilation and cuBLAS/cuDNN autotuning are never timed). The
table goes to ``benchmarks/results/gpu.md`` with the GPU's name.

Run on a machine with an NVIDIA GPU, CuPy (``pip install -e '.[cuda12]'``) and a CUDA
build of PyTorch::

    python benchmarks/gpu_bench.py            # all cases
    python benchmarks/gpu_bench.py --only conv --repeats 50
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import numpy as np

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")


def require_gpu():
    """(cupy, torch) or SystemExit with the reason, naming what is missing."""
    from minidl.device import gpu_unavailable_reason

    reason = gpu_unavailable_reason()
    if reason is not None:
        raise SystemExit(f"gpu_bench: needs an NVIDIA GPU; {reason}")
    try:
        import torch
    except ImportError:
        raise SystemExit("gpu_bench: PyTorch (a CUDA build) is the reference and is not installed") from None
    if not torch.cuda.is_available():
        raise SystemExit("gpu_bench: the installed PyTorch has no CUDA (CPU-only build or no driver)")
    import cupy

    return cupy, torch


def median_ms(fn, sync, repeats, warmup):
    """Median wall time of fn() in ms, synchronising the device around each run."""
    for _ in range(warmup):
        fn()
    sync()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        sync()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def kernel_cases(cupy, torch):
    """name -> (minidl callable, torch callable), inputs already on the GPU."""
    import torch.nn.functional as TF

    import minidl
    import minidl.nn.functional as F

    rng = np.random.default_rng(0)
    cases = {}

    def pair(*shape, scale=1.0):
        a = (rng.standard_normal(shape) * scale).astype(np.float32)
        m = minidl.tensor(a, device="cuda", requires_grad=True)
        t = torch.tensor(a, device="cuda", requires_grad=True)
        return m, t

    def fwd_bwd(out):
        out.sum().backward() if out.ndim else out.backward()

    x, tx = pair(32, 64, 32, 32)
    w, tw = pair(64, 64, 3, 3, scale=0.05)
    cases["conv3x3 32x64->64@32 fwd+bwd"] = (lambda: fwd_bwd(F.conv2d(x, w, padding=1)),
                                             lambda: fwd_bwd(TF.conv2d(tx, tw, padding=1)))
    x2, tx2 = pair(32, 144, 28, 28)
    w2, tw2 = pair(144, 1, 3, 3)
    cases["depthwise3x3 32x144@28 fwd+bwd"] = (lambda: fwd_bwd(F.conv2d(x2, w2, padding=1, groups=144)),
                                               lambda: fwd_bwd(TF.conv2d(tx2, tw2, padding=1, groups=144)))
    x3, tx3 = pair(32, 64, 56, 56)
    cases["maxpool3x3s2 32x64@56 fwd+bwd"] = (lambda: fwd_bwd(F.max_pool2d(x3, 3, 2, 1)),
                                              lambda: fwd_bwd(TF.max_pool2d(tx3, 3, 2, 1)))
    x4, tx4 = pair(32, 64, 32, 32)
    g4, tg4 = pair(64)
    b4, tb4 = pair(64)
    cases["batchnorm-train 32x64@32 fwd+bwd"] = (
        lambda: fwd_bwd(F.batch_norm(x4, None, None, g4, b4, training=True)),
        lambda: fwd_bwd(TF.batch_norm(tx4, None, None, tg4, tb4, training=True)))
    z, tz = pair(1024, 1000, scale=3.0)
    target = rng.integers(0, 1000, 1024)
    mt = minidl.tensor(target, device="cuda")
    tt = torch.tensor(target, device="cuda")
    cases["softmax-ce 1024x1000 fwd+bwd"] = (lambda: F.cross_entropy(z, mt).backward(),
                                             lambda: TF.cross_entropy(tz, tt).backward())
    from torchvision.ops import nms as torch_nms

    from minidl.kernels.cuda import nms as gpu_nms

    xy = rng.random((5000, 2)) * 1000
    boxes = np.concatenate([xy, xy + rng.random((5000, 2)) * 100], axis=1).astype(np.float32)
    scores = rng.random(5000).astype(np.float32)
    cb, cs = cupy.asarray(boxes), cupy.asarray(scores)
    tbx, tsc = torch.tensor(boxes, device="cuda"), torch.tensor(scores, device="cuda")
    cases["nms 5000 boxes"] = (lambda: gpu_nms.nms(cb, cs, 0.5), lambda: torch_nms(tbx, tsc, 0.5))
    return cases


def resnet50_step(cupy, torch, repeats, warmup):
    """(minidl ms, torch ms, minidl peak MiB, torch peak MiB) of one SGD training step, batch 32 at 224."""
    import torchvision

    import minidl
    import minidl.nn.functional as F
    from minidl.models import resnet50

    rng = np.random.default_rng(0)
    x = rng.standard_normal((32, 3, 224, 224)).astype(np.float32)
    y = rng.integers(0, 1000, 32)

    pool = cupy.get_default_memory_pool()

    def minidl_part():
        # In a function so that the model and its activations are freed on return.
        model = resnet50().to("cuda")
        model.train()
        opt = minidl.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        mx, my = minidl.tensor(x, device="cuda"), minidl.tensor(y, device="cuda")

        def m_step():
            opt.zero_grad()
            F.cross_entropy(model(mx), my).backward()
            opt.step()

        # CuPy's pool keeps freed blocks: its total_bytes() after the steps is the peak the model needed.
        pool.free_all_blocks()
        ms = median_ms(m_step, cupy.cuda.Device().synchronize, repeats, warmup)
        return ms, pool.total_bytes() / 2**20

    m_ms, m_peak = minidl_part()
    pool.free_all_blocks()

    tmodel = torchvision.models.resnet50().cuda().train()
    topt = torch.optim.SGD(tmodel.parameters(), lr=0.01, momentum=0.9)
    tx, ty = torch.tensor(x, device="cuda"), torch.tensor(y, device="cuda")

    def t_step():
        topt.zero_grad()
        torch.nn.functional.cross_entropy(tmodel(tx), ty).backward()
        topt.step()

    torch.cuda.reset_peak_memory_stats()
    t_ms = median_ms(t_step, torch.cuda.synchronize, repeats, warmup)
    # Reserved, not allocated: CuPy's pool total is what it holds from the driver, freed blocks included,
    # which is what torch's caching allocator reports as reserved.
    t_peak = torch.cuda.max_memory_reserved() / 2**20
    return m_ms, t_ms, m_peak, t_peak


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--only", action="append", help="only cases whose name contains this text")
    parser.add_argument("--out", default=RESULTS)
    args = parser.parse_args(argv)
    cupy, torch = require_gpu()
    import minidl.cuda

    start = time.perf_counter()
    minidl.cuda.warmup()  # compile (or load from numba's cache) every CUDA kernel before anything is timed
    print(f"CUDA kernels compiled in {time.perf_counter() - start:.1f} s", flush=True)
    torch.backends.cudnn.benchmark = True
    gpu = cupy.cuda.runtime.getDeviceProperties(0)["name"].decode()
    rows = []

    def sync():
        cupy.cuda.Device().synchronize()
        torch.cuda.synchronize()

    for name, (m_fn, t_fn) in kernel_cases(cupy, torch).items():
        if args.only and not any(s in name for s in args.only):
            continue
        m_ms = median_ms(m_fn, sync, args.repeats, args.warmup)
        t_ms = median_ms(t_fn, sync, args.repeats, args.warmup)
        rows.append((name, m_ms, t_ms, ""))
        print(f"{name:40s} minidl {m_ms:9.3f} ms  torch {t_ms:9.3f} ms  ratio {m_ms / t_ms:6.2f}", flush=True)
    if not args.only or any("resnet" in s for s in args.only):
        m_ms, t_ms, m_peak, t_peak = resnet50_step(cupy, torch, max(3, args.repeats // 4), args.warmup)
        rows.append(("resnet50-train-step b32@224", m_ms, t_ms, f"{m_peak:.0f} / {t_peak:.0f}"))
        print(f"resnet50 step minidl {m_ms:.1f} ms torch {t_ms:.1f} ms, peak reserved MiB {m_peak:.0f} / {t_peak:.0f}")

    os.makedirs(args.out, exist_ok=True)
    lines = [
        "# GPU benchmarks: minidl (CuPy + numba.cuda kernels) vs PyTorch CUDA",
        "",
        f"GPU: {gpu}; CuPy {cupy.__version__}; PyTorch {torch.__version__}; median of {args.repeats} runs after "
        f"{args.warmup} warm-up runs, device synchronised around each run. Command: "
        f"`python benchmarks/gpu_bench.py {' '.join(argv if argv is not None else sys.argv[1:])}`",
        "",
        "| case | minidl ms | PyTorch ms | minidl / PyTorch | peak reserved MiB minidl / PyTorch |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for name, m_ms, t_ms, mem in rows:
        lines.append(f"| {name} | {m_ms:.3f} | {t_ms:.3f} | {m_ms / t_ms:.2f} | {mem} |")
    with open(os.path.join(args.out, "gpu.md"), "w") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
