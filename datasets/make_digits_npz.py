"""Build ``data/digits.npz`` from the UCI optdigits copy that scikit-learn ships.

Run once by a maintainer (the engine itself never imports scikit-learn)::

    python -m minidl.datasets.make_digits_npz path/to/sklearn/datasets/data/digits.csv.gz

The CSV has one digit per row: 64 pixel counts (0..16, row-major 8x8) and the
label in the last column. The output holds

- ``images``: uint8 (1797, 8, 8), values 0..16 (on-pixels counted in 4x4 blocks
  of the original 32x32 bitmaps, Alpaydin & Kaynak 1998);
- ``labels``: int64 (1797,);
- ``train_idx`` / ``test_idx``: a fixed stratified 80/20 split, drawn per class
  with ``numpy.random.default_rng(SPLIT_SEED)`` and stored, so it never changes.
"""

import argparse
import gzip
import os

import numpy as np

SPLIT_SEED = 20240613
TEST_FRACTION = 0.2


def read_digits_csv(path):
    """Return ``(images uint8 (N, 8, 8), labels int64 (N,))`` from the CSV (gzipped or not)."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt") as f:
        table = np.loadtxt(f, delimiter=",", dtype=np.int64)  # (N, 65)
    if table.ndim != 2 or table.shape[1] != 65:
        raise ValueError(f"{path}: expected rows of 64 pixels and 1 label, got shape {table.shape}")
    pixels, labels = table[:, :64], table[:, 64]
    if pixels.min() < 0 or pixels.max() > 16:
        raise ValueError(f"{path}: pixel counts must lie in 0..16, got {pixels.min()}..{pixels.max()}")
    return pixels.reshape(-1, 8, 8).astype(np.uint8), labels.astype(np.int64)


def stratified_split(labels, test_fraction=TEST_FRACTION, seed=SPLIT_SEED):
    """Per class, put ``round(test_fraction * n_c)`` random samples in the test set.

    Returns sorted ``(train_idx, test_idx)`` int64 arrays that partition ``range(N)``.
    """
    rng = np.random.default_rng(seed)
    train, test = [], []
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        members = members[rng.permutation(len(members))]
        n_test = int(round(test_fraction * len(members)))
        test.append(members[:n_test])
        train.append(members[n_test:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("csv", help="digits.csv.gz as shipped in sklearn/datasets/data/")
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "data", "digits.npz"))
    args = parser.parse_args(argv)
    images, labels = read_digits_csv(args.csv)
    train_idx, test_idx = stratified_split(labels)
    np.savez_compressed(args.out, images=images, labels=labels, train_idx=train_idx, test_idx=test_idx)
    print(f"wrote {args.out}: {len(images)} images, {len(train_idx)} train / {len(test_idx)} test")


if __name__ == "__main__":
    main()
