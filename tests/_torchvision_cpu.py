"""Let PyPI's torchvision run next to the CPU build of torch, in the tests only.

The tests compare minidl with torchvision itself (its ops, model layouts and timm's models, which import
torchvision). CI installs ``torch==2.13.0`` (the CPU wheel), ``torchvision==0.28.0`` and ``timm``. PyPI
has only a CUDA build of torchvision 0.28.0: its compiled ops (``torchvision/_C.so``, ``image.so``) list
``libc10_cuda.so``, ``libtorch_cuda.so`` (the CUDA half of torch, absent from the CPU wheel) and
``libcudart.so.13`` among the libraries they need, so the dynamic loader refuses them and
``import torchvision`` fails (``RuntimeError: operator torchvision::nms does not exist``; a RuntimeError,
so ``pytest.importorskip`` would not even skip).

The loader takes an already loaded library whose SONAME equals a needed name instead of searching the
disk. So before torchvision is first imported, :func:`prepare` loads

* the CUDA runtime torchvision's wheel bundles itself (``torchvision.libs/libcudart.<hash>.so.13``,
  SONAME ``libcudart.so.13``): torchvision's static initialisers register their GPU code with it, which
  needs no GPU and no driver;
* two small libraries built here with gcc into a cache folder (never into git), ``libc10_cuda.so`` and
  ``libtorch_cuda.so``: exactly the c10::cuda / at::cuda symbols torchvision uses, each function printing
  which function was called and aborting, and the one data object (the CUDA caching allocator's pointer)
  zero. torchvision's CUDA kernels reach these (device guard, current stream) before any GPU work, and
  the CPU build of torch cannot make a CUDA tensor, so they are never reached; if one ever were, the run
  stops with the function's name instead of computing anything.

torchvision's CPU kernels then run as they are. Nothing here is used when torchvision is not installed,
when torch is a CUDA build, or when torchvision is a CPU build (none of those names is needed). If the
libraries cannot be made (no gcc), importing torchvision raises a ModuleNotFoundError that says why, so
the comparisons skip with that reason instead of erroring.
"""
from __future__ import annotations

import ctypes
import hashlib
import importlib.abc
import importlib.util
import os
import shutil
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

# The C++ symbols of torch's CUDA libraries that torchvision 0.28.0's _C.so and image.so use (found with
# `nm -D --undefined-only`), by library: mangled name -> readable name.
TORCH_CUDA_SYMBOLS = {
    "libc10_cuda.so": {
        "_ZN3c104cuda12device_countEv": "c10::cuda::device_count()",
        "_ZN3c104cuda14current_deviceEv": "c10::cuda::current_device()",
        "_ZN3c104cuda14ExchangeDeviceEa": "c10::cuda::ExchangeDevice(signed char)",
        "_ZN3c104cuda14MaybeSetDeviceEa": "c10::cuda::MaybeSetDevice(signed char)",
        "_ZN3c104cuda17getStreamFromPoolEba": "c10::cuda::getStreamFromPool(bool, signed char)",
        "_ZN3c104cuda17getStreamFromPoolEia": "c10::cuda::getStreamFromPool(int, signed char)",
        "_ZN3c104cuda20getCurrentCUDAStreamEa": "c10::cuda::getCurrentCUDAStream(signed char)",
        "_ZN3c104cuda20getDefaultCUDAStreamEa": "c10::cuda::getDefaultCUDAStream(signed char)",
        "_ZN3c104cuda20setCurrentCUDAStreamENS0_10CUDAStreamE": "c10::cuda::setCurrentCUDAStream(CUDAStream)",
        "_ZN3c104cuda29c10_cuda_check_implementationEiPKcS2_jb": "c10::cuda::c10_cuda_check_implementation",
        "_ZN3c104cuda9GetDeviceEPa": "c10::cuda::GetDevice(signed char*)",
        "_ZN3c104cuda9SetDeviceEab": "c10::cuda::SetDevice(signed char, bool)",
        "_ZNK3c104cuda10CUDAStream11synchronizeEv": "c10::cuda::CUDAStream::synchronize()",
        "_ZNK3c104cuda10CUDAStream5queryEv": "c10::cuda::CUDAStream::query()",
        "_ZNK3c104cuda10CUDAStream6streamEv": "c10::cuda::CUDAStream::stream()",
    },
    "libtorch_cuda.so": {
        "_ZN2at4cuda26getCurrentDevicePropertiesEv": "at::cuda::getCurrentDeviceProperties()",
    },
}
# c10::cuda::CUDACachingAllocator::allocator, a std::atomic<CUDAAllocator*>: one zero pointer.
TORCH_CUDA_DATA = {"libc10_cuda.so": ["_ZN3c104cuda20CUDACachingAllocator9allocatorE"]}

_C_HEADER = r"""
#include <stdio.h>
#include <stdlib.h>

/* Built by minidl's tests/_torchvision_cpu.py so that torchvision's CUDA build loads next to the CPU
   build of torch. Nothing here may ever run: each function names itself and aborts. */
__attribute__((noreturn)) static void cuda_called(const char *name) {
    fprintf(stderr, "minidl tests: torchvision called %s, a CUDA function that the CPU build of torch "
                    "does not have (stub from tests/_torchvision_cpu.py); this test must stay on the CPU\n",
            name);
    abort();
}
"""


def c_source(library):
    """The C source of one stub library."""
    lines = [_C_HEADER]
    for mangled, readable in TORCH_CUDA_SYMBOLS[library].items():
        lines.append(f'void {mangled}(void) {{ cuda_called("{readable}"); }}')
    for mangled in TORCH_CUDA_DATA.get(library, []):
        lines.append(f"void *{mangled} = 0;")
    return "\n".join(lines) + "\n"


def needed_libraries(path):
    """The DT_NEEDED names of an ELF64 little-endian shared object (what `readelf -d` lists as NEEDED)."""
    with open(path, "rb") as f:
        header = f.read(64)
        if header[:4] != b"\x7fELF" or header[4] != 2 or header[5] != 1:
            raise ValueError(f"{path} is not a 64-bit little-endian ELF file")
        shoff, = struct.unpack_from("<Q", header, 0x28)
        shentsize, shnum = struct.unpack_from("<HH", header, 0x3A)
        f.seek(shoff)
        table = f.read(shentsize * shnum)
        # section header: name, type, flags, addr, offset, size, link, info, addralign, entsize
        sections = [struct.unpack_from("<IIQQQQIIQQ", table, i * shentsize) for i in range(shnum)]
        dynamic = next((s for s in sections if s[1] == 6), None)  # SHT_DYNAMIC
        if dynamic is None:
            return []
        f.seek(dynamic[4])
        entries = f.read(dynamic[5])
        strtab = sections[dynamic[6]]
        f.seek(strtab[4])
        strings = f.read(strtab[5])
    names = []
    for tag, value in struct.iter_unpack("<qQ", entries):
        if tag == 0:  # DT_NULL
            break
        if tag == 1:  # DT_NEEDED
            names.append(strings[value:strings.index(b"\0", value)].decode())
    return names


def _cache_folder():
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "minidl-tests"


def build_stub_libraries(names, cache=None, compiler="gcc"):
    """Build the named stub libraries with gcc (once: kept under a folder named by their source's hash)."""
    sources = {name: c_source(name) for name in names}
    digest = hashlib.sha256(repr(sorted(sources.items())).encode()).hexdigest()[:16]
    folder = Path(cache or _cache_folder()) / f"torchvision-cpu-{digest}"
    if all((folder / name).is_file() for name in names):
        return [folder / name for name in names]
    found = shutil.which(compiler)
    if found is None:
        raise OSError(f"no C compiler ({compiler}) to build the stand-ins for {', '.join(names)}")
    compiler = found
    folder.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="build-", dir=folder.parent))
    try:
        for name, source in sources.items():
            (work / f"{name}.c").write_text(source)
            cmd = [compiler, "-shared", "-fPIC", "-O1", f"-Wl,-soname,{name}", "-o", str(work / name),
                   str(work / f"{name}.c")]
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode != 0:
                raise OSError(f"building {name} failed: {' '.join(cmd)}\n{proc.stderr}")
        try:
            os.replace(work, folder)  # atomic: a concurrent build either wins or finds the folder made
        except OSError:
            if not all((folder / name).is_file() for name in names):
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return [folder / name for name in names]


class _Unavailable(importlib.abc.MetaPathFinder):
    """Makes `import torchvision` raise ModuleNotFoundError with the reason: pytest.importorskip skips on
    that one (since pytest 9.1, on no other ImportError by default)."""

    def __init__(self, reason):
        self.reason = reason

    def find_spec(self, fullname, path=None, target=None):
        if fullname == "torchvision" or fullname.startswith("torchvision."):
            raise ModuleNotFoundError(f"torchvision cannot load next to the CPU build of torch: {self.reason}",
                                      name=fullname)
        return None


def missing_torch_cuda_libraries():
    """The libraries of torch's CUDA build that the installed torchvision needs and the installed torch lacks."""
    tv_spec = importlib.util.find_spec("torchvision")
    torch_spec = importlib.util.find_spec("torch")
    if tv_spec is None or torch_spec is None or tv_spec.origin is None:
        return []
    torch_lib = Path(torch_spec.origin).parent / "lib"
    needed = _torchvision_needs(Path(tv_spec.origin).parent)
    return sorted(name for name in TORCH_CUDA_SYMBOLS if name in needed and not (torch_lib / name).exists())


def _torchvision_needs(tv_dir):
    needed = set()
    for extension in sorted(tv_dir.glob("_C*.so")) + sorted(tv_dir.glob("image*.so")):
        needed.update(needed_libraries(extension))
    return needed


def prepare(cache=None, compiler="gcc"):
    """Call before torchvision is first imported. Returns the libraries it loaded ([] when none was needed)."""
    missing = missing_torch_cuda_libraries()
    if not missing:
        return []  # no torchvision, a CPU build of torchvision, or a CUDA build of torch: nothing to do
    tv_dir = Path(importlib.util.find_spec("torchvision").origin).parent
    try:
        loaded = []
        for name in sorted(n for n in _torchvision_needs(tv_dir) if n.startswith("libcudart.so")):
            bundled = sorted((tv_dir.parent / "torchvision.libs").glob("libcudart*.so*"))
            if not bundled:
                raise OSError(f"torchvision needs {name} but its wheel bundles no CUDA runtime")
            loaded.append(bundled[0])
        loaded += build_stub_libraries(missing, cache, compiler)
        for path in loaded:
            ctypes.CDLL(str(path))  # RTLD_LOCAL: found by SONAME, adds no global names
    except OSError as exc:
        sys.meta_path.insert(0, _Unavailable(str(exc)))
        return []
    return loaded
