"""Data parallelism on this machine, measured, and its efficiency at 8-256 workers, modelled.

    mpiexec --allow-run-as-root --oversubscribe -n 1 python benchmarks/distributed.py   # writes .../distributed-1.json
    mpiexec --allow-run-as-root --oversubscribe -n 2 python benchmarks/distributed.py   # writes .../distributed-2.json
    python benchmarks/distributed.py --report          # benchmarks/results/cpu-distributed.md from both

Each run (one thread per process, OMPI_MCA_mpi_yield_when_idle=1 is set by the launcher line in
the results) measures with ``minidl.distributed``'s MPI backend:

* all-reduce (sum, float32) time by message size, median of repeats after warm-up, with the
  algorithm bandwidth (bytes / time) and the bus bandwidth (times 2 (P - 1) / P, the bytes each
  rank sends in a ring);
* training images/s of LeNet-5 (1x32x32) and ResNet-18 with the CIFAR stem (3x32x32) under
  DistributedDataParallel, SGD with momentum, a fixed per-process batch (weak scaling).

``--report`` reads latency and bandwidth off the 2-process all-reduce times (t = 2 alpha + m / beta
for a ring of two: alpha from messages <= 256 B, beta from messages >= 64 KiB) and models a ring all-reduce of each model's gradients over P workers,
``2 (P - 1) alpha + 2 (P - 1) / P * bytes / beta``, against the 1-process compute time of a step;
docs/distributed.md explains the model and its assumptions.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
RESULTS = os.path.join(HERE, "results")
SIZES = [2 ** k for k in range(2, 25, 2)]  # bytes: 4 B .. 16 MiB
MODELS = {"LeNet-5": (64, (1, 32, 32), 4), "ResNet-18 (CIFAR stem)": (8, (3, 32, 32), 1)}  # batch/process, input,
# timed steps per --steps
WORKERS = [8, 16, 32, 64, 128, 256]


def _build(name):
    from minidl.models.lenet import lenet5
    from minidl.models.resnet import resnet18

    return lenet5() if name == "LeNet-5" else resnet18(num_classes=10, cifar=True)


def measure_all_reduce(repeats):
    import minidl.distributed as dist

    rows = []
    for size in SIZES:
        buf = np.ones(size // 4, dtype=np.float32)
        reps = repeats if size <= 1 << 20 else max(3, repeats // 4)
        times = []
        for i in range(reps + 2):
            dist.barrier()
            start = time.perf_counter()
            dist.all_reduce(buf)
            if i >= 2:
                times.append(time.perf_counter() - start)
        t = float(np.median(times))
        world = dist.get_world_size()
        rows.append({"bytes": size, "seconds": t, "algbw": size / t,
                     "busbw": size / t * (2 * (world - 1) / world if world > 1 else 0.0)})
    return rows


def measure_model(name, steps):
    import minidl
    import minidl.distributed as dist
    from minidl.nn import functional as F
    from minidl.nn.parallel import DistributedDataParallel

    batch, shape, more = MODELS[name]
    steps *= more
    minidl.manual_seed(0)
    model = _build(name)
    params = sum(p.data.size for p in model.parameters())
    ddp = DistributedDataParallel(model)
    opt = minidl.optim.SGD(ddp.parameters(), lr=0.01, momentum=0.9)
    rng = np.random.default_rng(dist.get_rank())
    x = minidl.tensor(rng.normal(size=(batch, *shape)).astype(np.float32))
    y = minidl.tensor(rng.integers(0, 10, batch))
    times = []
    for i in range(steps + 1):
        dist.barrier()
        start = time.perf_counter()
        opt.zero_grad()
        F.cross_entropy(ddp(x), y).backward()
        opt.step()
        slowest = np.array([time.perf_counter() - start])
        dist.all_reduce(slowest, op=dist.ReduceOp.MAX)  # a step lasts as long as its slowest rank
        if i >= 1:
            times.append(float(slowest[0]))
    t = float(np.median(times))
    world = dist.get_world_size()
    return {"model": name, "batch_per_process": batch, "step_seconds": t, "images_per_second": batch * world / t,
            "parameters": int(params), "gradient_bytes": int(params) * 4, "buckets": len(ddp.bucket_sizes())}


def run(repeats, steps):
    sys.path.insert(0, os.path.dirname(HERE))
    import minidl.distributed as dist
    from minidl import bench

    dist.init_process_group("mpi")
    world, rank = dist.get_world_size(), dist.get_rank()
    record = {"processes": world, "machine": bench.machine_heading(), "cpu": bench.cpu_model(),
              "load_average": os.getloadavg(), "all_reduce": measure_all_reduce(repeats),
              "models": [measure_model(name, steps) for name in MODELS]}
    record["load_average_after"] = os.getloadavg()
    if rank == 0:
        os.makedirs(RESULTS, exist_ok=True)
        path = os.path.join(RESULTS, f"distributed-{world}.json")
        with open(path, "w") as f:
            json.dump(record, f, indent=1)
        print(f"wrote {path}")
        for row in record["all_reduce"]:
            print(f"all_reduce {row['bytes']:>9} B: {row['seconds'] * 1e6:9.1f} us, {row['algbw'] / 1e6:8.1f} MB/s")
        for m in record["models"]:
            print(f"{m['model']}: {m['images_per_second']:.1f} images/s ({m['step_seconds'] * 1e3:.0f} ms/step)")
    dist.destroy_process_group()


# ---------------------------------------------------------------------- the model and the report
def fit_ring(rows, world):
    """(alpha seconds, beta bytes/s) of a ring all-reduce, t = 2 (P - 1) alpha + 2 (P - 1) / P * m / beta.

    alpha from the small messages (<= 256 B, where the bytes cost nothing), beta from the large ones
    (>= 64 KiB, where the latency costs nothing), each the median of its messages.
    """
    steps = 2 * (world - 1)
    alpha = float(np.median([r["seconds"] for r in rows if r["bytes"] <= 256])) / steps
    beta = float(np.median([steps / world * r["bytes"] / max(r["seconds"] - steps * alpha, 1e-9)
                            for r in rows if r["bytes"] >= 1 << 16]))
    return alpha, beta


def ring_seconds(nbytes, workers, alpha, beta):
    return 2 * (workers - 1) * alpha + 2 * (workers - 1) / workers * nbytes / beta


def report():
    runs = {}
    for p in (1, 2):
        path = os.path.join(RESULTS, f"distributed-{p}.json")
        if not os.path.exists(path):
            sys.exit(f"missing {path}: run the benchmark under mpiexec -n {p} first")
        with open(path) as f:
            runs[p] = json.load(f)
    one, two = runs[1], runs[2]
    alpha, beta = fit_ring(two["all_reduce"], 2)
    networks = [("measured here (shared memory, 2 processes)", alpha, beta),
                ("assumed 10 Gb Ethernet (50 us, 1.1 GB/s)", 50e-6, 1.1e9),
                ("assumed 100 Gb InfiniBand (5 us, 11 GB/s)", 5e-6, 11e9)]
    lines = ["# Data parallelism on CPUs: measured on 1 and 2 processes, modelled to 256", "",
             "`mpiexec --allow-run-as-root --oversubscribe -n P python benchmarks/distributed.py` (P = 1, 2; "
             "one thread per process: OMP_NUM_THREADS=1 NUMBA_NUM_THREADS=1, OMPI_MCA_mpi_yield_when_idle=1), "
             "then `python benchmarks/distributed.py --report`. Model and assumptions: docs/distributed.md.", "",
             f"Machine: {one['cpu']}, {one['machine'].split('(')[-1].rstrip(')')}. **The machine is shared and "
             f"was loaded by other jobs during these runs** (load average {two['load_average'][0]:.1f} at the "
             f"start of the 2-process run, {one['load_average'][0]:.1f} at the start of the 1-process run, on "
             f"{os.cpu_count()} logical CPUs): the times are noisy upper bounds, and 2 processes on 2 busy cores "
             "compete with the rest of the machine.", "",
             "## All-reduce (sum, float32), 2 processes", "",
             "| bytes | time us | algorithm bandwidth MB/s | bus bandwidth MB/s |", "| ---: | ---: | ---: | ---: |"]
    for r in two["all_reduce"]:
        lines.append(f"| {r['bytes']} | {r['seconds'] * 1e6:.1f} | {r['algbw'] / 1e6:.1f} | {r['busbw'] / 1e6:.1f} |")
    lines += ["", f"Ring of two, t = 2 alpha + m / beta: latency alpha = {alpha * 1e6:.1f} us (median over messages "
              f"<= 256 B), bandwidth beta = {beta / 1e9:.2f} GB/s (median over messages >= 64 KiB).", "",
              "## Training throughput (weak scaling: fixed batch per process)", "",
              "| model | batch / process | 1 process images/s | 2 processes images/s | speed-up | efficiency | "
              "2-process step ms | its all-reduce ms (modelled) |",
              "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for m1, m2 in zip(one["models"], two["models"]):
        speedup = m2["images_per_second"] / m1["images_per_second"]
        lines.append(f"| {m1['model']} | {m1['batch_per_process']} | {m1['images_per_second']:.1f} | "
                     f"{m2['images_per_second']:.1f} | {speedup:.2f} | {speedup / 2:.2f} | "
                     f"{m2['step_seconds'] * 1e3:.0f} | {ring_seconds(m2['gradient_bytes'], 2, alpha, beta) * 1e3:.1f} |")
    lines += ["", "Where the 2-process step is much longer than the 1-process step plus its all-reduce, the "
              "difference is CPU contention: two processes need two free cores, and with the load above "
              "they share about one; the model below uses the 1-process step time as the compute time T."]
    lines += ["", "## Modelled efficiency at P workers", "",
              "Compute time per step T = the 1-process step time above (per-process batch fixed); ring all-reduce "
              "of the gradients R(P) = 2 (P - 1) alpha + 2 (P - 1) / P x bytes / beta. Efficiency without overlap "
              "T / (T + R); with backward fully overlapping the all-reduce, T / max(T, R).", ""]
    for label, a, b in networks:
        lines += [f"### {label}", "",
                  "| model | gradient MB | T ms | " + " | ".join(f"P={p}" for p in WORKERS) + " |",
                  "| --- | ---: | ---: | " + " | ".join("---:" for _ in WORKERS) + " |"]
        for m in one["models"]:
            t = m["step_seconds"]
            cells = []
            for p in WORKERS:
                r = ring_seconds(m["gradient_bytes"], p, a, b)
                cells.append(f"{t / (t + r):.2f} ({t / max(t, r):.2f})")
            lines.append(f"| {m['model']} | {m['gradient_bytes'] / 1e6:.2f} | {t * 1e3:.0f} | " + " | ".join(cells)
                         + " |")
        lines.append("")
    lines.append("Each cell: efficiency without overlap (with full overlap).")
    path = os.path.join(RESULTS, "cpu-distributed.md")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    print(f"wrote {path}")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--report", action="store_true", help="write results/cpu-distributed.md from the JSON files")
    p.add_argument("--repeats", type=int, default=20, help="all-reduce repeats per size (default 20)")
    p.add_argument("--steps", type=int, default=3,
                   help="timed training steps per model: ResNet-18 this many, LeNet-5 4 times as many (default 3)")
    args = p.parse_args(argv)
    if args.report:
        report()
    else:
        run(args.repeats, args.steps)


if __name__ == "__main__":
    main()
