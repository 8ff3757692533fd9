"""Whole-model benchmark: minidl's zoo against the same architectures in PyTorch, in one process.

    python benchmarks/models.py [--repeats 5] [--threads 2] [--only resnet18] [--profile-steps 3]

Each case builds the minidl model and the same architecture in ``torch.nn`` (torchvision's when it is
importable), copies minidl's weights into it (so both compute the same function), and times, on the
same float32 inputs, a training step (forward, cross-entropy, backward, SGD with momentum) or a forward
pass: minidl's repeats and PyTorch's in separate blocks alternating over three rounds, the median of
all samples after warm-up. Then a few more minidl steps run under ``minidl.profiler.profile()`` to show
where the time goes (convolution forward and backward, batch-norm, activations, pooling, loss,
optimizer, Python overhead). torch is imported first, before minidl. A full run (no --only) writes
this machine's section of ``benchmarks/results/cpu-models.md`` (other machines' sections are kept)
and ``benchmarks/results/cpu-models.png``.

The ``torch_*`` builders are also the reference the tests use to check minidl's forward pass.
"""
from __future__ import annotations

try:
    import torch  # noqa: F401  first: the process's OpenMP runtime and BLAS are loaded as in a user's script
except ImportError:  # the torch_* builders need it; the tests that load this file skip without it
    torch = None

import argparse
import contextlib
import os
import sys

import numpy as np

from minidl import bench  # the timing harness, machine description and results files of the kernel benchmark
from minidl.profiler import profile

TITLE = "CPU models: minidl against PyTorch"

PREAMBLE = """Training step = forward, cross-entropy, backward, SGD (momentum 0.9); forward = eval mode, no grad.
Same weights and float32 inputs in both libraries, one process (`import torch` first); minidl's repeats
and PyTorch's run in separate blocks alternating over three rounds, median of all samples after warm-up.
Ratio = minidl / PyTorch: below 1, minidl is faster. The profile table splits minidl's step, measured
over a few more steps under `minidl.profiler.profile()`: each op's forward and backward is timed
(convolutions, batch-norm, activations, pooling, the loss, matrix products, other ops such as adds and
reshapes), the optimizer (zero_grad and step) is timed around it, and Python overhead is the rest of
the step (Module calls, building the graph, the backward walk with its gradient sums).
One section per machine: a full run of `python benchmarks/models.py` replaces its own machine's section."""


# ----------------------------------------------------------------------------- PyTorch references
def torch_lenet5(num_classes=10):
    """LeNet-5 as ``minidl.models.lenet5()``: conv 6, 16 (5x5), tanh, 2x2 max-pool, fc 120, 84, 10."""
    import torch.nn as tnn

    class LeNet5(tnn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = tnn.Conv2d(1, 6, 5)
            self.conv2 = tnn.Conv2d(6, 16, 5)
            self.fc1 = tnn.Linear(400, 120)
            self.fc2 = tnn.Linear(120, 84)
            self.fc3 = tnn.Linear(84, num_classes)
            self.pool = tnn.MaxPool2d(2, 2)

        def forward(self, x):
            x = self.pool(self.conv1(x).tanh())
            x = self.pool(self.conv2(x).tanh())
            x = x.flatten(1)
            return self.fc3(self.fc2(self.fc1(x).tanh()).tanh())

    return LeNet5()


def torch_resnet(depth, num_classes=1000, cifar=False):
    """ResNet-18/34/50 in torch.nn with torchvision's module names (torchvision's own when importable)."""
    import torch.nn as tnn

    layers = {18: [2, 2, 2, 2], 34: [3, 4, 6, 3], 50: [3, 4, 6, 3]}[depth]
    bottleneck = depth >= 50
    try:
        if cifar:
            raise ImportError  # torchvision has no CIFAR stem
        import torchvision

        return getattr(torchvision.models, f"resnet{depth}")(num_classes=num_classes)
    except Exception:  # ImportError, or a torchvision whose compiled ops do not match this torch
        pass

    class Block(tnn.Module):
        def __init__(self, inplanes, planes, stride):
            super().__init__()
            out = planes * (4 if bottleneck else 1)
            if bottleneck:
                self.conv1 = tnn.Conv2d(inplanes, planes, 1, bias=False)
                self.bn1 = tnn.BatchNorm2d(planes)
                self.conv2 = tnn.Conv2d(planes, planes, 3, stride, 1, bias=False)
                self.bn2 = tnn.BatchNorm2d(planes)
                self.conv3 = tnn.Conv2d(planes, out, 1, bias=False)
                self.bn3 = tnn.BatchNorm2d(out)
            else:
                self.conv1 = tnn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
                self.bn1 = tnn.BatchNorm2d(planes)
                self.conv2 = tnn.Conv2d(planes, planes, 3, 1, 1, bias=False)
                self.bn2 = tnn.BatchNorm2d(planes)
            self.relu = tnn.ReLU(inplace=True)
            self.downsample = None
            if stride != 1 or inplanes != out:
                self.downsample = tnn.Sequential(tnn.Conv2d(inplanes, out, 1, stride, bias=False), tnn.BatchNorm2d(out))

        def forward(self, x):
            identity = x if self.downsample is None else self.downsample(x)
            out = self.relu(self.bn1(self.conv1(x)))
            if bottleneck:
                out = self.relu(self.bn2(self.conv2(out)))
                out = self.bn3(self.conv3(out))
            else:
                out = self.bn2(self.conv2(out))
            return self.relu(out + identity)

    class ResNet(tnn.Module):
        def __init__(self):
            super().__init__()
            if cifar:
                self.conv1 = tnn.Conv2d(3, 64, 3, 1, 1, bias=False)
            else:
                self.conv1 = tnn.Conv2d(3, 64, 7, 2, 3, bias=False)
            self.bn1 = tnn.BatchNorm2d(64)
            self.relu = tnn.ReLU(inplace=True)
            self.maxpool = tnn.Identity() if cifar else tnn.MaxPool2d(3, 2, 1)
            inplanes = 64
            for i, (planes, n) in enumerate(zip((64, 128, 256, 512), layers)):
                blocks = []
                for j in range(n):
                    blocks.append(Block(inplanes, planes, 2 if (i > 0 and j == 0) else 1))
                    inplanes = planes * (4 if bottleneck else 1)
                setattr(self, f"layer{i + 1}", tnn.Sequential(*blocks))
            self.avgpool = tnn.AdaptiveAvgPool2d(1)
            self.fc = tnn.Linear(inplanes, num_classes)

        def forward(self, x):
            x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
            x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
            return self.fc(self.avgpool(x).flatten(1))

    return ResNet()


def torch_mobilenet_v2(width_mult=1.0, num_classes=1000):
    """MobileNet v2 in torch.nn with torchvision's module names (torchvision's own when importable)."""
    try:
        import torchvision

        return torchvision.models.mobilenet_v2(width_mult=width_mult, num_classes=num_classes)
    except Exception:  # ImportError, or a torchvision whose compiled ops do not match this torch
        pass
    import torch.nn as tnn
    from minidl.models._utils import make_divisible

    def conv_bn_act(cin, cout, k=3, stride=1, groups=1):
        return tnn.Sequential(tnn.Conv2d(cin, cout, k, stride, (k - 1) // 2, groups=groups, bias=False),
                              tnn.BatchNorm2d(cout), tnn.ReLU6(inplace=True))

    class InvertedResidual(tnn.Module):
        def __init__(self, inp, oup, stride, t):
            super().__init__()
            hidden = int(round(inp * t))
            self.use_res_connect = stride == 1 and inp == oup
            layers = [conv_bn_act(inp, hidden, 1)] if t != 1 else []
            layers += [conv_bn_act(hidden, hidden, 3, stride, hidden), tnn.Conv2d(hidden, oup, 1, bias=False),
                       tnn.BatchNorm2d(oup)]
            self.conv = tnn.Sequential(*layers)

        def forward(self, x):
            return x + self.conv(x) if self.use_res_connect else self.conv(x)

    class MobileNetV2(tnn.Module):
        def __init__(self):
            super().__init__()
            table = [[1, 16, 1, 1], [6, 24, 2, 2], [6, 32, 3, 2], [6, 64, 4, 2], [6, 96, 3, 1], [6, 160, 3, 2],
                     [6, 320, 1, 1]]
            cin = make_divisible(32 * width_mult)
            last = make_divisible(1280 * max(1.0, width_mult))
            features = [conv_bn_act(3, cin, 3, 2)]
            for t, c, n, s in table:
                cout = make_divisible(c * width_mult)
                for i in range(n):
                    features.append(InvertedResidual(cin, cout, s if i == 0 else 1, t))
                    cin = cout
            features.append(conv_bn_act(cin, last, 1))
            self.features = tnn.Sequential(*features)
            self.classifier = tnn.Sequential(tnn.Dropout(0.2), tnn.Linear(last, num_classes))

        def forward(self, x):
            x = self.features(x)
            return self.classifier(x.mean((2, 3)))

    return MobileNetV2()


def copy_weights(minidl_model, torch_model):
    """Load minidl's state_dict into the torch model (same keys and shapes), strictly."""
    import torch

    state = {k: torch.from_numpy(np.array(v.numpy())) for k, v in minidl_model.state_dict().items()}
    torch_model.load_state_dict(state, strict=True)
    return torch_model


# ----------------------------------------------------------------------------- cases and timing
def _cases():
    from minidl import models

    return [
        # name, minidl builder, torch builder, batch, (C, H, W), mode, target ratio (performance issue)
        ("LeNet-5", lambda: models.lenet5(), lambda: torch_lenet5(), 128, (1, 32, 32), "train", 1.2),
        ("ResNet-18 (CIFAR stem)", lambda: models.resnet18(num_classes=10, cifar=True),
         lambda: torch_resnet(18, 10, cifar=True), 32, (3, 32, 32), "train", 1.2),
        ("MobileNet v2 1.0", lambda: models.mobilenet_v2(1.0, num_classes=10),
         lambda: torch_mobilenet_v2(1.0, 10), 32, (3, 64, 64), "train", 1.0),
        ("ResNet-50", lambda: models.resnet50(), lambda: torch_resnet(50), 8, (3, 224, 224), "train", 1.2),
        ("ResNet-50", lambda: models.resnet50(), lambda: torch_resnet(50), 1, (3, 224, 224), "forward", None),
    ]


def _region(prof, name):
    return prof.region(name) if prof is not None else contextlib.nullcontext()


def _minidl_step(model, x, y, mode):
    """``step(prof=None)``: one training step (or forward pass); under a profile the optimizer is a region."""
    import minidl
    import minidl.nn.functional as F
    from minidl.optim import SGD

    xt, yt = minidl.tensor(x), minidl.tensor(y)
    if mode == "forward":
        model.eval()

        def forward(prof=None):
            with minidl.no_grad():
                model(xt)

        return forward
    model.train()
    opt = SGD(model.parameters(), lr=0.01, momentum=0.9)

    def step(prof=None):
        with _region(prof, "optimizer"):
            opt.zero_grad()
        loss = F.cross_entropy(model(xt), yt)
        loss.backward()
        with _region(prof, "optimizer"):
            opt.step()

    return step


def _torch_step(model, x, y, mode):
    import torch

    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    if mode == "forward":
        model.eval()

        def forward():
            with torch.no_grad():
                model(xt)

        return forward
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

    def step():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(xt), yt)
        loss.backward()
        opt.step()

    return step


def profile_steps(step, steps):
    """Run ``step(prof)`` ``steps`` times under minidl's profiler: category -> ms per step (plus "step")."""
    with profile() as prof:
        for _ in range(steps):
            with prof.step():
                step(prof)
    return {name: 1000.0 * seconds / steps for name, seconds in prof.summary().items()}


def run(repeats=5, threads=2, only=None, warmup=2, seed=0, profile_count=3, rounds=3):
    import minidl

    bench.set_threads(threads)
    rng = np.random.default_rng(seed)
    rows = []
    for name, make_minidl, make_torch, batch, chw, mode, target in _cases():
        if only and not any(o.lower() in name.lower() for o in only):
            continue
        minidl.manual_seed(seed)
        model = make_minidl()
        reference = copy_weights(model, make_torch())
        x = rng.standard_normal((batch,) + chw).astype(np.float32)
        y = rng.integers(0, 10, batch).astype(np.int64)
        step = _minidl_step(model, x, y, mode)
        ms, ref = bench.alternating_median_ms([step, _torch_step(reference, x, y, mode)], repeats, warmup, rounds)
        prof = profile_steps(step, profile_count) if profile_count else None
        rows.append(dict(name=name, batch=batch, size=f"{chw[1]}x{chw[2]}", mode=mode, minidl=ms, torch=ref,
                         ratio=ms / ref, target=target, profile=prof))
        print(f"{name:24s} {mode:8s} batch {batch:4d}  minidl {ms:9.1f} ms  torch {ref:9.1f} ms  "
              f"ratio {ms / ref:5.2f}", flush=True)
    return rows


def format_table(rows):
    lines = ["| model | step | batch | input | minidl ms | PyTorch ms | ratio | target | met |",
             "| --- | --- | ---: | --- | ---: | ---: | ---: | ---: | --- |"]
    for r in rows:
        target = f"<= {r['target']}" if r["target"] else "-"
        met = "-" if not r["target"] else ("yes" if r["ratio"] <= r["target"] else "no")
        lines.append(f"| {r['name']} | {r['mode']} | {r['batch']} | {r['size']} | {r['minidl']:.1f} | "
                     f"{r['torch']:.1f} | {r['ratio']:.2f} | {target} | {met} |")
    return "\n".join(lines)


# profile categories (minidl.profiler.CATEGORIES) -> column titles
PROFILE_COLUMNS = [("conv forward", "conv fwd"), ("conv backward", "conv bwd"), ("batch-norm", "BN"),
                   ("activation", "activation"), ("pooling", "pooling"), ("loss", "loss"),
                   ("linear/matmul", "linear"), ("optimizer", "optimizer"), ("other ops", "other ops"),
                   ("Python overhead", "Python overhead")]


def format_profile_table(rows):
    """Where minidl's step time goes, per model: ms per step and its share, per category."""
    rows = [r for r in rows if r.get("profile")]
    if not rows:
        return ""
    lines = ["| model | step | batch | profiled step ms | " + " | ".join(t for _, t in PROFILE_COLUMNS) + " |",
             "| --- | --- | ---: | ---: | " + " | ".join("---:" for _ in PROFILE_COLUMNS) + " |"]
    for r in rows:
        p = r["profile"]
        step = p["step"] or 1.0
        cells = []
        for key, _ in PROFILE_COLUMNS:
            ms = p.get(key, 0.0)
            cells.append(f"{ms:.1f} ({100.0 * ms / step:.0f}%)" if ms < 100 else f"{ms:.0f} ({100.0 * ms / step:.0f}%)")
        lines.append(f"| {r['name']} | {r['mode']} | {r['batch']} | {p['step']:.1f} | " + " | ".join(cells) + " |")
    lines += ["", "ms per step (share of the profiled step), minidl only. conv fwd/bwd: every convolution Function "
              "(dense, grouped, depthwise); BN: batch-norm forward and backward; linear: matrix products (the "
              "bias add and the weight transpose are other ops); optimizer: zero_grad and step; Python overhead: "
              "the step time no op or the optimizer accounts for. The profiled steps run after the timed ones, "
              "not alternated with PyTorch's, so on a busy machine their time can differ from the timed median: "
              "read the shares."]
    return "\n".join(lines)


def plot(rows, path):
    names = [f"{r['name']} {r['mode']} b{r['batch']}" for r in rows]
    return bench.plot_ratios(names, [r["ratio"] for r in rows], [r["target"] for r in rows], path,
                             f"CPU models, minidl / PyTorch, step time: {bench.machine_heading()}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--only", action="append", help="only cases whose name contains this text")
    parser.add_argument("--profile-steps", type=int, default=3,
                        help="minidl steps run under the profiler after the timed ones (0: no profile table)")
    parser.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "results"))
    args = parser.parse_args()
    rows = run(repeats=args.repeats, threads=args.threads, only=args.only, profile_count=args.profile_steps)
    description = bench.machine_description(args.threads)
    table = format_table(rows)
    profile_table = format_profile_table(rows)
    body = f"{description}\n\n{table}" + (f"\n\n### Where minidl's step time goes\n\n{profile_table}"
                                          if profile_table else "")
    print(f"\n{bench.SECTION}{bench.machine_heading()}\n\n{body}")
    if args.only:
        return 0  # partial runs do not overwrite the committed results
    os.makedirs(args.out, exist_ok=True)
    body = body.replace(f"{description}\n", f"{description}\n- median of {args.repeats} repeats per side after "
                        f"warm-up, profile over {args.profile_steps} steps; `python benchmarks/models.py "
                        f"--repeats {args.repeats} --threads {args.threads}`\n", 1)
    bench.write_results(os.path.join(args.out, "cpu-models.md"), TITLE, PREAMBLE, body)
    plot(rows, os.path.join(args.out, "cpu-models.png"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
