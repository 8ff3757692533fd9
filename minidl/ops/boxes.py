"""Box operations with torchvision's semantics: NMS, IoU, box coding and box utilities.

Boxes are ``(x1, y1, x2, y2)`` in pixels. 
Box coding (Girshick et al., R-CNN, 2014, appendix C; as torchvision's ``BoxCoder``): a target
box ``g`` is expressed relative to a reference (anchor or proposal) box ``p`` of centre
``(px, py)`` and size ``(pw, ph)`` as::

    dx = wx * (gx - px) / pw      dy = wy * (gy - py) / ph
    dw = ww * log(gw / pw)        dh = wh * log(gh / ph)

with weights ``(wx, wy, ww, wh)``: (1, 1, 1, 1) for the RPN, (10, 10, 5, 5) for the second
stage (they scale the small deltas up to unit variance). Decoding inverts this, clamping
``dw, dh`` at log(1000 / 16) so that exp cannot overflow.

>>> import numpy as np
>>> from minidl.ops import encode_boxes, decode_boxes
>>> anchors = np.array([[0., 0., 10., 10.]])
>>> gt = np.array([[1., 2., 11., 14.]])
>>> np.allclose(decode_boxes(encode_boxes(gt, anchors), anchors), gt)
True
"""

import math

import numpy as np

from minidl.backend import get_array_module, kernels_for
from minidl.tensor import Tensor

BBOX_XFORM_CLIP = math.log(1000.0 / 16)


def _array(x, name):
    if isinstance(x, Tensor):
        return x.data
    if isinstance(x, np.ndarray) or type(x).__module__.startswith("cupy"):
        return x
    if isinstance(x, (list, tuple)):
        return np.asarray(x, np.float32)
    raise TypeError(f"{name} must be a Tensor or an array, got {type(x).__name__}")


def _like(result, template):
    """Return ``result`` as a Tensor when the template was one (no gradient), else as an array."""
    return Tensor._wrap(result) if isinstance(template, Tensor) else result



# ---------------------------------------------------------------------------------------- NMS and IoU
def _arrays(*named):
    """The arrays inside Tensors (or array-likes), and the kernel module for their device."""
    arrays = []
    for x, name in named:
        if isinstance(x, Tensor):
            arrays.append(x.data)
        elif isinstance(x, (np.ndarray, list, tuple)) or type(x).__module__.startswith("cupy"):
            arrays.append(x if not isinstance(x, (list, tuple)) else np.asarray(x))
        else:
            raise TypeError(f"{name} must be a Tensor or an array, got {type(x).__name__}")
    return arrays, kernels_for(get_array_module(arrays[0]), "nms")


def nms(boxes, scores, iou_threshold):
    """Greedy non-maximum suppression: the indices (int64 Tensor) of the boxes kept, by decreasing score.

    A box suppresses every later (lower-score) box whose IoU with it is strictly above
    ``iou_threshold``, which must be in [0, 1] (ValueError naming it for NaN or outside).
    Boxes with a NaN or infinite coordinate have a NaN or infinite area: their IoU with any
    box is 0 or NaN, so they never suppress and are kept, as in torchvision's kernel.
    Kernels: kernels/cpu/nms.py (kernels/cuda/nms.py for GPU arrays).

    Formula: take the best remaining box, drop every remaining box with IoU > iou_threshold with it, repeat;
             IoU(a, b) = area(a ∩ b) / area(a ∪ b), boxes (x1, y1, x2, y2)

    Args:
        boxes (Tensor): (N, 4) as (x1, y1, x2, y2).
        scores (Tensor): (N,).
        iou_threshold (float): in [0, 1].

    Shape:
        boxes (N, 4), scores (N,), output (K,) int64, K <= N.

    >>> import minidl
    >>> from minidl import ops
    >>> boxes = minidl.tensor([[0.0, 0.0, 10.0, 10.0], [1.0, 1.0, 10.0, 10.0], [20.0, 20.0, 30.0, 30.0]])
    >>> ops.nms(boxes, minidl.tensor([0.9, 0.8, 0.7]), 0.5)
    tensor([0, 2])

    See docs/detection_ops.md.
    """
    (b, s), kern = _arrays((boxes, "boxes"), (scores, "scores"))
    return Tensor._wrap(kern.nms(b, s, iou_threshold))


def batched_nms(boxes, scores, idxs, iou_threshold):
    """NMS within each category independently; the kept indices (int64 Tensor), by decreasing score.

    Exactly the per-category nms results merged in decreasing score order (ties: lower
    index first), also with infinite or NaN coordinates: a box only ever suppresses boxes of its
    own category (no coordinate-offset trick). ``iou_threshold`` as in nms.

    Formula: nms restricted to boxes of the same idxs value, results merged by score

    Args:
        boxes (Tensor): (N, 4).
        scores (Tensor): (N,).
        idxs (Tensor): (N,) int64 categories.
        iou_threshold (float): in [0, 1].

    Shape:
        output (K,) int64.

    >>> import minidl
    >>> from minidl import ops
    >>> boxes = minidl.tensor([[0.0, 0.0, 10.0, 10.0], [1.0, 1.0, 10.0, 10.0], [20.0, 20.0, 30.0, 30.0]])
    >>> ops.batched_nms(boxes, minidl.tensor([0.9, 0.8, 0.7]), minidl.tensor([0, 1, 0]), 0.5)
    tensor([0, 1, 2])

    See docs/detection_ops.md.
    """
    (b, s, i), kern = _arrays((boxes, "boxes"), (scores, "scores"), (idxs, "idxs"))
    return Tensor._wrap(kern.batched_nms(b, s, i, iou_threshold))


def box_iou(boxes1, boxes2):
    """Pairwise intersection over union of two box sets, as a Tensor.

    Formula: IoU(a, b) = area(a ∩ b) / area(a ∪ b), boxes (x1, y1, x2, y2)

    Args:
        boxes1 (Tensor): (N, 4) as (x1, y1, x2, y2).
        boxes2 (Tensor): (M, 4).

    Shape:
        output (N, M).

    >>> import minidl
    >>> from minidl import ops
    >>> boxes = minidl.tensor([[0.0, 0.0, 10.0, 10.0], [1.0, 1.0, 10.0, 10.0], [20.0, 20.0, 30.0, 30.0]])
    >>> ops.box_iou(boxes[:2], boxes)
    tensor([[1.  , 0.81, 0.  ],
            [0.81, 1.  , 0.  ]])

    See docs/detection_ops.md.
    """
    (a, b), kern = _arrays((boxes1, "boxes1"), (boxes2, "boxes2"))
    return Tensor._wrap(kern.box_iou(a, b))



# ---------------------------------------------------------------------------------------- box coding
def _boxes(b, name):
    b = _array(b, name)
    if b.ndim != 2 or b.shape[-1] != 4:
        raise ValueError(f"{name} must have shape (N, 4) as (x1, y1, x2, y2), got shape {b.shape}")
    return b


def encode_boxes(reference_boxes, proposals, weights=(1.0, 1.0, 1.0, 1.0)):
    """Regression targets (deltas) that take proposals onto reference boxes (Faster R-CNN's box coder).

    Formula: dx = wx (gx - px) / pw, dy = wy (gy - py) / ph, dw = ww log(gw / pw), dh = wh log(gh / ph)
             (centres x, y and sizes w, h of ground truth g and proposal p)

    Args:
        reference_boxes (Tensor): (N, 4) the targets.
        proposals (Tensor): (N, 4).
        weights (tuple): (wx, wy, ww, wh). Default: (1.0, 1.0, 1.0, 1.0).

    Shape:
        output (N, 4).

    >>> import minidl
    >>> from minidl import ops
    >>> ops.encode_boxes(minidl.tensor([[0.0, 0.0, 20.0, 10.0]]), minidl.tensor([[0.0, 0.0, 10.0, 10.0]]))
    tensor([[0.5   , 0.    , 0.6931, 0.    ]])

    See docs/detection_ops.md.
    """
    gt = _boxes(reference_boxes, "reference_boxes")
    p = _boxes(proposals, "proposals")
    if gt.shape != p.shape:
        raise ValueError(f"encode_boxes: reference_boxes {gt.shape} and proposals {p.shape} must match")
    wx, wy, ww, wh = (float(w) for w in weights)
    pw = p[:, 2] - p[:, 0]
    ph = p[:, 3] - p[:, 1]
    px = p[:, 0] + 0.5 * pw
    py = p[:, 1] + 0.5 * ph
    gw = gt[:, 2] - gt[:, 0]
    gh = gt[:, 3] - gt[:, 1]
    gx = gt[:, 0] + 0.5 * gw
    gy = gt[:, 1] + 0.5 * gh
    deltas = np.stack([wx * (gx - px) / pw, wy * (gy - py) / ph, ww * np.log(gw / pw), wh * np.log(gh / ph)], axis=1)
    return _like(deltas.astype(gt.dtype, copy=False), reference_boxes)


def decode_boxes(rel_codes, boxes, weights=(1.0, 1.0, 1.0, 1.0)):
    """Boxes from deltas applied to reference boxes: the inverse of encode_boxes.

    Formula: x = dx/wx w + cx, y = dy/wy h + cy, w' = exp(min(dw/ww, log(1000/16))) w, h' likewise

    Args:
        rel_codes (Tensor): (N, 4 K) deltas.
        boxes (Tensor): (N, 4) reference boxes.
        weights (tuple): (wx, wy, ww, wh). Default: (1.0, 1.0, 1.0, 1.0).

    Shape:
        output (N, 4 K).

    >>> import minidl
    >>> from minidl import ops
    >>> codes = ops.encode_boxes(minidl.tensor([[0.0, 0.0, 20.0, 10.0]]), minidl.tensor([[0.0, 0.0, 10.0, 10.0]]))
    >>> ops.decode_boxes(codes, minidl.tensor([[0.0, 0.0, 10.0, 10.0]]))
    tensor([[ 0.,  0., 20., 10.]])

    See docs/detection_ops.md.
    """
    codes = _array(rel_codes, "rel_codes")
    ref = _boxes(boxes, "boxes")
    if codes.ndim != 2 or codes.shape[1] % 4 or codes.shape[0] != ref.shape[0]:
        raise ValueError(f"rel_codes must be (N, 4*K) with N={ref.shape[0]}, got shape {codes.shape}")
    ref = ref.astype(codes.dtype, copy=False)
    wx, wy, ww, wh = (float(w) for w in weights)
    widths = (ref[:, 2] - ref[:, 0])[:, None]  # (N, 1)
    heights = (ref[:, 3] - ref[:, 1])[:, None]
    ctr_x = ref[:, 0:1] + 0.5 * widths
    ctr_y = ref[:, 1:2] + 0.5 * heights
    dx = codes[:, 0::4] / wx  # (N, K)
    dy = codes[:, 1::4] / wy
    dw = np.minimum(codes[:, 2::4] / ww, BBOX_XFORM_CLIP)
    dh = np.minimum(codes[:, 3::4] / wh, BBOX_XFORM_CLIP)
    pred_ctr_x = dx * widths + ctr_x
    pred_ctr_y = dy * heights + ctr_y
    pred_w = np.exp(dw) * widths
    pred_h = np.exp(dh) * heights
    out = np.stack([pred_ctr_x - 0.5 * pred_w, pred_ctr_y - 0.5 * pred_h,
                    pred_ctr_x + 0.5 * pred_w, pred_ctr_y + 0.5 * pred_h], axis=2)  # (N, K, 4)
    return _like(out.reshape(codes.shape).astype(codes.dtype, copy=False), rel_codes)


class BoxCoder:
    """encode_boxes and decode_boxes with fixed weights, as torchvision's BoxCoder.

    Formula: as encode_boxes / decode_boxes

    Args:
        weights (tuple): (wx, wy, ww, wh). Default: (1.0, 1.0, 1.0, 1.0).

    Shape:
        encode(reference_boxes, proposals) (N, 4); decode(rel_codes, boxes) (N, 4 K).

    >>> import minidl
    >>> from minidl import ops
    >>> coder = ops.BoxCoder((10.0, 10.0, 5.0, 5.0))
    >>> coder.encode(minidl.tensor([[1.0, 0.0, 11.0, 10.0]]), minidl.tensor([[0.0, 0.0, 10.0, 10.0]]))
    tensor([[1., 0., 0., 0.]])

    See docs/detection_ops.md.
    """

    def __init__(self, weights=(1.0, 1.0, 1.0, 1.0)):
        if len(weights) != 4:
            raise ValueError(f"BoxCoder: weights must have 4 values (wx, wy, ww, wh), got {weights!r}")
        self.weights = tuple(float(w) for w in weights)

    def encode(self, reference_boxes, proposals):
        return encode_boxes(reference_boxes, proposals, self.weights)

    def decode(self, rel_codes, boxes):
        return decode_boxes(rel_codes, boxes, self.weights)


def clip_boxes_to_image(boxes, size):
    """Clamp boxes to the image: x into [0, width], y into [0, height].

    Formula: x1, x2 = clamp(x, 0, W); y1, y2 = clamp(y, 0, H)

    Args:
        boxes (Tensor): (..., 4).
        size (tuple): (height, width), as torchvision.

    Shape:
        input (..., 4), output the same.

    >>> import minidl
    >>> from minidl import ops
    >>> ops.clip_boxes_to_image(minidl.tensor([[-5.0, 2.0, 40.0, 50.0]]), (30, 20))
    tensor([[ 0.,  2., 20., 30.]])

    See docs/detection_ops.md.
    """
    b = _array(boxes, "boxes")
    if b.shape[-1] != 4:
        raise ValueError(f"boxes must end in 4 coordinates, got shape {b.shape}")
    height, width = size
    out = b.copy()
    out[..., 0::2] = np.clip(out[..., 0::2], 0, width)
    out[..., 1::2] = np.clip(out[..., 1::2], 0, height)
    return _like(out, boxes)


def remove_small_boxes(boxes, min_size):
    """Indices (int64) of the boxes whose width and height are both at least min_size.

    Formula: keep i where x2 - x1 >= min_size and y2 - y1 >= min_size

    Args:
        boxes (Tensor): (N, 4).
        min_size (float): the smallest width and height kept.

    Shape:
        output (K,) int64.

    >>> import minidl
    >>> from minidl import ops
    >>> boxes = minidl.tensor([[0.0, 0.0, 10.0, 10.0], [1.0, 1.0, 10.0, 10.0], [20.0, 20.0, 30.0, 30.0]])
    >>> ops.remove_small_boxes(boxes, 9.5)
    tensor([0, 2])

    See docs/detection_ops.md.
    """
    b = _boxes(boxes, "boxes")
    keep = np.nonzero(((b[:, 2] - b[:, 0]) >= min_size) & ((b[:, 3] - b[:, 1]) >= min_size))[0].astype(np.int64)
    return _like(keep, boxes)


def box_area(boxes):
    """The area of each box.

    Formula: (x2 - x1) * (y2 - y1)

    Args:
        boxes (Tensor): (N, 4) as (x1, y1, x2, y2).

    Shape:
        input (N, 4), output (N,).

    >>> import minidl
    >>> from minidl import ops
    >>> boxes = minidl.tensor([[0.0, 0.0, 10.0, 10.0], [1.0, 1.0, 10.0, 10.0], [20.0, 20.0, 30.0, 30.0]])
    >>> ops.box_area(boxes)
    tensor([100.,  81., 100.])

    See docs/detection_ops.md.
    """
    b = _boxes(boxes, "boxes")
    return _like((b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]), boxes)
