"""A first run says why it waits: ``minidl.compilation``'s notice, and the serial twins of parallel kernels.

Each notice test runs a fresh interpreter whose Numba cache is a temporary folder
(``NUMBA_CACHE_DIR``), so the first run really compiles and the second really loads.
"""
import os
import subprocess
import sys
import textwrap
import time

import numba
import numpy as np
import pytest

from minidl.compilation import NOTICE

# compiles one small, newly defined function (cached in NUMBA_CACHE_DIR) with the notice on
SCRIPT = textwrap.dedent("""
    import sys

    from numba import njit

    from minidl.compilation import announce_compilation

    announce_compilation(threshold=float(sys.argv[1]))


    @njit(cache=True)
    def add_one(x):
        return x + 1


    @njit(cache=True)
    def add_two(x):
        return x + 2


    print(add_one(1) + add_two(1))
""")


def _run(args, cache_dir, **env):
    environment = {**os.environ, "NUMBA_CACHE_DIR": str(cache_dir), **env}
    result = subprocess.run([sys.executable, *args], capture_output=True, text=True, env=environment,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    return result


def _notices(stderr):
    return [line for line in stderr.splitlines() if "compiling kernels" in line]


def test_the_notice_shows_once_when_compiling_passes_the_threshold_and_not_on_a_warm_cache(tmp_path):
    script = tmp_path / "compile_two.py"
    script.write_text(SCRIPT)
    first = _run([str(script), "0"], tmp_path / "cache")
    assert first.stdout.strip() == "5"
    assert _notices(first.stderr) == [NOTICE]  # two compiles, one line
    warm = _run([str(script), "0"], tmp_path / "cache")  # everything loads from the cache: no compile
    assert _notices(warm.stderr) == []


def test_no_notice_while_compiling_stays_under_the_threshold(tmp_path):
    script = tmp_path / "compile_two.py"
    script.write_text(SCRIPT)
    cold = _run([str(script), "600"], tmp_path / "cache")
    assert cold.stdout.strip() == "5" and _notices(cold.stderr) == []


def test_the_command_line_shows_the_notice_on_a_first_run_only(tmp_path):
    argv = ["-m", "minidl.cli", "gradcheck", "--op", "cross_entropy"]
    first = _run(argv, tmp_path / "cache", MINIDL_COMPILE_NOTICE_SECONDS="0")
    assert _notices(first.stderr) == [NOTICE] and "all passed" in first.stdout
    again = _run(argv, tmp_path / "cache", MINIDL_COMPILE_NOTICE_SECONDS="0")
    assert _notices(again.stderr) == [] and "all passed" in again.stdout


def test_the_notice_is_shown_while_the_compiler_still_runs():
    """Past the threshold the timer thread writes the line; the compile need not end first."""
    from minidl.compilation import CompileNotice

    lines = []
    notice = CompileNotice(0.05, lines.append)
    notice.on_start(None)
    notice.on_start(None)  # a nested compile (a helper of the kernel) changes nothing
    for _ in range(500):
        if lines:
            break
        time.sleep(0.01)
    assert lines == [NOTICE] and notice.shown
    notice.on_end(None)
    notice.on_end(None)
    assert lines == [NOTICE]  # once


# ------------------------------------------------------------------ parallel kernels' serial twins

def test_a_parallel_kernel_runs_its_serial_twin_on_one_thread():
    from minidl.kernels.cpu import pooling

    kernel = pooling._global_avg_fwd
    x = np.random.default_rng(0).random((2, 3, 4, 5)).astype(np.float32)
    threads = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        serial = kernel(x)
        assert kernel.serial.signatures
        if numba.config.NUMBA_NUM_THREADS > 1:
            numba.set_num_threads(2)
            parallel = kernel(x)
            assert kernel.parallel.signatures
            np.testing.assert_allclose(parallel, serial, rtol=1e-6)
    finally:
        numba.set_num_threads(threads)
    np.testing.assert_allclose(serial[:, :, 0, 0], x.mean(axis=(2, 3)), rtol=1e-6)


def test_the_twins_cache_apart():
    from minidl.kernels.cpu import conv

    kernel = conv._im2col_kernel
    assert kernel.serial.py_func.__qualname__ == "_im2col_kernel__serial"
    assert kernel.parallel.py_func.__qualname__ == "_im2col_kernel"
    assert kernel.parallel.targetoptions.get("parallel") and not kernel.serial.targetoptions.get("parallel")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-q"]))
