"""What the ``minidl`` command line defends: the list a reader can check.

The error contract (issue 13, point 3): every user or file error -- a bad option, a malformed
file (the ValueError subclasses of ``minidl.errors``), a TypeError from bad input, an OSError
(missing file, full disk), MemoryError, a Pillow error -- prints exactly one stderr line starting
``minidl: error:`` and exits with code 2, never a traceback; Ctrl-C prints one line and exits
with 130; a bug in minidl is one line with the hint to rerun with ``--debug`` (exit 1);
``--debug`` (before or after the subcommand) or ``MINIDL_DEBUG=1`` shows the traceback.

Preflight (point 4): before the first batch, ``minidl train``/``evaluate``/``detect train``
check the folders they will write (a file in the way, a read-only folder), that a ``--resume``
matches the checkpoint (optimizer, schedule length: a finished cosine schedule resumed for more
epochs is stretched, never run at lr 0), and that every image of an image folder opens (corrupt
files skipped with one warning, or refused with ``--strict-data``).
"""
import errno
import math
import os
import subprocess
import sys

import numpy as np
import PIL
import pytest
from PIL import Image

import minidl
import minidl.serialization
from minidl.cli import main
from minidl.errors import CheckpointError
from minidl.train import Trainer, read_trainer_metadata


def _run(capsys, argv):
    """(exit code, stdout, non-empty stderr lines) of ``minidl argv``; argparse errors exit via SystemExit."""
    try:
        rc = main(argv)
    except SystemExit as stop:
        rc = stop.code
    captured = capsys.readouterr()
    return rc, captured.out, [line for line in captured.err.splitlines() if line.strip()]


def _assert_one_error_line(rc, lines, *fragments, code=2):
    assert rc == code, lines
    assert len(lines) == 1, lines
    assert lines[0].startswith("minidl: error: "), lines
    assert "Traceback" not in lines[0]
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


@pytest.fixture
def weights_file(tmp_path):
    path = tmp_path / "w.npz"
    minidl.serialization.save({"a": np.zeros((2, 3), np.float32)}, path)
    return path


def _convert_raising(monkeypatch, tmp_path, weights_file, exc):
    """``minidl convert`` whose reader raises ``exc``: the CLI's handling of each exception kind."""
    def load_checkpoint(*args, **kwargs):
        raise exc

    monkeypatch.setattr(minidl.serialization, "load_checkpoint", load_checkpoint)
    return ["convert", str(weights_file), str(tmp_path / "out.safetensors")]


def _forbid_training(monkeypatch):
    """From now on an epoch that starts fails the test: the preflight must stop the run before it."""
    started = []

    def run_epoch(self, *args, **kwargs):
        started.append(self.epoch + 1)
        raise AssertionError("an epoch started before the preflight refused the run")

    monkeypatch.setattr(Trainer, "_run_epoch", run_epoch)
    return started


@pytest.fixture
def never_trains(monkeypatch):
    return _forbid_training(monkeypatch)


# ------------------------------------------------------------------ one error contract

def test_usage_error_is_one_line_exit_2(capsys):
    rc, _, lines = _run(capsys, ["train", "no_such_model", "--quiet"])
    _assert_one_error_line(rc, lines, "unknown model 'no_such_model'")


def test_bad_command_line_is_one_line_exit_2(capsys):
    rc, _, lines = _run(capsys, ["train", "mlp", "--epochs", "many"])
    _assert_one_error_line(rc, lines, "--epochs", "invalid int value")
    rc, _, lines = _run(capsys, ["no-such-command"])
    _assert_one_error_line(rc, lines, "invalid choice")


def test_malformed_file_is_one_line_naming_it(tmp_path, capsys):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"PK\x03\x04 not a zip archive at all")
    rc, _, lines = _run(capsys, ["convert", str(bad), str(tmp_path / "out.safetensors")])
    _assert_one_error_line(rc, lines, "bad.npz")
    assert not (tmp_path / "out.safetensors").exists()


def test_file_error_type_from_a_reader_is_one_line(tmp_path, capsys, monkeypatch, weights_file):
    argv = _convert_raising(monkeypatch, tmp_path, weights_file,
                            CheckpointError("model.pth", "storage declares 4 GiB, the file holds 300 bytes"))
    rc, _, lines = _run(capsys, argv)
    _assert_one_error_line(rc, lines, "model.pth: storage declares 4 GiB")


def test_type_error_from_bad_input_is_one_line_with_the_debug_hint(tmp_path, capsys, monkeypatch, weights_file):
    argv = _convert_raising(monkeypatch, tmp_path, weights_file, TypeError("shape entries must be int, got bool"))
    rc, _, lines = _run(capsys, argv)
    _assert_one_error_line(rc, lines, "shape entries must be int", "--debug")


def test_missing_file_is_one_line(tmp_path, capsys):
    rc, _, lines = _run(capsys, ["convert", str(tmp_path / "missing.npz"), str(tmp_path / "out.npz")])
    _assert_one_error_line(rc, lines, "missing.npz")


def test_disk_full_is_one_line_naming_the_file(tmp_path, capsys, monkeypatch, weights_file):
    target = tmp_path / "out.safetensors"

    def save(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(target))

    monkeypatch.setattr(minidl.serialization, "save", save)
    rc, _, lines = _run(capsys, ["convert", str(weights_file), str(target)])
    _assert_one_error_line(rc, lines, str(target), os.strerror(errno.ENOSPC))


def test_memory_error_is_one_line(tmp_path, capsys, monkeypatch, weights_file):
    rc, _, lines = _run(capsys, _convert_raising(monkeypatch, tmp_path, weights_file, MemoryError()))
    _assert_one_error_line(rc, lines, "out of memory")


@pytest.mark.parametrize("error", [PIL.UnidentifiedImageError("cannot identify image file 'x.png'"),
                                   Image.DecompressionBombError("Image size (1000000000 pixels) exceeds limit")],
                         ids=["unidentified", "decompression-bomb"])
def test_pil_errors_are_one_line(tmp_path, capsys, monkeypatch, weights_file, error):
    rc, _, lines = _run(capsys, _convert_raising(monkeypatch, tmp_path, weights_file, error))
    _assert_one_error_line(rc, lines, str(error))


def test_keyboard_interrupt_is_one_line_exit_130(tmp_path, capsys, monkeypatch, weights_file):
    rc, _, lines = _run(capsys, _convert_raising(monkeypatch, tmp_path, weights_file, KeyboardInterrupt()))
    _assert_one_error_line(rc, lines, "interrupted", code=130)


def test_non_finite_training_is_one_line_exit_1_not_an_internal_error(tmp_path, capsys, monkeypatch, weights_file):
    error = FloatingPointError("non-finite loss (nan) at epoch 1, step 3")
    rc, _, lines = _run(capsys, _convert_raising(monkeypatch, tmp_path, weights_file, error))
    _assert_one_error_line(rc, lines, "non-finite loss (nan) at epoch 1, step 3", code=1)
    assert "internal error" not in lines[0]


def test_internal_error_is_one_line_with_the_debug_hint(tmp_path, capsys, monkeypatch, weights_file):
    argv = _convert_raising(monkeypatch, tmp_path, weights_file, RuntimeError("an index went wrong"))
    rc, _, lines = _run(capsys, argv)
    _assert_one_error_line(rc, lines, "internal error", "RuntimeError: an index went wrong", "--debug", code=1)


@pytest.mark.parametrize("where", ["before", "after", "env"])
def test_debug_shows_the_traceback(tmp_path, capsys, monkeypatch, weights_file, where):
    argv = _convert_raising(monkeypatch, tmp_path, weights_file, MemoryError())
    if where == "before":
        argv = ["--debug", *argv]
    elif where == "after":
        argv = [*argv, "--debug"]
    else:
        monkeypatch.setenv("MINIDL_DEBUG", "1")
    rc = main(argv)
    err = capsys.readouterr().err
    assert rc == 2
    assert "Traceback (most recent call last)" in err and "MemoryError" in err


def test_real_exit_path_is_one_line_exit_2(tmp_path):
    """The installed entry point, in a fresh interpreter: exit status 2, one stderr line, no traceback."""
    result = subprocess.run([sys.executable, "-m", "minidl.cli", "convert", str(tmp_path / "missing.npz"),
                             str(tmp_path / "out.npz")], capture_output=True, text=True, timeout=300)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    _assert_one_error_line(result.returncode, lines, "missing.npz")


# ------------------------------------------------------------------ preflight: folders

def test_checkpoint_pointing_at_a_file_is_refused_before_training(tmp_path, capsys, never_trains):
    target = tmp_path / "ck"
    target.write_text("not a folder")
    rc, out, lines = _run(capsys, ["train", "mlp", "--epochs", "1", "--quiet", "--checkpoint", str(target)])
    _assert_one_error_line(rc, lines, "--checkpoint", "is a file")
    assert never_trains == [] and "epoch" not in out
    assert target.read_text() == "not a folder"


def test_checkpoint_below_a_file_is_refused_before_training(tmp_path, capsys, never_trains):
    """A file in the way of a folder to create (what a read-only folder is, when running as root)."""
    (tmp_path / "runs").write_text("a file")
    rc, _, lines = _run(capsys, ["train", "mlp", "--quiet", "--checkpoint", str(tmp_path / "runs" / "ck")])
    _assert_one_error_line(rc, lines, "--checkpoint", "cannot be created", "is a file")
    assert never_trains == []


def test_read_only_checkpoint_folder_is_refused_before_training(tmp_path, capsys, never_trains):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        if os.access(folder, os.W_OK):
            pytest.skip("running as root: chmod does not stop writes (the file-in-the-way tests cover this)")
        rc, _, lines = _run(capsys, ["train", "mlp", "--quiet", "--checkpoint", str(folder / "ck")])
        _assert_one_error_line(rc, lines, "--checkpoint", "cannot write")
        assert never_trains == []
    finally:
        folder.chmod(0o755)


def test_plot_pointing_at_a_file_is_refused_before_training(tmp_path, capsys, never_trains):
    (tmp_path / "plots").write_text("x")
    rc, _, lines = _run(capsys, ["train", "mlp", "--quiet", "--plot", str(tmp_path / "plots")])
    _assert_one_error_line(rc, lines, "--plot", "is a file")
    assert never_trains == []


def test_evaluate_plot_pointing_at_a_file_is_refused_before_reading(tmp_path, capsys, weights_file):
    (tmp_path / "plots").write_text("x")
    rc, _, lines = _run(capsys, ["evaluate", "mlp", "--checkpoint", str(weights_file), "--plot",
                                 str(tmp_path / "plots")])
    _assert_one_error_line(rc, lines, "--plot", "is a file")


def test_evaluate_checkpoint_folder_names_the_file_to_give(tmp_path, capsys):
    rc, _, lines = _run(capsys, ["evaluate", "mlp", "--checkpoint", str(tmp_path)])
    _assert_one_error_line(rc, lines, "is a folder", "best.npz")


def test_download_cache_folder_that_is_a_file_is_refused_before_downloading(tmp_path, capsys, monkeypatch):
    import minidl.datasets.download as download
    import minidl.datasets.mnist as mnist

    def no_network(*args, **kwargs):
        raise AssertionError("a download started before the preflight")

    monkeypatch.setattr(download, "download_url", no_network)
    monkeypatch.setattr(mnist, "download_from_mirrors", no_network)
    (tmp_path / "data").write_text("x")
    rc, _, lines = _run(capsys, ["train", "mlp", "--dataset", "mnist", "--download", "--quiet",
                                 "--data-root", str(tmp_path / "data")])
    _assert_one_error_line(rc, lines, "--data-root", "is a file")


def test_detect_train_out_pointing_at_a_file_is_refused_before_training(tmp_path, capsys, monkeypatch):
    import minidl.detection.engine as engine

    def train_detector(*args, **kwargs):
        raise AssertionError("the detector started training before the preflight")

    monkeypatch.setattr(engine, "train_detector", train_detector)
    (tmp_path / "det").write_text("x")
    rc, _, lines = _run(capsys, ["detect", "train", "--out", str(tmp_path / "det"), "--n-train", "2",
                                 "--n-val", "1", "--epochs", "1"])
    _assert_one_error_line(rc, lines, "--out", "is a file")


def test_detect_train_refuses_a_corrupt_gtsdb_image_with_strict_data_before_training(tmp_path, capsys,
                                                                                      monkeypatch):
    import minidl.detection.engine as engine
    from minidl.datasets import SceneConfig, SyntheticScenes
    from minidl.datasets.scenes import write_gtsdb

    def train_detector(*args, **kwargs):
        raise AssertionError("the detector started training before the preflight")

    monkeypatch.setattr(engine, "train_detector", train_detector)
    root = write_gtsdb(SyntheticScenes(3, seed=1, config=SceneConfig(96, 80, min_size=12, max_size=30)),
                       str(tmp_path / "gtsdb"))
    first = os.path.join(root, sorted(f for f in os.listdir(root) if f.endswith(".ppm"))[0])
    with open(first, "r+b") as f:
        f.truncate(40)  # the header, then a few pixels
    rc, _, lines = _run(capsys, ["detect", "train", "--data", root, "--split", "2", "--strict-data",
                                 "--out", str(tmp_path / "det")])
    _assert_one_error_line(rc, lines, "--strict-data", "1 file(s)", os.path.basename(first))
    assert not (tmp_path / "det").exists()


# ------------------------------------------------------------------ preflight: resume

def test_resume_with_another_optimizer_is_refused_before_training(tmp_path, capsys, monkeypatch):
    ck = str(tmp_path / "ck")
    assert _run(capsys, ["train", "mlp", "--epochs", "1", "--quiet", "--checkpoint", ck])[0] == 0
    started = _forbid_training(monkeypatch)
    rc, out, lines = _run(capsys, ["train", "mlp", "--epochs", "2", "--quiet", "--checkpoint", ck, "--resume",
                                   "--optimizer", "adam"])
    _assert_one_error_line(rc, lines, "--optimizer adam", "sgd")  # no "state kept" note before it
    assert started == [] and "test accuracy" not in out
    rc, _, lines = _run(capsys, ["train", "mlp", "--quiet", "--checkpoint", ck, "--resume", "--scheduler", "step"])
    _assert_one_error_line(rc, lines, "--scheduler step", "cosine")
    assert started == []


def test_resume_past_the_end_of_a_cosine_schedule_stretches_it(tmp_path, capsys):
    ck = tmp_path / "ck"
    common = ["train", "mlp", "--quiet", "--checkpoint", str(ck), "--scheduler", "cosine", "--lr", "0.05"]
    assert _run(capsys, [*common, "--epochs", "2"])[0] == 0
    record = read_trainer_metadata(ck / "last.npz")
    assert record["scheduler"]["state"]["T_max"] == 2 and record["epoch"] == 2  # finished: the lr is now 0
    rc, _, lines = _run(capsys, [*common, "--epochs", "4", "--resume"])
    assert rc == 0, lines
    assert any("now spans 4" in line for line in lines)
    lrs = [row["lr"] for row in read_trainer_metadata(ck / "last.npz")["history"]]
    expected = [0.05 * (1 + math.cos(math.pi * e / 4)) / 2 for e in (2, 3)]  # the 4-epoch cosine's lrs
    assert len(lrs) == 4 and min(lrs[2:]) > 0
    assert lrs[2:] == pytest.approx(expected, rel=1e-6)


def test_resume_past_the_end_of_a_onecycle_schedule_is_refused(tmp_path, capsys, monkeypatch):
    ck = str(tmp_path / "ck")
    assert _run(capsys, ["train", "mlp", "--epochs", "1", "--quiet", "--checkpoint", ck,
                         "--scheduler", "onecycle"])[0] == 0
    started = _forbid_training(monkeypatch)
    rc, _, lines = _run(capsys, ["train", "mlp", "--epochs", "3", "--quiet", "--checkpoint", ck, "--resume"])
    _assert_one_error_line(rc, lines, "--epochs 3", "onecycle", "planned for 1")
    assert started == []


# ------------------------------------------------------------------ preflight: image folders

def _image_folder(root, classes=("cat", "dog"), per_class=4):
    rng = np.random.default_rng(0)
    for k, name in enumerate(classes):
        os.makedirs(root / name)
        for i in range(per_class):
            pixels = np.full((10, 12, 3), 40 + 150 * k, np.uint8) + rng.integers(0, 30, (10, 12, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / name / f"{i}.png")


def _corrupt_images(root):
    (root / "cat" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)   # a header, then nothing
    good = (root / "dog" / "0.png").read_bytes()
    (root / "dog" / "truncated.png").write_bytes(good[: len(good) // 2])           # cut in the middle
    return ["broken.png", "truncated.png"]


def test_corrupt_images_are_skipped_with_one_warning_before_training(tmp_path, capsys):
    data = tmp_path / "data"
    _image_folder(data)
    names = _corrupt_images(data)
    rc, out, lines = _run(capsys, ["train", "mlp", "--dataset", str(data), "--epochs", "2", "--val-split", "0",
                                   "--batch-size", "4"])
    assert rc == 0, lines
    warnings = [i for i, line in enumerate(lines) if line.startswith("warning:")]
    assert len(warnings) == 1
    warning = lines[warnings[0]]
    assert "2 file(s)" in warning and all(name in warning for name in names)
    first_epoch = next(i for i, line in enumerate(lines) if line.startswith("epoch 1:"))
    assert warnings[0] < first_epoch
    assert "test accuracy" in out and not any("Traceback" in line for line in lines)


def test_corrupt_images_are_refused_with_strict_data_before_training(tmp_path, capsys, never_trains):
    data = tmp_path / "data"
    _image_folder(data)
    _corrupt_images(data)
    rc, _, lines = _run(capsys, ["train", "mlp", "--dataset", str(data), "--quiet", "--strict-data",
                                 "--checkpoint", str(tmp_path / "ck")])
    _assert_one_error_line(rc, lines, "--strict-data", "2 file(s)", "broken.png")
    assert never_trains == [] and not (tmp_path / "ck").exists()


def test_evaluate_skips_corrupt_images_with_a_warning(tmp_path, capsys):
    data = tmp_path / "data"
    _image_folder(data)
    ck = tmp_path / "ck"
    assert _run(capsys, ["train", "mlp", "--dataset", str(data), "--epochs", "1", "--val-split", "0",
                         "--quiet", "--checkpoint", str(ck)])[0] == 0
    _corrupt_images(data)
    rc, out, lines = _run(capsys, ["evaluate", "mlp", "--dataset", str(data), "--quiet",
                                   "--checkpoint", str(ck / "last.npz")])
    assert rc == 0, lines
    assert len(lines) == 1 and lines[0].startswith("warning: skipping 2 file(s)")
    assert "test accuracy" in out


def test_a_diverging_run_ends_in_one_error_line_without_numpy_warnings():
    """lr 1e30 overflows within a step or two: NumPy's RuntimeWarnings are not shown, only the Trainer's line."""
    import subprocess
    import sys

    run = subprocess.run([sys.executable, "-m", "minidl.cli", "train", "mlp", "--lr", "1e30", "--epochs", "2"],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 2, run.stderr[-2000:]
    lines = [line for line in run.stderr.replace("\r", "\n").splitlines() if line.strip() and "it/s" not in line
             and not line.lstrip().startswith(("epoch ", "validate", "compiling kernels"))]
    assert "Warning" not in run.stderr
    assert len(lines) == 1 and lines[0].startswith("minidl: error: non-finite loss"), lines
