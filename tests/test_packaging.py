"""The wheel ships every package and data file: `pip install .` (not editable) must work as the README says."""
import os
import tomllib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FOLDERS = {"minidl": "minidl", "minidl.kernels": "kernels", "minidl.models": "models", "minidl.datasets": "datasets"}


def _config():
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        return tomllib.load(f)["tool"]["setuptools"]


def test_every_package_folder_is_listed():
    listed = set(_config()["packages"])
    found = set()
    for package, folder in FOLDERS.items():
        for dirpath, _, files in os.walk(os.path.join(ROOT, folder)):
            if "__init__.py" in files and "__pycache__" not in dirpath:
                rel = os.path.relpath(dirpath, os.path.join(ROOT, folder))
                found.add(package if rel == "." else package + "." + rel.replace(os.sep, "."))
    assert found <= listed, f"packages missing from pyproject.toml: {sorted(found - listed)}"


def test_data_files_are_shipped():
    data = _config()["package-data"]
    assert "data/*" in data["minidl.datasets"] and os.path.isfile(os.path.join(ROOT, "datasets", "data", "digits.npz"))
    assert "*.txt" in data["minidl.data"] and os.path.isfile(os.path.join(ROOT, "minidl", "data", "imagenet_classes.txt"))
    # the first-run kernel manifests read by minidl.compilation (a plain `pip install .` must ship them)
    assert "first_run/*.json" in data["minidl.kernels"]
    assert os.path.isfile(os.path.join(ROOT, "kernels", "first_run", "train-lenet5.json"))


def test_cuda_extras_pin_cupy_14_and_numba_cudas_own_toolkit_extras():
    """cupy.put_along_axis needs CuPy >= 14; plain `numba-cuda` installs no NVVM (issue 20, items 8-9)."""
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        extras = tomllib.load(f)["project"]["optional-dependencies"]
    for cuda in ("12", "13"):
        pins = extras[f"cuda{cuda}"]
        assert f"cupy-cuda{cuda}x>=14" in pins, pins
        numba_cuda = [p for p in pins if p.startswith("numba-cuda")]
        assert len(numba_cuda) == 1 and numba_cuda[0].startswith(f"numba-cuda[cu{cuda}]"), pins
