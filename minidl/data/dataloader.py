"""``DataLoader``: reproducible shuffled batches, thread-parallel loading, exact resume.

Reproducibility design
----------------------
Everything random in one epoch is derived from three integers, never from shared state:

* the loader's base ``seed`` (given, drawn once from ``generator``, or drawn once from
  minidl's global generator at construction),
* the ``epoch`` number (counted by the loader, saved by ``state_dict``),
* the dataset ``index`` of the sample.

The epoch's order is ``default_rng([seed, epoch, 0]).permutation(n)``. Each sample is loaded
with its own generator ``default_rng([seed, epoch, 1, index])`` (made on its first draw)
installed as the *current generator* of ``minidl.data.transforms`` (a thread-local, see
``transforms.use_rng``), so the random augmentations of a sample do not depend on which
thread loads it or in what order: ``num_workers=4`` gives bit-identical batches to
``num_workers=0``.

Example::

    >>> import numpy as np
    >>> from minidl.data import DataLoader, TensorDataset
    >>> ds = TensorDataset(np.zeros((10, 3), np.float32), np.arange(10))
    >>> loader = DataLoader(ds, batch_size=4, shuffle=True, seed=0)
    >>> len(loader)
    3
    >>> [tuple(y.shape) for _, y in loader]
    [(4,), (4,), (2,)]
"""

import collections.abc
import functools
import math
import numbers
from collections import deque
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from minidl import random as _random
from minidl.creation import from_numpy
from minidl.data.convert import is_tensor, to_numpy
from minidl.data.dataset import global_seed
from minidl.data.transforms import use_rng

__all__ = ["DataLoader", "default_collate"]


def _batch_tensor(array):
    """The batch as a ``minidl.Tensor`` sharing the freshly stacked array (no copy)."""
    return from_numpy(np.ascontiguousarray(array))


def _stack(arrays):
    """``np.stack`` with an error that names the first mismatching shape."""
    shape = arrays[0].shape
    for k, a in enumerate(arrays):
        if a.shape != shape:
            raise ValueError(
                f"batch: expected every sample of this field to have shape {shape} (as sample 0), "
                f"got {a.shape} at sample {k}"
            )
    return np.stack(arrays)


def default_collate(batch):
    """Merge a list of samples into a batch, field by field: the one place a batch becomes a Tensor.

    * ``numpy.ndarray`` (or a ``minidl.Tensor`` a dataset returned, brought to the host with
      ``to_numpy``) -> stacked along a new axis 0 into a ``minidl.Tensor`` that shares the
      stacked memory (dtype kept);
    * Python ``int`` -> int64 ``Tensor`` (labels), ``float`` -> float64, ``bool`` -> bool,
      NumPy scalars keep their dtype;
    * ``str``/``bytes`` -> a list;
    * ``dict`` -> dict of collated fields; ``tuple``/``list``/namedtuple -> the same type of
      collated fields (every sample must have the same length).
    """
    if not isinstance(batch, (list, tuple)) or len(batch) == 0:
        raise ValueError("batch: expected a non-empty list of samples")
    elem = batch[0]
    if isinstance(elem, np.ndarray) or is_tensor(elem):
        return _batch_tensor(_stack([to_numpy(e) for e in batch]))
    if isinstance(elem, np.generic):
        return _batch_tensor(np.array(batch))
    if isinstance(elem, bool):
        return _batch_tensor(np.array(batch, dtype=np.bool_))
    if isinstance(elem, numbers.Integral):
        return _batch_tensor(np.array(batch, dtype=np.int64))
    if isinstance(elem, numbers.Real):
        return _batch_tensor(np.array(batch, dtype=np.float64))
    if isinstance(elem, (str, bytes)):
        return list(batch)
    if isinstance(elem, collections.abc.Mapping):
        return {key: default_collate([sample[key] for sample in batch]) for key in elem}
    if isinstance(elem, tuple) and hasattr(elem, "_fields"):  # namedtuple
        return type(elem)(*(default_collate(list(field)) for field in zip(*batch)))
    if isinstance(elem, (tuple, list)):
        size = len(elem)
        for k, sample in enumerate(batch):
            if len(sample) != size:
                raise ValueError(
                    f"batch: expected every sample to have {size} fields (as sample 0), got {len(sample)} at sample {k}"
                )
        fields = [default_collate(list(field)) for field in zip(*batch)]
        return tuple(fields) if isinstance(elem, tuple) else fields
    raise TypeError(
        "batch: expected samples made of Tensors, numpy arrays, numbers, strings, dicts or sequences, "
        f"got {type(elem).__name__} (convert PIL images with transforms.ToTensor())"
    )


class DataLoader:
    """Iterate over ``dataset`` in batches, every sample exactly once per epoch.

    Args:
        dataset: a map-style dataset (``__getitem__`` and ``__len__``).
        batch_size: samples per batch (int >= 1).
        shuffle: visit samples in a new random order each epoch (reproducible under ``seed``).
        drop_last: drop the last, incomplete batch.
        collate_fn: merges a list of samples into a batch; ``default_collate`` by default.
        num_workers: 0 loads in the calling thread; ``k > 0`` loads samples with a pool of
            ``k`` threads (decoding and augmenting with NumPy/Pillow release the GIL). The
            batches are the same, in the same order, whatever ``num_workers`` is.
        seed: base seed of the shuffle order and of the per-sample augmentation generators.
        generator: ``numpy.random.Generator`` or int used to draw the base seed when ``seed`` is
            None. With neither, the base seed is drawn at construction from minidl's global
            generator, so ``minidl.manual_seed(n)`` before building the loader fixes it.
        prefetch_factor: with workers, how many batches are loaded ahead per worker.
        sampler: an iterable of dataset indices (``minidl.utils.data.RandomSampler``,
            ``WeightedRandomSampler``, ...) to batch instead of the loader's own order; excludes
            ``shuffle``.
        batch_sampler: an iterable of lists of indices, each one batch; excludes ``batch_size``,
            ``shuffle``, ``sampler`` and ``drop_last``.
        pin_memory, persistent_workers: accepted as in PyTorch and ignored: batches are made in
            host memory that needs no pinning here, and the workers are threads that live for
            one pass (nothing to keep between epochs).

    ``state_dict()`` / ``load_state_dict()`` save and restore the epoch counter, the position
    inside an unfinished epoch and the base seed, so a resumed run sees exactly the batches
    that the interrupted one would have seen next. With a ``sampler`` or ``batch_sampler``, the
    order is the sampler's: a restored loader skips the batches already handed out of what the
    sampler yields on its next pass.
    """

    def __init__(self, dataset, batch_size=1, shuffle=False, drop_last=False, collate_fn=None,
                 num_workers=0, seed=None, generator=None, prefetch_factor=2, *, sampler=None,
                 batch_sampler=None, pin_memory=False, persistent_workers=False):
        if prefetch_factor is None:
            prefetch_factor = 2
        if batch_sampler is not None and (batch_size != 1 or shuffle or sampler is not None or drop_last):
            raise ValueError("batch_sampler option is mutually exclusive with batch_size, shuffle, sampler, "
                             "and drop_last")
        if sampler is not None and shuffle:
            raise ValueError("sampler option is mutually exclusive with shuffle")
        if persistent_workers and num_workers == 0:
            raise ValueError("persistent_workers option needs num_workers > 0")
        if not isinstance(batch_size, numbers.Integral) or isinstance(batch_size, bool) or batch_size < 1:
            raise ValueError(f"batch_size: expected an int >= 1, got {batch_size!r}")
        if not isinstance(num_workers, numbers.Integral) or num_workers < 0:
            raise ValueError(f"num_workers: expected an int >= 0, got {num_workers!r}")
        if not isinstance(prefetch_factor, numbers.Integral) or prefetch_factor < 1:
            raise ValueError(f"prefetch_factor: expected an int >= 1, got {prefetch_factor!r}")
        if collate_fn is not None and not callable(collate_fn):
            raise TypeError(f"collate_fn: expected a callable or None, got {type(collate_fn).__name__}")
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        self.collate_fn = default_collate if collate_fn is None else collate_fn
        self.num_workers = int(num_workers)
        self.prefetch_factor = int(prefetch_factor)
        self.sampler = sampler
        self.batch_sampler = batch_sampler
        self.pin_memory = bool(pin_memory)              # accepted, no effect (see the docstring)
        self.persistent_workers = bool(persistent_workers)
        self.seed = self._base_seed(seed, generator)
        self._next_epoch = 0        # the epoch the next __iter__ starts
        self._resume_batch = 0      # batches to skip in that epoch (set by load_state_dict)
        self._active = None         # [epoch, batches handed out] of the running iteration

    @staticmethod
    def _base_seed(seed, generator):
        if seed is not None:
            if not isinstance(seed, numbers.Integral) or isinstance(seed, bool) or seed < 0:
                raise ValueError(f"seed: expected a non-negative int or None, got {seed!r}")
            return int(seed)
        if generator is not None:
            if isinstance(generator, numbers.Integral) and not isinstance(generator, bool):
                generator = np.random.default_rng(int(generator))
            if isinstance(generator, _random.Generator):
                generator = generator.rng
            if not isinstance(generator, np.random.Generator):
                raise TypeError(
                    "generator: expected a minidl.Generator, a numpy.random.Generator, an int or None, "
                    f"got {type(generator).__name__}"
                )
            return int(generator.integers(0, 2**63 - 1))
        return global_seed()

    # ------------------------------------------------------------------ order and batches
    def __len__(self):
        if self.batch_sampler is not None:
            return len(self.batch_sampler)
        n = len(self.dataset) if self.sampler is None else len(self.sampler)
        if self.drop_last:
            return n // self.batch_size
        return math.ceil(n / self.batch_size)

    def sample_order(self, epoch):
        """The dataset indices of ``epoch`` in visiting order (a permutation when shuffling)."""
        n = len(self.dataset)
        if not self.shuffle:
            return np.arange(n)
        return np.random.default_rng([self.seed, int(epoch), 0]).permutation(n)

    def _batches(self, epoch):
        if self.batch_sampler is not None:
            return [[int(i) for i in batch] for batch in self.batch_sampler]
        if self.sampler is not None:
            order = [int(i) for i in self.sampler]
        else:
            order = self.sample_order(epoch).tolist()
        batches = [order[k:k + self.batch_size] for k in range(0, len(order), self.batch_size)]
        if self.drop_last and batches and len(batches[-1]) < self.batch_size:
            batches.pop()
        return batches

    def sample_rng(self, epoch, index):
        """The generator that the augmentations of sample ``index`` see in ``epoch``."""
        return np.random.default_rng([self.seed, int(epoch), 1, int(index)])

    def _fetch(self, epoch, index):
        # the sample's generator is made on its first draw (plain pipelines draw nothing)
        with use_rng(functools.partial(self.sample_rng, epoch, index)):
            return self.dataset[index]

    # ------------------------------------------------------------------ iteration
    def __iter__(self):
        epoch = self._next_epoch
        start = self._resume_batch
        self._next_epoch = epoch + 1
        self._resume_batch = 0
        state = [epoch, start]
        self._active = state
        return self._generate(epoch, start, state)

    def _generate(self, epoch, start, state):
        batches = self._batches(epoch)[start:]
        if self.num_workers == 0:
            for indices in batches:
                samples = [self._fetch(epoch, i) for i in indices]
                state[1] += 1
                yield self.collate_fn(samples)
        else:
            pool = ThreadPoolExecutor(max_workers=self.num_workers, thread_name_prefix="minidl-data")
            try:
                pending = deque()  # futures of whole batches, in order
                ahead = self.num_workers * self.prefetch_factor
                upcoming = iter(batches)
                for indices in upcoming:
                    pending.append([pool.submit(self._fetch, epoch, i) for i in indices])
                    if len(pending) >= ahead:
                        break
                while pending:
                    futures = pending.popleft()
                    samples = [f.result() for f in futures]
                    indices = next(upcoming, None)
                    if indices is not None:
                        pending.append([pool.submit(self._fetch, epoch, i) for i in indices])
                    state[1] += 1
                    yield self.collate_fn(samples)
            finally:
                pool.shutdown(wait=True, cancel_futures=True)
        if self._active is state:
            self._active = None

    # ------------------------------------------------------------------ resume
    def set_epoch(self, epoch):
        """Make the next iteration run ``epoch`` from its first batch."""
        if not isinstance(epoch, numbers.Integral) or epoch < 0:
            raise ValueError(f"epoch: expected an int >= 0, got {epoch!r}")
        self._next_epoch = int(epoch)
        self._resume_batch = 0
        self._active = None

    def state_dict(self):
        """``{"epoch", "batches_done", "seed"}``: where the next batch comes from.

        Saved inside an epoch, ``batches_done`` counts the batches already handed out, and a
        loader restored from it continues that epoch with the next batch.
        """
        if self._active is not None:
            epoch, done = self._active
            if done < len(self):
                return {"epoch": int(epoch), "batches_done": int(done), "seed": int(self.seed)}
            return {"epoch": int(epoch) + 1, "batches_done": 0, "seed": int(self.seed)}
        return {"epoch": int(self._next_epoch), "batches_done": int(self._resume_batch), "seed": int(self.seed)}

    def load_state_dict(self, state):
        """Restore what ``state_dict`` saved; the next ``iter()`` resumes from there."""
        for key in ("epoch", "batches_done", "seed"):
            if key not in state:
                raise ValueError(f"state: expected keys epoch, batches_done, seed; missing {key!r}")
        epoch, done, seed = int(state["epoch"]), int(state["batches_done"]), int(state["seed"])
        if epoch < 0 or seed < 0:
            raise ValueError(f"state: expected non-negative epoch and seed, got epoch={epoch}, seed={seed}")
        if not 0 <= done <= len(self):
            raise ValueError(f"state['batches_done']: expected 0..{len(self)}, got {done}")
        self.seed = seed
        self._next_epoch = epoch
        self._resume_batch = done
        self._active = None
