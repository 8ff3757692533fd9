"""The studies cannot rot: every command in studies/*.md parses, and runs in a reduced form.

Each study file's ```bash blocks hold its commands, one per line (a trailing ``\\`` joins lines,
``#`` starts a comment): ``python studies/make_standins.py ...`` (the stand-in data) and
``minidl ...``. The commands of one file run in order, in one temporary folder (they refer to
``data/...`` and ``runs/...`` relative to it, as the study files say), in this process through
``minidl.cli.main``, rewritten so that each takes seconds (the rewrite, ``reduce``):

* ``make_standins.py``: 16x16 images, 5 per class (``waste``, ``digits``), ``--scale 0.02`` (``xray``);
* ``minidl train`` / ``sweep``: ``--epochs 1 --image-size 16``; a sweep keeps the first two values
  of each comma list;
* ``minidl lr-find``: ``--steps 4 --image-size 16``; ``minidl evaluate`` as written (it takes the
  checkpoint's image side);
* ``minidl detect train``: 2 scenes of 128x96, one epoch, batch 2, one classifier epoch, no drawings;
  ``detect eval`` the same scenes; ``detect heatmap synthetic``: 4 scenes.

A command without a rule fails the test, so a new kind of command gets one. Every original
(unreduced) command must also parse with minidl's own parser: a renamed option or command fails.
The ```sh blocks hold the commands for the real data (which is not here): those are parsed, not run.
"""
import csv
import glob
import os
import re
import shlex
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
STUDIES = ROOT / "studies"
STUDY_FILES = ("traffic_signs.md", "waste_transfer.md", "xray.md")
BLOCK = r"^```{}\n(.*?)^```"
MAKER = "studies/make_standins.py"


def study_commands(name, info="bash"):
    """The commands (argv lists) of a study file's ```bash (or ``info``) blocks, in order."""
    text = (STUDIES / name).read_text(encoding="utf-8")
    commands = []
    for block in re.findall(BLOCK.format(info), text, re.MULTILINE | re.DOTALL):
        for line in block.replace("\\\n", " ").split("\n"):
            argv = shlex.split(line, comments=True)
            if not argv:
                continue
            if argv[0] == "minidl" or argv[:2] == ["python", MAKER]:
                commands.append(argv)
            else:
                raise AssertionError(f"{name}: a {info} block line that is neither minidl nor {MAKER}: {line!r}")
    return commands


def _set(argv, option, value=None):
    """``argv`` with ``option`` (and its value) replaced, or appended when absent."""
    out, i = [], 0
    while i < len(argv):
        if argv[i] == option:
            i += 1 if value is None else 2
            continue
        out.append(argv[i])
        i += 1
    return out + ([option] if value is None else [option, value])


def _two_values(argv):
    """A sweep's comma lists cut to their first two values."""
    return [",".join(a.split(",")[:2]) if not a.startswith("-") and "," in a else a for a in argv]


def reduce(argv):
    """The reduced form of one study command (see the module docstring)."""
    if argv[0] == "python":
        args = argv[2:]
        args = _set(args, "--size", "16")
        if args[0] == "xray":
            return "maker", _set(args, "--scale", "0.02")
        return "maker", _set(args, "--per-class", "5")
    cmd, args = argv[1], argv[1:]
    if cmd in ("train", "sweep"):
        args = _set(_set(args, "--epochs", "1"), "--image-size", "16")
        return cmd, _two_values(args) if cmd == "sweep" else args
    if cmd == "lr-find":
        return cmd, _set(_set(args, "--steps", "4"), "--image-size", "16")
    if cmd == "evaluate":  # no --image-size: evaluate reads the side from the checkpoint
        return cmd, args
    if cmd == "detect" and args[1] in ("train", "eval"):
        scenes = {"--n-train": "2", "--n-val": "2", "--image-size": "128x96", "--draw": "0"}
        if args[1] == "train":
            scenes.update({"--epochs": "1", "--batch-size": "2", "--classifier-epochs": "1"})
        for option, value in scenes.items():
            args = _set(args, option, value)
        return cmd, args
    if cmd == "detect" and args[1] == "heatmap" and args[2] == "synthetic":
        return cmd, _set(args, "--n", "4")
    raise AssertionError(f"no reduced form for {shlex.join(argv)}: add a rule to tests/test_studies.py")


def _maker():
    sys.path.insert(0, str(STUDIES))
    try:
        import make_standins
    finally:
        sys.path.remove(str(STUDIES))
    return make_standins


@pytest.mark.parametrize("name", STUDY_FILES)
def test_every_study_command_parses(name):
    from minidl.cli import build_parser

    commands = study_commands(name)
    assert sum(argv[0] == "minidl" for argv in commands) >= 3, f"{name} has too few minidl commands"
    commands += study_commands(name, "sh")  # the real-data commands: parsed, not run
    parser = build_parser()
    for argv in commands:
        if argv[0] == "minidl":
            try:
                parser.parse_args(argv[1:])
            except SystemExit as err:
                raise AssertionError(f"{name}: `{shlex.join(argv)}` does not parse") from err
            if argv[1] == "sweep":  # sweep hands its options on to train's parser
                from minidl.cli.sweep import _train_parser, parse_grid

                parse_grid(argv[3:argv.index("--out")] + argv[argv.index("--out") + 2:], _train_parser())
        else:
            _maker().main.__code__  # the maker is importable
            assert argv[2] in ("waste", "xray", "digits"), f"{name}: unknown stand-in {argv[2]!r}"


def run_study(name, tmp_path, monkeypatch, capsys, upto=None):
    """Run the reduced commands of one study file in ``tmp_path`` (with ``upto``: only its first
    ``upto`` minidl commands, and the stand-in makers before them); returns each command's output."""
    from minidl.cli import main

    monkeypatch.chdir(tmp_path)
    printed, ran = [], 0
    for argv in study_commands(name):
        kind, args = reduce(argv)
        if kind == "maker":
            _maker().main(args)
        else:
            if upto is not None and ran == upto:
                break
            rc = main(args)
            ran += 1
            assert rc == 0, f"{name}: `minidl {shlex.join(args)}` exited {rc}:\n{capsys.readouterr()}"
        out = capsys.readouterr().out
        printed.append(out)
        if kind == "sweep":  # a run that failed is a row of the table, not an exit code
            out_dir = args[args.index("--out") + 1]
            with open(os.path.join(out_dir, "results.csv"), newline="") as f:
                rows = list(csv.DictReader(f))
            assert rows and all(r["status"] == "ok" for r in rows), f"{name}: sweep rows {rows}"
    return printed


# the default run: each study's first commands (seconds); the whole of each file: marked slow

def test_traffic_signs_heatmap_runs(tmp_path, monkeypatch, capsys):
    out = "\n".join(run_study("traffic_signs.md", tmp_path, monkeypatch, capsys, upto=1))
    assert "ground-truth boxes in 4" in out and os.path.isfile(tmp_path / "runs" / "heatmap.png")


def test_waste_transfer_pretrain_and_lr_find_run(tmp_path, monkeypatch, capsys):
    out = "\n".join(run_study("waste_transfer.md", tmp_path, monkeypatch, capsys, upto=2))
    assert "head replaced by a new 20-class one" in out  # the 10 stand-in classes -> the 20 of the seed
    assert "froze 72 of 141 layers" in out  # the seed's 80 Keras layers of MobileNet v2
    assert "suggested lr" in out


def test_xray_study_runs(tmp_path, monkeypatch, capsys):
    outs = run_study("xray.md", tmp_path, monkeypatch, capsys)
    evaluate = outs[-1]  # minidl evaluate --top-k 1,2: the seed's pair, for 3 classes
    assert "top-1 accuracy" in evaluate and "top-2 accuracy" in evaluate and "top-5" not in evaluate
    assert "AUROC" in evaluate and "PNEUMONIA" in evaluate
    assert "balance: WeightedRandomSampler" in "\n".join(outs)
    assert os.path.isfile(tmp_path / "runs" / "xray" / "confusion_matrix.png")


@pytest.mark.slow
def test_traffic_signs_study_runs(tmp_path, monkeypatch, capsys):
    out = "\n".join(run_study("traffic_signs.md", tmp_path, monkeypatch, capsys))
    assert "preset seed" in out and "| full pipeline |" in out and "| without gate |" in out
    assert "training the gate classifier (MobileNet v2 x0.5)" in out


@pytest.mark.slow
def test_waste_transfer_study_runs(tmp_path, monkeypatch, capsys):
    out = "\n".join(run_study("waste_transfer.md", tmp_path, monkeypatch, capsys))
    assert "froze 50 of 158 layers" in out  # ResNeXt-50, every call of a leaf module
    assert len(glob.glob(str(tmp_path / "runs" / "waste_*" / "results.md"))) == 2
