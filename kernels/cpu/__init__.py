"""CPU kernels: Numba-compiled loops and BLAS through NumPy. Arrays in, arrays out, no autograd.

Threads. Every layer alternates two thread pools: Numba's parallel loops and OpenBLAS's
threaded matrix products. A pool whose idle workers keep spinning takes the cores the other
one needs. Numba's default threading layer on Linux is OpenMP, and libgomp spins after each
parallel loop unless ``OMP_WAIT_POLICY=PASSIVE`` was in the environment *when libgomp
loaded*; PyTorch loads its own libgomp at import (same soname, so Numba then shares it), so
with ``import torch`` first no setting made later can stop the spinning. Measured on the
2-core AMD EPYC development machine, dense 3x3 convolution fwd+bwd (32x64->64 at 32x32):
348 ms with torch imported first against 197 ms with minidl first.

So minidl runs Numba's parallel loops on Numba's own ``workqueue`` layer: plain pthreads
whose idle workers sleep on a condition variable and never spin, and which does not depend on
which OpenMP runtime is loaded or when (217 ms torch first, 194 ms minidl first, same run).
The layer is chosen here, before the first parallel launch, unless the user chose one
(``NUMBA_THREADING_LAYER``). workqueue aborts the process when two threads launch parallel
loops at once (Numba releases the GIL around a launch), so every module of kernels/cpu ends
with ``serialise_parallel_kernels(globals())``: its parallel kernels then take one process-wide
lock (~0.1 us), and Python threads (DataLoader workers, a server running inference in threads)
can call minidl side by side (tests/test_winograd.py runs four threads of conv training steps).
Matrix products run on minidl's own threads too, see ``blas.py``. ``threading_report()`` says
what is in use.
"""
import functools
import os
import threading

import numba

from minidl.kernels import allocator

if not os.environ.get("NUMBA_THREADING_LAYER"):
    from numba.np.ufunc import parallel as _parallel

    if not _parallel._is_initialized:  # nothing has launched a parallel loop yet in this process
        numba.config.THREADING_LAYER = "workqueue"


def threading_report():
    """A dict: Numba's threading layer and threads, and the BLAS libraries with theirs (threadpoolctl)."""
    try:
        layer = numba.threading_layer()
    except ValueError:  # no parallel loop has run yet: the layer that will be used
        layer = f"{numba.config.THREADING_LAYER} (not started)"
    report = {"numba_layer": layer, "numba_threads": numba.get_num_threads(), "blas": [],
              "malloc": allocator.report()}
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return report
    for pool in threadpool_info():
        report["blas" if pool.get("user_api") == "blas" else "openmp"] = report.get(
            "blas" if pool.get("user_api") == "blas" else "openmp", []) + [
            {"library": pool.get("internal_api"), "version": pool.get("version"),
             "kernel": pool.get("architecture"), "threads": pool.get("num_threads"),
             "file": os.path.basename(pool.get("filepath", ""))}]
    return report


_PARALLEL_LOCK = threading.RLock()


def serialise_parallel_kernels(namespace):
    """Replace each ``@njit(parallel=True)`` kernel in a module's namespace by a locked wrapper.

    Called at the end of every kernels/cpu module. Python code in the module looks its kernels up
    in the namespace at call time, so it gets the wrapper; the compiled dispatcher stays reachable
    as ``wrapper.dispatcher``. Kernels called from other compiled code are never parallel ones.
    """
    for name, obj in list(namespace.items()):
        if isinstance(obj, numba.core.registry.CPUDispatcher) and obj.targetoptions.get("parallel"):
            namespace[name] = _locked(obj)


def _locked(dispatcher):
    @functools.wraps(dispatcher.py_func)
    def run(*args):
        with _PARALLEL_LOCK:
            return dispatcher(*args)
    run.dispatcher = dispatcher
    return run
