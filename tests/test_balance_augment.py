"""Point 5 of issue 17: balanced data (WeightedRandomSampler, ``--balance``) and the augmentations
RandomPerspective, RandomErasing, RandomAdjustSharpness and the ``--augment`` presets.

The deterministic parts of the new transforms (perspective with fixed corners, sharpness, erasing
a fixed box) are compared with torchvision.transforms' functional outputs.
"""
import re

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
