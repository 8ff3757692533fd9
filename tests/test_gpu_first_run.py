"""scripts/gpu_first_run.sh, the script a person with a GPU runs once: valid bash, its Python runs, it fails clearly.

Without a GPU the script cannot run to the end, but its parts can be checked: ``bash -n`` parses it,
its embedded Python snippets (marked ``# MINIDL-SNIPPET name``) run on the fake CuPy and the CUDA
simulator (tests/fake_cupy), and without CuPy it stops after the environment check with a non-zero
exit status and a log.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "scripts", "gpu_first_run.sh")
FAKE = os.path.join(ROOT, "tests", "fake_cupy")


def _snippets():
    with open(SCRIPT) as f:
        source = f.read()
    found = {}
    for body in re.findall(r"<<'PY'\n(.*?)\nPY\n", source, re.S):
        name = re.search(r"# MINIDL-SNIPPET (\S+)", body)
        assert name, "every Python heredoc in gpu_first_run.sh is marked '# MINIDL-SNIPPET name'"
        found[name.group(1)] = body
    return found


def test_script_is_valid_bash_with_every_section():
    bash = shutil.which("bash")
    if bash is None:
        pytest.skip("no bash")
    subprocess.run([bash, "-n", SCRIPT], check=True)
    with open(SCRIPT) as f:
        source = f.read()
    assert "set -u" in source
    for needed in ("numba.cuda.detect", "cupy.__version__", "minidl.cuda.warmup()", "-m gpu", "-m cudasim",
                   "--tool \"$tool\"", "memcheck racecheck", "benchmarks/gpu_bench.py"):
        assert needed in source, needed
    assert set(_snippets()) == {"env-check", "empty-batches"}


@pytest.mark.parametrize("name", ["env-check", "empty-batches"])
def test_script_snippets_run_on_the_fake_cupy(name):
    pytest.importorskip("numba.cuda")
    check = ("\nassert cupy.launches == [], cupy.launches  # N = 0 launches no kernel\n"
             if name == "empty-batches" else "")
    code = "import cupy\ncupy.install_kernel_audit()\n" + _snippets()[name] + check
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1", PYTHONPATH=os.pathsep.join([FAKE, ROOT]),
               OMP_NUM_THREADS="1", NUMBA_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    assert "ok" in proc.stdout or "no illegal address" in proc.stdout


def test_script_stops_after_a_failed_environment_check_and_logs_it(tmp_path):
    bash = shutil.which("bash")
    if bash is None:
        pytest.skip("no bash")
    try:
        import cupy  # noqa: F401
        pytest.skip("CuPy is installed here: the environment check would pass")
    except ImportError:
        pass
    env = dict(os.environ, PYTHON=sys.executable, RESULTS=str(tmp_path), PATH=os.environ.get("PATH", ""))
    env.pop("PYTHONPATH", None)
    proc = subprocess.run([bash, SCRIPT], env=env, cwd=str(tmp_path), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, proc.stdout[-3000:]
    assert "env-check failed" in proc.stdout and "No module named 'cupy'" in proc.stdout
    assert "failed : env-check" in proc.stdout and "3. real-GPU tests" not in proc.stdout
    logs = list(tmp_path.glob("gpu_first_run-*.log"))
    assert len(logs) == 1 and "env-check failed" in logs[0].read_text()
