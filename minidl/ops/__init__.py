"""``minidl.ops``: detection operations with torchvision's names and semantics (``torchvision.ops``).

Tensor-level functions over the kernels, and the modules torchvision keeps in ``torchvision.ops``
(on the modules floor: it may use ``minidl.nn``; nothing in ``minidl.nn`` imports it).

- ``boxes``: ``nms``, ``batched_nms``, ``box_iou`` (kernels in ``kernels/cpu/nms.py``, or
  ``kernels/cuda/nms.py`` for GPU arrays: the backend follows the boxes' array type), the box
  coder (``encode_boxes``, ``decode_boxes``, ``BoxCoder``) and ``clip_boxes_to_image``,
  ``remove_small_boxes``, ``box_area``.
- ``roi``: ``roi_align`` and ``roi_pool``, differentiable in their input (their Functions are
  in ``minidl/functions/roi.py``).
- ``stochastic_depth``: ``stochastic_depth`` and its module ``StochasticDepth`` (torchvision's
  ``ops.StochasticDepth``, which is why ``minidl.ops`` sits on the modules floor, beside ``minidl.nn``).

``nms``/``batched_nms`` accept Tensors or arrays and return int64 Tensors of kept indices in
decreasing score order; ``box_iou`` a Tensor of IoUs.

>>> import minidl
>>> from minidl import ops
>>> boxes = minidl.tensor([[0., 0., 10., 10.], [1., 1., 10., 10.], [20., 20., 30., 30.]])
>>> ops.nms(boxes, minidl.tensor([0.9, 0.8, 0.7]), 0.5).tolist()
[0, 2]
"""
from __future__ import annotations

from minidl.ops.boxes import (
    BoxCoder,
    batched_nms,
    box_area,
    box_iou,
    clip_boxes_to_image,
    decode_boxes,
    encode_boxes,
    nms,
    remove_small_boxes,
)
from minidl.ops.roi import convert_boxes_to_roi_format, roi_align, roi_pool
from minidl.ops.stochastic_depth import StochasticDepth, stochastic_depth

__all__ = [
    "BoxCoder",
    "StochasticDepth",
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
    "stochastic_depth",
]
