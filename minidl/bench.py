"""Kernel benchmarks against PyTorch: the cases and the timing harness behind ``minidl bench``
and ``benchmarks/kernels.py``.

Every case runs the same float32 inputs through minidl's public op and through
PyTorch's, in one process, forward only and forward + backward, after warm-up
(so Numba compilation is never timed), and reports the median of the repeats.
Absolute times drift on shared machines; the ratio taken in one process is the
figure to read.
"""
from __future__ import annotations

import platform
import statistics
import time

import numpy as np


def median_ms(fn, repeats, warmup=2):
    """Median wall time of ``fn()`` in milliseconds over ``repeats`` calls, after ``warmup`` calls."""
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples) * 1000.0


class Case:
    """One benchmark: ``make(rng)`` gives NumPy inputs; ``minidl_fn`` and ``torch_fn`` take tensors of each library."""

    def __init__(self, name, shape_text, make, minidl_fn, torch_fn, grad_inputs=(0,), target=None, backward=True):
        self.name, self.shape_text, self.make = name, shape_text, make
        self.minidl_fn, self.torch_fn = minidl_fn, torch_fn
        self.grad_inputs, self.target, self.backward = grad_inputs, target, backward


def _conv_case(name, n, c, k, size, kernel, stride, padding, groups, target):
    def make(rng):
        x = rng.standard_normal((n, c, size, size)).astype(np.float32)
        w = (rng.standard_normal((k, c // groups, kernel, kernel)) * 0.1).astype(np.float32)
        b = rng.standard_normal(k).astype(np.float32)
        return [x, w, b]

    def run_minidl(x, w, b):
        from .nn import functional as F

        return F.conv2d(x, w, b, stride=stride, padding=padding, groups=groups)

    def run_torch(x, w, b):
        import torch.nn.functional as TF

        return TF.conv2d(x, w, b, stride=stride, padding=padding, groups=groups)

    shape = f"{n}x{c}->{k} at {size}, {kernel}x{kernel} s{stride} p{padding}" + (f" g{groups}" if groups > 1 else "")
    return Case(name, shape, make, run_minidl, run_torch, grad_inputs=(0, 1, 2), target=target)


def _random_boxes(rng, n):
    xy = rng.random((n, 2)) * 900
    wh = rng.random((n, 2)) * 100 + 4
    return np.concatenate([xy, xy + wh], axis=1).astype(np.float32)


def cases():
    """The kernel cases of issue "CNN ops on the CPU", with their target ratios for forward + backward."""
    out = [
        _conv_case("conv 3x3", 32, 64, 64, 32, 3, 1, 1, 1, 1.5),
        _conv_case("conv 3x3 stride 2", 32, 128, 256, 16, 3, 2, 1, 1, 1.5),
        _conv_case("conv 1x1", 32, 256, 64, 16, 1, 1, 0, 1, 1.5),
        _conv_case("grouped conv 3x3", 32, 128, 128, 16, 3, 1, 1, 32, 1.0),
        _conv_case("depthwise conv 3x3", 32, 144, 144, 28, 3, 1, 1, 144, 0.5),
    ]

    def pool_input(rng):
        return [rng.standard_normal((32, 64, 56, 56)).astype(np.float32)]

    out.append(Case("max-pool 3x3 s2 p1", "32x64 at 56", pool_input,
                    lambda x: _F().max_pool2d(x, 3, 2, 1), lambda x: _TF().max_pool2d(x, 3, 2, 1), target=0.5))
    out.append(Case("avg-pool 2x2", "32x64 at 56", pool_input,
                    lambda x: _F().avg_pool2d(x, 2), lambda x: _TF().avg_pool2d(x, 2), target=None))

    def bn_input(rng):
        return [rng.standard_normal((32, 64, 32, 32)).astype(np.float32),
                np.ones(64, np.float32), np.zeros(64, np.float32)]

    out.append(Case("batch-norm (training)", "32x64 at 32", bn_input,
                    lambda x, w, b: _F().batch_norm(x, None, None, w, b, training=True),
                    lambda x, w, b: _TF().batch_norm(x, None, None, w, b, training=True),
                    grad_inputs=(0, 1, 2), target=1.2))

    def ce_input(rng):
        return [rng.standard_normal((1024, 1000)).astype(np.float32), rng.integers(0, 1000, 1024)]

    out.append(Case("softmax cross-entropy", "1024x1000", ce_input,
                    lambda x, t: _F().cross_entropy(x, t), lambda x, t: _TF().cross_entropy(x, t), target=1.2))

    def nms_input(rng):
        return [_random_boxes(rng, 5000), rng.random(5000).astype(np.float32)]

    out.append(Case("NMS", "5000 boxes, IoU 0.5", nms_input, _minidl_nms, _torch_nms, grad_inputs=(),
                    target=0.5, backward=False))
    return out


def _F():
    from .nn import functional as F

    return F


def _TF():
    import torch.nn.functional as TF

    return TF


def _minidl_nms(boxes, scores):
    from minidl.kernels.cpu.nms import nms

    return nms(boxes.numpy(), scores.numpy(), 0.5)


def _torch_nms(boxes, scores):
    """torchvision.ops.nms where torchvision imports; else a straightforward greedy NMS written in torch."""
    try:
        from torchvision.ops import nms
    except Exception:  # torchvision missing or without its compiled ops
        nms = _torch_greedy_nms
    return nms(boxes, scores, 0.5)


def _torch_greedy_nms(boxes, scores, threshold):
    import torch

    order = torch.argsort(scores, descending=True, stable=True)
    boxes = boxes[order]
    x1, y1, x2, y2 = boxes.unbind(1)
    areas = (x2 - x1) * (y2 - y1)
    suppressed = torch.zeros(len(boxes), dtype=torch.bool)
    keep = []
    for i in range(len(boxes)):
        if suppressed[i]:
            continue
        keep.append(i)
        w = (torch.minimum(x2[i], x2[i + 1:]) - torch.maximum(x1[i], x1[i + 1:])).clamp(min=0)
        h = (torch.minimum(y2[i], y2[i + 1:]) - torch.maximum(y1[i], y1[i + 1:])).clamp(min=0)
        inter = w * h
        iou = inter / (areas[i] + areas[i + 1:] - inter)
        suppressed[i + 1:] |= iou > threshold
    return order[torch.tensor(keep, dtype=torch.long)]


def torch_nms_reference_name():
    try:
        from torchvision.ops import nms  # noqa: F401

        return "torchvision.ops.nms"
    except Exception:
        return "greedy NMS in torch (torchvision not importable)"


def _run_minidl(case, arrays, backward):
    from minidl.creation import tensor

    tensors = [tensor(a, requires_grad=(i in case.grad_inputs and backward)) if a.dtype.kind == "f"
               else tensor(a) for i, a in enumerate(arrays)]

    def step():
        for t in tensors:
            t.grad = None
        out = case.minidl_fn(*tensors)
        if backward:
            out.sum().backward()
    return step


def _run_torch(case, arrays, backward):
    import torch

    tensors = [torch.tensor(a, requires_grad=(i in case.grad_inputs and backward)) if a.dtype.kind == "f"
               else torch.tensor(a) for i, a in enumerate(arrays)]

    def step():
        for t in tensors:
            t.grad = None
        out = case.torch_fn(*tensors)
        if backward:
            out.sum().backward()
    return step


def run(repeats=10, threads=2, only=None, seed=0):
    """Time every case; returns a list of dict rows (ms and ratios; torch entries None without torch)."""
    try:
        import torch

        torch.set_num_threads(threads)
    except ImportError:
        torch = None
    try:
        import numba

        numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    except Exception:
        pass
    rng = np.random.default_rng(seed)
    rows = []
    for case in cases():
        if only and not any(o in case.name for o in only):
            continue
        arrays = case.make(rng)
        row = {"name": case.name, "shape": case.shape_text, "target": case.target}
        for mode in ("forward", "forward+backward"):
            backward = mode == "forward+backward"
            if backward and not case.backward:
                continue
            ms = median_ms(_run_minidl(case, arrays, backward), repeats)
            ref = median_ms(_run_torch(case, arrays, backward), repeats) if torch is not None else None
            row[mode] = (ms, ref, ms / ref if ref else None)
        rows.append(row)
    return rows


def machine_description(threads):
    import numba

    lines = [f"- machine: {platform.machine()}, {platform.processor() or platform.platform()}, "
             f"{_cpu_count()} logical CPUs; {_cpu_model()}",
             f"- Python {platform.python_version()}, NumPy {np.__version__}, Numba {numba.__version__}"]
    try:
        import torch

        lines.append(f"- PyTorch {torch.__version__} with {torch.get_num_threads()} threads; "
                     f"NMS reference: {torch_nms_reference_name()}")
    except ImportError:
        lines.append("- PyTorch not installed: minidl times only")
    import os

    lines.append(f"- threads: Numba {threads}, BLAS as NumPy's default, OMP_WAIT_POLICY="
                 f"{os.environ.get('OMP_WAIT_POLICY', 'default')} (one OpenMP runtime, shared by Numba and PyTorch in "
                 f"this process); median of repeats after warm-up, float32")
    return "\n".join(lines)


def _cpu_count():
    import os

    return os.cpu_count()


def _cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


def format_table(rows):
    def cell(value, fmt):
        return "-" if value is None else format(value, fmt)

    lines = ["| op | shape (N, C, H, W) | fwd minidl ms | fwd PyTorch ms | fwd ratio | fwd+bwd minidl ms | "
             "fwd+bwd PyTorch ms | fwd+bwd ratio | target | met |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
    for row in rows:
        f = row.get("forward", (None, None, None))
        b = row.get("forward+backward")
        judged = b if b is not None else f
        met = "-" if row["target"] is None or judged[2] is None else ("yes" if judged[2] <= row["target"] else "no")
        target = "-" if row["target"] is None else f"<= {row['target']}"
        if b is None:
            b = (None, None, None)
        lines.append(f"| {row['name']} | {row['shape']} | {cell(f[0], '.2f')} | {cell(f[1], '.2f')} | "
                     f"{cell(f[2], '.2f')} | {cell(b[0], '.2f')} | {cell(b[1], '.2f')} | {cell(b[2], '.2f')} | "
                     f"{target} | {met} |")
    lines.append("")
    lines.append("Targets apply to forward+backward (forward only for NMS). Ratio = minidl / PyTorch: below 1 is faster.")
    return "\n".join(lines)


def plot(rows, path):
    """A bar chart of the forward+backward ratios (log scale), with the targets marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names, ratios, targets = [], [], []
    for row in rows:
        r = row.get("forward+backward") or row.get("forward")
        if r and r[2] is not None:
            names.append(row["name"])
            ratios.append(r[2])
            targets.append(row["target"])
    fig, ax = plt.subplots(figsize=(9, 4.5))
    colors = ["tab:green" if t is None or r <= t else "tab:red" for r, t in zip(ratios, targets)]
    ax.barh(names, ratios, color=colors)
    for i, t in enumerate(targets):
        if t is not None:
            ax.plot([t, t], [i - 0.4, i + 0.4], color="black", linewidth=2)
    ax.axvline(1.0, color="gray", linestyle="--", linewidth=1)
    ax.set_xscale("log")
    ax.set_xlabel("time ratio minidl / PyTorch (forward+backward; black ticks: targets)")
    ax.invert_yaxis()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
