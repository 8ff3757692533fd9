#!/usr/bin/env bash
# minidl's first run on a real NVIDIA GPU (issue 20, point 4). Run once, from anywhere, on a machine with
# a GPU, CuPy >= 14 and numba-cuda (pip install -e '.[cuda12,test]'; a CUDA build of torch and
# torchvision for the benchmark table):
#
#     bash scripts/gpu_first_run.sh            # everything, ~10 minutes on an H100
#     SKIP_BENCH=1 bash scripts/gpu_first_run.sh
#
# Sections, each run even if an earlier one failed (the environment check aside: without a GPU the
# rest cannot run):
#   1. environment: numba.cuda.detect(), CuPy's version (>= 14), one numba-cuda kernel compiled and
#      run on a CuPy array on CuPy's current stream
#   2. warm-up: minidl.cuda.warmup() compiles every CUDA kernel (timed twice: the second process loads
#      numba's on-disk cache)
#   3. the real-GPU tests: pytest -m gpu
#   4. the simulator tests (NUMBA_ENABLE_CUDASIM=1 pytest -m cudasim) and the fake-CuPy path tests
#   5. compute-sanitizer memcheck and racecheck over the BN, CE, NMS and max-pool GPU tests
#      (skipped, with a message, when compute-sanitizer is not on PATH)
#   6. empty batches (N = 0) on the GPU, in a child process: an illegal address would poison the
#      CUDA context of the process that made it
#   7. the benchmark table: python benchmarks/gpu_bench.py (benchmarks/results/gpu.md)
# Everything printed also goes to benchmarks/results/gpu_first_run-<UTC time>.log. The exit status is
# the number of failed sections (0: all passed or skipped).
set -u -o pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT" || exit 99
PYTHON="${PYTHON:-python}"
RESULTS="${RESULTS:-$ROOT/benchmarks/results}"  # where the log and the table go
mkdir -p "$RESULTS"
LOG="$RESULTS/gpu_first_run-$(date -u +%Y%m%dT%H%M%SZ).log"
exec > >(tee -a "$LOG") 2>&1

FAILED=()
PASSED=()
SKIPPED=()

section() {
    echo
    echo "=================================================================="
    echo "== $*   ($(date -u +%H:%M:%S) UTC)"
    echo "=================================================================="
}

# run NAME COMMAND...: run one step, remember whether it passed
run() {
    local name="$1"
    shift
    echo "\$ $*"
    if "$@"; then
        PASSED+=("$name")
    else
        echo "!! $name failed (exit status $?)"
        FAILED+=("$name")
    fi
}

summary() {
    section "summary"
    echo "passed : ${PASSED[*]:-none}"
    echo "skipped: ${SKIPPED[*]:-none}"
    echo "failed : ${FAILED[*]:-none}"
    echo "log    : $LOG"
    exit "${#FAILED[@]}"
}

# ------------------------------------------------------------------------------------------------
section "1. environment"
"$PYTHON" --version
nvidia-smi || echo "(nvidia-smi not found)"
run env-check "$PYTHON" - <<'PY'
# MINIDL-SNIPPET env-check
import numpy as np
from numba import cuda

import cupy
import minidl
from minidl.device import gpu_unavailable_reason
from minidl.kernels.cuda._backend import current_stream, launch_config

print("numba.cuda.detect():")
assert cuda.detect() is not False, "numba.cuda.detect() found no supported GPU"
print("CuPy", cupy.__version__, "| minidl sees:", gpu_unavailable_reason() or "a usable GPU")
major = int(cupy.__version__.split(".")[0])
assert major >= 14, f"CuPy {cupy.__version__} < 14: cupy.put_along_axis is missing (pip install 'cupy-cuda12x>=14')"
assert gpu_unavailable_reason() is None, gpu_unavailable_reason()


@cuda.jit
def scale_add(x, a, b, out):
    i = cuda.grid(1)
    if i < x.size:
        out[i] = a * x[i] + b


x = cupy.arange(1000, dtype=cupy.float32)
out = cupy.empty_like(x)
blocks, threads = launch_config(x.size)
scale_add[blocks, threads, current_stream(x)](x, np.float32(2), np.float32(1), out)
np.testing.assert_array_equal(out.get(), 2 * np.arange(1000, dtype=np.float32) + 1)
print("a numba-cuda kernel compiled and ran on a CuPy array: ok")
y = minidl.randn(4, 5, device="cuda", requires_grad=True)
(y * y).sum().backward()
assert y.is_leaf and y.grad is not None and str(y.grad.device) == "cuda:0"
print("minidl: a leaf on the device and its gradient: ok")
PY
if [ "${#FAILED[@]}" -ne 0 ]; then
    echo "The environment check failed: fix it before the rest (nothing below can run without a GPU)."
    summary
fi

# ------------------------------------------------------------------------------------------------
section "2. compile every CUDA kernel (minidl.cuda.warmup)"
for attempt in first "second (numba's on-disk cache)"; do
    echo "-- $attempt"
    run "warmup-$(echo "$attempt" | cut -c1-6)" "$PYTHON" -c \
        "import time, minidl.cuda; t = time.perf_counter(); minidl.cuda.warmup(); print(f'warmup {time.perf_counter() - t:.1f} s')"
done

# ------------------------------------------------------------------------------------------------
section "3. real-GPU tests (pytest -m gpu)"
run gpu-tests "$PYTHON" -m pytest -q -m gpu tests/test_gpu.py -p no:cacheprovider

# ------------------------------------------------------------------------------------------------
section "4. simulator and fake-CuPy tests"
run cudasim-tests env NUMBA_ENABLE_CUDASIM=1 "$PYTHON" -m pytest -q -m cudasim -p no:cacheprovider
run gpu-path-tests "$PYTHON" -m pytest -q tests/test_gpu_paths.py -p no:cacheprovider

# ------------------------------------------------------------------------------------------------
section "5. compute-sanitizer over the BN, CE, NMS and max-pool GPU tests"
SANITIZED="batch_norm or cross_entropy or nms or max_pool"
if command -v compute-sanitizer >/dev/null 2>&1; then
    # CuPy's memory pool hands out slices of larger blocks, where memcheck cannot see an overrun:
    # the tests run with the pool switched off.
    for tool in memcheck racecheck; do
        run "sanitizer-$tool" compute-sanitizer --tool "$tool" --error-exitcode 1 --target-processes all \
            "$PYTHON" -c "import sys, cupy, pytest; cupy.cuda.set_allocator(None); \
sys.exit(pytest.main(['-q', '-m', 'gpu', '-p', 'no:cacheprovider', 'tests/test_gpu.py', '-k', '$SANITIZED']))"
    done
else
    echo "compute-sanitizer is not on PATH (it ships with the CUDA toolkit: add its bin/ to PATH):"
    echo "memcheck and racecheck skipped"
    SKIPPED+=("compute-sanitizer")
fi

# ------------------------------------------------------------------------------------------------
section "6. empty batches (N = 0) on the GPU, in a child process"
run empty-batches "$PYTHON" - <<'PY'
# MINIDL-SNIPPET empty-batches
import numpy as np

import minidl
import minidl.nn.functional as F
from minidl import ops
from minidl.device import synchronize

dev = "cuda"
z = minidl.zeros(0, 1000, device=dev, requires_grad=True)
loss = F.cross_entropy(z, minidl.zeros(0, dtype="int64", device=dev), reduction="sum")
loss.backward()
assert z.grad.shape == (0, 1000) and float(loss) == 0.0
x = minidl.zeros(0, 3, 8, 8, device=dev, requires_grad=True)
bn = minidl.nn.BatchNorm2d(3).to(dev).eval()
conv = minidl.nn.Conv2d(3, 4, 3, padding=1).to(dev)
dw = minidl.nn.Conv2d(3, 3, 3, padding=1, groups=3).to(dev)
outs = [F.max_pool2d(x, 2), F.avg_pool2d(x, 2), F.adaptive_avg_pool2d(x, 1), F.adaptive_max_pool2d(x, 3),
        bn(x), conv(x), dw(x), F.local_response_norm(x, 3), F.softmax(x, dim=1)]
sum(o.sum() for o in outs).backward()
assert x.grad.shape == (0, 3, 8, 8), x.grad.shape
assert [o.shape[0] for o in outs] == [0] * len(outs)
empty_boxes = minidl.zeros(0, 4, device=dev)
assert ops.nms(empty_boxes, minidl.zeros(0, device=dev), 0.5).shape == (0,)
assert ops.box_iou(empty_boxes, minidl.tensor([[0.0, 0.0, 1.0, 1.0]], device=dev)).shape == (0, 1)
feat = minidl.randn(1, 3, 8, 8, device=dev)
assert ops.roi_align(feat, [minidl.zeros(0, 4, device=dev)], (2, 2)).shape == (0, 3, 2, 2)
assert ops.roi_pool(feat, [minidl.zeros(0, 4, device=dev)], (2, 2)).shape == (0, 3, 2, 2)
synchronize()  # an illegal address in any of the above would surface here
print("empty batches: every op gave an empty result, no illegal address")
PY

# ------------------------------------------------------------------------------------------------
section "7. benchmark table (benchmarks/gpu_bench.py)"
if [ -n "${SKIP_BENCH:-}" ]; then
    echo "SKIP_BENCH is set: benchmark skipped"
    SKIPPED+=("benchmark")
else
    run benchmark "$PYTHON" benchmarks/gpu_bench.py --out "$RESULTS"
    [ -f "$RESULTS/gpu.md" ] && cat "$RESULTS/gpu.md"
fi

summary
