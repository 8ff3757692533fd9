"""``minidl sweep`` (issue 17, point 3): the grid, one row per run, CSV/Markdown/PNG, resuming."""
import csv
import json
import os

import pytest

from minidl.cli import UsageError, main
from minidl.cli import sweep

PNG = b"\x89PNG\r\n\x1a\n"


def test_parse_grid_splits_comma_lists_into_axes():
    parser = sweep._train_parser()
    fixed, axes = sweep.parse_grid(["--lr", "1e-2,1e-3", "--epochs", "1", "--augment", "--freeze=0,50,80",
                                    "--freeze-by", "layers"], parser)
    assert fixed == ["--epochs", "1", "--augment", "--freeze-by", "layers"]
    assert axes == [("--lr", ["1e-2", "1e-3"]), ("--freeze", ["0", "50", "80"])]
    # --augment's own value is a comma list: its sweep values are separated by "|"
    fixed, axes = sweep.parse_grid(["--augment", "light|flip,rotate=15", "--lr", "0.1"], parser)
    assert fixed == ["--lr", "0.1"] and axes == [("--augment", ["light", "flip,rotate=15"])]
    with pytest.raises(UsageError, match="--nope is not a minidl train option"):
        sweep.parse_grid(["--nope", "1"], parser)
    with pytest.raises(UsageError, match="--checkpoint is not allowed"):
        sweep.parse_grid(["--checkpoint", "x"], parser)
    with pytest.raises(UsageError, match="--lr is given twice"):
        sweep.parse_grid(["--lr", "1,2", "--lr", "3,4"], parser)


def _rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_sweep_runs_the_grid_and_resumes_after_an_interruption(tmp_path, capsys, monkeypatch):
    pytest.importorskip("matplotlib")
    out = tmp_path / "sweep"
    command = ["sweep", "mlp", "--lr", "0.1,0.02", "--freeze", "0,2", "--epochs", "1", "--out", str(out)]
    calls = []
    original = sweep._run_one

    def interrupted_after_two(*args):
        if len(calls) == 2:
            raise KeyboardInterrupt
        calls.append(args[1])
        return original(*args)

    monkeypatch.setattr(sweep, "_run_one", interrupted_after_two)
    assert main(command) == 130
    capsys.readouterr()
    assert len([n for n in os.listdir(out / "runs") if n.endswith(".json")]) == 2
    assert len(_rows(out / "results.csv")) == 2  # the table is written after every run

    monkeypatch.setattr(sweep, "_run_one", lambda *args: (calls.append(args[1]), original(*args))[1])
    assert main(command) == 0
    printed = capsys.readouterr().out
    assert "4 runs (2 --lr x 2 --freeze), 2 already in" in printed and "2 to run" in printed
    assert len(calls) == 4 and len({tuple(c) for c in calls}) == 4  # 2 + 2: no run repeated

    rows = _rows(out / "results.csv")
    assert [(r["run"], r["lr"], r["freeze"]) for r in rows] == [("1", "0.1", "0"), ("2", "0.1", "2"),
                                                                ("3", "0.02", "0"), ("4", "0.02", "2")]
    for row, argv in zip(rows, calls):
        assert row["status"] == "ok" and row["epochs"] == "1"
        assert 0 <= float(row["best_val_acc"]) <= 1 and float(row["final_val_loss"]) > 0
        record = json.load(open(out / "runs" / (sweep._run_name([("--lr", row["lr"]), ("--freeze", row["freeze"])],
                                                                 json.dumps(argv)) + ".json")))
        assert record["result"]["test_acc"] == pytest.approx(float(row["test_acc"]))
    # the larger lr learns more in one epoch; freezing 2 layers (Flatten and the first Linear) is logged per run
    assert float(rows[0]["best_val_acc"]) > float(rows[2]["best_val_acc"])
    log = [n for n in os.listdir(out / "runs") if n.startswith("lr=0.1,freeze=2") and n.endswith(".log")]
    assert "test accuracy" in (out / "runs" / log[0]).read_text()
    table = (out / "results.md").read_text().splitlines()
    assert table[2].startswith("| run | lr | freeze | final_val_loss") and len(table) == 4 + 4
    assert (out / "results.png").read_bytes()[:8] == PNG


def test_one_axis_gives_bars_and_a_diverged_run_is_a_row(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    out = tmp_path / "sweep"
    assert main(["sweep", "mlp", "--epochs", "1", "--lr", "1e6,0.1", "--val-split", "0.1", "--out", str(out)]) == 0
    rows = _rows(out / "results.csv")
    assert [(r["lr"], r["status"]) for r in rows] == [("1e6", "diverged"), ("0.1", "ok")]
    assert rows[0]["best_val_acc"] == "" and float(rows[1]["best_val_acc"]) > 0.5
    assert (out / "results.png").read_bytes()[:8] == PNG
    assert "diverged" in capsys.readouterr().out


def test_sweep_needs_out(capsys):
    assert main(["sweep", "mlp", "--lr", "0.1,0.2"]) == 2
    assert "sweep needs --out DIR" in capsys.readouterr().err


def test_a_run_that_cannot_run_is_an_error_row(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    out = tmp_path / "sweep"
    assert main(["sweep", "mlp", "--epochs", "1", "--freeze", "99,100", "--out", str(out)]) == 0
    rows = _rows(out / "results.csv")
    assert [r["status"] for r in rows] == ["error: --freeze 99 --freeze-by layers: cannot freeze 99 layers: MLP has "
                                           "8 layers (leaf-module calls in forward order)",
                                           "error: --freeze 100 --freeze-by layers: cannot freeze 100 layers: MLP "
                                           "has 8 layers (leaf-module calls in forward order)"]
    assert "2 to run" in capsys.readouterr().out
