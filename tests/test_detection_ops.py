"""RoI Align / RoI Pool kernels vs the reference and torchvision, gradchecks, box coding and utilities."""

import numpy as np
import pytest
from minidl.kernels.cpu import roi as fast
from minidl.kernels.reference import roi as ref

import minidl
from minidl import ops


def _rois(rng, k, n, extent=12.0):
    """Random RoIs (batch_index, x1, y1, x2, y2), some partly outside the map, one degenerate."""
    xy = rng.random((k, 2)) * extent - 2.0
    wh = rng.random((k, 2)) * extent * 0.8
    wh[0] = 0.0  # a point
    return np.concatenate([rng.integers(0, n, (k, 1)), xy, xy + wh], axis=1)


@pytest.mark.parametrize("aligned", [False, True])
@pytest.mark.parametrize("sampling_ratio", [-1, 1, 2])
@pytest.mark.parametrize("scale", [1.0, 0.5])
def test_roi_align_matches_reference(aligned, sampling_ratio, scale):
    rng = np.random.default_rng(sampling_ratio + 3)
    x = rng.standard_normal((2, 3, 7, 9))
    rois = _rois(rng, 6, 2, extent=14.0)
    out = fast.roi_align_forward(x, rois, (3, 4), scale, sampling_ratio, aligned)
    np.testing.assert_allclose(out, ref.roi_align_forward(x, rois, (3, 4), scale, sampling_ratio, aligned), atol=1e-12)
    g = rng.standard_normal(out.shape)
    np.testing.assert_allclose(fast.roi_align_backward(g, rois, x.shape, scale, sampling_ratio, aligned),
                               ref.roi_align_backward(g, rois, x.shape, scale, sampling_ratio, aligned), atol=1e-12)


def test_roi_align_hand_computed():
    # A 1x1 output over the whole 2x2 map with one sample at its centre (1, 1) - clamped to the
    # last cell, so the value is x[1, 1]; with 2x2 samples at 0.5 and 1.5 the mean of the bilinear
    # values is the map's mean... except the clamped ones: compute both by hand.
    x = np.array([[[[1.0, 2.0], [3.0, 4.0]]]])
    rois = np.array([[0, 0.0, 0.0, 2.0, 2.0]])
    assert fast.roi_align_forward(x, rois, (1, 1), 1.0, 1, False)[0, 0, 0, 0] == 4.0
    # samples at y, x in {0.5, 1.5}: (0.5,0.5)->2.5, (0.5,1.5)->3.0 (x clamped to 1), (1.5,0.5)->3.5, (1.5,1.5)->4
    assert fast.roi_align_forward(x, rois, (1, 1), 1.0, 2, False)[0, 0, 0, 0] == pytest.approx((2.5 + 3 + 3.5 + 4) / 4)


def test_roi_pool_matches_reference():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 4, 8, 10))
    rois = _rois(rng, 8, 2, extent=20.0)
    for scale in (1.0, 0.5):
        out, argmax = fast.roi_pool_forward(x, rois, (3, 2), scale)
        out_r, argmax_r = ref.roi_pool_forward(x, rois, (3, 2), scale)
        np.testing.assert_allclose(out, out_r)
        np.testing.assert_array_equal(argmax, argmax_r)
        g = rng.standard_normal(out.shape)
        np.testing.assert_allclose(fast.roi_pool_backward(g, rois, argmax, x.shape),
                                   ref.roi_pool_backward(g, rois, argmax_r, x.shape), atol=1e-12)


@pytest.mark.parametrize("aligned", [False, True])
def test_roi_align_gradcheck(aligned):
    rng = np.random.default_rng(1)
    x = minidl.tensor(rng.standard_normal((2, 2, 6, 7)), dtype="float64", requires_grad=True)
    boxes = [np.array([[0.5, 0.7, 5.2, 4.9], [2.0, 1.0, 3.0, 6.0]]), np.array([[1.1, 0.3, 6.4, 5.5]])]
    assert minidl.gradcheck(lambda t: ops.roi_align(t, boxes, (2, 3), 1.0, 2, aligned), [x])
    assert minidl.gradcheck(lambda t: ops.roi_align(t, boxes, 2, 0.5, -1, aligned), [x])


def test_roi_pool_gradcheck():
    rng = np.random.default_rng(2)
    # distinct values (a permutation) so that the argmax never ties under the finite difference
    x = minidl.tensor(rng.permutation(2 * 2 * 6 * 7).reshape(2, 2, 6, 7) * 0.1, dtype="float64", requires_grad=True)
    rois = np.array([[0, 0.0, 0.0, 5.0, 4.0], [1, 1.0, 2.0, 6.0, 5.0], [0, 2.0, 2.0, 2.0, 2.0]])
    assert minidl.gradcheck(lambda t: ops.roi_pool(t, rois, (2, 2), 1.0), [x], eps=1e-4)


def test_against_torchvision():
    torch = pytest.importorskip("torch")
    tv = pytest.importorskip("torchvision")
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 3, 9, 9)).astype(np.float32)
    rois = _rois(rng, 5, 2, extent=16.0).astype(np.float32)
    for aligned in (False, True):
        expected = tv.ops.roi_align(torch.from_numpy(x), torch.from_numpy(rois), (3, 3), 0.5, 2, aligned).numpy()
        got = ops.roi_align(minidl.tensor(x), rois, (3, 3), 0.5, 2, aligned).numpy()
        np.testing.assert_allclose(got, expected, atol=1e-5)
    expected = tv.ops.roi_pool(torch.from_numpy(x), torch.from_numpy(rois), (3, 3), 0.5).numpy()
    np.testing.assert_allclose(ops.roi_pool(minidl.tensor(x), rois, (3, 3), 0.5).numpy(), expected, atol=1e-6)


@pytest.mark.parametrize("aligned, sampling_ratio", [(False, 2), (True, -1)])
def test_gradients_against_torchvision(aligned, sampling_ratio):
    """Backward of RoI Align / RoI Pool equals autograd through torchvision's CPU kernels (float64)."""
    torch = pytest.importorskip("torch")
    tv = pytest.importorskip("torchvision")
    rng = np.random.default_rng(6)
    x = rng.permutation(2 * 3 * 9 * 9).reshape(2, 3, 9, 9) * 0.01  # distinct values: no argmax ties
    rois = _rois(rng, 5, 2, extent=16.0)
    theirs = torch.tensor(x, requires_grad=True)
    for name, args in (("roi_align", ((3, 2), 0.5, sampling_ratio, aligned)), ("roi_pool", ((3, 2), 0.5))):
        ours = minidl.tensor(x, dtype="float64", requires_grad=True)
        out = getattr(ops, name)(ours, rois, *args)
        expected = getattr(tv.ops, name)(theirs, torch.tensor(rois), *args)
        np.testing.assert_allclose(out.numpy(), expected.detach().numpy(), atol=1e-12, err_msg=name)
        g = rng.standard_normal(out.shape)
        (out * minidl.tensor(g)).sum().backward()
        (grad,) = torch.autograd.grad((expected * torch.from_numpy(g)).sum(), theirs)
        assert np.count_nonzero(grad.numpy()) > 20, name  # the RoIs cover real parts of the maps
        np.testing.assert_allclose(ours.grad.numpy(), grad.numpy(), atol=1e-12, err_msg=name)


def test_public_nms_and_box_iou_against_torchvision():
    torch = pytest.importorskip("torch")
    tv = pytest.importorskip("torchvision")
    rng = np.random.default_rng(7)
    xy = rng.random((300, 2)) * 40
    boxes = np.concatenate([xy, xy + rng.random((300, 2)) * 15], axis=1).astype(np.float32)
    scores = rng.integers(0, 30, 300).astype(np.float32)  # many ties: the order among equal scores counts
    idxs = rng.integers(0, 4, 300)
    b, s, i = torch.from_numpy(boxes), torch.from_numpy(scores), torch.from_numpy(idxs)
    for thr in (0.2, 0.6):
        np.testing.assert_array_equal(ops.nms(boxes, scores, thr).numpy(), tv.ops.nms(b, s, thr).numpy())
        np.testing.assert_array_equal(ops.batched_nms(boxes, scores, idxs, thr).numpy(),
                                      tv.ops.batched_nms(b, s, i, thr).numpy())
    np.testing.assert_allclose(ops.box_iou(boxes[:40], boxes[40:90]).numpy(),
                               tv.ops.box_iou(b[:40], b[40:90]).numpy(), rtol=1e-6, atol=1e-7)


def test_roi_errors():
    x = minidl.zeros(1, 2, 4, 4)
    with pytest.raises(ValueError, match="boxes"):
        ops.roi_align(x, np.zeros((3, 4)), 2)
    with pytest.raises(ValueError, match="batch indices"):
        ops.roi_align(x, np.array([[1, 0, 0, 2, 2.0]]), 2)
    with pytest.raises(TypeError, match="input"):
        ops.roi_pool(np.zeros((1, 2, 4, 4)), np.zeros((1, 5)), 2)


@pytest.mark.parametrize("weights", [(1.0, 1.0, 1.0, 1.0), (10.0, 10.0, 5.0, 5.0)])
def test_box_coding_round_trip_and_values(weights):
    rng = np.random.default_rng(3)
    anchors = np.concatenate([rng.random((20, 2)) * 50, rng.random((20, 2)) * 50 + 60], axis=1)
    gt = np.concatenate([rng.random((20, 2)) * 50, rng.random((20, 2)) * 50 + 60], axis=1)
    deltas = ops.encode_boxes(gt, anchors, weights)
    np.testing.assert_allclose(ops.decode_boxes(deltas, anchors, weights), gt, rtol=1e-10)
    # hand-computed: anchor (0,0,10,10) centre 5,5 size 10; target (2,4,22,14) centre 12,9 size 20x10
    d = ops.encode_boxes(np.array([[2.0, 4, 22, 14]]), np.array([[0.0, 0, 10, 10]]), weights)
    wx, wy, ww, _ = weights
    np.testing.assert_allclose(d, [[wx * 0.7, wy * 0.4, ww * np.log(2.0), 0.0]], atol=1e-12)


def test_box_coding_against_torchvision():
    torch = pytest.importorskip("torch")
    tv = pytest.importorskip("torchvision")
    from torchvision.models.detection._utils import BoxCoder

    rng = np.random.default_rng(4)
    anchors = np.concatenate([rng.random((10, 2)) * 50, rng.random((10, 2)) * 50 + 60], axis=1).astype(np.float32)
    codes = rng.standard_normal((10, 8)).astype(np.float32)
    coder = BoxCoder((10.0, 10.0, 5.0, 5.0))
    expected = coder.decode_single(torch.from_numpy(codes), torch.from_numpy(anchors)).numpy()
    np.testing.assert_allclose(ops.decode_boxes(codes, anchors, (10, 10, 5, 5)), expected.reshape(10, 8), rtol=1e-5)
    assert tv is not None


def test_decode_clamps_large_log_sizes_and_tensor_io():
    anchors = minidl.tensor([[0.0, 0.0, 16.0, 16.0]])
    out = ops.decode_boxes(minidl.tensor([[0.0, 0.0, 100.0, 100.0, 0, 0, 0, 0]]), anchors)
    assert isinstance(out, minidl.Tensor) and out.shape == (1, 8)
    np.testing.assert_allclose(out.numpy()[0, :4], [8 - 500, 8 - 500, 8 + 500, 8 + 500], rtol=1e-5)
    np.testing.assert_allclose(out.numpy()[0, 4:], [0, 0, 16, 16])


def test_clip_and_small_boxes():
    boxes = np.array([[-5.0, -2, 30, 12], [3, 4, 5, 40], [1, 1, 1.5, 9]])
    np.testing.assert_array_equal(ops.clip_boxes_to_image(boxes, (20, 25)), [[0, 0, 25, 12], [3, 4, 5, 20],
                                                                              [1, 1, 1.5, 9]])
    np.testing.assert_array_equal(ops.remove_small_boxes(boxes, 1.0), [0, 1])
    np.testing.assert_array_equal(ops.remove_small_boxes(boxes, 10.0), [0])
    with pytest.raises(ValueError, match="boxes must have shape"):
        ops.remove_small_boxes(np.zeros((3, 5)), 1.0)


def test_ops_nms_wrappers_take_tensors():
    boxes = minidl.tensor([[0.0, 0, 10, 10], [1, 1, 10, 10], [20, 20, 30, 30]])
    scores = minidl.tensor([0.9, 0.8, 0.7])
    keep = ops.nms(boxes, scores, 0.5)
    assert isinstance(keep, minidl.Tensor) and keep.dtype == np.int64 and keep.tolist() == [0, 2]
    assert ops.batched_nms(boxes, scores, minidl.tensor([0, 1, 1]), 0.5).tolist() == [0, 1, 2]
    np.testing.assert_allclose(ops.box_iou(boxes, boxes[:1]).numpy()[:, 0], [1.0, 81 / 100, 0.0])
