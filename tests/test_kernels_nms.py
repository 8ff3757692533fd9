"""NMS kernels vs the greedy reference (and torchvision.ops where it is installed)."""

import numpy as np
import pytest

from minidl.kernels.cpu import nms as fast
from minidl.kernels.reference import nms as ref


def _boxes(rng, n, dtype=np.float32, grid=False):
    """Random boxes, a few zero-area ones (points and lines), optionally on a 0.25 grid."""
    xy = rng.random((n, 2)) * 50
    wh = rng.random((n, 2)) * 20
    if grid:
        xy, wh = np.round(xy * 4) / 4, np.round(wh * 4) / 4
    wh[: max(n // 10, 1)] = 0.0  # zero-area boxes
    wh[-1, 0] = 0.0  # a line (zero width)
    boxes = np.concatenate([xy, xy + wh], axis=1).astype(dtype)
    return boxes[rng.permutation(n)]


@pytest.mark.parametrize("n", [0, 1, 7, 200])
@pytest.mark.parametrize("threshold", [0.0, 0.3, 0.7])
@pytest.mark.parametrize("tied", [False, True])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_nms_matches_reference(n, threshold, tied, dtype):
    rng = np.random.default_rng(n)
    boxes = _boxes(rng, n, dtype) if n else np.zeros((0, 4), dtype)
    scores = rng.integers(0, 4, n).astype(dtype) if tied else rng.random(n).astype(dtype)
    keep = fast.nms(boxes, scores, threshold)
    assert keep.dtype == np.int64
    np.testing.assert_array_equal(keep, ref.nms(boxes, scores, threshold))
    # Kept boxes come in decreasing score order and no pair overlaps above the threshold.
    assert np.all(np.diff(scores[keep]) <= 0)
    iou = ref.box_iou(boxes[keep], boxes[keep])
    np.fill_diagonal(iou, 0)
    assert not (iou > threshold).any()


def test_nms_identical_and_zero_area_boxes():
    boxes = np.array([[0, 0, 10, 10], [0, 0, 10, 10], [5, 5, 5, 5], [5, 5, 5, 5]], np.float32)
    scores = np.array([0.5, 0.5, 0.9, 0.9], np.float32)
    # Ties keep the lower index; the duplicate box is suppressed (IoU 1 > 0.5);
    # the duplicated points have IoU 0/0 and are both kept.
    np.testing.assert_array_equal(fast.nms(boxes, scores, 0.5), [2, 3, 0])


@pytest.mark.parametrize("threshold", [0.2, 0.5])
def test_batched_nms_matches_per_category_reference(threshold):
    rng = np.random.default_rng(7)
    boxes = _boxes(rng, 300, grid=True)
    scores = rng.random(300).astype(np.float32)
    idxs = rng.integers(0, 5, 300)
    keep = fast.batched_nms(boxes, scores, idxs, threshold)
    np.testing.assert_array_equal(keep, ref.batched_nms(boxes, scores, idxs, threshold))
    assert fast.batched_nms(np.zeros((0, 4), np.float32), np.zeros(0), np.zeros(0, np.int64), 0.5).shape == (0,)


def test_box_iou_matches_reference():
    rng = np.random.default_rng(8)
    a, b = _boxes(rng, 20), _boxes(rng, 13)
    iou = fast.box_iou(a, b)
    assert iou.shape == (20, 13)
    np.testing.assert_allclose(iou, ref.box_iou(a, b), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(np.diag(fast.box_iou(a, a))[a[:, 2] > a[:, 0]], 1.0, rtol=1e-6)


def test_shape_errors_name_the_shape():
    with pytest.raises(ValueError, match=r"\(N, 4\).*\(3, 5\)"):
        fast.nms(np.zeros((3, 5)), np.zeros(3), 0.5)
    with pytest.raises(ValueError, match=r"boxes2.*\(4,\)"):
        fast.box_iou(np.zeros((2, 4)), np.zeros(4))
    with pytest.raises(ValueError, match="scores"):
        fast.nms(np.zeros((3, 4)), np.zeros(2), 0.5)


def test_nms_vs_torchvision():
    torch = pytest.importorskip("torch")
    tv = pytest.importorskip("torchvision")
    rng = np.random.default_rng(9)
    boxes = _boxes(rng, 500)
    scores = rng.integers(0, 50, 500).astype(np.float32)
    idxs = rng.integers(0, 3, 500)
    for thr in (0.3, 0.5):
        want = tv.ops.nms(torch.tensor(boxes), torch.tensor(scores), thr).numpy()
        np.testing.assert_array_equal(fast.nms(boxes, scores, thr), want)
        want = tv.ops.batched_nms(torch.tensor(boxes), torch.tensor(scores), torch.tensor(idxs), thr).numpy()
        np.testing.assert_array_equal(fast.batched_nms(boxes, scores, idxs, thr), want)
