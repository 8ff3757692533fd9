"""Numerics of the detection ops: batched_nms with inf/NaN coordinates, iou_threshold checks."""
import numpy as np
import pytest

from minidl import ops
from minidl.kernels.cpu import nms as fast
from minidl.kernels.reference import nms as ref


def _boxes(rng, n):
    xy = rng.random((n, 2)).astype(np.float32) * 30
    return np.concatenate([xy, xy + 1 + rng.random((n, 2)).astype(np.float32) * 15], axis=1)


def _per_class(boxes, scores, idxs, thr):
    """The definition: fast.nms per category, merged by decreasing score (ties: lower index)."""
    keep = []
    for c in np.unique(idxs):
        members = np.flatnonzero(idxs == c)
        keep.extend(members[fast.nms(boxes[members], scores[members], thr)])
    return np.array(sorted(keep, key=lambda i: (-scores[i], i)), np.int64)


@pytest.mark.parametrize("bad", [np.inf, -np.inf, np.nan])
def test_batched_nms_with_one_non_finite_coordinate_still_suppresses_in_every_class(bad):
    rng = np.random.default_rng(3)
    boxes = _boxes(rng, 200)
    boxes[17, 2] = bad  # one coordinate of one box
    scores = rng.random(200).astype(np.float32)
    idxs = rng.integers(0, 4, 200)
    keep = fast.batched_nms(boxes, scores, idxs, 0.3)
    expected = _per_class(boxes, scores, idxs, 0.3)
    np.testing.assert_array_equal(keep, expected)
    np.testing.assert_array_equal(keep, ref.batched_nms(boxes, scores, idxs, 0.3))
    assert len(keep) < 150  # suppression still happens (the offset trick kept all 200)
    np.testing.assert_array_equal(ops.batched_nms(boxes, scores, idxs, 0.3).numpy(), expected)


def test_batched_nms_with_many_non_finite_boxes_equals_per_class_nms():
    rng = np.random.default_rng(4)
    boxes = _boxes(rng, 300)
    pick = rng.choice(300 * 4, 40, replace=False)
    boxes.reshape(-1)[pick] = rng.choice([np.inf, -np.inf, np.nan], 40)
    scores = rng.random(300).astype(np.float32)
    idxs = rng.integers(0, 6, 300) * 7 - 10  # negative and sparse category ids
    for thr in (0.0, 0.25, 0.6, 1.0):
        np.testing.assert_array_equal(fast.batched_nms(boxes, scores, idxs, thr),
                                      _per_class(boxes, scores, idxs, thr))


def test_nms_keeps_a_box_with_a_nan_coordinate_and_it_never_suppresses():
    boxes = np.array([[0, 0, 10, 10], [0, 0, np.nan, 10], [0, 0, 10, 10], [1, 1, 10, 10]], np.float32)
    scores = np.array([0.5, 0.9, 0.4, 0.3], np.float32)
    # box 1 (NaN, best score) is kept and suppresses nothing; box 0 then suppresses 2 and 3
    np.testing.assert_array_equal(fast.nms(boxes, scores, 0.5), [1, 0])
    np.testing.assert_array_equal(ref.nms(boxes, scores, 0.5), [1, 0])
    # an identical NaN box right after it is not suppressed either
    boxes2 = np.array([[0, 0, np.nan, 10], [0, 0, np.nan, 10]], np.float32)
    np.testing.assert_array_equal(fast.nms(boxes2, np.array([0.9, 0.8], np.float32), 0.5), [0, 1])


def test_nms_with_nan_and_inf_matches_torchvision_where_it_runs():
    torch = pytest.importorskip("torch")
    try:
        import torchvision as tv
    except Exception as err:  # noqa: BLE001 - a broken torchvision build is a skip, not a failure
        pytest.skip(f"torchvision does not import: {err}")
    rng = np.random.default_rng(5)
    boxes = _boxes(rng, 100)
    boxes[[3, 40, 77], [2, 0, 3]] = [np.nan, np.inf, -np.inf]
    scores = rng.random(100).astype(np.float32)
    want = tv.ops.nms(torch.from_numpy(boxes), torch.from_numpy(scores), 0.4).numpy()
    np.testing.assert_array_equal(fast.nms(boxes, scores, 0.4), want)


@pytest.mark.parametrize("thr", [float("nan"), -0.1, 1.5, float("inf")])
def test_nms_and_batched_nms_refuse_an_iou_threshold_outside_0_1(thr):
    boxes = np.array([[0, 0, 10, 10], [1, 1, 10, 10]], np.float32)
    scores = np.array([0.9, 0.8], np.float32)
    for call in (lambda: fast.nms(boxes, scores, thr), lambda: fast.batched_nms(boxes, scores, [0, 0], thr),
                 lambda: ops.nms(boxes, scores, thr), lambda: ops.batched_nms(boxes, scores, [0, 0], thr)):
        with pytest.raises(ValueError, match="iou_threshold"):
            call()
    # also with no boxes at all: the argument is wrong whatever the data
    with pytest.raises(ValueError, match="iou_threshold"):
        fast.nms(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), thr)


def test_iou_threshold_bounds_0_and_1_are_accepted():
    boxes = np.array([[0, 0, 10, 10], [0, 0, 10, 10], [20, 20, 30, 30]], np.float32)
    scores = np.array([0.9, 0.8, 0.7], np.float32)
    np.testing.assert_array_equal(fast.nms(boxes, scores, 1.0), [0, 1, 2])  # IoU 1 is not > 1
    np.testing.assert_array_equal(fast.nms(boxes, scores, 0.0), [0, 2])
