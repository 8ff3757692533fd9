"""Readers against small files written in the real published formats."""

import csv
import gzip
import os
import pickle
import struct
import tarfile

import numpy as np
import pytest
from PIL import Image

from minidl.datasets import (
    CIFAR10,
    CIFAR100,
    GTSRB,
    MNIST,
    Digits,
    FashionMNIST,
    ImageFolder,
    bilinear_resize,
    get_dataset,
    load_digits,
    read_idx,
    restricted_loads,
)

RNG = np.random.default_rng(0)


# ----------------------------------------------------------------------------- digits

def test_digits_splits_are_a_fixed_stratified_partition():
    _, y_all = load_digits("all", dtype="uint8")
    x_tr, y_tr = load_digits("train")
    x_te, y_te = load_digits("test")
    assert x_tr.shape == (1438, 1, 8, 8) and x_te.shape == (359, 1, 8, 8)
    assert x_tr.dtype == np.float32 and y_tr.dtype == np.int64
    assert len(y_tr) + len(y_te) == len(y_all) == 1797
    # every class keeps about 20% of its samples in test
    counts_all, counts_te = np.bincount(y_all, minlength=10), np.bincount(y_te, minlength=10)
    assert np.all(np.abs(counts_te - 0.2 * counts_all) <= 0.5)
    assert 0.0 <= x_tr.min() and x_tr.max() == 1.0


def test_digits_values_are_counts_over_16():
    raw, y_raw = load_digits("all", dtype="uint8")
    x, y = load_digits("all", dtype="float64")
    assert raw.dtype == np.uint8 and raw.max() == 16
    np.testing.assert_array_equal(x * 16, raw)
    np.testing.assert_array_equal(y, y_raw)


def test_digits_match_the_uci_source_shipped_by_sklearn():
    sklearn = pytest.importorskip("sklearn")
    path = os.path.join(os.path.dirname(sklearn.__file__), "datasets", "data", "digits.csv.gz")
    if not os.path.isfile(path):
        pytest.skip("sklearn without its digits.csv.gz")
    table = np.loadtxt(gzip.open(path, "rt"), delimiter=",", dtype=np.int64)
    raw, labels = load_digits("all", dtype="uint8")
    np.testing.assert_array_equal(raw.reshape(-1, 64), table[:, :64])
    np.testing.assert_array_equal(labels, table[:, 64])


def test_digits_size_32_is_bilinear_like_torch():
    torch = pytest.importorskip("torch")
    x8, _ = load_digits("test", dtype="float64")
    x32, _ = load_digits("test", size=32, dtype="float64")
    assert x32.shape == (359, 1, 32, 32)
    expected = torch.nn.functional.interpolate(torch.from_numpy(x8), size=(32, 32), mode="bilinear",
                                               align_corners=False).numpy()
    np.testing.assert_allclose(x32, expected, atol=1e-12)
    # a non-square input and a shrink as well
    img = RNG.random((2, 5, 7))
    out = bilinear_resize(img, 11)
    ref = torch.nn.functional.interpolate(torch.from_numpy(img)[:, None], size=(11, 11), mode="bilinear",
                                          align_corners=False).numpy()[:, 0]
    np.testing.assert_allclose(out, ref, atol=1e-12)


def test_digits_dataset_class():
    ds = Digits(train=False, transform=lambda im: np.asarray(im), target_transform=lambda t: t + 100)
    raw, labels = load_digits("test", dtype="uint8")
    image, target = ds[5]
    np.testing.assert_array_equal(image, np.round(raw[5, 0] * 255.0 / 16.0))
    assert target == labels[5] + 100
    assert len(ds) == 359 and ds.data.shape == (359, 8, 8) and ds.data.dtype == np.uint8
    assert ds.classes == [str(i) for i in range(10)] and ds.class_to_idx["7"] == 7
    assert ds[-1][1] == labels[-1] + 100
    with pytest.raises(IndexError):
        ds[359]


@pytest.mark.parametrize("kwargs, error", [
    (dict(split="val"), ValueError), (dict(size=0), ValueError),
    (dict(dtype="int32"), ValueError), (dict(dtype="uint8", size=32), ValueError),
])
def test_load_digits_rejects_bad_arguments(kwargs, error):
    with pytest.raises(error):
        load_digits(**kwargs)


# ------------------------------------------------------------------------------ MNIST

def idx_bytes(array):
    """Encode an array in the IDX format (big-endian header and values)."""
    codes = {np.uint8: 0x08, np.int8: 0x09, np.int16: 0x0B, np.int32: 0x0C, np.float32: 0x0D, np.float64: 0x0E}
    code = codes[array.dtype.type]
    header = struct.pack(">BBBB", 0, 0, code, array.ndim) + struct.pack(f">{array.ndim}i", *array.shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def publish(monkeypatch, root, mnist_classes=None):
    """Make the fake files under ``root`` the "published" ones: the readers check published archives
    against their SHA-256 before reading them, so the class records get the fake files' hashes.
    ``mnist_classes`` says which of MNIST/FashionMNIST (same file names) the .gz files stand for."""
    from minidl.datasets.download import sha256sum

    for dirpath, _, files in os.walk(root):
        for name in files:
            path = os.path.join(dirpath, name)
            for cls in mnist_classes or (MNIST, FashionMNIST):
                if name in dict(cls.resources):
                    resources = [(n, sha256sum(path) if n == name else h) for n, h in cls.resources]
                    monkeypatch.setattr(cls, "resources", resources)
            for cls in (CIFAR10, CIFAR100):
                if name == cls.filename:
                    monkeypatch.setattr(cls, "sha256", sha256sum(path))


def write_mnist(folder, n_train=7, n_test=4, compress=True):
    os.makedirs(folder, exist_ok=True)
    arrays = {}
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        images = RNG.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        labels = RNG.integers(0, 10, size=n, dtype=np.uint8)
        arrays[prefix] = (images, labels)
        for kind, array in (("images-idx3-ubyte", images), ("labels-idx1-ubyte", labels)):
            name = os.path.join(folder, f"{prefix}-{kind}")
            payload = idx_bytes(array)
            if compress:
                with gzip.open(name + ".gz", "wb") as f:
                    f.write(payload)
            else:
                with open(name, "wb") as f:
                    f.write(payload)
    return arrays


@pytest.mark.parametrize("compress", [True, False])
@pytest.mark.parametrize("layout", ["flat", "torchvision"])
def test_mnist_reads_idx_exactly(tmp_path, monkeypatch, compress, layout):
    folder = tmp_path if layout == "flat" else tmp_path / "MNIST" / "raw"
    arrays = write_mnist(str(folder), compress=compress)
    publish(monkeypatch, tmp_path)
    for train, prefix in ((True, "train"), (False, "t10k")):
        ds = MNIST(tmp_path, train=train)
        images, labels = arrays[prefix]
        np.testing.assert_array_equal(ds.data, images)
        np.testing.assert_array_equal(ds.targets, labels)
        assert ds.data.dtype == np.uint8 and ds.targets.dtype == np.int64
        image, label = ds[2]
        assert image.mode == "L" and image.size == (28, 28)
        np.testing.assert_array_equal(np.asarray(image), images[2])
        assert label == int(labels[2]) and isinstance(label, int)


def test_fashion_mnist_folder_and_classes(tmp_path, monkeypatch):
    arrays = write_mnist(str(tmp_path / "FashionMNIST" / "raw"))
    publish(monkeypatch, tmp_path)
    ds = FashionMNIST(tmp_path, train=False, transform=np.asarray)
    np.testing.assert_array_equal(ds[0][0], arrays["t10k"][0][0])
    assert ds.classes[9] == "Ankle boot"
    with pytest.raises(FileNotFoundError, match="download=True"):
        MNIST(tmp_path)  # MNIST looks in root and root/MNIST/raw, not FashionMNIST/raw


@pytest.mark.parametrize("dtype", [np.int8, np.int16, np.int32, np.float32, np.float64])
def test_read_idx_dtypes(tmp_path, dtype):
    array = (RNG.standard_normal((3, 4, 5)) * 100).astype(dtype)
    path = tmp_path / "x.idx"
    path.write_bytes(idx_bytes(array))
    out = read_idx(path)
    assert out.dtype == np.dtype(dtype) and out.dtype.isnative
    np.testing.assert_array_equal(out, array)


def test_mnist_corrupt_files_are_reported(tmp_path):
    write_mnist(str(tmp_path), compress=False)
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-10])  # truncated
    with pytest.raises(ValueError, match="train-images-idx3-ubyte.*truncated"):
        MNIST(tmp_path)
    path.write_bytes(b"\x1f\x8bnot really gzip")
    with pytest.raises(ValueError, match="not a valid gzip"):
        MNIST(tmp_path)
    path.write_bytes(b"PK\x03\x04 a zip, not IDX")
    with pytest.raises(ValueError, match="not an IDX file"):
        MNIST(tmp_path)
    # labels that do not match the images in number
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(idx_bytes(np.zeros(3, np.uint8)))
    with pytest.raises(ValueError, match="expected 4 labels"):
        MNIST(tmp_path, train=False)


def test_mnist_missing_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="train-images-idx3-ubyte"):
        MNIST(tmp_path)


# ------------------------------------------------------------------------------ CIFAR

def cifar_batch(n, label_key=b"labels", n_classes=10):
    data = RNG.integers(0, 256, size=(n, 3072), dtype=np.uint8)
    labels = [int(v) for v in RNG.integers(0, n_classes, size=n)]
    entry = {b"batch_label": b"testing batch 1 of 1", label_key: labels, b"data": data,
             b"filenames": [f"img_{i}.png".encode() for i in range(n)]}
    if label_key == b"fine_labels":
        entry[b"coarse_labels"] = [v // 5 for v in labels]
    return entry


def write_pickle(path, obj):
    with open(path, "wb") as f:
        pickle.dump(obj, f, protocol=2)


def to_hwc(data):
    return data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)


def make_cifar10(root, archive=False):
    folder = os.path.join(root, "cifar-10-batches-py")
    os.makedirs(folder)
    batches = {}
    for name, n in [(f"data_batch_{i}", 3) for i in range(1, 6)] + [("test_batch", 4)]:
        batches[name] = cifar_batch(n)
        write_pickle(os.path.join(folder, name), batches[name])
    names = [b"airplane", b"automobile", b"bird", b"cat", b"deer", b"dog", b"frog", b"horse", b"ship", b"truck"]
    write_pickle(os.path.join(folder, "batches.meta"), {b"label_names": names, b"num_vis": 3072})
    if archive:
        with tarfile.open(os.path.join(root, "cifar-10-python.tar.gz"), "w:gz") as tar:
            tar.add(folder, arcname="cifar-10-batches-py")
        for name in os.listdir(folder):
            os.remove(os.path.join(folder, name))
        os.rmdir(folder)
    return batches


@pytest.mark.parametrize("archive", [False, True])
def test_cifar10_reads_batches_exactly(tmp_path, monkeypatch, archive):
    batches = make_cifar10(str(tmp_path), archive=archive)
    publish(monkeypatch, tmp_path)
    train = CIFAR10(tmp_path, train=True)
    expected = np.concatenate([batches[f"data_batch_{i}"][b"data"] for i in range(1, 6)])
    np.testing.assert_array_equal(train.data, to_hwc(expected))
    np.testing.assert_array_equal(
        train.targets, sum((batches[f"data_batch_{i}"][b"labels"] for i in range(1, 6)), []))
    assert train.data.shape == (15, 32, 32, 3) and train.classes[1] == "automobile"
    test = CIFAR10(tmp_path, train=False, transform=np.asarray)
    image, label = test[3]
    # pixel (row 0, col 1) of image 3: the red, green, blue planes at offset 1
    assert tuple(image[0, 1]) == tuple(batches["test_batch"][b"data"][3, [1, 1025, 2049]])
    assert label == batches["test_batch"][b"labels"][3]
    assert CIFAR10(tmp_path, train=False)[0][0].mode == "RGB"


def test_cifar100_fine_labels_and_meta(tmp_path):
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    train, test = cifar_batch(6, b"fine_labels", 100), cifar_batch(2, b"fine_labels", 100)
    write_pickle(folder / "train", train)
    write_pickle(folder / "test", test)
    ds = CIFAR100(tmp_path, train=True)
    np.testing.assert_array_equal(ds.data, to_hwc(train[b"data"]))
    np.testing.assert_array_equal(ds.targets, train[b"fine_labels"])
    assert len(ds.classes) == 100 and ds.classes[0] == "apple"  # no meta file: the published names
    fine_names = [f"n{i}".encode() for i in range(100)]
    write_pickle(folder / "meta", {b"fine_label_names": fine_names, b"coarse_label_names": []})
    assert CIFAR100(tmp_path, train=False).classes[7] == "n7"


class Boom:
    """Pickles as ``os.system("touch <marker>")``: what a hostile CIFAR file would do."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_cifar_refuses_malicious_pickle_and_runs_nothing(tmp_path):
    make_cifar10(str(tmp_path))
    marker = tmp_path / "pwned"
    payload = pickle.dumps({b"data": Boom(marker), b"labels": [0]}, protocol=2)
    assert b"system" in payload
    (tmp_path / "cifar-10-batches-py" / "test_batch").write_bytes(payload)
    with pytest.raises(pickle.UnpicklingError, match=r"test_batch: refusing to load global (posix|os|nt)\.system"):
        CIFAR10(tmp_path, train=False)
    assert not marker.exists()
    # builtins are refused too, and the allowed codec shim does not become a gadget
    with pytest.raises(pickle.UnpicklingError, match="builtins.eval"):
        restricted_loads(b"\x80\x02cbuiltins\neval\nX\x04\x00\x00\x001+1q\x00\x85q\x01Rq\x02.")
    with pytest.raises(pickle.UnpicklingError, match="latin1"):
        restricted_loads(pickle.dumps(b"x", protocol=2).replace(b"latin1", b"rot13_"))


def test_restricted_loads_round_trips_the_cifar_types():
    obj = {b"a": [1, 2, 3], b"b": b"bytes", "c": "text", b"d": np.arange(12, dtype=np.uint8).reshape(3, 4),
           b"e": (1.5, None, True), b"f": np.float64(2.5), b"g": np.arange(3, dtype=">i4")}
    out = restricted_loads(pickle.dumps(obj, protocol=2))
    for key, value in obj.items():
        if isinstance(value, np.ndarray):
            np.testing.assert_array_equal(out[key], value)
            assert out[key].dtype.str[1:] == value.dtype.str[1:]  # NumPy's pickle may normalise byte order
        else:
            assert out[key] == value


def test_cifar_corrupt_and_missing_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="download=True"):
        CIFAR10(tmp_path)
    make_cifar10(str(tmp_path))
    batch = tmp_path / "cifar-10-batches-py" / "data_batch_3"
    batch.write_bytes(batch.read_bytes()[:200])
    with pytest.raises(ValueError, match="data_batch_3"):
        CIFAR10(tmp_path)
    write_pickle(batch, {b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]})
    with pytest.raises(ValueError, match=r"data_batch_3: b'data' must be uint8 \(N, 3072\)"):
        CIFAR10(tmp_path)
    os.remove(batch)
    with pytest.raises(FileNotFoundError, match="data_batch_3"):
        CIFAR10(tmp_path)


# ------------------------------------------------------------------------------ GTSRB

GT_HEADER = ["Filename", "Width", "Height", "Roi.X1", "Roi.Y1", "Roi.X2", "Roi.Y2", "ClassId"]


def write_gt(path, rows):
    with open(path, "w", newline="") as f:
        writer = csv.writer(f, delimiter=";")
        writer.writerow(GT_HEADER)
        writer.writerows(rows)


def make_gtsrb(root):
    """Three training classes and a test set, PPM images of different sizes."""
    expected = {"train": [], "test": []}
    train_root = os.path.join(root, "GTSRB", "Final_Training", "Images")
    for class_id in (0, 1, 5):
        folder = os.path.join(train_root, f"{class_id:05d}")
        os.makedirs(folder)
        rows = []
        for k in range(2):
            w, h = 20 + k + class_id, 22 + k
            pixels = RNG.integers(0, 256, size=(h, w, 3), dtype=np.uint8)
            name = f"00000_{k:05d}.ppm"
            Image.fromarray(pixels).save(os.path.join(folder, name))
            roi = (5, 6, w - 5, h - 5)
            rows.append([name, w, h, *roi, class_id])
            expected["train"].append((pixels, roi, class_id))
        write_gt(os.path.join(folder, f"GT-{class_id:05d}.csv"), rows)
    test_folder = os.path.join(root, "GTSRB", "Final_Test", "Images")
    os.makedirs(test_folder)
    rows = []
    for k, class_id in enumerate((42, 3, 0)):
        w, h = 25, 21 + k
        pixels = RNG.integers(0, 256, size=(h, w, 3), dtype=np.uint8)
        name = f"{k:05d}.ppm"
        Image.fromarray(pixels).save(os.path.join(test_folder, name))
        rows.append([name, w, h, 5, 5, w - 6, h - 5, class_id])
        expected["test"].append((pixels, (5, 5, w - 6, h - 5), class_id))
    write_gt(os.path.join(test_folder, "GT-final_test.test.csv"), [r[:-1] for r in rows])  # unlabelled, as published
    write_gt(os.path.join(root, "GT-final_test.csv"), rows)
    return expected


@pytest.mark.parametrize("split", ["train", "test"])
def test_gtsrb_reads_ppm_and_csv(tmp_path, split):
    expected = make_gtsrb(str(tmp_path))[split]
    ds = GTSRB(tmp_path, split=split, transform=np.asarray)
    assert len(ds) == len(expected)
    assert ds.targets == [label for _, _, label in expected]
    for i, (pixels, roi, label) in enumerate(expected):
        image, target = ds[i]
        np.testing.assert_array_equal(image, pixels)
        assert target == label and ds.rois[i] == roi
    cropped = GTSRB(tmp_path, split=split, transform=np.asarray, crop_roi=True)
    pixels, (x1, y1, x2, y2), _ = expected[1]
    np.testing.assert_array_equal(cropped[1][0], pixels[y1:y2, x1:x2])


def test_gtsrb_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="Final_Training"):
        GTSRB(tmp_path)
    with pytest.raises(ValueError, match="split"):
        GTSRB(tmp_path, split="val")
    make_gtsrb(str(tmp_path))
    os.remove(tmp_path / "GT-final_test.csv")
    with pytest.raises(FileNotFoundError, match="GT-final_test.csv"):
        GTSRB(tmp_path, split="test")
    os.remove(tmp_path / "GTSRB" / "Final_Training" / "Images" / "00001" / "GT-00001.csv")
    with pytest.raises(FileNotFoundError, match="GT-00001.csv"):
        GTSRB(tmp_path)


# ------------------------------------------------------------------------ ImageFolder

def make_image_folder(root, classes=("cat", "dog", "emu")):
    samples = []
    for c, name in enumerate(sorted(classes)):
        for k, ext in enumerate((".png", ".bmp")):
            sub = os.path.join(root, name, "nested") if k else os.path.join(root, name)
            os.makedirs(sub, exist_ok=True)
            pixels = RNG.integers(0, 256, size=(6, 5, 3), dtype=np.uint8)
            path = os.path.join(sub, f"img{k}{ext}")
            Image.fromarray(pixels).save(path)
            samples.append((path, c, pixels))
    return samples


def test_image_folder_exact(tmp_path):
    expected = make_image_folder(str(tmp_path))
    (tmp_path / "cat" / "notes.txt").write_text("not an image")
    ds = ImageFolder(tmp_path, transform=np.asarray)
    assert ds.classes == ["cat", "dog", "emu"] and ds.class_to_idx == {"cat": 0, "dog": 1, "emu": 2}
    assert sorted(ds.samples) == sorted((p, c) for p, c, _ in expected)
    assert ds.targets == [c for _, c in ds.samples]
    by_path = {p: pixels for p, _, pixels in expected}
    for i, (path, label) in enumerate(ds.samples):
        image, target = ds[i]
        np.testing.assert_array_equal(image, by_path[path])
        assert target == label
    only_png = ImageFolder(tmp_path, extensions=("png",))
    assert len(only_png) == 3


def test_image_folder_errors_name_the_folder(tmp_path):
    (tmp_path / "only").mkdir()
    Image.new("RGB", (4, 4)).save(tmp_path / "only" / "a.png")
    with pytest.raises(ValueError, match=f"{tmp_path}.*at least 2 class"):
        ImageFolder(tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="empty holds no image"):
        ImageFolder(tmp_path)
    with pytest.raises(FileNotFoundError):
        ImageFolder(tmp_path / "missing")


# ------------------------------------------------------------------------ get_dataset

def test_get_dataset_names_and_folders(tmp_path, monkeypatch):
    assert isinstance(get_dataset("digits", train=False), Digits)
    write_mnist(str(tmp_path / "MNIST" / "raw"))
    publish(monkeypatch, tmp_path)
    assert isinstance(get_dataset("mnist", tmp_path), MNIST)
    make_cifar10(str(tmp_path))
    assert len(get_dataset("cifar10", tmp_path, train=False)) == 4
    gt_root = tmp_path / "gt"
    make_gtsrb(str(gt_root))
    assert get_dataset("gtsrb", gt_root, train=False).split == "test"
    tree = tmp_path / "xray"
    make_image_folder(str(tree / "train"), ("normal", "pneumonia"))
    make_image_folder(str(tree / "test"), ("normal", "pneumonia"))
    train = get_dataset(str(tree), train=True)
    test = get_dataset(tree, train=False)
    assert isinstance(train, ImageFolder) and train.root.endswith("train") and test.root.endswith("test")
    with pytest.raises(ValueError, match="unknown dataset 'imagenet'"):
        get_dataset("imagenet")


@pytest.mark.parametrize("name", ["../../outside.ppm", "/etc/passwd", "..", "a/../../b.ppm", ""])
def test_gtsrb_csv_naming_a_file_outside_the_dataset_is_refused(tmp_path, name):
    from minidl.errors import DatasetFormatError

    make_gtsrb(str(tmp_path))
    gt = tmp_path / "GTSRB" / "Final_Training" / "Images" / "00001" / "GT-00001.csv"
    write_gt(str(gt), [[name, 20, 22, 5, 6, 15, 17, 1]])
    with pytest.raises(DatasetFormatError, match=r"GT-00001\.csv: line 2: Filename .* inside the dataset folder"):
        GTSRB(tmp_path)
    # the test CSV is checked the same way
    gt = tmp_path / "GT-final_test.csv"
    write_gt(str(gt), [["00000.ppm", 25, 21, 5, 5, 19, 16, 3], [name, 25, 21, 5, 5, 19, 16, 3]])
    with pytest.raises(DatasetFormatError, match=r"GT-final_test\.csv: line 3"):
        GTSRB(tmp_path, split="test")


def test_gtsrb_csv_may_name_a_file_in_a_subfolder_of_its_folder(tmp_path):
    make_gtsrb(str(tmp_path))
    folder = tmp_path / "GTSRB" / "Final_Training" / "Images" / "00001"
    os.makedirs(folder / "sub")
    os.replace(folder / "00000_00000.ppm", folder / "sub" / "00000_00000.ppm")
    write_gt(str(folder / "GT-00001.csv"), [["sub/00000_00000.ppm", 21, 22, 5, 6, 16, 17, 1]])
    ds = GTSRB(tmp_path, transform=np.asarray)
    assert ds.targets.count(1) == 1 and ds[ds.targets.index(1)][0].shape == (22, 21, 3)


def test_published_archives_on_disk_are_verified_once_before_reading(tmp_path, monkeypatch):
    """A CIFAR archive or MNIST .gz already on disk is checked against its SHA-256 before it is read
    (a record beside it spares the next read the hashing), and a file that does not match is refused."""
    from minidl.datasets import download
    from minidl.errors import DatasetFormatError

    make_cifar10(str(tmp_path / "c"), archive=True)
    write_mnist(str(tmp_path / "m"))
    with pytest.raises(DatasetFormatError, match="SHA-256 mismatch"):
        CIFAR10(tmp_path / "c")  # the fake archive is not the published one
    with pytest.raises(DatasetFormatError, match="SHA-256 mismatch"):
        MNIST(tmp_path / "m")
    publish(monkeypatch, tmp_path)
    hashed = []
    real = download.sha256sum
    monkeypatch.setattr(download, "sha256sum", lambda path: hashed.append(path) or real(path))
    CIFAR10(tmp_path / "c")
    MNIST(tmp_path / "m")
    assert len(hashed) == 3  # the archive, the train images, the train labels
    assert os.path.isfile(str(tmp_path / "c" / CIFAR10.filename) + download.VERIFIED_SUFFIX)
    CIFAR10(tmp_path / "c")
    MNIST(tmp_path / "m")
    assert len(hashed) == 3  # recorded: not hashed again
