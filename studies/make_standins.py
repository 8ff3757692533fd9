"""Stand-in image folders for the studies, made from minidl's embedded digits (no download).

    python studies/make_standins.py waste data/waste            # 20 classes, one folder each
    python studies/make_standins.py xray data/chest_xray        # 3 classes, train/ and test/
    python studies/make_standins.py digits data/digits10        # 10 grey classes: the "ImageNet" stand-in

``waste``: 20 classes as the seed's garbage set has (digit 0-9 x a red or a blue tint on a noisy
background; folder names ``0_red`` ... ``9_blue``), ``--per-class`` images each, no train/test
sub-folders (minidl splits each class: ``--test-split``, ``--val-split``).
``digits``: 10 grey classes ``0`` ... ``9``, ``--per-class`` images each: the source domain the
studies pretrain on, standing in for ImageNet (whose weights cannot be downloaded here).
``xray``: the X-ray study's 3 classes (COVID-19, NON-COVID, PNEUMONIA = digits 0, 1, 2 in grey)
with its train/ and test/ sub-folders and class sizes: the seed's 454/610/418 training and
41/94/82 test images times ``--scale`` (default 0.2), so the training set is as unbalanced as
the seed's. Images are ``--size`` pixels square PNGs (the 8x8 digits upsampled bilinearly).
"""
import argparse
import os

import numpy as np
from PIL import Image

from minidl.datasets import load_digits

TINTS = {"red": (1.0, 0.35, 0.25), "blue": (0.25, 0.45, 1.0)}
XRAY = {"COVID-19": (0, 454, 41), "NON-COVID": (1, 610, 94), "PNEUMONIA": (2, 418, 82)}


def _digits(size):
    """All 1,797 digits, float32 (N, size, size) in [0, 1], and their labels."""
    x, y = load_digits("all", size=size)
    return x[:, 0], y


def _save(img, path):
    Image.fromarray(np.clip(img * 255, 0, 255).astype(np.uint8)).save(path)


def make_waste(out, per_class=40, size=32, seed=0):
    """20 class folders of ``per_class`` RGB PNGs: digit d tinted red (``d_red``) or blue (``d_blue``)."""
    rng = np.random.default_rng(seed)
    x, y = _digits(size)
    for d in range(10):
        idx = rng.permutation(np.flatnonzero(y == d))
        if 2 * per_class > len(idx):
            raise SystemExit(f"--per-class {per_class}: digit {d} has only {len(idx)} images for 2 classes")
        for t, (tint, rgb) in enumerate(TINTS.items()):
            folder = os.path.join(out, f"{d}_{tint}")
            os.makedirs(folder, exist_ok=True)
            for i, j in enumerate(idx[t * per_class:(t + 1) * per_class]):
                background = 0.15 * rng.random((size, size, 1))
                img = background + x[j][..., None] * np.array(rgb)
                _save(img, os.path.join(folder, f"{i:04d}.png"))
    return 20 * per_class


def make_digits(out, per_class=80, size=32, seed=0):
    """10 class folders of ``per_class`` grey RGB PNGs on a noisy background (the pretraining stand-in)."""
    rng = np.random.default_rng(seed + 1)
    x, y = _digits(size)
    n = 0
    for d in range(10):
        folder = os.path.join(out, str(d))
        os.makedirs(folder, exist_ok=True)
        for i, j in enumerate(rng.permutation(np.flatnonzero(y == d))[:per_class]):
            img = np.clip(x[j] + 0.15 * rng.random((size, size)), 0, 1)
            _save(np.repeat(img[..., None], 3, axis=2), os.path.join(folder, f"{i:04d}.png"))
            n += 1
    return n


def make_xray(out, scale=0.2, size=32, seed=0):
    """train/ and test/ of 3 grey classes sized as the seed's table times ``scale``."""
    rng = np.random.default_rng(seed)
    x, y = _digits(size)
    total = 0
    for name, (d, n_train, n_test) in XRAY.items():
        idx = rng.permutation(np.flatnonzero(y == d))
        n_train, n_test = max(2, round(n_train * scale)), max(2, round(n_test * scale))
        if n_train + n_test > len(idx):
            raise SystemExit(f"--scale {scale}: class {name} needs {n_train + n_test} images, digit {d} has "
                             f"{len(idx)}; use --scale 0.25 or less")
        for split, part in (("train", idx[:n_train]), ("test", idx[n_train:n_train + n_test])):
            folder = os.path.join(out, split, name)
            os.makedirs(folder, exist_ok=True)
            for i, j in enumerate(part):
                img = np.clip(x[j] + 0.1 * rng.standard_normal((size, size)), 0, 1)
                _save(np.repeat(img[..., None], 3, axis=2), os.path.join(folder, f"{i:04d}.png"))
        total += n_train + n_test
    return total


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("kind", choices=("waste", "xray", "digits"))
    p.add_argument("out", help="folder to write")
    p.add_argument("--size", type=int, default=32, help="image side in pixels (default 32)")
    p.add_argument("--per-class", type=int, help="waste: images per class (default 40, at most 80); digits: (default 80)")
    p.add_argument("--scale", type=float, default=0.2, help="xray: fraction of the seed's class sizes (default 0.2)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    if args.kind == "waste":
        n = make_waste(args.out, args.per_class or 40, args.size, args.seed)
    elif args.kind == "digits":
        n = make_digits(args.out, args.per_class or 80, args.size, args.seed)
    else:
        n = make_xray(args.out, args.scale, args.size, args.seed)
    print(f"wrote {n} {args.size}x{args.size} images to {args.out}")


if __name__ == "__main__":
    main()
