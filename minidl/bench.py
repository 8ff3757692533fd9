"""Kernel benchmarks against PyTorch: the cases and the timing harness behind ``minidl bench``
and ``benchmarks/kernels.py``, and what both benchmark scripts share (the machine description,
the ratio chart, the results files with one section per machine).

Every case runs the same float32 inputs through minidl's public op and through
PyTorch's, in one process, forward only and forward + backward, after warm-up
(so Numba compilation is never timed). minidl's repeats and PyTorch's run in separate
blocks, and the blocks alternate over a few rounds, so that a slow spell of a shared
machine hits both sides; each side's figure is the median of all its samples. Absolute
times drift on shared machines; the ratio taken in one process is the figure to read.
For each convolution the table also gives the achieved GFLOP/s of both libraries and, as
the limit a GEMM-based convolution can reach, NumPy's SGEMM GFLOP/s on the same run.
"""
from __future__ import annotations

import os
import platform
import re
import statistics
import sys
import time

import numpy as np


def median_ms(fn, repeats, warmup=2):
    """Median wall time of ``fn()`` in milliseconds over ``repeats`` calls, after ``warmup`` calls."""
    return alternating_median_ms([fn], repeats, warmup, rounds=1)[0]


def alternating_median_ms(fns, repeats, warmup=2, rounds=3):
    """Median wall time in ms of each of ``fns`` over ``repeats`` calls, the calls in alternating blocks.

    Each function is warmed up ``warmup`` times; then, in each of ``rounds`` rounds, each function
    runs its share of the repeats in one block (``fns[0]``'s block, then ``fns[1]``'s, ...). The
    median is over all of a function's samples, from every round.
    """
    for fn in fns:
        for _ in range(warmup):
            fn()
    rounds = max(1, min(rounds, repeats))
    samples = [[] for _ in fns]
    for r in range(rounds):
        count = repeats * (r + 1) // rounds - repeats * r // rounds
        for fn, out in zip(fns, samples):
            for _ in range(count):
                start = time.perf_counter()
                fn()
                out.append(time.perf_counter() - start)
    return [statistics.median(out) * 1000.0 for out in samples]


def conv_flops(n, c, k, oh, ow, kh, kw, groups=1):
    """FLOPs of one pass of a direct convolution: 2 * N * K * OH * OW * (C / groups) * kh * kw.

    The forward, the input gradient and the weight gradient each take this many (one
    multiply-add per weight per output position), so forward + backward counts three passes.
    Bias and the reductions around it are not counted.
    """
    return 2 * n * k * oh * ow * (c // groups) * kh * kw


def im2col_gemm_shape(n, c, k, oh, ow, kh, kw, groups=1):
    """(M, K, N) of one group's im2col GEMM: (K/g, C/g*kh*kw) @ (C/g*kh*kw, N*OH*OW)."""
    return k // groups, c // groups * kh * kw, n * oh * ow


def sgemm_gflops(m, k, n, repeats, rng, warmup=2):
    """GFLOP/s of NumPy's float32 ``a @ b`` with a (m, k), b (k, n), on BLAS's default threads."""
    a = rng.standard_normal((m, k)).astype(np.float32)
    b = rng.standard_normal((k, n)).astype(np.float32)
    out = np.empty((m, n), np.float32)
    ms = median_ms(lambda: np.matmul(a, b, out=out), repeats, warmup)
    return 2.0 * m * k * n / (ms / 1000.0) / 1e9


class Case:
    """One benchmark: ``make(rng)`` gives NumPy inputs; ``minidl_fn`` and ``torch_fn`` take tensors of each library."""

    def __init__(self, name, shape_text, make, minidl_fn, torch_fn, grad_inputs=(0,), target=None, backward=True,
                 conv=None):
        self.name, self.shape_text, self.make = name, shape_text, make
        self.minidl_fn, self.torch_fn = minidl_fn, torch_fn
        self.grad_inputs, self.target, self.backward = grad_inputs, target, backward
        # for a convolution: dict(flops=one pass's FLOPs, gemm=(M, K, N) of its im2col GEMM, path=minidl's path)
        self.conv = conv


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
    out_size = (size + 2 * padding - kernel) // stride + 1
    facts = dict(flops=conv_flops(n, c, k, out_size, out_size, kernel, kernel, groups),
                 gemm=im2col_gemm_shape(n, c, k, out_size, out_size, kernel, kernel, groups),
                 path=_conv_path((n, c, size, size), (k, c // groups, kernel, kernel), stride, padding, groups))
    return Case(name, shape, make, run_minidl, run_torch, grad_inputs=(0, 1, 2), target=target, conv=facts)


def _conv_path(x_shape, w_shape, stride, padding, groups):
    """The kernel path minidl's CPU convolution takes for these shapes (minidl.functions.conv.conv_plan)."""
    from minidl.backend import kernels_for
    from minidl.functions.conv import conv_plan

    winograd = hasattr(kernels_for(np, "conv"), "winograd_forward")
    return conv_plan(x_shape, w_shape, (stride, stride), (padding, padding), groups, winograd=winograd)


def _random_boxes(rng, n):
    xy = rng.random((n, 2)) * 900
    wh = rng.random((n, 2)) * 100 + 4
    return np.concatenate([xy, xy + wh], axis=1).astype(np.float32)


def cases():
    """The kernel cases of the performance issue, with their target ratios for forward + backward."""
    out = [
        _conv_case("conv 3x3", 32, 64, 64, 32, 3, 1, 1, 1, 1.0),
        _conv_case("conv 3x3 stride 2", 32, 128, 256, 16, 3, 2, 1, 1, 1.0),
        _conv_case("conv 1x1", 32, 256, 64, 16, 1, 1, 0, 1, 1.0),
        _conv_case("grouped conv 3x3", 32, 128, 128, 16, 3, 1, 1, 32, 1.0),
        _conv_case("depthwise conv 3x3", 32, 144, 144, 28, 3, 1, 1, 144, 0.7),
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
                    grad_inputs=(0, 1, 2), target=1.0))

    def ce_input(rng):
        return [rng.standard_normal((1024, 1000)).astype(np.float32), rng.integers(0, 1000, 1024)]

    out.append(Case("softmax cross-entropy", "1024x1000", ce_input,
                    lambda x, t: _F().cross_entropy(x, t), lambda x, t: _TF().cross_entropy(x, t), target=1.0))

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


def run(repeats=10, threads=2, only=None, seed=0, rounds=3):
    """Time every case; returns a list of dict rows (ms and ratios; torch entries None without torch).

    ``row["forward"]`` and ``row["forward+backward"]`` are (minidl ms, PyTorch ms, ratio); a
    convolution's row also has ``"gflop"`` (GFLOP of forward + backward, three passes),
    ``"gflops"`` ((minidl, PyTorch) GFLOP/s of forward + backward), ``"sgemm"`` (GFLOP/s of
    NumPy's SGEMM on its im2col GEMM shape ``"gemm"``, same run) and ``"path"`` (minidl's).
    """
    torch = set_threads(threads)
    rng = np.random.default_rng(seed)
    gemm_rng = np.random.default_rng(seed + 1)  # apart, so that the cases' inputs do not depend on it
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
            steps = [_run_minidl(case, arrays, backward)]
            if torch is not None:
                steps.append(_run_torch(case, arrays, backward))
            times = alternating_median_ms(steps, repeats, rounds=rounds)
            ms, ref = times[0], (times[1] if torch is not None else None)
            row[mode] = (ms, ref, ms / ref if ref else None)
        if case.conv is not None and "forward+backward" in row:
            ms, ref, _ = row["forward+backward"]
            gflop = 3 * case.conv["flops"] / 1e9
            row.update(gflop=gflop, gemm=case.conv["gemm"], path=case.conv["path"],
                       gflops=(gflop / (ms / 1000.0), gflop / (ref / 1000.0) if ref else None),
                       sgemm=sgemm_gflops(*case.conv["gemm"], repeats=repeats, rng=gemm_rng))
        rows.append(row)
    return rows


def set_threads(threads):
    """Give PyTorch and Numba ``threads`` threads each; returns the torch module, or None without it."""
    try:
        import torch

        torch.set_num_threads(threads)
    except ImportError:
        torch = None
    import numba

    import minidl.kernels.cpu  # noqa: F401  first: it picks Numba's threading layer, which set_num_threads starts

    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    return torch


# ----------------------------------------------------------------------------- the machine
def cpu_model():
    """The CPU's model name from /proc/cpuinfo (``platform.processor()`` elsewhere)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def machine_heading():
    """The key of this machine's section in a results file, e.g. ``"AMD EPYC (2 logical CPUs)"``."""
    return f"{cpu_model()} ({os.cpu_count()} logical CPUs)"


def machine_description(threads=None):
    """Markdown bullet lines: CPU, versions, and the threads and BLAS kernels in use in this process.

    Call it after the timings, so that the thread pools it reports have started.
    """
    import numba

    from minidl.kernels.cpu import threading_report

    report = threading_report()
    lines = [f"- CPU: {cpu_model()}, {os.cpu_count()} logical CPUs ({platform.machine()}, {platform.platform()})"]
    versions = f"- Python {platform.python_version()}, NumPy {np.__version__}, Numba {numba.__version__}"
    torch = sys.modules.get("torch")
    if torch is not None:
        capability = ""
        try:
            capability = f", CPU capability {torch.backends.cpu.get_cpu_capability()}"
        except Exception:  # older torch
            pass
        versions += f", PyTorch {torch.__version__}{capability}"
    lines.append(versions)
    thread_line = f"- threads: Numba {report['numba_threads']} on the {report['numba_layer']} layer"
    if torch is not None:
        thread_line += f", PyTorch {torch.get_num_threads()}"
    lines.append(thread_line + ("" if threads is None else f" (--threads {threads})"))
    numpy_blas = _numpy_blas_version()
    for pool in report.get("blas", []):
        whose = "NumPy's" if numpy_blas and pool["version"] == numpy_blas else "loaded by another library"
        lines.append(f"- BLAS ({whose}): {pool['library']} {pool['version']} ({pool['file']}), "
                     f"kernel {pool['kernel']}, {pool['threads']} threads")
    if not report.get("blas"):
        lines.append("- BLAS: not reported (threadpoolctl missing)")
    lines.append("- minidl runs each BLAS product single-threaded, split over its own threads "
                 "(kernels/cpu/blas.py); the SGEMM column uses NumPy's BLAS with its default threads")
    for pool in report.get("openmp", []):
        lines.append(f"- OpenMP runtime loaded: {pool['file']}, {pool['threads']} threads")
    lines.append(f"- allocator: {report['malloc']}; process-wide, so PyTorch's tensors in this process "
                 "allocate under the same settings")
    if torch is not None:
        lines.append(f"- NMS reference: {torch_nms_reference_name()}")
    else:
        lines.append("- PyTorch not installed: minidl times only")
    return "\n".join(lines)


def _numpy_blas_version():
    try:
        return np.show_config(mode="dicts")["Build Dependencies"]["blas"].get("version")
    except Exception:  # older NumPy: no dict form
        return None


# ----------------------------------------------------------------------------- the table
def format_table(rows):
    def cell(value, fmt):
        return "-" if value is None else format(value, fmt)

    lines = ["| op | shape (N, C, H, W) | fwd minidl ms | fwd PyTorch ms | fwd ratio | fwd+bwd minidl ms | "
             "fwd+bwd PyTorch ms | fwd+bwd ratio | target | met | minidl GFLOP/s | PyTorch GFLOP/s | "
             "SGEMM GFLOP/s |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: |"]
    for row in rows:
        f = row.get("forward", (None, None, None))
        b = row.get("forward+backward")
        judged = b if b is not None else f
        met = "-" if row["target"] is None or judged[2] is None else ("yes" if judged[2] <= row["target"] else "no")
        target = "-" if row["target"] is None else f"<= {row['target']}"
        if b is None:
            b = (None, None, None)
        gflops = row.get("gflops", (None, None))
        lines.append(f"| {row['name']} | {row['shape']} | {cell(f[0], '.2f')} | {cell(f[1], '.2f')} | "
                     f"{cell(f[2], '.2f')} | {cell(b[0], '.2f')} | {cell(b[1], '.2f')} | {cell(b[2], '.2f')} | "
                     f"{target} | {met} | {cell(gflops[0], '.1f')} | {cell(gflops[1], '.1f')} | "
                     f"{cell(row.get('sgemm'), '.1f')} |")
    lines += ["",
              "Targets apply to forward+backward (forward only for NMS). Ratio = minidl / PyTorch: below 1 is faster.",
              "",
              "GFLOP/s (convolutions, forward+backward): the direct convolution's count, "
              "2·N·K·OH·OW·(C/groups)·kh·kw FLOPs per pass, times 3 passes (output, input gradient, weight "
              "gradient; bias not counted), over the forward+backward time. SGEMM GFLOP/s: NumPy's float32 "
              "matrix product (its BLAS, default threads) on the GEMM of the convolution's im2col, "
              "(K/g, C/g·kh·kw) @ (C/g·kh·kw, N·OH·OW), timed in the same run: the rate a GEMM-based "
              "convolution reaches at best. minidl's Winograd path (dense stride-1 3x3) does fewer "
              "multiply-adds than that count, so its effective GFLOP/s can exceed the SGEMM figure."]
    convs = [row for row in rows if "gemm" in row]
    if convs:
        lines.append("")
        lines.append("Per convolution: " + "; ".join(
            f"{row['name']}: {row['gflop']:.2f} GFLOP, SGEMM ({row['gemm'][0]}, {row['gemm'][1]}) @ "
            f"({row['gemm'][1]}, {row['gemm'][2]}), minidl path {row['path']}" for row in convs) + ".")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- charts and results files
def plot_ratios(names, ratios, targets, path, title, xlabel="time ratio minidl / PyTorch (log scale)"):
    """A horizontal bar chart of ratios (log scale) with the targets marked and a legend; writes ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    colors = {"met": "tab:green", "missed": "tab:red", "none": "tab:gray"}
    kinds = ["none" if t is None else ("met" if r <= t else "missed") for r, t in zip(ratios, targets)]
    fig, ax = plt.subplots(figsize=(9, 1.0 + 0.45 * max(len(names), 1)))
    # bars grow from 1.0: to the left minidl is faster, to the right slower
    ax.barh(names, [r - 1.0 for r in ratios], left=1.0, color=[colors[k] for k in kinds])
    for i, t in enumerate(targets):
        if t is not None:
            ax.plot([t, t], [i - 0.4, i + 0.4], color="black", linewidth=2.5)
    for i, r in enumerate(ratios):
        ax.text(r, i, f" {r:.2f} ", va="center", ha="left" if r >= 1.0 else "right", fontsize=8)
    ax.axvline(1.0, color="gray", linestyle="--", linewidth=1)
    ax.set_xscale("log")
    span = list(ratios) + [t for t in targets if t is not None] + [1.0]
    low, high = min(span) / 1.8, max(span) * 1.5
    ax.set_xlim(low, high)
    ax.set_xticks([t for t in (0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 1, 1.5, 2, 3, 5, 10, 20, 50) if low <= t <= high])
    ax.xaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_xlabel(xlabel)
    ax.set_title(title, fontsize=10)
    ax.invert_yaxis()
    handles = [Patch(color=colors["met"], label="meets its target"),
               Patch(color=colors["missed"], label="misses its target"),
               Line2D([], [], color="black", linewidth=2.5, label="target (at most)"),
               Line2D([], [], color="gray", linestyle="--", label="1.0: as fast as PyTorch")]
    if "none" in kinds:
        handles.insert(2, Patch(color=colors["none"], label="no target"))
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)  # outside the bars
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return path


def plot(rows, path, title=None):
    """The kernel table's chart: forward+backward ratios (forward for NMS), targets marked."""
    names, ratios, targets = [], [], []
    for row in rows:
        r = row.get("forward+backward") or row.get("forward")
        if r and r[2] is not None:
            names.append(row["name"])
            ratios.append(r[2])
            targets.append(row["target"])
    title = title or f"CPU kernels, minidl / PyTorch, forward+backward: {machine_heading()}"
    return plot_ratios(names, ratios, targets, path, title)


SECTION = "## Machine: "  # a results file holds one such section per machine


def merge_results(old_text, title, preamble, heading, body):
    """A results file's text: ``# title``, the preamble, then one section per machine.

    The section ``## Machine: heading`` gets ``body`` (replaced where ``old_text`` has it, else
    appended); the other machines' sections of ``old_text`` are kept as they were. A file in the
    earlier one-machine form (no sections, a ``- machine: ..., N logical CPUs; MODEL`` line) is
    kept as the section of the machine that line names.
    """
    sections = _sections(old_text or "")
    sections[heading] = body.strip("\n")
    parts = [f"# {title}", preamble.strip("\n")]
    parts += [f"{SECTION}{name}\n\n{text}" for name, text in sections.items()]
    return "\n\n".join(parts) + "\n"


def _sections(text):
    """Machine heading -> section body, in the order of the file."""
    lines = text.splitlines()
    sections, current = {}, None
    for line in lines:
        if line.startswith(SECTION):
            current = line[len(SECTION):].strip()
            sections[current] = []
        elif current is not None:
            sections[current].append(line)
    if not sections:  # the earlier form: one machine, described by a "- machine:" line
        legacy = re.search(r"^- machine: .*?(\d+) logical CPUs; (.+)$", text, re.MULTILINE)
        if legacy is None:
            return {}
        body = [("#" + line) if line.startswith("## ") else line for line in lines
                if not line.startswith("# ")]
        sections[f"{legacy.group(2).strip()} ({legacy.group(1)} logical CPUs)"] = body
    return {name: "\n".join(body).strip("\n") for name, body in sections.items()}


def write_results(path, title, preamble, body):
    """Write this machine's section of the results file ``path``, keeping the other machines' sections."""
    old = None
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            old = f.read()
    text = merge_results(old, title, preamble, machine_heading(), body)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    return path
