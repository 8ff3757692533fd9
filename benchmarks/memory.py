"""Peak memory added by one training step: minidl against PyTorch, each in a fresh process.

    python benchmarks/memory.py [--model resnet50] [--batch 16] [--size 224]

Each framework runs in its own subprocess: build the model and a float32 batch, run one warm-up
training step (forward, cross-entropy, backward, SGD with momentum: optimizer state, kernel
compilation and allocator caches now exist), return freed heap memory to the system
(``malloc_trim``) so that the resident size is what is live (model, optimizer state, minidl's
scratch buffers, PyTorch's caches), reset the kernel's high-water mark (``/proc/self/clear_refs``),
then run one more step and report the resident memory it added: ``VmHWM - VmRSS(before)``.
Linux (glibc) only. Writes
``benchmarks/results/cpu-memory.md``.
"""
import argparse
import json
import os
import subprocess
import sys

CHILD = r"""
import json, sys
framework, model_name, batch, size = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])

def status(key):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    raise KeyError(key)

import numpy as np
rng = np.random.default_rng(0)
x = rng.standard_normal((batch, 3, size, size)).astype(np.float32)
y = rng.integers(0, 1000, batch)
if framework == "torch":
    import importlib.util, torch
    torch.set_num_threads(2)
    sys.modules["torchvision"] = None  # the same ResNet in plain torch.nn (the CPU wheel's torchvision may not load)
    spec = importlib.util.spec_from_file_location("bench_models", sys.argv[5])
    bench_models = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench_models)
    model = bench_models.torch_resnet(int(model_name[len("resnet"):]))  # torchvision's when importable
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    tx, ty = torch.from_numpy(x), torch.from_numpy(y)
    def step():
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(tx), ty).backward()
        opt.step()
else:
    import minidl, minidl.nn.functional as F
    from minidl import models
    model = getattr(models, model_name)()
    opt = minidl.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    tx, ty = minidl.tensor(x), minidl.tensor(y)
    def step():
        opt.zero_grad()
        F.cross_entropy(model(tx), ty).backward()
        opt.step()
model.train()
step()
import ctypes, gc
gc.collect()
ctypes.CDLL("libc.so.6").malloc_trim(0)  # hand freed heap back, so that "before" is what is live
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")
before = status("VmRSS")
step()
print(json.dumps({"before": before, "peak": status("VmHWM")}))
"""


def measure(framework, model, batch, size):
    models_py = os.path.join(os.path.dirname(os.path.abspath(__file__)), "models.py")
    out = subprocess.run([sys.executable, "-c", CHILD, framework, model, str(batch), str(size), models_py],
                         capture_output=True, text=True)
    if out.returncode:
        raise RuntimeError(f"{framework} run failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="resnet50", choices=["resnet18", "resnet34", "resnet50"])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results", "cpu-memory.md"))
    args = parser.parse_args()
    rows = {fw: measure(fw, args.model, args.batch, args.size) for fw in ("minidl", "torch")}
    added = {fw: (r["peak"] - r["before"]) / 2**30 for fw, r in rows.items()}
    ratio = added["minidl"] / added["torch"]
    text = (f"# Peak memory added by one training step\n\n"
            f"{args.model}, batch {args.batch}, {args.size}x{args.size}, float32, SGD with momentum; "
            f"`python benchmarks/memory.py` (each framework in a fresh process, after one warm-up step).\n\n"
            f"| framework | resident before the step (GiB) | peak during the step (GiB) | added (GiB) |\n"
            f"| --- | ---: | ---: | ---: |\n"
            + "".join(f"| {fw} | {rows[fw]['before'] / 2**30:.2f} | {rows[fw]['peak'] / 2**30:.2f} | {added[fw]:.2f} |\n"
                      for fw in ("minidl", "torch"))
            + f"\nminidl / PyTorch added: **{ratio:.2f}x** (target <= 1.2x).\n")
    print(text)
    if args.model == "resnet50" and args.batch == 16 and args.size == 224:
        os.makedirs(os.path.dirname(args.out), exist_ok=True)
        with open(args.out, "w") as f:
            f.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
