"""CUDA box IoU and non-maximum suppression, torchvision's semantics and its CUDA algorithm.

Same entry points as ``kernels/cpu/nms.py``: ``box_iou``, ``nms``, ``batched_nms``.
Boxes are (N, 4) ``(x1, y1, x2, y2)``, areas without +1; NMS keeps the best remaining
box and suppresses later boxes whose IoU with it is strictly above the threshold;
ties in score keep the lower index first. Arithmetic runs in the boxes' dtype, as
on the CPU, so both backends make the same decisions.

NMS in two kernels, as torchvision's ``nms_kernel.cu``:

1. **IoU bitmask.** Boxes are sorted by decreasing score and cut into blocks of 64.
   Block (row block r, column block c) of the launch grid has 64 threads; thread
   t compares box ``64 r + t`` with the (up to) 64 boxes of column block c and sets
   bit b of one 64-bit word when box ``64 c + b`` comes after it and overlaps it
   more than the threshold: ``mask[box, c]``. Blocks below the diagonal (c < r)
   only hold earlier boxes and are skipped.
2. **Greedy reduction.** One block walks the boxes in score order, keeping a
   "removed" bitmap of ceil(N/64) words: a box not yet removed is kept, and its
   mask row is ORed into the bitmap, the words split across the block's threads
   (as torchvision's ``gather_keep_from_mask``, with one barrier per word of 64
   boxes). This keeps everything on the GPU: no copy of the N x N/64 mask to the host.

``batched_nms`` is the same two kernels with a category label per box: the mask bit is set
only for boxes of the same category, so the result is exactly per-category NMS (no
coordinate offsets, which one infinite coordinate would turn into inf/NaN for every box).
Non-finite coordinates as on the CPU: a box with a NaN or infinite coordinate has a NaN or
infinite area, its IoU with any box is 0 or NaN, so it never suppresses and is kept.
``iou_threshold`` must be in [0, 1] (ValueError naming it otherwise).
"""
from __future__ import annotations

import numpy as np
from numba import cuda

from minidl.kernels.cuda._backend import SIMULATOR, WARP, array_module, contiguous, current_stream, launch
from minidl.kernels.shapes import check_iou_threshold

BOXES_PER_WORD = 64


def _check_boxes(boxes, name="boxes"):
    if not hasattr(boxes, "shape") or boxes.ndim != 2 or boxes.shape[1] != 4:
        raise ValueError(f"{name} must have shape (N, 4) as (x1, y1, x2, y2), "
                         f"got shape {getattr(boxes, 'shape', None)}")
    xp = array_module(boxes)
    if boxes.dtype not in (np.float32, np.float64):
        boxes = boxes.astype(np.float32)
    return contiguous(xp, boxes)


def _check_scores(scores, n, name="scores"):
    if tuple(getattr(scores, "shape", ())) != (n,):
        raise ValueError(f"{name} must have shape ({n},), got {getattr(scores, 'shape', None)}")
    return scores


@cuda.jit(device=True)
def _overlaps(ax1, ay1, ax2, ay2, a_area, bx1, by1, bx2, by2, b_area, threshold):
    """IoU(a, b) > threshold, IEEE semantics without dividing by zero (0/0 = NaN never suppresses)."""
    zero = a_area - a_area  # 0 in the boxes' dtype: a literal 0 would promote float32 to float64
    w = max(zero, min(ax2, bx2) - max(ax1, bx1))
    h = max(zero, min(ay2, by2) - max(ay1, by1))
    inter = w * h
    union = a_area + b_area - inter
    if union == 0:
        return inter > 0  # x/0 is +inf for x > 0; 0/0 is NaN
    return inter / union > threshold


@cuda.jit(cache=True)
def _iou_kernel(b1, b2, out):
    """out[i, j] = IoU(b1[i], b2[j]); 0 where the union is 0 (as the CPU kernel)."""
    t = cuda.grid(1)
    n, m = out.shape
    if t >= n * m:
        return
    i = t // m
    j = t % m
    zero = b1[i, 0] - b1[i, 0]  # 0 in the boxes' dtype
    w = max(zero, min(b1[i, 2], b2[j, 2]) - max(b1[i, 0], b2[j, 0]))
    h = max(zero, min(b1[i, 3], b2[j, 3]) - max(b1[i, 1], b2[j, 1]))
    inter = w * h
    union = (b1[i, 2] - b1[i, 0]) * (b1[i, 3] - b1[i, 1]) + (b2[j, 2] - b2[j, 0]) * (b2[j, 3] - b2[j, 1]) - inter
    if union != 0:
        out[i, j] = inter / union
    else:
        out[i, j] = 0


def box_iou(boxes1, boxes2):
    """Pairwise IoU, (N, M): ``inter / (area1 + area2 - inter)``; 0 where the union is 0."""
    b1 = _check_boxes(boxes1, "boxes1")
    b2 = _check_boxes(boxes2, "boxes2")
    xp = array_module(b1, b2)
    dtype = np.result_type(b1.dtype, b2.dtype)
    b1 = contiguous(xp, b1, dtype)
    b2 = contiguous(xp, b2, dtype)
    out = xp.empty((b1.shape[0], b2.shape[0]), dtype=dtype)
    if out.size:
        launch(_iou_kernel, out.size, b1, b2, out)
    return out


@cuda.jit(cache=True)
def _nms_mask_kernel(x1, y1, x2, y2, area, label, threshold, mask):
    """mask[i, c] bit b set when sorted box 64c + b (> i) has box i's label and overlaps it above the threshold."""
    row_block = cuda.blockIdx.y
    col_block = cuda.blockIdx.x
    if row_block > col_block:
        return  # only earlier boxes in this column block: nothing to suppress
    n = x1.shape[0]
    i = row_block * 64 + cuda.threadIdx.x
    if i >= n:
        return
    col_start = col_block * 64
    col_size = min(n - col_start, 64)
    # On the diagonal, compare only with the boxes after i.
    first = cuda.threadIdx.x + 1 if row_block == col_block else 0
    word = np.uint64(0)
    for b in range(first, col_size):
        j = col_start + b
        if label[j] == label[i] and _overlaps(x1[i], y1[i], x2[i], y2[i], area[i], x1[j], y1[j], x2[j], y2[j], area[j], threshold):
            word |= np.uint64(1) << np.uint64(b)
    mask[i, col_block] = word


@cuda.jit(cache=True)
def _nms_reduce_kernel(mask, removed, keep):
    """One block: greedy pass over the sorted boxes; keep[i] = 1 for the boxes that survive.

    Bitmap word j is only ever written by thread j % blockDim, so threads never
    write the same word. Inside word block ``nblock`` every thread follows the
    current word in a register (``removed_val``), so the only value read across
    threads is ``removed[nblock]``, once per word block, after a barrier:
    ceil(N/64) barriers in all instead of one or two per box.
    """
    n, col_blocks = mask.shape
    tid = cuda.threadIdx.x
    threads = cuda.blockDim.x
    for nblock in range(col_blocks):
        cuda.syncthreads()  # earlier word blocks' updates of removed[nblock] are visible
        removed_val = removed[nblock]
        for inblock in range(64):
            i = nblock * 64 + inblock
            if i >= n:
                break
            if (removed_val >> np.uint64(inblock)) & np.uint64(1) == 0:
                if tid == 0:
                    keep[i] = 1
                # Row i only has bits for later boxes: in this word, and in the words after it.
                removed_val |= mask[i, nblock]
                for w in range(tid, col_blocks, threads):
                    if w > nblock:
                        removed[w] |= mask[i, w]


def _greedy(boxes, scores, labels, iou_threshold):
    """Kept indices (int64, decreasing score) of greedy NMS where a box only suppresses its own label."""
    n = boxes.shape[0]
    xp = array_module(boxes, scores)
    if n == 0:
        return xp.empty(0, dtype=np.int64)
    # Decreasing score, ties by increasing index: lexsort's last key is the primary one.
    order = xp.lexsort(xp.stack([xp.arange(n, dtype=np.float64), -scores.astype(np.float64)]))
    order = order.astype(np.int64)
    sorted_boxes = boxes[order]  # (N, 4) in score order: contiguous reads below
    x1, y1, x2, y2 = (xp.ascontiguousarray(sorted_boxes[:, k]) for k in range(4))
    area = (x2 - x1) * (y2 - y1)
    label = xp.ascontiguousarray(labels[order])
    col_blocks = -(-n // BOXES_PER_WORD)
    mask = xp.zeros((n, col_blocks), dtype=np.uint64)
    stream = current_stream(x1)
    _nms_mask_kernel[(col_blocks, col_blocks), BOXES_PER_WORD, stream](x1, y1, x2, y2, area, label, iou_threshold, mask)
    removed = xp.zeros(col_blocks, dtype=np.uint64)
    keep = xp.zeros(n, dtype=np.uint8)
    # One block, as many threads as bitmap words (whole warps); 8 under the simulator,
    # where every thread of a block is a Python thread.
    threads = min(1024, -(-col_blocks // WARP) * WARP)
    if SIMULATOR:
        threads = min(threads, 8)
    _nms_reduce_kernel[1, threads, stream](mask, removed, keep)
    return order[xp.nonzero(keep)[0]]


def nms(boxes, scores, iou_threshold):
    """Indices (int64) of the boxes kept by greedy NMS, in decreasing score order."""
    iou_threshold = check_iou_threshold(iou_threshold)
    boxes = _check_boxes(boxes)
    n = boxes.shape[0]
    scores = _check_scores(scores, n)
    xp = array_module(boxes, scores)
    return _greedy(boxes, scores, xp.zeros(n, dtype=np.int64), iou_threshold)


def batched_nms(boxes, scores, idxs, iou_threshold):
    """NMS per category ``idxs``: one greedy pass in which a box only suppresses boxes of its category."""
    iou_threshold = check_iou_threshold(iou_threshold)
    boxes = _check_boxes(boxes)
    n = boxes.shape[0]
    scores = _check_scores(scores, n)
    idxs = _check_scores(idxs, n, "idxs")
    xp = array_module(boxes, scores)
    labels = xp.unique(idxs, return_inverse=True)[1].reshape(n).astype(np.int64)
    return _greedy(boxes, scores, labels, iou_threshold)
