"""Draw the figures of the chapters in docs/ into docs/figures/.

Every module in docs/figures_src/*.py has a ``make(outdir)`` function that writes its own PNGs
into ``outdir`` (small ones: dpi about 90, under 80 KB). This script imports each module and
calls it, with matplotlib's Agg backend (matplotlib is the ``plot`` extra):

    python docs/make_figures.py                 # every module, into docs/figures/
    python docs/make_figures.py pooling conv    # only these modules
    python docs/make_figures.py --outdir /tmp/f # somewhere else

The PNGs are committed; tests/test_docs.py checks that every figure a chapter names exists.
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
SOURCES = DOCS / "figures_src"


def figure_modules(names=None):
    """The figure modules of docs/figures_src (all, or those named), imported from their files."""
    paths = sorted(p for p in SOURCES.glob("*.py") if not p.name.startswith("_"))
    if names:
        known = {p.stem for p in paths}
        unknown = sorted(set(names) - known)
        if unknown:
            raise SystemExit(f"make_figures: no module {unknown} in {SOURCES}; known: {sorted(known)}")
        paths = [p for p in paths if p.stem in names]
    modules = []
    for path in paths:
        spec = importlib.util.spec_from_file_location(f"docs_figures_{path.stem}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        if not callable(getattr(module, "make", None)):
            raise SystemExit(f"make_figures: {path} has no make(outdir) function")
        modules.append(module)
    return modules


def make_figures(outdir=DOCS / "figures", names=None):
    """Call every figure module's make(outdir); return the sorted PNG names now in outdir."""
    os.environ.setdefault("MPLBACKEND", "Agg")
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    for module in figure_modules(names):
        module.make(outdir)
        plt.close("all")
    return sorted(p.name for p in outdir.glob("*.png"))


def main(argv=None):
    parser = argparse.ArgumentParser(description="Draw docs/figures/*.png from docs/figures_src/*.py.")
    parser.add_argument("modules", nargs="*", help="module names in docs/figures_src (default: all)")
    parser.add_argument("--outdir", default=str(DOCS / "figures"))
    args = parser.parse_args(argv)
    sys.path.insert(0, str(DOCS.parent))
    for name in make_figures(args.outdir, args.modules):
        size = (Path(args.outdir) / name).stat().st_size
        print(f"{name}: {size / 1024:.0f} KB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
