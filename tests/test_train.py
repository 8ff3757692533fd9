"""Trainer: exact resume, early stopping, schedulers, clipping, aux losses, transfer learning."""
import io
import json
import os
import time
from collections import namedtuple

import numpy as np
import pytest
from minidl.datasets import load_digits

import minidl
import minidl.nn.functional as F
from minidl import nn, optim
from minidl.data import DataLoader, TensorDataset, random_split
from minidl.nn.utils import clip_grad_norm_, clip_grad_value_
from minidl.optim import lr_scheduler
from minidl.serialization import read_metadata
from minidl.train import (
    History,
    Trainer,
    fit,
    load_model_state,
    param_groups,
    read_trainer_metadata,
)


def _digits(n_train=512):
    x, y = load_digits("train")
    return TensorDataset(x[:n_train], y[:n_train]), TensorDataset(*load_digits("test"))


def _mlp(dropout=0.2):
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Dropout(dropout), nn.Linear(32, 10))


SCHEDULES = {
    "sgd_step": (lambda p: optim.SGD(p, lr=0.1, momentum=0.9, weight_decay=1e-4),
                 lambda o, steps: lr_scheduler.StepLR(o, step_size=2, gamma=0.5)),
    "adam_onecycle": (lambda p: optim.Adam(p, lr=1e-3),
                      lambda o, steps: lr_scheduler.OneCycleLR(o, max_lr=0.01, total_steps=steps)),
    "nadam_plateau": (lambda p: optim.NAdam(p, lr=2e-3),
                      lambda o, steps: lr_scheduler.ReduceLROnPlateau(o, patience=0, factor=0.5)),
}


def _build(kind, seed, checkpoint_dir, epochs, progress=False):
    """Everything a fresh process would build: model, optimizer, scheduler, loaders, trainer."""
    minidl.manual_seed(seed)
    train, _ = _digits()
    train_part, val_part = random_split(train, [0.8, 0.2], generator=0)
    loader = DataLoader(train_part, batch_size=32, shuffle=True)  # base seed drawn from the global RNG
    val_loader = DataLoader(val_part, batch_size=128)
    model = _mlp()
    make_opt, make_sched = SCHEDULES[kind]
    opt = make_opt(model.parameters())
    sched = make_sched(opt, epochs * len(loader))
    trainer = Trainer(model, opt, scheduler=sched, checkpoint_dir=checkpoint_dir, progress=progress,
                      file=io.StringIO(), label_smoothing=0.05, clip_grad_norm=5.0)
    return trainer, loader, val_loader


@pytest.mark.parametrize("kind", sorted(SCHEDULES))
def test_resume_is_bit_exact(tmp_path, kind):
    """N epochs straight == k epochs, stop, fresh objects (other seed), resume to N: every weight equal."""
    epochs, k = 4, 2
    progress = kind == "sgd_step"  # progress bars must not change what the loader yields
    straight, loader, val = _build(kind, 0, tmp_path / "a", epochs)
    straight.fit(loader, val, epochs=epochs)

    first, loader, val = _build(kind, 0, tmp_path / "b", epochs, progress)
    first.fit(loader, val, epochs=k)
    assert first.epoch == k
    # a "new process": different global seed, so anything not restored would show
    resumed, loader, val = _build(kind, 123, tmp_path / "b", epochs, progress)
    history = resumed.fit(loader, val, epochs=epochs, resume=True)

    assert len(history) == epochs and history["epoch"] == [1, 2, 3, 4]
    a, b = straight.model.state_dict(), resumed.model.state_dict()
    assert list(a) == list(b)
    for name in a:
        assert np.array_equal(a[name].numpy(), b[name].numpy()), name
    sa, sb = straight.optimizer.state_dict(), resumed.optimizer.state_dict()
    for index, state in sa["state"].items():
        for key, value in state.items():
            if isinstance(value, np.ndarray):
                assert np.array_equal(value, sb["state"][index][key]), (index, key)
            else:
                assert value == sb["state"][index][key]
    assert straight.optimizer.param_groups[0]["lr"] == resumed.optimizer.param_groups[0]["lr"]
    assert straight.history["train_loss"] == history["train_loss"]
    if progress:
        assert "resumed from" in resumed.file.getvalue() and "epoch 4:" in resumed.file.getvalue()


class _CountingLoader(DataLoader):
    def __iter__(self):
        self.epochs_seen = getattr(self, "epochs_seen", []) + [self._next_epoch]
        return super().__iter__()


@pytest.mark.parametrize("progress", [False, True])
def test_each_epoch_iterates_the_loader_once(progress):
    """tqdm.auto calls iter() twice on an iterable, which would skip loader epochs: not here."""
    minidl.manual_seed(0)
    train, _ = _digits(64)
    loader = _CountingLoader(train, batch_size=32, shuffle=True)
    model = _mlp()
    Trainer(model, optim.SGD(model.parameters(), lr=0.1), progress=progress, file=io.StringIO()).fit(loader, epochs=3)
    assert loader.epochs_seen == [0, 1, 2]


def test_the_progress_estimate_leaves_out_the_first_batch():
    """A first run's first batch waits on the compiler: the bar's clock and rate start after it."""
    from minidl.train import _Progress

    progress = _Progress(range(5), desc="epoch", leave=False, file=io.StringIO())
    for item in progress:
        time.sleep(0.5 if item == 0 else 0.01)
    bar = progress.bar.format_dict
    assert bar["n"] == 5 and bar["total"] == 5
    assert bar["elapsed"] < 0.45  # the 0.5 s of the first item is not in it


def test_checkpoint_files_are_npz_with_json(tmp_path):
    trainer, loader, val = _build("sgd_step", 0, tmp_path, 2)
    trainer.config = {"model": "test-mlp"}
    trainer.fit(loader, val, epochs=2)
    assert sorted(os.listdir(tmp_path)) == ["best.npz", "last.npz"]  # no temporary file left
    record = read_trainer_metadata(tmp_path / "last.npz")
    assert record["epoch"] == 2 and record["config"] == {"model": "test-mlp"}
    assert json.loads(read_metadata(tmp_path / "last.npz")["minidl.trainer"])["format"] == "minidl-trainer"
    with np.load(tmp_path / "last.npz", allow_pickle=False) as npz:  # never a pickle
        assert "model/1.weight" in npz.files
    state = load_model_state(tmp_path / "best.npz")
    fresh = _mlp()
    fresh.load_state_dict(state)  # the model part alone loads into a plain model
    best_epoch = record["best_epoch"]
    assert record["history"][best_epoch - 1]["val_loss"] == min(r["val_loss"] for r in record["history"])


def test_wrong_architecture_is_refused(tmp_path):
    trainer, loader, val = _build("sgd_step", 0, tmp_path, 1)
    trainer.fit(loader, val, epochs=1)
    other = nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, 10))
    t2 = Trainer(other, optim.SGD(other.parameters(), lr=0.1), progress=False)
    with pytest.raises(ValueError, match="does not fit this model"):
        t2.load_checkpoint(tmp_path / "last.npz")
    plain = tmp_path / "plain.npz"
    minidl.serialization.save(other, plain)
    with pytest.raises(ValueError, match="not a minidl trainer checkpoint"):
        t2.load_checkpoint(plain)


def test_early_stopping_stops_and_resume_respects_it(tmp_path):
    minidl.manual_seed(0)
    train, _ = _digits(128)
    model = _mlp()
    opt = optim.SGD(model.parameters(), lr=0.0)  # lr 0: the loss never improves after epoch 1
    trainer = Trainer(model, opt, early_stopping=2, monitor="train_loss", checkpoint_dir=tmp_path,
                      progress=False)
    history = trainer.fit(DataLoader(train, batch_size=64, shuffle=True), epochs=10)
    # dropout makes the epoch losses differ; with lr 0 the model is fixed, so stopping comes early
    assert trainer.stopped_early and len(history) < 10
    assert trainer.bad_epochs == 2
    # resuming a run that stopped early trains no further epoch
    fresh = _mlp()
    again = Trainer(fresh, optim.SGD(fresh.parameters(), lr=0.0), early_stopping=2, monitor="train_loss",
                    checkpoint_dir=tmp_path, progress=False)
    assert len(again.fit(DataLoader(train, batch_size=64), epochs=10, resume=True)) == len(history)
    assert again.stopped_early


def test_reduce_on_plateau_lowers_lr_and_history_records_it():
    minidl.manual_seed(1)
    train, _ = _digits(128)
    model = _mlp(0.0)
    opt = optim.SGD(model.parameters(), lr=1e-3)
    sched = lr_scheduler.ReduceLROnPlateau(opt, patience=0, factor=0.5, threshold=0.5)
    trainer = Trainer(model, opt, scheduler=sched, monitor="val_loss", progress=False)
    history = trainer.fit(DataLoader(train, batch_size=64), DataLoader(train, batch_size=64), epochs=4)
    # epoch 1 improves on +inf; each later epoch misses the 50% threshold and halves the lr
    assert history["lr"] == [1e-3, 1e-3, 5e-4, 2.5e-4]  # lr used in each epoch


def test_training_learns_digits_and_history_is_complete():
    minidl.manual_seed(0)
    train, test = _digits(1438)
    model = _mlp(0.1)
    trainer, history = fit(model, optim.SGD(model.parameters(), lr=0.1, momentum=0.9),
                           DataLoader(train, batch_size=32, shuffle=True), DataLoader(test, batch_size=256),
                           epochs=6, progress=False)
    assert isinstance(history, History) and len(history) == 6
    assert history.last["val_acc"] > 0.93
    assert history["train_loss"][-1] < history["train_loss"][0]
    result = trainer.evaluate(DataLoader(test, batch_size=100))
    assert result["acc"] == pytest.approx(history.last["val_acc"])
    assert result["logits"].shape == (359, 10)


Outputs = namedtuple("Outputs", ["logits", "aux_logits2", "aux_logits1"])


class _AuxNet(nn.Module):
    """Returns (logits, aux2, aux1) in training mode, as GoogLeNet; aux1 may be None."""

    def __init__(self, with_aux1=True):
        super().__init__()
        self.body = nn.Linear(4, 3)
        self.aux = nn.Linear(4, 3)
        self.with_aux1 = with_aux1

    def forward(self, x):
        if self.training:
            return Outputs(self.body(x), self.aux(x), self.aux(x) * 2.0 if self.with_aux1 else None)
        return self.body(x)


@pytest.mark.parametrize("with_aux1", [True, False])
def test_aux_losses_are_weighted(with_aux1):
    rng = np.random.default_rng(0)
    x = minidl.tensor(rng.normal(size=(6, 4)).astype(np.float32))
    y = minidl.tensor(rng.integers(0, 3, 6))
    net = _AuxNet(with_aux1)
    trainer = Trainer(net, optim.SGD(net.parameters(), lr=0.1), aux_weight=0.4, progress=False)
    total, logits = trainer._loss(net(x), y)
    expected = F.cross_entropy(net.body(x), y).item() + 0.4 * F.cross_entropy(net.aux(x), y).item()
    if with_aux1:
        expected += 0.4 * F.cross_entropy(net.aux(x) * 2.0, y).item()
    assert total.item() == pytest.approx(expected, rel=1e-6)
    assert logits.shape == (6, 3)


def test_label_smoothing_is_passed_to_the_loss():
    rng = np.random.default_rng(0)
    x = minidl.tensor(rng.normal(size=(6, 4)).astype(np.float32))
    y = minidl.tensor(rng.integers(0, 3, 6))
    net = nn.Linear(4, 3)
    trainer = Trainer(net, optim.SGD(net.parameters(), lr=0.1), label_smoothing=0.2, progress=False)
    total, _ = trainer._loss(net(x), y)
    assert total.item() == pytest.approx(F.cross_entropy(net(x), y, label_smoothing=0.2).item(), rel=1e-6)


def test_transfer_learning_frozen_layers_stay_and_head_learns():
    minidl.manual_seed(0)
    train, test = _digits(512)
    model = _mlp(0.0)
    frozen = nn.freeze(model, first_n=2)  # the first Linear's weight and bias
    assert frozen == ["1.weight", "1.bias"]
    before = {n: p.numpy().copy() for n, p in model.named_parameters()}
    head = nn.replace_head(model, 10)
    groups = param_groups(model, lr=0.01, head_lr=0.2)
    assert [g["lr"] for g in groups] == [0.2] and len(groups[0]["params"]) == 2  # only the head trains
    trainer = Trainer(model, optim.SGD(groups, lr=0.01, momentum=0.9), progress=False)
    history = trainer.fit(DataLoader(train, batch_size=32, shuffle=True), DataLoader(test, batch_size=256),
                          epochs=4)
    assert np.array_equal(model.get_submodule("1").weight.numpy(), before["1.weight"])
    assert np.array_equal(model.get_submodule("1").bias.numpy(), before["1.bias"])
    assert not np.array_equal(head.weight.numpy(), before["4.weight"])
    assert history.last["val_acc"] > 0.6  # a linear head on fixed random ReLU features learns


def test_param_groups_by_prefix_and_errors():
    model = _mlp()
    groups = param_groups(model, lr=0.01, head_lr=0.1, head="4.")
    assert [len(g["params"]) for g in groups] == [2, 2] and [g["lr"] for g in groups] == [0.01, 0.1]
    opt = optim.Adam(groups)
    assert [g["lr"] for g in opt.param_groups] == [0.01, 0.1]
    with pytest.raises(ValueError, match="no trainable parameter name starts with"):
        param_groups(model, lr=0.01, head_lr=0.1, head="nope")
    nn.freeze(model)
    with pytest.raises(ValueError, match="no trainable parameter"):
        param_groups(model, lr=0.01)


def test_bad_trainer_options():
    model = _mlp()
    opt = optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(ValueError, match="monitor"):
        Trainer(model, opt, monitor="loss")
    with pytest.raises(ValueError, match="early_stopping"):
        Trainer(model, opt, early_stopping=0)
    with pytest.raises(ValueError, match="scheduler_interval"):
        Trainer(model, opt, scheduler=lr_scheduler.ReduceLROnPlateau(opt), scheduler_interval="step")
    with pytest.raises(ValueError, match="epochs"):
        Trainer(model, opt, progress=False).fit([], epochs=0)


# ------------------------------------------------------------------------------ clipping
def _params_with_grads(rng, shapes=((3, 4), (5,))):
    params = []
    for shape in shapes:
        p = nn.Parameter(minidl.tensor(rng.normal(size=shape).astype(np.float32)))
        p.grad = minidl.tensor(rng.normal(size=shape).astype(np.float32) * 3)
        params.append(p)
    return params


@pytest.mark.parametrize("norm_type", [1.0, 2.0, 3.0, float("inf")])
@pytest.mark.parametrize("max_norm", [0.5, 100.0])
def test_clip_grad_norm_matches_torch(norm_type, max_norm):
    torch = pytest.importorskip("torch")
    ours = _params_with_grads(np.random.default_rng(0))
    theirs = [torch.nn.Parameter(torch.tensor(p.numpy())) for p in ours]
    for p, t in zip(ours, theirs):
        t.grad = torch.tensor(p.grad.numpy())
    total = clip_grad_norm_(ours, max_norm, norm_type=norm_type)
    expected = torch.nn.utils.clip_grad_norm_(theirs, max_norm, norm_type=norm_type)
    assert float(total) == pytest.approx(float(expected), rel=1e-5)
    for p, t in zip(ours, theirs):
        np.testing.assert_allclose(p.grad.numpy(), t.grad.numpy(), rtol=1e-5, atol=1e-7)


def test_clip_grad_value_and_errors():
    torch = pytest.importorskip("torch")
    ours = _params_with_grads(np.random.default_rng(1))
    theirs = [torch.nn.Parameter(torch.tensor(p.numpy())) for p in ours]
    for p, t in zip(ours, theirs):
        t.grad = torch.tensor(p.grad.numpy())
    clip_grad_value_(ours, 0.7)
    torch.nn.utils.clip_grad_value_(theirs, 0.7)
    for p, t in zip(ours, theirs):
        np.testing.assert_array_equal(p.grad.numpy(), t.grad.numpy())
    ours[0].grad.numpy()[0, 0] = np.nan
    with pytest.raises(ValueError, match="total norm"):
        clip_grad_norm_(ours, 1.0, error_if_nonfinite=True)
    with pytest.raises(ValueError, match="max_norm"):
        clip_grad_norm_(ours, -1.0)
    with pytest.raises(ValueError, match="clip_value"):
        clip_grad_value_(ours, "a")
    no_grad = nn.Parameter(minidl.ones(2))
    assert float(clip_grad_norm_([no_grad], 1.0)) == 0.0
