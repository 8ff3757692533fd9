"""Numba compiles minidl's CPU kernels on their first call: say so when that takes a while.

A first run (an empty Numba cache) spends seconds in the compiler before its first batch;
the machine code is then kept in ``__pycache__`` next to the kernels, and later runs load
it. :func:`announce_compilation` listens to Numba's compile events and prints one line,
``compiling kernels (first run only) ...``, once the compiling done in this process has
taken more than ``threshold`` seconds: while the compiler is still at work (a timer
thread), not after it. A run whose kernels all load from the cache never compiles, so it
prints nothing. The command line turns it on for the commands that run kernels.

On a first run of a command with a kernel manifest (``kernels/first_run/``), a helper process
compiles half of its kernels beside the command: :func:`precompile_in_background`.

>>> announce_compilation(threshold=60.0).shown
False
"""
from __future__ import annotations

import os
import sys
import threading
import time

from numba.core import event

NOTICE = "compiling kernels (first run only) ..."

_listener = None  # the process's one listener, once announce_compilation has been called


def _print_to_stderr(line):
    print(line, file=sys.stderr, flush=True)


class CompileNotice(event.Listener):
    """Adds up the seconds of outermost Numba compiles and shows :data:`NOTICE` past ``threshold``."""

    def __init__(self, threshold, write):
        self.threshold = threshold
        self.write = write
        self.seconds = 0.0  # spent in finished compiles so far
        self.shown = False
        self._depth = 0  # compiles nest (a kernel compiles its helpers); Numba compiles one at a time
        self._started = None
        self._timer = None
        self._lock = threading.Lock()

    def on_start(self, event):
        self._depth += 1
        if self._depth > 1 or self.shown:
            return
        self._started = time.perf_counter()
        # shows the notice while this compile is still running, once the total passes the threshold
        self._timer = threading.Timer(max(0.0, self.threshold - self.seconds), self._show)
        self._timer.daemon = True
        self._timer.start()

    def on_end(self, event):
        self._depth -= 1
        if self._depth > 0 or self._started is None:
            return
        self.seconds += time.perf_counter() - self._started
        self._started = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self.seconds > self.threshold:
            self._show()

    def _show(self):
        with self._lock:
            if self.shown:
                return
            self.shown = True
        self.write(NOTICE)


def announce_compilation(threshold=1.0, write=None):
    """Print :data:`NOTICE` once in this process when Numba compiling passes ``threshold`` seconds.

    ``write`` is called with the line (default: print it on stderr); a caller showing
    progress bars passes one that writes above them (``tqdm.write``). Nested compiles (a
    kernel's helpers) count once, inside their kernel's. Calling it again (a second command
    in the same process) keeps the one listener, gives it the new ``threshold`` and
    ``write`` and counts from zero again; the notice still shows at most once per process.
    Returns the listener.
    """
    global _listener
    if _listener is None:
        _listener = CompileNotice(threshold, write or _print_to_stderr)
        event.register("numba:compile", _listener)
    else:
        _listener.threshold = threshold
        _listener.write = write or _print_to_stderr
        _listener.seconds = 0.0
    return _listener


def silence_in_this_process():
    """No notice from this process (a worker whose siblings already announce for the command)."""
    if _listener is not None:
        _listener.shown = True


# ---------------------------------------------------------------------------
# First runs: a second process compiles half of the kernels a command will need
# ---------------------------------------------------------------------------
# Numba compiles one kernel at a time in a process (a global compiler lock), so a first
# `minidl train lenet5` compiled ~16 s of kernels on one core while the other idled. A
# manifest (kernels/first_run/<command>.json, recorded from a run with an empty cache, see
# scripts/record_first_run.sh) lists the kernels a command compiles, in the order it first
# calls them, with their argument types and compile seconds. On a first run the command starts
# one helper process that compiles the back half of that list (by seconds; the backward kernels,
# from the last) into Numba's on-disk cache, compiles the front half itself, waits for the
# helper, and then runs with every kernel compiled or in the cache: each kernel is compiled
# once, on two cores instead of one. The cache files are written by a rename, so neither
# process ever reads a half-written one.

def _manifest_dir():
    import minidl.kernels

    return os.path.join(os.path.dirname(os.path.abspath(minidl.kernels.__file__)), "first_run")


def describe_type(t):
    """A JSON-able description of a Numba argument type (arrays, scalars, tuples), or None."""
    from numba.core import types

    if isinstance(t, types.Array):
        return {"array": [str(t.dtype), t.ndim, t.layout, bool(not t.mutable)]}
    if isinstance(t, types.UniTuple):
        inner = describe_type(t.dtype)
        return None if inner is None else {"unituple": [inner, t.count]}
    if isinstance(t, types.Tuple):
        inner = [describe_type(e) for e in t.types]
        return None if any(e is None for e in inner) else {"tuple": inner}
    if isinstance(t, (types.Integer, types.Float, types.Boolean, types.NoneType)):
        return str(t)
    return None


def build_type(d):
    """The Numba type :func:`describe_type` described."""
    from numba.core import types

    if isinstance(d, str):
        return types.none if d == "none" else getattr(types, d)
    if "array" in d:
        dtype, ndim, layout, readonly = d["array"]
        return types.Array(getattr(types, dtype), ndim, layout, readonly=readonly)
    if "unituple" in d:
        return types.UniTuple(build_type(d["unituple"][0]), d["unituple"][1])
    return types.Tuple([build_type(e) for e in d["tuple"]])


def resolve_dispatcher(module, qualname):
    """The Numba dispatcher named in a manifest: a kernel, or a parallel kernel's serial or parallel twin."""
    import importlib

    from numba.core.registry import CPUDispatcher

    serial = qualname.endswith("__serial")
    obj = getattr(importlib.import_module(module), qualname[:-len("__serial")] if serial else qualname, None)
    if hasattr(obj, "serial") and hasattr(obj, "parallel"):  # kernels/cpu/jit.py's ParallelKernel
        return obj.serial if serial else obj.parallel
    obj = getattr(obj, "dispatcher", obj)  # a serialise_parallel_kernels wrapper
    return obj if isinstance(obj, CPUDispatcher) else None


class _Recorder(event.Listener):
    """Keeps (module, qualname, argument types) of each outermost compile, in order."""

    def __init__(self):
        self.entries = []
        self._depth = 0

    def on_start(self, ev):
        self._depth += 1
        if self._depth > 1:
            return
        self._started = time.perf_counter()
        fn = ev.data["dispatcher"].py_func
        args = [describe_type(a) for a in ev.data["args"]]
        entry = [fn.__module__, fn.__qualname__, args]
        self._current = entry if all(a is not None for a in args) and entry not in [e[:3] for e in self.entries] \
            else None

    def on_end(self, ev):
        self._depth -= 1
        if self._depth == 0 and self._current is not None:
            self.entries.append(self._current + [round(time.perf_counter() - self._started, 2)])
            self._current = None


def record_kernels(path):
    """Write the kernels this process compiles, in order, to the manifest ``path`` at exit."""
    import atexit
    import json

    recorder = _Recorder()
    event.register("numba:compile", recorder)

    def write():
        with open(path, "w") as f:  # one kernel per line
            f.write('{"kernels": [\n' + ",\n".join(json.dumps(e) for e in recorder.entries) + "\n]}\n")

    atexit.register(write)
    return recorder


def split_manifest(entries):
    """(front, back): the manifest cut where its recorded compile seconds reach half of their total."""
    total = sum(e[3] for e in entries)
    spent = 0.0
    for i, e in enumerate(entries):
        if spent + e[3] / 2 > total / 2:
            return entries[:i], entries[i:]
        spent += e[3]
    return entries, []


def compile_manifest(path, part="back"):
    """Compile (or load from the cache) the kernels of one half of a manifest; returns how many resolved.

    ``"front"``: the kernels a command calls first, in order (the command's own share); ``"back"``:
    the others, from the last one backwards (the helper's share); ``"all"``: every kernel, in order."""
    import json

    with open(path) as f:
        entries = json.load(f)["kernels"]
    front, back = split_manifest(entries)
    todo = {"front": front, "back": back[::-1], "all": entries}[part]
    done = 0
    for module, qualname, args, _seconds in todo:
        try:
            dispatcher = resolve_dispatcher(module, qualname)
            if dispatcher is not None:
                dispatcher.compile(tuple(build_type(a) for a in args))  # loads it if the command compiled it
                done += 1
        except Exception:  # a stale entry (a kernel renamed, a signature changed): the command compiles it
            continue
    return done


def _cached(entry):
    """Whether Numba's cache already has an index for the kernel of a manifest entry (None: cannot tell)."""
    try:
        dispatcher = resolve_dispatcher(entry[0], entry[1])
        return os.path.exists(dispatcher._cache._cache_file._index_path)
    except Exception:
        return None


class FirstRun:
    """A first run's compile plan: the helper process compiles the manifest's back half (started here);
    :meth:`compile_front` compiles the front half in this process and then waits for the helper, so
    that the command finds every kernel compiled or cached and compiles none of them twice."""

    def __init__(self, path, proc):
        self.path = path
        self.proc = proc

    def compile_front(self, timeout=120.0):
        import subprocess

        compile_manifest(self.path, "front")
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:  # a stuck helper: the command compiles what is missing itself
            pass


def precompile_in_background(name):
    """On a first run of command ``name``, start the helper process that compiles its manifest's back half.

    Returns a :class:`FirstRun`, or None: no manifest for ``name``, ``MINIDL_PRECOMPILE=0``, Numba's
    JIT off, or the manifest's last kernel already in the cache (not a first run). The helper is
    stopped when this process exits.
    """
    import atexit
    import json
    import subprocess

    path = os.path.join(_manifest_dir(), f"{name}.json")
    if (not os.path.exists(path) or os.environ.get("MINIDL_PRECOMPILE", "1") == "0"
            or os.environ.get("NUMBA_DISABLE_JIT", "0") not in ("", "0")):
        return None
    with open(path) as f:
        entries = json.load(f)["kernels"]
    if not entries or _cached(entries[-1]):
        return None
    proc = subprocess.Popen([sys.executable, "-m", "minidl.compilation", path],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def stop():
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()

    atexit.register(stop)
    return FirstRun(path, proc)


if __name__ == "__main__":  # the helper: python -m minidl.compilation MANIFEST
    compile_manifest(sys.argv[1], "back")
