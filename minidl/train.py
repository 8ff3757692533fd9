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
``(logits, aux...)`` in training mode; the auxiliary losses are added with the weight the
model declares as its ``aux_weight`` attribute (GoogLeNet 0.3, Szegedy et al. 2015, section 5;
Inception v3 0.4, torchvision's recipe), the same one its loss helper uses (``googlenet_loss``,
``inception_v3_loss``); 0.3 for a model that declares none. ``None`` entries are skipped.

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

import copy
import json
import math
import os
import sys
import time

import numpy as np

import minidl.nn.functional as F
from minidl import random as _random
from minidl.data import to_numpy
from minidl.errors import CheckpointError
from minidl.grad_mode import detect_anomaly as _detect_anomaly
from minidl.grad_mode import no_grad
from minidl import distributed as _dist
from minidl.data.distributed import DistributedSampler
from minidl.nn.parallel import DistributedDataParallel
from minidl.nn.utils import clip_grad_norm_, clip_grad_value_
from minidl.optim import lr_scheduler as _lrs
from minidl.serialization import load_checkpoint as _load_arrays
from minidl.serialization import TRAINER_RECORD_KEY, read_metadata, save
from minidl.serialization import unpack_array_references as _unpack
from minidl.tensor import Tensor

__all__ = [
    "CHECKPOINT_FORMAT",
    "History",
    "NonFiniteLossError",
    "Trainer",
    "fit",
    "load_model_state",
    "param_groups",
    "read_trainer_metadata",
]

CHECKPOINT_FORMAT = "minidl-trainer"
_CHECKPOINT_VERSION = 1
_METADATA_KEY = TRAINER_RECORD_KEY  # "minidl.trainer": key of the JSON record inside the file's str -> str metadata
_MONITORS = {"val_loss": "min", "val_acc": "max", "train_loss": "min", "train_acc": "max"}


# --------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------

class NonFiniteLossError(ValueError):
    """Training produced a NaN or infinite loss, gradient or weight; the Trainer stopped there.

    ``what`` is ``"loss"``, ``"gradient"`` or ``"weights"``, ``value`` the offending number
    (or None), ``epoch`` the epoch being trained (1-based), ``step`` the batch of that epoch
    and ``global_step`` the optimizer step it would have been (both 1-based). No optimizer
    step is taken with a non-finite loss or gradient, and no checkpoint is written with
    non-finite weights: ``last.npz`` and ``best.npz`` keep the last good epoch's.
    """

    def __init__(self, message, what=None, value=None, epoch=None, step=None, global_step=None):
        super().__init__(message)
        self.what, self.value = what, value
        self.epoch, self.step, self.global_step = epoch, step, global_step


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

def param_groups(model, lr, head_lr=None, head=None, trainable_only=True):
    """Optimizer parameter groups for fine-tuning: a backbone group and a head group.

    Only trainable parameters (``requires_grad``) are included, so frozen layers
    (:func:`minidl.nn.freeze`) are left out of the optimizer entirely.

    Args:
        model: the Module.
        lr: learning rate of the backbone.
        head_lr: learning rate of the head (default ``lr``: then one group).
        head: name prefix(es) of the head parameters; default: the module that owns the
            last parameter of the model (``fc``, ``classifier.6``, ...).
        trainable_only: False to include frozen parameters too (the optimizer skips them while
            their gradient is None), for layers unfrozen later (``minidl.transfer.FrozenLayers``).

    >>> from minidl import nn
    >>> net = nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 2))
    >>> [(len(g["params"]), g["lr"]) for g in param_groups(net, 0.01, head_lr=0.1)]
    [(2, 0.01), (2, 0.1)]
    """
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad or not trainable_only]
    if not any(p.requires_grad for _, p in named):
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

def _gradient_sum(params):
    """Sum of every gradient element, in float64: finite exactly when every gradient is.

    One pass over the gradients and one host read (float32 values cannot overflow a float64
    sum; NaN and inf propagate, and +inf meeting -inf gives NaN).
    """
    total = None
    for p in params:
        g = p.grad
        if g is None:
            continue
        data = g.data
        if data.dtype.kind not in "fc":
            continue
        part = data.sum(dtype=np.float64) if data.dtype.kind == "f" else data.sum()
        total = part if total is None else total + part
    return 0.0 if total is None else float(abs(total))


def _first_non_finite_grad(model, params):
    """Name of the first parameter whose gradient holds NaN or inf (only asked after a failure)."""
    if not params:
        return None
    names = {id(p): n for n, p in model.named_parameters()}
    for p in params:
        if p.grad is not None and not bool(np.isfinite(to_numpy(p.grad)).all()):
            return names.get(id(p), "a parameter outside the model")
    return None


def _non_finite_weights(model):
    """Name of the first floating parameter or buffer of ``model`` holding NaN or inf, or None."""
    for name, value in model.state_dict().items():
        array = to_numpy(value)
        if array.dtype.kind in "fc" and not np.isfinite(array).all():
            return name
    return None


def _split_outputs(out):
    """``(main logits, [aux logits...])`` from a Tensor or a (named)tuple of Tensors."""
    if isinstance(out, (tuple, list)):
        return out[0], [o for o in out[1:] if o is not None]
    return out, []


class _Progress:
    """A tqdm bar over ``iterable`` whose speed and time left leave out the first item.

    A first run's first batch waits seconds on Numba compiling the kernels, and tqdm would
    carry that wait into its estimate for every batch left ("12:30 remaining" for a 20 s
    epoch): the bar's clock starts again once the first item is done. ``set_postfix`` is
    tqdm's.
    """

    def __init__(self, iterable, **options):
        from tqdm import tqdm

        total = len(iterable) if hasattr(iterable, "__len__") else None
        # One iter() call only: a DataLoader counts epochs by its iter() calls.
        self._items = iter(iterable)
        self.bar = tqdm(total=total, dynamic_ncols=True, **options)

    def __iter__(self):
        bar = self.bar
        try:
            for count, item in enumerate(self._items, start=1):
                yield item  # the caller's step runs here; the bar counts it when the next item is asked for
                if count == 1:
                    bar.reset()  # clock and rate start now; `initial` keeps the first item out of the rate
                    bar.initial = bar.n = bar.last_print_n = 1
                    bar.refresh()
                else:
                    bar.update()
        finally:
            bar.close()

    def set_postfix(self, **kwargs):
        self.bar.set_postfix(**kwargs)


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
        aux_weight: weight of each auxiliary classifier's loss; None (default): the model's own
            ``aux_weight`` attribute (GoogLeNet 0.3, Inception v3 0.4), else 0.3.
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
        detect_anomaly: train inside :class:`minidl.autograd.detect_anomaly` (slow; names the op
            whose backward produced the first NaN/inf gradient).
        on_epoch_start: ``on_epoch_start(trainer, epoch)``, called at the start of each epoch
            (1-based) after ``model.train()`` (``minidl.transfer.FrozenLayers`` keeps frozen
            batch norms in eval mode and unfreezes layers there).

    Numerics: every step checks the loss (the value it reads anyway) and the gradients (the
    norm ``clip_grad_norm`` computes, else one float64 sum over them, finite exactly when every
    gradient is) before the optimizer steps; a NaN or inf raises :class:`NonFiniteLossError`
    naming the epoch and step, and checkpoints are never written with non-finite weights.
    """

    def __init__(self, model, optimizer, scheduler=None, loss_fn=None, label_smoothing=0.0, aux_weight=None,
                 clip_grad_norm=None, clip_grad_value=None, early_stopping=None, monitor="val_loss",
                 scheduler_interval=None, checkpoint_dir=None, config=None, progress=True, file=None, device=None,
                 batch_loss=None, max_steps=None, should_stop=None, detect_anomaly=False, on_epoch_start=None):
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
        self.aux_weight = float(aux_weight if aux_weight is not None else getattr(model, "aux_weight", 0.3))
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
        self.detect_anomaly = bool(detect_anomaly)
        if on_epoch_start is not None and not callable(on_epoch_start):
            raise TypeError(f"on_epoch_start: expected a callable or None, got {type(on_epoch_start).__name__}")
        self.on_epoch_start = on_epoch_start  # called as on_epoch_start(trainer, epoch) after model.train()
        self._epoch_step = 0        # batches of the current epoch (for NonFiniteLossError)
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
        """Check the loss, backward, check the gradients, clip, optimizer step, (per-step) scheduler step.

        Returns the loss as a float. Raises :class:`NonFiniteLossError` before the optimizer
        step when the loss or the gradients hold NaN or inf (the weights stay as they were).
        """
        self._epoch_step += 1
        value = float(loss.item())
        if not _finite_on_every_rank(value):
            raise self._non_finite("loss", value)
        self.optimizer.zero_grad()
        loss.backward()
        params = self._params()
        if self.clip_grad_norm is None or self.clip_grad_value is not None:
            # clip_grad_value_ would turn inf into a finite value: check the raw gradients first
            total = _gradient_sum(params)
            if not math.isfinite(total):
                raise self._non_finite("gradient", total, params)
        if self.clip_grad_value is not None:
            clip_grad_value_(params, self.clip_grad_value)
        if self.clip_grad_norm is not None:
            norm = float(clip_grad_norm_(params, self.clip_grad_norm).item())
            if not math.isfinite(norm):
                raise self._non_finite("gradient norm", norm, params)
        self.optimizer.step()
        self.global_step += 1
        if self.scheduler is not None and self.scheduler_interval == "step":
            self.scheduler.step()
        return value

    def _non_finite(self, what, value, params=()):
        """The NonFiniteLossError for this step: epoch, step, where the NaN is, what is on disk."""
        epoch, step, global_step = self.epoch + 1, self._epoch_step, self.global_step + 1
        text = f"non-finite {what} ({value}) at epoch {epoch}, step {step} (optimizer step {global_step})"
        bad = _first_non_finite_grad(self.model, params)
        if bad:
            text += f" (the first parameter whose gradient holds it: {bad!r})"
        text += "; stopped before the optimizer step" + self._on_disk()
        text += "; a lower learning rate may help, and detect_anomaly (minidl train --detect-anomaly) names the op"
        return NonFiniteLossError(text, what=what, value=value, epoch=epoch, step=step,
                                  global_step=global_step)

    def _on_disk(self):
        """What the checkpoint folder holds, for the messages of NonFiniteLossError."""
        if self.checkpoint_dir is None:
            return ""
        if self.epoch == 0:
            return f"; nothing was written to {self.checkpoint_dir}"
        best = f", best.npz epoch {self.best_epoch}" if self.best_epoch is not None else ""
        return f"; {self.checkpoint_dir} keeps last.npz of epoch {self.epoch}{best}"

    def batch_loss_step(self, x, y):
        """One step with ``batch_loss`` (the model computes its losses); returns (loss, None)."""
        loss = self.batch_loss(self.model, self._to_device(x), y)
        return self._optimize(loss), None

    def train_step(self, x, y):
        """Forward, backward, clip, step on one batch; returns (loss, number correct)."""
        labels = to_numpy(y)  # host copy for the accuracy count
        x, y = self._to_device(x), self._to_device(y)
        out = self.model(x)
        loss, logits = self._loss(out, y)
        value = self._optimize(loss)
        host = logits.detach().to("cpu") if self.device is not None else logits
        correct = int((to_numpy(host).argmax(axis=1) == labels).sum())
        return value, correct

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
        if isinstance(getattr(loader, "sampler", None), DistributedSampler):  # each rank saw its share
            logits, targets = _gather_shares(loader.sampler, logits, targets)
            with no_grad():  # the loss of the whole dataset, from the gathered logits
                total_loss = float(self._loss(Tensor(logits.astype(np.float32)), Tensor(targets))[0].item())
            total_loss *= len(targets)
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
        with _detect_anomaly(check_nan=self.detect_anomaly):  # a no-op unless detect_anomaly=True
            while self.epoch < epochs and not self.stopped_early and not self.halted:
                self._run_epoch(train_loader, val_loader, epochs)
        return self.history

    def _run_epoch(self, train_loader, val_loader, epochs):
        start = time.perf_counter()
        epoch = self.epoch + 1
        self.model.train()
        if self.on_epoch_start is not None:  # e.g. minidl.transfer.FrozenLayers: frozen BN, unfreezing
            self.on_epoch_start(self, epoch)
        # keep the loader's epoch in step with ours (a loader reused across fit calls)
        if (hasattr(train_loader, "set_epoch") and hasattr(train_loader, "state_dict")
                and train_loader.state_dict()["batches_done"] == 0):
            train_loader.set_epoch(self.epoch)
        if hasattr(getattr(train_loader, "sampler", None), "set_epoch"):  # DistributedSampler: a new shuffle
            train_loader.sampler.set_epoch(self.epoch)
        lr = float(self.optimizer.param_groups[-1]["lr"])
        seen, loss_sum, correct = 0, 0.0, 0
        self._epoch_step = 0
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
        seen, loss_sum, correct = _sum_over_ranks(seen, loss_sum, correct)  # the global batch's metrics
        if seen == 0:
            raise ValueError("fit: the training loader yielded no batch")
        bad = _non_finite_weights(self.model)  # a finite step can still overflow a weight
        if bad is not None:
            raise NonFiniteLossError(
                f"non-finite weights in {bad!r} at the end of epoch {epoch}, step {self._epoch_step} "
                f"(optimizer step {self.global_step}){self._on_disk()}",
                what="weights", epoch=epoch, step=self._epoch_step, global_step=self.global_step)
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
        if self.checkpoint_dir is not None and _rank() == 0:  # one writer; every rank can resume from it
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
        if not self.progress or _rank() != 0:
            return iterable
        return _Progress(iterable, desc=desc, leave=leave, file=self.file or sys.stderr)

    def _log(self, text):
        if not self.progress or _rank() != 0:
            return
        from tqdm import tqdm

        tqdm.write(text, file=self.file or sys.stderr)

    def _path(self, name):
        return None if self.checkpoint_dir is None else os.path.join(self.checkpoint_dir, name)

    # ------------------------------------------------------------------ checkpoints
    def save_checkpoint(self, path, train_loader=None):
        """Write model, optimizer, scheduler, RNG, loader and trainer state to ``path`` atomically.

        Raises :class:`NonFiniteLossError` (and writes nothing) when a weight is NaN or inf.
        """
        bad = _non_finite_weights(self.model)
        if bad is not None:
            raise NonFiniteLossError(f"{os.fspath(path)}: not written: {bad!r} holds NaN or inf values "
                                     f"(epoch {self.epoch}, optimizer step {self.global_step})",
                                     what="weights", epoch=self.epoch, global_step=self.global_step)
        arrays = {}
        for name, value in _unwrap(self.model).state_dict().items():
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

        The whole file is checked before anything changes: the record's fields and types, that
        every array it refers to is there, the model's keys, shapes and dtypes, the optimizer's
        type, groups, hyper-parameters and per-parameter state shapes, the scheduler's type and
        attributes, the random generator's state. If anything is wrong, or restoring fails
        anyway, model, optimizer, scheduler, random generator, loader and trainer are left
        exactly as they were and :class:`minidl.errors.CheckpointError` (a ValueError naming the
        file and what differs) is raised.
        """
        source = os.fspath(path)
        record = read_trainer_metadata(source)
        if record.get("format") != CHECKPOINT_FORMAT:
            raise CheckpointError(source, f"not a minidl trainer checkpoint (no {_METADATA_KEY!r} record)")
        arrays = _load_arrays(source)
        state = self._checked_state(record, arrays, source, train_loader)
        self._restore(state, source, train_loader)
        return record

    def _checked_state(self, record, arrays, source, train_loader):
        """Everything a checkpoint restores, validated against this trainer; changes nothing."""
        def fail(reason):
            return CheckpointError(source, reason)

        for key, kinds in _RECORD_FIELDS.items():
            value = record.get(key, _MISSING)
            if value is _MISSING:
                raise fail(f"the trainer record has no {key!r} field")
            if isinstance(value, bool) and bool not in kinds or not isinstance(value, kinds):
                raise fail(f"the trainer record's {key!r} is {type(value).__name__} {value!r:.60}, expected "
                           + " or ".join("null" if k is type(None) else k.__name__ for k in kinds))
        try:
            optimizer_state = _unpack(record["optimizer"].get("state"), arrays)
            scheduler_state = None if record["scheduler"] is None else _unpack(record["scheduler"].get("state"), arrays)
            rng_state = _unpack(record["rng"], arrays)
        except KeyError as err:
            raise fail(f"the trainer record refers to the array {err.args[0]!r}, which the file does not hold") from None
        except TypeError as err:
            raise fail(f"malformed trainer record ({err})") from None

        # the model: keys, shapes, dtypes
        model_state = {k[len("model/"):]: v for k, v in arrays.items() if k.startswith("model/")}
        own = _unwrap(self.model).state_dict()
        problems = []
        missing = [k for k in own if k not in model_state]
        unexpected = [k for k in model_state if k not in own]
        for key, target in own.items():
            if key not in model_state:
                continue
            value, target = model_state[key], to_numpy(target)
            if value.shape != target.shape:
                problems.append(f"{key}: checkpoint shape {value.shape}, model shape {target.shape}")
            elif (value.dtype.kind == "f") != (target.dtype.kind == "f") or value.dtype.kind not in "fiub":
                problems.append(f"{key}: checkpoint dtype {value.dtype}, model dtype {target.dtype}")
        if missing:
            problems.append("missing keys: " + ", ".join(missing))
        if unexpected:
            problems.append("unexpected keys: " + ", ".join(unexpected))
        if problems:
            raise fail("checkpoint does not fit this model: " + " | ".join(problems))

        # the optimizer: type, groups, hyper-parameters, per-parameter state
        saved_type = record["optimizer"].get("type")
        if saved_type != type(self.optimizer).__name__:
            raise fail(f"checkpoint optimizer is {saved_type}, this run uses {type(self.optimizer).__name__}")
        _check_optimizer_state(self.optimizer, optimizer_state, fail)

        # the scheduler: type and attributes
        saved = None if record["scheduler"] is None else record["scheduler"].get("type")
        if saved != (None if self.scheduler is None else type(self.scheduler).__name__):
            raise fail(f"checkpoint scheduler is {saved}, "
                       f"this run uses {None if self.scheduler is None else type(self.scheduler).__name__}")
        if self.scheduler is not None:
            expected = set(self.scheduler.state_dict())
            if not isinstance(scheduler_state, dict) or set(scheduler_state) != expected:
                got = sorted(scheduler_state) if isinstance(scheduler_state, dict) else type(scheduler_state).__name__
                raise fail(f"the scheduler state holds {got}, {saved} has {sorted(expected)}")
            last_epoch = scheduler_state.get("last_epoch")
            if "last_epoch" in expected and (isinstance(last_epoch, bool) or not isinstance(last_epoch, int)):
                raise fail(f"the scheduler's last_epoch is {last_epoch!r}, expected an int")

        # the random generator and the loader
        try:
            type(_random.default_generator().bit_generator)().state = rng_state
        except (TypeError, ValueError, KeyError) as err:
            raise fail(f"the random generator state is not valid ({type(err).__name__}: {err})") from None
        loader_state = record.get("train_loader")
        if loader_state is not None and not isinstance(loader_state, dict):
            raise fail(f"the loader state is {type(loader_state).__name__}, expected an object")
        history = record["history"]
        if not all(isinstance(row, dict) for row in history):
            raise fail("the history is not a list of objects")
        return {"model": model_state, "optimizer": optimizer_state, "scheduler": scheduler_state,
                "rng": rng_state, "train_loader": loader_state, "record": record}

    def _restore(self, state, source, train_loader):
        """Load a checked state; if any part still fails, put every part back as it was."""
        restore_loader = train_loader is not None and state["train_loader"] is not None
        before = {
            "model": {k: to_numpy(v).copy() for k, v in _unwrap(self.model).state_dict().items()},
            "optimizer": self.optimizer.state_dict(),
            "scheduler": None if self.scheduler is None else self.scheduler.state_dict(),
            "rng": copy.deepcopy(_random.get_rng_state()),
            "train_loader": train_loader.state_dict() if restore_loader and hasattr(train_loader, "state_dict")
            else None,
            "trainer": {k: copy.deepcopy(getattr(self, k)) for k in _TRAINER_FIELDS},
        }
        record = state["record"]
        try:
            self.optimizer.load_state_dict(state["optimizer"])
            if self.scheduler is not None:
                self.scheduler.load_state_dict(state["scheduler"])
            if restore_loader:
                train_loader.load_state_dict(state["train_loader"])
            _unwrap(self.model).load_state_dict(state["model"], strict=True)
            _random.set_rng_state(state["rng"])
            self.epoch = int(record["epoch"])
            self.global_step = int(record["global_step"])
            self.best_value = record["best_value"]
            self.best_epoch = record["best_epoch"]
            self.bad_epochs = int(record["bad_epochs"])
            self.stopped_early = bool(record["stopped_early"])
            self.history = History(record["history"])
        except BaseException as err:
            _unwrap(self.model).load_state_dict(before["model"], strict=True)
            self.optimizer.load_state_dict(before["optimizer"])
            if self.scheduler is not None:
                for key in set(self.scheduler.__dict__) - set(before["scheduler"]) - {"optimizer", "lr_lambdas"}:
                    del self.scheduler.__dict__[key]
                self.scheduler.load_state_dict(before["scheduler"])
            _random.set_rng_state(before["rng"])
            if before["train_loader"] is not None:
                train_loader.load_state_dict(before["train_loader"])
            for key, value in before["trainer"].items():
                setattr(self, key, value)
            if not isinstance(err, Exception):
                raise
            raise CheckpointError(source, f"cannot restore the checkpoint ({type(err).__name__}: {err}); "
                                          "nothing was changed") from err


_MISSING = object()
# field of the trainer record -> the JSON types it may have
_RECORD_FIELDS = {
    "epoch": (int,), "global_step": (int,), "optimizer": (dict,), "scheduler": (dict, type(None)),
    "rng": (dict,), "history": (list,), "best_value": (int, float, type(None)),
    "best_epoch": (int, type(None)), "bad_epochs": (int,), "stopped_early": (bool,),
}
# trainer attributes a checkpoint sets (put back when a restore fails)
_TRAINER_FIELDS = ("epoch", "global_step", "best_value", "best_epoch", "bad_epochs", "stopped_early", "history")


def _check_optimizer_state(optimizer, state, fail):
    """CheckpointError (from ``fail``) unless ``state`` is what ``optimizer.load_state_dict`` restores fully."""
    if not isinstance(state, dict) or not isinstance(state.get("state"), dict) \
            or not isinstance(state.get("param_groups"), list):
        raise fail("the optimizer state must hold 'state' (an object) and 'param_groups' (a list)")
    groups, saved_groups = optimizer.param_groups, state["param_groups"]
    if len(saved_groups) != len(groups):
        raise fail(f"the optimizer state has {len(saved_groups)} parameter groups, this run's optimizer {len(groups)}")
    param_of = {}
    for i, (group, saved) in enumerate(zip(groups, saved_groups)):
        if not isinstance(saved, dict) or not isinstance(saved.get("params"), list):
            raise fail(f"optimizer parameter group {i} is not an object with a 'params' list")
        if len(saved["params"]) != len(group["params"]):
            raise fail(f"optimizer parameter group {i} has {len(saved['params'])} parameters in the checkpoint, "
                       f"{len(group['params'])} in this run")
        missing = sorted(k for k in group if k != "params" and k not in saved)
        if missing:
            raise fail(f"optimizer parameter group {i} lacks {missing}")
        lr = saved.get("lr")
        if isinstance(lr, bool) or not isinstance(lr, (int, float)):
            raise fail(f"optimizer parameter group {i} has lr {lr!r}, expected a number")
        for index, p in zip(saved["params"], group["params"]):
            param_of[index] = p
    for index, entry in state["state"].items():
        try:
            p = param_of[int(index)]
        except (KeyError, ValueError, TypeError):
            raise fail(f"the optimizer state names parameter {index!r}, which no parameter group lists") from None
        if not isinstance(entry, dict):
            raise fail(f"the optimizer state of parameter {index} is {type(entry).__name__}, expected an object")
        for key, value in entry.items():
            if _is_array(value) and value.ndim > 0:
                if tuple(value.shape) != tuple(p.shape):
                    raise fail(f"optimizer state {key!r} of parameter {index} has shape {tuple(value.shape)}, "
                               f"the parameter {tuple(p.shape)}")
                if value.dtype.kind not in "fiub":
                    raise fail(f"optimizer state {key!r} of parameter {index} has dtype {value.dtype}")
            elif not (value is None or isinstance(value, (bool, int, float, str, list)) or _is_array(value)):
                raise fail(f"optimizer state {key!r} of parameter {index} is a {type(value).__name__}")


# ---------------------------------------------------------------------- data parallelism (issue 19)
# With a process group of several ranks (minidl.distributed) the Trainer trains a DistributedDataParallel
# model: only rank 0 shows bars and lines and writes checkpoints (every rank can resume from them), the
# epoch's loss and accuracy are sums over all ranks, and an evaluation loader with a DistributedSampler
# is gathered back into the whole dataset, in order.
def _rank():
    return _dist.get_rank() if _dist.is_initialized() else 0


def _world_size():
    return _dist.get_world_size() if _dist.is_initialized() else 1


def _unwrap(model):
    """The model itself under a DistributedDataParallel: checkpoints hold its plain state_dict keys."""
    return model.module if isinstance(model, DistributedDataParallel) else model


def _finite_on_every_rank(value):
    """True when ``value`` is finite on every rank (so that all ranks stop together, none waits alone)."""
    bad = np.array([0.0 if math.isfinite(value) else 1.0])
    if _world_size() > 1:
        _dist.all_reduce(bad, op=_dist.ReduceOp.MAX)
    return not bad[0]


def _sum_over_ranks(seen, loss_sum, correct):
    """The sums over all ranks of an epoch's sample count, loss sum and correct count (None stays None)."""
    if _world_size() == 1:
        return seen, loss_sum, correct
    sums = np.array([seen, loss_sum, -1.0 if correct is None else correct], dtype=np.float64)
    _dist.all_reduce(sums)
    return int(sums[0]), float(sums[1]), None if correct is None else int(sums[2])


def _gather_shares(sampler, logits, targets):
    """Every rank's evaluation share, put back in dataset order (the sampler's padding dropped).

    An unshuffled DistributedSampler gives rank r the indices r, r + R, r + 2R, ...; the shares are
    all-gathered and interleaved, so the result is that of one process reading the whole dataset.
    """
    if sampler.shuffle:
        raise ValueError("evaluate: a DistributedSampler for evaluation must have shuffle=False")
    world, n = sampler.num_replicas, len(sampler.dataset)
    pieces = {}
    for name, local in (("logits", logits), ("targets", targets.astype(np.float64))):
        everyone = [np.empty_like(local) for _ in range(world)]
        _dist.all_gather(everyone, local)
        pieces[name] = np.stack(everyone, axis=1).reshape(-1, *local.shape[1:])[:n]  # rank-interleaved
    return pieces["logits"], pieces["targets"].astype(np.int64)


def fit(model, optimizer, train_loader, val_loader=None, epochs=10, resume=False, **trainer_kwargs):
    """Functional form: ``Trainer(model, optimizer, **trainer_kwargs).fit(...)``; returns (trainer, history)."""
    trainer = Trainer(model, optimizer, **trainer_kwargs)
    history = trainer.fit(train_loader, val_loader, epochs=epochs, resume=resume)
    return trainer, history
