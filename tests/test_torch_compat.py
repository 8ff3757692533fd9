"""docs/pytorch-compat.md is generated from torch and minidl by scripts/torch_compat.py: it must be current."""
import importlib.util
import pathlib
import re

import pytest

torch = pytest.importorskip("torch")

ROOT = pathlib.Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "torch_compat.py"
TABLE = ROOT / "docs" / "pytorch-compat.md"


def _load_script():
    spec = importlib.util.spec_from_file_location("torch_compat", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_compat_table_is_current():
    written_for = re.search(r"from torch ([0-9.]+)", TABLE.read_text()).group(1)
    if torch.__version__.split("+")[0] != written_for:
        pytest.skip(f"the table was generated with torch {written_for}, this is {torch.__version__}")
    compat = _load_script()
    assert compat.render(compat.survey()) == TABLE.read_text(), \
        "docs/pytorch-compat.md is out of date: run python scripts/torch_compat.py"


def test_present_names_exist_and_missing_names_do_not():
    compat = _load_script()
    import minidl.nn.functional as F

    rows = {title: (present, missing) for title, _, present, missing, _ in compat.survey()}
    present, missing = rows["torch.nn.functional"]
    assert "conv2d" in present and all(hasattr(F, n) for n in present)
    assert not any(hasattr(F, n) for n in missing)
