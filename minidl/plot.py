"""PNG plots of a training run: curves, confusion-matrix heat map, ROC curves.

matplotlib is an optional dependency (``pip install minidl[plot]``); it is imported on first
use with the non-interactive Agg backend, so plots are written on machines without a display.

>>> from minidl.plot import plot_history          # doctest: +SKIP
>>> plot_history(trainer.history, "runs/curves.png")  # doctest: +SKIP
"""
from __future__ import annotations

import os

import numpy as np

__all__ = ["plot_confusion_matrix", "plot_history", "plot_roc", "save_all"]


def _pyplot():
    """matplotlib.pyplot on the Agg backend, or an ImportError that says how to install it."""
    try:
        import matplotlib
    except ImportError:
        raise ImportError("plotting needs matplotlib: pip install 'minidl[plot]' (or pip install matplotlib)") \
            from None
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path):
    folder = os.path.dirname(os.path.abspath(os.fspath(path)))
    os.makedirs(folder, exist_ok=True)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    _pyplot().close(fig)
    return os.fspath(path)


def plot_history(history, path, title=None):
    """Loss (left) and accuracy (right) per epoch, train and validation; returns ``path``.

    ``history``: a :class:`minidl.train.History` or a list of row dicts with
    ``epoch, train_loss, train_acc`` and optionally ``val_loss, val_acc``.
    """
    rows = history.rows if hasattr(history, "rows") else list(history)
    if not rows:
        raise ValueError("plot_history: history is empty (train at least one epoch)")
    plt = _pyplot()
    epochs = [r["epoch"] for r in rows]
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
    for ax, metric, label in ((ax_loss, "loss", "loss"), (ax_acc, "acc", "accuracy (%)")):
        scale = 100.0 if metric == "acc" else 1.0
        ax.plot(epochs, [scale * r[f"train_{metric}"] for r in rows], "o-", label="train")
        val = [r.get(f"val_{metric}") for r in rows]
        if any(v is not None for v in val):
            ax.plot(epochs, [np.nan if v is None else scale * v for v in val], "s-", label="validation")
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title)
    return _save(fig, path)


def plot_confusion_matrix(matrix, path, class_names=None, normalize=True, title="confusion matrix"):
    """Heat map of a (C, C) confusion matrix (rows: true class, columns: predicted class).

    ``normalize=True`` colours each row by its fraction (recall per class) and prints the counts.
    """
    matrix = np.asarray(matrix)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
        raise ValueError(f"plot_confusion_matrix: matrix must be square (C, C), got shape {matrix.shape}")
    n = matrix.shape[0]
    names = [str(c) for c in (class_names if class_names is not None else range(n))]
    if len(names) != n:
        raise ValueError(f"plot_confusion_matrix: class_names must have {n} entries, got {len(names)}")
    plt = _pyplot()
    row_sums = matrix.sum(axis=1, keepdims=True)
    colour = matrix / np.maximum(row_sums, 1) if normalize else matrix
    side = max(4.0, 0.45 * n + 2)
    fig, ax = plt.subplots(figsize=(side, side))
    image = ax.imshow(colour, cmap="Blues", vmin=0)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    if n <= 30:  # counts stay readable up to about 30 classes
        threshold = colour.max() / 2 if colour.size else 0
        for i in range(n):
            for j in range(n):
                ax.text(j, i, str(int(matrix[i, j])), ha="center", va="center", fontsize=8,
                        color="white" if colour[i, j] > threshold else "black")
    ticks = np.arange(n)
    ax.set_xticks(ticks, names if n <= 30 else None, rotation=90 if n > 10 else 0)
    ax.set_yticks(ticks, names if n <= 30 else None)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(title)
    return _save(fig, path)


def plot_roc(y_true, scores, path, class_names=None, max_curves=10, title="ROC curves (one vs rest)"):
    """One-vs-rest ROC curve per class (the first ``max_curves``) with its AUC in the legend.

    ``scores``: (N, C) class scores (probabilities or logits); for two classes one curve
    for class 1 is drawn.
    """
    from .metrics import roc_auc_score, roc_curve

    y_true = np.asarray(y_true)
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim != 2 or len(scores) != len(y_true):
        raise ValueError(f"plot_roc: scores must be (N, C) with N = len(y_true) = {len(y_true)}, "
                         f"got shape {scores.shape}")
    n_classes = scores.shape[1]
    names = [str(c) for c in (class_names if class_names is not None else range(n_classes))]
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 5))
    classes = [1] if n_classes == 2 else list(range(min(n_classes, max_curves)))
    for c in classes:
        positive = (y_true == c).astype(np.int64)
        if positive.min() == positive.max():
            continue  # a class absent from (or alone in) y_true has no ROC curve
        fpr, tpr, _ = roc_curve(positive, scores[:, c])
        auc = roc_auc_score(positive, scores[:, c])
        ax.plot(fpr, tpr, label=f"{names[c]} (AUC {auc:.3f})")
    ax.plot([0, 1], [0, 1], "k--", lw=0.8)
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_title(title)
    ax.legend(fontsize=7, loc="lower right")
    return _save(fig, path)


def save_all(folder, history=None, y_true=None, scores=None, class_names=None):
    """Write ``curves.png``, ``confusion_matrix.png`` and ``roc.png`` into ``folder``; returns the paths."""
    from .metrics import confusion_matrix

    paths = []
    if history is not None and len(history):
        paths.append(plot_history(history, os.path.join(folder, "curves.png")))
    if y_true is not None and scores is not None:
        n_classes = np.asarray(scores).shape[1]
        matrix = confusion_matrix(y_true, np.asarray(scores).argmax(axis=1), num_classes=n_classes)
        paths.append(plot_confusion_matrix(matrix, os.path.join(folder, "confusion_matrix.png"), class_names))
        paths.append(plot_roc(y_true, scores, os.path.join(folder, "roc.png"), class_names))
    return paths
