"""RoI Align and RoI Pool as array-level Functions, differentiable in the feature map.

Kernels in ``kernels/cpu/roi.py``; the float64 reference is ``kernels/reference/roi.py``;
the box handling and torchvision's argument conventions are in ``minidl.ops.roi``.
``rois`` is a (K, 5) array of ``(batch_index, x1, y1, x2, y2)``.
"""
from __future__ import annotations

from minidl.functions.function import Function


class RoIAlign(Function):
    kernel_family = "roi"

    def forward(self, x, rois, output_size, spatial_scale, sampling_ratio, aligned):
        # Only the RoIs and the input's shape are needed: the taps are recomputed in backward.
        self.save_for_backward(rois)
        self.options = (x.shape, spatial_scale, sampling_ratio, aligned)
        return self.kernels.roi_align_forward(x, rois, output_size, spatial_scale, sampling_ratio, aligned)

    def backward(self, g):
        (rois,) = self.saved
        shape, spatial_scale, sampling_ratio, aligned = self.options
        gx = self.kernels.roi_align_backward(g, rois, shape, spatial_scale, sampling_ratio, aligned)
        return gx, None


class RoIPool(Function):
    kernel_family = "roi"

    def forward(self, x, rois, output_size, spatial_scale):
        out, argmax = self.kernels.roi_pool_forward(x, rois, output_size, spatial_scale)
        self.save_for_backward(rois, argmax)  # each bin's gradient goes to its argmax only
        self.input_shape = x.shape
        return out

    def backward(self, g):
        rois, argmax = self.saved
        return self.kernels.roi_pool_backward(g, rois, argmax, self.input_shape), None
