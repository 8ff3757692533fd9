"""One data road: file -> reader -> transforms (NumPy/PIL) -> default_collate (Tensor) -> model.

A sample from every reader and every transform stays a NumPy array or a PIL image; only
``default_collate`` makes a ``minidl.Tensor``. ``to_numpy`` is the one door back to the host.
"""
import importlib
import types

import numpy as np
import pytest
from PIL import Image
from test_datasets import make_cifar10, make_gtsrb, make_image_folder, publish, write_mnist

import minidl
from minidl.data import DataLoader, TensorDataset, default_collate, to_numpy
from minidl.data import transforms as T
from minidl.datasets import CIFAR10, GTSRB, MNIST, Digits, FashionMNIST, ImageFolder, load_digits

RNG = np.random.default_rng(0)


def _sample_kinds(x):
    """The kinds of the leaves of a sample: 'ndarray', 'pil', 'number' or the type's name."""
    if isinstance(x, (tuple, list)):
        return [k for item in x for k in _sample_kinds(item)]
    if isinstance(x, np.ndarray):
        return ["ndarray"]
    if isinstance(x, Image.Image):
        return ["pil"]
    if isinstance(x, (int, float, np.generic)):
        return ["number"]
    return [type(x).__name__]


# ------------------------------------------------------------------ to_numpy
def test_to_numpy_tensor_shares_memory_and_keeps_dtype():
    t = minidl.tensor(np.arange(6, dtype=np.int64).reshape(2, 3))
    out = to_numpy(t)
    assert isinstance(out, np.ndarray) and out.dtype == np.int64 and out.shape == (2, 3)
    assert np.shares_memory(out, t.numpy())
    w = minidl.randn(4, requires_grad=True)
    np.testing.assert_array_equal(to_numpy(w), w.detach().numpy())
    assert to_numpy(t, dtype=np.float32).dtype == np.float32


def test_to_numpy_numpy_array_is_returned_as_is():
    a = np.ones((2, 2), np.float32)
    assert to_numpy(a) is a
    b = to_numpy(a, dtype=np.float64)
    assert b.dtype == np.float64 and not np.shares_memory(a, b)


def test_to_numpy_lists_scalars_and_pil():
    assert to_numpy([[1, 2], [3, 4]]).tolist() == [[1, 2], [3, 4]]
    s = to_numpy(2.5)
    assert isinstance(s, np.ndarray) and s.shape == () and float(s) == 2.5
    assert to_numpy(np.float32(1.5)).dtype == np.float32
    assert to_numpy(True).dtype == np.bool_
    img = Image.fromarray(np.arange(12, dtype=np.uint8).reshape(3, 4))
    np.testing.assert_array_equal(to_numpy(img), np.arange(12).reshape(3, 4))


def test_to_numpy_copies_cupy_arrays_to_the_host():
    # a stand-in with CuPy's module name and its ``get()`` (device -> host copy)
    host = np.arange(5, dtype=np.float32)
    fake_module = types.ModuleType("cupy._core.core")

    class ndarray:  # CuPy's class name and module
        def __init__(self, values):
            self.values = values
            self.gets = 0

        def get(self):
            self.gets += 1
            return self.values.copy()

    ndarray.__module__ = fake_module.__name__
    device_array = ndarray(host)
    out = to_numpy(device_array)
    assert device_array.gets == 1
    assert isinstance(out, np.ndarray) and not np.shares_memory(out, host)
    np.testing.assert_array_equal(out, host)


# ------------------------------------------------------------------ readers stay NumPy / PIL
def _readers(tmp_path, monkeypatch):
    write_mnist(str(tmp_path / "mnist"), n_train=3, n_test=2)
    write_mnist(str(tmp_path / "fashion"), n_train=3, n_test=2)
    publish(monkeypatch, tmp_path / "mnist", mnist_classes=(MNIST,))
    publish(monkeypatch, tmp_path / "fashion", mnist_classes=(FashionMNIST,))
    make_cifar10(str(tmp_path / "cifar"))
    make_gtsrb(str(tmp_path / "gtsrb"))
    make_image_folder(str(tmp_path / "folder"))
    return {
        "digits": lambda **kw: Digits(**kw),
        "mnist": lambda **kw: MNIST(tmp_path / "mnist", **kw),
        "fashion_mnist": lambda **kw: FashionMNIST(tmp_path / "fashion", **kw),
        "cifar10": lambda **kw: CIFAR10(tmp_path / "cifar", **kw),
        "gtsrb": lambda **kw: GTSRB(tmp_path / "gtsrb", **kw),
        "image_folder": lambda **kw: ImageFolder(tmp_path / "folder", **kw),
    }


def test_every_reader_gives_pil_then_numpy_and_only_collate_makes_a_tensor(tmp_path, monkeypatch):
    for name, make in _readers(tmp_path, monkeypatch).items():
        plain = make()
        assert _sample_kinds(plain[0]) == ["pil", "number"], name
        ds = make(transform=T.Compose([T.Resize((6, 6)), T.ToTensor()]))
        image, label = ds[0]
        assert isinstance(image, np.ndarray) and image.dtype == np.float32, name
        assert image.shape[1:] == (6, 6) and isinstance(label, int), name
        np.testing.assert_allclose(image, np.asarray(T.Resize((6, 6))(plain[0][0]), np.float32)
                                   .reshape(6, 6, -1).transpose(2, 0, 1) / 255, err_msg=name)
        x, y = next(iter(DataLoader(ds, batch_size=2)))
        assert isinstance(x, minidl.Tensor) and isinstance(y, minidl.Tensor), name
        assert x.shape == (2, *image.shape) and x.dtype == np.float32 and y.dtype == np.int64
        np.testing.assert_array_equal(x.numpy()[0], image)


def test_tensor_dataset_rows_stay_numpy_even_from_a_tensor():
    ds = TensorDataset(minidl.tensor(np.arange(6.0).reshape(3, 2)), np.arange(3))
    assert _sample_kinds(ds[1]) == ["ndarray", "number"]
    x, y = default_collate([ds[0], ds[2]])
    assert isinstance(x, minidl.Tensor) and x.numpy().tolist() == [[0.0, 1.0], [4.0, 5.0]]
    assert y.numpy().tolist() == [0, 2]


def test_default_collate_is_where_the_batch_becomes_a_tensor():
    samples = [(np.full((1, 2, 2), k, np.float32), k) for k in range(3)]
    x, y = default_collate(samples)
    assert isinstance(x, minidl.Tensor) and x.shape == (3, 1, 2, 2) and x.dtype == np.float32
    assert x.numpy().flags.c_contiguous and x.numpy().flags.writeable
    assert not any(np.shares_memory(x.numpy(), s[0]) for s in samples)  # a fresh stacked batch
    np.testing.assert_array_equal(x.numpy()[:, 0, 0, 0], [0, 1, 2])
    assert isinstance(y, minidl.Tensor) and y.dtype == np.int64
    # a dataset that hands out Tensors still works: they come to the host with to_numpy
    x, _ = default_collate([(minidl.tensor(s[0]), s[1]) for s in samples])
    np.testing.assert_array_equal(x.numpy()[:, 0, 0, 0], [0, 1, 2])


# ------------------------------------------------------------------ transforms stay NumPy / PIL
def _every_transform():
    return [
        T.ToTensor(), T.PILToTensor(), T.Resize(5), T.Resize((4, 7)), T.CenterCrop(4), T.Pad(2, fill=3),
        T.RandomCrop(4, padding=1), T.RandomResizedCrop(5), T.RandomHorizontalFlip(1.0), T.RandomVerticalFlip(1.0),
        T.RandomRotation(30), T.RandomAffine(20, translate=(0.1, 0.1), scale=(0.9, 1.1), shear=5),
        T.ColorJitter(0.3, 0.3, 0.3, 0.1), T.Grayscale(3), T.GaussianBlur(3), T.Lambda(lambda x: x),
        T.Compose([T.Resize(6), T.ToTensor(), T.Normalize([0.5] * 3, [0.2] * 3)]),
        T.ImageClassification(crop_size=4, resize_size=6), T.ClassificationPresetTrain(crop_size=4),
        T.ClassificationPresetEval(crop_size=4, resize_size=6),
    ]


@pytest.mark.parametrize("kind", ["pil", "uint8_hwc", "float_chw", "tensor"])
def test_every_transform_returns_numpy_or_pil_never_a_tensor(kind):
    hwc = RNG.integers(0, 256, (9, 10, 3), dtype=np.uint8)
    chw = hwc.transpose(2, 0, 1).astype(np.float32) / 255
    inputs = {"pil": Image.fromarray(hwc), "uint8_hwc": hwc, "float_chw": chw, "tensor": minidl.tensor(chw)}
    makes_array = (T.ToTensor, T.PILToTensor, T.ImageClassification, T.ClassificationPresetTrain,
                   T.ClassificationPresetEval, T.Compose)
    for transform in _every_transform():
        if kind in ("float_chw", "tensor") and isinstance(transform, (T.ToTensor, T.PILToTensor)):
            continue  # those take decoded images (PIL / HWC uint8)
        if kind in ("float_chw", "tensor") and isinstance(transform, (T.ClassificationPresetTrain,
                                                                     T.ClassificationPresetEval, T.Compose)):
            continue  # their ToTensor step takes decoded images
        if kind == "tensor" and isinstance(transform, T.Lambda):
            continue  # the user's own function decides what it returns
        with T.use_rng(np.random.default_rng(0)):
            out = transform(inputs[kind])
        assert not isinstance(out, minidl.Tensor), (kind, transform)
        if kind == "pil" and not isinstance(transform, makes_array):
            assert isinstance(out, Image.Image), transform
        else:
            assert isinstance(out, np.ndarray), (kind, transform)


def test_a_tensor_input_gives_the_values_of_its_array():
    chw = RNG.random((3, 9, 10)).astype(np.float32)
    for transform in (T.Resize((5, 6)), T.RandomHorizontalFlip(1.0), T.Normalize([0.1] * 3, [0.5] * 3),
                      T.CenterCrop(4), T.ColorJitter(brightness=(0.5, 0.5)), T.GaussianBlur(3, sigma=1.0)):
        np.testing.assert_array_equal(transform(minidl.tensor(chw)), transform(chw), err_msg=repr(transform))


def test_pil_to_tensor_output_chains_into_geometric_transforms():
    hwc = RNG.integers(0, 256, (9, 10, 3), dtype=np.uint8)
    chw = T.PILToTensor()(Image.fromarray(hwc))
    assert chw.shape == (3, 9, 10) and chw.dtype == np.uint8
    np.testing.assert_array_equal(T.hflip(chw), chw[:, :, ::-1])
    np.testing.assert_array_equal(T.Resize((4, 5))(chw), T.Resize((4, 5))(hwc).transpose(2, 0, 1))
    np.testing.assert_array_equal(T.Grayscale()(chw), T.Grayscale()(hwc).transpose(2, 0, 1))


# ------------------------------------------------------------------ float resize = Pillow's weights
@pytest.mark.parametrize("interpolation", ["bilinear", "bicubic", "box", "hamming", "lanczos"])
@pytest.mark.parametrize("shapes", [((8, 8), (32, 32)), ((17, 23), (5, 9)), ((20, 13), (33, 7))])
def test_float_resize_equals_pillow_F_planes(interpolation, shapes):
    (h, w), out = shapes
    x = RNG.random((2, h, w)).astype(np.float32)
    ours = T.resize(x, out, interpolation=interpolation)
    size = (out[1], out[0])
    ref = np.stack([np.asarray(Image.fromarray(p).resize(size, T.functional_pil.pil_filter(interpolation)))
                    for p in x])
    assert ours.shape == (2, *out) and ours.dtype == np.float32
    np.testing.assert_allclose(ours, ref, rtol=0, atol=5e-7)


def test_digits_reader_with_transforms_is_load_digits_to_1_over_510():
    """The CLI's digits: the one reader plus ToTensor and Resize(32) give load_digits(size=32)."""
    ds = Digits(train=False, transform=T.Compose([T.ToTensor(), T.Resize((32, 32))]))
    x32, y = load_digits("test", size=32)
    images = np.stack([ds[i][0] for i in range(len(ds))])
    assert images.shape == x32.shape and images.dtype == np.float32
    assert np.abs(images - x32).max() <= 1 / 510 + 1e-6  # the reader's 0..255 scale of the 0..16 counts
    assert [ds[i][1] for i in range(len(ds))] == y.tolist()
    # the resize itself is load_digits' bilinear resize, exactly
    x8, _ = load_digits("test")
    np.testing.assert_array_equal(np.stack([T.resize(a, (32, 32)) for a in x8]), x32)


def test_cli_digits_come_through_the_reader():
    import argparse

    from minidl.cli import train as cli_train

    args = argparse.Namespace(dataset="digits", data_root=None, download=False)
    builder = cli_train._builder("lenet5")
    dataset, shape, classes = cli_train._load_data(args, builder, train=True)
    # the reader, each sample transformed once (nothing is random without --augment)
    assert isinstance(dataset, minidl.data.CachedDataset) and isinstance(dataset.dataset, Digits)
    assert shape == (1, 32, 32) and classes == [str(d) for d in range(10)]
    image, label = dataset[0]
    assert isinstance(image, np.ndarray) and image.shape == (1, 32, 32) and isinstance(label, int)
    assert not hasattr(cli_train, "_ArrayDataset") and not hasattr(cli_train, "_host")


# ------------------------------------------------------------------ module layout
def test_transforms_package_is_split_by_concern():
    modules = {name: importlib.import_module(f"minidl.data.transforms.{name}")
               for name in ("functional", "functional_pil", "transforms", "presets")}
    F, F_pil, classes, presets = (modules[n] for n in ("functional", "functional_pil", "transforms", "presets"))
    for name in ("resize", "crop", "pad", "hflip", "vflip", "rotate", "affine", "to_grayscale",
                 "adjust_brightness", "adjust_contrast", "adjust_saturation", "adjust_hue"):
        assert callable(getattr(F, name)) and callable(getattr(F_pil, name)), name
        assert getattr(T, name) is getattr(F, name), name
    for name in ("Compose", "ToTensor", "Resize", "RandomResizedCrop", "ColorJitter", "use_rng", "seed"):
        assert getattr(T, name) is getattr(classes, name), name
    for name in ("ClassificationPresetTrain", "ClassificationPresetEval", "ImageClassification"):
        assert getattr(T, name) is getattr(presets, name), name
    # functional_pil works on PIL images only, functional on arrays as well
    img = Image.fromarray(RNG.integers(0, 256, (5, 6, 3), dtype=np.uint8))
    assert isinstance(F_pil.hflip(img), Image.Image)
    np.testing.assert_array_equal(np.asarray(F_pil.hflip(img)), F.hflip(np.asarray(img)))
    for name in T.__all__:
        assert hasattr(T, name), name


def test_imagenet_eval_preset_is_resize_crop_to_tensor_normalize():
    img = Image.fromarray(RNG.integers(0, 256, (40, 50, 3), dtype=np.uint8))
    by_hand = T.Compose([T.Resize(20), T.CenterCrop(16), T.ToTensor(),
                         T.Normalize(T.IMAGENET_MEAN, T.IMAGENET_STD)])
    expected = by_hand(img)
    np.testing.assert_array_equal(T.ImageClassification(crop_size=16, resize_size=20)(img), expected)
    np.testing.assert_array_equal(T.ClassificationPresetEval(crop_size=16, resize_size=20)(img), expected)
    assert "crop_size=[16]" in T.ImageClassification(crop_size=16, resize_size=20).describe()
    train = T.ClassificationPresetTrain(crop_size=12, hflip_prob=0.5)
    with T.use_rng(np.random.default_rng(3)):
        a = train(img)
    with T.use_rng(np.random.default_rng(3)):
        b = train(img)
    assert a.shape == (3, 12, 12) and a.dtype == np.float32
    np.testing.assert_array_equal(a, b)


def test_imagenet_eval_preset_matches_torchvision():
    torch = pytest.importorskip("torch")
    tv = pytest.importorskip("torchvision")
    img = Image.fromarray(RNG.integers(0, 256, (300, 260, 3), dtype=np.uint8))
    ours = T.ImageClassification(crop_size=224, resize_size=256)(img)
    theirs = tv.transforms._presets.ImageClassification(crop_size=224, resize_size=256)(img)
    assert isinstance(theirs, torch.Tensor)
    # torchvision resizes the uint8 tensor with its own antialiased kernel, minidl with Pillow:
    # a grey level or two apart (1/255/0.225 = 0.017 after normalising)
    diff = np.abs(ours - theirs.numpy())
    assert ours.shape == tuple(theirs.shape) and diff.max() < 0.05 and diff.mean() < 5e-3


def test_use_rng_factory_is_called_once_on_the_first_draw():
    """The DataLoader hands use_rng a factory: plain pipelines never pay for a generator."""
    calls = []

    def make():
        calls.append(1)
        return np.random.default_rng(5)

    outside = T.get_rng()
    with T.use_rng(make):
        T.Compose([T.Resize(4), T.ToTensor()])(np.zeros((6, 6), np.uint8))  # draws nothing
        assert calls == []
        draws = (T.get_rng().random(), T.get_rng().random())
    assert calls == [1]
    reference = np.random.default_rng(5)
    assert draws == (reference.random(), reference.random())
    assert T.get_rng() is outside


def test_cached_dataset_transforms_each_sample_once():
    from minidl.data import CachedDataset, Dataset

    calls = []

    class Doubles(Dataset):
        def __len__(self):
            return 4

        def __getitem__(self, i):
            calls.append(i)
            return np.full(2, 2.0 * i, np.float32), i

    ds = CachedDataset(Doubles())
    loader = minidl.data.DataLoader(ds, batch_size=2, shuffle=True, seed=0)
    for _ in range(3):  # three epochs
        values = sorted(float(v) for x, _ in loader for v in x.numpy()[:, 0])
        assert values == [0.0, 2.0, 4.0, 6.0]
    assert sorted(calls) == [0, 1, 2, 3] and len(ds) == 4  # each sample made once
