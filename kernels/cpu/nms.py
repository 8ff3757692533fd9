"""Box IoU and non-maximum suppression for the CPU (Numba), torchvision's semantics.

Boxes are (N, 4) arrays ``(x1, y1, x2, y2)``; areas are ``(x2 - x1) * (y2 - y1)``
without the +1 of older detection code. NMS sorts by decreasing score (stable: equal
scores keep the lower index first), keeps the best remaining box and suppresses every
later box whose IoU with it is strictly greater than the threshold. Arithmetic runs in
the boxes' dtype as in torchvision's CPU kernel, so float32 results match it bit for bit;
two zero-area boxes have IoU 0/0 = NaN there, which never exceeds the threshold, so
such boxes are kept (here ``box_iou`` reports 0 for them instead of NaN).

Non-finite coordinates. A box with a NaN coordinate has a NaN area, so its IoU with every
box is NaN, which is never above the threshold: it never suppresses and is never
suppressed, so it is **kept** (torchvision's CPU kernel decides the same, by the same
arithmetic; it documents nothing more). A box with an infinite coordinate has an infinite
(or NaN) area: its IoU with a finite box is 0 and with another infinite box 0 or NaN, so it
is kept too and never suppresses. ``batched_nms`` runs the same greedy loop and only lets a
box suppress boxes of its own category (no coordinate offsets, which an infinite coordinate
would turn into inf or NaN for every box), so it returns exactly what ``nms`` per category
returns, merged in decreasing score order, whatever the coordinates. ``iou_threshold`` must be
in [0, 1] (NaN or anything outside is a ValueError naming it).

The greedy loop is O(N^2) in the worst case, so the coordinates are gathered into
score order once (contiguous reads) and the inner loop is branch-free: it computes the
IoU with every later box and ORs the result into a suppressed flag, which LLVM turns
into SIMD code.

Example::

    >>> import numpy as np
    >>> boxes = np.array([[0, 0, 10, 10], [1, 1, 10, 10], [20, 20, 30, 30]], np.float32)
    >>> nms(boxes, np.array([0.9, 0.8, 0.7], np.float32), 0.5)
    array([0, 2])
"""

import numpy as np
from numba import njit

from minidl.kernels.shapes import check_iou_threshold


def _check_boxes(boxes, name="boxes"):
    boxes = np.asarray(boxes)
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise ValueError(f"{name} must have shape (N, 4) as (x1, y1, x2, y2), got shape {boxes.shape}")
    if boxes.dtype not in (np.float32, np.float64):
        boxes = boxes.astype(np.float32)
    return np.ascontiguousarray(boxes)


def _check_scores(scores, n, name="scores"):
    scores = np.asarray(scores)
    if scores.shape != (n,):
        raise ValueError(f"{name} must have shape ({n},), got {scores.shape}")
    return scores


def box_iou(boxes1, boxes2):
    """Pairwise IoU, (N, M): ``inter / (area1 + area2 - inter)``; 0 where the union is 0."""
    b1 = _check_boxes(boxes1, "boxes1")
    b2 = _check_boxes(boxes2, "boxes2")
    dtype = np.result_type(b1.dtype, b2.dtype)
    b1 = b1.astype(dtype, copy=False)
    b2 = b2.astype(dtype, copy=False)
    area1 = (b1[:, 2] - b1[:, 0]) * (b1[:, 3] - b1[:, 1])  # (N,)
    area2 = (b2[:, 2] - b2[:, 0]) * (b2[:, 3] - b2[:, 1])  # (M,)
    lt = np.maximum(b1[:, None, :2], b2[None, :, :2])  # (N, M, 2)
    rb = np.minimum(b1[:, None, 2:], b2[None, :, 2:])  # (N, M, 2)
    wh = np.clip(rb - lt, 0, None)
    inter = wh[..., 0] * wh[..., 1]  # (N, M)
    union = area1[:, None] + area2[None, :] - inter
    iou = np.zeros_like(inter)
    np.divide(inter, union, out=iou, where=union != 0)
    return iou


# error_model="numpy": 0/0 gives NaN (as in C++) instead of raising, and keeps the loop SIMD.
@njit(cache=True, error_model="numpy")
def _nms_sorted(boxes, order, labels, iou_threshold):
    """Greedy NMS over boxes visited in ``order``; returns the kept original indices.

    A box only suppresses later boxes with the same ``labels`` value (categories, in
    original index order): all zeros for plain NMS.
    """
    n = order.shape[0]
    # Gather into score order: the inner loop then reads contiguous arrays.
    x1 = np.empty(n, boxes.dtype)
    y1 = np.empty(n, boxes.dtype)
    x2 = np.empty(n, boxes.dtype)
    y2 = np.empty(n, boxes.dtype)
    label = np.empty(n, np.int64)
    for i in range(n):
        k = order[i]
        label[i] = labels[k]
        x1[i] = boxes[k, 0]
        y1[i] = boxes[k, 1]
        x2[i] = boxes[k, 2]
        y2[i] = boxes[k, 3]
    area = (x2 - x1) * (y2 - y1)
    zero = boxes.dtype.type(0)
    suppressed = np.zeros(n, np.uint8)
    keep = np.empty(n, np.int64)
    n_keep = 0
    for i in range(n):
        if suppressed[i]:
            continue
        keep[n_keep] = order[i]
        n_keep += 1
        ix1 = x1[i]
        iy1 = y1[i]
        ix2 = x2[i]
        iy2 = y2[i]
        iarea = area[i]
        ilabel = label[i]
        for j in range(i + 1, n):
            w = max(zero, min(ix2, x2[j]) - max(ix1, x1[j]))
            h = max(zero, min(iy2, y2[j]) - max(iy1, y1[j]))
            inter = w * h
            iou = inter / (iarea + area[j] - inter)  # 0/0 = NaN never suppresses
            suppressed[j] |= (iou > iou_threshold) & (label[j] == ilabel)
    return keep[:n_keep]


def _categories(idxs, n):
    """Category ids as int64 labels 0..K-1 (any dtype of ids; equal ids, equal labels)."""
    idxs = np.asarray(_check_scores(idxs, n, "idxs"))
    return np.unique(idxs, return_inverse=True)[1].reshape(n).astype(np.int64)


def nms(boxes, scores, iou_threshold):
    """Indices (int64) of the boxes kept by greedy NMS, in decreasing score order."""
    iou_threshold = check_iou_threshold(iou_threshold)
    boxes = _check_boxes(boxes)
    scores = _check_scores(scores, boxes.shape[0])
    if boxes.shape[0] == 0:
        return np.empty(0, np.int64)
    # Stable sort of -score: decreasing score, ties keep the lower index first.
    order = np.argsort(-scores, kind="stable").astype(np.int64)
    return _nms_sorted(boxes, order, np.zeros(boxes.shape[0], np.int64), iou_threshold)


def batched_nms(boxes, scores, idxs, iou_threshold):
    """NMS done independently per category ``idxs``; the result is sorted by decreasing score.

    One greedy pass over all boxes in score order in which a box only suppresses boxes of
    its own category: exactly the union of per-category ``nms`` results (a box of another
    category never changes which boxes of this one are kept), with no coordinate offsets,
    so infinite or NaN coordinates cannot leak from one category into another.
    """
    iou_threshold = check_iou_threshold(iou_threshold)
    boxes = _check_boxes(boxes)
    n = boxes.shape[0]
    scores = _check_scores(scores, n)
    labels = _categories(idxs, n)
    if n == 0:
        return np.empty(0, np.int64)
    order = np.argsort(-scores, kind="stable").astype(np.int64)
    return _nms_sorted(boxes, order, labels, iou_threshold)
