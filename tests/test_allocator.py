"""kernels/allocator.py: glibc's allocator keeps freed activation memory, unless told not to."""
import os
import platform
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc",
                                reason="glibc's mallopt")

SCRIPT = "import minidl; from minidl.kernels import allocator; print(allocator.report())"


def _report(**env):
    clean = {k: v for k, v in os.environ.items() if not (k.startswith("MALLOC_") or k == "MINIDL_MALLOC")}
    clean.update(env)
    return subprocess.run([sys.executable, "-c", SCRIPT], env=clean, capture_output=True, text=True,
                          check=True).stdout.strip()


def test_import_sets_the_thresholds_and_the_user_can_opt_out():
    assert _report().startswith("glibc malloc: mmap threshold 32 MiB, trim threshold 256 MiB")
    assert _report(MINIDL_MALLOC="default") == "glibc defaults (MINIDL_MALLOC=default)"
    assert _report(MALLOC_ARENA_MAX_="2") == "the user's MALLOC_* settings"


def test_freed_pages_are_reused_not_faulted_in_again():
    """A step-like pattern (allocate arrays of several sizes, free them all) faults its pages in once, not per step."""
    code = ("import resource, numpy as np, minidl\n"
            "sizes = [600_000, 600_000, 150_000, 300_000, 200_000, 50_000, 600_000, 600_000]\n"
            "def step():\n    live = [np.ones(s, np.float32) for s in sizes]\n    del live\n"
            "for _ in range(3):\n    step()\n"
            "before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt\n"
            "for _ in range(20):\n    step()\n"
            "print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)")
    clean = {k: v for k, v in os.environ.items() if not (k.startswith("MALLOC_") or k == "MINIDL_MALLOC")}
    tuned = int(subprocess.run([sys.executable, "-c", code], env=clean, capture_output=True, text=True,
                               check=True).stdout)
    default = int(subprocess.run([sys.executable, "-c", code], env=dict(clean, MINIDL_MALLOC="default"),
                                 capture_output=True, text=True, check=True).stdout)
    pages = 20 * sum([600_000, 600_000, 150_000, 300_000, 200_000, 50_000, 600_000, 600_000]) * 4 // 4096
    assert tuned < pages // 20, (tuned, default)  # reused: at most a few percent of the pages
    assert default > pages // 2, (tuned, default)  # glibc's defaults fault most of them in again
