"""minidl.data.transforms: hand-made cases, Pillow as the reference, determinism under seeds."""

import threading

import numpy as np
import pytest
from PIL import Image, ImageEnhance

import minidl
from minidl.data import transforms as T


def _rgb(h=6, w=8, seed=0):
    return np.random.default_rng(seed).integers(0, 256, size=(h, w, 3), dtype=np.uint8)


def _np(x):
    """NumPy values of an array, a PIL image or a Tensor."""
    if isinstance(x, Image.Image):
        return np.asarray(x)
    if isinstance(x, np.ndarray):
        return x
    return np.asarray(x.numpy())


# ------------------------------------------------------------------ tensors
def test_to_tensor_hwc_uint8_and_pil():
    img = _rgb()
    arr = T.ToTensor()(img)
    assert isinstance(arr, np.ndarray)  # samples stay NumPy; default_collate makes the Tensor
    assert arr.shape == (3, 6, 8) and arr.dtype == np.float32
    np.testing.assert_array_equal(arr, img.transpose(2, 0, 1).astype(np.float32) / 255)
    gray = Image.fromarray(img[..., 0])
    g = T.ToTensor()(gray)
    assert g.shape == (1, 6, 8) and g.min() >= 0 and g.max() <= 1
    np.testing.assert_array_equal(T.ToTensor()(Image.fromarray(img)), arr)
    p = T.PILToTensor()(Image.fromarray(img))
    assert p.dtype == np.uint8
    np.testing.assert_array_equal(p, img.transpose(2, 0, 1))


def test_normalize_values_and_kinds():
    x = np.random.default_rng(0).random((3, 4, 5)).astype(np.float32)
    mean, std = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
    expected = (x - np.array(mean, np.float32)[:, None, None]) / np.array(std, np.float32)[:, None, None]
    out = T.Normalize(mean, std)(x)
    assert isinstance(out, np.ndarray) and out.dtype == np.float32
    np.testing.assert_allclose(out, expected, rtol=1e-6)
    out_t = T.Normalize(mean, std)(minidl.tensor(x))  # a user's Tensor is taken, a NumPy array comes out
    assert isinstance(out_t, np.ndarray)
    np.testing.assert_allclose(out_t, expected, rtol=1e-6)
    # hand case: (0.5 - 0.5) / 0.25 = 0, (1 - 0.5) / 0.25 = 2
    np.testing.assert_allclose(T.Normalize([0.5], [0.25])(np.array([[[0.5, 1.0]]], np.float32)), [[[0.0, 2.0]]])
    with pytest.raises(ValueError, match="std"):
        T.Normalize([0.5], [0.0])
    with pytest.raises(ValueError, match="mean: expected 1 or 3"):
        T.normalize(x, [0.1, 0.2], [1.0, 1.0])
    with pytest.raises(TypeError, match="tensor"):
        T.normalize(_rgb(), mean, std)


# ------------------------------------------------------------------ geometry
def test_flips_on_every_kind():
    img = _rgb()
    np.testing.assert_array_equal(T.RandomHorizontalFlip(p=1.0)(img), img[:, ::-1])
    np.testing.assert_array_equal(T.RandomVerticalFlip(p=1.0)(img), img[::-1])
    np.testing.assert_array_equal(T.RandomHorizontalFlip(p=0.0)(img), img)
    np.testing.assert_array_equal(_np(T.RandomHorizontalFlip(p=1.0)(Image.fromarray(img))), img[:, ::-1])
    chw = img.transpose(2, 0, 1).astype(np.float32)
    np.testing.assert_array_equal(T.hflip(chw), chw[:, :, ::-1])
    np.testing.assert_array_equal(T.vflip(minidl.tensor(chw)), chw[:, ::-1, :])


def test_random_flip_probability_and_seed():
    img = np.arange(4, dtype=np.uint8).reshape(1, 4, 1)
    T.seed(123)
    flips = [T.RandomHorizontalFlip(p=0.3)(img)[0, 0, 0] == 3 for _ in range(2000)]
    assert 0.25 < np.mean(flips) < 0.35
    T.seed(123)
    again = [T.RandomHorizontalFlip(p=0.3)(img)[0, 0, 0] == 3 for _ in range(2000)]
    assert flips == again


def test_center_crop_hand_cases():
    a = np.arange(25, dtype=np.uint8).reshape(5, 5)
    np.testing.assert_array_equal(T.CenterCrop(3)(a), a[1:4, 1:4])
    b = np.arange(16, dtype=np.uint8).reshape(4, 4)
    # top = int(round((4 - 3) / 2)) = round(0.5) = 0 (Python rounds half to even)
    np.testing.assert_array_equal(T.CenterCrop(3)(b), b[0:3, 0:3])
    np.testing.assert_array_equal(T.CenterCrop((2, 4))(b), b[1:3, :])
    # larger than the image: zero padding around it
    big = T.CenterCrop(6)(b)
    assert big.shape == (6, 6)
    np.testing.assert_array_equal(big[1:5, 1:5], b)
    assert big.sum() == b.sum()
    pil = T.CenterCrop(3)(Image.fromarray(a))
    np.testing.assert_array_equal(np.asarray(pil), a[1:4, 1:4])


def test_random_crop_matches_params_and_is_seeded():
    img = _rgb(10, 12)
    crop = T.RandomCrop((4, 5))
    with T.use_rng(np.random.default_rng(7)):
        out = crop(img)
    top, left, h, w = T.RandomCrop.get_params(img, (4, 5), rng=np.random.default_rng(7))
    np.testing.assert_array_equal(out, img[top:top + h, left:left + w])
    with T.use_rng(np.random.default_rng(7)):
        chw = crop(img.transpose(2, 0, 1).astype(np.float32))
    np.testing.assert_array_equal(chw, img[top:top + h, left:left + w].transpose(2, 0, 1))
    # every window position is reachable
    corners = set()
    with T.use_rng(np.random.default_rng(0)):
        for _ in range(400):
            out = T.RandomCrop(2)(np.arange(9, dtype=np.uint8).reshape(3, 3))
            corners.add(int(out[0, 0]))
    assert corners == {0, 1, 3, 4}


@pytest.mark.parametrize("mode", ["constant", "edge", "reflect", "symmetric"])
def test_random_crop_padding_modes(mode):
    img = _rgb(5, 5)
    out = T.RandomCrop(9, padding=2, padding_mode=mode, fill=7)(img)  # crop = the whole padded image
    kwargs = {"constant_values": 7} if mode == "constant" else {}
    np.testing.assert_array_equal(out, np.pad(img, ((2, 2), (2, 2), (0, 0)), mode=mode, **kwargs))
    pil = T.RandomCrop(9, padding=2, padding_mode=mode, fill=7)(Image.fromarray(img))
    assert pil.mode == "RGB"
    np.testing.assert_array_equal(np.asarray(pil), out)


def test_random_crop_pad_if_needed_and_too_large():
    img = np.ones((3, 4), np.uint8)
    out = T.RandomCrop((5, 6), pad_if_needed=True)(img)
    assert out.shape == (5, 6) and out.sum() == 12
    with pytest.raises(ValueError, match="size"):
        T.RandomCrop((5, 6))(img)
    # per-channel fill
    out = T.pad(np.zeros((1, 1, 3), np.uint8), 1, fill=(1, 2, 3))
    np.testing.assert_array_equal(out[0, 0], [1, 2, 3])


def test_resize_shorter_side_and_exact_size():
    wide = np.zeros((20, 40, 3), np.uint8)
    assert T.Resize(10)(wide).shape == (10, 20, 3)
    tall = Image.new("RGB", (20, 30))
    assert T.Resize(10)(tall).size == (10, 15)                            # PIL size is (w, h)
    assert T.Resize(10)(np.zeros((3, 20, 33), np.float32)).shape == (3, 10, 16)  # int(10 * 33 / 20)
    assert T.Resize((7, 9))(wide).shape == (7, 9, 3)
    assert T.Resize(10, max_size=15)(wide).shape == (7, 15, 3)


def test_resize_constant_image_stays_constant():
    const = np.full((17, 23, 3), 131, np.uint8)
    for size in [(5, 7), (40, 31), 9]:
        out = T.Resize(size)(const)
        assert np.all(out == 131)
    const_f = np.full((2, 17, 23), 0.37, np.float32)
    out = T.Resize((40, 11))(const_f)
    assert out.shape == (2, 40, 11) and out.dtype == np.float32
    np.testing.assert_allclose(out, 0.37, rtol=1e-6)


def test_resize_array_equals_pillow():
    img = _rgb(16, 20)
    ref = np.asarray(Image.fromarray(img).resize((9, 7), Image.Resampling.BILINEAR))
    np.testing.assert_array_equal(T.Resize((7, 9))(img), ref)
    # float planes go through Pillow's "F" mode (float weights); Pillow's 8-bit path uses
    # fixed-point weights and rounds, so the two agree within one grey level
    out = T.Resize((7, 9))(img.transpose(2, 0, 1).astype(np.float32) / 255)
    np.testing.assert_allclose(out.transpose(1, 2, 0) * 255, ref, atol=1.0)


def test_random_resized_crop_shapes_seed_and_full_crop():
    img = _rgb(30, 40)
    t = T.RandomResizedCrop(16)
    T.seed(5)
    a = t(img)
    T.seed(5)
    b = t(img)
    assert a.shape == (16, 16, 3)
    np.testing.assert_array_equal(a, b)
    assert T.RandomResizedCrop((8, 12))(Image.fromarray(img)).size == (12, 8)
    # scale (1, 1) and ratio = the image's own ratio: the whole image, resized
    whole = T.RandomResizedCrop((15, 20), scale=(1.0, 1.0), ratio=(4 / 3, 4 / 3))(img)
    np.testing.assert_array_equal(whole, T.Resize((15, 20))(img))
    for _ in range(50):
        top, left, h, w = T.RandomResizedCrop.get_params(img, (0.08, 1.0), (3 / 4, 4 / 3))
        assert 0 <= top and top + h <= 30 and 0 <= left and left + w <= 40


def test_rotation_and_affine_quarter_turns():
    a = np.arange(25, dtype=np.uint8).reshape(5, 5)
    # RandomRotation turns counter-clockwise, as PIL and torchvision
    np.testing.assert_array_equal(T.RandomRotation((90, 90))(a), np.rot90(a, 1))
    np.testing.assert_array_equal(T.RandomRotation((90, 90))(a[None].astype(np.float32))[0], np.rot90(a, 1))
    # affine angles are clockwise (torchvision's convention)
    np.testing.assert_array_equal(T.RandomAffine((90, 90))(a), np.rot90(a, -1))
    # translate by (2, 1) pixels: content moves right 2 and down 1, zero fill
    moved = T.affine(a, 0, (2, 1), 1.0, 0)
    np.testing.assert_array_equal(moved[1:, 2:], a[:-1, :-2])
    assert moved[0].sum() == 0 and moved[:, :2].sum() == 0
    # the identity is the identity
    np.testing.assert_array_equal(T.affine(a, 0, (0, 0), 1.0, (0, 0)), a)
    # fill per channel reaches the corners
    rgb = np.zeros((5, 5, 3), np.uint8)
    out = T.RandomRotation((45, 45), fill=(10, 20, 30))(rgb)
    np.testing.assert_array_equal(out[0, 0], [10, 20, 30])


def test_random_affine_ranges_and_seed():
    img = _rgb(20, 20)
    t = T.RandomAffine(degrees=15, translate=(0.1, 0.2), scale=(0.9, 1.1), shear=(-5, 5, -3, 3))
    rng = np.random.default_rng(0)
    for _ in range(100):
        angle, (tx, ty), scale, (sx, sy) = t.get_params(t.degrees, t.translate, t.scale, t.shear, (20, 20), rng)
        assert -15 <= angle <= 15 and abs(tx) <= 2 and abs(ty) <= 4 and 0.9 <= scale <= 1.1
        assert -5 <= sx <= 5 and -3 <= sy <= 3
    with T.use_rng(np.random.default_rng(1)):
        a = t(img)
    with T.use_rng(np.random.default_rng(1)):
        b = t(Image.fromarray(img))
    np.testing.assert_array_equal(a, np.asarray(b))


# ------------------------------------------------------------------ colour
def test_grayscale_matches_pillow_L():
    img = _rgb(9, 11)
    ref = np.asarray(Image.fromarray(img).convert("L"))
    out = T.Grayscale()(img)
    assert out.shape == (9, 11, 1)
    np.testing.assert_array_equal(out[..., 0], ref)
    np.testing.assert_array_equal(np.asarray(T.Grayscale()(Image.fromarray(img))), ref)
    three = T.Grayscale(num_output_channels=3)(img)
    np.testing.assert_array_equal(three, np.repeat(ref[..., None], 3, axis=2))
    # float path: the same weights (0.299, 0.587, 0.114), within Pillow's 8-bit rounding
    f = T.Grayscale()(img.transpose(2, 0, 1).astype(np.float32) / 255)
    assert f.shape == (1, 9, 11)
    np.testing.assert_allclose(f[0] * 255, ref, atol=0.5 + 1e-3)
    primaries = np.eye(3, dtype=np.float64).reshape(3, 1, 3)  # red, green, blue pixels, CHW
    np.testing.assert_allclose(T.to_grayscale(primaries)[0, 0], [0.299, 0.587, 0.114])


def test_color_jitter_brightness_factor_is_exact():
    x = np.random.default_rng(0).random((3, 5, 6)).astype(np.float32)
    out = T.ColorJitter(brightness=(1.5, 1.5))(x)
    np.testing.assert_array_equal(out, np.clip(x * np.float32(1.5), 0, 1))
    out = T.ColorJitter(brightness=(0.25, 0.25))(minidl.tensor(x))
    np.testing.assert_array_equal(out, x * np.float32(0.25))
    # uint8 / PIL: Pillow's ImageEnhance, i.e. floor(x * f) clipped to 255
    img = np.arange(256, dtype=np.uint8).reshape(16, 16)
    for factor in (0.7, 1.3):
        out = T.ColorJitter(brightness=(factor, factor))(img)
        expected = np.clip(np.floor(img * np.float32(factor)), 0, 255)
        np.testing.assert_array_equal(out, expected)
        np.testing.assert_array_equal(out, np.asarray(ImageEnhance.Brightness(Image.fromarray(img)).enhance(factor)))


def test_color_jitter_contrast_saturation_hue_hand_cases():
    x = np.random.default_rng(1).random((3, 4, 4)).astype(np.float64)
    flat = T.adjust_contrast(x, 0.0)
    gray_mean = (0.299 * x[0] + 0.587 * x[1] + 0.114 * x[2]).mean()
    np.testing.assert_allclose(flat, gray_mean)
    np.testing.assert_allclose(T.adjust_saturation(x, 0.0), np.repeat(T.to_grayscale(x), 3, axis=0))
    np.testing.assert_allclose(T.adjust_saturation(x, 1.0), x)
    np.testing.assert_allclose(T.adjust_hue(x, 0.0), x, atol=1e-12)
    red = np.array([1.0, 0.0, 0.0]).reshape(3, 1, 1)
    np.testing.assert_allclose(T.adjust_hue(red, 1 / 3).ravel(), [0.0, 1.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(T.adjust_hue(red, -1 / 3).ravel(), [0.0, 0.0, 1.0], atol=1e-12)
    # hue shift and back is the identity on a float image
    np.testing.assert_allclose(T.adjust_hue(T.adjust_hue(x, 0.2), -0.2), x, atol=1e-9)
    # PIL path: 8-bit HSV, red + 1/3 turn -> green
    # (hue byte 0 + int(255 / 3) = 85 of 256 is green; 0 - 85 = 171 lands just past pure blue)
    red_img = Image.new("RGB", (2, 2), (255, 0, 0))
    assert T.adjust_hue(red_img, 1 / 3).getpixel((0, 0)) == (0, 255, 0)
    assert T.adjust_hue(red_img, -1 / 3).getpixel((0, 0)) == (6, 0, 255)


def test_color_jitter_seeded_and_ranges():
    img = _rgb(8, 8)
    t = T.ColorJitter(brightness=0.4, contrast=0.4, saturation=0.4, hue=0.1)
    assert t.brightness == (0.6, 1.4) and t.hue == (-0.1, 0.1)
    assert T.ColorJitter(brightness=0).brightness is None
    with pytest.raises(ValueError, match="hue"):
        T.ColorJitter(hue=0.6)
    with T.use_rng(np.random.default_rng(3)):
        a = t(img)
    with T.use_rng(np.random.default_rng(3)):
        b = t(Image.fromarray(img))
    np.testing.assert_array_equal(a, np.asarray(b))
    with T.use_rng(np.random.default_rng(4)):
        c = t(img)
    assert not np.array_equal(a, c)


def test_gaussian_blur_matches_torch_conv():
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(0).random((3, 9, 10)).astype(np.float32)
    out = T.gaussian_blur(x, (5, 3), (1.2, 0.7))
    # reference: 2-D kernel outer(ky, kx), reflect padding, depthwise convolution
    def k1d(size, sigma):
        t = np.linspace(-(size - 1) / 2, (size - 1) / 2, size)
        p = np.exp(-0.5 * (t / sigma) ** 2)
        return p / p.sum()
    kernel = np.outer(k1d(3, 0.7), k1d(5, 1.2)).astype(np.float32)  # (ky, kx)
    xt = torch.nn.functional.pad(torch.from_numpy(x)[None], (2, 2, 1, 1), mode="reflect")
    w = torch.from_numpy(np.repeat(kernel[None, None], 3, axis=0))
    ref = torch.nn.functional.conv2d(xt, w, groups=3)[0].numpy()
    np.testing.assert_allclose(out, ref, atol=1e-6)


def test_gaussian_blur_constant_and_uint8():
    const = np.full((7, 7, 3), 200, np.uint8)
    np.testing.assert_array_equal(T.GaussianBlur(5, sigma=(0.5, 2.0))(const), const)
    img = _rgb(8, 8)
    out = T.GaussianBlur(3, sigma=1.0)(img)
    assert out.dtype == np.uint8 and out.shape == img.shape
    ref = T.gaussian_blur(img.transpose(2, 0, 1).astype(np.float32), 3, 1.0)
    np.testing.assert_array_equal(out, np.round(ref).transpose(1, 2, 0))
    with pytest.raises(ValueError, match="kernel_size"):
        T.GaussianBlur(4)


# ------------------------------------------------------------------ composition and randomness
def test_compose_lambda_and_pipeline_to_tensor():
    t = T.Compose([
        T.Resize(12), T.CenterCrop(10), T.RandomHorizontalFlip(), T.ColorJitter(0.2, 0.2, 0.2, 0.05),
        T.ToTensor(), T.Normalize([0.5] * 3, [0.25] * 3), T.Lambda(lambda x: x * 2),
    ])
    T.seed(0)
    a = t(Image.fromarray(_rgb(20, 30)))
    T.seed(0)
    b = t(Image.fromarray(_rgb(20, 30)))
    assert isinstance(a, np.ndarray) and a.shape == (3, 10, 10)
    np.testing.assert_array_equal(a, b)
    assert "Resize" in repr(t)


def test_use_rng_is_thread_local_and_nests():
    outer = np.random.default_rng(0)
    inner = np.random.default_rng(1)
    with T.use_rng(outer):
        assert T.get_rng() is outer
        with T.use_rng(inner):
            assert T.get_rng() is inner
        seen = []
        thread = threading.Thread(target=lambda: seen.append(T.get_rng()))
        thread.start()
        thread.join()
        assert seen[0] is not outer  # another thread sees the module default
        assert T.get_rng() is outer
    with pytest.raises(TypeError, match="rng"), T.use_rng(3):
        pass


def test_bad_inputs_name_the_argument():
    with pytest.raises(TypeError, match="img"):
        T.hflip([[1, 2]])
    with pytest.raises(TypeError, match="dtype int32"):
        T.hflip(np.zeros((3, 4, 4), np.int32))
    with pytest.raises(ValueError, match="interpolation"):
        T.Resize(4, interpolation="cubicle")
