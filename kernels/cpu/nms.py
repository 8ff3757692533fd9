"""Box IoU and non-maximum suppression for the CPU (Numba), torchvision's semantics.

Boxes are (N, 4) arrays ``(x1, y1, x2, y2)``; areas are ``(x2 - x1) * (y2 - y1)``
without the +1 of older detection code. NMS sorts by decreasing score (stable: equal
scores keep the lower index first), keeps the best remaining box and suppresses every
later box whose IoU with it is strictly greater than the threshold. Arithmetic runs in
the boxes' dtype as in torchvision's CPU kernel, so float32 results match it bit for bit;
two zero-area boxes have IoU 0/0 = NaN there, which never exceeds the threshold, so
such boxes are kept (here ``box_iou`` reports 0 for them instead of NaN).

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
def _nms_sorted(boxes, order, iou_threshold):
    """Greedy NMS over boxes visited in ``order``; returns the kept original indices."""
    n = order.shape[0]
    # Gather into score order: the inner loop then reads contiguous arrays.
    x1 = np.empty(n, boxes.dtype)
    y1 = np.empty(n, boxes.dtype)
    x2 = np.empty(n, boxes.dtype)
    y2 = np.empty(n, boxes.dtype)
    for i in range(n):
        k = order[i]
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
        for j in range(i + 1, n):
            w = max(zero, min(ix2, x2[j]) - max(ix1, x1[j]))
            h = max(zero, min(iy2, y2[j]) - max(iy1, y1[j]))
            inter = w * h
            iou = inter / (iarea + area[j] - inter)  # 0/0 = NaN never suppresses
            suppressed[j] |= iou > iou_threshold
    return keep[:n_keep]


def nms(boxes, scores, iou_threshold):
    """Indices (int64) of the boxes kept by greedy NMS, in decreasing score order."""
    boxes = _check_boxes(boxes)
    scores = _check_scores(scores, boxes.shape[0])
    if boxes.shape[0] == 0:
        return np.empty(0, np.int64)
    # Stable sort of -score: decreasing score, ties keep the lower index first.
    order = np.argsort(-scores, kind="stable").astype(np.int64)
    return _nms_sorted(boxes, order, float(iou_threshold))


def batched_nms(boxes, scores, idxs, iou_threshold):
    """NMS done independently per category ``idxs``, torchvision's coordinate-offset trick.

    Each category's boxes are shifted by ``idx * (max coordinate + 1)`` so boxes of
    different categories never overlap; one NMS over all of them then equals one NMS
    per category. The result is sorted by decreasing score.
    """
    boxes = _check_boxes(boxes)
    n = boxes.shape[0]
    scores = _check_scores(scores, n)
    idxs = _check_scores(idxs, n, "idxs")
    if n == 0:
        return np.empty(0, np.int64)
    offsets = idxs.astype(boxes.dtype) * (boxes.max() + boxes.dtype.type(1))  # (N,)
    return nms(boxes + offsets[:, None], scores, iou_threshold)
