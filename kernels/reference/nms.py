"""Reference IoU and non-maximum suppression in plain NumPy: the textbook and the test oracle.

Intersection over union of two boxes (x1, y1, x2, y2)::

    inter = max(0, min(x2, x2') - max(x1, x1')) * max(0, min(y2, y2') - max(y1, y1'))
    IoU   = inter / (area + area' - inter)

Greedy NMS (as in R-CNN and torchvision):

1. sort the boxes by decreasing score (ties: lower index first);
2. take the first box that is not suppressed and keep it;
3. suppress every later box whose IoU with it is strictly above the threshold;
4. repeat from 2 until the list is exhausted.

A box that is suppressed no longer suppresses others, which is why the order matters.
Arithmetic runs in the boxes' dtype, like torchvision's kernel, so the reference and
the fast kernel agree exactly, also at borderline IoU values.
"""

import numpy as np


def iou_pair(a, b):
    """IoU of two boxes; 0 when both have zero area (0/0)."""
    zero = a.dtype.type(0)
    w = max(zero, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(zero, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union != 0 else zero


def box_iou(boxes1, boxes2):
    """(N, M) matrix of pairwise IoU, one pair at a time."""
    b1, b2 = np.asarray(boxes1), np.asarray(boxes2)
    out = np.zeros((len(b1), len(b2)), dtype=np.result_type(b1.dtype, b2.dtype, np.float32))
    for i in range(len(b1)):
        for j in range(len(b2)):
            out[i, j] = iou_pair(b1[i].astype(out.dtype), b2[j].astype(out.dtype))
    return out


def nms(boxes, scores, iou_threshold):
    """Greedy NMS, steps 1-4 of the module docstring; returns kept indices (int64)."""
    boxes = np.asarray(boxes)
    order = sorted(range(len(boxes)), key=lambda i: (-scores[i], i))
    suppressed = [False] * len(boxes)
    keep = []
    for pos, i in enumerate(order):
        if suppressed[pos]:
            continue
        keep.append(i)
        for later in range(pos + 1, len(order)):
            if iou_pair(boxes[i], boxes[order[later]]) > iou_threshold:
                suppressed[later] = True
    return np.array(keep, dtype=np.int64)


def batched_nms(boxes, scores, idxs, iou_threshold):
    """NMS run separately per category, then merged in decreasing score order."""
    boxes, scores, idxs = np.asarray(boxes), np.asarray(scores), np.asarray(idxs)
    keep = []
    for category in np.unique(idxs):
        members = np.flatnonzero(idxs == category)
        keep.extend(members[nms(boxes[members], scores[members], iou_threshold)])
    return np.array(sorted(keep, key=lambda i: (-scores[i], i)), dtype=np.int64)
