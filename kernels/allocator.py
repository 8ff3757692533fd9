"""glibc malloc settings that keep freed activation memory for the next step.

Every layer returns fresh NumPy arrays, and a training step frees them all again. glibc's
malloc serves a request of 128 KB or more with a fresh ``mmap`` (the threshold then adapts
upward as such blocks are freed) and hands free memory at the top of the heap back to the OS
once more than twice that threshold is free. Either way the next step's arrays land on pages
the kernel must fault in and zero again, ~0.25 us per 4 KB page, inside the kernels that first
write them: measured on the development machine (AMD EPYC, 2 cores), LeNet-5's batch-128
training step took 31-37 ms with glibc's defaults and 22-27 ms with the settings below, which
keep the freed pages in the process for the next step to reuse.

``configure()`` (called once by ``import minidl``) sets:

* ``M_MMAP_THRESHOLD`` = 32 MiB (glibc's largest): blocks below it come from the heap;
* ``M_TRIM_THRESHOLD`` = 256 MiB: up to that much free memory at the heap top stays mapped.

These are process-wide: every library in the process (PyTorch's tensors included, so a
same-process comparison runs both under the same allocator) allocates under them. Peak
memory is unchanged in principle (the same arrays are live); freed memory up to the trim
threshold is kept instead of returned. Nothing is changed when the process is not on glibc,
when the user set any ``MALLOC_*_`` variable (their choice stands), or when
``MINIDL_MALLOC=default`` is set.
"""
import ctypes
import os

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3

MMAP_THRESHOLD = 32 << 20
TRIM_THRESHOLD = 256 << 20

_state = {"configured": False, "reason": "not configured yet"}


def configure():
    """Apply the settings above once; returns a one-line description of what is in force."""
    if _state["configured"]:
        return _state["reason"]
    _state["configured"] = True
    if os.environ.get("MINIDL_MALLOC", "").lower() == "default":
        _state["reason"] = "glibc defaults (MINIDL_MALLOC=default)"
    elif any(k.startswith("MALLOC_") and k.endswith("_") for k in os.environ):
        _state["reason"] = "the user's MALLOC_* settings"
    else:
        try:
            libc = ctypes.CDLL(None)
            mallopt = libc.mallopt
            libc.gnu_get_libc_version  # present only in glibc
        except (OSError, AttributeError):
            _state["reason"] = "the platform's allocator (not glibc)"
            return _state["reason"]
        mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
        ok = mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1 and mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1
        _state["reason"] = (f"glibc malloc: mmap threshold {MMAP_THRESHOLD >> 20} MiB, trim threshold "
                            f"{TRIM_THRESHOLD >> 20} MiB (kernels/allocator.py)" if ok else "glibc defaults (mallopt refused)")
    return _state["reason"]


def report():
    """What configure() did, in one line."""
    return _state["reason"]
