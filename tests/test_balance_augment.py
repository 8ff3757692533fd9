"""Point 5 of issue 17: balanced data (WeightedRandomSampler, ``--balance``) and the augmentations
RandomPerspective, RandomErasing, RandomAdjustSharpness and the ``--augment`` presets.

The deterministic parts of the new transforms (perspective with fixed corners, sharpness, erasing
a fixed box) are compared with torchvision.transforms' functional outputs.
"""

import numpy as np
import pytest

from minidl.data import transforms as T
from minidl.data.transforms import functional as F


def _image(h=24, w=32, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


# ------------------------------------------------------------------ the transforms against torchvision
@pytest.mark.parametrize("interp", ["bilinear", "nearest"])
def test_perspective_with_fixed_corners_matches_torchvision(interp):
    pytest.importorskip("torch")
    tv = pytest.importorskip("torchvision.transforms.functional")
    from PIL import Image

    img = _image()
    start = [[0, 0], [31, 0], [31, 23], [0, 23]]
    end = [[3, 2], [29, 1], [30, 20], [5, 22]]
    mode = {"bilinear": tv.InterpolationMode.BILINEAR, "nearest": tv.InterpolationMode.NEAREST}[interp]
    expected = np.asarray(tv.perspective(Image.fromarray(img), start, end, mode, fill=[0, 0, 0]))
    # the same numbers for a PIL image, an HWC uint8 array and a CHW float array (warped in float)
    assert np.array_equal(np.asarray(F.perspective(Image.fromarray(img), start, end, interp)), expected)
    assert np.array_equal(F.perspective(img, start, end, interp), expected)
    warped = F.perspective(F.to_tensor(img), start, end, interp)
    assert np.abs(warped * 255 - expected.transpose(2, 0, 1)).max() <= 1.0
    # the corners moved: the output is not the input, and the fill shows at the top-left corner
    assert not np.array_equal(expected, img) and np.all(expected[0, 0] == 0)


def test_perspective_identity_corners_change_nothing():
    img = _image()
    corners = [[0, 0], [31, 0], [31, 23], [0, 23]]
    assert np.array_equal(F.perspective(img, corners, corners, "nearest"), img)
    assert np.abs(F.perspective(img, corners, corners).astype(int) - img).max() <= 1  # float32 coefficients


@pytest.mark.parametrize("factor", [0.0, 0.5, 2.0])
def test_adjust_sharpness_matches_torchvision_pil_and_tensor(factor):
    torch = pytest.importorskip("torch")
    tv = pytest.importorskip("torchvision.transforms.functional")
    from PIL import Image

    img = _image(seed=1)
    expected_pil = np.asarray(tv.adjust_sharpness(Image.fromarray(img), factor))
    assert np.array_equal(F.adjust_sharpness(img, factor), expected_pil)
    x = F.to_tensor(img)
    expected_t = tv.adjust_sharpness(torch.from_numpy(x.copy()), factor).numpy()
    np.testing.assert_allclose(F.adjust_sharpness(x, factor), expected_t, atol=1e-6)


def test_adjust_sharpness_by_hand():
    """A single bright pixel: the smoothing spreads 1/13 to each neighbour and keeps 5/13."""
    x = np.zeros((1, 5, 5), np.float32)
    x[0, 2, 2] = 1.0
    blurred = F.adjust_sharpness(x, 0.0)
    assert blurred[0, 2, 2] == pytest.approx(5 / 13) and blurred[0, 1, 1] == pytest.approx(1 / 13)
    assert blurred[0, 0].sum() == 0  # border rows keep the input
    sharp = F.adjust_sharpness(x, 2.0)  # 2 x - blurred, clipped to [0, 1]
    assert sharp[0, 2, 2] == pytest.approx(1.0) and sharp[0, 1, 1] == 0.0


def test_erase_fixed_box_matches_torchvision():
    torch = pytest.importorskip("torch")
    tv = pytest.importorskip("torchvision.transforms.functional")
    x = F.to_tensor(_image())
    v = np.array([0.1, 0.5, 0.9], np.float32)[:, None, None]
    expected = tv.erase(torch.from_numpy(x.copy()), 3, 5, 7, 9, torch.from_numpy(v)).numpy()
    out = F.erase(x, 3, 5, 7, 9, v)
    assert np.array_equal(out, expected)
    assert not np.array_equal(out, x) and np.array_equal(F.to_tensor(_image()), x)  # not in place


def test_random_erasing_box_and_value():
    x = np.ones((3, 40, 40), np.float32)
    with T.use_rng(np.random.default_rng(0)):
        out = T.RandomErasing(p=1.0, scale=(0.1, 0.1), ratio=(1.0, 1.0), value=(0.2, 0.4, 0.6))(x)
    box = np.argwhere(out[0] != 1.0)
    (top, left), (bottom, right) = box.min(axis=0), box.max(axis=0)
    h, w = bottom - top + 1, right - left + 1
    assert h == w == round(np.sqrt(0.1 * 1600)) and len(box) == h * w  # a 13x13 square
    assert np.allclose(out[:, top, left], [0.2, 0.4, 0.6])
    with T.use_rng(np.random.default_rng(0)):
        assert T.RandomErasing(p=0.0)(x) is x
    with pytest.raises(ValueError, match="one number or 3"):
        T.RandomErasing(p=1.0, value=(0.1, 0.2))(x)
    with pytest.raises(TypeError, match="after ToTensor"):
        T.RandomErasing(p=1.0)(_image())


def test_random_perspective_corners_stay_in_torchvision_ranges():
    rng = np.random.default_rng(0)
    for _ in range(50):
        start, end = T.RandomPerspective.get_params(32, 24, 0.5, rng)
        assert start == [[0, 0], [31, 0], [31, 23], [0, 23]]
        (tlx, tly), (trx, try_), (brx, bry), (blx, bly) = end
        assert 0 <= tlx <= 8 and 0 <= tly <= 6 and 23 <= trx <= 31 and 17 <= bry <= 23 and 0 <= blx <= 8
    out = T.RandomPerspective(distortion_scale=0.5, p=1.0)(F.to_tensor(_image()))
    assert out.shape == (3, 24, 32) and out.dtype == np.float32


def test_random_adjust_sharpness_probability():
    x = F.to_tensor(_image())
    with T.use_rng(np.random.default_rng(0)):
        assert T.RandomAdjustSharpness(2.0, p=0.0)(x) is x
        assert not np.array_equal(T.RandomAdjustSharpness(2.0, p=1.0)(x), x)


# ------------------------------------------------------------------ balancing
def test_balanced_sampler_draws_classes_equally():
    from minidl.data.balance import balanced_sampler, class_counts, sample_weights
    from minidl.utils.data import WeightedRandomSampler

    targets = np.array([0] * 90 + [1] * 10)
    assert class_counts(targets).tolist() == [90, 10]
    np.testing.assert_allclose(sample_weights(targets, [90, 10])[[0, 95]], [1 / 90, 1 / 10])
    sampler = balanced_sampler(targets, num_samples=4000, generator=np.random.default_rng(0))
    assert isinstance(sampler, WeightedRandomSampler) and len(sampler) == 4000
    drawn = targets[np.fromiter(sampler, int)]
    assert abs(drawn.mean() - 0.5) < 0.03  # class 1 is 10% of the data, half of the draws


def test_loss_weights_match_sklearn_balanced():
    utils = pytest.importorskip("sklearn.utils")
    from minidl.data.balance import class_counts, loss_weights

    targets = np.array([0] * 30 + [1] * 6 + [2] * 12)
    expected = utils.compute_class_weight("balanced", classes=np.arange(3), y=targets)
    np.testing.assert_allclose(loss_weights(class_counts(targets)), expected)
    assert loss_weights([4, 0, 4]).tolist() == [1.0, 0.0, 1.0]  # an empty class weighs nothing


def _imbalanced_folder(root, counts=(30, 6)):
    from PIL import Image

    rng = np.random.default_rng(0)
    for name, n, colour in zip(("many", "few"), counts, ((200, 60, 60), (60, 60, 200))):
        (root / name).mkdir(parents=True)
        for k in range(n):
            pixels = np.clip(np.array(colour) + rng.integers(-50, 51, (8, 8, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(root / name / f"{k}.png")
    return str(root)


def test_train_balance_sampler_and_loss(tmp_path, capsys, monkeypatch):
    from minidl.cli import main
    from minidl.data import WeightedRandomSampler
    from minidl.train import Trainer

    data = _imbalanced_folder(tmp_path / "folder")
    seen = {}
    original = Trainer.fit

    def recording_fit(self, loader, *args, **kwargs):
        seen["sampler"], seen["loss_fn"] = loader.sampler, self.loss_fn
        seen["labels"] = np.concatenate([y.numpy() for _ in range(20) for _, y in loader])
        return original(self, loader, *args, **kwargs)

    monkeypatch.setattr(Trainer, "fit", recording_fit)
    common = ["train", "mlp", "--dataset", data, "--epochs", "1", "--val-split", "0", "--quiet"]
    assert main([*common, "--balance", "sampler"]) == 0
    out = capsys.readouterr().out
    # the training split: 4/5 of each class (the rest is held out for testing)
    assert "class counts: few: 5, many: 24 (min 5, max 24, max/min 4.8)" in out
    assert isinstance(seen["sampler"], WeightedRandomSampler) and seen["loss_fn"] is None
    assert abs(seen["labels"].mean() - 0.5) < 0.06  # "few" (label 0) drawn as often as "many"

    assert main([*common, "--balance", "loss"]) == 0
    out = capsys.readouterr().out
    assert "balance: cross-entropy class weights 2.9, 0.604" in out  # 29 / (2 * 5), 29 / (2 * 24)
    assert seen["sampler"] is None and seen["loss_fn"] is not None
    assert abs(seen["labels"].mean() - 24 / 29) < 1e-9  # the data as they are
    from minidl import Tensor
    from minidl.nn import functional as F

    logits, target = Tensor(np.array([[2.0, 0.0], [0.0, 1.0]], np.float32)), Tensor(np.array([0, 1]))
    expected = F.cross_entropy(logits, target, weight=Tensor(np.array([2.9, 29 / 48], np.float32)))
    assert float(seen["loss_fn"](logits, target).item()) == pytest.approx(float(expected.item()), rel=1e-5)


# ------------------------------------------------------------------ --augment presets and lists
def test_augment_comma_list_builds_the_transforms():
    from minidl.data.augment import parse_augment

    aug = parse_augment("flip,rotate=15,zoom=0.1,perspective=0.2,color=0.2")
    assert aug.flip == 0.5
    affine, persp, jitter = aug.steps
    assert affine.degrees == (-15.0, 15.0) and affine.scale == (0.9, 1.1) and affine.translate is None
    assert isinstance(persp, T.RandomPerspective) and persp.distortion_scale == 0.2 and persp.p == 0.5
    assert jitter.brightness == (0.8, 1.2) and jitter.contrast == (0.8, 1.2) and jitter.saturation == (0.8, 1.2)
    assert parse_augment("color=0.2", channels=1).steps[0].saturation is None  # grey images: no saturation


def test_augment_presets_and_the_former_plain_augment():
    from minidl.data.augment import PRESETS, parse_augment

    assert set(PRESETS) == {"light", "standard", "xray", "signs"}
    # `standard` is what the plain --augment did: RandomAffine(10, (0.1, 0.1), (0.9, 1.1)), flips for RGB only
    std = parse_augment("standard")
    (affine,) = std.steps
    assert affine.degrees == (-10.0, 10.0) and affine.translate == (0.1, 0.1) and affine.scale == (0.9, 1.1)
    assert std.flip == 0.5 and parse_augment("standard", channels=1).flip == 0.0
    signs = parse_augment("signs")
    kinds = [type(t).__name__ for t in signs.steps]
    assert kinds == ["RandomAffine", "RandomPerspective", "ColorJitter", "RandomAdjustSharpness", "RandomErasing"]
    # the signs preset flips only through a flip map: without one it says so and wraps nothing
    assert signs.describe(None)[0] == "no horizontal flip (the dataset declares no flip map)"
    sentinel = object()
    assert signs.wrap(sentinel, None) is sentinel
    for name in PRESETS:  # every preset says what it does, one line per step
        assert len(parse_augment(name).describe()) >= 1


def test_augment_unknown_item_names_it_and_lists_the_valid_ones(capsys):
    from minidl.cli import main
    from minidl.data.augment import parse_augment

    with pytest.raises(ValueError) as err:
        parse_augment("flip,warp=0.2")
    message = str(err.value)
    assert "unknown item 'warp'" in message and "perspective[=0.2]" in message and "signs" in message
    with pytest.raises(ValueError, match="zoom=1.5 is out of range"):
        parse_augment("zoom=1.5")
    with pytest.raises(ValueError, match="rotate='ten' is not a number"):
        parse_augment("rotate=ten")
    assert main(["train", "mlp", "--epochs", "1", "--augment", "flip,warp=0.2", "--quiet"]) == 2
    assert "unknown item 'warp'" in capsys.readouterr().err


def test_train_prints_the_augmentation(capsys):
    from minidl.cli import main

    assert main(["train", "mlp", "--epochs", "1", "--augment", "rotate=15,zoom=0.1,erase=0.5", "--quiet"]) == 0
    out = capsys.readouterr().out
    line = next(s for s in out.splitlines() if s.startswith("augment "))
    assert "RandomAffine(degrees=(-15.0, 15.0)" in line and "scale=(0.9, 1.1)" in line
    assert "RandomErasing(p=0.5" in line and "flip" not in line


def test_augment_of_older_checkpoints_and_recipes_is_the_standard_preset():
    """A checkpoint or recipe written before the presets stores ``augment: True``."""
    from minidl.cli.train import _augmentation_plan

    assert _augmentation_plan(True, 3).name == "standard"
    assert _augmentation_plan(None, 3) is None and _augmentation_plan(False, 3) is None
    assert _augmentation_plan("none", 3) is None
