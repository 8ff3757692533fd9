"""Matrix products for the CPU kernels: single-threaded BLAS calls spread over minidl's own threads.

Why not simply call ``a @ b`` and let OpenBLAS use its threads? Because every layer alternates
BLAS products with Numba's parallel loops, and OpenBLAS's idle workers keep spinning (yielding
in a loop, for up to ~0.1 s) after each threaded call. On a 2-core machine the spinning workers
take the cores the next Numba loop needs: measured on the development machine (AMD EPYC, 2
cores), the Winograd convolution's transforms ran at 12-14 ms after threaded GEMMs against
7-8 ms after single-threaded ones, and OpenBLAS's own wake-ups made 36 small GEMMs slower.
The spin time is fixed when OpenBLAS loads (``OPENBLAS_THREAD_TIMEOUT``), i.e. when NumPy is
imported, so a library imported later cannot change it.

So inside minidl's kernels BLAS runs with one thread, and the products are split over a small
pool of minidl's own threads (one per Numba thread, the caller included), whose idle workers
sleep on a queue and never spin. Independent products (the 36 Winograd GEMMs, per-image
products) go to the threads whole; one large product is split along its widest dimension.
NumPy's matmul releases the GIL inside BLAS, so the threads run in parallel. BLAS's thread
count is set to one only for the duration of each call and restored after it, so NumPy code
outside minidl keeps its threads; OpenBLAS's workers are then never woken by minidl.
"""
import threading
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np

# Below this many multiply-adds a product is not worth splitting (thread hand-off ~20-50 us).
SPLIT_MIN_MACS = 1 << 21

_state = threading.local()
_lock = threading.Lock()
_pool = None
_pool_size = 0
_blas = None  # threadpoolctl controllers of the BLAS libraries loaded in this process


def _controllers():
    global _blas
    if _blas is None:
        try:
            from threadpoolctl import ThreadpoolController
            _blas = [c for c in ThreadpoolController().select(user_api="blas").lib_controllers]
        except Exception:  # threadpoolctl missing or unable to inspect: BLAS keeps its threads
            _blas = []
    return _blas


class single_threaded_blas:
    """Context manager: BLAS runs on one thread inside it (nested use is cheap)."""

    def __enter__(self):
        depth = getattr(_state, "depth", 0)
        _state.depth = depth + 1
        if depth == 0:
            self.saved = [(c, c.get_num_threads()) for c in _controllers()]
            for c, n in self.saved:
                if n != 1:
                    c.set_num_threads(1)
        return self

    def __exit__(self, *exc):
        _state.depth -= 1
        if _state.depth == 0:
            for c, n in self.saved:
                if n != 1:
                    c.set_num_threads(n)
        return False


def _workers():
    """The pool (created on first use) and how many threads work, the caller included."""
    global _pool, _pool_size
    n = numba.get_num_threads()
    if n > 1 and (_pool is None or _pool_size != n - 1):
        with _lock:
            if _pool is None or _pool_size != n - 1:
                _pool = ThreadPoolExecutor(max_workers=n - 1, thread_name_prefix="minidl-blas")
                _pool_size = n - 1
    return n


def _run_parts(parts):
    """Run callables, the first on the calling thread and the others on the pool."""
    if len(parts) == 1:
        parts[0]()
        return
    futures = [_pool.submit(p) for p in parts[1:]]
    parts[0]()
    for f in futures:
        f.result()


def matmul_many(a_list, b_list, out_list):
    """out_list[i][...] = a_list[i] @ b_list[i] for independent 2-D products, spread over the threads."""
    count = len(out_list)
    n = min(_workers(), count)

    def part(lo, hi):
        def run():
            for i in range(lo, hi):
                np.matmul(a_list[i], b_list[i], out=out_list[i])
        return run

    bounds = [count * j // n for j in range(n + 1)]
    with single_threaded_blas():
        _run_parts([part(bounds[j], bounds[j + 1]) for j in range(n)])


def matmul(a, b, out=None):
    """a (M, K) @ b (K, N) -> (M, N); a large product is split by rows or columns over the threads."""
    m, kd = a.shape
    nn = b.shape[1]
    if out is None:
        out = np.empty((m, nn), dtype=np.result_type(a, b))
    n = _workers()
    if n == 1 or m * kd * nn < SPLIT_MIN_MACS:
        with single_threaded_blas():
            np.matmul(a, b, out=out)
        return out
    if nn >= m:  # split the columns: each thread reads all of a, its share of b
        cuts = [nn * j // n for j in range(n + 1)]
        matmul_many([a] * n, [b[:, cuts[j]:cuts[j + 1]] for j in range(n)],
                    [out[:, cuts[j]:cuts[j + 1]] for j in range(n)])
    else:
        cuts = [m * j // n for j in range(n + 1)]
        matmul_many([a[cuts[j]:cuts[j + 1]] for j in range(n)], [b] * n,
                    [out[cuts[j]:cuts[j + 1]] for j in range(n)])
    return out
