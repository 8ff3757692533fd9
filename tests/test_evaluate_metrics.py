"""Point 4 of issue 17: evaluation as the studies report it.

``metrics.classification_summary`` (top-k, per-class precision/recall/F1, one-vs-rest macro AUROC,
confusion matrix) against scikit-learn, and ``minidl evaluate --top-k 1,2`` / the end of
``minidl train`` on a 3-class image folder (the X-ray study's top-2 case), with the
confusion-matrix PNG.
"""
import os
import re

import numpy as np
import pytest
from PIL import Image

from minidl import metrics
from minidl.cli import main


def _scores(n=60, c=3, seed=0):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % c
    logits = rng.normal(size=(n, c)) + 1.5 * np.eye(c)[y]
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return y, probs


@pytest.mark.parametrize("c", [2, 3, 5])
def test_classification_summary_matches_sklearn(c):
    sk = pytest.importorskip("sklearn.metrics")
    y, probs = _scores(c=c, seed=c)
    ks = tuple(range(1, c + 1))
    s = metrics.classification_summary(y, probs, top_k=ks)
    labels = list(range(c))
    for k in ks[:-1]:  # top-C is always 1 (asserted below); scikit-learn warns that it is meaningless
        sk_scores = probs[:, 1] if c == 2 else probs  # scikit-learn takes the positive column for binary
        assert s["top_k"][k] == pytest.approx(sk.top_k_accuracy_score(y, sk_scores, k=k, labels=labels))
    p, r, f1, support = sk.precision_recall_fscore_support(y, probs.argmax(1), labels=labels, zero_division=0)
    np.testing.assert_allclose(s["precision"], p)
    np.testing.assert_allclose(s["recall"], r)
    np.testing.assert_allclose(s["f1"], f1)
    assert s["support"].tolist() == support.tolist()
    assert s["macro"] == pytest.approx((p.mean(), r.mean(), f1.mean()))
    expected_auc = sk.roc_auc_score(y, probs[:, 1]) if c == 2 else sk.roc_auc_score(y, probs, multi_class="ovr")
    assert s["auroc"] == pytest.approx(expected_auc)
    assert s["confusion_matrix"].tolist() == sk.confusion_matrix(y, probs.argmax(1), labels=labels).tolist()
    assert s["top_k"][c] == 1.0


def test_classification_summary_by_hand():
    """Three samples, three classes: hand-counted top-1, top-2, recall and AUROC."""
    scores = np.array([[0.7, 0.2, 0.1],   # class 0: right
                       [0.5, 0.4, 0.1],   # class 1: wrong, but second
                       [0.2, 0.3, 0.5]])  # class 2: right
    s = metrics.classification_summary([0, 1, 2], scores, top_k=(1, 2))
    assert s["top_k"] == {1: pytest.approx(2 / 3), 2: 1.0}
    assert s["recall"].tolist() == [1.0, 0.0, 1.0] and s["precision"].tolist() == [0.5, 0.0, 1.0]
    # each class's own sample has its highest score in that column (class 1: 0.4 > 0.3, 0.2): AUROC 1
    assert s["auroc_per_class"].tolist() == [1.0, 1.0, 1.0] and s["auroc"] == 1.0
    with pytest.raises(ValueError, match=r"top_k: expected values in \[1, 3\]"):
        metrics.classification_summary([0, 1, 2], scores, top_k=(1, 5))
    missing = metrics.classification_summary([0, 0, 2], scores, top_k=(1,))
    assert missing["auroc"] is None  # class 1 never occurs: its one-vs-rest AUROC is undefined


def _three_class_folder(root, per_class=12):
    """Three classes of 8x8 images told apart by their colour, plus noise."""
    rng = np.random.default_rng(0)
    colours = {"covid": (200, 40, 40), "normal": (40, 200, 40), "pneumonia": (40, 40, 200)}
    for name, colour in colours.items():
        os.makedirs(os.path.join(root, name))
        for k in range(per_class):
            pixels = np.clip(np.array(colour) + rng.integers(-60, 61, (8, 8, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(os.path.join(root, name, f"{k}.png"))
    return root


def _confusion_rows(out):
    block = out.split("confusion matrix (rows: true class, columns: predicted)")[1].strip().splitlines()
    return np.array([[int(v) for v in line.split()[1:]] for line in block[1:4]])


def test_train_and_evaluate_print_top2_auroc_and_confusion_matrix(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    data = _three_class_folder(str(tmp_path / "xray"))
    rc = main(["train", "mlp", "--dataset", data, "--epochs", "3", "--lr", "0.1", "--val-split", "0",
               "--checkpoint", str(tmp_path / "ck"), "--quiet"])
    out = capsys.readouterr().out
    assert rc == 0
    # the end of training prints the report: top-1 and top-2 (top-5 makes no sense with 3 classes)
    assert re.search(r"top-1 accuracy: [\d.]+%, top-2 accuracy: [\d.]+%\n", out) and "top-5" not in out
    assert "AUROC (one vs rest, macro)" in out and "covid" in out

    plots = tmp_path / "plots"
    rc = main(["evaluate", "mlp", "--dataset", data, "--checkpoint", str(tmp_path / "ck" / "best.npz"),
               "--top-k", "1,2,3", "--plot", str(plots), "--quiet"])
    out = capsys.readouterr().out
    assert rc == 0
    top = {int(k): float(v) for k, v in re.findall(r"top-(\d) accuracy: ([\d.]+)%", out)}
    assert set(top) == {1, 2, 3} and top[1] <= top[2] <= top[3] == 100.0
    matrix = _confusion_rows(out)
    n = int(re.search(r"\((\d+) images\)", out).group(1))
    assert matrix.sum() == n and matrix.sum(axis=1).tolist() == [n // 3] * 3  # the held-out fifth per class
    assert top[1] == pytest.approx(100 * np.trace(matrix) / n, abs=0.01)
    for line, name in zip(("covid", "normal", "pneumonia"), range(3)):  # per-class recall = diagonal / row
        recall = float(re.search(rf"\s{line}\s+([\d.]+)\s+([\d.]+)", out).group(2))
        assert recall == pytest.approx(matrix[name, name] / matrix[name].sum(), abs=0.005)
    auc = float(re.search(r"AUROC \(one vs rest, macro\): ([\d.]+)", out).group(1))
    per_class = [float(v) for v in re.findall(r"(?:covid|normal|pneumonia) ([\d.]+)", out.split("AUROC per class:")[1])]
    assert 0.5 < auc <= 1.0 and len(per_class) == 3 and auc == pytest.approx(np.mean(per_class), abs=1e-4)
    png = plots / "confusion_matrix.png"
    assert png.is_file() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_top_k_above_the_class_count_is_refused(tmp_path, capsys):
    data = _three_class_folder(str(tmp_path / "xray"), per_class=5)
    rc = main(["train", "mlp", "--dataset", data, "--epochs", "1", "--top-k", "1,5", "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2 and "--top-k 1,5: the dataset has 3 classes, so k can be at most 3; got 5" in err
    rc = main(["train", "mlp", "--dataset", data, "--top-k", "two"])
    assert rc == 2 and "--top-k: expected comma-separated whole numbers" in capsys.readouterr().err
