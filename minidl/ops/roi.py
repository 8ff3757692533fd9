"""RoI Align and RoI Pool with torchvision's arguments; the Functions are in ``minidl/functions/roi.py``.

Regions of interest are either a (K, 5) array of ``(batch_index, x1, y1, x2, y2)`` or a
list with one (L_i, 4) array (or Tensor) of ``(x1, y1, x2, y2)`` boxes per image.
"""
from __future__ import annotations

import numpy as np

from minidl.backend import device_name, get_array_module, pair
from minidl.functions.roi import RoIAlign, RoIPool
from minidl.ops.boxes import _array
from minidl.tensor import Tensor, apply


def convert_boxes_to_roi_format(boxes):
    """A list of per-image boxes to one RoI array with the image index first.

    Formula: row = (i, x1, y1, x2, y2) for each box of image i

    Args:
        boxes (list of Tensors): (L_i, 4) per image.

    Shape:
        output (sum L_i, 5).

    >>> import minidl
    >>> from minidl import ops
    >>> ops.convert_boxes_to_roi_format([minidl.tensor([[0.0, 0.0, 2.0, 2.0]]),
    ...                                  minidl.tensor([[1.0, 1.0, 3.0, 3.0]])])
    array([[0., 0., 0., 2., 2.],
           [1., 1., 1., 3., 3.]])

    The result lives where the boxes do (all on the host, or all on one GPU).

    See docs/detection_ops.md.
    """
    arrays = [_array(b, f"boxes[{i}]") for i, b in enumerate(boxes)]
    xp = get_array_module(arrays[0]) if arrays else np
    parts = []
    for i, b in enumerate(arrays):
        b = b.astype(np.float64).reshape(-1, 4)
        parts.append(xp.concatenate([xp.full((b.shape[0], 1), float(i)), b], axis=1))
    return xp.concatenate(parts, axis=0) if parts else np.zeros((0, 5))


def _rois(boxes, input):
    """The (K, 5) RoIs on ``input``'s device (host boxes are copied there once)."""
    if isinstance(boxes, (list, tuple)) and (len(boxes) == 0 or _array(boxes[0], "boxes[0]").ndim == 2):
        rois = convert_boxes_to_roi_format(boxes)
    else:
        rois = _array(boxes, "boxes")
    if rois.ndim != 2 or rois.shape[1] != 5:
        raise ValueError(f"boxes must be a (K, 5) array of (batch_index, x1, y1, x2, y2) or a list of (L, 4) "
                         f"arrays, got shape {tuple(rois.shape)}")
    xp = get_array_module(input.data)
    if get_array_module(rois) is not xp:
        if xp is np:
            raise RuntimeError(f"roi ops: the boxes are on {device_name(rois)} but the input is on the CPU")
        rois = xp.asarray(rois)
    return rois


def roi_align(input, boxes, output_size, spatial_scale=1.0, sampling_ratio=-1, aligned=False):
    """RoI Align (Mask R-CNN): bilinear averages of the feature map over a PH x PW grid of bins per box.

    ``spatial_scale`` maps image coordinates to the feature map (1/stride); ``sampling_ratio``
    samples per bin side (<= 0: ``ceil(roi_size / output_size)``, adaptive); ``aligned=True``
    shifts the box by half a pixel so that pixel centres line up (Detectron2's fix).
    Differentiable with respect to ``input`` (minidl/functions/roi.py).

    Formula: bin (i, j) of box k = mean over its sampling_ratio^2 points of bilinear(x[batch_k, c], point),
             points spaced evenly in the bin, box coordinates * spatial_scale (- 0.5 if aligned)

    Args:
        input (Tensor): (N, C, H, W) feature maps.
        boxes (Tensor or list of Tensors): (K, 5) rows (batch index, x1, y1, x2, y2), or one (L_i, 4) per image.
        output_size (int or tuple): (PH, PW).
        spatial_scale (float): image -> feature-map coordinates (1/stride). Default: 1.0.
        sampling_ratio (int): points per bin side; <= 0 adaptive. Default: -1.
        aligned (bool): the half-pixel shift. Default: False.

    Shape:
        input (N, C, H, W), output (K, C, PH, PW).

    >>> import minidl
    >>> from minidl import ops
    >>> x = minidl.arange(16.0).reshape(1, 1, 4, 4)
    >>> ops.roi_align(x, minidl.tensor([[0.0, 0.0, 0.0, 4.0, 4.0]]), 2, aligned=True)
    tensor([[[[ 2.5,  4.5],
              [10.5, 12.5]]]])

    See docs/detection_ops.md.
    """
    if not isinstance(input, Tensor):
        raise TypeError(f"roi_align: input must be a Tensor, got {type(input).__name__}")
    rois = _rois(boxes, input)
    return apply(RoIAlign, input, rois, output_size=pair(output_size, "output_size"),
                          spatial_scale=float(spatial_scale), sampling_ratio=int(sampling_ratio),
                          aligned=bool(aligned))


def roi_pool(input, boxes, output_size, spatial_scale=1.0):
    """RoI max pooling (Fast R-CNN): the maximum of each of PH x PW integer bins per box.

    Formula: box rounded to integer feature-map cells (round(coord * spatial_scale)); bin = max over its cells

    Args:
        input (Tensor): (N, C, H, W) feature maps.
        boxes (Tensor or list of Tensors): (K, 5) rows (batch index, x1, y1, x2, y2), or one (L_i, 4) per image.
        output_size (int or tuple): (PH, PW).
        spatial_scale (float): image -> feature-map coordinates. Default: 1.0.

    Shape:
        input (N, C, H, W), output (K, C, PH, PW). Differentiable in input.

    >>> import minidl
    >>> from minidl import ops
    >>> x = minidl.arange(16.0).reshape(1, 1, 4, 4)
    >>> ops.roi_pool(x, minidl.tensor([[0.0, 0.0, 0.0, 3.0, 3.0]]), 2)
    tensor([[[[ 5.,  7.],
              [13., 15.]]]])

    See docs/detection_ops.md.
    """
    if not isinstance(input, Tensor):
        raise TypeError(f"roi_pool: input must be a Tensor, got {type(input).__name__}")
    rois = _rois(boxes, input)
    return apply(RoIPool, input, rois, output_size=pair(output_size, "output_size"),
                         spatial_scale=float(spatial_scale))
