"""``minidl.ops``: detection operations with torchvision's names and semantics.

``nms``, ``batched_nms`` and ``box_iou`` wrap the kernels in ``kernels/cpu/nms.py`` (``kernels/cuda/nms.py``
for GPU tensors) so
that they accept Tensors or arrays; ``nms``/``batched_nms`` return int64 Tensors of kept
indices in decreasing score order, ``box_iou`` a Tensor of IoUs. ``roi_align``/``roi_pool``
are differentiable in their input; the box coder and box utilities live in ``detection``.

>>> import minidl
>>> from minidl import ops
>>> boxes = minidl.tensor([[0., 0., 10., 10.], [1., 1., 10., 10.], [20., 20., 30., 30.]])
>>> ops.nms(boxes, minidl.tensor([0.9, 0.8, 0.7]), 0.5).tolist()
[0, 2]
"""
from __future__ import annotations

import numpy as np

# minidl.tensor imports the op modules of this package (activation, arith, ...) while it is being
# defined, so nothing here may import minidl.tensor at import time: the detection names load on
# first use (module __getattr__) and the NMS wrappers import Tensor inside.
_DETECTION = ("BoxCoder", "box_area", "clip_boxes_to_image", "convert_boxes_to_roi_format", "decode_boxes",
              "encode_boxes", "remove_small_boxes", "roi_align", "roi_pool")


def __getattr__(name):
    if name in _DETECTION:
        from . import detection

        return getattr(detection, name)
    raise AttributeError(f"module 'minidl.ops' has no attribute {name!r}")


def _arrays(*named):
    """The arrays inside Tensors (or array-likes), and the kernel module for their device."""
    from ..autograd import get_array_module
    from ..tensor import Tensor
    from ._common import kernels_for

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
    """Indices (int64 Tensor) of the boxes kept by greedy NMS, sorted by decreasing score."""
    from ..tensor import Tensor

    (b, s), kern = _arrays((boxes, "boxes"), (scores, "scores"))
    return Tensor._wrap(kern.nms(b, s, float(iou_threshold)))


def batched_nms(boxes, scores, idxs, iou_threshold):
    """NMS within each category ``idxs`` independently; int64 Tensor of kept indices."""
    from ..tensor import Tensor

    (b, s, i), kern = _arrays((boxes, "boxes"), (scores, "scores"), (idxs, "idxs"))
    return Tensor._wrap(kern.batched_nms(b, s, i, float(iou_threshold)))


def box_iou(boxes1, boxes2):
    """Pairwise IoU (N, M) of two box sets, as a Tensor."""
    from ..tensor import Tensor

    (a, b), kern = _arrays((boxes1, "boxes1"), (boxes2, "boxes2"))
    return Tensor._wrap(kern.box_iou(a, b))


__all__ = [
    "BoxCoder",
    "batched_nms",
    "box_area",
    "box_iou",
    "clip_boxes_to_image",
    "convert_boxes_to_roi_format",
    "decode_boxes",
    "encode_boxes",
    "nms",
    "remove_small_boxes",
    "roi_align",
    "roi_pool",
]
