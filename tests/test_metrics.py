"""minidl.metrics: hand-computed cases, and scikit-learn as the reference on random data."""

import numpy as np
import pytest

from minidl import metrics as M


class _FakeTensor:
    """Anything with ``.numpy()`` is accepted, as a minidl.Tensor."""

    def __init__(self, array):
        self._array = np.asarray(array)

    def numpy(self):
        return self._array


# ------------------------------------------------------------------ accuracy and top-k
def test_accuracy_from_logits_predictions_and_tensors():
    logits = np.array([[2.0, 1.0, 0.0], [0.1, 0.3, 0.2], [5.0, -1.0, 9.0], [0.0, 0.0, 1.0]])
    target = [0, 1, 1, 2]
    # arg-max per row: 0, 1, 2, 2 -> three of four right
    assert M.accuracy(logits, target) == 0.75
    assert M.accuracy([0, 1, 2, 2], target) == 0.75
    assert M.accuracy(_FakeTensor(logits), _FakeTensor(target)) == 0.75


def test_accuracy_dense_target_takes_argmax_over_axis_1():
    scores = np.zeros((1, 2, 2, 2))  # (N, C, H, W)
    scores[0, 1, 0, :] = 1.0          # class 1 wins on the top row
    target = np.array([[[1, 1], [0, 1]]])
    assert M.accuracy(scores, target) == 0.75


def test_accuracy_shape_mismatch_names_argument():
    with pytest.raises(ValueError, match="logits_or_pred"):
        M.accuracy(np.zeros((4, 3, 2)), [0, 1, 2, 0])


def test_top1_top5_three_images_six_classes():
    # Three images, six classes. The true classes are 0, 1 and 2.
    #   image 0: class 0 has the highest score           -> top-1 hit, top-5 hit
    #   image 1: class 1 ranks 5th (only class 4 is lower) -> top-1 miss, top-5 hit
    #   image 2: class 2 ranks 2nd (after class 5)        -> top-1 miss, top-5 hit
    # So top-1 accuracy = 1/3 and top-5 accuracy = 3/3 = 1.
    scores = np.array([
        [0.50, 0.10, 0.10, 0.10, 0.10, 0.10],
        [0.30, 0.05, 0.25, 0.20, 0.01, 0.19],
        [0.05, 0.10, 0.30, 0.05, 0.10, 0.40],
    ])
    target = np.array([0, 1, 2])
    assert M.top_k_accuracy(scores, target, k=1) == pytest.approx(1 / 3)
    assert M.accuracy(scores, target) == pytest.approx(1 / 3)
    assert M.top_k_accuracy(scores, target, k=5) == 1.0
    # top-2: images 0 and 2 -> 2/3; top-4: image 1's class is 5th -> still 2/3
    assert M.top_k_accuracy(scores, target, k=2) == pytest.approx(2 / 3)
    assert M.top_k_accuracy(scores, target, k=4) == pytest.approx(2 / 3)


def test_top_k_bad_k():
    with pytest.raises(ValueError, match="k: expected an int in \\[1, 3\\]"):
        M.top_k_accuracy(np.zeros((2, 3)), [0, 1], k=4)


def test_top_k_matches_sklearn_including_ties():
    sklearn_metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(0)
    scores = rng.integers(0, 4, size=(200, 7)).astype(float)  # many ties
    target = rng.integers(0, 7, size=200)
    for k in (1, 2, 3, 5):
        expected = sklearn_metrics.top_k_accuracy_score(target, scores, k=k, labels=np.arange(7))
        assert M.top_k_accuracy(scores, target, k=k) == pytest.approx(expected)


# ------------------------------------------------------------------ confusion matrix, P/R/F1
def test_confusion_matrix_hand_case():
    y_true = [0, 0, 1, 2, 2, 2]
    y_pred = [0, 1, 1, 2, 0, 2]
    expected = [[1, 1, 0],
                [0, 1, 0],
                [1, 0, 2]]
    assert M.confusion_matrix(y_true, y_pred).tolist() == expected
    # num_classes pads absent classes with zero rows/columns
    cm = M.confusion_matrix(y_true, y_pred, num_classes=4)
    assert cm.shape == (4, 4) and cm[3].sum() == 0 and cm[:, 3].sum() == 0
    with pytest.raises(ValueError, match="num_classes"):
        M.confusion_matrix(y_true, y_pred, num_classes=2)
    with pytest.raises(ValueError, match="y_pred: expected 6 entries"):
        M.confusion_matrix(y_true, y_pred[:5])


def test_precision_recall_f1_hand_case():
    y_true = [0, 0, 1, 2, 2, 2]
    y_pred = [0, 1, 1, 2, 0, 2]
    p, r, f1, s = M.precision_recall_f1(y_true, y_pred)
    # class 0: TP=1 FP=1 FN=1; class 1: TP=1 FP=1 FN=0; class 2: TP=2 FP=0 FN=1
    np.testing.assert_allclose(p, [1 / 2, 1 / 2, 1.0])
    np.testing.assert_allclose(r, [1 / 2, 1.0, 2 / 3])
    np.testing.assert_allclose(f1, [1 / 2, 2 / 3, 4 / 5])
    assert s.tolist() == [2, 1, 3]
    macro = M.precision_recall_f1(y_true, y_pred, average="macro")
    np.testing.assert_allclose(macro[:3], [2 / 3, (1 / 2 + 1 + 2 / 3) / 3, (1 / 2 + 2 / 3 + 4 / 5) / 3])
    micro = M.precision_recall_f1(y_true, y_pred, average="micro")
    np.testing.assert_allclose(micro[:3], [4 / 6] * 3)  # micro = accuracy for single-label data
    weighted = M.precision_recall_f1(y_true, y_pred, average="weighted")
    np.testing.assert_allclose(weighted[2], (2 * 1 / 2 + 1 * 2 / 3 + 3 * 4 / 5) / 6)
    assert weighted[3] == 6


@pytest.mark.parametrize("average", [None, "macro", "weighted", "micro"])
def test_precision_recall_f1_matches_sklearn(average):
    sklearn_metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(1)
    y_true = rng.integers(0, 5, size=300)
    y_pred = np.where(rng.random(300) < 0.6, y_true, rng.integers(0, 6, size=300))  # class 5 never true
    ours = M.precision_recall_f1(y_true, y_pred, num_classes=6, average=average)
    ref = sklearn_metrics.precision_recall_fscore_support(
        y_true, y_pred, labels=np.arange(6), average=average, zero_division=0
    )
    for a, b in zip(ours[:3], ref[:3]):
        np.testing.assert_allclose(a, b, rtol=1e-12)
    if average is None:
        np.testing.assert_array_equal(ours[3], ref[3])
    np.testing.assert_array_equal(
        M.confusion_matrix(y_true, y_pred, 6), sklearn_metrics.confusion_matrix(y_true, y_pred, labels=np.arange(6))
    )


def test_classification_report_text_equals_sklearn():
    sklearn_metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(2)
    y_true = rng.integers(0, 4, size=120)
    y_pred = np.where(rng.random(120) < 0.5, y_true, rng.integers(0, 4, size=120))
    assert M.classification_report(y_true, y_pred) == sklearn_metrics.classification_report(y_true, y_pred)
    names = ["cardboard", "glass", "metal", "a much longer class name"]
    assert M.classification_report(y_true, y_pred, target_names=names, digits=4) == (
        sklearn_metrics.classification_report(y_true, y_pred, target_names=names, digits=4)
    )


def test_classification_report_layout():
    text = M.classification_report([0, 1, 1], [0, 1, 0], target_names=["cat", "dog"])
    lines = text.splitlines()
    assert lines[0].split() == ["precision", "recall", "f1-score", "support"]
    assert lines[2].split() == ["cat", "0.50", "1.00", "0.67", "1"]
    assert lines[3].split() == ["dog", "1.00", "0.50", "0.67", "2"]
    assert lines[5].split() == ["accuracy", "0.67", "3"]


# ------------------------------------------------------------------ ROC
def test_roc_curve_hand_case_with_tie():
    # Scores (sorted): 0.9(+) 0.8(-) 0.8(+) 0.3(-); the 0.8 tie makes one diagonal step.
    y_true = [1, 0, 1, 0]
    y_score = [0.9, 0.8, 0.8, 0.3]
    fpr, tpr, thr = M.roc_curve(y_true, y_score, drop_intermediate=False)
    np.testing.assert_allclose(fpr, [0.0, 0.0, 0.5, 1.0])
    np.testing.assert_allclose(tpr, [0.0, 0.5, 1.0, 1.0])
    np.testing.assert_allclose(thr, [np.inf, 0.9, 0.8, 0.3])
    # Area: the first step is a vertical 0.5, the tie a trapezoid 0.5 * (0.5 + 1) / 2, then 0.5 * 1
    assert M.roc_auc_score(y_true, y_score) == pytest.approx(0.375 + 0.5)
    # Pairs: (0.9, 0.8) win, (0.9, 0.3) win, (0.8, 0.8) tie = 1/2, (0.8, 0.3) win -> 3.5 / 4
    assert M.roc_auc_score(y_true, y_score) == pytest.approx(3.5 / 4)


def test_roc_auc_undefined_with_one_class():
    with pytest.raises(ValueError, match="y_true"):
        M.roc_auc_score([1, 1, 1], [0.1, 0.2, 0.3])


@pytest.mark.parametrize("drop_intermediate", [True, False])
def test_roc_curve_matches_sklearn(drop_intermediate):
    sklearn_metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(3)
    y_true = rng.integers(0, 2, size=400)
    y_score = np.round(rng.random(400) + 0.3 * y_true, 2)  # rounded: ties
    ours = M.roc_curve(y_true, y_score, drop_intermediate=drop_intermediate)
    ref = sklearn_metrics.roc_curve(y_true, y_score, drop_intermediate=drop_intermediate)
    for a, b in zip(ours, ref):
        np.testing.assert_allclose(a, b)
    assert M.roc_auc_score(y_true, y_score) == pytest.approx(sklearn_metrics.roc_auc_score(y_true, y_score))


@pytest.mark.parametrize("multi_class", ["ovr", "ovo"])
@pytest.mark.parametrize("average", ["macro", "weighted"])
def test_multiclass_roc_auc_matches_sklearn(multi_class, average):
    sklearn_metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(4)
    y_true = rng.integers(0, 4, size=300)
    logits = rng.normal(size=(300, 4)) + 1.5 * np.eye(4)[y_true]
    logits = np.round(logits, 1)  # ties
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    ours = M.roc_auc_score(y_true, probs, multi_class=multi_class, average=average)
    ref = sklearn_metrics.roc_auc_score(y_true, probs, multi_class=multi_class, average=average)
    assert ours == pytest.approx(ref, rel=1e-12)


def test_labels_accept_bools_and_integral_floats_but_not_fractions():
    assert M.confusion_matrix([True, False, True], [True, True, False]).tolist() == [[0, 1], [1, 1]]
    assert M.confusion_matrix(np.array([0.0, 1.0]), [0, 1]).tolist() == [[1, 0], [0, 1]]
    with pytest.raises(TypeError, match="y_true: expected integer class labels"):
        M.confusion_matrix([0.5, 1.0], [0, 1])
    with pytest.raises(ValueError, match="y_pred: expected labels >= 0"):
        M.confusion_matrix([0, 1], [0, -1])
