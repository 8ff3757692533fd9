"""The deep-dive chapters keep the shape issue 18 asks of them (tests/test_docs.py runs their code).

For the chapters on softmax/cross-entropy, optimizers, detection operators, layer norm,
attention and recurrent layers: a picture drawn by docs/figures_src/<chapter>.py, a
gradcheck (or, for optimizers, a hand check) whose printed result is shown, included source
instead of copied code, pitfalls, and a closing "Try it" section naming a command and the
reference code, whose paths exist. The architectures tour and the exercises hold their own
numbers: every table there is printed by a python block, so it has a text block after it.
"""
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
DEEP_DIVES = ["softmax_cross_entropy", "optimizers", "detection_ops", "layer_norm", "attention", "recurrent"]
TOURS = ["architectures", "exercises"]
FENCE = re.compile(r"^```(\S*)\s*$", re.MULTILINE)


def _blocks(text):
    """(info, body) of every fenced block, in order."""
    out, pos = [], 0
    while True:
        start = FENCE.search(text, pos)
        if start is None:
            return out
        end = text.index("\n```", start.end())
        out.append((start.group(1), text[start.end() + 1:end]))
        pos = text.index("\n", end + 1) if "\n" in text[end + 1:] else len(text)


def _sections(text):
    return re.findall(r"^## (.+)$", text, re.MULTILINE)


@pytest.mark.parametrize("name", DEEP_DIVES)
def test_deep_dive_has_every_part(name):
    text = (DOCS / f"{name}.md").read_text()
    sections = [s.lower() for s in _sections(text)]
    assert sections[-1] == "try it", f"{name}.md must end with a 'Try it' section, ends with {sections[-1]!r}"
    assert any("pitfall" in s for s in sections), f"{name}.md has no pitfalls section"
    assert any("backward" in s or "where the formulas come from" in s for s in sections), name
    assert re.search(r"!\[[^\]]+\]\(figures/[\w.-]+\.png\)", text), f"{name}.md shows no figure"
    assert (DOCS / "figures_src" / f"{name}.py").is_file(), f"{name}.md's figure has no docs/figures_src/{name}.py"
    assert "<!-- include: " in text and "```python-include" in text, f"{name}.md includes no source"
    code = "\n".join(body for info, body in _blocks(text) if info == "python")
    assert "gradcheck(" in code, f"{name}.md runs no gradcheck"


@pytest.mark.parametrize("name", DEEP_DIVES + TOURS)
def test_try_it_names_a_command_and_existing_code(name):
    text = (DOCS / f"{name}.md").read_text()
    try_it = text[text.index("## Try it"):]
    commands = [body for info, body in _blocks(try_it) if info == "bash"]
    assert commands and all(line.startswith("minidl ") for body in commands for line in body.splitlines()), name
    links = re.findall(r"\]\(\.\./([^)#\s]+)\)", try_it)
    assert links, f"{name}.md's Try it links no code"
    for link in links:
        assert (ROOT / link).exists(), f"{name}.md links ../{link}, which does not exist"


@pytest.mark.parametrize("name", TOURS)
def test_tour_numbers_are_printed_by_code(name):
    """Every python block that prints is followed by the text block it printed (nothing typed by hand)."""
    blocks = _blocks((DOCS / f"{name}.md").read_text())
    printing = [i for i, (info, body) in enumerate(blocks) if info == "python" and "print(" in body]
    assert len(printing) >= 5
    for i in printing:
        assert i + 1 < len(blocks) and blocks[i + 1][0] == "text", f"{name}.md: a printing block has no output shown"
        assert blocks[i + 1][1].strip(), f"{name}.md: an empty output block"


def test_architecture_table_covers_the_tour():
    text = (DOCS / "architectures.md").read_text()
    for model in ("lenet5", "alexnet", "vgg16", "googlenet", "resnet50", "mobilenet_v2", "efficientnet_b0"):
        assert re.search(rf"^{model}\s+\S+\s+[\d,]+\s+[\d,]+\s+equal$", text, re.MULTILINE), (
            f"architectures.md's table has no row for {model} matching its published parameter count")
