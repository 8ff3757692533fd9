"""minidl.data: datasets, random_split, DataLoader order, collate, worker threads and resume."""

import collections
import threading

import numpy as np
import pytest

import minidl
from minidl.data import (
    ConcatDataset,
    DataLoader,
    Dataset,
    Subset,
    TensorDataset,
    default_collate,
    random_split,
)
from minidl.data import transforms as T


class AugmentedImages(Dataset):
    """Random crops and flips of fixed images: every item depends on the transforms' RNG."""

    def __init__(self, n=23):
        rng = np.random.default_rng(0)
        self.images = rng.integers(0, 256, size=(n, 12, 12, 3), dtype=np.uint8)
        self.transform = T.Compose([
            T.RandomCrop(8, padding=2), T.RandomHorizontalFlip(), T.ColorJitter(0.3, 0.3), T.ToTensor(),
        ])
        self.loaded_by = set()

    def __len__(self):
        return len(self.images)

    def __getitem__(self, index):
        self.loaded_by.add(threading.current_thread().name)
        return self.transform(self.images[index]), index


def _as_np(x):
    return np.asarray(x.numpy()) if hasattr(x, "numpy") else np.asarray(x)


# ------------------------------------------------------------------ datasets
def test_tensor_dataset_arrays_and_tensors():
    x = np.arange(12.0).reshape(6, 2)
    y = minidl.tensor(np.arange(6))
    ds = TensorDataset(x, y)
    assert len(ds) == 6
    xi, yi = ds[4]
    np.testing.assert_array_equal(xi, [8.0, 9.0])
    assert int(yi) == 4
    with pytest.raises(ValueError, match=r"tensors\[1\]: expected first dimension 6"):
        TensorDataset(x, np.arange(5))


def test_subset_concat_and_add():
    a = TensorDataset(np.arange(3))
    b = TensorDataset(np.arange(10, 15))
    cat = a + b
    assert isinstance(cat, ConcatDataset) and len(cat) == 8
    assert [int(cat[i][0]) for i in range(8)] == [0, 1, 2, 10, 11, 12, 13, 14]
    assert int(cat[-1][0]) == 14 and int(cat[-8][0]) == 0
    with pytest.raises(IndexError, match="index"):
        cat[8]
    sub = Subset(cat, [7, 0, 3])
    assert [int(sub[i][0]) for i in range(3)] == [14, 0, 10]


def test_random_split_ints_fractions_and_seed():
    ds = TensorDataset(np.arange(10))
    parts = random_split(ds, [3, 7], generator=0)
    assert [len(p) for p in parts] == [3, 7]
    seen = sorted(int(p[i][0]) for p in parts for i in range(len(p)))
    assert seen == list(range(10))
    again = random_split(ds, [3, 7], generator=np.random.default_rng(0))
    assert parts[0].indices == again[0].indices
    assert random_split(ds, [3, 7], generator=1)[0].indices != parts[0].indices
    with pytest.raises(ValueError, match="lengths"):
        random_split(ds, [3, 6])


@pytest.mark.parametrize("n, fractions", [(10, [0.33, 0.33, 0.34]), (7, [0.5, 0.5]), (11, [0.1, 0.2, 0.3, 0.4])])
def test_random_split_fraction_lengths_as_torch(n, fractions):
    torch = pytest.importorskip("torch")
    ours = [len(p) for p in random_split(TensorDataset(np.arange(n)), fractions, generator=0)]
    ref = [len(p) for p in torch.utils.data.random_split(range(n), fractions)]
    assert ours == ref


# ------------------------------------------------------------------ collate
def test_default_collate_types_and_structure():
    samples = [
        {"image": np.full((2, 3), k, np.float32), "label": k, "name": f"s{k}", "w": 0.5 * k,
         "pair": (np.int32(k), minidl.tensor(np.array([k, k], np.float64)))}
        for k in range(4)
    ]
    batch = default_collate(samples)
    assert isinstance(batch["image"], minidl.Tensor) and batch["image"].shape == (4, 2, 3)
    assert batch["image"].dtype == np.float32
    assert batch["label"].dtype == np.int64 and batch["label"].numpy().tolist() == [0, 1, 2, 3]
    assert batch["w"].dtype == np.float64
    assert batch["name"] == ["s0", "s1", "s2", "s3"]
    assert isinstance(batch["pair"], tuple)
    assert batch["pair"][0].dtype == np.int32
    assert batch["pair"][1].shape == (4, 2) and batch["pair"][1].dtype == np.float64
    Point = collections.namedtuple("Point", "x y")
    pts = default_collate([Point(1, 2.0), Point(3, 4.0)])
    assert isinstance(pts, Point) and pts.x.numpy().tolist() == [1, 3]
    with pytest.raises(ValueError, match=r"shape \(2, 3\)"):
        default_collate([np.zeros((2, 3)), np.zeros((3, 2))])
    with pytest.raises(TypeError, match="ToTensor"):
        default_collate([object()])


# ------------------------------------------------------------------ loader order
def test_len_and_drop_last():
    ds = TensorDataset(np.arange(10))
    assert len(DataLoader(ds, batch_size=3)) == 4
    assert len(DataLoader(ds, batch_size=3, drop_last=True)) == 3
    assert [b[0].shape[0] for b in DataLoader(ds, batch_size=3, drop_last=True)] == [3, 3, 3]
    assert [b[0].numpy().tolist() for b in DataLoader(ds, batch_size=4)] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    with pytest.raises(ValueError, match="batch_size"):
        DataLoader(ds, batch_size=0)


def test_shuffle_every_sample_once_new_order_each_epoch_and_seeded():
    ds = TensorDataset(np.arange(50))
    loader = DataLoader(ds, batch_size=8, shuffle=True, seed=42)
    epochs = [np.concatenate([b[0].numpy() for b in loader]) for _ in range(3)]
    for order in epochs:
        assert sorted(order.tolist()) == list(range(50))
    assert not np.array_equal(epochs[0], epochs[1])
    same = DataLoader(ds, batch_size=8, shuffle=True, seed=42)
    np.testing.assert_array_equal(np.concatenate([b[0].numpy() for b in same]), epochs[0])
    minidl.manual_seed(7)
    a = DataLoader(ds, batch_size=8, shuffle=True)
    minidl.manual_seed(7)
    b = DataLoader(ds, batch_size=8, shuffle=True)
    assert a.seed == b.seed
    gen = DataLoader(ds, shuffle=True, generator=np.random.default_rng(3))
    assert gen.seed == DataLoader(ds, shuffle=True, generator=np.random.default_rng(3)).seed


# ------------------------------------------------------------------ workers and augmentation
def _collect(loader):
    images, indices = [], []
    for x, idx in loader:
        images.append(x.numpy())
        indices.append(idx.numpy())
    return np.concatenate(images), np.concatenate(indices)


def test_workers_give_identical_batches_and_augmentations():
    ds = AugmentedImages()
    ref_x, ref_i = _collect(DataLoader(ds, batch_size=4, shuffle=True, seed=9, num_workers=0))
    assert ref_x.shape == (23, 3, 8, 8)
    for workers in (1, 3):
        x, i = _collect(DataLoader(ds, batch_size=4, shuffle=True, seed=9, num_workers=workers))
        np.testing.assert_array_equal(i, ref_i)
        np.testing.assert_array_equal(x, ref_x)
    assert any(name.startswith("minidl-data") for name in ds.loaded_by)
    # the augmentation of a sample depends on (seed, epoch, index) only, not on the batching
    x1, _ = _collect(DataLoader(ds, batch_size=1, shuffle=True, seed=9, num_workers=2))
    np.testing.assert_array_equal(x1, ref_x)
    # a different epoch augments differently, and a different seed too
    loader = DataLoader(ds, batch_size=23, seed=9)
    first, second = [next(iter(loader))[0].numpy() for _ in range(2)]
    assert not np.array_equal(first, second)
    other = next(iter(DataLoader(ds, batch_size=23, seed=10)))[0].numpy()
    assert not np.array_equal(first, other)


def test_worker_errors_propagate():
    class Broken(Dataset):
        def __len__(self):
            return 5

        def __getitem__(self, index):
            if index == 3:
                raise KeyError("sample 3 is corrupt")
            return np.zeros(2)

    with pytest.raises(KeyError, match="corrupt"):
        list(DataLoader(Broken(), batch_size=2, num_workers=2))


# ------------------------------------------------------------------ resume
def test_state_dict_resumes_mid_epoch_exactly():
    ds = AugmentedImages(n=17)
    full = DataLoader(ds, batch_size=3, shuffle=True, seed=5)
    run = [[_as_np(x) for x in batch] for epoch in range(2) for batch in full]

    interrupted = DataLoader(ds, batch_size=3, shuffle=True, seed=5)
    list(interrupted)                                  # epoch 0
    it = iter(interrupted)                             # epoch 1
    seen = [next(it), next(it)]
    state = interrupted.state_dict()
    assert state["epoch"] == 1 and state["batches_done"] == 2

    resumed = DataLoader(ds, batch_size=3, shuffle=True, seed=123, num_workers=2)
    resumed.load_state_dict(state)
    rest = [[_as_np(x) for x in batch] for batch in resumed]
    got = [[_as_np(x) for x in batch] for batch in seen] + rest
    expected = run[len(full):]
    assert len(got) == len(expected)
    for a, b in zip(got, expected):
        for u, v in zip(a, b):
            np.testing.assert_array_equal(u, v)
    # after the resumed epoch the loader goes on with epoch 2
    assert resumed.state_dict() == {"epoch": 2, "batches_done": 0, "seed": 5}


def test_state_dict_at_epoch_boundaries():
    ds = TensorDataset(np.arange(6))
    loader = DataLoader(ds, batch_size=2, shuffle=True, seed=1)
    assert loader.state_dict() == {"epoch": 0, "batches_done": 0, "seed": 1}
    for k, _ in enumerate(loader):
        if k == 2:  # saved while holding the last batch: the epoch is complete
            assert loader.state_dict()["epoch"] == 1 and loader.state_dict()["batches_done"] == 0
    next_epoch = [b[0].numpy().tolist() for b in loader]
    other = DataLoader(ds, batch_size=2, shuffle=True, seed=99)
    other.load_state_dict({"epoch": 1, "batches_done": 0, "seed": 1})
    assert [b[0].numpy().tolist() for b in other] == next_epoch
    with pytest.raises(ValueError, match="batches_done"):
        other.load_state_dict({"epoch": 0, "batches_done": 9, "seed": 1})
    loader.set_epoch(0)
    assert loader.state_dict()["epoch"] == 0
