"""Anchor generation (Ren et al., Faster R-CNN, 2015, sec. 3.1.1), torchvision's layout.

At every feature-map cell ``(y, x)`` of a map with stride ``s`` there are ``A = len(ratios) *
len(sizes)`` anchors centred on ``(x * s, y * s)``. An anchor of size ``S`` and aspect ratio
``r = h / w`` has ``w = S / sqrt(r)`` and ``h = S * sqrt(r)`` (area S^2), rounded as
torchvision does. The anchors are ordered (H, W, A), ratio-major within a cell, which is
the order of the RPN head's outputs after ``permute(0, 2, 3, 1)``.

Presets: the seed's tuned GTSDB anchors (ratios (0.8, 1.0, 1.2), sizes (32, 62, 112, 212, 252)
for 1360x800 images) and the defaults for the 256x160 synthetic scenes (signs of 16 to 56 px).
"""
from __future__ import annotations

import numpy as np

PRESETS = {
    "seed": {"sizes": (32, 62, 112, 212, 252), "aspect_ratios": (0.8, 1.0, 1.2)},
    "synthetic": {"sizes": (16, 24, 36, 54), "aspect_ratios": (0.8, 1.0, 1.2)},
}


class AnchorGenerator:
    """Anchors for one feature map of a given stride.

    >>> gen = AnchorGenerator(sizes=(32, 64), aspect_ratios=(0.5, 1.0, 2.0), stride=16)
    >>> gen.num_anchors_per_location
    6
    >>> gen.grid_anchors((2, 3)).shape
    (36, 4)
    """

    def __init__(self, sizes=PRESETS["synthetic"]["sizes"], aspect_ratios=PRESETS["synthetic"]["aspect_ratios"],
                 stride=8):
        sizes = tuple(float(s) for s in sizes)
        ratios = tuple(float(r) for r in aspect_ratios)
        if not sizes or min(sizes) <= 0:
            raise ValueError(f"sizes must be positive numbers, got {sizes}")
        if not ratios or min(ratios) <= 0:
            raise ValueError(f"aspect_ratios must be positive numbers, got {ratios}")
        if stride <= 0:
            raise ValueError(f"stride must be positive, got {stride}")
        self.sizes, self.aspect_ratios, self.stride = sizes, ratios, int(stride)
        self._cache = {}

    @property
    def num_anchors_per_location(self):
        return len(self.sizes) * len(self.aspect_ratios)

    def cell_anchors(self):
        """(A, 4) anchors centred on the origin, ratio-major (torchvision's ``generate_anchors``)."""
        scales = np.asarray(self.sizes)
        h_ratios = np.sqrt(np.asarray(self.aspect_ratios))
        w_ratios = 1.0 / h_ratios
        ws = (w_ratios[:, None] * scales[None, :]).reshape(-1)  # (A,)
        hs = (h_ratios[:, None] * scales[None, :]).reshape(-1)
        return np.round(np.stack([-ws, -hs, ws, hs], axis=1) / 2)

    def grid_anchors(self, feature_size):
        """(H * W * A, 4) float32 anchors for a feature map of ``feature_size = (H, W)``."""
        h, w = int(feature_size[0]), int(feature_size[1])
        key = (h, w)
        if key not in self._cache:
            shift_x = np.arange(w) * self.stride
            shift_y = np.arange(h) * self.stride
            sy, sx = np.meshgrid(shift_y, shift_x, indexing="ij")  # (H, W)
            shifts = np.stack([sx, sy, sx, sy], axis=-1).reshape(-1, 1, 4)  # (H*W, 1, 4)
            self._cache[key] = (shifts + self.cell_anchors()[None]).reshape(-1, 4).astype(np.float32)
        return self._cache[key]
