"""Test-suite behaviour for the device markers.

* ``gpu``: skipped unless CuPy imports and an NVIDIA GPU is usable (the skip
  reason says which is missing).
* ``cudasim``: the CUDA kernels' tests, run under the Numba CUDA simulator. The
  simulator must be switched on (``NUMBA_ENABLE_CUDASIM=1``) before
  ``numba.cuda`` is first imported, and it must not leak into the rest of the
  session (on a GPU machine the ``gpu`` tests need the real ``numba.cuda``). So
  when the suite runs without the simulator, every selected ``cudasim`` test is
  run once, together, in one child pytest with the variable set; each test in
  this process then reports its child's outcome (pass, skip, or the failure
  text). Running ``NUMBA_ENABLE_CUDASIM=1 python -m pytest -m cudasim`` runs
  them in-process directly.

The fixtures ``no_init`` and ``zero_init`` skip the zoo's random initialisation for tests whose
assertions do not depend on the weights' values (parameter counts, names, shapes, MACs).

And before any test imports torchvision, ``prepare_torchvision`` lets PyPI's CUDA build of torchvision
load next to the CPU build of torch (see tests/_torchvision_cpu.py).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile

import pytest
from _torchvision_cpu import prepare as prepare_torchvision

SIM_ENV = "NUMBA_ENABLE_CUDASIM"
REPORT_ENV = "MINIDL_CUDASIM_REPORT"  # set in the child: where to write the outcomes
CHILD_TIMEOUT_S = 600


# the nn.init functions the zoo draws its weights with
_INIT_FUNCTIONS = ("uniform_", "normal_", "kaiming_uniform_", "kaiming_normal_", "trunc_normal_", "xavier_uniform_",
                   "xavier_normal_")


@pytest.fixture
def no_init(monkeypatch):
    """Leave parameters as allocated: counts, names and call order do not depend on their values
    (VGG alone draws 140M random numbers)."""
    from minidl import nn

    def keep(tensor, *args, **kwargs):
        return tensor

    for name in _INIT_FUNCTIONS + ("constant_",):
        monkeypatch.setattr(nn.init, name, keep)


@pytest.fixture
def zero_init(monkeypatch):
    """Fill parameters with zeros instead of random numbers: shapes, MACs and FLOPs do not depend on them,
    and a forward pass over zeros stays finite."""
    from minidl import nn

    def zeros(tensor, *args, **kwargs):
        tensor.data[...] = 0
        return tensor

    for name in _INIT_FUNCTIONS:
        monkeypatch.setattr(nn.init, name, zeros)


def _in_simulator():
    return os.environ.get(SIM_ENV) == "1"


def _gpu_missing_reason():
    """None when CuPy and a GPU are usable, otherwise why not."""
    from minidl.device import gpu_unavailable_reason

    return gpu_unavailable_reason()


def pytest_configure(config):
    prepare_torchvision()


def pytest_collection_modifyitems(config, items):
    gpu_items = [item for item in items if item.get_closest_marker("gpu")]
    if gpu_items:
        reason = "needs an NVIDIA GPU with CuPy" if _in_simulator() else _gpu_missing_reason()
        if reason is not None:
            skip = pytest.mark.skip(reason=f"gpu test: {reason}")
            for item in gpu_items:
                item.add_marker(skip)
    config._cudasim_items = [item.nodeid for item in items if item.get_closest_marker("cudasim")]
    config._cudasim_results = None


def _run_children(config):
    """Run every selected cudasim test in one child pytest under the simulator; {nodeid: outcome}."""
    with tempfile.TemporaryDirectory() as tmp:
        report = os.path.join(tmp, "report.json")
        env = dict(os.environ, **{SIM_ENV: "1", REPORT_ENV: report})
        cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "cudasim",
               "--rootdir", str(config.rootpath), *config._cudasim_items]
        try:
            proc = subprocess.run(cmd, cwd=str(config.rootpath), env=env, capture_output=True, text=True,
                                  timeout=CHILD_TIMEOUT_S)
            output = proc.stdout + proc.stderr
        except subprocess.TimeoutExpired as exc:
            output = f"the simulator run timed out after {CHILD_TIMEOUT_S} s\n{exc.stdout or ''}"
        results = {}
        if os.path.exists(report):
            with open(report) as f:
                results = json.load(f)
        return results, output[-4000:]


def pytest_pyfunc_call(pyfuncitem):
    """In the parent process, a cudasim test reports the outcome of its run in the simulator child."""
    if _in_simulator() or not pyfuncitem.get_closest_marker("cudasim"):
        return None
    config = pyfuncitem.config
    if config._cudasim_results is None:
        config._cudasim_results = _run_children(config)
    results, output = config._cudasim_results
    outcome = results.get(pyfuncitem.nodeid)
    if outcome is None:
        pytest.fail(f"no result from the CUDA simulator run for {pyfuncitem.nodeid}; its output:\n{output}",
                    pytrace=False)
    if outcome["outcome"] == "skipped":
        pytest.skip(outcome["text"])
    if outcome["outcome"] == "failed":
        pytest.fail(f"under NUMBA_ENABLE_CUDASIM=1:\n{outcome['text']}", pytrace=False)
    return True


# --------------------------------------------------------------------------- child side

_child_outcomes = {}


def pytest_runtest_logreport(report):
    if not os.environ.get(REPORT_ENV):
        return
    previous = _child_outcomes.get(report.nodeid)
    if report.when == "call" or report.outcome != "passed":
        if previous is not None and previous["outcome"] == "failed":
            return  # keep the first failure (a teardown error must not hide it)
        text = ""
        if report.outcome == "skipped" and isinstance(report.longrepr, tuple):
            text = str(report.longrepr[2])
        elif report.outcome == "failed":
            text = str(report.longrepr)[-3000:]
        _child_outcomes[report.nodeid] = {"outcome": report.outcome, "text": text}


def pytest_sessionfinish(session, exitstatus):
    path = os.environ.get(REPORT_ENV)
    if path:
        with open(path, "w") as f:
            json.dump(_child_outcomes, f)
