"""Checkpoint hygiene: stale temporary files of killed writes are removed by the next write, a
failed ``Trainer.load_checkpoint`` changes nothing, written files honour the umask (issue 13, point 7)."""
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import minidl
from minidl import nn, optim, serialization
from minidl.data import DataLoader, TensorDataset
from minidl.errors import CheckpointError
from minidl.optim import lr_scheduler
from minidl.serialization import load_checkpoint, read_metadata, save
from minidl.train import Trainer

posix_only = pytest.mark.skipif(os.name != "posix", reason="pids and umask are POSIX")


# ---------------------------------------------------------------------- stale temporary files

def _dead_pid():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def _temporary(folder, target, pid, age):
    """A file named as minidl's atomic write names its temporary, ``age`` seconds old."""
    path = folder / f".{target}.minidl-{pid}-0123abcd.tmp"
    path.write_bytes(b"\0" * 4096)
    then = time.time() - age
    os.utime(path, (then, then))
    return path


@posix_only
def test_a_stale_temporary_of_a_dead_writer_is_removed_by_the_next_save(tmp_path):
    stale = _temporary(tmp_path, "last.npz", _dead_pid(), age=60)
    stale_other_target = _temporary(tmp_path, "best.npz", _dead_pid(), age=60)
    save({"w": np.ones(3, np.float32)}, tmp_path / "weights.safetensors")
    assert not stale.exists() and not stale_other_target.exists()
    assert sorted(os.listdir(tmp_path)) == ["weights.safetensors"]


@posix_only
def test_a_temporary_of_a_live_writer_and_a_fresh_one_are_kept(tmp_path):
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        of_live_writer = _temporary(tmp_path, "last.npz", live.pid, age=600)
        of_this_process = _temporary(tmp_path, "best.npz", os.getpid(), age=600)
        fresh_of_dead_pid = _temporary(tmp_path, "x.npz", _dead_pid(), age=0)  # another machine's, maybe
        save({"w": np.ones(3, np.float32)}, tmp_path / "w.npz")
        assert of_live_writer.exists() and of_this_process.exists() and fresh_of_dead_pid.exists()
    finally:
        live.kill()
        live.wait()


def test_a_temporary_untouched_for_a_day_is_stale_even_if_its_pid_runs_again(tmp_path):
    reused = _temporary(tmp_path, "last.npz", os.getpid(), age=2 * 24 * 3600)
    save({"w": np.ones(3, np.float32)}, tmp_path / "w.npz")
    assert not reused.exists()


def test_pidless_temporaries_of_earlier_versions_go_once_a_day_old(tmp_path):
    old = tmp_path / ".last.npz.k2_9xq0a.tmp"    # tempfile.mkstemp's name, as minidl wrote them before
    recent = tmp_path / ".best.npz.abcd1234.tmp"
    for path, age in ((old, 2 * 24 * 3600), (recent, 3600)):
        path.write_bytes(b"\0" * 64)
        os.utime(path, (time.time() - age, time.time() - age))
    save({"w": np.ones(3, np.float32)}, tmp_path / "w.npz")
    assert not old.exists() and recent.exists()


def test_only_minidls_own_temporary_names_are_touched(tmp_path):
    others = [".last.npz.tmp", "last.npz.tmp", ".notes.txt.minidl-1-0123abcd", ".x.txt.abcd1234.tmp",
              ".x.npz.abcd12345.tmp", "run.tmp", ".x.npz.minidl-1-0123abcd.tmp.part"]
    for name in others:
        (tmp_path / name).write_bytes(b"keep")
        os.utime(tmp_path / name, (0, 0))
    save({"w": np.ones(3, np.float32)}, tmp_path / "w.npz")
    assert sorted(os.listdir(tmp_path)) == sorted(others + ["w.npz"])


_KILLED_WRITER = r"""
import os, sys, time, numpy as np
from minidl.serialization import _atomic_write
def write(f):
    f.write(b"\0" * (1 << 20)); f.flush()
    print("writing", flush=True)
    time.sleep(60)
_atomic_write(sys.argv[1], write)
"""


@posix_only
def test_the_temporary_of_a_write_killed_with_sigkill_is_removed_by_the_next_checkpoint(tmp_path):
    target = tmp_path / "last.npz"
    writer = subprocess.Popen([sys.executable, "-c", _KILLED_WRITER, str(target)], stdout=subprocess.PIPE, text=True)
    assert writer.stdout.readline().strip() == "writing"
    os.kill(writer.pid, signal.SIGKILL)
    writer.wait()
    writer.stdout.close()
    (leftover,) = [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    assert leftover.name.startswith(f".last.npz.minidl-{writer.pid}-") and leftover.stat().st_size >= 1 << 20
    os.utime(leftover, (time.time() - 60, time.time() - 60))  # the next epoch ends a minute later
    model = nn.Linear(3, 2)
    Trainer(model, optim.SGD(model.parameters(), lr=0.1), progress=False).save_checkpoint(target)
    assert sorted(os.listdir(tmp_path)) == ["last.npz"]


# ---------------------------------------------------------------------- umask

@posix_only
@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002], ids=["umask 022", "umask 077", "umask 002"])
def test_saved_files_have_mode_0666_minus_the_umask(tmp_path, umask):
    previous = os.umask(umask)
    try:
        save({"w": np.ones(3, np.float32)}, tmp_path / "a.npz")
        save({"w": np.ones(3, np.float32)}, tmp_path / "a.safetensors")
        model = nn.Linear(3, 2)
        Trainer(model, optim.SGD(model.parameters(), lr=0.1), progress=False).save_checkpoint(tmp_path / "last.npz")
    finally:
        os.umask(previous)
    for name in ("a.npz", "a.safetensors", "last.npz"):
        assert os.stat(tmp_path / name).st_mode & 0o777 == 0o666 & ~umask, name


# ---------------------------------------------------------------------- load_checkpoint changes nothing on failure

def _loader():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 4)).astype(np.float32)
    return DataLoader(TensorDataset(x, (x[:, 0] > 0).astype(np.int64)), batch_size=16, shuffle=True, seed=0)


def _trainer(seed, optimizer="sgd", hidden=8):
    minidl.manual_seed(seed)
    model = nn.Sequential(nn.Linear(4, hidden), nn.BatchNorm1d(hidden), nn.ReLU(), nn.Linear(hidden, 2))
    opt = (optim.SGD(model.parameters(), lr=0.1, momentum=0.9) if optimizer == "sgd"
           else optim.Adam(model.parameters(), lr=0.01))
    scheduler = lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
    return Trainer(model, opt, scheduler=scheduler, progress=False)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A trainer checkpoint after 3 epochs (seed 0)."""
    trainer = _trainer(0)
    trainer.fit(_loader(), epochs=3)
    path = tmp_path_factory.mktemp("ck") / "last.npz"
    trainer.save_checkpoint(path, train_loader=_loader())
    return path


def _state(trainer, loader):
    """Everything a checkpoint load may change, as plain copies."""
    opt = trainer.optimizer.state_dict()
    return {
        "model": {k: np.array(v.numpy(), copy=True) for k, v in trainer.model.state_dict().items()},
        "opt_state": {i: {k: np.array(v, copy=True) if hasattr(v, "shape") else v for k, v in s.items()}
                      for i, s in opt["state"].items()},
        "opt_groups": [{k: v for k, v in g.items()} for g in opt["param_groups"]],
        "last_epoch": trainer.scheduler.last_epoch,
        "scheduler": {k: v for k, v in trainer.scheduler.state_dict().items() if k != "_last_lr"}
        | {"_last_lr": list(trainer.scheduler.get_last_lr())},
        "rng": json.dumps(minidl.random.get_rng_state(), sort_keys=True),
        "loader": loader.state_dict(),
        "trainer": (trainer.epoch, trainer.global_step, trainer.best_value, trainer.bad_epochs, len(trainer.history)),
    }


def _assert_unchanged(before, after):
    assert before["model"].keys() == after["model"].keys()
    for key in before["model"]:
        np.testing.assert_array_equal(before["model"][key], after["model"][key], err_msg=key)
    assert before["opt_state"].keys() == after["opt_state"].keys()
    for i in before["opt_state"]:
        for k, v in before["opt_state"][i].items():
            np.testing.assert_array_equal(v, after["opt_state"][i][k], err_msg=f"optimizer state {i}/{k}")
    for key in ("opt_groups", "last_epoch", "scheduler", "rng", "loader", "trainer"):
        assert before[key] == after[key], key


def _rewrite(path, out, change_arrays=None, change_record=None):
    """Copy a trainer checkpoint to ``out`` with its arrays and/or JSON record changed."""
    arrays = dict(load_checkpoint(path))
    metadata = read_metadata(path)
    record = json.loads(metadata["minidl.trainer"])
    if change_arrays:
        change_arrays(arrays)
    if change_record:
        change_record(record)
    save(arrays, out, format="npz", metadata={**metadata, "minidl.trainer": json.dumps(record)})
    return out


def _set(mapping, path, value):
    *head, last = path
    for key in head:
        mapping = mapping[key]
    mapping[last] = value


def _momentum_key(arrays):
    return next(k for k in arrays if k.startswith("optimizer/") and k.endswith("momentum_buffer"))


BAD_CHECKPOINTS = {
    "model shape": (lambda a: a.__setitem__("model/3.weight", np.zeros((3, 8), np.float32)), None,
                    "does not fit this model: 3.weight: checkpoint shape (3, 8), model shape (2, 8)"),
    "model key missing": (lambda a: a.pop("model/1.running_var"), None, "missing keys: 1.running_var"),
    "model dtype": (lambda a: a.__setitem__("model/0.bias", np.zeros(8, np.int32)), None,
                    "0.bias: checkpoint dtype int32"),
    "optimizer state shape": (lambda a: a.__setitem__(_momentum_key(a), np.zeros(5, np.float32)), None,
                              "momentum_buffer' of parameter"),
    "optimizer state array missing": (lambda a: a.pop(_momentum_key(a)), None,
                                      "refers to the array 'optimizer/state/"),
    "optimizer group count": (None, lambda r: r["optimizer"]["state"]["param_groups"].append(
        dict(r["optimizer"]["state"]["param_groups"][0])), "2 parameter groups"),
    "optimizer lr": (None, lambda r: _set(r, ("optimizer", "state", "param_groups", 0, "lr"), "fast"),
                     "has lr 'fast'"),
    "scheduler attribute missing": (None, lambda r: r["scheduler"]["state"].pop("step_size"),
                                    "the scheduler state holds"),
    "scheduler last_epoch": (None, lambda r: _set(r, ("scheduler", "state", "last_epoch"), "3"),
                             "last_epoch is '3'"),
    "scheduler type": (None, lambda r: _set(r, ("scheduler", "type"), "CosineAnnealingLR"),
                       "checkpoint scheduler is CosineAnnealingLR"),
    "rng state": (None, lambda r: _set(r, ("rng", "state"), {"state": "x"}), "random generator state"),
    "epoch": (None, lambda r: _set(r, ("epoch",), "3"), "'epoch' is str"),
    "history": (None, lambda r: _set(r, ("history",), [1, 2]), "history"),
}


@pytest.mark.parametrize("case", sorted(BAD_CHECKPOINTS))
def test_a_bad_checkpoint_raises_and_leaves_every_part_of_the_trainer_unchanged(checkpoint, tmp_path, case):
    change_arrays, change_record, message = BAD_CHECKPOINTS[case]
    bad = _rewrite(checkpoint, tmp_path / "bad.npz", change_arrays, change_record)
    trainer, loader = _trainer(1), _loader()
    trainer.fit(loader, epochs=1)  # its own optimizer state, scheduler epoch, history
    before = _state(trainer, loader)
    with pytest.raises(CheckpointError) as info:
        trainer.load_checkpoint(bad, train_loader=loader)
    assert message in str(info.value) and str(info.value).startswith(str(bad))
    _assert_unchanged(before, _state(trainer, loader))


def test_another_optimizer_is_refused_before_the_model_is_touched(checkpoint):
    # the old loader restored the model first and then failed on the optimizer: half-restored
    trainer, loader = _trainer(1, optimizer="adam"), _loader()
    trainer.fit(loader, epochs=1)
    before = _state(trainer, loader)
    with pytest.raises(CheckpointError, match="checkpoint optimizer is SGD, this run uses Adam"):
        trainer.load_checkpoint(checkpoint, train_loader=loader)
    _assert_unchanged(before, _state(trainer, loader))


def test_a_truncated_checkpoint_raises_and_changes_nothing(checkpoint, tmp_path):
    bad = tmp_path / "cut.npz"
    bad.write_bytes(checkpoint.read_bytes()[: os.path.getsize(checkpoint) // 2])
    trainer, loader = _trainer(1), _loader()
    trainer.fit(loader, epochs=1)
    before = _state(trainer, loader)
    with pytest.raises(ValueError, match="cut.npz"):
        trainer.load_checkpoint(bad, train_loader=loader)
    _assert_unchanged(before, _state(trainer, loader))


def test_a_restore_that_fails_after_the_checks_puts_every_part_back(checkpoint, monkeypatch):
    trainer, loader = _trainer(1), _loader()
    trainer.fit(loader, epochs=1)
    before = _state(trainer, loader)

    real, calls = minidl.random.set_rng_state, []

    def fails_once(state):  # the last part restored: model, optimizer, scheduler and loader already are
        calls.append(state)
        if len(calls) == 1:
            raise RuntimeError("disk on fire")
        real(state)

    monkeypatch.setattr(minidl.random, "set_rng_state", fails_once)
    with pytest.raises(CheckpointError, match=r"cannot restore the checkpoint \(RuntimeError: disk on fire\); "
                                              "nothing was changed"):
        trainer.load_checkpoint(checkpoint, train_loader=loader)
    monkeypatch.undo()
    _assert_unchanged(before, _state(trainer, loader))


def test_a_good_checkpoint_still_restores_everything(checkpoint):
    trainer, loader = _trainer(1), _loader()
    trainer.fit(loader, epochs=1)
    trainer.load_checkpoint(checkpoint, train_loader=loader)
    saved = load_checkpoint(checkpoint)
    for key, value in trainer.model.state_dict().items():
        np.testing.assert_array_equal(value.numpy(), saved[f"model/{key}"])
    assert trainer.epoch == 3 and trainer.scheduler.last_epoch == 3 and len(trainer.history) == 3
