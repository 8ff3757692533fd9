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
    """A list of per-image (L_i, 4) boxes -> one (sum L_i, 5) array with the image index first.

    The result lives where the boxes do (all on the host, or all on one GPU)."""
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
    """RoI Align (Mask R-CNN): (K, C, PH, PW) bilinear averages of ``input`` (N, C, H, W) over each box.

    ``spatial_scale`` maps image coordinates to the feature map (1/stride); ``sampling_ratio``
    samples per bin side (<= 0: ``ceil(roi_size / output_size)``, adaptive); ``aligned=True``
    shifts the box by half a pixel so that pixel centres line up (Detectron2's fix).
    Differentiable with respect to ``input``.
    """
    if not isinstance(input, Tensor):
        raise TypeError(f"roi_align: input must be a Tensor, got {type(input).__name__}")
    rois = _rois(boxes, input)
    return apply(RoIAlign, input, rois, output_size=pair(output_size, "output_size"),
                          spatial_scale=float(spatial_scale), sampling_ratio=int(sampling_ratio),
                          aligned=bool(aligned))


def roi_pool(input, boxes, output_size, spatial_scale=1.0):
    """RoI max pooling (Fast R-CNN): (K, C, PH, PW) maxima over integer bins; differentiable in ``input``."""
    if not isinstance(input, Tensor):
        raise TypeError(f"roi_pool: input must be a Tensor, got {type(input).__name__}")
    rois = _rois(boxes, input)
    return apply(RoIPool, input, rois, output_size=pair(output_size, "output_size"),
                         spatial_scale=float(spatial_scale))
