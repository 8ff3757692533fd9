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
