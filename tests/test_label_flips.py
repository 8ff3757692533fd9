"""Point 6 of issue 17: label-aware flips.

A mirrored left-turn sign is a right-turn sign, a mirrored stop sign is no sign at all. GTSRB (and
GTSDB, which shares its classes) declares a flip map, and every flip uses it: the classifier's flip
of ``minidl train --augment`` (through the real CLI on a GTSRB tree written in its published
format), the crop classifiers and the detector's joint image/box flip.
"""
import csv
import os

import numpy as np
import pytest
from PIL import Image, ImageDraw

from minidl.cli import main
from minidl.data import transforms as T
from minidl.data.flips import FlipLabels, LabelAwareHorizontalFlip, check_flip_map, find_flip_map, flip_labels
from minidl.datasets import GTSDB, GTSRB, SyntheticScenes
from minidl.datasets.gtsrb import GTSRB_CLASS_NAMES, GTSRB_FLIP_MAP
from minidl.detection.transforms import RandomHorizontalFlip

TURN_RIGHT, TURN_LEFT, STOP, YIELD = 33, 34, 14, 13
GT_HEADER = ["Filename", "Width", "Height", "Roi.X1", "Roi.Y1", "Roi.X2", "Roi.Y2", "ClassId"]


def _sign(class_id, size=32, seed=0):
    """A small drawing of the sign: blue disc and an arrow pointing left (turn left), a red octagon
    with a bar (stop), a red-bordered triangle pointing down (yield); pixel noise from ``seed``."""
    img = Image.new("RGB", (size, size), (90, 120, 90))
    d = ImageDraw.Draw(img)
    if class_id == TURN_LEFT:
        d.ellipse([2, 2, size - 3, size - 3], fill=(20, 70, 180))
        d.line([(22, 20), (22, 12), (10, 12)], fill=(245, 245, 240), width=3)
        d.polygon([(6, 12), (12, 7), (12, 17)], fill=(245, 245, 240))  # the head, on the left
    elif class_id == STOP:
        d.regular_polygon((size / 2, size / 2, size / 2 - 2), 8, rotation=22.5, fill=(200, 20, 30))
        d.rectangle([6, 14, 20, 18], fill=(245, 245, 240))  # lettering, off-centre
    elif class_id == YIELD:
        d.polygon([(2, 3), (size - 3, 3), (size / 2, size - 3)], fill=(200, 20, 30))
    noise = np.random.default_rng(seed).integers(-20, 21, (size, size, 3))
    return np.clip(np.asarray(img).astype(int) + noise, 0, 255).astype(np.uint8)


def _write_gtsrb(root, classes=(TURN_LEFT, STOP, YIELD), per_class=2):
    train = os.path.join(root, "GTSRB", "Final_Training", "Images")
    for class_id in classes:
        folder = os.path.join(train, f"{class_id:05d}")
        os.makedirs(folder)
        rows = []
        for k in range(per_class):
            name = f"00000_{k:05d}.ppm"
            Image.fromarray(_sign(class_id, seed=k)).save(os.path.join(folder, name))
            rows.append([name, 32, 32, 2, 2, 30, 30, class_id])
        with open(os.path.join(folder, f"GT-{class_id:05d}.csv"), "w", newline="") as f:
            csv.writer(f, delimiter=";").writerows([GT_HEADER, *rows])
    test = os.path.join(root, "GTSRB", "Final_Test", "Images")
    os.makedirs(test)
    rows = []
    for k, class_id in enumerate(classes):
        name = f"{k:05d}.ppm"
        Image.fromarray(_sign(class_id, seed=10 + k)).save(os.path.join(test, name))
        rows.append([name, 32, 32, 2, 2, 30, 30, class_id])
    with open(os.path.join(root, "GT-final_test.csv"), "w", newline="") as f:
        csv.writer(f, delimiter=";").writerows([GT_HEADER, *rows])


# ------------------------------------------------------------------ the table
def test_gtsrb_flip_map_table():
    table = check_flip_map(GTSRB_FLIP_MAP, 43)  # one entry per class, every swap mutual
    assert len(GTSRB_CLASS_NAMES) == 43 and GTSRB.flip_map == table
    for a, b in ((19, 20), (33, 34), (36, 37), (38, 39)):
        assert table[a] == b and table[b] == a, (GTSRB_CLASS_NAMES[a], GTSRB_CLASS_NAMES[b])
    assert GTSRB_CLASS_NAMES[TURN_LEFT] == "turn left ahead" and GTSRB_CLASS_NAMES[TURN_RIGHT] == "turn right ahead"
    # digits, text and one-way pictograms are never flipped; symmetric signs keep their class
    for c in (0, 1, 2, 3, 4, 5, 6, 7, 8, STOP, 9, 16, 21, 23, 25, 27, 31, 40):
        assert table[c] is None, GTSRB_CLASS_NAMES[c]
    for c in (YIELD, 12, 15, 17, 18, 35):
        assert table[c] == c, GTSRB_CLASS_NAMES[c]
    assert sum(m is None for m in table) == 25 and sum(m == c for c, m in enumerate(table)) == 10


def test_check_flip_map_refuses_one_way_pairs():
    with pytest.raises(ValueError, match=r"flip_map\[0\] = 1 but flip_map\[1\] = 1"):
        check_flip_map([1, 1])
    with pytest.raises(ValueError, match="expected 3 entries"):
        check_flip_map([0, 1], num_classes=3)
    flippable, mirrored = flip_labels([1, 0, None], [0, 2, 1, 2])
    assert flippable.tolist() == [True, False, True, False] and mirrored.tolist() == [1, 2, 0, 2]


# ------------------------------------------------------------------ the classifier's flip
def test_left_turn_sign_flipped_is_a_right_turn_sign(tmp_path):
    _write_gtsrb(str(tmp_path))
    ds = GTSRB(tmp_path, transform=T.ToTensor())
    flipped = FlipLabels(ds, find_flip_map(ds), p=1.0)  # always flip where allowed
    for i in range(len(ds)):
        image, label = ds[i]
        out, new_label = flipped[i]
        if label == TURN_LEFT:  # the arrow now points right, and the label says so
            assert new_label == TURN_RIGHT
            assert np.array_equal(out, image[:, :, ::-1]) and not np.array_equal(out, image)
        elif label == STOP:     # never flipped: the lettering would read backwards
            assert new_label == STOP and np.array_equal(out, image)
        else:                   # a yield sign is symmetric: flipped, same class
            assert label == new_label == YIELD and np.array_equal(out, image[:, :, ::-1])


def test_not_flippable_is_never_flipped_and_draws_are_per_sample():
    flip = LabelAwareHorizontalFlip(GTSRB_FLIP_MAP, p=0.5)
    img = _sign(STOP)
    rng = np.random.default_rng(0)
    with T.use_rng(rng):
        outs = [flip(img, STOP) for _ in range(50)]
        turns = [flip(_sign(TURN_LEFT), TURN_LEFT)[1] for _ in range(200)]
    assert all(label == STOP and np.array_equal(out, img) for out, label in outs)
    assert 70 < turns.count(TURN_RIGHT) < 130 and set(turns) == {TURN_LEFT, TURN_RIGHT}


def test_train_augment_flips_through_the_flip_map(tmp_path, capsys, monkeypatch):
    """``minidl train --augment flip=1`` on GTSRB: the batches the model sees hold right-turn signs
    where the files hold left-turn ones, and the stop signs unflipped."""
    from minidl.train import Trainer

    _write_gtsrb(str(tmp_path))
    plain = GTSRB(tmp_path, transform=T.Compose([T.Resize((32, 32)), T.ToTensor()]))
    seen = []
    original = Trainer.fit

    def recording_fit(self, loader, *args, **kwargs):
        for x, y in loader:
            seen.extend(zip(x.numpy(), y.numpy().tolist()))
        return original(self, loader, *args, **kwargs)

    monkeypatch.setattr(Trainer, "fit", recording_fit)
    rc = main(["train", "mlp", "--dataset", "gtsrb", "--data-root", str(tmp_path), "--epochs", "1",
               "--val-split", "0", "--augment", "flip=1", "--quiet"])
    out = capsys.readouterr().out
    assert rc == 0
    assert "4 mirrored pair(s) swap labels, 10 symmetric class(es) keep theirs, 25 never flipped" in out
    assert sorted(label for _, label in seen) == [YIELD, YIELD, STOP, STOP, TURN_RIGHT, TURN_RIGHT]
    originals = [plain[i] for i in range(len(plain))]
    for x, label in seen:
        source = {TURN_RIGHT: TURN_LEFT}.get(label, label)
        candidates = [img for img, lab in originals if lab == source]
        expected = [img if label == STOP else img[:, :, ::-1] for img in candidates]
        assert any(np.allclose(x, e, atol=1e-6) for e in expected), label


# ------------------------------------------------------------------ the detector and the crop classifiers
def test_detector_flip_relabels_boxes_and_skips_images_with_unflippable_signs():
    image = np.zeros((20, 40, 3), np.uint8)
    image[:, :5] = 255
    target = {"boxes": np.array([[2.0, 3, 10, 12], [20, 1, 30, 9]], np.float32),
              "labels": np.array([TURN_LEFT, YIELD])}
    flip = RandomHorizontalFlip(p=1.0, flip_map=GTSRB_FLIP_MAP)
    out, t = flip(image, target)
    assert t["labels"].tolist() == [TURN_RIGHT, YIELD]
    assert t["boxes"].tolist() == [[30.0, 3, 38, 12], [10, 1, 20, 9]]
    assert np.array_equal(out, image[:, ::-1])
    with_stop = {**target, "labels": np.array([TURN_LEFT, STOP])}
    out, t = flip(image, with_stop)
    assert out is image and t is with_stop  # one sign that may not be mirrored: the image stays
    # without a flip map (the old behaviour) the classes stay
    assert RandomHorizontalFlip(p=1.0)(image, with_stop)[1]["labels"].tolist() == [TURN_LEFT, STOP]


def test_gtsdb_declares_gtsrb_flip_map_and_train_detector_uses_it(tmp_path, monkeypatch):
    from minidl.detection import engine

    Image.fromarray(np.zeros((16, 24, 3), np.uint8)).save(tmp_path / "00000.ppm")
    (tmp_path / "gt.txt").write_text(f"00000.ppm;1;2;8;9;{TURN_LEFT}\n")
    gtsdb = GTSDB(str(tmp_path))
    assert gtsdb.flip_map == GTSRB_FLIP_MAP
    assert find_flip_map(SyntheticScenes(1)) == (0, 1, 2, 3, 4, 5)  # the synthetic families are mirror-invariant

    class Seen(Exception):
        pass

    def fake_loader(data, **kwargs):
        raise Seen(data)

    monkeypatch.setattr(engine, "DataLoader", fake_loader)
    with pytest.raises(Seen) as caught:
        engine.train_detector(None, gtsdb, epochs=1)
    data = caught.value.args[0]
    with T.use_rng(np.random.default_rng(1)):
        labels = {int(data[0][1]["labels"][0]) for _ in range(20)}
    assert data.transforms.flip_map == GTSRB_FLIP_MAP and labels == {TURN_LEFT, TURN_RIGHT}


def test_crop_classifier_flips_follow_the_flip_map(monkeypatch):
    from minidl import nn
    from minidl.detection import engine

    rng = np.random.default_rng(0)
    crops = rng.integers(0, 256, (24, 8, 8, 3), dtype=np.uint8)
    labels = np.array([0, 1, 2] * 8)  # 0 <-> 1 mirror pair, 2 not flippable
    seen_images, seen_targets = [], []
    real_to_tensor, real_ce = engine.images_to_tensor, engine.F.cross_entropy

    def record_images(batch):
        seen_images.append(np.stack(batch))
        return real_to_tensor(batch)

    def record_ce(logits, target):
        seen_targets.append(target.numpy().copy())
        return real_ce(logits, target)

    monkeypatch.setattr(engine, "images_to_tensor", record_images)
    monkeypatch.setattr(engine.F, "cross_entropy", record_ce)
    model = nn.Sequential(nn.Flatten(), nn.Linear(8 * 8 * 3, 3))
    engine.train_crop_classifier(model, crops, labels, epochs=2, batch_size=8, log=None, flip_map=[1, 0, None])
    flipped_pairs = 0
    for images, targets in zip(seen_images, seen_targets):
        for image, target in zip(images, targets):
            k = next(i for i in range(len(crops)) if np.array_equal(crops[i], image)
                     or np.array_equal(crops[i][:, ::-1], image))
            mirrored = not np.array_equal(crops[k], image)
            if labels[k] == 2:
                assert not mirrored and target == 2
            else:
                assert target == (1 - labels[k] if mirrored else labels[k])
                flipped_pairs += mirrored
    assert flipped_pairs > 0
