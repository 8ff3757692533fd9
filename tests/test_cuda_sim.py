"""The CUDA kernels (``kernels/cuda``) under the Numba CUDA simulator, against the CPU kernels.

``cudasim`` tests run in a child process with ``NUMBA_ENABLE_CUDASIM=1`` (see
``conftest.py``): there the kernels take NumPy arrays and run thread by thread on
the CPU, so their indexing, bounds, reductions and bit tricks are checked in CI,
which has no GPU. The simulator costs ~0.2 ms per thread and more per barrier, so
every input is tiny. The tests at the end (device errors, mixed devices) need no
simulator.
"""
from __future__ import annotations

import numpy as np
import pytest

import minidl
from minidl.functions.conv import conv2d_backward, conv2d_forward
from minidl.kernels.cpu import conv as cpu_conv
from minidl.kernels.cpu import loss as cpu_loss
from minidl.kernels.cpu import nms as cpu_nms
from minidl.kernels.cpu import norm as cpu_norm
from minidl.kernels.cpu import pooling as cpu_pool

sim = pytest.mark.cudasim


def _cuda(name):
    """``minidl.kernels.cuda.<name>``, imported only where the test runs (the simulator child)."""
    pytest.importorskip("numba.cuda")
    import importlib

    return importlib.import_module(f"minidl.kernels.cuda.{name}")


def _close(a, b, dtype):
    tol = 1e-5 if dtype == np.float32 else 1e-10
    np.testing.assert_allclose(a, b, rtol=tol, atol=tol)


# --------------------------------------------------------------------------- convolution

CONV_CASES = {
    # name: (N, C, H, W, K, kh, kw, stride, padding, dilation, groups, dtype)
    "dense": (2, 3, 5, 5, 4, 3, 3, (1, 1), (1, 1), (1, 1), 1, np.float64),
    "dense-f32-stride2-pad": (2, 3, 6, 5, 4, 3, 3, (2, 2), (1, 1), (1, 1), 1, np.float32),
    "dilation-rect": (1, 2, 7, 6, 3, 3, 2, (1, 2), (2, 1), (2, 1), 1, np.float64),
    "grouped-gemm": (1, 18, 4, 4, 6, 3, 3, (1, 1), (1, 1), (1, 1), 2, np.float64),
    "grouped-direct": (1, 4, 5, 5, 4, 3, 3, (2, 1), (1, 1), (1, 2), 2, np.float64),
    "depthwise-x2": (2, 3, 5, 5, 6, 3, 3, (1, 1), (1, 1), (1, 1), 3, np.float64),
    "depthwise-x2-stride2": (1, 3, 6, 6, 6, 3, 3, (2, 2), (1, 1), (1, 1), 3, np.float32),
    "pointwise": (2, 3, 4, 4, 5, 1, 1, (1, 1), (0, 0), (1, 1), 1, np.float64),
}


@sim
@pytest.mark.parametrize("case", list(CONV_CASES))
def test_conv2d_forward_backward_match_cpu(case):
    conv = _cuda("conv")
    n, c, h, w, k, kh, kw, stride, padding, dilation, groups, dtype = CONV_CASES[case]
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, c, h, w)).astype(dtype)
    weight = rng.standard_normal((k, c // groups, kh, kw)).astype(dtype)
    bias = rng.standard_normal(k).astype(dtype)
    options = (stride, padding, dilation, groups)
    y = conv2d_forward(x, weight, bias, *options, kernels=conv)  # the op's plan, the CUDA primitives
    expected = conv2d_forward(x, weight, bias, *options, kernels=cpu_conv)
    assert y.shape == expected.shape and y.dtype == dtype
    _close(y, expected, dtype)
    grad_out = rng.standard_normal(y.shape).astype(dtype)
    for got, want in zip(conv2d_backward(grad_out, x, weight, *options, kernels=conv),
                         conv2d_backward(grad_out, x, weight, *options, kernels=cpu_conv)):
        assert got.shape == want.shape and got.dtype == want.dtype
        _close(got, want, dtype)


@sim
def test_conv2d_backward_only_requested_gradients():
    conv = _cuda("conv")
    rng = np.random.default_rng(1)
    x = rng.standard_normal((1, 3, 4, 4))
    weight = rng.standard_normal((3, 1, 3, 3))  # depthwise
    gy = rng.standard_normal((1, 3, 4, 4))
    gx, gw, gb = conv2d_backward(gy, x, weight, (1, 1), (1, 1), (1, 1), 3, needs_input_grad=False,
                                 needs_weight_grad=True, needs_bias_grad=False, kernels=conv)
    assert gx is None and gb is None
    _close(gw, conv2d_backward(gy, x, weight, (1, 1), (1, 1), (1, 1), 3, kernels=cpu_conv)[1], np.float64)


@sim
def test_im2col_col2im_match_cpu_and_are_adjoint():
    conv = _cuda("conv")
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 2, 5, 4))
    args = (3, 2, (2, 1), (1, 1), (1, 2))
    col = conv.im2col(x, *args)
    np.testing.assert_array_equal(col, cpu_conv.im2col(x, *args))
    g = rng.standard_normal(col.shape)
    # <im2col(x), g> == <x, col2im(g)>: col2im is im2col's transpose.
    np.testing.assert_allclose(np.sum(col * g), np.sum(x * conv.col2im(g, x.shape, *args)), rtol=1e-12)


@sim
def test_conv2d_bad_channels_names_the_argument():
    conv = _cuda("conv")
    with pytest.raises(ValueError, match="weight expects"):
        conv2d_forward(np.zeros((1, 4, 5, 5)), np.zeros((2, 3, 3, 3)), None, (1, 1), (0, 0), (1, 1), 1, kernels=conv)


# --------------------------------------------------------------------------- pooling

MAX_CASES = {
    "3x3-s2-p1": ((3, 3), (2, 2), (1, 1), (1, 1), False),
    "ceil-mode": ((3, 2), (2, 2), (1, 1), (1, 1), True),
    "2x2": ((2, 2), (2, 2), (0, 0), (1, 1), False),
    "dilation-ceil": ((3, 3), (2, 1), (1, 0), (2, 1), True),
}


@sim
@pytest.mark.parametrize("case", list(MAX_CASES))
def test_max_pool2d_matches_cpu(case):
    pool = _cuda("pooling")
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 2, 7, 6)).astype(np.float32)
    x[0, 0, :2, :2] = 1.0  # a tie: the first maximum in scan order wins on both backends
    y, idx = pool.max_pool2d_forward(x, *MAX_CASES[case])
    y_cpu, idx_cpu = cpu_pool.max_pool2d_forward(x, *MAX_CASES[case])
    np.testing.assert_array_equal(y, y_cpu)
    np.testing.assert_array_equal(idx, idx_cpu)
    g = rng.standard_normal(y.shape).astype(np.float32)
    _close(pool.max_pool2d_backward(g, idx, x.shape), cpu_pool.max_pool2d_backward(g, idx_cpu, x.shape),
           np.float32)


AVG_CASES = {
    "3x3-s2-p1": ((3, 3), (2, 2), (1, 1), False, True, None),
    "exclude-pad-ceil": ((3, 3), (2, 2), (1, 1), True, False, None),
    "2x2": ((2, 2), (2, 2), (0, 0), False, True, None),
    "divisor-override": ((3, 2), (2, 1), (1, 1), True, True, 5),
}


@sim
@pytest.mark.parametrize("case", list(AVG_CASES))
def test_avg_pool2d_matches_cpu(case):
    pool = _cuda("pooling")
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 2, 7, 6))
    y = pool.avg_pool2d_forward(x, *AVG_CASES[case])
    _close(y, cpu_pool.avg_pool2d_forward(x, *AVG_CASES[case]), np.float64)
    g = rng.standard_normal(y.shape)
    _close(pool.avg_pool2d_backward(g, x.shape, *AVG_CASES[case]),
           cpu_pool.avg_pool2d_backward(g, x.shape, *AVG_CASES[case]), np.float64)


@sim
@pytest.mark.parametrize("output_size", [(3, 4), (1, 1), (9, 5)])
def test_adaptive_pools_match_cpu(output_size):
    pool = _cuda("pooling")
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 2, 7, 6))
    y = pool.adaptive_avg_pool2d_forward(x, output_size)
    _close(y, cpu_pool.adaptive_avg_pool2d_forward(x, output_size), np.float64)
    g = rng.standard_normal(y.shape)
    _close(pool.adaptive_avg_pool2d_backward(g, x.shape), cpu_pool.adaptive_avg_pool2d_backward(g, x.shape),
           np.float64)
    y, idx = pool.adaptive_max_pool2d_forward(x, output_size)
    y_cpu, idx_cpu = cpu_pool.adaptive_max_pool2d_forward(x, output_size)
    np.testing.assert_array_equal(y, y_cpu)
    np.testing.assert_array_equal(idx, idx_cpu)
    _close(pool.adaptive_max_pool2d_backward(g, idx, x.shape),
           cpu_pool.adaptive_max_pool2d_backward(g, idx_cpu, x.shape), np.float64)


@sim
def test_global_avg_pool_and_pooling_errors():
    pool = _cuda("pooling")
    x = np.random.default_rng(6).standard_normal((2, 3, 4, 5)).astype(np.float32)
    _close(pool.global_avg_pool2d_forward(x), cpu_pool.global_avg_pool2d_forward(x), np.float32)
    with pytest.raises(ValueError, match="4-D"):
        pool.max_pool2d_forward(x[0], (2, 2), (2, 2), (0, 0), (1, 1), False)
    with pytest.raises(TypeError, match="float32 or float64"):
        pool.avg_pool2d_forward(x.astype(np.int32), (2, 2), (2, 2), (0, 0), False, True, None)


# --------------------------------------------------------------------------- normalisation


@sim
@pytest.mark.parametrize("shape", [(3, 4, 3, 5), (6, 3)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_batch_norm_matches_cpu(shape, dtype):
    norm = _cuda("norm")
    rng = np.random.default_rng(7)
    c = shape[1]
    x = (rng.standard_normal(shape) * 2 + 50).astype(dtype)  # a large mean: the shifted sums matter
    weight = rng.standard_normal(c).astype(dtype)
    bias = rng.standard_normal(c).astype(dtype)
    out = norm.batch_norm_train_forward(x, weight, bias, 1e-5)
    expected = cpu_norm.batch_norm_train_forward(x, weight, bias, 1e-5)
    for got, want in zip(out, expected):
        assert got.dtype == dtype
        _close(got, want, dtype)
    g = rng.standard_normal(shape).astype(dtype)
    for got, want in zip(norm.batch_norm_backward(g, x, weight, out[1], out[2], True, True),
                         cpu_norm.batch_norm_backward(g, x, weight, expected[1], expected[2], True, True)):
        _close(got, want, dtype)
    running_mean = rng.standard_normal(c).astype(dtype)
    running_var = (rng.random(c) + 0.5).astype(dtype)
    _close(norm.batch_norm_eval_forward(x, running_mean, running_var, None, bias, 1e-5),
           cpu_norm.batch_norm_eval_forward(x, running_mean, running_var, None, bias, 1e-5), dtype)


@sim
def test_batch_norm_without_affine_parameters():
    norm = _cuda("norm")
    x = np.random.default_rng(8).standard_normal((4, 2, 3, 3))
    y, mean, invstd, _ = norm.batch_norm_train_forward(x, None, None, 1e-5)
    np.testing.assert_allclose(y.mean(axis=(0, 2, 3)), 0, atol=1e-12)
    gx, gw, gb = norm.batch_norm_backward(np.ones_like(x), x, None, mean, invstd, True, True)
    assert gw is None and gb is None
    np.testing.assert_allclose(gx, 0, atol=1e-12)  # a constant upstream gradient is normalised away


@sim
@pytest.mark.parametrize("size", [3, 4])
def test_local_response_norm_matches_cpu(size):
    norm = _cuda("norm")
    rng = np.random.default_rng(9)
    x = rng.standard_normal((2, 6, 3, 3))
    y, scale = norm.local_response_norm_forward(x, size, 1e-2, 0.75, 2.0)
    y_cpu, scale_cpu = cpu_norm.local_response_norm_forward(x, size, 1e-2, 0.75, 2.0)
    _close(y, y_cpu, np.float64)
    _close(scale, scale_cpu, np.float64)
    g = rng.standard_normal(x.shape)
    _close(norm.local_response_norm_backward(g, x, y, scale, size, 1e-2, 0.75, 2.0),
           cpu_norm.local_response_norm_backward(g, x, y_cpu, scale_cpu, size, 1e-2, 0.75, 2.0), np.float64)


# --------------------------------------------------------------------------- softmax cross-entropy


@sim
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("weighted,smoothing", [(False, 0.0), (True, 0.0), (True, 0.1), (False, 0.2)])
def test_softmax_cross_entropy_matches_cpu(dtype, weighted, smoothing):
    loss = _cuda("loss")
    rng = np.random.default_rng(10)
    logits = (rng.standard_normal((6, 11)) * 3).astype(dtype)
    logits[1, 3] = 80.0  # a large logit: log-sum-exp must not overflow
    target = rng.integers(0, 11, 6)
    target[2] = -100  # ignored
    weight = rng.random(11).astype(dtype) if weighted else None
    out = loss.softmax_cross_entropy_forward(logits, target, weight, -100, smoothing)
    expected = cpu_loss.softmax_cross_entropy_forward(logits, target, weight, -100, smoothing)
    for got, want in zip(out, expected):
        _close(got, want, dtype)
    assert out[0][2] == 0 and out[2][2] == 0
    g = rng.random(6).astype(dtype)
    grad = loss.softmax_cross_entropy_backward(logits, out[1], target, weight, -100, smoothing, g)
    _close(grad, cpu_loss.softmax_cross_entropy_backward(logits, expected[1], target, weight, -100, smoothing, g),
           dtype)
    assert not grad[2].any()


@sim
def test_softmax_cross_entropy_marks_bad_targets_nan_without_reading_them_back():
    """A class outside [0, C) is not checked on the host (a sync per step): its row's loss and
    gradient are NaN, and no other row is touched (no read outside the row)."""
    loss = _cuda("loss")
    z = np.zeros((3, 3))
    t = np.array([0, 5, -2])
    out, lse, weight = loss.softmax_cross_entropy_forward(z, t, None, -100, 0.0)
    assert out[0] == pytest.approx(np.log(3)) and np.isnan(out[1:]).all() and np.isnan(weight[1:]).all()
    grad = loss.softmax_cross_entropy_backward(z, lse, t, None, -100, 0.0, np.ones(3))
    assert np.isfinite(grad[0]).all() and np.isnan(grad[1:]).all()


# --------------------------------------------------------------------------- RoI Align and RoI Pool


@sim
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_roi_align_and_pool_match_cpu(dtype):
    from minidl.kernels.cpu import roi as cpu_roi

    roi = _cuda("roi")
    rng = np.random.default_rng(13)
    x = rng.standard_normal((2, 2, 6, 7)).astype(dtype)
    # a box inside, one crossing the border, a tiny one, and one with a batch index out of range (zeros)
    rois = np.array([[0, 0.5, 1.0, 5.2, 4.1], [1, -1.0, 2.0, 3.0, 8.0], [1, 2, 2, 2.3, 2.1]])
    for aligned in (False, True):
        for sampling in (0, 2):
            got = roi.roi_align_forward(x, rois, (2, 3), 0.9, sampling, aligned)
            _close(got, cpu_roi.roi_align_forward(x, rois, (2, 3), 0.9, sampling, aligned), dtype)
            g = rng.standard_normal(got.shape).astype(dtype)
            _close(roi.roi_align_backward(g, rois, x.shape, 0.9, sampling, aligned),
                   cpu_roi.roi_align_backward(g, rois, x.shape, 0.9, sampling, aligned), dtype)
    out, argmax = roi.roi_pool_forward(x, rois, (2, 3), 0.9)
    want, want_argmax = cpu_roi.roi_pool_forward(x, rois, (2, 3), 0.9)
    _close(out, want, dtype)
    np.testing.assert_array_equal(argmax, want_argmax)
    g = rng.standard_normal(out.shape).astype(dtype)
    _close(roi.roi_pool_backward(g, rois, argmax, x.shape), cpu_roi.roi_pool_backward(g, rois, want_argmax, x.shape),
           dtype)
    bad = roi.roi_align_forward(x, np.array([[5, 0, 0, 3, 3.0]]), (2, 2), 1.0, 2, False)
    assert not bad.any()


# --------------------------------------------------------------------------- NMS and IoU


def _random_boxes(rng, n, dtype=np.float32):
    xy = rng.random((n, 2)) * 50
    wh = rng.random((n, 2)) * 20
    return np.concatenate([xy, xy + wh], axis=1).astype(dtype)


@sim
def test_box_iou_matches_cpu_including_empty_boxes():
    nms = _cuda("nms")
    rng = np.random.default_rng(11)
    a = _random_boxes(rng, 7)
    b = _random_boxes(rng, 5)
    b[0] = [3, 3, 3, 3]  # zero area
    a[0] = [3, 3, 3, 3]
    iou = nms.box_iou(a, b)
    np.testing.assert_array_equal(iou, cpu_nms.box_iou(a, b))
    assert iou[0, 0] == 0
    assert nms.box_iou(a, b.astype(np.float64)).dtype == np.float64


@sim
@pytest.mark.parametrize("n", [10, 150])
@pytest.mark.parametrize("threshold", [0.3, 0.5])
def test_nms_matches_cpu_with_tied_scores(n, threshold):
    nms = _cuda("nms")
    rng = np.random.default_rng(12)
    boxes = _random_boxes(rng, n)
    scores = rng.integers(0, 5, n).astype(np.float32)  # many ties: the lower index goes first
    keep = nms.nms(boxes, scores, threshold)
    assert keep.dtype == np.int64
    np.testing.assert_array_equal(keep, cpu_nms.nms(boxes, scores, threshold))


@sim
def test_nms_identical_boxes_and_empty_input():
    nms = _cuda("nms")
    boxes = np.array([[0, 0, 10, 10]] * 3 + [[20, 20, 30, 30], [1, 1, 1, 1], [1, 1, 1, 1]], np.float32)
    scores = np.array([0.5, 0.5, 0.9, 0.1, 0.3, 0.3], np.float32)
    keep = nms.nms(boxes, scores, 0.5)
    # box 2 wins the identical trio; the two zero-area boxes have IoU 0/0 = NaN and both stay
    np.testing.assert_array_equal(keep, [2, 4, 5, 3])
    np.testing.assert_array_equal(keep, cpu_nms.nms(boxes, scores, 0.5))
    assert nms.nms(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), 0.5).shape == (0,)


@sim
def test_batched_nms_matches_cpu():
    nms = _cuda("nms")
    rng = np.random.default_rng(13)
    boxes = _random_boxes(rng, 40)
    scores = rng.random(40).astype(np.float32)
    idxs = rng.integers(0, 3, 40)
    np.testing.assert_array_equal(nms.batched_nms(boxes, scores, idxs, 0.4),
                                  cpu_nms.batched_nms(boxes, scores, idxs, 0.4))


@sim
def test_batched_nms_with_inf_and_nan_coordinates_matches_cpu_per_class():
    nms = _cuda("nms")
    rng = np.random.default_rng(15)
    boxes = _random_boxes(rng, 70)
    boxes[[5, 30, 61], [2, 0, 3]] = [np.inf, np.nan, -np.inf]
    scores = rng.random(70).astype(np.float32)
    idxs = rng.integers(0, 3, 70)
    keep = nms.batched_nms(boxes, scores, idxs, 0.3)
    np.testing.assert_array_equal(keep, cpu_nms.batched_nms(boxes, scores, idxs, 0.3))
    assert len(keep) < 70  # suppression still happens (coordinate offsets kept all 70)
    with pytest.raises(ValueError, match="iou_threshold"):
        nms.batched_nms(boxes, scores, idxs, float("nan"))
    with pytest.raises(ValueError, match="iou_threshold"):
        nms.nms(boxes, scores, 1.5)


@sim
def test_nms_reduction_over_many_words_matches_greedy():
    """The single-block reduction with more 64-bit words (10) than threads (8 under the simulator)."""
    nms = _cuda("nms")
    rng = np.random.default_rng(14)
    n, words = 600, 10
    suppress = np.triu(rng.random((n, n)) < 0.01, k=1)  # suppress[i, j]: box i removes later box j
    mask = np.zeros((n, words), np.uint64)
    for i, j in zip(*np.nonzero(suppress)):
        mask[i, j // 64] |= np.uint64(1) << np.uint64(j % 64)
    keep = np.zeros(n, np.uint8)
    nms._nms_reduce_kernel[1, 8](mask, np.zeros(words, np.uint64), keep)
    removed = np.zeros(n, bool)
    expected = np.zeros(n, np.uint8)
    for i in range(n):
        if not removed[i]:
            expected[i] = 1
            removed |= suppress[i]
    np.testing.assert_array_equal(keep, expected)


# --------------------------------------------------------------------------- devices (no simulator needed)


def test_cuda_request_without_gpu_says_what_is_missing():
    from minidl.device import gpu_unavailable_reason

    reason = gpu_unavailable_reason()
    if reason is None:
        pytest.skip("a GPU is available here")
    import minidl.cuda

    assert minidl.cuda.is_available() is False
    with pytest.raises(RuntimeError, match="CUDA was requested but") as info:
        minidl.zeros(2, 3).to("cuda")
    message = str(info.value)
    assert ("cuda12" in message and "cuda13" in message) or "GPU" in message
    with pytest.raises(RuntimeError, match="CUDA was requested"):
        minidl.tensor([1.0, 2.0], device="cuda:0")


def test_device_names():
    assert str(minidl.device("cuda")) == "cuda:0"
    assert minidl.device("cuda:1").index == 1
    assert minidl.device("cpu") == "cpu"
    with pytest.raises(ValueError, match="device"):
        minidl.device("tpu")
    with pytest.raises(ValueError, match="non-negative integer"):
        minidl.device("cuda:x")


class _FakeDevice:
    id = 0


class _FakeGpuArray(np.ndarray):
    """A NumPy array that reports itself as a CuPy array on cuda:0 (for the device check only)."""

    device = _FakeDevice()


_FakeGpuArray.__module__ = "cupy._core.fake"


def test_mixing_devices_in_one_op_raises():
    from minidl.tensor import Tensor

    cpu = minidl.ones(2, 2)
    gpu = Tensor._wrap(np.ones((2, 2), np.float32).view(_FakeGpuArray))
    with pytest.raises(RuntimeError, match=r"same device.*cpu and cuda:0"):
        cpu + gpu
    with pytest.raises(RuntimeError, match="Add|add|Mul|mul"):
        cpu + gpu


@sim
def test_empty_batch_through_cuda_conv_pooling_and_batch_norm_eval():
    from minidl.functions.conv import conv2d_backward, conv2d_forward

    conv, pooling, norm = _cuda("conv"), _cuda("pooling"), _cuda("norm")
    x = np.zeros((0, 3, 8, 8), np.float32)
    w = np.ones((4, 3, 3, 3), np.float32)
    assert conv2d_forward(x, w, None, (1, 1), (1, 1), (1, 1), 1, kernels=conv).shape == (0, 4, 8, 8)
    gx, gw, gb = conv2d_backward(np.zeros((0, 4, 8, 8), np.float32), x, w, (1, 1), (1, 1), (1, 1), 1, kernels=conv)
    assert gx.shape == x.shape and not gw.any() and gw.shape == w.shape and gb.shape == (4,)
    y, idx = pooling.max_pool2d_forward(x, (2, 2), (2, 2), (0, 0), (1, 1), False)
    assert y.shape == (0, 3, 4, 4)
    assert pooling.max_pool2d_backward(y, idx, x.shape).shape == x.shape
    assert norm.batch_norm_eval_forward(x, np.zeros(3), np.ones(3), None, None, 1e-5).shape == x.shape
