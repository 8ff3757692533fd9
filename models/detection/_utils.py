"""Matching boxes to ground truth and sampling balanced minibatches (torchvision's ``_utils``)."""
from __future__ import annotations

import numpy as np

from minidl import ops

def to_host(array):
    """A head output's array on the host (one device-to-host copy for a CuPy array, none for NumPy).

    The detector's proposal filtering, matching, sampling and post-processing work on a few
    thousand boxes per image in NumPy: on a GPU each stage reads its head outputs back once
    per batch and hands its results (indices, targets, RoIs) back to the device once, so that
    every operation sees arrays of one device."""
    return array.get() if type(array).__module__.startswith("cupy") else array


def like(host_array, tensor):
    """``host_array`` on ``tensor``'s device (a CuPy copy for a GPU tensor, itself on the CPU)."""
    if type(tensor.data).__module__.startswith("cupy"):
        import cupy

        with cupy.cuda.Device(tensor.data.device.id):
            return cupy.asarray(host_array)
    return host_array


BELOW_LOW = -1  # IoU below the low threshold: background
BETWEEN = -2  # between the thresholds: ignored by the loss


def match(gt_boxes, boxes, high, low, allow_low_quality_matches):
    """For each of ``boxes`` (N, 4), the index of its best ground-truth box, or BELOW_LOW / BETWEEN.

    A box is matched when its best IoU is >= ``high``, background below ``low``, ignored in
    between. With ``allow_low_quality_matches`` (the RPN), every ground-truth box also claims
    the boxes that reach its own highest IoU, so that a small or oddly shaped object still
    gets a positive anchor. Returns (matches (N,) int64, best IoU (N,)).
    """
    n = boxes.shape[0]
    if gt_boxes.shape[0] == 0:
        return np.full(n, BELOW_LOW, np.int64), np.zeros(n)
    iou = ops.box_iou(gt_boxes.astype(np.float32), boxes.astype(np.float32)).numpy()  # (G, N)
    best = iou.max(axis=0)
    matches = iou.argmax(axis=0).astype(np.int64)
    original = matches.copy()
    matches[best < low] = BELOW_LOW
    matches[(best >= low) & (best < high)] = BETWEEN
    if allow_low_quality_matches:
        best_per_gt = iou.max(axis=1, keepdims=True)  # (G, 1)
        _, cols = np.nonzero((iou == best_per_gt) & (best_per_gt > 0))
        matches[cols] = original[cols]
    return matches, best


def sample_balanced(labels, batch_size, positive_fraction, rng):
    """Indices of positives (label >= 1) and negatives (label == 0) for one image.

    At most ``batch_size * positive_fraction`` positives, the rest negatives (fewer when there
    are not enough), chosen uniformly at random; labels < 0 are never chosen.
    """
    positive = np.nonzero(labels >= 1)[0]
    negative = np.nonzero(labels == 0)[0]
    num_pos = min(positive.size, int(batch_size * positive_fraction))
    num_neg = min(negative.size, batch_size - num_pos)
    pos = rng.choice(positive, num_pos, replace=False) if num_pos else positive[:0]
    neg = rng.choice(negative, num_neg, replace=False) if num_neg else negative[:0]
    return pos.astype(np.int64), neg.astype(np.int64)
