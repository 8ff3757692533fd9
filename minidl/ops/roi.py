"""RoI Align and RoI Pool with torchvision's arguments; the Functions are in ``minidl/functions/roi.py``.

Regions of interest are either a (K, 5) array of ``(batch_index, x1, y1, x2, y2)`` or a
list with one (L_i, 4) array (or Tensor) of ``(x1, y1, x2, y2)`` boxes per image.
"""
from __future__ import annotations

import numpy as np

from minidl.backend import pair
from minidl.functions.roi import RoIAlign, RoIPool
from minidl.ops.boxes import _array
from minidl.tensor import Tensor, apply


def convert_boxes_to_roi_format(boxes):
    """A list of per-image (L_i, 4) boxes -> one (sum L_i, 5) array with the image index first."""
    parts = []
    for i, b in enumerate(boxes):
        b = np.asarray(_array(b, f"boxes[{i}]"), np.float64).reshape(-1, 4)
        parts.append(np.concatenate([np.full((b.shape[0], 1), float(i)), b], axis=1))
    return np.concatenate(parts, axis=0) if parts else np.zeros((0, 5))


def _rois(boxes):
    if isinstance(boxes, (list, tuple)) and (len(boxes) == 0 or np.ndim(_array(boxes[0], "boxes[0]")) == 2):
        return convert_boxes_to_roi_format(boxes)
    rois = np.asarray(_array(boxes, "boxes"))
    if rois.ndim != 2 or rois.shape[1] != 5:
        raise ValueError(f"boxes must be a (K, 5) array of (batch_index, x1, y1, x2, y2) or a list of (L, 4) "
                         f"arrays, got shape {rois.shape}")
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
    rois = _rois(boxes)
    return apply(RoIAlign, input, rois, output_size=pair(output_size, "output_size"),
                          spatial_scale=float(spatial_scale), sampling_ratio=int(sampling_ratio),
                          aligned=bool(aligned))


def roi_pool(input, boxes, output_size, spatial_scale=1.0):
    """RoI max pooling (Fast R-CNN): (K, C, PH, PW) maxima over integer bins; differentiable in ``input``."""
    if not isinstance(input, Tensor):
        raise TypeError(f"roi_pool: input must be a Tensor, got {type(input).__name__}")
    rois = _rois(boxes)
    return apply(RoIPool, input, rois, output_size=pair(output_size, "output_size"),
                         spatial_scale=float(spatial_scale))
