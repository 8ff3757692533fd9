"""Compile every ``numba.cuda`` kernel once, before the first batch needs it.

numba-cuda compiles a kernel the first time it is launched with a new set of argument
types, and on a GPU that takes about a second per kernel: ~30 kernels make the first
training step or benchmark run slow for reasons that have nothing to do with the model.
:func:`warmup` runs every wrapper of ``kernels/cuda`` once on tiny arrays, so each kernel
is compiled for ``dtype`` with the argument types the wrappers really pass. With
``cache=True`` on the kernels the machine code also goes to numba's on-disk cache, so
later processes load it instead of compiling.

>>> len(kernel_names())             # what warmup() compiles
30
"""
from __future__ import annotations

import numpy as np

from minidl.kernels.cuda import conv, loss, nms, norm, pooling, roi, softmax

MODULES = (conv, loss, nms, norm, pooling, roi, softmax)


def _is_kernel(obj):
    """A ``@cuda.jit`` kernel, not a device function (numba-cuda's dispatcher or the simulator's)."""
    kind = type(obj).__name__
    if kind == "FakeCUDAKernel":
        return not obj._device
    return kind == "CUDADispatcher" and not obj.targetoptions.get("device", False)


def kernel_names():
    """The names of all kernels (not device functions) defined in ``kernels/cuda``."""
    return {name for module in MODULES for name, obj in vars(module).items() if _is_kernel(obj)}


def warmup(xp, dtype=np.float32):
    """Run every CUDA kernel once on tiny ``xp`` arrays of ``dtype`` (each launch compiles it if needed).

    ``xp`` is ``cupy`` on a GPU (``minidl.cuda.warmup()`` passes it), ``numpy`` under the simulator.
    """
    rng = np.random.default_rng(0)

    def arr(*shape):
        return xp.asarray(rng.standard_normal(shape).astype(dtype))

    one, zero = (1, 1), (0, 0)
    x = arr(2, 4, 5, 5)
    # convolution: im2col/col2im (dense and grouped GEMM path), direct gather kernels (grouped, depthwise)
    col = conv.im2col(x, 3, 3, one, one, one)
    conv.col2im(col, x.shape, 3, 3, one, one, one)
    w_dw = arr(4, 1, 3, 3)
    y = conv.grouped_direct_forward(x, w_dw, arr(4), one, one, one, 4)
    conv.grouped_direct_backward(y, x, w_dw, one, one, one, 4)
    # cross-entropy (one block per row) and softmax
    logits = arr(3, 5)
    target = xp.asarray(np.array([0, 4, 2], dtype=np.int64))
    weight = xp.asarray(np.ones(5, dtype=dtype))
    per_sample, lse, _ = loss.softmax_cross_entropy_forward(logits, target, weight, -100, 0.0)
    loss.softmax_cross_entropy_backward(logits, lse, target, weight, -100, 0.0, xp.ones_like(per_sample))
    s = softmax.softmax_forward(logits)
    softmax.softmax_backward(s, arr(3, 5))
    # batch norm (statistics, apply, backward sums, backward input) and LRN
    y, mean, invstd, _ = norm.batch_norm_train_forward(x, arr(4), arr(4), 1e-5)
    norm.batch_norm_backward(arr(*x.shape), x, arr(4), mean, invstd, True, True)
    y, scale = norm.local_response_norm_forward(x, 3)
    norm.local_response_norm_backward(arr(*x.shape), x, y, scale, 3, 1e-4, 0.75, 1.0)
    # pooling
    y, idx = pooling.max_pool2d_forward(x, (2, 2), (2, 2), zero, one, False)
    pooling.max_pool2d_backward(y, idx, x.shape)
    y = pooling.avg_pool2d_forward(x, (2, 2), (2, 2), zero, False, True, None)
    pooling.avg_pool2d_backward(y, x.shape, (2, 2), (2, 2), zero, False, True, None)
    y = pooling.adaptive_avg_pool2d_forward(x, (2, 3))
    pooling.adaptive_avg_pool2d_backward(y, x.shape)
    pooling.adaptive_max_pool2d_forward(x, (2, 3))
    pooling.global_avg_pool2d_forward(x)
    # boxes: IoU matrix and NMS (mask and reduce kernels)
    xy = rng.random((6, 2)) * 10
    boxes = xp.asarray(np.concatenate([xy, xy + 1 + rng.random((6, 2)) * 5], axis=1).astype(dtype))
    nms.box_iou(boxes, boxes)
    nms.nms(boxes, xp.asarray(rng.random(6).astype(dtype)), 0.5)
    # RoI Align and RoI Pool, forward and backward
    rois = xp.asarray(np.array([[0, 0.5, 0.5, 3.5, 4.0], [1, 1.0, 0.0, 4.0, 2.5]], dtype=dtype))
    y = roi.roi_align_forward(x, rois, (2, 2), 1.0, 2, False)
    roi.roi_align_backward(y, rois, x.shape, 1.0, 2, False)
    y, argmax = roi.roi_pool_forward(x, rois, (2, 2), 1.0)
    roi.roi_pool_backward(y, rois, argmax, x.shape)
