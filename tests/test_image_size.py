"""``--image-size`` (train, lr-find, evaluate) and the class count of torchvision-style builders."""
import sys
from pathlib import Path

import pytest

from minidl.cli import build_parser, main
from minidl.train import load_model_state, read_trainer_metadata

STUDIES = Path(__file__).resolve().parent.parent / "studies"


@pytest.fixture
def three_classes(tmp_path):
    sys.path.insert(0, str(STUDIES))
    try:
        import make_standins
    finally:
        sys.path.remove(str(STUDIES))
    make_standins.make_xray(str(tmp_path / "xray"), scale=0.02, size=12)
    return tmp_path


def test_image_size_and_num_classes_of_a_kwargs_builder(three_classes, capsys):
    root = three_classes
    ck = root / "run"
    # mobilenet_v2(**kwargs): the head has the folder's 3 classes, not ImageNet's 1000
    assert main(["train", "mobilenet_v2", "--dataset", str(root / "xray"), "--image-size", "20", "--epochs", "1",
                 "--batch-size", "8", "--checkpoint", str(ck)]) == 0
    assert "(3, 20, 20)" in capsys.readouterr().out
    assert read_trainer_metadata(str(ck / "best.npz"))["config"]["input_shape"] == [3, 20, 20]
    assert load_model_state(str(ck / "best.npz"))["classifier.1.weight"].shape[0] == 3
    # evaluate without --image-size takes the checkpoint's side
    args = build_parser().parse_args(["evaluate", "mobilenet_v2", "--dataset", str(root / "xray"), "--quiet",
                                      "--checkpoint", str(ck / "best.npz"), "--top-k", "1,2"])
    assert args.image_size is None
    assert args.handler(args) == 0
    assert args.image_size == 20
    assert "top-2 accuracy" in capsys.readouterr().out


def test_image_size_must_be_positive(three_classes, capsys):
    assert main(["train", "mobilenet_v2", "--dataset", str(three_classes / "xray"), "--image-size", "0"]) == 2
    assert "--image-size must be a positive side" in capsys.readouterr().err
