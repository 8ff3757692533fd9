"""``minidl detect ... --preset seed`` (the seed's final traffic-sign configuration), the MobileNet v2
widths 0.5 and 0.7 against Keras' rounding, the gate's IoU-0.6 balanced crops, Adamax for the sign
classifier, and ``minidl detect heatmap`` (issue 17, point 7), on synthetic scenes and small GTSDB trees.
"""
import json
import os

import numpy as np
import pytest
from PIL import Image

from minidl import models
from minidl.cli import build_parser, main
from minidl.datasets import SceneConfig, SyntheticScenes
from minidl.detection import engine
from minidl.detection.heatmap import boxes_dropped, sign_heatmap
from minidl.detection.pipeline import PositionFilter
from minidl.detection.presets import GTSDB_TRIANGLE, seed_preset
from minidl.models._utils import make_divisible

_SETTING = [[1, 16, 1, 1], [6, 24, 2, 2], [6, 32, 3, 2], [6, 64, 4, 2], [6, 96, 3, 1], [6, 160, 3, 2],
            [6, 320, 1, 1]]


def _keras_channels(alpha):
    """Keras' MobileNetV2: stem _make_divisible(32 alpha, 8), each stage _make_divisible(int(c alpha), 8)."""
    return [make_divisible(32 * alpha, 8)] + [make_divisible(int(c * alpha), 8) for _, c, _, _ in _SETTING]


def _torchvision_channels(alpha):
    return [make_divisible(32 * alpha, 8)] + [make_divisible(c * alpha, 8) for _, c, _, _ in _SETTING]


def _model_channels(model):
    stem = model.features[0][0].out_channels
    ends = [block.conv[-2].out_channels for block in list(model.features)[1:-1]]
    stages = [ends[sum(n for _, _, n, _ in _SETTING[:i + 1]) - 1] for i in range(len(_SETTING))]
    return [stem] + stages


def test_seed_preset_values():
    p = seed_preset()
    assert (p.anchor_sizes, p.anchor_ratios) == ((32, 62, 112, 212, 252), (0.8, 1.0, 1.2))
    assert (p.rpn_pre_nms_top_n[1], p.rpn_post_nms_top_n[1], p.rpn_nms_thresh) == (10000, 1500, 0.7)
    assert (p.min_side, p.max_side, p.y_min, p.y_max, p.nms_iou, p.top_k) == (16, 130, 85, 470, 0.3, 6)
    assert (p.gate_width, p.sign_width, p.sign_optimizer, p.gate_negative_iou, p.gate_balance) == \
        (0.5, 0.7, "adamax", 0.6, True)
    assert {p.gate_threshold, p.sign_threshold} == {0.999999, 0.93} and p.frame == (1360, 800)
    text = "\n".join(p.lines())
    for value in ("10000", "1500", "0.999999", "0.93", "x0.7", "Adamax", "IoU < 0.6", "16 to 130", "y=85", "y=470"):
        assert value in text
    # the triangle filter on a 1360x800 frame: a sign on the roadside stays, a box on the road goes
    flt = PositionFilter(p.polygons, min_corners=2, y_min=p.y_min, y_max=p.y_max)
    boxes = np.array([[1100, 250, 1140, 290], [660, 440, 700, 470], [600, 40, 640, 80], [200, 480, 240, 520]],
                     np.float32)
    kept = flt(None, {"boxes": boxes, "scores": np.ones(4), "labels": np.zeros(4, np.int64)})
    np.testing.assert_array_equal(kept["boxes"], boxes[:1])
    scenes = seed_preset(SceneConfig(256, 160))
    assert scenes.anchor_sizes == (16, 24, 36, 54) and scenes.y_min is None and scenes.rpn_pre_nms_top_n[1] == 10000
    assert len(scenes.polygons) == 2 and "adapted" in scenes.lines()[-1]


def test_mobilenet_v2_widths_are_keras_exact():
    for alpha, params in ((0.5, 1_968_680), (0.7, 2_481_384), (1.0, 3_504_872)):
        model = models.mobilenet_v2(width_mult=alpha)
        assert _model_channels(model) == _keras_channels(alpha) == _torchvision_channels(alpha)
        buffers = sum(b.numel() for name, b in model.named_buffers() if "running" in name)
        assert model.num_parameters() == params  # Keras' trainable count
        if alpha == 1.0:
            assert params + buffers == 3_538_984  # Keras' count_params(): moving mean and variance added
    assert _model_channels(models.mobilenet_v2(width_mult=0.7))[1:4] == [16, 16, 24]
    # the two rules do differ at other widths (Keras truncates c * alpha before the 10%-floor test)
    assert any(_keras_channels(a) != _torchvision_channels(a) for a in (0.14, 0.56, 0.84))


def test_gate_crops_iou_0_6_and_balanced():
    scenes = SyntheticScenes(3, seed=2, config=SceneConfig(128, 96, max_size=33))
    dets = []
    for i in range(len(scenes)):
        gt = scenes[i][1]["boxes"]
        w = gt[:, 2:3] - gt[:, 0:1]
        shifted = gt + np.concatenate([w * 0.25, 0 * w, w * 0.25, 0 * w], axis=1)  # IoU 0.6 with its sign
        slightly = gt + np.concatenate([w * 0.4, 0 * w, w * 0.4, 0 * w], axis=1)  # IoU 0.43
        dets.append({"boxes": np.concatenate([gt, shifted, slightly]).astype(np.float32)})
    n_signs = sum(len(scenes[i][1]["boxes"]) for i in range(len(scenes)))
    _, old = engine.crop_dataset(scenes, "gate", detections=dets, seed=0, negatives_per_image=100)
    _, new = engine.crop_dataset(scenes, "gate", detections=dets, seed=0, negatives_per_image=100,
                                 negative_iou=0.6, positive_iou=0.6)
    assert (old == 1).sum() == n_signs  # default: detector boxes only ever negatives (IoU < 0.3: none here)
    assert (new == 1).sum() == 3 * n_signs  # the true box and the IoU-0.6 box count as signs
    assert (new == 0).sum() - (old == 0).sum() == n_signs  # the IoU-0.43 boxes become background
    crops, balanced = engine.crop_dataset(scenes, "gate", detections=dets, seed=0, negatives_per_image=100,
                                          negative_iou=0.6, positive_iou=0.6, balance=True)
    counts = np.bincount(balanced)
    assert counts[0] == counts[1] == max(np.bincount(new)) and len(crops) == len(balanced)


def test_sign_classifier_trains_with_adamax(monkeypatch):
    steps = []

    class Spy(engine.optim.Adamax):
        def step(self, *args, **kwargs):
            steps.append(self.defaults["lr"])
            return super().step(*args, **kwargs)

    monkeypatch.setattr(engine.optim, "Adamax", Spy)
    net = models.get_model("mobilenet_v2", width_mult=0.7, num_classes=3, dropout=0.0)
    crops = np.random.default_rng(0).integers(0, 255, (8, 32, 32, 3), dtype=np.uint8)
    engine.train_crop_classifier(net, crops, np.arange(8) % 3, epochs=1, batch_size=4, optimizer="adamax",
                                 lr=1e-3, log=None)
    assert steps == [1e-3, 1e-3]
    with pytest.raises(ValueError, match="adamax"):
        engine.train_crop_classifier(net, crops, np.arange(8) % 3, optimizer="sgd", log=None)


def test_explicit_options_win_over_the_preset():
    from minidl.cli.detect import _apply_preset

    args = build_parser().parse_args(["detect", "eval", "--checkpoint", "x", "--preset", "seed",
                                      "--gate-threshold", "0.5"])
    _apply_preset(args, None)
    assert args.gate_threshold == 0.5 and args.sign_threshold == 0.93 and args.top_k == 6
    assert (args.y_min, args.y_max, args.min_side, args.max_side) == (85, 470, 16, 130)
    assert args.rpn_pre_nms_top_n == (2000, 10000) and args.anchor_sizes is None  # anchors: train only


def test_cli_train_and_eval_with_the_seed_preset(tmp_path, capsys):
    out = str(tmp_path / "run")
    common = ["--n-val", "2", "--image-size", "128x96", "--draw", "0"]
    assert main(["detect", "train", "--preset", "seed", "--n-train", "2", "--epochs", "1", "--batch-size", "2",
                 "--classifier-epochs", "1", "--out", out, *common]) == 0
    text = capsys.readouterr().out
    assert "preset seed" in text and "MobileNet v2 x0.7" in text and "negatives at IoU < 0.6" in text
    assert "training the gate classifier (MobileNet v2 x0.5)" in text
    with open(os.path.join(out, "config.json")) as f:
        config = json.load(f)
    assert config["preset"] == "seed" and config["crop_widths"] == {"gate": 0.5, "sign": 0.7}
    assert config["model"]["kwargs"]["rpn_pre_nms_top_n"] == [2000, 10000]
    assert config["model"]["kwargs"]["rpn_post_nms_top_n"] == [2000, 1500]
    assert main(["detect", "eval", "--checkpoint", out, "--preset", "seed", "--ablation", *common]) == 0
    text = capsys.readouterr().out
    for row in ("| full pipeline |", "| without position |", "| without shape |", "| without gate |",
                "| without classifier |", "| without nms |"):
        assert row in text  # the stage-ablation table with the preset's stages


def test_heatmap_counts_boxes():
    heat = sign_heatmap([{"boxes": np.array([[1, 1, 3, 4]])}, {"boxes": np.array([[2, 0, 5, 2], [9, 9, 20, 20]])}],
                        (6, 5))
    expected = np.zeros((5, 6))
    expected[1:4, 1:3] += 1
    expected[0:2, 2:5] += 1
    expected[4:, 5:] += 0  # the third box lies outside the 6x5 frame
    np.testing.assert_array_equal(heat, expected)


def test_cli_heatmap_on_a_gtsdb_tree(tmp_path, capsys):
    root = tmp_path / "gtsdb"
    root.mkdir()
    for name in ("00000.ppm", "00001.ppm"):
        Image.new("RGB", (1360, 800), (90, 90, 90)).save(root / name)
    (root / "gt.txt").write_text("00000.ppm;1100;250;1139;289;14\n"  # a roadside sign: kept
                                 "00001.ppm;660;440;699;469;2\n"  # on the road, in the triangle: dropped
                                 "00001.ppm;300;120;339;159;1\n")
    png = tmp_path / "heat.png"
    assert main(["detect", "heatmap", str(root), "--out", str(png)]) == 0
    text = capsys.readouterr().out
    assert "3 ground-truth boxes in 2 GTSDB 1360x800 frames" in text and "drops 1 of 3" in text
    with Image.open(png) as img:
        assert img.size[0] > 400
    targets = [{"boxes": np.array([[660, 440, 700, 470]], np.float32)}]
    assert boxes_dropped(targets, PositionFilter([GTSDB_TRIANGLE])) == (1, 1)
    assert main(["detect", "heatmap", str(tmp_path / "missing")]) == 2
