"""The evaluation report of ``minidl evaluate`` and of the end of ``minidl train``, as the studies give it.

Per-class precision, recall, F1 and support (scikit-learn's classification report), top-k
accuracies (``--top-k 1,2,5``: the X-ray study's top-2 for its 3 classes), AUROC (one vs rest,
macro), the confusion matrix (as text for up to 12 classes; ``confusion_matrix.png`` with
``--plot DIR``) and, in the same folder, the ROC curves.
"""
from __future__ import annotations

import numpy as np

from . import UsageError

DEFAULT_TOP_K = "1,2,5"


def parse_top_k(text):
    """``"1,2,5"`` -> ``(1, 2, 5)``; a clear error for anything else."""
    try:
        ks = tuple(int(part) for part in str(text).split(",") if part.strip())
    except ValueError:
        raise UsageError(f"--top-k: expected comma-separated whole numbers such as 1,2,5, got {text!r}") from None
    if not ks or min(ks) < 1:
        raise UsageError(f"--top-k: expected comma-separated numbers >= 1 such as 1,2,5, got {text!r}")
    return tuple(sorted(set(ks)))


def top_k_for(text, num_classes):
    """The k to report for ``--top-k TEXT`` (None: the default ``1,2,5``) with ``num_classes`` classes.

    The default keeps k = 1 and every k below the number of classes (top-C accuracy is always
    100%); an explicit k above the number of classes is an error.
    """
    if text is None:
        return tuple(k for k in parse_top_k(DEFAULT_TOP_K) if k == 1 or k < num_classes)
    ks = parse_top_k(text)
    too_big = [k for k in ks if k > num_classes]
    if too_big:
        raise UsageError(f"--top-k {text}: the dataset has {num_classes} classes, so k can be at most "
                         f"{num_classes}; got {','.join(map(str, too_big))}")
    return ks


def _matrix_text(matrix, classes):
    width = max(5, max(len(str(c)) for c in classes), len(str(int(matrix.max()))) + 1)
    head = " " * width + "".join(f"{str(c)[:width]:>{width + 1}}" for c in classes)
    rows = [f"{str(c)[:width]:>{width}}" + "".join(f"{int(v):>{width + 1}}" for v in row)
            for c, row in zip(classes, matrix)]
    return "\n".join(["confusion matrix (rows: true class, columns: predicted)", head, *rows])


def print_evaluation(targets, probs, classes, top_k, plot_dir=None, history=None):
    """Print the report of ``probs`` (N, C) against ``targets``; with ``plot_dir`` write the PNGs there."""
    from minidl import metrics

    y = np.asarray(targets)
    summary = metrics.classification_summary(y, probs, top_k=top_k, num_classes=len(classes))
    print(metrics.classification_report(y, probs.argmax(axis=1), target_names=classes, num_classes=len(classes)))
    print(", ".join(f"top-{k} accuracy: {100 * acc:.2f}%" for k, acc in summary["top_k"].items()))
    if summary["auroc"] is not None:
        print(f"AUROC (one vs rest, macro): {summary['auroc']:.4f}")
        per_class = summary["auroc_per_class"]
        if per_class is not None and len(classes) <= 12:
            print("AUROC per class: " + ", ".join(f"{c} {a:.4f}" for c, a in zip(classes, per_class)))
    else:
        present = np.unique(y).size
        print(f"AUROC: not defined (only {present} of {len(classes)} classes in the test split)")
    if len(classes) <= 12:
        print(_matrix_text(summary["confusion_matrix"], classes))
    if plot_dir:
        from minidl.plot import save_all

        print("plots: " + ", ".join(save_all(plot_dir, history, y, probs, classes)))
    return summary
