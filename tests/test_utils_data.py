"""``minidl.utils.data`` (PyTorch's import path), the samplers, ``DataLoader``'s sampler options and
``minidl.Generator``."""
import numpy as np
import pytest

import minidl
from minidl.utils.data import (
    BatchSampler,
    ConcatDataset,
    DataLoader,
    Dataset,
    RandomSampler,
    SequentialSampler,
    Subset,
    SubsetRandomSampler,
    TensorDataset,
    WeightedRandomSampler,
    random_split,
)


def _dataset(n=10):
    return TensorDataset(np.arange(n, dtype=np.float32).reshape(n, 1), np.arange(n))


def test_the_import_path_holds_minidl_data_classes():
    import minidl.data as data

    assert minidl.utils.data.DataLoader is data.DataLoader
    assert Dataset is data.Dataset and Subset is data.Subset and ConcatDataset is data.ConcatDataset
    assert WeightedRandomSampler is data.WeightedRandomSampler


# ---------------------------------------------------------------------- Generator

def test_generator_api():
    g = minidl.Generator()
    assert g.initial_seed() == 67280421310721          # torch.Generator().initial_seed()
    assert g.manual_seed(5) is g and g.initial_seed() == 5
    assert minidl.Generator().manual_seed(-1).initial_seed() == 2**64 - 1
    state = g.get_state()
    a = minidl.rand(4, generator=g).numpy()
    b = minidl.rand(4, generator=g).numpy()
    assert not np.array_equal(a, b)
    g.set_state(state)
    np.testing.assert_array_equal(minidl.rand(4, generator=g).numpy(), a)
    seeded = g.seed()
    assert g.initial_seed() == seeded
    with pytest.raises(TypeError, match="int"):
        g.manual_seed(1.5)


def test_generator_drives_every_random_function_and_leaves_the_global_one_alone():
    minidl.manual_seed(0)
    before = minidl.get_rng_state()
    draws = []
    for _ in range(2):
        g = minidl.Generator().manual_seed(7)
        draws.append([
            minidl.rand(3, generator=g).numpy(), minidl.randn(2, 2, generator=g).numpy(),
            minidl.randint(0, 100, (5,), generator=g).numpy(), minidl.randperm(6, generator=g).numpy(),
        ])
    for x, y in zip(*draws):
        np.testing.assert_array_equal(x, y)
    assert sorted(draws[0][3].tolist()) == list(range(6)) and draws[0][3].dtype == np.int64
    assert minidl.get_rng_state() == before
    with pytest.raises(TypeError, match="generator"):
        minidl.rand(2, generator="seed")


def test_random_split_and_dataloader_take_a_generator():
    ds = _dataset(10)
    splits = [random_split(ds, [0.7, 0.3], generator=minidl.Generator().manual_seed(1)) for _ in range(2)]
    assert splits[0][0].indices == splits[1][0].indices
    assert sorted(splits[0][0].indices + splits[0][1].indices) == list(range(10))
    orders = []
    for _ in range(2):
        loader = DataLoader(ds, batch_size=4, shuffle=True, generator=minidl.Generator().manual_seed(3))
        orders.append(np.concatenate([y.numpy() for _, y in loader]).tolist())
    assert orders[0] == orders[1] and sorted(orders[0]) == list(range(10)) and orders[0] != list(range(10))


# ---------------------------------------------------------------------- samplers

def test_sequential_and_batch_sampler():
    ds = _dataset(7)
    assert list(SequentialSampler(ds)) == list(range(7)) and len(SequentialSampler(ds)) == 7
    batches = BatchSampler(SequentialSampler(ds), batch_size=3, drop_last=False)
    assert list(batches) == [[0, 1, 2], [3, 4, 5], [6]] and len(batches) == 3
    dropped = BatchSampler(SequentialSampler(ds), batch_size=3, drop_last=True)
    assert list(dropped) == [[0, 1, 2], [3, 4, 5]] and len(dropped) == 2
    with pytest.raises(ValueError, match="batch_size"):
        BatchSampler(SequentialSampler(ds), batch_size=0, drop_last=False)
    with pytest.raises(ValueError, match="drop_last"):
        BatchSampler(SequentialSampler(ds), batch_size=2, drop_last=1)


def test_random_sampler():
    ds = _dataset(10)
    g = minidl.Generator().manual_seed(0)
    first, second = list(RandomSampler(ds, generator=g)), list(RandomSampler(ds, generator=g))
    assert sorted(first) == list(range(10)) and first != second      # one generator, new order each pass
    long = list(RandomSampler(ds, num_samples=25, generator=g))      # two whole permutations and a half
    assert len(long) == 25 and sorted(long[:10]) == sorted(long[10:20]) == list(range(10))
    assert len(set(long[20:])) == 5
    drawn = list(RandomSampler(ds, replacement=True, num_samples=200, generator=g))
    assert len(drawn) == 200 and set(drawn) <= set(range(10)) and len(set(drawn)) == 10
    minidl.manual_seed(4)
    a = list(RandomSampler(ds))
    minidl.manual_seed(4)
    assert list(RandomSampler(ds)) == a                               # the global seed fixes it
    with pytest.raises(ValueError, match="num_samples"):
        RandomSampler(ds, num_samples=0)
    with pytest.raises(TypeError, match="replacement"):
        RandomSampler(ds, replacement=1)
    indices = list(SubsetRandomSampler([3, 5, 7], generator=g))
    assert sorted(indices) == [3, 5, 7]


def test_weighted_random_sampler():
    g = minidl.Generator().manual_seed(0)
    weights = [0.1, 0.0, 0.6, 0.3]
    drawn = np.array(list(WeightedRandomSampler(weights, 20000, generator=g)))
    freq = np.bincount(drawn, minlength=4) / drawn.size
    np.testing.assert_allclose(freq, weights, atol=0.02)
    assert freq[1] == 0
    once = list(WeightedRandomSampler(weights, 3, replacement=False, generator=g))
    assert sorted(once) == [0, 2, 3]
    assert len(WeightedRandomSampler(minidl.tensor([1.0, 2.0]), 5)) == 5
    with pytest.raises(ValueError, match="without replacement"):
        WeightedRandomSampler(weights, 4, replacement=False)
    with pytest.raises(ValueError, match="num_samples"):
        WeightedRandomSampler(weights, -1)
    with pytest.raises(ValueError, match="negative"):
        WeightedRandomSampler([1.0, -1.0], 2)


def test_weighted_sampler_matches_torch_probabilities():
    torch = pytest.importorskip("torch")
    weights = [1.0, 3.0, 6.0]
    theirs = np.bincount(list(torch.utils.data.WeightedRandomSampler(
        weights, 30000, generator=torch.Generator().manual_seed(0))), minlength=3) / 30000
    mine = np.bincount(list(WeightedRandomSampler(weights, 30000, generator=minidl.Generator())), minlength=3) / 30000
    np.testing.assert_allclose(mine, theirs, atol=0.02)


# ---------------------------------------------------------------------- DataLoader options

def test_dataloader_with_a_sampler_and_a_batch_sampler():
    ds = _dataset(10)
    sampler = SubsetRandomSampler([1, 3, 5, 7, 9], generator=minidl.Generator().manual_seed(0))
    loader = DataLoader(ds, batch_size=2, sampler=sampler)
    assert len(loader) == 3
    seen = np.concatenate([y.numpy() for _, y in loader]).tolist()
    assert sorted(seen) == [1, 3, 5, 7, 9]
    batches = BatchSampler(SequentialSampler(range(6)), batch_size=4, drop_last=False)
    loader = DataLoader(ds, batch_sampler=batches, num_workers=2)
    assert len(loader) == 2
    assert [y.numpy().tolist() for _, y in loader] == [[0, 1, 2, 3], [4, 5]]
    weighted = DataLoader(ds, batch_size=5, sampler=WeightedRandomSampler([0] * 9 + [1], 10))
    assert all((y.numpy() == 9).all() for _, y in weighted)


def test_dataloader_checks_and_accepts_pytorch_options():
    ds = _dataset(6)
    with pytest.raises(ValueError, match="mutually exclusive with shuffle"):
        DataLoader(ds, shuffle=True, sampler=SequentialSampler(ds))
    with pytest.raises(ValueError, match="batch_sampler"):
        DataLoader(ds, batch_size=2, batch_sampler=BatchSampler(SequentialSampler(ds), 2, False))
    with pytest.raises(ValueError, match="persistent_workers"):
        DataLoader(ds, persistent_workers=True)
    loader = DataLoader(ds, batch_size=4, pin_memory=True, persistent_workers=True, num_workers=1,
                        prefetch_factor=None)
    assert loader.pin_memory and loader.persistent_workers
    assert [y.numpy().tolist() for _, y in loader] == [[0, 1, 2, 3], [4, 5]]


def test_dataloader_matches_torch_with_a_batch_sampler():
    torch = pytest.importorskip("torch")
    x = np.arange(14, dtype=np.float32).reshape(7, 2)
    batches = [[6, 0], [3, 4, 5], [1]]
    mine = [b.numpy() for b, in DataLoader(TensorDataset(x), batch_sampler=batches)]
    theirs = [b.numpy() for b, in torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.from_numpy(x)),
                                                                batch_sampler=batches)]
    assert len(mine) == len(theirs)
    for m, t in zip(mine, theirs):
        np.testing.assert_array_equal(m, t)
