"""Classification metrics on NumPy: accuracy, top-k, confusion matrix, precision/recall/F1, ROC.

Inputs may be NumPy arrays, lists, or objects with ``.numpy()`` (``minidl.Tensor``). Classes
are the integers ``0 .. num_classes - 1``. Definitions and edge cases follow scikit-learn
(the reference in the tests), with ``zero_division=0``: a precision or recall whose
denominator is 0 counts as 0.

Example::

    >>> import numpy as np
    >>> from minidl.metrics import accuracy, confusion_matrix
    >>> logits = np.array([[2.0, 1.0], [0.1, 0.3], [5.0, -1.0]])
    >>> accuracy(logits, [0, 1, 1])
    0.6666666666666666
    >>> confusion_matrix([0, 1, 1], [0, 1, 0]).tolist()
    [[1, 0], [1, 1]]
"""

import numbers

import numpy as np

__all__ = [
    "accuracy", "top_k_accuracy", "confusion_matrix", "precision_recall_f1",
    "classification_report", "roc_curve", "roc_auc_score", "classification_summary",
    "detection_map", "coco_map", "rpn_recall",
]


def _array(x, argname):
    """NumPy view of an array, list or Tensor-like (``.numpy()``)."""
    if hasattr(x, "numpy") and not isinstance(x, (np.ndarray, np.generic)):
        x = x.numpy()
    return np.asarray(x)


def _labels(x, argname):
    """A 1-D array of non-negative integer class labels."""
    arr = _array(x, argname)
    if arr.ndim != 1:
        raise ValueError(f"{argname}: expected a 1-D array of class labels, got shape {arr.shape}")
    integral = arr.dtype == np.bool_ or np.issubdtype(arr.dtype, np.integer)
    if arr.size and not integral and not (np.issubdtype(arr.dtype, np.floating) and np.all(np.mod(arr, 1) == 0)):
        raise TypeError(f"{argname}: expected integer class labels, got dtype {arr.dtype}")
    arr = arr.astype(np.int64)
    if arr.size and arr.min() < 0:
        raise ValueError(f"{argname}: expected labels >= 0, got {arr.min()}")
    return arr


def _num_classes(num_classes, *label_arrays):
    seen = max((int(a.max()) + 1 if a.size else 0) for a in label_arrays)
    if num_classes is None:
        return seen
    if not isinstance(num_classes, numbers.Integral) or num_classes < 1:
        raise ValueError(f"num_classes: expected a positive int or None, got {num_classes!r}")
    if seen > num_classes:
        raise ValueError(f"num_classes: expected more than the largest label {seen - 1}, got {num_classes}")
    return int(num_classes)


def _same_length(a, b, name_a, name_b):
    if len(a) != len(b):
        raise ValueError(f"{name_b}: expected {len(a)} entries (as {name_a}), got {len(b)}")


def accuracy(logits_or_pred, target):
    """Fraction of correct predictions.

    ``logits_or_pred`` is either class predictions with the shape of ``target``, or scores with
    one more axis, the class axis 1 (``(N, C)`` logits or ``(N, C, ...)`` for dense targets),
    from which the arg-max is taken.
    """
    pred = _array(logits_or_pred, "logits_or_pred")
    target = _array(target, "target")
    if pred.ndim == target.ndim + 1:
        pred = pred.argmax(axis=1)
    if pred.shape != target.shape:
        raise ValueError(
            f"logits_or_pred: expected shape {target.shape} (predictions) or with a class axis 1 (scores), "
            f"got {pred.shape}"
        )
    if target.size == 0:
        raise ValueError("target: expected at least one sample, got none")
    return float(np.mean(pred == target))


def top_k_accuracy(scores, target, k=5):
    """Fraction of samples whose true class is among the ``k`` highest of its ``scores`` row.

    Ties break as scikit-learn's ``top_k_accuracy_score``: among equal scores the higher class
    index ranks first.
    """
    scores = _array(scores, "scores")
    target = _labels(target, "target")
    if scores.ndim != 2:
        raise ValueError(f"scores: expected shape (N, C), got {scores.shape}")
    _same_length(target, scores, "target", "scores")
    n, c = scores.shape
    if not isinstance(k, numbers.Integral) or not 1 <= k <= c:
        raise ValueError(f"k: expected an int in [1, {c}], got {k!r}")
    if n == 0:
        raise ValueError("scores: expected at least one sample, got none")
    if target.max() >= c:
        raise ValueError(f"target: expected labels < {c} (the number of score columns), got {target.max()}")
    ranked = np.argsort(scores, axis=1, kind="stable")[:, ::-1]  # (N, C), best first
    hits = (ranked[:, :k] == target[:, None]).any(axis=1)
    return float(hits.mean())


def confusion_matrix(y_true, y_pred, num_classes=None):
    """``(C, C)`` int64 counts: entry ``[i, j]`` is the number of samples of true class ``i``
    predicted as ``j`` (rows = truth, columns = prediction, as scikit-learn)."""
    y_true = _labels(y_true, "y_true")
    y_pred = _labels(y_pred, "y_pred")
    _same_length(y_true, y_pred, "y_true", "y_pred")
    c = _num_classes(num_classes, y_true, y_pred)
    # Each pair (i, j) gets the flat bin i * C + j.
    return np.bincount(y_true * c + y_pred, minlength=c * c).reshape(c, c).astype(np.int64)


def _safe_divide(num, den):
    num = np.asarray(num, dtype=np.float64)
    den = np.asarray(den, dtype=np.float64)
    return np.divide(num, den, out=np.zeros(np.broadcast(num, den).shape), where=den != 0)


def precision_recall_f1(y_true, y_pred, num_classes=None, average=None):
    """Precision ``TP / (TP + FP)``, recall ``TP / (TP + FN)``, F1 (their harmonic mean), support.

    average:
        ``None``: per-class arrays ``(precision, recall, f1, support)``;
        ``"macro"``: unweighted mean over the ``num_classes`` classes;
        ``"weighted"``: mean weighted by support (true count);
        ``"micro"``: from the summed counts (equals accuracy for single-label data).
    Averaged results are floats, and ``support`` is then the total number of samples.
    """
    if average not in (None, "macro", "weighted", "micro"):
        raise ValueError(f"average: expected None, 'macro', 'weighted' or 'micro', got {average!r}")
    cm = confusion_matrix(y_true, y_pred, num_classes)
    tp = np.diag(cm).astype(np.float64)
    predicted = cm.sum(axis=0)  # TP + FP per class
    support = cm.sum(axis=1)    # TP + FN per class
    if average == "micro":
        tp_sum, pred_sum, true_sum = tp.sum(), predicted.sum(), support.sum()
        precision = float(_safe_divide(tp_sum, pred_sum))
        recall = float(_safe_divide(tp_sum, true_sum))
        f1 = float(_safe_divide(2 * tp_sum, pred_sum + true_sum))
        return precision, recall, f1, int(true_sum)
    precision = _safe_divide(tp, predicted)
    recall = _safe_divide(tp, support)
    # F1 = 2 TP / (2 TP + FP + FN): the harmonic mean, defined as 0 when TP + FP + FN = 0
    f1 = _safe_divide(2 * tp, predicted + support)
    if average is None:
        return precision, recall, f1, support
    if average == "macro":
        weights = np.ones_like(precision)
    else:
        weights = support.astype(np.float64)
        if weights.sum() == 0:
            return 0.0, 0.0, 0.0, 0
    return (
        float(np.average(precision, weights=weights)),
        float(np.average(recall, weights=weights)),
        float(np.average(f1, weights=weights)),
        int(support.sum()),
    )


def classification_report(y_true, y_pred, target_names=None, digits=2, num_classes=None):
    """Per-class precision, recall, F1 and support, then accuracy and macro/weighted averages.

    The text is laid out exactly as scikit-learn's ``classification_report``.
    """
    p, r, f1, support = precision_recall_f1(y_true, y_pred, num_classes)
    c = len(support)
    if target_names is None:
        target_names = [str(k) for k in range(c)]
    target_names = [str(name) for name in target_names]
    if len(target_names) != c:
        raise ValueError(f"target_names: expected {c} names (one per class), got {len(target_names)}")
    headers = ["precision", "recall", "f1-score", "support"]
    width = max(max(len(name) for name in target_names), len("weighted avg"), digits)
    report = ("{:>{width}s} " + " {:>9}" * len(headers)).format("", *headers, width=width)
    report += "\n\n"
    row_fmt = "{:>{width}s} " + " {:>9.{digits}f}" * 3 + " {:>9}\n"
    for row in zip(target_names, p, r, f1, support):
        report += row_fmt.format(*row, width=width, digits=digits)
    report += "\n"
    total = int(support.sum())
    acc = precision_recall_f1(y_true, y_pred, c, average="micro")[2]
    report += ("{:>{width}s} " + " {:>9.{digits}}" * 2 + " {:>9.{digits}f}" + " {:>9}\n").format(
        "accuracy", "", "", acc, total, width=width, digits=digits
    )
    for average in ("macro", "weighted"):
        avg_p, avg_r, avg_f1, _ = precision_recall_f1(y_true, y_pred, c, average=average)
        report += row_fmt.format(f"{average} avg", avg_p, avg_r, avg_f1, total, width=width, digits=digits)
    return report


def _binary_inputs(y_true, y_score, pos_label):
    y_true = _array(y_true, "y_true").ravel()
    y_score = _array(y_score, "y_score")
    if y_score.ndim == 2 and y_score.shape[1] == 2:
        y_score = y_score[:, 1]  # (N, 2) probabilities: the positive column
    if y_score.ndim != 1:
        raise ValueError(f"y_score: expected shape (N,) (or (N, 2)), got {y_score.shape}")
    _same_length(y_true, y_score, "y_true", "y_score")
    classes = np.unique(y_true)
    if pos_label is None:
        if not (np.array_equal(classes, [0, 1]) or np.array_equal(classes, [0]) or np.array_equal(classes, [1])
                or np.array_equal(classes, [-1, 1]) or np.array_equal(classes, [-1])):
            raise ValueError(f"y_true: expected labels in {{0, 1}} or {{-1, 1}}, or pass pos_label; got {classes.tolist()}")
        pos_label = 1
    elif classes.size > 2:
        raise ValueError(f"y_true: expected two classes for a binary curve, got {classes.tolist()}")
    return (y_true == pos_label).astype(np.float64), y_score.astype(np.float64)


def _binary_clf_curve(positive, score):
    """False and true positive counts at each distinct threshold, thresholds decreasing."""
    order = np.argsort(score, kind="stable")[::-1]
    score = score[order]
    positive = positive[order]
    # Indices of the last sample of each run of equal scores: a threshold sits between runs.
    distinct = np.where(np.diff(score))[0]
    ends = np.r_[distinct, positive.size - 1]
    tps = np.cumsum(positive)[ends]
    fps = 1 + ends - tps
    return fps, tps, score[ends]


def roc_curve(y_true, y_score, pos_label=None, drop_intermediate=True):
    """Receiver operating characteristic of a binary problem: ``(fpr, tpr, thresholds)``.

    Thresholds are the distinct scores in decreasing order, preceded by ``inf`` (the point
    (0, 0)); ``fpr[k]``, ``tpr[k]`` are the rates of ``score >= thresholds[k]``. With
    ``drop_intermediate`` (the default, as scikit-learn) the points on straight segments are
    dropped; ``False`` keeps every threshold. Both match scikit-learn >= 1.3.
    """
    positive, score = _binary_inputs(y_true, y_score, pos_label)
    if positive.size == 0:
        raise ValueError("y_true: expected at least one sample, got none")
    fps, tps, thresholds = _binary_clf_curve(positive, score)
    if drop_intermediate and len(fps) > 2:
        # Keep the ends and every point where the slope changes (second differences != 0).
        keep = np.where(np.r_[True, np.logical_or(np.diff(fps, 2), np.diff(tps, 2)), True])[0]
        fps, tps, thresholds = fps[keep], tps[keep], thresholds[keep]
    fps = np.r_[0.0, fps]
    tps = np.r_[0.0, tps]
    thresholds = np.r_[np.inf, thresholds]
    if fps[-1] <= 0:
        raise ValueError("y_true: no negative sample, the false positive rate is undefined")
    if tps[-1] <= 0:
        raise ValueError("y_true: no positive sample, the true positive rate is undefined")
    return fps / fps[-1], tps / tps[-1], thresholds


def _binary_auc(positive, score):
    """Area under the ROC curve by the trapezoid rule: a tie between a positive and a negative
    score counts one half, as the diagonal segment it makes on the curve."""
    if positive.min() == positive.max():
        raise ValueError("y_true: only one class present, ROC AUC is undefined")
    fpr, tpr, _ = roc_curve(positive, score, drop_intermediate=True)
    return float(np.trapezoid(tpr, fpr))


def roc_auc_score(y_true, y_score, multi_class="ovr", average="macro"):
    """Area under the ROC curve.

    Binary: ``y_score`` of shape ``(N,)`` (score of class 1) or ``(N, 2)``.
    Multiclass: ``y_score`` of shape ``(N, C)`` and ``multi_class``:
        ``"ovr"``: one class against the rest, per class, averaged (``"macro"`` or ``"weighted"``
        by prevalence; ``None`` returns the per-class array);
        ``"ovo"``: every pair of classes, the mean of the two one-against-one AUCs restricted to
        the pair's samples (Hand & Till, 2001), averaged over pairs (``"macro"``) or weighted by
        the pair's prevalence (``"weighted"``).
    """
    y_true_arr = _array(y_true, "y_true").ravel()
    y_score_arr = _array(y_score, "y_score")
    if y_score_arr.ndim == 1 or (y_score_arr.ndim == 2 and y_score_arr.shape[1] == 2 and np.unique(y_true_arr).size <= 2):
        positive, score = _binary_inputs(y_true_arr, y_score_arr, None)
        return _binary_auc(positive, score)
    if y_score_arr.ndim != 2:
        raise ValueError(f"y_score: expected shape (N,) or (N, C), got {y_score_arr.shape}")
    if multi_class not in ("ovr", "ovo"):
        raise ValueError(f"multi_class: expected 'ovr' or 'ovo', got {multi_class!r}")
    if average not in (None, "macro", "weighted"):
        raise ValueError(f"average: expected None, 'macro' or 'weighted', got {average!r}")
    labels = _labels(y_true_arr, "y_true")
    _same_length(labels, y_score_arr, "y_true", "y_score")
    c = y_score_arr.shape[1]
    if labels.max() >= c:
        raise ValueError(f"y_true: expected labels < {c} (the number of score columns), got {labels.max()}")
    score = y_score_arr.astype(np.float64)
    if multi_class == "ovr":
        aucs = np.array([_binary_auc((labels == k).astype(np.float64), score[:, k]) for k in range(c)])
        if average is None:
            return aucs
        weights = np.bincount(labels, minlength=c) if average == "weighted" else None
        return float(np.average(aucs, weights=weights))
    if average is None:
        raise ValueError("average: expected 'macro' or 'weighted' with multi_class='ovo', got None")
    pair_aucs, pair_weights = [], []
    for a in range(c):
        for b in range(a + 1, c):
            mask = (labels == a) | (labels == b)
            auc_a = _binary_auc((labels[mask] == a).astype(np.float64), score[mask, a])
            auc_b = _binary_auc((labels[mask] == b).astype(np.float64), score[mask, b])
            pair_aucs.append((auc_a + auc_b) / 2.0)
            pair_weights.append(mask.mean())
    weights = pair_weights if average == "weighted" else None
    return float(np.average(pair_aucs, weights=weights))


def classification_summary(y_true, scores, top_k=(1, 2, 5), num_classes=None):
    """Everything the studies report about a classifier, from its ``(N, C)`` scores (probabilities or logits).

    Returns a dict: ``"top_k"`` ``{k: accuracy}`` for each ``k`` of ``top_k`` (``k`` must not
    exceed the number of classes), per-class ``"precision"``, ``"recall"``, ``"f1"``,
    ``"support"`` arrays and their ``"macro"`` averages ``(precision, recall, f1)``,
    ``"auroc"`` (one vs rest, macro; ``None`` when a class is missing from ``y_true``, where it
    is undefined), ``"auroc_per_class"`` (array, or None) and the ``"confusion_matrix"``.
    AUROC needs scores that rank the classes: pass probabilities or logits, not labels.
    """
    scores = _array(scores, "scores")
    y_true = _labels(y_true, "y_true")
    if scores.ndim != 2:
        raise ValueError(f"scores: expected shape (N, C), got {scores.shape}")
    c = scores.shape[1] if num_classes is None else int(num_classes)
    if scores.shape[1] != c:
        raise ValueError(f"scores: expected {c} columns (one per class), got {scores.shape[1]}")
    bad = [k for k in top_k if not isinstance(k, numbers.Integral) or not 1 <= k <= c]
    if bad:
        raise ValueError(f"top_k: expected values in [1, {c}] (the number of classes), got {bad}")
    pred = scores.argmax(axis=1)
    precision, recall, f1, support = precision_recall_f1(y_true, pred, num_classes=c)
    summary = {
        "top_k": {int(k): top_k_accuracy(scores, y_true, k=int(k)) for k in top_k},
        "precision": precision, "recall": recall, "f1": f1, "support": support,
        "macro": (float(precision.mean()), float(recall.mean()), float(f1.mean())),
        "confusion_matrix": confusion_matrix(y_true, pred, num_classes=c),
        "auroc": None, "auroc_per_class": None,
    }
    if np.unique(y_true).size == c:
        if c == 2:
            summary["auroc"] = roc_auc_score(y_true, scores[:, 1])
        else:
            summary["auroc_per_class"] = roc_auc_score(y_true, scores, multi_class="ovr", average=None)
            summary["auroc"] = float(summary["auroc_per_class"].mean())
    return summary


# Detection metrics live in their own module; re-exported so that ``minidl.metrics.detection_map`` works.
from .metrics_detection import coco_map, detection_map, rpn_recall  # noqa: E402,F401
