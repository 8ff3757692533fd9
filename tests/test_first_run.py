"""First runs: the kernel manifest, its helper process, and the cache handoff (minidl/compilation.py)."""
import json
import os
import subprocess
import sys

import numpy as np
from numba import njit

from minidl import compilation

MANIFEST = os.path.join(compilation._manifest_dir(), "train-lenet5.json")


def test_lenet5_manifest_resolves_to_the_current_kernels():
    """Every kernel the manifest names exists under that name, with argument types Numba can build.

    Fails when a kernel is renamed or its arguments change: run scripts/record_first_run.sh."""
    with open(MANIFEST) as f:
        entries = json.load(f)["kernels"]
    assert len(entries) >= 8
    for module, qualname, args, seconds in entries:
        dispatcher = compilation.resolve_dispatcher(module, qualname)
        assert dispatcher is not None, (module, qualname)
        assert dispatcher.py_func.__code__.co_argcount == len(args), (qualname, len(args))
        [compilation.build_type(a) for a in args]
        assert seconds > 0
    front, back = compilation.split_manifest(entries)
    assert front and back and front + back == entries
    total = sum(e[3] for e in entries)
    assert abs(sum(e[3] for e in front) - sum(e[3] for e in back)) <= max(e[3] for e in entries) + 0.01 * total


def test_recorder_keeps_kernels_in_call_order_with_their_types():
    @njit
    def first(a, n):
        return a[:n].sum()

    @njit
    def second(a):
        return a.max()

    recorder = compilation._Recorder()
    from numba.core import event

    event.register("numba:compile", recorder)
    try:
        first(np.ones(4, np.float32), 2)
        second(np.ones((2, 3)))
        first(np.ones(4, np.float32), 3)  # compiled already: not listed twice
    finally:
        event.unregister("numba:compile", recorder)
    names = [e[1] for e in recorder.entries]
    assert names == [first.py_func.__qualname__, second.py_func.__qualname__]
    assert recorder.entries[0][2] == [{"array": ["float32", 1, "C", False]}, "int64"]
    assert recorder.entries[1][2] == [{"array": ["float64", 2, "C", False]}]
    assert all(e[3] > 0 for e in recorder.entries)


def test_helper_compiles_into_the_cache_that_the_command_then_loads(tmp_path):
    """The helper's half lands in Numba's cache; a later process loads it instead of compiling."""
    manifest = tmp_path / "m.json"
    entry = ["minidl.kernels.cpu.activation", "_tanh_backward__serial",
             [{"array": ["float32", 1, "C", False]}] * 3, 1.0]
    manifest.write_text(json.dumps({"kernels": [entry, entry]}))
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "cache"))
    subprocess.run([sys.executable, "-m", "minidl.compilation", str(manifest)], env=env, check=True)
    code = ("import numpy as np\n"
            "from minidl.kernels.cpu import activation as a\n"
            "g = np.ones(10, np.float32)\n"
            "print(a.tanh_backward(g, g * 0.5)[0], sum(a._tanh_backward.serial.stats.cache_hits.values()))")
    out = subprocess.run([sys.executable, "-c", code], env=env, check=True, capture_output=True, text=True).stdout
    value, hits = out.split()
    assert float(value) == 0.75 and int(hits) == 1


def test_no_helper_without_a_manifest_or_when_told_not_to(monkeypatch):
    assert compilation.precompile_in_background("train-no-such-model") is None
    monkeypatch.setenv("MINIDL_PRECOMPILE", "0")
    assert compilation.precompile_in_background("train-lenet5") is None
