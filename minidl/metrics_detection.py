"""Detection metrics: VOC mean average precision, COCO-style AP over IoU 0.5:0.95, RPN recall.

Predictions are a list with one dict per image ``{"boxes": (n, 4) x1y1x2y2, "scores": (n,),
"labels": (n,)}``; targets the same without scores. Tensors or arrays are accepted.

Average precision of one class (PASCAL VOC 2010+, "all-point"):

1. Pool that class's detections over all images and visit them in decreasing score.
2. Each detection is matched to the ground-truth box of its class with the highest IoU in its
   image. It is a true positive when that IoU >= the threshold and that box is not matched yet
   (the box becomes matched); otherwise a false positive (a duplicate or a poor box).
3. After k detections: precision_k = TP_k / k, recall_k = TP_k / (number of ground-truth boxes).
4. AP = area under the monotone precision envelope p~(r) = max_{r' >= r} p(r'), summed over the
   recall steps: AP = sum_k (r_k - r_{k-1}) p~(r_k).

mAP averages the APs of the classes that have ground truth (a class with ground truth and no
detection scores 0; detections of a class without ground truth change nothing).

>>> import numpy as np
>>> preds = [{"boxes": np.array([[0, 0, 10, 10]]), "scores": np.array([0.9]), "labels": np.array([1])}]
>>> targets = [{"boxes": np.array([[0, 0, 10, 10]]), "labels": np.array([1])}]
>>> detection_map(preds, targets)["map"]
1.0
"""
from __future__ import annotations

import numpy as np


def _np(x):
    from .tensor import Tensor

    return x.numpy() if isinstance(x, Tensor) else np.asarray(x)


def _box_iou(a, b):
    from minidl import ops

    return ops.box_iou(a.astype(np.float64), b.astype(np.float64)).numpy()


def _check(preds, targets):
    if not isinstance(preds, (list, tuple)) or not isinstance(targets, (list, tuple)):
        raise TypeError(f"preds and targets must be lists of per-image dicts, got {type(preds).__name__} and "
                        f"{type(targets).__name__}")
    if len(preds) != len(targets):
        raise ValueError(f"preds and targets must have one entry per image: got {len(preds)} and {len(targets)}")
    out_p, out_t = [], []
    for i, (p, t) in enumerate(zip(preds, targets)):
        for key in ("boxes", "scores", "labels"):
            if key not in p:
                raise ValueError(f"preds[{i}] must have key {key!r}, got keys {sorted(p)}")
        for key in ("boxes", "labels"):
            if key not in t:
                raise ValueError(f"targets[{i}] must have key {key!r}, got keys {sorted(t)}")
        pb = _np(p["boxes"]).reshape(-1, 4).astype(np.float64)
        tb = _np(t["boxes"]).reshape(-1, 4).astype(np.float64)
        ps, pl, tl = _np(p["scores"]).reshape(-1), _np(p["labels"]).reshape(-1), _np(t["labels"]).reshape(-1)
        if not (len(pb) == len(ps) == len(pl)):
            raise ValueError(f"preds[{i}]: boxes, scores and labels must have the same length, got "
                             f"{len(pb)}, {len(ps)}, {len(pl)}")
        if len(tb) != len(tl):
            raise ValueError(f"targets[{i}]: boxes and labels must have the same length, got {len(tb)}, {len(tl)}")
        out_p.append((pb, ps.astype(np.float64), pl.astype(np.int64)))
        out_t.append((tb, tl.astype(np.int64)))
    return out_p, out_t


def _class_pr(preds, targets, cls, iou_threshold):
    """Precision and recall after each detection of class ``cls`` (in decreasing score), and #gt."""
    gt = {i: tb[tl == cls] for i, (tb, tl) in enumerate(targets)}
    n_gt = sum(len(b) for b in gt.values())
    images, scores, boxes = [], [], []
    for i, (pb, ps, pl) in enumerate(preds):
        m = pl == cls
        images += [i] * int(m.sum())
        scores.append(ps[m])
        boxes.append(pb[m])
    scores = np.concatenate(scores) if scores else np.zeros(0)
    if len(scores) == 0:
        return np.zeros(0), np.zeros(0), n_gt
    boxes = np.concatenate(boxes)
    images = np.asarray(images)
    order = np.argsort(-scores, kind="stable")
    matched = {i: np.zeros(len(b), bool) for i, b in gt.items()}
    tp = np.zeros(len(order))
    for rank, d in enumerate(order):
        g = gt[images[d]]
        if len(g) == 0:
            continue
        ious = _box_iou(boxes[d:d + 1], g)[0]
        best = int(np.argmax(ious))
        if ious[best] >= iou_threshold and not matched[images[d]][best]:
            matched[images[d]][best] = True
            tp[rank] = 1.0
    ctp = np.cumsum(tp)
    precision = ctp / np.arange(1, len(tp) + 1)
    recall = ctp / max(n_gt, 1)
    return precision, recall, n_gt


def voc_ap(recall, precision):
    """All-point VOC AP: area under the monotone (right-to-left maximum) precision envelope."""
    mrec = np.concatenate([[0.0], recall, [1.0]])
    mpre = np.concatenate([[0.0], precision, [0.0]])
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]  # envelope: p~(r) = max over r' >= r
    steps = np.nonzero(mrec[1:] != mrec[:-1])[0]
    return float(np.sum((mrec[steps + 1] - mrec[steps]) * mpre[steps + 1]))


def coco_interpolated_ap(recall, precision):
    """COCO's 101-point AP: the envelope sampled at recall 0, 0.01, ..., 1 (0 beyond the last recall)."""
    if len(recall) == 0:
        return 0.0
    envelope = np.maximum.accumulate(precision[::-1])[::-1]
    thresholds = np.linspace(0.0, 1.0, 101)
    idx = np.searchsorted(recall, thresholds, side="left")
    sampled = np.where(idx < len(envelope), envelope[np.minimum(idx, len(envelope) - 1)], 0.0)
    return float(sampled.mean())


def detection_map(preds, targets, iou_threshold=0.5, classes=None):
    """VOC mAP at one IoU threshold: ``{"map": float, "ap": {class: AP}}`` (see the module docstring).

    ``classes`` restricts the evaluation to those labels (default: every label with ground truth).
    """
    if not 0.0 < iou_threshold <= 1.0:
        raise ValueError(f"iou_threshold must be in (0, 1], got {iou_threshold}")
    p, t = _check(preds, targets)
    present = sorted({int(c) for _, tl in t for c in tl})
    classes = present if classes is None else [int(c) for c in classes]
    ap = {}
    for cls in classes:
        precision, recall, n_gt = _class_pr(p, t, cls, iou_threshold)
        if n_gt == 0:
            continue
        ap[cls] = voc_ap(recall, precision) if len(recall) else 0.0
    return {"map": float(np.mean(list(ap.values()))) if ap else 0.0, "ap": ap}


def coco_map(preds, targets, iou_thresholds=None):
    """COCO-style AP: the 101-point AP averaged over classes and IoU 0.50:0.05:0.95.

    Matching follows the VOC rule above at each threshold. Returns ``{"map": AP@[.5:.95],
    "map_50": ..., "map_75": ..., "per_threshold": {iou: mAP}}``.
    """
    thresholds = np.round(np.arange(0.5, 0.951, 0.05), 2) if iou_thresholds is None else list(iou_thresholds)
    p, t = _check(preds, targets)
    classes = sorted({int(c) for _, tl in t for c in tl})
    per = {}
    for thr in thresholds:
        aps = []
        for cls in classes:
            precision, recall, _ = _class_pr(p, t, cls, float(thr))
            aps.append(coco_interpolated_ap(recall, precision))
        per[float(thr)] = float(np.mean(aps)) if aps else 0.0
    return {"map": float(np.mean(list(per.values()))), "map_50": per.get(0.5, float("nan")),
            "map_75": per.get(0.75, float("nan")), "per_threshold": per}


def rpn_recall(proposals, gt_boxes, iou_thresholds=(0.5, 0.7)):
    """Share of ground-truth boxes covered by at least one proposal with IoU >= each threshold.

    The seed calls this the RPN's "precision". ``proposals`` and ``gt_boxes`` are lists of
    per-image (n, 4) boxes. Returns ``{threshold: recall}``.
    """
    if len(proposals) != len(gt_boxes):
        raise ValueError(f"proposals and gt_boxes must have one entry per image: got {len(proposals)} and "
                         f"{len(gt_boxes)}")
    best = []
    for props, gt in zip(proposals, gt_boxes):
        props = _np(props).reshape(-1, 4).astype(np.float64)
        gt = _np(gt).reshape(-1, 4).astype(np.float64)
        if len(gt) == 0:
            continue
        best.append(_box_iou(gt, props).max(axis=1) if len(props) else np.zeros(len(gt)))
    best = np.concatenate(best) if best else np.zeros(0)
    return {float(thr): (float((best >= thr).mean()) if len(best) else 0.0) for thr in iou_thresholds}
