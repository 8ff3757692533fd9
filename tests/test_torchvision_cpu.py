"""The tests' way of loading PyPI's CUDA build of torchvision next to the CPU build of torch
(tests/_torchvision_cpu.py): its CPU ops run, the stand-ins for torch's CUDA libraries stop the process
with their name if anything ever calls them, and without a compiler the comparisons skip, not error."""
import ctypes
import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import _torchvision_cpu

HERE = Path(__file__).parent


def _needs_stand_ins():
    if not _torchvision_cpu.missing_torch_cuda_libraries():
        pytest.skip("the installed torch and torchvision need no stand-ins (no torchvision, or matching builds)")


def test_needed_libraries_reads_torchvision_dependencies():
    spec = importlib.util.find_spec("torchvision")
    if spec is None:
        pytest.skip("torchvision is not installed")
    extension = next(Path(spec.origin).parent.glob("_C*.so"))
    needed = _torchvision_cpu.needed_libraries(extension)
    assert {"libc10.so", "libtorch_cpu.so"} <= set(needed)  # every build of torchvision links torch's CPU half
    assert len(needed) == len(set(needed)) and all(name.startswith("lib") or "ld-linux" in name for name in needed)


def test_torchvision_compiled_ops_are_registered():
    torch = pytest.importorskip("torch")
    torchvision = pytest.importorskip("torchvision")
    assert torchvision.extension._has_ops()
    for op in ("nms", "roi_align", "roi_pool"):
        assert hasattr(torch.ops.torchvision, op), op


def test_stand_in_aborts_with_the_function_name(tmp_path):
    if shutil.which("gcc") is None:
        pytest.skip("no gcc")
    path, = _torchvision_cpu.build_stub_libraries(["libc10_cuda.so"], cache=tmp_path)
    lib = ctypes.CDLL(str(path))
    assert ctypes.c_void_p.in_dll(lib, "_ZN3c104cuda20CUDACachingAllocator9allocatorE").value is None  # zero
    code = f"import ctypes; ctypes.CDLL({str(path)!r})._ZN3c104cuda9SetDeviceEab(0, 0); print('returned')"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0 and "returned" not in proc.stdout
    assert "torchvision called c10::cuda::SetDevice(signed char, bool)" in proc.stderr


def test_without_a_compiler_the_comparisons_skip(tmp_path):
    _needs_stand_ins()
    code = (
        "import pytest, _torchvision_cpu\n"
        f"assert _torchvision_cpu.prepare(cache={str(tmp_path)!r}, compiler='no-such-cc') == []\n"
        "try:\n"
        "    pytest.importorskip('torchvision')\n"
        "except pytest.skip.Exception as exc:\n"
        "    print('SKIP', exc)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=HERE)
    assert proc.returncode == 0, proc.stderr
    assert "SKIP" in proc.stdout and "no C compiler (no-such-cc)" in proc.stdout
    assert not any(tmp_path.iterdir())  # nothing half-built left behind
