"""Honest splits: a class folder without a test split is split by seed, never evaluated on its
training images; ImageFolder ignores hidden names and does not follow symlink loops."""
import os
import re

import numpy as np
import pytest
from PIL import Image

from minidl.cli import main
from minidl.datasets import DatasetSplit, ImageFolder, get_dataset, split_dataset
from minidl.train import read_trainer_metadata


def _folder(root, classes, per_class):
    rng = np.random.default_rng(0)
    for k, name in enumerate(classes):
        os.makedirs(root / name, exist_ok=True)
        for i in range(per_class):
            pixels = np.full((10, 12, 3), (40 + 150 * k) % 220, np.uint8) + rng.integers(0, 30, (10, 12, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / name / f"{i}.png")


def test_plain_class_folder_is_split_into_disjoint_seeded_train_and_test(tmp_path):
    _folder(tmp_path, ["cat", "dog", "emu"], 10)
    train = get_dataset(tmp_path, train=True, seed=3)
    test = get_dataset(tmp_path, train=False, seed=3)
    assert isinstance(train, DatasetSplit) and isinstance(test, DatasetSplit)
    assert len(train) == 24 and len(test) == 6  # 0.2 of each class by default
    train_paths = {p for p, _ in train.samples}
    test_paths = {p for p, _ in test.samples}
    assert not train_paths & test_paths and len(train_paths | test_paths) == 30
    assert sorted(test.targets) == [0, 0, 1, 1, 2, 2]  # stratified: every class in the test split
    assert test.classes == ["cat", "dog", "emu"] and test[0][1] == test.targets[0]
    # the same seed gives the same split, another seed another one
    assert get_dataset(tmp_path, train=False, seed=3).samples == test.samples
    assert get_dataset(tmp_path, train=False, seed=4).samples != test.samples
    assert len(get_dataset(tmp_path, train=False, test_split=0.5)) == 15
    # test_split=0: no split, the whole folder (for a model trained on other data)
    assert isinstance(get_dataset(tmp_path, train=False, test_split=0), ImageFolder)


def test_folder_with_train_and_test_subfolders_uses_them_as_the_splits(tmp_path):
    _folder(tmp_path / "train", ["a", "b"], 3)
    _folder(tmp_path / "val", ["a", "b"], 2)
    train, test = get_dataset(tmp_path, train=True), get_dataset(tmp_path, train=False)
    assert isinstance(train, ImageFolder) and len(train) == 6 and train.root.endswith("train")
    assert isinstance(test, ImageFolder) and len(test) == 4 and test.root.endswith("val")


def test_split_dataset_refuses_a_fraction_outside_0_1_and_too_few_images(tmp_path):
    _folder(tmp_path, ["a", "b"], 1)
    folder = ImageFolder(tmp_path)
    with pytest.raises(ValueError, match="test_fraction"):
        split_dataset(folder, 1.0)
    with pytest.raises(ValueError, match="too few"):
        split_dataset(folder, 0.2)  # one image per class: nothing can be held out


def test_image_folder_ignores_hidden_folders_and_files(tmp_path):
    _folder(tmp_path, ["cat", "dog"], 2)
    _folder(tmp_path, [".ipynb_checkpoints"], 2)  # would be a third class
    _folder(tmp_path / "cat", [".cache"], 3)  # hidden folder inside a class
    Image.new("RGB", (4, 4)).save(tmp_path / "dog" / "._0.png")  # macOS resource fork
    ds = ImageFolder(tmp_path)
    assert ds.classes == ["cat", "dog"] and len(ds) == 4
    assert all("/." not in p for p, _ in ds.samples)


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="needs symbolic links")
def test_image_folder_does_not_follow_symlink_loops_but_follows_links_out(tmp_path):
    root = tmp_path / "data"
    _folder(root, ["cat"], 2)
    _folder(tmp_path / "elsewhere", ["dog"], 3)
    os.symlink(tmp_path / "elsewhere" / "dog", root / "dog")  # a class folder linked from outside: read
    os.symlink(root / "cat", root / "cat" / "loop")  # a loop back to the class folder
    os.symlink(root, root / "dog" / "up")  # a loop to the root through the linked folder
    ds = ImageFolder(root)
    assert ds.classes == ["cat", "dog"]
    assert sorted(ds.targets) == [0, 0, 1, 1, 1]  # each image once


ACCURACY = re.compile(r"test accuracy: ([\d.]+)% \((\d+) images\)")


def test_cli_train_on_a_plain_folder_prints_the_split_and_tests_only_held_out_images(tmp_path, capsys):
    _folder(tmp_path / "data", ["cat", "dog"], 10)
    rc = main(["train", "mlp", "--dataset", str(tmp_path / "data"), "--epochs", "1", "--quiet",
               "--val-split", "0.25", "--test-split", "0.3", "--seed", "5", "--batch-size", "4",
               "--checkpoint", str(tmp_path / "ck")])
    out = capsys.readouterr().out
    assert rc == 0
    assert "split its 20 images (seed 5) into 14 for training and validation and 6 held out for testing" in out
    assert ACCURACY.search(out).group(2) == "6"  # never the 20 images it trained on
    config = read_trainer_metadata(tmp_path / "ck" / "last.npz")["config"]
    assert config["test_split"] == 0.3 and config["seed"] == 5
    # evaluate finds the same held-out images from the checkpoint's record
    ck = str(tmp_path / "ck" / "last.npz")
    rc = main(["evaluate", "mlp", "--dataset", str(tmp_path / "data") + os.sep, "--checkpoint", ck, "--quiet"])
    assert rc == 0 and "(6 images)" in capsys.readouterr().out
    # a folder it was not trained on is a test set as a whole
    _folder(tmp_path / "other", ["cat", "dog"], 4)
    rc = main(["evaluate", "mlp", "--dataset", str(tmp_path / "other"), "--checkpoint", ck, "--quiet"])
    assert rc == 0 and "(8 images)" in capsys.readouterr().out


def test_cli_refuses_a_test_split_outside_0_1(tmp_path, capsys):
    _folder(tmp_path / "data", ["cat", "dog"], 4)
    rc = main(["train", "mlp", "--dataset", str(tmp_path / "data"), "--test-split", "1.5", "--quiet"])
    assert rc == 2 and "--test-split must be in (0, 1)" in capsys.readouterr().err
