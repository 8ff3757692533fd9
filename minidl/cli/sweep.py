"""``minidl sweep MODEL --lr 1e-2,1e-3 --freeze 0,50 ... --out DIR``: a grid of ``minidl train`` runs.

Examples::

    minidl sweep mlp --lr 0.1,0.03,0.01 --epochs 3 --out runs/lr_sweep
    minidl sweep resnext50_32x4d --dataset waste/ --weights IMAGENET1K_V1 \\
        --lr 1e-3,3e-4,1e-4 --freeze 20,50,80,110,150 --epochs 10 --out runs/garbage   # the seed's tables 3-5

Every ``minidl train`` option can be swept: a value with commas is an axis of the grid, the
runs are every combination (in command-line order, the last axis changing fastest), the
other options are passed to every run unchanged. Each run is ``minidl train``'s own
function, called in this process with the parsed options; its output goes to
``DIR/runs/<run>.log`` and its row to ``DIR/runs/<run>.json``. After every run the sweep
writes ``DIR/results.csv``, ``DIR/results.md`` and ``DIR/results.png`` (a heat map of
``--metric`` when exactly two options are swept, else a bar chart).

Resumable: a run whose row is in ``DIR/runs/`` (same model and options) is not repeated, so
after an interruption the same command continues with the runs not yet finished. A run that
diverges (a non-finite loss, as a too-large learning rate gives) is recorded as
``diverged``, one whose options cannot run (``--freeze`` past the model's last layer) as
``error: ...``, and the sweep goes on.
"""
from __future__ import annotations

import argparse
import contextlib
import csv
import hashlib
import itertools
import json
import os
import re
import sys
import time

from . import UsageError, _Parser
from .preflight import check_writable_folder, make_folder

COLUMNS = ("final_val_loss", "final_val_acc", "best_val_loss", "best_val_acc", "best_epoch", "test_acc",
           "epochs", "time_s", "status")
METRICS = ("best_val_acc", "final_val_acc", "test_acc", "best_val_loss", "final_val_loss")
# options a sweep sets for every run itself, or that would make the runs write over each other
_REFUSED = {"--checkpoint": "runs keep no checkpoints (their rows and logs are in DIR/runs/)",
            "--resume": "the sweep itself resumes: rerun the same command",
            "--plot": "the sweep plots its results in DIR/results.png"}


def _sweep_options(p):
    p.add_argument("--out", metavar="DIR", help="folder of the results (required): results.csv, results.md, "
                                                "results.png and runs/ (one .json and .log per run)")
    p.add_argument("--metric", choices=METRICS, default="best_val_acc",
                   help="the value of the heat map or bars (default best_val_acc)")


def add_parser(subparsers, command):
    p = subparsers.add_parser(
        "sweep", help="grid of minidl train runs (comma lists), one results table, resumable",
        description="Run minidl train over a grid: every train option given as a comma list (--lr 1e-2,1e-3 "
                    "--freeze 0,50) is an axis, every combination is one run. Writes DIR/results.csv and "
                    "DIR/results.md (one row per run: its options, final and best validation loss and accuracy, "
                    "the best epoch, test accuracy, seconds) and DIR/results.png (heat map of --metric for two "
                    "swept options, else bars). Options without a value (--augment) and single values go to every "
                    "run; for --freeze-by prefix, join prefixes with '+'. Each run calls minidl train's own "
                    "function in this process; its output is in DIR/runs/<run>.log. Rerunning the same command "
                    "skips finished runs (their rows are in DIR/runs/). A diverged run (non-finite loss) or one "
                    "that cannot run (--freeze past the model's last layer) is recorded as such and the sweep "
                    "goes on.",
        epilog="examples:\n  minidl sweep mlp --lr 0.1,0.03 --epochs 3 --out runs/lr\n"
               "  minidl sweep mobilenet_v2 --dataset waste/ --weights IMAGENET1K_V1 --lr 1e-3,1e-4 "
               "--freeze 50,80,110 --out runs/waste",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", help="model name (see `minidl models`)")
    _sweep_options(p)
    p.add_argument("train_options", nargs=argparse.REMAINDER, metavar="TRAIN OPTIONS",
                   help="minidl train's options (see `minidl train --help`); a value with commas is swept")
    p.set_defaults(handler=run_sweep)


# --------------------------------------------------------------------------------------
# the grid
# --------------------------------------------------------------------------------------

def _train_parser():
    from . import train

    root = _Parser(prog="minidl")
    train.add_parser(root.add_subparsers(), "train")
    return root._subparsers._group_actions[0].choices["train"]


_LIST_VALUED = ("--augment",)  # options whose one value is a comma list


def parse_grid(tokens, train_parser):
    """``(fixed tokens, axes)`` from train options: ``axes`` is ``[(option, [values...]), ...]`` for each
    option whose value holds commas; options given without a value are fixed. ``--augment``'s value
    is itself a comma list (``flip,rotate=15``): its sweep values are separated by ``|`` instead
    (``--augment "light|standard"``)."""
    fixed, axes, i = [], [], 0
    while i < len(tokens):
        token = tokens[i]
        option, eq, value = token.partition("=")
        if not option.startswith("--"):
            raise UsageError(f"sweep: expected a minidl train option, got {token!r}")
        action = train_parser._option_string_actions.get(option)
        if action is None or option in ("-h", "--help"):
            raise UsageError(f"sweep: {option} is not a minidl train option (see `minidl train --help`)")
        if option in _REFUSED:
            raise UsageError(f"sweep: {option} is not allowed: {_REFUSED[option]}")
        bare = action.nargs == "?" and not eq and (i + 1 >= len(tokens) or tokens[i + 1].startswith("--"))
        if action.nargs == 0 or bare:
            fixed.append(option)
            i += 1
            continue
        if not eq:
            if i + 1 >= len(tokens):
                raise UsageError(f"sweep: {option} needs a value")
            value, i = tokens[i + 1], i + 1
        i += 1
        values = [v.strip() for v in value.split("|" if option in _LIST_VALUED else ",")]
        if any(not v for v in values):
            raise UsageError(f"sweep: {option} {value!r} has an empty value in its comma list")
        if any(name == option for name, _ in axes) or option in fixed:
            raise UsageError(f"sweep: {option} is given twice")
        if len(values) > 1:
            axes.append((option, values))
        else:
            fixed += [option, values[0]]
    return fixed, axes


def _run_name(combo, key):
    """A file name for a run: its swept values, readable, plus a hash of its whole command line."""
    readable = ",".join(f"{option.lstrip('-')}={value}" for option, value in combo) or "run"
    readable = re.sub(r"[^A-Za-z0-9=.,+_-]", "_", readable)[:80]
    return f"{readable}-{hashlib.sha1(key.encode()).hexdigest()[:8]}"


# --------------------------------------------------------------------------------------
# one run
# --------------------------------------------------------------------------------------

def _row(history, test_acc, seconds, status):
    """The result columns of one run from its epochs' rows."""
    row = dict.fromkeys(COLUMNS)
    row.update(epochs=len(history), time_s=round(seconds, 2), status=status, test_acc=test_acc)
    monitored = [r for r in history if r.get("val_acc") is not None]
    if monitored:
        row["final_val_loss"], row["final_val_acc"] = monitored[-1]["val_loss"], monitored[-1]["val_acc"]
        best = max(monitored, key=lambda r: r["val_acc"])
        row["best_val_acc"], row["best_epoch"] = best["val_acc"], best["epoch"]
        row["best_val_loss"] = min(r["val_loss"] for r in monitored)
    return row


def _run_one(train_parser, argv, log_path):
    """Run ``minidl train`` (its function, this process) on ``argv``; returns the result columns."""
    from minidl.train import NonFiniteLossError

    from . import _describe

    args = train_parser.parse_args(argv)
    args.debug = False
    start = time.perf_counter()
    status, history, test_acc = "ok", [], None
    with open(log_path, "w", encoding="utf-8") as log, contextlib.redirect_stdout(log):
        try:
            args.handler(args)
            history, test_acc = args.results["history"], args.results["test_acc"]
        except (NonFiniteLossError, FloatingPointError) as err:  # a too-large lr: a result, not a failure
            print(f"diverged: {err}")
            status = "diverged"
        except (UsageError, ValueError) as err:  # this combination cannot run (--freeze past the last layer)
            status = f"error: {_describe(err)}"
            print(status)
    return _row(history, test_acc, time.perf_counter() - start, status)


# --------------------------------------------------------------------------------------
# minidl sweep
# --------------------------------------------------------------------------------------

def run_sweep(args):
    own = _Parser(prog="minidl sweep", add_help=False)
    _sweep_options(own)
    own.set_defaults(out=None, metric=None)
    late, tokens = own.parse_known_args(args.train_options)  # --out/--metric given after MODEL
    out, metric = late.out or args.out, late.metric or args.metric
    if not out:
        raise UsageError("sweep needs --out DIR (the folder of the results; rerun with it to resume)")
    if "--quiet" in tokens:
        tokens = [t for t in tokens if t != "--quiet"]
    train_parser = _train_parser()
    fixed, axes = parse_grid(tokens, train_parser)
    names = [option for option, _ in axes]
    combos = [list(zip(names, values)) for values in itertools.product(*(v for _, v in axes))]
    runs = []
    for combo in combos:
        argv = [args.model, *fixed, *(t for pair in combo for t in pair), "--quiet"]
        train_parser.parse_args(argv)  # every run's options are checked before the first run starts
        key = json.dumps(argv)
        runs.append((combo, argv, key, _run_name(combo, key)))
    check_writable_folder(out, "--out")
    make_folder(os.path.join(out, "runs"), "--out")
    done = _finished(os.path.join(out, "runs"))
    todo = [run for run in runs if run[2] not in done]
    print(f"sweep of {args.model}: {len(runs)} runs ({' x '.join(f'{len(v)} {o}' for o, v in axes) or 'no axis'})"
          f", {len(runs) - len(todo)} already in {out}, {len(todo)} to run", flush=True)
    for number, (combo, argv, key, name) in enumerate(todo, 1):
        label = " ".join(f"{option} {value}" for option, value in combo) or "(no swept option)"
        print(f"[{number}/{len(todo)}] {label} ...", end=" ", flush=True)
        row = _run_one(train_parser, argv, os.path.join(out, "runs", name + ".log"))
        record = {"argv": argv, "options": {option.lstrip("-"): value for option, value in combo}, "result": row}
        _write_json(os.path.join(out, "runs", name + ".json"), record)
        done[key] = record
        shown = row[metric] if row[metric] is not None else float("nan")
        print(f"{row['status']}, {metric} {shown:.4f}, {row['time_s']:.1f} s", flush=True)
        _write_results(out, args.model, runs, done, names, metric)
    paths = _write_results(out, args.model, runs, done, names, metric)
    print(_markdown(runs, done, names))
    print("wrote " + ", ".join(paths))
    return 0


def _finished(folder):
    """Rows of the finished runs in ``folder``, keyed by their command line."""
    done = {}
    for name in sorted(os.listdir(folder)):
        if name.endswith(".json"):
            try:
                with open(os.path.join(folder, name), encoding="utf-8") as f:
                    record = json.load(f)
                done[json.dumps(record["argv"])] = record
            except (OSError, ValueError, KeyError):  # a row cut short by an interruption: run it again
                continue
    return done


def _write_json(path, record):
    """Write ``record`` to ``path`` whole or not at all (a temporary file, then a rename)."""
    with open(path + ".tmp", "w", encoding="utf-8") as f:
        json.dump(record, f, indent=1)
    os.replace(path + ".tmp", path)


# --------------------------------------------------------------------------------------
# results: CSV, Markdown, heat map or bars
# --------------------------------------------------------------------------------------

def _table(runs, done, names):
    """Header and rows (in grid order) of the finished runs."""
    header = ["run"] + [n.lstrip("-") for n in names] + list(COLUMNS)
    rows = []
    for number, (combo, _, key, _) in enumerate(runs, 1):
        if key in done:
            rows.append([number] + [value for _, value in combo] + [done[key]["result"][c] for c in COLUMNS])
    return header, rows


def _cell(value):
    if value is None:
        return ""
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _markdown(runs, done, names):
    header, rows = _table(runs, done, names)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def _write_results(out, model, runs, done, names, metric):
    header, rows = _table(runs, done, names)
    csv_path, md_path, png_path = (os.path.join(out, f"results.{ext}") for ext in ("csv", "md", "png"))
    with open(csv_path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows([["" if v is None else v for v in row] for row in rows])
    with open(md_path, "w", encoding="utf-8") as f:
        f.write(f"# minidl sweep {model}\n\n{_markdown(runs, done, names)}\n")
    _plot(png_path, model, runs, done, names, metric)
    return [csv_path, md_path, png_path]


def _plot(path, model, runs, done, names, metric):
    """A heat map of ``metric`` over two swept options, else one bar per finished run."""
    import numpy as np
    from minidl.plot import _pyplot, _save

    plt = _pyplot()
    value = {key: done[key]["result"][metric] for _, _, key, _ in runs if key in done}
    if len(names) == 2:
        rows_axis = list(dict.fromkeys(combo[0][1] for combo, *_ in runs))
        cols_axis = list(dict.fromkeys(combo[1][1] for combo, *_ in runs))
        grid = np.full((len(rows_axis), len(cols_axis)), np.nan)
        for combo, _, key, _ in runs:
            if value.get(key) is not None:
                grid[rows_axis.index(combo[0][1]), cols_axis.index(combo[1][1])] = value[key]
        fig, ax = plt.subplots(figsize=(1.2 * len(cols_axis) + 2.5, 0.8 * len(rows_axis) + 2))
        image = ax.imshow(grid, cmap="viridis_r" if "loss" in metric else "viridis", aspect="auto")
        fig.colorbar(image, ax=ax, label=metric)
        ax.set_xticks(range(len(cols_axis)), cols_axis)
        ax.set_yticks(range(len(rows_axis)), rows_axis)
        ax.set_xlabel(names[1])
        ax.set_ylabel(names[0])
        middle = np.nanmean(grid) if np.isfinite(grid).any() else 0.0
        for (i, j), v in np.ndenumerate(grid):  # dark text on the light half of the colour map
            light = v > middle if "loss" not in metric else v < middle
            ax.text(j, i, "-" if np.isnan(v) else f"{v:.3f}", ha="center", va="center", color="k" if light else "w")
    else:
        shown = [(combo, key) for combo, _, key, _ in runs if key in done]
        labels = [" ".join(f"{o.lstrip('-')}={v}" for o, v in combo) or "run" for combo, _ in shown]
        heights = [np.nan if value[key] is None else value[key] for _, key in shown]
        fig, ax = plt.subplots(figsize=(max(4.0, 0.6 * len(shown) + 2), 4))
        ax.bar(range(len(shown)), heights, color="C0")
        ax.set_xticks(range(len(shown)), labels, rotation=45, ha="right")
        ax.set_ylabel(metric)
    ax.set_title(f"minidl sweep {model}: {metric}")
    return _save(fig, path)


if __name__ == "__main__":  # pragma: no cover
    from minidl.cli import main

    sys.exit(main(["sweep", *sys.argv[1:]]))
