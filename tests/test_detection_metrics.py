"""detection_map, coco_map and rpn_recall on hand-computed cases."""

import numpy as np
import pytest

import minidl
from minidl.metrics_detection import coco_map, detection_map, rpn_recall, voc_ap


def _case():
    targets = [
        {"boxes": np.array([[0, 0, 10, 10], [20, 20, 30, 30]]), "labels": np.array([1, 1])},
        {"boxes": np.array([[0, 0, 10, 10], [40, 40, 50, 50]]), "labels": np.array([1, 2])},
    ]
    preds = [
        {"boxes": np.array([[0, 0, 10, 10], [0, 0, 10, 9], [20, 20, 30, 30], [5, 5, 9, 9]]),
         "scores": np.array([0.9, 0.8, 0.6, 0.95]), "labels": np.array([1, 1, 1, 3])},
        {"boxes": np.array([[50, 50, 60, 60]]), "scores": np.array([0.7]), "labels": np.array([1])},
    ]
    return preds, targets


def test_voc_map_hand_computed():
    preds, targets = _case()
    # class 1, by score: TP (A), FP (duplicate of A), FP (image 1, no overlap), TP (B)
    # precision 1, 1/2, 1/3, 1/2; recall 1/3, 1/3, 1/3, 2/3 -> AP = 1/3 * 1 + 1/3 * 1/2 = 0.5
    # class 2 has ground truth and no detection -> 0; class 3 has no ground truth -> ignored
    result = detection_map(preds, targets)
    assert result["ap"] == {1: pytest.approx(0.5), 2: 0.0}
    assert result["map"] == pytest.approx(0.25)


def test_envelope_and_threshold_edge():
    # precision 0.5 then 2/3 at higher recall: the envelope lifts the first step to 2/3
    assert voc_ap(np.array([0.5, 0.5, 1.0]), np.array([1.0, 0.5, 2 / 3])) == pytest.approx(0.5 + 0.5 * 2 / 3)
    # IoU exactly 0.5 counts as a match; just below does not
    target = [{"boxes": np.array([[0.0, 0, 10, 10]]), "labels": np.array([0])}]
    half = [{"boxes": np.array([[0.0, 0, 10, 5]]), "scores": np.array([1.0]), "labels": np.array([0])}]
    below = [{"boxes": np.array([[0.0, 0, 10, 4.9]]), "scores": np.array([1.0]), "labels": np.array([0])}]
    assert detection_map(half, target)["map"] == 1.0
    assert detection_map(below, target)["map"] == 0.0
    assert detection_map(half, target, iou_threshold=0.6)["map"] == 0.0


def test_best_iou_box_taken_even_if_matched():
    # The detection's best-IoU box is already matched -> FP even though another box overlaps enough.
    target = [{"boxes": np.array([[0.0, 0, 10, 10], [0, 0, 10, 14]]), "labels": np.array([0, 0])}]
    preds = [{"boxes": np.array([[0.0, 0, 10, 10], [0, 0, 10, 10]]), "scores": np.array([0.9, 0.8]),
              "labels": np.array([0, 0])}]
    # second detection: best IoU is box 0 (matched) -> FP; precision 1, 1/2; recall 1/2, 1/2 -> AP 0.5
    assert detection_map(preds, target)["map"] == pytest.approx(0.5)


def test_tensor_inputs_and_errors():
    preds, targets = _case()
    tensor_preds = [{k: minidl.tensor(v.astype(np.float32)) for k, v in p.items()} for p in preds]
    assert detection_map(tensor_preds, targets)["map"] == pytest.approx(0.25)
    with pytest.raises(ValueError, match="one entry per image"):
        detection_map(preds[:1], targets)
    with pytest.raises(ValueError, match="'scores'"):
        detection_map([{"boxes": np.zeros((0, 4)), "labels": np.zeros(0)}], targets[:1])


def test_coco_map():
    preds, targets = _case()
    result = coco_map(preds, targets)
    # class 1 at IoU 0.5: envelope 1 up to recall 1/3 (34 of the 101 points), 1/2 up to 2/3 (33 points)
    class1_50 = (34 + 33 * 0.5) / 101
    assert result["map_50"] == pytest.approx(class1_50 / 2)
    # perfect detections give 1 at every threshold
    perfect = [{"boxes": t["boxes"], "scores": np.ones(len(t["labels"])), "labels": t["labels"]} for t in targets]
    assert coco_map(perfect, targets)["map"] == pytest.approx(1.0)
    # a box with IoU 0.8 counts up to threshold 0.8 only: 7 of the 10 thresholds
    shifted = [{"boxes": np.array([[0.0, 0, 10, 8]]), "scores": np.array([1.0]), "labels": np.array([0])}]
    target = [{"boxes": np.array([[0.0, 0, 10, 10]]), "labels": np.array([0])}]
    assert coco_map(shifted, target)["map"] == pytest.approx(0.7)


def test_rpn_recall():
    gt = [np.array([[0.0, 0, 10, 10], [20, 20, 30, 30]]), np.array([[0.0, 0, 10, 10]])]
    proposals = [np.array([[0.0, 0, 10, 6], [20, 20, 30, 30]]), np.zeros((0, 4))]
    # IoUs: 0.6, 1.0, none -> recall@0.5 = 2/3, recall@0.7 = 1/3
    assert rpn_recall(proposals, gt) == {0.5: pytest.approx(2 / 3), 0.7: pytest.approx(1 / 3)}
