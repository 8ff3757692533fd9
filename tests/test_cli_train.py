"""``minidl train`` / ``minidl evaluate``: outputs, plots, exact resume, transfer options, user errors."""
import os
import re

import numpy as np
import pytest
from minidl.models import get_model
from PIL import Image

import minidl
from minidl.cli import main
from minidl.train import Trainer, load_model_state, read_trainer_metadata

PNG = b"\x89PNG\r\n\x1a\n"
ACCURACY = re.compile(r"test accuracy: ([\d.]+)% \((\d+) images\), ([\d.]+) s")


def _train(capsys, *options):
    rc = main(["train", *options])
    out, err = capsys.readouterr()
    return rc, out, err


def test_train_prints_accuracy_writes_checkpoints_and_plots(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    rc, out, _ = _train(capsys, "mlp", "--epochs", "3", "--quiet", "--checkpoint", str(tmp_path / "ck"),
                        "--plot", str(tmp_path / "plots"))
    assert rc == 0
    match = ACCURACY.search(out)
    assert match and match.group(2) == "359" and float(match.group(1)) > 80
    assert sorted(os.listdir(tmp_path / "ck")) == ["best.npz", "last.npz"]
    assert sorted(os.listdir(tmp_path / "plots")) == ["confusion_matrix.png", "curves.png", "roc.png"]
    for name in os.listdir(tmp_path / "plots"):
        assert (tmp_path / "plots" / name).read_bytes()[:8] == PNG
    record = read_trainer_metadata(tmp_path / "ck" / "last.npz")
    assert record["epoch"] == 3 and record["config"]["model"] == "mlp"
    assert record["config"]["input_shape"] == [1, 8, 8]


def test_resume_through_the_cli_is_bit_exact(tmp_path, capsys, monkeypatch):
    """Run 4 epochs; separately run, get interrupted after 2 (Ctrl-C), resume: same weights."""
    common = ["mlp", "--epochs", "4", "--augment", "--quiet"]
    assert _train(capsys, *common, "--checkpoint", str(tmp_path / "a"))[0] == 0

    original = Trainer._run_epoch

    def interrupted(self, *args):
        if self.epoch == 2:
            raise KeyboardInterrupt
        return original(self, *args)

    monkeypatch.setattr(Trainer, "_run_epoch", interrupted)
    assert _train(capsys, *common, "--checkpoint", str(tmp_path / "b"))[0] == 130
    assert read_trainer_metadata(tmp_path / "b" / "last.npz")["epoch"] == 2
    monkeypatch.setattr(Trainer, "_run_epoch", original)
    # the resumed run takes epochs, augmentation and seed from the checkpoint
    rc, _, err = _train(capsys, "mlp", "--checkpoint", str(tmp_path / "b"), "--resume")
    assert rc == 0 and "resumed from" in err
    a, b = load_model_state(tmp_path / "a" / "last.npz"), load_model_state(tmp_path / "b" / "last.npz")
    assert list(a) == list(b)
    for name in a:
        assert np.array_equal(a[name], b[name]), name


def test_evaluate_prints_report_topk_and_auroc(tmp_path, capsys):
    assert _train(capsys, "mlp", "--epochs", "3", "--quiet", "--checkpoint", str(tmp_path))[0] == 0
    rc = main(["evaluate", "mlp", "--checkpoint", str(tmp_path / "best.npz"), "--quiet"])
    out = capsys.readouterr().out
    assert rc == 0
    assert "precision" in out and "macro avg" in out
    top1 = float(re.search(r"top-1 accuracy: ([\d.]+)%", out).group(1))
    top5 = float(re.search(r"top-5 accuracy: ([\d.]+)%", out).group(1))
    auc = float(re.search(r"AUROC \(one vs rest, macro\): ([\d.]+)", out).group(1))
    assert 80 < top1 <= top5 <= 100 and 0.9 < auc <= 1.0


def test_freeze_keeps_the_first_layer_and_trains_the_rest(tmp_path, capsys, monkeypatch):
    saved = []
    original = Trainer.save_checkpoint

    def keep_each_epoch(self, path, train_loader=None):
        original(self, path, train_loader)
        if os.path.basename(path) == "last.npz":
            saved.append(load_model_state(path))

    monkeypatch.setattr(Trainer, "save_checkpoint", keep_each_epoch)
    # --freeze counts layers as Keras does: Flatten, then the first Linear
    assert _train(capsys, "mlp", "--epochs", "2", "--quiet", "--freeze", "2", "--checkpoint", str(tmp_path))[0] == 0
    first, second = saved
    assert np.array_equal(first["features.0.weight"], second["features.0.weight"])
    assert np.array_equal(first["features.0.bias"], second["features.0.bias"])
    assert not np.array_equal(first["classifier.weight"], second["classifier.weight"])
    assert not np.array_equal(first["features.3.weight"], second["features.3.weight"])


@pytest.mark.parametrize("optimizer", ["sgd", "adam", "adamw", "adamax", "nadam", "radam"])
def test_every_optimizer_learns(capsys, optimizer):
    lr = {"sgd": "0.05", "radam": "0.01"}.get(optimizer, "0.003")  # RAdam's rectification warms up slowly
    rc, out, _ = _train(capsys, "mlp", "--epochs", "3", "--quiet", "--optimizer", optimizer, "--lr", lr)
    assert rc == 0 and float(ACCURACY.search(out).group(1)) > 75


@pytest.mark.parametrize("scheduler", ["none", "step", "cosine", "onecycle", "plateau", "warmup"])
def test_every_scheduler_runs_and_is_recorded(tmp_path, capsys, scheduler):
    rc, out, _ = _train(capsys, "mlp", "--epochs", "3", "--quiet", "--scheduler", scheduler,
                        "--label-smoothing", "0.1", "--checkpoint", str(tmp_path))
    assert rc == 0 and float(ACCURACY.search(out).group(1)) > 75
    record = read_trainer_metadata(tmp_path / "last.npz")
    lrs = [row["lr"] for row in record["history"]]
    assert record["config"]["scheduler"] == scheduler
    if scheduler == "none":
        assert lrs == [0.05] * 3
    if scheduler in ("cosine", "step", "warmup"):
        assert lrs != [0.05] * 3


def _image_folder(root, classes, per_class=4):
    rng = np.random.default_rng(0)
    for k, name in enumerate(classes):
        os.makedirs(root / name)
        for i in range(per_class):
            pixels = np.full((10, 12, 3), 40 + 150 * k, np.uint8) + rng.integers(0, 30, (10, 12, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / name / f"{i}.png")


def test_image_folder_trains_rgb_resized(tmp_path, capsys):
    _image_folder(tmp_path / "data", ["cat", "dog"])
    rc, out, _ = _train(capsys, "mlp", "--dataset", str(tmp_path / "data"), "--epochs", "4", "--quiet",
                        "--val-split", "0", "--batch-size", "4", "--checkpoint", str(tmp_path / "ck"))
    # a plain class folder: one image per class (0.2 of 4, at least 1) held out as the test split,
    # never the 8 images it trained on (as before issue 13)
    assert rc == 0 and ACCURACY.search(out).group(2) == "2"
    record = read_trainer_metadata(tmp_path / "ck" / "last.npz")
    assert record["config"]["input_shape"] == [3, 32, 32] and record["config"]["classes"] == ["cat", "dog"]


def _error(capsys, argv):
    rc = main(argv)
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if line.strip()]
    return rc, lines


def _assert_nothing_written(tmp_path):
    assert not (tmp_path / "ck").exists() and not (tmp_path / "plots").exists()


def test_user_errors_are_one_line_exit_2_and_write_nothing(tmp_path, capsys):
    out = ["--checkpoint", str(tmp_path / "ck"), "--plot", str(tmp_path / "plots"), "--quiet"]
    one_class = tmp_path / "one"
    _image_folder(one_class, ["only"])
    corrupt = tmp_path / "corrupt.npz"
    corrupt.write_bytes(b"PK\x03\x04 this is not a zip archive")
    cases = [
        (["train", "no_such_model", *out], "unknown model 'no_such_model'"),
        (["train", "mlp", "--dataset", "imagenet21k", *out], "unknown dataset 'imagenet21k'"),
        (["train", "mlp", "--dataset", str(one_class), *out], "at least 2 class"),
        (["train", "mlp", "--epochs", "0", *out], "--epochs must be >= 1"),
        (["train", "mlp", "--resume", "--quiet"], "--resume needs --checkpoint"),
        (["evaluate", "mlp", "--checkpoint", str(tmp_path / "missing.npz")], "not found"),
        (["evaluate", "mlp", "--checkpoint", str(corrupt)], "corrupt.npz"),
    ]
    for argv, message in cases:
        rc, lines = _error(capsys, argv)
        assert rc == 2, argv
        assert len(lines) == 1 and message in lines[0], (argv, lines)
        _assert_nothing_written(tmp_path)


def test_checkpoint_of_another_architecture_is_refused(tmp_path, capsys):
    assert _train(capsys, "mlp", "--epochs", "1", "--quiet", "--checkpoint", str(tmp_path / "mlp"))[0] == 0
    # trainer checkpoint of mlp given to lenet5: named from the checkpoint's record
    rc, lines = _error(capsys, ["evaluate", "lenet5", "--checkpoint", str(tmp_path / "mlp" / "last.npz")])
    assert rc == 2 and len(lines) == 1 and "holds a 'mlp' model" in lines[0]
    rc, lines = _error(capsys, ["train", "lenet5", "--checkpoint", str(tmp_path / "mlp"), "--resume", "--quiet"])
    assert rc == 2 and len(lines) == 1 and "mlp" in lines[0]
    # a plain weights file (no record) of another architecture: caught by the strict load
    weights = tmp_path / "weights.npz"
    minidl.serialization.save(get_model("mlp", hidden_sizes=(16,)), weights)
    rc, lines = _error(capsys, ["evaluate", "mlp", "--checkpoint", str(weights)])
    assert rc == 2 and len(lines) == 1 and "does not fit mlp" in lines[0]
    assert sorted(os.listdir(tmp_path / "mlp")) == ["best.npz", "last.npz"]
