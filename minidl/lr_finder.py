"""The learning-rate range test (Smith, "Cyclical Learning Rates", 2017; fast.ai's ``lr_find``).

Train for ``num_iter`` steps while the learning rate grows exponentially from ``start_lr`` to
``end_lr``; record the loss after each step, smoothed exponentially
(``s_i = smooth_f * loss_i + (1 - smooth_f) * s_{i-1}``); stop early once the smoothed loss
exceeds ``diverge_th`` times the best smoothed loss so far (or a loss is not finite). The model's
weights, buffers and the optimizer's state are restored afterwards, so the test can be run
before the real training on the same objects.

The suggested learning rate is where the smoothed loss falls fastest: the most negative slope
of the smoothed loss against log10(lr), looked for between the start and the lowest smoothed
loss (``suggestion="steepest"``); ``suggestion="min10"`` gives fast.ai's older rule, a tenth
of the learning rate at the lowest smoothed loss.

>>> finder = LRFinder(model, optim.SGD(model.parameters(), lr=1e-3, momentum=0.9))   # doctest: +SKIP
>>> result = finder.range_test(loader, start_lr=1e-6, end_lr=1, num_iter=100)        # doctest: +SKIP
>>> result.suggested_lr, finder.plot("lr_find.png")                                  # doctest: +SKIP
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import numpy as np

from minidl.train import NonFiniteLossError, Trainer

SUGGESTIONS = ("steepest", "min10")


@dataclass
class LRFinderResult:
    """The range test's record: ``lrs``, ``losses`` (raw), ``smoothed``, and the suggestion."""
    lrs: list
    losses: list
    smoothed: list
    suggested_lr: float
    suggestion: str
    min_loss_lr: float
    diverged: bool

    def __str__(self):
        rule = ("steepest descent of the smoothed loss" if self.suggestion == "steepest"
                else "a tenth of the lr at the lowest smoothed loss")
        stop = "stopped: smoothed loss diverged" if self.diverged else "reached the end of the ramp"
        return (f"suggested lr: {self.suggested_lr:.3g} ({rule}); lowest smoothed loss "
                f"{min(self.smoothed):.4f} at lr {self.min_loss_lr:.3g}; {len(self.lrs)} steps, {stop}")


def suggest_lr(lrs, smoothed, suggestion="steepest"):
    """The suggested learning rate of a range test (see the module docstring); ``(lr, lr at the minimum)``."""
    if suggestion not in SUGGESTIONS:
        raise ValueError(f"suggestion must be one of {', '.join(SUGGESTIONS)}, got {suggestion!r}")
    lrs, smoothed = np.asarray(lrs, dtype=np.float64), np.asarray(smoothed, dtype=np.float64)
    if len(lrs) < 3:
        raise ValueError(f"the range test recorded {len(lrs)} steps; at least 3 are needed for a suggestion "
                         "(use more --steps or a smaller --start-lr)")
    best = int(np.argmin(smoothed))
    min_loss_lr = float(lrs[best])
    if suggestion == "min10":
        return min_loss_lr / 10, min_loss_lr
    end = max(best, 2) + 1  # the descent up to the minimum (at least three points for a slope)
    slopes = np.gradient(smoothed[:end], np.log10(lrs[:end]))
    return float(lrs[int(np.argmin(slopes))]), min_loss_lr


class LRFinder:
    """The LR range test on ``model`` with ``optimizer`` (its param groups all follow the ramp).

    ``trainer_kwargs`` go to the :class:`minidl.train.Trainer` that takes the steps (``loss_fn``,
    ``label_smoothing``, ``device``, ...), so a step here is exactly a training step.
    """

    def __init__(self, model, optimizer, **trainer_kwargs):
        self.model, self.optimizer = model, optimizer
        self.trainer = Trainer(model, optimizer, progress=False, **trainer_kwargs)
        self.result = None

    def range_test(self, train_loader, start_lr=1e-7, end_lr=10.0, num_iter=100, smooth_f=0.05, diverge_th=4.0,
                   suggestion="steepest"):
        """Run the test; returns an :class:`LRFinderResult` (also ``self.result``). Restores the model after."""
        if not 0 < start_lr < end_lr:
            raise ValueError(f"need 0 < start_lr < end_lr, got start_lr={start_lr:g}, end_lr={end_lr:g}")
        if not isinstance(num_iter, int) or num_iter < 3:
            raise ValueError(f"num_iter must be an int >= 3, got {num_iter!r}")
        if not 0 < smooth_f <= 1:
            raise ValueError(f"smooth_f must be in (0, 1], got {smooth_f!r}")
        if not diverge_th > 1:
            raise ValueError(f"diverge_th must be > 1, got {diverge_th!r}")
        model_state = {k: v.data.copy() for k, v in self.model.state_dict().items()}  # arrays, not views
        optimizer_state = copy.deepcopy(self.optimizer.state_dict())
        group_lrs = [group["lr"] for group in self.optimizer.param_groups]
        training = [(m, m.training) for m in self.model.modules()]
        lrs, losses, smoothed = [], [], []
        diverged = False
        try:
            self.model.train()
            batches = _endless(train_loader)
            for i in range(num_iter):
                lr = start_lr * (end_lr / start_lr) ** (i / (num_iter - 1))
                for group in self.optimizer.param_groups:
                    group["lr"] = lr
                x, y = next(batches)
                try:
                    loss, _ = self.trainer.train_step(x, y)
                except NonFiniteLossError:  # the loss or a gradient overflowed: the ramp has diverged
                    diverged = True
                    break
                lrs.append(lr)
                losses.append(loss)
                smoothed.append(loss if not smoothed else smooth_f * loss + (1 - smooth_f) * smoothed[-1])
                if not math.isfinite(smoothed[-1]) or smoothed[-1] > diverge_th * min(smoothed):
                    diverged = True
                    break
        finally:
            self.model.load_state_dict(model_state)
            self.optimizer.load_state_dict(optimizer_state)
            for group, lr in zip(self.optimizer.param_groups, group_lrs):
                group["lr"] = lr
            for module, mode in training:
                object.__setattr__(module, "training", mode)
            self.model.zero_grad()
        suggested, min_loss_lr = suggest_lr(lrs, smoothed, suggestion)
        self.result = LRFinderResult(lrs, losses, smoothed, suggested, suggestion, min_loss_lr, diverged)
        return self.result

    def plot(self, path, title=None):
        """Save the smoothed (and raw) loss against the learning rate, log x, the suggestion marked; returns path."""
        from minidl.plot import _pyplot, _save

        if self.result is None:
            raise ValueError("plot: run range_test first")
        r = self.result
        plt = _pyplot()
        fig, ax = plt.subplots(figsize=(6, 4))
        ax.plot(r.lrs, r.losses, color="0.75", linewidth=1, label="loss")
        ax.plot(r.lrs, r.smoothed, color="C0", label="smoothed loss")
        ax.axvline(r.suggested_lr, color="C3", linestyle="--", label=f"suggested lr {r.suggested_lr:.2g}")
        ax.set_xscale("log")
        ax.set_xlabel("learning rate (log scale)")
        ax.set_ylabel("training loss")
        low, high = min(r.smoothed), max(r.smoothed[0], min(r.smoothed) * 2)
        ax.set_ylim(low - 0.1 * (high - low) - 1e-6, high + 0.5 * (high - low) + 1e-6)
        ax.set_title(title or "learning-rate range test")
        ax.legend()
        return _save(fig, path)


def _endless(loader):
    """The loader's batches, starting over at the end (a range test may take more steps than an epoch)."""
    while True:
        empty = True
        for batch in loader:
            empty = False
            yield batch
        if empty:
            raise ValueError("range_test: the training loader yielded no batch")
