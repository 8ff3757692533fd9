"""Synthetic traffic scenes: a seeded generator and its reader, the default data of ``minidl detect``.

Each scene is drawn with Pillow: a sky gradient, a horizon, a road narrowing towards a
vanishing point with lane markings and asphalt texture, verges, buildings, trees, poles and
cars as clutter (some red or blue, to be confused with signs). Signs stand on poles at the
sides of the road, 1 to ``max_signs`` per image, sized ``min_size`` to ``max_size`` pixels;
six classes that differ by shape and colour, as real sign families do:

====  ============  =============================================
id    name          look
====  ============  =============================================
0     prohibitory   white disc, red ring (speed limit family)
1     mandatory     blue disc, white arrow
2     danger        white triangle pointing up, red border
3     yield         white triangle pointing down, red border
4     stop          red octagon, white rim and bar
5     information   blue square, white inner symbol
====  ============  =============================================

Then the scene is degraded: partial occlusion of some signs by foliage, Gaussian blur and
pixel noise. Every scene depends only on ``(seed, index)``, so a split is reproducible and a
dataset needs no storage; ``write_gtsdb`` saves scenes in the GTSDB layout (PPM images and a
``gt.txt`` with ``file;x1;y1;x2;y2;class`` lines) for the GTSDB reader
(:class:`minidl.datasets.GTSDB`).

:class:`SyntheticScenes` is the reader, as torchvision's detection datasets: ``scenes[i] ->
(image, target)`` with a NumPy (H, W, 3) uint8 image and a dict of NumPy arrays, and an optional
joint ``transforms(image, target)``; the DataLoader's collate makes the batch a Tensor.

>>> scenes = SyntheticScenes(4, seed=0)
>>> image, target = scenes[0]
>>> image.shape, target["boxes"].shape[1]
((160, 256, 3), 4)
"""
from __future__ import annotations

import math
import os

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

CLASS_NAMES = ("prohibitory", "mandatory", "danger", "yield", "stop", "information")
NUM_CLASSES = len(CLASS_NAMES)
# A mirrored scene keeps its classes: each class is a family (shape and colour), and a family's
# mirror image is in the family (a mandatory arrow pointing left is still mandatory).
FLIP_MAP = tuple(range(NUM_CLASSES))

_RED = (200, 20, 30)
_BLUE = (20, 70, 180)
_WHITE = (245, 245, 240)
_SUPERSAMPLE = 4  # signs are drawn 4x larger and downsampled: anti-aliased edges


def _jitter(colour, rng, amount=25):
    return tuple(int(np.clip(c + rng.integers(-amount, amount + 1), 0, 255)) for c in colour)


def _polygon(n, cx, cy, r, rotation):
    return [(cx + r * math.cos(rotation + 2 * math.pi * k / n), cy + r * math.sin(rotation + 2 * math.pi * k / n))
            for k in range(n)]


def draw_sign(cls, size, rng):
    """An RGBA image (size x size) of a sign of class ``cls``; transparent outside the shape."""
    s = size * _SUPERSAMPLE
    img = Image.new("RGBA", (s, s), (0, 0, 0, 0))
    d = ImageDraw.Draw(img)
    red, blue, white = _jitter(_RED, rng), _jitter(_BLUE, rng), _jitter(_WHITE, rng, 15)
    c = s / 2
    if cls == 0:  # prohibitory: red ring, white disc, a dark "number"
        d.ellipse([0, 0, s - 1, s - 1], fill=red)
        d.ellipse([s * 0.17, s * 0.17, s * 0.83, s * 0.83], fill=white)
        dark = _jitter((30, 30, 30), rng, 20)
        for k in range(int(rng.integers(1, 3))):
            x0 = s * (0.33 + 0.18 * k)
            d.rectangle([x0, s * 0.35, x0 + s * 0.12, s * 0.65], outline=dark, width=max(1, s // 20))
    elif cls == 1:  # mandatory: blue disc with a white arrow
        d.ellipse([0, 0, s - 1, s - 1], fill=blue)
        angle = rng.choice([0.0, math.pi / 2, math.pi, -math.pi / 2, math.pi / 4])
        tip = (c + s * 0.3 * math.cos(angle), c - s * 0.3 * math.sin(angle))
        tail = (c - s * 0.3 * math.cos(angle), c + s * 0.3 * math.sin(angle))
        d.line([tail, tip], fill=white, width=max(1, s // 9))
        head = [tip, (tip[0] - s * 0.18 * math.cos(angle - 0.6), tip[1] + s * 0.18 * math.sin(angle - 0.6)),
                (tip[0] - s * 0.18 * math.cos(angle + 0.6), tip[1] + s * 0.18 * math.sin(angle + 0.6))]
        d.polygon(head, fill=white)
    elif cls in (2, 3):  # danger (up) and yield (down): red-bordered white triangles
        up = cls == 2
        outer = [(c, 0), (s - 1, s - 1), (0, s - 1)] if up else [(0, 0), (s - 1, 0), (c, s - 1)]
        inset = s * 0.16
        inner = ([(c, inset * 1.6), (s - 1 - inset, s - 1 - inset * 0.8), (inset, s - 1 - inset * 0.8)] if up
                 else [(inset, inset * 0.8), (s - 1 - inset, inset * 0.8), (c, s - 1 - inset * 1.6)])
        d.polygon(outer, fill=red)
        d.polygon(inner, fill=white)
        if up:  # a dark pictogram
            d.rectangle([c - s * 0.05, s * 0.45, c + s * 0.05, s * 0.72], fill=_jitter((30, 30, 30), rng, 20))
    elif cls == 4:  # stop: red octagon, white rim, white bar for the lettering
        d.polygon(_polygon(8, c, c, s / 2, math.pi / 8), fill=white)
        d.polygon(_polygon(8, c, c, s * 0.45, math.pi / 8), fill=red)
        d.rectangle([s * 0.2, s * 0.44, s * 0.8, s * 0.56], fill=white)
    elif cls == 5:  # information: blue square, white symbol
        d.rectangle([0, 0, s - 1, s - 1], fill=white)
        d.rectangle([s * 0.05, s * 0.05, s * 0.95, s * 0.95], fill=blue)
        d.rectangle([s * 0.3, s * 0.2, s * 0.7, s * 0.8], fill=white)
        d.rectangle([s * 0.42, s * 0.3, s * 0.58, s * 0.7], fill=blue)
    else:
        raise ValueError(f"cls must be in [0, {NUM_CLASSES}), got {cls}")
    return img.resize((size, size), Image.LANCZOS)


class SceneConfig:
    """Geometry and difficulty of the generated scenes (defaults: 256x160, signs 16 to 56 px)."""

    def __init__(self, width=256, height=160, min_size=16, max_size=56, max_signs=4, occlusion=0.2,
                 noise=6.0, blur=0.8, clutter=6):
        if not 4 <= min_size <= max_size:
            raise ValueError(f"min_size/max_size: expected 4 <= min_size <= max_size, got {min_size}, {max_size}")
        if max_size > 0.6 * height:
            raise ValueError(f"max_size must be at most 0.6 * height = {0.6 * height:.0f}, got {max_size}")
        self.width, self.height = int(width), int(height)
        self.min_size, self.max_size, self.max_signs = int(min_size), int(max_size), int(max_signs)
        self.occlusion, self.noise, self.blur, self.clutter = float(occlusion), float(noise), float(blur), int(clutter)

    def sign_region(self):
        """Polygons (x, y lists) of where signs never stand: the road wedge and the lowest strip.

        These are the defaults of the pipeline's position filter (the seed's figure 12a).
        """
        w, h = self.width, self.height
        horizon = 0.45 * h
        road = [(0.5 * w, horizon + 0.08 * h), (0.82 * w, h), (0.18 * w, h)]
        bottom = [(0, 0.9 * h), (w, 0.9 * h), (w, h), (0, h)]
        return [road, bottom]


def _background(cfg, rng):
    w, h = cfg.width, cfg.height
    horizon = int(h * rng.uniform(0.38, 0.5))
    sky_top, sky_bottom = np.array(_jitter((110, 160, 215), rng, 30)), np.array(_jitter((200, 215, 230), rng, 20))
    t = np.linspace(0, 1, horizon)[:, None, None]
    img = np.empty((h, w, 3), np.float32)
    img[:horizon] = sky_top * (1 - t) + sky_bottom * t
    ground = np.array(_jitter((90, 120, 60), rng, 30), np.float32)
    img[horizon:] = ground
    img += rng.normal(0, 6, (h, w, 1)).astype(np.float32)  # texture
    pil = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))
    d = ImageDraw.Draw(pil)
    # buildings along the horizon
    x = -int(rng.integers(0, 20))
    while x < w:
        bw, bh = int(rng.integers(w // 12, w // 4)), int(rng.integers(h // 10, h // 3))
        if rng.random() < 0.7:
            d.rectangle([x, horizon - bh, x + bw, horizon], fill=_jitter((150, 140, 130), rng, 50))
            for _ in range(int(rng.integers(0, 6))):  # windows
                wx, wy = x + rng.integers(2, max(3, bw - 4)), horizon - rng.integers(3, max(4, bh - 2))
                d.rectangle([wx, wy, wx + 3, wy + 3], fill=_jitter((60, 70, 90), rng, 30))
        x += bw
    # road: a wedge from the bottom edge to the vanishing point, asphalt texture, lane marks
    vx = w * rng.uniform(0.42, 0.58)
    d.polygon([(vx - 2, horizon), (vx + 2, horizon), (w * 0.85, h), (w * 0.15, h)], fill=_jitter((90, 90, 95), rng, 15))
    for k in range(8):
        y0 = horizon + (h - horizon) * (k / 8) ** 1.5
        y1 = horizon + (h - horizon) * ((k + 0.5) / 8) ** 1.5
        f0, f1 = (y0 - horizon) / (h - horizon), (y1 - horizon) / (h - horizon)
        d.line([(vx + (w / 2 - vx) * f0, y0), (vx + (w / 2 - vx) * f1, y1)], fill=(230, 230, 220),
               width=max(1, int(3 * f1)))
    return pil, horizon, vx


def _clutter(d, cfg, rng, horizon):
    w, h = cfg.width, cfg.height
    for _ in range(int(rng.integers(cfg.clutter // 2, cfg.clutter + 1))):
        kind = rng.integers(0, 4)
        x, y = rng.uniform(0, w), rng.uniform(horizon - 0.2 * h, h)
        r = rng.uniform(0.03, 0.12) * h
        if kind == 0:  # tree
            d.line([(x, y), (x, y + 2 * r)], fill=(80, 60, 40), width=max(1, int(r / 5)))
            d.ellipse([x - r, y - r * 1.2, x + r, y + r * 0.6], fill=_jitter((40, 100, 40), rng, 30))
        elif kind == 1:  # car: any colour, red and blue included
            colour = [_RED, _BLUE, (230, 230, 230), (40, 40, 40), (180, 160, 40)][int(rng.integers(0, 5))]
            d.rectangle([x - 1.5 * r, y - 0.5 * r, x + 1.5 * r, y + 0.5 * r], fill=_jitter(colour, rng, 30))
            d.rectangle([x - r, y - r, x + r, y - 0.5 * r], fill=_jitter((60, 80, 100), rng, 20))
        elif kind == 2:  # bare pole or lamp post
            d.line([(x, y - 2 * r), (x, y + r)], fill=_jitter((110, 110, 110), rng, 20), width=max(1, int(r / 6)))
        else:  # a blob of colour (posters, bins)
            d.rectangle([x - r * 0.5, y - r * 0.4, x + r * 0.5, y + r * 0.4], fill=tuple(int(v) for v in
                                                                                         rng.integers(0, 256, 3)))


def _place_signs(cfg, rng, horizon):
    """Non-overlapping sign boxes (x1, y1, size, cls) at the road sides, standing on poles."""
    w, h = cfg.width, cfg.height
    placed = []
    n = int(rng.integers(1, cfg.max_signs + 1))
    for _ in range(n * 10):
        if len(placed) == n:
            break
        size = int(round(np.exp(rng.uniform(np.log(cfg.min_size), np.log(cfg.max_size)))))
        side = rng.random() < 0.5
        x_lo, x_hi = (0, 0.33 * w - size) if side else (0.67 * w, w - size)
        if x_hi <= x_lo:
            x_lo, x_hi = 0, w - size
        x1 = int(rng.uniform(x_lo, x_hi))
        y1 = int(np.clip(rng.uniform(0.08 * h, horizon + 0.1 * h - size), 0, 0.9 * h - size))
        box = (x1, y1, x1 + size, y1 + size)
        if any(not (box[2] + 2 <= b[0] or b[2] + 2 <= box[0] or box[3] + 2 <= b[1] or b[3] + 2 <= box[1])
               for b in placed):
            continue
        placed.append(box)
    return placed


def generate_scene(index, seed=0, config=None):
    """One scene: (image (H, W, 3) uint8, boxes (n, 4) float32 x1y1x2y2, labels (n,) int64)."""
    cfg = config or SceneConfig()
    rng = np.random.default_rng([int(seed), int(index)])
    pil, horizon, _ = _background(cfg, rng)
    d = ImageDraw.Draw(pil)
    _clutter(d, cfg, rng, horizon)
    boxes, labels = [], []
    for x1, y1, x2, y2 in _place_signs(cfg, rng, horizon):
        size = x2 - x1
        cls = int(rng.integers(0, NUM_CLASSES))
        cx = (x1 + x2) / 2
        d.line([(cx, y2), (cx, min(cfg.height, y2 + rng.uniform(0.5, 2.5) * size))],
               fill=_jitter((120, 120, 120), rng, 20), width=max(1, size // 8))  # the pole
        sign = draw_sign(cls, size, rng)
        # brightness: shade or sunlight on the sign
        factor = rng.uniform(0.65, 1.15)
        rgb = np.asarray(sign, np.float32)
        rgb[..., :3] = np.clip(rgb[..., :3] * factor, 0, 255)
        sign = Image.fromarray(rgb.astype(np.uint8), "RGBA")
        pil.paste(sign, (x1, y1), sign)
        if rng.random() < cfg.occlusion:  # foliage over at most ~30% of the sign
            ox = x1 + (rng.uniform(-0.3, 0.0) if rng.random() < 0.5 else rng.uniform(0.75, 1.0)) * size
            oy = y1 + rng.uniform(0.0, 0.7) * size
            r = 0.35 * size
            d.ellipse([ox - r * 0.2, oy - r, ox + r, oy + r], fill=_jitter((40, 100, 40), rng, 30))
        boxes.append((x1, y1, x2, y2))
        labels.append(cls)
    if cfg.blur > 0:
        pil = pil.filter(ImageFilter.GaussianBlur(rng.uniform(0, cfg.blur)))
    img = np.asarray(pil, np.float32)
    if cfg.noise > 0:
        img = img + rng.normal(0, rng.uniform(0, cfg.noise), img.shape)
    img = np.clip(img, 0, 255).astype(np.uint8)
    return img, np.asarray(boxes, np.float32).reshape(-1, 4), np.asarray(labels, np.int64)


class SyntheticScenes:
    """``n`` scenes ``seed``-determined, as a dataset: ``scenes[i] -> (image HWC uint8, target)``.

    ``target`` is ``{"boxes": (n, 4) float32, "labels": (n,) int64}`` with labels 0..5 (the
    detector adds 1, keeping 0 for the background). Scenes are generated on first access and
    cached; ``transforms(image, target) -> (image, target)`` (e.g. a random flip) is applied to
    the cached scene on every access.
    """

    def __init__(self, n, seed=0, config=None, offset=0, transforms=None):
        if n < 0:
            raise ValueError(f"n must be >= 0, got {n}")
        if transforms is not None and not callable(transforms):
            raise TypeError(f"transforms must be callable or None, got {type(transforms).__name__}")
        self.n, self.seed, self.offset = int(n), int(seed), int(offset)
        self.config = config or SceneConfig()
        self.classes = CLASS_NAMES
        self.flip_map = FLIP_MAP
        self.transforms = transforms
        self._cache = {}

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        if not -self.n <= i < self.n:
            raise IndexError(f"scene index {i} out of range for {self.n} scenes")
        i %= self.n
        if i not in self._cache:
            img, boxes, labels = generate_scene(self.offset + i, self.seed, self.config)
            self._cache[i] = (img, {"boxes": boxes, "labels": labels})
        image, target = self._cache[i]
        if self.transforms is not None:
            return self.transforms(image, dict(target))
        return image, target


def write_gtsdb(scenes, root):
    """Save scenes in the GTSDB layout: ``root/00000.ppm`` ... and ``root/gt.txt``.

    GTSDB's ``gt.txt`` gives integer ``x1;y1;x2;y2`` with x2, y2 the last pixel inside the box,
    so an exclusive x2 of a box is written as x2 - 1.
    """
    os.makedirs(root, exist_ok=True)
    lines = []
    for i in range(len(scenes)):
        img, target = scenes[i]
        name = f"{i:05d}.ppm"
        Image.fromarray(img).save(os.path.join(root, name))
        for (x1, y1, x2, y2), cls in zip(target["boxes"], target["labels"]):
            lines.append(f"{name};{int(x1)};{int(y1)};{int(x2) - 1};{int(y2) - 1};{int(cls)}")
    with open(os.path.join(root, "gt.txt"), "w") as f:
        f.write("\n".join(lines) + ("\n" if lines else ""))
    return root
