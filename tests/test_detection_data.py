"""Synthetic scenes, the GTSDB reader, the pipeline filters and the ``minidl detect`` command line."""

import os

import numpy as np
import pytest

from minidl.datasets.gtsdb import GTSDB, read_gt
from minidl.datasets.scenes import CLASS_NAMES, SceneConfig, SyntheticScenes, draw_sign, write_gtsdb
from minidl.detection import pipeline as P


def test_scenes_are_seeded_and_valid():
    cfg = SceneConfig(160, 112, min_size=16, max_size=40)
    a, b = SyntheticScenes(6, seed=7, config=cfg), SyntheticScenes(6, seed=7, config=cfg)
    other = SyntheticScenes(6, seed=8, config=cfg)
    for i in range(6):
        img, t = a[i]
        assert img.shape == (112, 160, 3) and img.dtype == np.uint8
        np.testing.assert_array_equal(img, b[i][0])
        boxes = t["boxes"]
        assert 1 <= len(boxes) <= cfg.max_signs and boxes.dtype == np.float32
        side = boxes[:, 2] - boxes[:, 0]
        assert ((side >= 16) & (side <= 40)).all() and (boxes[:, 3] - boxes[:, 1] == side).all()
        assert (boxes[:, :2] >= 0).all() and (boxes[:, 2] <= 160).all() and (boxes[:, 3] <= 112).all()
        assert ((t["labels"] >= 0) & (t["labels"] < len(CLASS_NAMES))).all()
    assert any(not np.array_equal(a[i][0], other[i][0]) for i in range(6))
    with pytest.raises(ValueError, match="max_size"):
        SceneConfig(256, 160, max_size=120)


def test_signs_differ_by_class():
    rng = np.random.default_rng(0)
    signs = [np.asarray(draw_sign(c, 32, rng), np.float32) for c in range(len(CLASS_NAMES))]
    alpha = [s[..., 3] > 128 for s in signs]
    # circles, triangles (up/down), octagon and square cover different areas of the square
    np.testing.assert_allclose(alpha[0].mean(), np.pi / 4, atol=0.05)
    np.testing.assert_allclose(alpha[2].mean(), 0.5, atol=0.06)
    assert alpha[5].mean() > 0.95
    assert alpha[2][:4].mean() < alpha[2][-4:].mean() and alpha[3][:4].mean() > alpha[3][-4:].mean()
    # colour: mandatory and information are mostly blue, stop mostly red
    for c, channel in ((1, 2), (5, 2), (4, 0)):
        rgb = signs[c][..., :3][alpha[c]]
        assert rgb.mean(axis=0).argmax() == channel


def test_gtsdb_round_trip(tmp_path):
    scenes = SyntheticScenes(3, seed=1, config=SceneConfig(96, 80, min_size=12, max_size=30))
    root = write_gtsdb(scenes, str(tmp_path / "gtsdb"))
    ds = GTSDB(root)
    assert len(ds) == 3
    for i in range(3):
        img, t = ds[i]
        np.testing.assert_array_equal(img, scenes[i][0])
        np.testing.assert_array_equal(t["boxes"], scenes[i][1]["boxes"])
        np.testing.assert_array_equal(t["labels"], scenes[i][1]["labels"])


def test_gtsdb_reader_published_lines(tmp_path):
    gt = tmp_path / "gt.txt"
    gt.write_text("00000.ppm;774;411;815;446;11\n00000.ppm;983;388;1024;432;40\n00001.ppm;386;494;442;552;38\n")
    entries = read_gt(str(gt))
    np.testing.assert_array_equal(entries["00000.ppm"][0], [[774, 411, 816, 447], [983, 388, 1025, 433]])
    np.testing.assert_array_equal(entries["00000.ppm"][1], [11, 40])
    gt.write_text("00000.ppm;1;2;3\n")
    with pytest.raises(ValueError, match="gt.txt:1"):
        read_gt(str(gt))
    with pytest.raises(FileNotFoundError):
        GTSDB(str(tmp_path / "missing"))


def _dets(boxes, scores=None, labels=None):
    boxes = np.asarray(boxes, np.float32)
    n = len(boxes)
    return {"boxes": boxes, "scores": np.asarray(scores if scores is not None else np.linspace(1, 0.5, n)),
            "labels": np.asarray(labels if labels is not None else np.zeros(n, np.int64))}


def test_position_and_shape_filters():
    triangle = [(50, 40), (90, 100), (10, 100)]
    inside = P.points_in_polygon(np.array([[50, 80], [50, 39], [15, 99], [89, 60]]), triangle)
    np.testing.assert_array_equal(inside, [True, False, True, False])
    dets = _dets([[40, 70, 60, 90], [0, 0, 20, 20], [45, 30, 55, 60], [5, 90, 15, 110]])
    # box 0: 4 corners inside; box 2: its two bottom corners; box 3: none (the wedge is narrow at row 90)
    out = P.PositionFilter([triangle], min_corners=2)(None, dets)
    np.testing.assert_array_equal(out["boxes"], dets["boxes"][[1, 3]])
    out = P.PositionFilter([], y_min=10)(None, dets)  # two corners above row 10 -> dropped
    np.testing.assert_array_equal(out["boxes"], dets["boxes"][[0, 2, 3]])
    shape = P.ShapeFilter(min_side=12, max_side=30, max_aspect=1.4)
    out = shape(None, _dets([[0, 0, 20, 20], [0, 0, 10, 20], [0, 0, 40, 40], [0, 0, 20, 26]]))
    np.testing.assert_array_equal(out["boxes"], [[0, 0, 20, 20], [0, 0, 20, 26]])
    with pytest.raises(ValueError, match="polygons"):
        P.PositionFilter([[(0, 0), (1, 1)]])


def test_nms_topk_and_pipeline_stats():
    dets = _dets([[0, 0, 10, 10], [1, 0, 11, 10], [0, 0, 10, 10], [50, 50, 60, 60]], [0.9, 0.8, 0.7, 0.6],
                 [0, 0, 1, 0])
    pipe = P.Pipeline([P.ClassNMS(0.3), P.TopK(2)])
    out = pipe(None, dets)
    np.testing.assert_array_equal(out["scores"], [0.9, 0.7])  # box 1 suppressed by box 0; box 2 is another class
    assert pipe.stats["nms"] == {"in": 4, "out": 3, "seconds": pytest.approx(pipe.stats["nms"]["seconds"])}
    assert pipe.stats["topk"]["in"] == 3 and pipe.stats["topk"]["out"] == 2
    assert [s.name for s in pipe.without("nms").stages] == ["topk"]


def test_classifier_stages_use_the_crops():
    from minidl import nn

    class Redness(nn.Module):
        """Two logits: (not red, red) from the mean of the normalised red channel minus green."""

        def forward(self, x):
            score = (x[:, 0] - x[:, 1]).mean(dim=(1, 2)) * 10.0  # (N,)
            return minidl_stack([score * 0.0, score])

    import minidl

    def minidl_stack(cols):
        return minidl.stack(cols, dim=1)

    image = np.zeros((40, 80, 3), np.uint8)
    image[:, :40] = (220, 20, 20)  # red left half
    image[:, 40:] = (20, 200, 20)  # green right half
    dets = _dets([[0, 0, 20, 20], [50, 10, 70, 30]], [0.9, 0.8])
    out = P.ClassifierGate(Redness(), threshold=0.5, crop_size=8)(image, dets)
    np.testing.assert_array_equal(out["boxes"], dets["boxes"][:1])
    out = P.SignClassifier(Redness(), crop_size=8)(image, dets)
    np.testing.assert_array_equal(out["labels"], [1, 0])
    # both crops are classified with near certainty, so the scores stay the detector scores
    np.testing.assert_allclose(out["scores"], [0.9, 0.8], rtol=1e-3)


def test_cli_train_eval_predict(tmp_path, capsys):
    from minidl.cli import main

    out = str(tmp_path / "run")
    common = ["--n-val", "2", "--image-size", "128x96", "--draw", "1"]
    assert main(["detect", "train", "--n-train", "2", "--epochs", "1", "--batch-size", "2", "--out", out,
                 *common]) == 0
    text = capsys.readouterr().out
    assert "mAP@0.5" in text and os.path.isfile(os.path.join(out, "detector.safetensors"))
    assert main(["detect", "eval", "--checkpoint", out, "--ablation", "--box-score-thresh", "0.01", *common]) == 0
    text = capsys.readouterr().out
    assert "| without nms |" in text and "AP" in text and os.path.isfile(os.path.join(out, "eval", "det_000.png"))
    from PIL import Image

    image = SyntheticScenes(1, seed=5, config=SceneConfig(128, 96, max_size=33))[0][0]
    Image.fromarray(image).save(tmp_path / "scene.png")
    assert main(["detect", "predict", "--checkpoint", out, str(tmp_path / "scene.png"), "--out-dir",
                 str(tmp_path / "pred")]) == 0
    assert os.path.isfile(tmp_path / "pred" / "scene_det.png")
    assert main(["detect", "eval", "--checkpoint", str(tmp_path / "none")]) == 2


def test_sign_classifier_rescore_mode():
    import minidl
    from minidl import nn

    class Fixed(nn.Module):
        """Always p = (0.2, 0.8) over two classes."""

        def forward(self, x):
            logits = np.log(np.array([[0.2, 0.8]], np.float32)).repeat(x.shape[0], axis=0)
            return minidl.tensor(logits)

    image = np.zeros((20, 20, 3), np.uint8)
    dets = _dets([[0, 0, 10, 10], [5, 5, 15, 15]], [1.0, 0.5], [0, 1])
    out = P.SignClassifier(Fixed(), mode="rescore", crop_size=4)(image, dets)
    np.testing.assert_array_equal(out["labels"], [0, 1])
    np.testing.assert_allclose(out["scores"], [0.2, 0.4], rtol=1e-5)
    out = P.SignClassifier(Fixed(), mode="relabel", threshold=0.5, crop_size=4)(image, dets)
    np.testing.assert_array_equal(out["labels"], [1, 1])
    with pytest.raises(ValueError, match="mode"):
        P.SignClassifier(Fixed(), mode="vote")


def test_recalibrate_batchnorm_gives_the_data_statistics():
    import minidl
    from minidl import nn
    from minidl.detection.engine import recalibrate_batchnorm
    from minidl.models.detection.faster_rcnn import images_to_tensor

    minidl.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 1), nn.BatchNorm2d(4))
    crops = np.random.default_rng(0).integers(0, 256, (10, 6, 6, 3)).astype(np.uint8)
    recalibrate_batchnorm(net, crops, batch_size=5)
    with minidl.no_grad():
        y = net[0](images_to_tensor(list(crops))).numpy()  # (10, 4, 6, 6)
    bn = net[1]
    # cumulative average of the two batches' means = the overall mean (equal batch sizes)
    np.testing.assert_allclose(bn.running_mean.numpy(), y.mean(axis=(0, 2, 3)), rtol=1e-4, atol=1e-5)
    assert bn.momentum == 0.1 and not net.training


def test_sign_classifier_from_gtsrb_crops(tmp_path, capsys):
    """`--sign-crops` trains the sign classifier on GTSRB's ROI crops (files in the published format)."""
    from test_datasets import make_gtsrb

    from minidl.cli import main
    from minidl.detection.engine import gtsrb_crops

    make_gtsrb(str(tmp_path / "gtsrb"))
    crops, labels = gtsrb_crops(str(tmp_path / "gtsrb"), crop_size=16)
    assert crops.shape == (6, 16, 16, 3) and crops.dtype == np.uint8
    assert sorted(labels.tolist()) == [0, 0, 1, 1, 5, 5]
    # the synthetic scenes have 6 classes and GTSRB's crops use class 5 at most: they fit
    out = str(tmp_path / "run")
    assert main(["detect", "train", "--n-train", "2", "--n-val", "1", "--image-size", "128x96", "--epochs", "1",
                 "--batch-size", "2", "--draw", "0", "--sign-classifier", "--classifier-epochs", "1",
                 "--sign-crops", str(tmp_path / "gtsrb"), "--out", out]) == 0
    assert "on 6 crops" in capsys.readouterr().out
