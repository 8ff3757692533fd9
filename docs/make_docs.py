"""Rewrite the included source blocks of the chapters in docs/ from the code they show.

A chapter includes reference code instead of copying it: a line

    <!-- include: kernels/reference/conv.py::conv2d_forward -->

directly followed by a ```python-include fenced block. The block holds the source of that
definition exactly as ``inspect.getsource`` returns it (decorators included, indentation kept);
``PATH`` alone includes the whole file and ``PATH::Class.method`` a method. Paths are relative
to the repository root.

    python docs/make_docs.py           # rewrite every stale block in place
    python docs/make_docs.py --check   # list the stale blocks, exit 1 if there are any

tests/test_docs.py uses the same parser (``fenced_blocks``, ``includes``, ``source_of``) to run
every ```python block and to check that the included blocks are up to date.
"""
from __future__ import annotations

import argparse
import ast
import re
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
INCLUDE = re.compile(r"^<!-- include: (?P<path>[^\s:]+)(?:::(?P<name>[\w.]+))? -->\s*$")
FENCE = re.compile(r"^```(?P<info>[\w+-]*)\s*$")


def chapters():
    """Every Markdown file directly in docs/, sorted by name."""
    return sorted(DOCS.glob("*.md"))


def fenced_blocks(text):
    """The fenced blocks of a Markdown text as dicts: info, body, start and end line (0-based, the fences).

    Only fences at the start of a line count; an unclosed fence raises ValueError with its line.
    """
    lines = text.split("\n")
    blocks, i = [], 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if m is None:
            i += 1
            continue
        end = i + 1
        while end < len(lines) and lines[end].rstrip() != "```":
            end += 1
        if end == len(lines):
            raise ValueError(f"unclosed ``` fence opened at line {i + 1}")
        blocks.append({"info": m.group("info"), "body": "\n".join(lines[i + 1:end]), "start": i, "end": end})
        i = end + 1
    return blocks


def source_of(path, name=None):
    """The text an include names: the whole file, or one definition's source (inspect.getsource's text).

    The definition is found by parsing the file (nothing is imported), so a name inside a
    Numba-compiled module is read the same way as any other.
    """
    file = ROOT / path
    if not file.is_file():
        raise FileNotFoundError(f"include: {path} does not exist (paths are relative to the repository root)")
    text = file.read_text()
    if name is None:
        return text.rstrip("\n")
    body = ast.parse(text).body
    node = None
    for part in name.split("."):
        found = [n for n in body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
                 and n.name == part]
        if not found:
            raise LookupError(f"include: {path} defines no {name!r} (no {part!r} at that level)")
        node = found[-1]  # the last definition wins, as at import time
        body = node.body
    first = min([node.lineno] + [d.lineno for d in node.decorator_list])
    return "\n".join(text.split("\n")[first - 1:node.end_lineno])


def includes(text):
    """Every include marker with the block after it: dicts path, name, marker line, block (or None if missing)."""
    lines = text.split("\n")
    by_start = {b["start"]: b for b in fenced_blocks(text)}
    found = []
    for i, line in enumerate(lines):
        m = INCLUDE.match(line)
        if m:
            block = by_start.get(i + 1)
            if block is not None and block["info"] != "python-include":
                block = None
            found.append({"path": m.group("path"), "name": m.group("name"), "line": i, "block": block})
    return found


def rewrite(text):
    """The text with every include block replaced by the current source (a missing block is inserted)."""
    lines = text.split("\n")
    for inc in reversed(includes(text)):  # from the end, so earlier line numbers stay valid
        new = ["```python-include", *source_of(inc["path"], inc["name"]).split("\n"), "```"]
        block = inc["block"]
        if block is None:
            lines[inc["line"] + 1:inc["line"] + 1] = new
        else:
            lines[block["start"]:block["end"] + 1] = new
    return "\n".join(lines)


def refresh_outputs(text):
    """The text with every ```text block that follows a ```python block replaced by what that block prints now.

    The blocks run in order in one namespace, from the repository root (as tests/test_docs.py runs
    them); use it after a change of printed format, then read the diff before committing."""
    import contextlib
    import io
    import os

    import matplotlib

    matplotlib.use("Agg")
    lines = text.split("\n")
    blocks = fenced_blocks(text)
    namespace = {"__name__": "__docs__"}
    replacements = []
    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        for i, b in enumerate(blocks):
            if b["info"] != "python":
                continue
            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                exec(compile(b["body"], "<docs>", "exec"), namespace)
            nxt = blocks[i + 1] if i + 1 < len(blocks) else None
            if nxt is not None and nxt["info"] == "text" and all(
                    not s.strip() for s in lines[b["end"] + 1:nxt["start"]]):
                replacements.append((nxt, [line.rstrip() for line in out.getvalue().rstrip("\n").split("\n")]))
    finally:
        os.chdir(cwd)
    for block, new in reversed(replacements):
        lines[block["start"] + 1:block["end"]] = new
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description="Rewrite the ```python-include blocks of docs/*.md from the source.")
    parser.add_argument("--check", action="store_true", help="only list stale chapters; exit 1 if any")
    parser.add_argument("--outputs", nargs="+", metavar="CHAPTER",
                        help="instead: rerun these chapters' python blocks and rewrite the text blocks after "
                             "them with what they print now (e.g. docs/architectures.md)")
    args = parser.parse_args(argv)
    if args.outputs:
        for name in args.outputs:
            chapter = Path(name) if Path(name).exists() else DOCS / Path(name).name
            chapter.write_text(refresh_outputs(chapter.read_text()))
            print(f"refreshed outputs: {chapter}")
        return 0
    stale = []
    for chapter in chapters():
        text = chapter.read_text()
        new = rewrite(text)
        if new != text:
            stale.append(chapter)
            if not args.check:
                chapter.write_text(new)
    verb = "stale" if args.check else "rewrote"
    for chapter in stale:
        print(f"{verb}: {chapter.relative_to(ROOT)}")
    if not stale:
        print("every include block is up to date")
    return 1 if (args.check and stale) else 0


if __name__ == "__main__":
    sys.exit(main())
