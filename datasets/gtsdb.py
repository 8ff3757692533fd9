"""The German Traffic Sign Detection Benchmark (GTSDB) in its published layout.

https://benchmark.ini.rub.de/gtsdb_dataset.html: 900 images (1360 x 800, PPM; 600 training,
300 test), 43 classes (those of GTSRB), signs of 16 to 128 pixels. ``gt.txt`` has one line per
sign, ``file;x1;y1;x2;y2;class`` with x2, y2 the last pixel inside the box (so the box is
returned as ``(x1, y1, x2 + 1, y2 + 1)``: torchvision's exclusive convention). Images without
signs have no line. The synthetic scenes are written in the same layout
(:func:`minidl.datasets.scenes.write_gtsdb`), so this reader serves both.

As torchvision's detection datasets, a sample is ``(image, target)`` with the image a NumPy
(H, W, 3) uint8 array and the target a dict of NumPy arrays; ``transforms(image, target)``, when
given, transforms both together (a flip moves the boxes too). A batch becomes a Tensor only in
the DataLoader's collate (``minidl.detection.transforms.collate_fn``).

>>> ds = GTSDB("/data/FullIJCNN2013")          # doctest: +SKIP
>>> image, target = ds[0]                       # (800, 1360, 3) uint8, {"boxes", "labels"}
"""
from __future__ import annotations

import os

import numpy as np
from PIL import Image

from minidl.datasets.gtsrb import GTSRB_FLIP_MAP

NUM_CLASSES = 43


def read_gt(path):
    """``{file name: (boxes (n, 4) float32, labels (n,) int64)}`` from a GTSDB ``gt.txt``."""
    entries = {}
    with open(path) as f:
        for number, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            parts = line.split(";")
            if len(parts) != 6:
                raise ValueError(f"{path}:{number}: expected 'file;x1;y1;x2;y2;class', got {line!r}")
            name = parts[0]
            try:
                x1, y1, x2, y2, cls = (int(v) for v in parts[1:])
            except ValueError:
                raise ValueError(f"{path}:{number}: coordinates and class must be integers, got {line!r}") from None
            if x2 < x1 or y2 < y1:
                raise ValueError(f"{path}:{number}: expected x1 <= x2 and y1 <= y2, got {line!r}")
            boxes, labels = entries.setdefault(name, ([], []))
            boxes.append((x1, y1, x2 + 1, y2 + 1))
            labels.append(cls)
    return {k: (np.asarray(b, np.float32).reshape(-1, 4), np.asarray(lab, np.int64)) for k, (b, lab) in
            entries.items()}


class GTSDB:
    """Images (``*.ppm``) of ``root`` with their ``gt.txt`` boxes; ``ds[i] -> (HWC uint8, target)``.

    ``files`` restricts and orders the images (e.g. GTSDB's 600/300 split: ``00000.ppm`` to
    ``00599.ppm`` for training); images without a line in ``gt.txt`` have no boxes.
    ``transforms``: ``transforms(image, target) -> (image, target)``, applied to every sample.
    """

    def __init__(self, root, files=None, gt_file="gt.txt", transforms=None):
        if transforms is not None and not callable(transforms):
            raise TypeError(f"transforms must be callable or None, got {type(transforms).__name__}")
        if not os.path.isdir(root):
            raise FileNotFoundError(f"GTSDB: no directory {root!r}")
        gt_path = os.path.join(root, gt_file)
        if not os.path.isfile(gt_path):
            raise FileNotFoundError(f"GTSDB: no ground-truth file {gt_path!r}")
        self.root = root
        self.transforms = transforms
        self.gt = read_gt(gt_path)
        self.files = sorted(f for f in os.listdir(root) if f.lower().endswith(".ppm")) if files is None else list(files)
        missing = [f for f in self.files if not os.path.isfile(os.path.join(root, f))]
        if missing:
            raise FileNotFoundError(f"GTSDB: {len(missing)} listed images are missing, first {missing[0]!r}")
        labels = [int(lab) for _, ls in self.gt.values() for lab in ls]
        self.num_classes = max(NUM_CLASSES, max(labels) + 1) if labels else NUM_CLASSES
        # GTSDB's classes are GTSRB's, and so is what a left-right mirror makes of them (GTSRB_FLIP_MAP)
        self.flip_map = GTSRB_FLIP_MAP if self.num_classes == NUM_CLASSES else None

    def __len__(self):
        return len(self.files)

    def __getitem__(self, i):
        name = self.files[i]
        with Image.open(os.path.join(self.root, name)) as img:
            image = np.asarray(img.convert("RGB"))
        boxes, labels = self.gt.get(name, (np.zeros((0, 4), np.float32), np.zeros(0, np.int64)))
        target = {"boxes": boxes.copy(), "labels": labels.copy()}
        if self.transforms is not None:
            image, target = self.transforms(image, target)
        return image, target
