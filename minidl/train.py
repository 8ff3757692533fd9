"""Training loop: epochs, validation, early stopping, schedulers, clipping, checkpoints, exact resume.

One epoch of supervised classification is, for every batch ``(x, y)``::

    out  = model(x)                                    # logits, or (logits, aux1, aux2, ...)
    loss = CE(logits, y) + aux_weight * sum_k CE(aux_k, y)   # label smoothing inside CE
    loss.backward(); clip gradients; optimizer.step(); scheduler.step() if per step

then the model is evaluated on the validation loader (no graph, eval mode), the per-epoch
scheduler steps (``ReduceLROnPlateau`` with the monitored metric), the history grows by one
row, ``last.npz`` (and ``best.npz`` when the monitored metric improved) are written
atomically, and early stopping counts epochs without improvement.

Auxiliary classifiers: GoogLeNet/Inception return a tuple or namedtuple
``(logits, aux...)`` in training mode; the auxiliary losses are added with weight 0.3
(Szegedy et al. 2015, section 5), ``None`` entries are skipped.

Checkpoints and exact resume
----------------------------
A checkpoint is one minidl ``.npz`` file (:func:`minidl.serialization.save`: arrays plus a
JSON record, never a pickle). The arrays are the model's state_dict under ``model/<name>``
and every array of the optimizer state under ``optimizer/...``; the JSON metadata holds
the rest: epoch, optimizer groups and scalar state, scheduler state, the global random
generator's state (dropout draws from it), the training loader's state (shuffle seed and
epoch), early-stopping counters and the history. Restoring all of these into freshly built
objects makes the resumed run bit-for-bit the run that was never interrupted.

Example::

    >>> import minidl, numpy as np
    >>> from minidl import nn, optim
    >>> from minidl.data import DataLoader, TensorDataset
    >>> from minidl.train import Trainer
    >>> _ = minidl.manual_seed(0)
    >>> x = np.random.default_rng(0).normal(size=(64, 4)).astype(np.float32)
    >>> y = (x[:, 0] > 0).astype(np.int64)
    >>> model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    >>> trainer = Trainer(model, optim.SGD(model.parameters(), lr=0.5), progress=False)
    >>> history = trainer.fit(DataLoader(TensorDataset(x, y), batch_size=16, shuffle=True), epochs=20)
    >>> history.last["train_acc"] > 0.9
    True
"""
from __future__ import annotations

import json
import math
import os
import sys
import time

import numpy as np

import minidl.nn.functional as F
from minidl import random as _random
from minidl.data import to_numpy
from minidl.grad_mode import no_grad
from minidl.nn.utils import clip_grad_norm_, clip_grad_value_
from minidl.optim import lr_scheduler as _lrs
from minidl.serialization import load_checkpoint as _load_arrays
from minidl.serialization import read_metadata, save

__all__ = [
    "CHECKPOINT_FORMAT",
    "History",
    "Trainer",
    "fit",
    "load_model_state",
    "param_groups",
    "read_trainer_metadata",
]

CHECKPOINT_FORMAT = "minidl-trainer"
_CHECKPOINT_VERSION = 1
_METADATA_KEY = "minidl.trainer"  # key of the JSON record inside the file's str -> str metadata
_MONITORS = {"val_loss": "min", "val_acc": "max", "train_loss": "min", "train_acc": "max"}


# --------------------------------------------------------------------------------------
# History
# --------------------------------------------------------------------------------------

class History:
    """Per-epoch records: ``epoch, train_loss, train_acc, val_loss, val_acc, lr, time``.

    ``history["val_acc"]`` is the column as a list (None where there was no validation);
    ``history.last`` the latest row; ``history.rows`` all rows (JSON-serialisable dicts).
    """

    def __init__(self, rows=None):
        self.rows = [dict(r) for r in (rows or [])]

    def append(self, row):
        self.rows.append(dict(row))

    def __getitem__(self, key):
        return [row.get(key) for row in self.rows]

    def __len__(self):
        return len(self.rows)

    @property
    def last(self):
        return self.rows[-1] if self.rows else {}

    def __repr__(self):
        return f"History({len(self.rows)} epochs)"


# --------------------------------------------------------------------------------------
# Transfer learning helper
# --------------------------------------------------------------------------------------

def param_groups(model, lr, head_lr=None, head=None):
    """Optimizer parameter groups for fine-tuning: a backbone group and a head group.

    Only trainable parameters (``requires_grad``) are included, so frozen layers
    (:func:`minidl.nn.freeze`) are left out of the optimizer entirely.

    Args:
        model: the Module.
        lr: learning rate of the backbone.
        head_lr: learning rate of the head (default ``lr``: then one group).
        head: name prefix(es) of the head parameters; default: the module that owns the
            last parameter of the model (``fc``, ``classifier.6``, ...).

    >>> from minidl import nn
    >>> net = nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 2))
    >>> [(len(g["params"]), g["lr"]) for g in param_groups(net, 0.01, head_lr=0.1)]
    [(2, 0.01), (2, 0.1)]
    """
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    if not named:
        raise ValueError("param_groups: the model has no trainable parameter (is everything frozen?)")
    if head_lr is None:
        return [{"params": [p for _, p in named], "lr": lr}]
    if head is None:
        last_name = list(model.named_parameters())[-1][0]
        head = (last_name.rpartition(".")[0] + ".") if "." in last_name else last_name
    prefixes = (head,) if isinstance(head, str) else tuple(head)
    head_params = [p for n, p in named if n.startswith(prefixes)]
    body_params = [p for n, p in named if not n.startswith(prefixes)]
    if not head_params:
        raise ValueError(f"param_groups: no trainable parameter name starts with {prefixes}")
    groups = [{"params": body_params, "lr": lr}] if body_params else []
    groups.append({"params": head_params, "lr": head_lr})
    return groups


# --------------------------------------------------------------------------------------
# Packing nested state (optimizer, scheduler) into JSON + arrays
# --------------------------------------------------------------------------------------

def _is_array(value):
    return isinstance(value, np.ndarray) or type(value).__module__.startswith("cupy")


def _pack(value, name, arrays):
    """JSON-able copy of ``value``; every array goes to ``arrays[name...]`` and is replaced by a reference."""
    if _is_array(value):
        if value.ndim == 0 and value.dtype.kind in "biuf":
            return value.item()
        arrays[name] = value.get() if hasattr(value, "get") else value
        return {"__array__": name}
    if isinstance(value, dict):
        return {str(k): _pack(v, f"{name}/{k}", arrays) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_pack(v, f"{name}/{i}", arrays) for i, v in enumerate(value)]
    if isinstance(value, np.generic):
        return value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"checkpoint: cannot store a value of type {type(value).__name__} at {name!r}")


def _unpack(value, arrays):
    """Inverse of :func:`_pack`: references become the stored arrays again."""
    if isinstance(value, dict):
        if set(value) == {"__array__"}:
            return arrays[value["__array__"]]
        return {k: _unpack(v, arrays) for k, v in value.items()}
    if isinstance(value, list):
        return [_unpack(v, arrays) for v in value]
    return value


# --------------------------------------------------------------------------------------
# Checkpoint files
# --------------------------------------------------------------------------------------

def read_trainer_metadata(path):
    """The JSON record of a trainer checkpoint (``{}`` for a plain weights file)."""
    metadata = read_metadata(path)
    if _METADATA_KEY not in metadata:
        return {}
    try:
        return json.loads(metadata[_METADATA_KEY])
    except json.JSONDecodeError as err:
        raise ValueError(f"{os.fspath(path)}: trainer record is not valid JSON ({err})") from None


def load_model_state(path):
    """The model's state_dict from a trainer checkpoint, or a plain weights file as it is."""
    arrays = _load_arrays(path)
    prefix = "model/"
    if any(k.startswith(prefix) for k in arrays):
        return {k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)}
    return dict(arrays)


# --------------------------------------------------------------------------------------
# The trainer
# --------------------------------------------------------------------------------------

def _split_outputs(out):
    """``(main logits, [aux logits...])`` from a Tensor or a (named)tuple of Tensors."""
    if isinstance(out, (tuple, list)):
        return out[0], [o for o in out[1:] if o is not None]
    return out, []


class Trainer:
    """Train a classifier; see the module docstring for the loop and the checkpoint contents.

    Args:
        model: a ``minidl.nn.Module`` returning logits (N, C) or ``(logits, aux...)``.
        optimizer: a ``minidl.optim.Optimizer`` over (some of) the model's parameters.
        scheduler: an lr scheduler or None. ``ReduceLROnPlateau`` steps once per epoch with
            the monitored metric; others step per epoch, or per batch with
            ``scheduler_interval="step"`` (the default for ``OneCycleLR``).
        loss_fn: ``loss_fn(logits, target) -> scalar Tensor``; default cross-entropy with
            ``label_smoothing``.
        aux_weight: weight of each auxiliary classifier's loss (0.3, as GoogLeNet).
        clip_grad_norm / clip_grad_value: gradient clipping before each step (None: off).
        early_stopping: stop after this many epochs without improvement of ``monitor``
            (None: never).
        monitor: ``val_loss`` (min), ``val_acc`` (max), or ``train_loss``/``train_acc``;
            used by early stopping, the best checkpoint and ReduceLROnPlateau. Without a
            validation loader ``val_*`` falls back to ``train_*``.
        checkpoint_dir: folder for ``last.npz`` (every epoch) and ``best.npz``.
        config: JSON-able dict stored in checkpoints (model name, options) for the CLI.
        progress: show tqdm bars and one summary line per epoch.
        device: ``"cpu"``/``"cuda"`` to move every batch there (the model must be moved by the
            caller); None leaves batches where the loader put them.
        batch_loss: ``batch_loss(model, x, y) -> scalar Tensor`` for models that compute their
            own losses (Faster R-CNN returns a dict of losses in training mode): it replaces
            ``model(x)`` and the criterion; no accuracy is counted (``train_acc`` is None).
        max_steps: stop training after this many optimizer steps (mid-epoch; the partial epoch
            gets its history row). None: no limit.
        should_stop: ``should_stop(trainer) -> bool``, asked after every step (a time budget,
            say); True ends training as ``max_steps`` does.
    """

    def __init__(self, model, optimizer, scheduler=None, loss_fn=None, label_smoothing=0.0, aux_weight=0.3,
                 clip_grad_norm=None, clip_grad_value=None, early_stopping=None, monitor="val_loss",
                 scheduler_interval=None, checkpoint_dir=None, config=None, progress=True, file=None, device=None,
                 batch_loss=None, max_steps=None, should_stop=None):
        if monitor not in _MONITORS:
            raise ValueError(f"monitor: expected one of {sorted(_MONITORS)}, got {monitor!r}")
        if not 0.0 <= label_smoothing < 1.0:
            raise ValueError(f"label_smoothing: expected a number in [0, 1), got {label_smoothing!r}")
        if early_stopping is not None and (not isinstance(early_stopping, int) or early_stopping < 1):
            raise ValueError(f"early_stopping: expected None or an int >= 1 (patience), got {early_stopping!r}")
        if scheduler_interval is None:
            scheduler_interval = "step" if isinstance(scheduler, _lrs.OneCycleLR) else "epoch"
        if scheduler_interval not in ("epoch", "step"):
            raise ValueError(f"scheduler_interval: expected 'epoch' or 'step', got {scheduler_interval!r}")
        if isinstance(scheduler, _lrs.ReduceLROnPlateau) and scheduler_interval == "step":
            raise ValueError("scheduler_interval: ReduceLROnPlateau steps once per epoch, got 'step'")
        self.model = model
        self.optimizer = optimizer
        self.scheduler = scheduler
        self.scheduler_interval = scheduler_interval
        self.loss_fn = loss_fn
        self.label_smoothing = float(label_smoothing)
        self.aux_weight = float(aux_weight)
        self.clip_grad_norm = clip_grad_norm
        self.clip_grad_value = clip_grad_value
        self.early_stopping = early_stopping
        self.monitor = monitor
        self.checkpoint_dir = None if checkpoint_dir is None else os.fspath(checkpoint_dir)
        self.config = dict(config or {})
        self.progress = progress
        self.file = file
        self.device = device
        if batch_loss is not None and not callable(batch_loss):
            raise TypeError(f"batch_loss: expected a callable or None, got {type(batch_loss).__name__}")
        if max_steps is not None and (not isinstance(max_steps, int) or max_steps < 1):
            raise ValueError(f"max_steps: expected None or an int >= 1, got {max_steps!r}")
        if should_stop is not None and not callable(should_stop):
            raise TypeError(f"should_stop: expected a callable or None, got {type(should_stop).__name__}")
        self.batch_loss = batch_loss
        self.max_steps = max_steps
        self.should_stop = should_stop
        self.halted = False         # max_steps or should_stop ended training
        # state that a checkpoint carries
        self.epoch = 0              # epochs completed
        self.global_step = 0        # optimizer steps taken
        self.history = History()
        self.best_value = None      # best monitored value so far
        self.best_epoch = None
        self.bad_epochs = 0         # epochs since the last improvement
        self.stopped_early = False

    # ------------------------------------------------------------------ one batch
    def _loss(self, out, target):
        """Main loss plus ``aux_weight`` times each auxiliary loss; returns (total, main logits)."""
        logits, aux = _split_outputs(out)
        criterion = self.loss_fn or (lambda z, t: F.cross_entropy(z, t, label_smoothing=self.label_smoothing))
        total = criterion(logits, target)
        for extra in aux:
            total = total + self.aux_weight * criterion(extra, target)
        return total, logits

    def _params(self):
        return [p for group in self.optimizer.param_groups for p in group["params"]]

    def _to_device(self, batch):
        return batch if self.device is None else batch.to(self.device)

    def _optimize(self, loss):
        """Backward, clip, optimizer step and (per-step) scheduler step."""
        self.optimizer.zero_grad()
        loss.backward()
        if self.clip_grad_value is not None:
            clip_grad_value_(self._params(), self.clip_grad_value)
        if self.clip_grad_norm is not None:
            clip_grad_norm_(self._params(), self.clip_grad_norm)
        self.optimizer.step()
        self.global_step += 1
        if self.scheduler is not None and self.scheduler_interval == "step":
            self.scheduler.step()

    def batch_loss_step(self, x, y):
        """One step with ``batch_loss`` (the model computes its losses); returns (loss, None)."""
        loss = self.batch_loss(self.model, self._to_device(x), y)
        self._optimize(loss)
        return float(loss.item()), None

    def train_step(self, x, y):
        """Forward, backward, clip, step on one batch; returns (loss, number correct)."""
        labels = to_numpy(y)  # host copy for the accuracy count
        x, y = self._to_device(x), self._to_device(y)
        out = self.model(x)
        loss, logits = self._loss(out, y)
        self._optimize(loss)
        host = logits.detach().to("cpu") if self.device is not None else logits
        correct = int((to_numpy(host).argmax(axis=1) == labels).sum())
        return float(loss.item()), correct

    # ------------------------------------------------------------------ evaluation
    def evaluate(self, loader, desc="eval"):
        """Loss, accuracy and per-sample scores over ``loader`` in eval mode, without a graph.

        Returns a dict: ``loss`` (mean over samples), ``acc``, ``logits`` (N, C) float64,
        ``targets`` (N,) int64, ``preds`` (N,).
        """
        was_training = self.model.training
        self.model.eval()
        total_loss, logits_all, targets_all = 0.0, [], []
        try:
            with no_grad():
                for x, y in self._bar(loader, desc, leave=False):
                    labels = to_numpy(y, dtype=np.int64)
                    out = self.model(self._to_device(x))
                    loss, logits = self._loss(out, self._to_device(y))
                    if self.device is not None:
                        logits = logits.to("cpu")
                    total_loss += float(loss.item()) * len(labels)
                    logits_all.append(np.asarray(logits.numpy(), dtype=np.float64))
                    targets_all.append(labels)
        finally:
            self.model.train(was_training)
        if not targets_all:
            raise ValueError("evaluate: the loader yielded no batch")
        logits = np.concatenate(logits_all)
        targets = np.concatenate(targets_all)
        preds = logits.argmax(axis=1)
        return {"loss": total_loss / len(targets), "acc": float((preds == targets).mean()),
                "logits": logits, "targets": targets, "preds": preds}

    # ------------------------------------------------------------------ the loop
    def fit(self, train_loader, val_loader=None, epochs=10, resume=False):
        """Train until ``epochs`` epochs are completed (counting any resumed ones); returns the History.

        ``resume``: False; True to continue from ``checkpoint_dir/last.npz`` when it exists;
        or the path of a checkpoint. The training loader's position is restored too, so
        pass the same kind of loader (same dataset and batch size) as the first run.
        """
        if not isinstance(epochs, int) or epochs < 1:
            raise ValueError(f"epochs: expected an int >= 1, got {epochs!r}")
        if resume:
            path = resume if isinstance(resume, (str, os.PathLike)) else self._path("last.npz")
            if path is None:
                raise ValueError("resume=True needs checkpoint_dir (or pass the checkpoint path)")
            if os.path.isfile(path):
                self.load_checkpoint(path, train_loader=train_loader)
                self._log(f"resumed from {os.fspath(path)} after epoch {self.epoch}")
            elif not isinstance(resume, bool):
                raise FileNotFoundError(f"resume: checkpoint file not found: {os.fspath(path)}")
        while self.epoch < epochs and not self.stopped_early and not self.halted:
            self._run_epoch(train_loader, val_loader, epochs)
        return self.history

    def _run_epoch(self, train_loader, val_loader, epochs):
        start = time.perf_counter()
        epoch = self.epoch + 1
        self.model.train()
        # keep the loader's epoch in step with ours (a loader reused across fit calls)
        if (hasattr(train_loader, "set_epoch") and hasattr(train_loader, "state_dict")
                and train_loader.state_dict()["batches_done"] == 0):
            train_loader.set_epoch(self.epoch)
        lr = float(self.optimizer.param_groups[-1]["lr"])
        seen, loss_sum, correct = 0, 0.0, 0
        bar = self._bar(train_loader, f"epoch {epoch}/{epochs}", leave=False)
        step = self.train_step if self.batch_loss is None else self.batch_loss_step
        for x, y in bar:
            loss, ok = step(x, y)
            n = len(y)  # a Tensor of labels, or a list of detection targets
            seen += n
            loss_sum += loss * n
            correct = None if ok is None else correct + ok
            if hasattr(bar, "set_postfix"):
                acc = {} if correct is None else {"acc": f"{correct / seen:.3f}"}
                bar.set_postfix(loss=f"{loss_sum / seen:.4f}", **acc, refresh=False)
            if self._halt():
                break
        if seen == 0:
            raise ValueError("fit: the training loader yielded no batch")
        train_acc = None if correct is None else correct / seen
        row = {"epoch": epoch, "train_loss": loss_sum / seen, "train_acc": train_acc,
               "val_loss": None, "val_acc": None, "lr": lr}
        if val_loader is not None:
            result = self.evaluate(val_loader, desc="validate")
            row["val_loss"], row["val_acc"] = result["loss"], result["acc"]
        value = self._monitored(row)
        if self.scheduler is not None and self.scheduler_interval == "epoch":
            if isinstance(self.scheduler, _lrs.ReduceLROnPlateau):
                self.scheduler.step(value)
            else:
                self.scheduler.step()
        improved = self._improved(value)
        if improved:
            self.best_value, self.best_epoch, self.bad_epochs = value, epoch, 0
        else:
            self.bad_epochs += 1
        if self.early_stopping is not None and self.bad_epochs >= self.early_stopping:
            self.stopped_early = True
        row["time"] = time.perf_counter() - start
        self.epoch = epoch
        self.history.append(row)
        if self.checkpoint_dir is not None:
            os.makedirs(self.checkpoint_dir, exist_ok=True)
            self.save_checkpoint(self._path("last.npz"), train_loader=train_loader)
            if improved:
                self.save_checkpoint(self._path("best.npz"), train_loader=train_loader)
        self._log(self._summary(row, improved))
        if self.stopped_early:
            self._log(f"early stopping: {self.monitor} has not improved for {self.bad_epochs} epochs "
                      f"(best {self.best_value:.4f} at epoch {self.best_epoch})")

    def _halt(self):
        """True (and ``halted`` set) when ``max_steps`` is reached or ``should_stop`` says so."""
        if self.max_steps is not None and self.global_step >= self.max_steps:
            self.halted = True
        elif self.should_stop is not None and self.should_stop(self):
            self.halted = True
        return self.halted

    def _monitored(self, row):
        key = self.monitor
        if row.get(key) is None:  # no validation: watch the training metric instead
            key = key.replace("val_", "train_")
        return float(row[key])

    def _improved(self, value):
        if self.best_value is None or math.isnan(self.best_value):
            return not math.isnan(value)
        if _MONITORS[self.monitor] == "min":
            return value < self.best_value
        return value > self.best_value

    def _summary(self, row, improved):
        text = f"epoch {row['epoch']}: train loss {row['train_loss']:.4f}"
        if row["train_acc"] is not None:
            text += f" acc {100 * row['train_acc']:.1f}%"
        if row["val_loss"] is not None:
            text += f", val loss {row['val_loss']:.4f} acc {100 * row['val_acc']:.1f}%"
        text += f", lr {row['lr']:.3g}, {row['time']:.1f} s" + (" *" if improved else "")
        return text

    # ------------------------------------------------------------------ output helpers
    def _bar(self, iterable, desc, leave):
        if not self.progress:
            return iterable
        from tqdm import tqdm

        # One iter() call only: a DataLoader counts epochs by its iter() calls, and some tqdm
        # front-ends (tqdm.auto's asyncio class) call iter() on a plain iterable twice.
        total = len(iterable) if hasattr(iterable, "__len__") else None
        return tqdm(iter(iterable), total=total, desc=desc, leave=leave, file=self.file or sys.stderr,
                    dynamic_ncols=True)

    def _log(self, text):
        if not self.progress:
            return
        from tqdm import tqdm

        tqdm.write(text, file=self.file or sys.stderr)

    def _path(self, name):
        return None if self.checkpoint_dir is None else os.path.join(self.checkpoint_dir, name)

    # ------------------------------------------------------------------ checkpoints
    def save_checkpoint(self, path, train_loader=None):
        """Write model, optimizer, scheduler, RNG, loader and trainer state to ``path`` atomically."""
        arrays = {}
        for name, value in self.model.state_dict().items():
            arrays[f"model/{name}"] = to_numpy(value)
        record = {
            "format": CHECKPOINT_FORMAT,
            "version": _CHECKPOINT_VERSION,
            "config": self.config,
            "epoch": self.epoch,
            "global_step": self.global_step,
            "optimizer": {"type": type(self.optimizer).__name__,
                          "state": _pack(self.optimizer.state_dict(), "optimizer", arrays)},
            "scheduler": None if self.scheduler is None else {
                "type": type(self.scheduler).__name__,
                "state": _pack(self.scheduler.state_dict(), "scheduler", arrays)},
            "rng": _pack(_random.get_rng_state(), "rng", arrays),
            "train_loader": train_loader.state_dict() if hasattr(train_loader, "state_dict") else None,
            "best_value": self.best_value,
            "best_epoch": self.best_epoch,
            "bad_epochs": self.bad_epochs,
            "stopped_early": self.stopped_early,
            "monitor": self.monitor,
            "history": self.history.rows,
        }
        save(arrays, path, format="npz", metadata={_METADATA_KEY: json.dumps(record)})

    def load_checkpoint(self, path, train_loader=None):
        """Restore everything :meth:`save_checkpoint` wrote into this trainer's (fresh) objects.

        Raises ValueError when the file is not a trainer checkpoint, or was written for another
        architecture or optimizer (the message names what differs).
        """
        source = os.fspath(path)
        record = read_trainer_metadata(source)
        if record.get("format") != CHECKPOINT_FORMAT:
            raise ValueError(f"{source}: not a minidl trainer checkpoint (no {_METADATA_KEY!r} record)")
        arrays = _load_arrays(source)
        model_state = {k[len("model/"):]: v for k, v in arrays.items() if k.startswith("model/")}
        try:
            self.model.load_state_dict(model_state, strict=True)
        except RuntimeError as err:
            raise ValueError(f"{source}: checkpoint does not fit this model: {err}") from None
        saved_opt = record["optimizer"]
        if saved_opt["type"] != type(self.optimizer).__name__:
            raise ValueError(f"{source}: checkpoint optimizer is {saved_opt['type']}, "
                             f"this run uses {type(self.optimizer).__name__}")
        self.optimizer.load_state_dict(_unpack(saved_opt["state"], arrays))
        if (record["scheduler"] is None) != (self.scheduler is None) or (
                self.scheduler is not None and record["scheduler"]["type"] != type(self.scheduler).__name__):
            saved = None if record["scheduler"] is None else record["scheduler"]["type"]
            raise ValueError(f"{source}: checkpoint scheduler is {saved}, "
                             f"this run uses {None if self.scheduler is None else type(self.scheduler).__name__}")
        if self.scheduler is not None:
            self.scheduler.load_state_dict(_unpack(record["scheduler"]["state"], arrays))
        _random.set_rng_state(_unpack(record["rng"], arrays))
        if train_loader is not None and record.get("train_loader") is not None:
            train_loader.load_state_dict(record["train_loader"])
        self.epoch = int(record["epoch"])
        self.global_step = int(record["global_step"])
        self.best_value = record["best_value"]
        self.best_epoch = record["best_epoch"]
        self.bad_epochs = int(record["bad_epochs"])
        self.stopped_early = bool(record["stopped_early"])
        self.history = History(record["history"])
        return record


def fit(model, optimizer, train_loader, val_loader=None, epochs=10, resume=False, **trainer_kwargs):
    """Functional form: ``Trainer(model, optimizer, **trainer_kwargs).fit(...)``; returns (trainer, history)."""
    trainer = Trainer(model, optimizer, **trainer_kwargs)
    history = trainer.fit(train_loader, val_loader, epochs=epochs, resume=resume)
    return trainer, history
