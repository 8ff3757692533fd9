"""Docs that cannot rot: every chapter in docs/ runs, prints what it says, and shows current code.

The conventions (docs/README.md, "How the chapters are checked"):

* every ```python block of a chapter runs, the blocks of one file in order in one fresh
  namespace, from the repository root, with matplotlib's Agg backend;
* a ```text block that directly follows a python block (only blank lines between) is that
  block's expected stdout, compared line by line (each line rstripped, trailing blank lines
  ignored);
* a chapter whose blocks import torch is skipped when torch is missing;
* every ```python-include block after an ``<!-- include: PATH[::NAME] -->`` line equals the
  current source (``python docs/make_docs.py`` rewrites them);
* every figure a chapter names exists in docs/figures/ and is under 80 KB;
* docs/README.md links every chapter, and relative links in the chapters point to files that exist.
"""
import contextlib
import importlib.util
import io
import os
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
FIGURE = re.compile(r"!\[[^\]]*\]\((figures/[^)\s]+)\)")
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s#]+)(?:#[^)]*)?\)")
USES_TORCH = re.compile(r"^\s*(import torch\b|from torch\b)", re.MULTILINE)
MAX_FIGURE_BYTES = 80 * 1024


def _load(name):
    spec = importlib.util.spec_from_file_location(f"docs_{name}", DOCS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


make_docs = _load("make_docs")
CHAPTERS = make_docs.chapters()
IDS = [p.name for p in CHAPTERS]


def runnable_blocks(text):
    """(line, code, expected stdout or None) for each ```python block, in order."""
    blocks = make_docs.fenced_blocks(text)
    lines = text.split("\n")
    out = []
    for i, b in enumerate(blocks):
        if b["info"] != "python":
            continue
        expected = None
        if i + 1 < len(blocks) and blocks[i + 1]["info"] == "text":
            between = lines[b["end"] + 1:blocks[i + 1]["start"]]
            if all(not s.strip() for s in between):
                expected = blocks[i + 1]["body"]
        out.append((b["start"] + 1, b["body"], expected))
    return out


def _normalise(text):
    lines = [line.rstrip() for line in text.split("\n")]
    while lines and not lines[-1]:
        lines.pop()
    return lines


def test_parser_pairs_outputs_and_finds_includes():
    text = "\n".join([
        "```python", "print(1 + 1)", "```", "", "```text", "2  ", "", "```",
        "```python", "x = 3", "```", "words", "```text", "not an output", "```",
        "<!-- include: docs/make_docs.py::source_of -->", "```python-include", "old", "```",
    ])
    blocks = runnable_blocks(text)
    assert [(line, expected) for line, _, expected in blocks] == [(1, "2  \n"), (9, None)]
    assert _normalise(blocks[0][2]) == ["2"]
    (inc,) = make_docs.includes(text)
    assert (inc["path"], inc["name"], inc["block"]["body"]) == ("docs/make_docs.py", "source_of", "old")
    new = make_docs.rewrite(text)
    assert make_docs.includes(new)[0]["block"]["body"].startswith("def source_of(path, name=None):")
    assert make_docs.rewrite(new) == new
    with pytest.raises(ValueError, match="line 1"):
        make_docs.fenced_blocks("```python\nprint(1)\n")


def test_source_of_reads_functions_methods_and_files():
    src = make_docs.source_of("kernels/reference/conv.py", "conv2d_forward")
    assert src.startswith("def conv2d_forward(") and src.rstrip().endswith("return y")
    import inspect
    import minidl.nn.module as module_file
    assert make_docs.source_of("minidl/nn/module.py", "Module.train") == inspect.getsource(
        module_file.Module.train).rstrip("\n")
    assert make_docs.source_of("docs/make_docs.py") == (DOCS / "make_docs.py").read_text().rstrip("\n")
    with pytest.raises(LookupError, match="no 'nothing_here'"):
        make_docs.source_of("kernels/reference/conv.py", "nothing_here")


@pytest.mark.parametrize("chapter", CHAPTERS, ids=IDS)
def test_chapter_runs_and_prints_what_it_shows(chapter, monkeypatch):
    blocks = runnable_blocks(chapter.read_text())
    if not blocks:
        pytest.skip(f"{chapter.name} has no python blocks")
    if any(USES_TORCH.search(code) for _, code, _ in blocks):
        pytest.importorskip("torch")
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    namespace = {"__name__": f"docs_{chapter.stem}"}
    for line, code, expected in blocks:
        stdout = io.StringIO()
        with contextlib.redirect_stdout(stdout):
            exec(compile(code, f"{chapter.relative_to(ROOT)}:{line}", "exec"), namespace)
        if expected is not None:
            assert _normalise(stdout.getvalue()) == _normalise(expected), (
                f"{chapter.name}: the python block at line {line} printed something else than the text block "
                f"after it; run the block and paste its output")
    try:
        import matplotlib.pyplot as plt
        plt.close("all")
    except ImportError:
        pass


@pytest.mark.parametrize("chapter", CHAPTERS, ids=IDS)
def test_included_code_is_current(chapter):
    for inc in make_docs.includes(chapter.read_text()):
        where = f"{chapter.name}:{inc['line'] + 1}"
        assert inc["block"] is not None, f"{where}: an include line must be followed directly by a ```python-include block"
        assert inc["block"]["body"] == make_docs.source_of(inc["path"], inc["name"]), (
            f"{where}: the included source of {inc['path']}::{inc['name']} changed; run python docs/make_docs.py")


@pytest.mark.parametrize("chapter", CHAPTERS, ids=IDS)
def test_figures_and_links_exist(chapter):
    text = chapter.read_text()
    for name in FIGURE.findall(text):
        path = DOCS / name
        assert path.is_file(), f"{chapter.name} shows {name}, which is missing: run python docs/make_figures.py"
        assert path.stat().st_size < MAX_FIGURE_BYTES, f"{name} is over 80 KB: draw it smaller (dpi ~90)"
    if chapter.name == "README.md":
        return  # the index may name chapters other helpers are still writing; see the next test
    for target in LINK.findall(text):
        if "://" in target or target.startswith("mailto:"):
            continue
        assert (chapter.parent / target).exists(), f"{chapter.name} links to {target}, which does not exist"


def test_index_lists_every_chapter():
    index = (DOCS / "README.md").read_text()
    linked = set(LINK.findall(index))
    missing = [p.name for p in CHAPTERS if p.name != "README.md" and p.name not in linked]
    assert not missing, f"docs/README.md does not link these chapters: {missing}"


def test_every_figure_module_has_make():
    pytest.importorskip("matplotlib")
    make_figures = _load("make_figures")
    modules = make_figures.figure_modules()
    assert all(callable(m.make) for m in modules)


@pytest.mark.slow
def test_make_figures_draws_the_committed_figures(tmp_path):
    pytest.importorskip("matplotlib")
    make_figures = _load("make_figures")
    drawn = make_figures.make_figures(tmp_path)
    committed = sorted(p.name for p in (DOCS / "figures").glob("*.png"))
    assert drawn == committed


def test_readme_points_students_to_the_docs_in_its_first_screen():
    readme = (ROOT / "README.md").read_text().split("\n")
    assert readme[2:6] == ["```", "pip install . && minidl train lenet5",
                           'pip install -e ".[test]" && python -m pytest -q', "```"]
    first_screen = "\n".join(readme[:25])
    for pointer in ("docs/README.md", "minidl explain", "kernels/reference/"):
        assert pointer in first_screen, f"README.md's first screen does not mention {pointer}"
