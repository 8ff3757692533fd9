"""The embedded text: five Shakespeare plays (public domain), read one character at a time.

The file ``data/shakespeare.txt.gz`` ships inside the package (633,794 ASCII characters, 76
distinct; source and licence in ``data/SHAKESPEARE_LICENSE.md``), so the language models train on
a fresh machine with no network. The vocabulary is the sorted set of characters of the whole
text; the split is fixed: the first 90% of the characters train, the last 10% validate.

A sample is a window of ``seq_len`` character ids and the same window shifted by one: the
model reads ``x[t]`` and learns to predict ``y[t] = x[t + 1]``.

Example::

    >>> from minidl.datasets import CharText
    >>> ds = CharText("train", seq_len=64)
    >>> x, y = ds[0]                       # int64 arrays of 64 ids; y[:-1] == x[1:]
    >>> ds.decode(x[:6])
    'HAMLET'
"""

import gzip
import os

import numpy as np

__all__ = ["SHAKESPEARE_PATH", "load_text", "CharVocab", "CharText"]

SHAKESPEARE_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "shakespeare.txt.gz")
VAL_FRACTION = 0.1  # the last 10% of the characters
_cache = {}


def load_text(path=SHAKESPEARE_PATH):
    """The embedded text as one ``str`` (read once)."""
    if path not in _cache:
        if not os.path.isfile(path):
            raise FileNotFoundError(f"the embedded text {path} is missing; reinstall minidl (it ships as package data)")
        with gzip.open(path, "rb") as f:
            _cache[path] = f.read().decode("utf-8")
    return _cache[path]


class CharVocab:
    """Characters <-> integer ids (ids follow the sorted characters)."""

    def __init__(self, chars):
        self.chars = sorted(set(chars))
        self.index = {c: i for i, c in enumerate(self.chars)}

    def __len__(self):
        return len(self.chars)

    def encode(self, text):
        """``str`` -> int64 array of ids; a character outside the vocabulary is a ValueError."""
        missing = sorted(set(text) - set(self.index))
        if missing:
            raise ValueError(f"characters not in the vocabulary: {''.join(missing)!r}")
        return np.array([self.index[c] for c in text], dtype=np.int64)

    def decode(self, ids):
        """Sequence of ids -> ``str``."""
        return "".join(self.chars[int(i)] for i in np.asarray(ids).reshape(-1))


class CharText:
    """Windows of the embedded text: ``ds[i] -> (x, y)``, int64 arrays of ``seq_len`` ids, ``y = x`` shifted by one.

    Args:
        split: ``"train"`` (first 90% of the characters) or ``"val"`` (last 10%).
        seq_len: window length.
        path: another gzip'ed or plain UTF-8 text file instead of the embedded plays.

    Windows ``i`` start at ``i * seq_len`` and do not overlap; :meth:`random_batch` draws windows
    at any offset, the usual way to train on a long text.
    """

    def __init__(self, split="train", seq_len=128, path=SHAKESPEARE_PATH):
        if split not in ("train", "val"):
            raise ValueError(f"split must be 'train' or 'val', got {split!r}")
        if int(seq_len) < 1:
            raise ValueError(f"seq_len must be >= 1, got {seq_len}")
        if str(path).endswith(".gz"):
            text = load_text(path)
        else:
            with open(path, encoding="utf-8") as f:
                text = f.read()
        self.vocab = CharVocab(text)
        ids = self.vocab.encode(text)
        cut = int(round(len(ids) * (1.0 - VAL_FRACTION)))
        self.split, self.seq_len = split, int(seq_len)
        self.ids = ids[:cut] if split == "train" else ids[cut:]
        if len(self.ids) < self.seq_len + 1:
            raise ValueError(f"the {split} split has {len(self.ids)} characters, fewer than seq_len + 1 = "
                             f"{self.seq_len + 1}")

    @property
    def vocab_size(self):
        return len(self.vocab)

    def encode(self, text):
        return self.vocab.encode(text)

    def decode(self, ids):
        return self.vocab.decode(ids)

    def __len__(self):
        return (len(self.ids) - 1) // self.seq_len

    def __getitem__(self, index):
        n = len(self)
        if not -n <= index < n:
            raise IndexError(f"index {index} out of range for {n} windows")
        start = (index % n) * self.seq_len
        return self.ids[start:start + self.seq_len], self.ids[start + 1:start + self.seq_len + 1]

    def random_batch(self, batch_size, rng):
        """``(x, y)``, two ``(batch_size, seq_len)`` int64 arrays of windows at random offsets.

        ``rng``: a ``numpy.random.Generator`` (the caller's seed makes the batches repeatable).
        """
        starts = rng.integers(0, len(self.ids) - self.seq_len, size=batch_size)
        rows = starts[:, None] + np.arange(self.seq_len)
        return self.ids[rows], self.ids[rows + 1]
