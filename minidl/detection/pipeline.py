"""The seed's detection pipeline as composable, measured filters.

A stage takes an image and its detections ``{"boxes" (n, 4), "scores" (n,), "labels" (n,)}`` and
returns fewer (or relabelled) detections. :class:`Pipeline` chains stages and records, per stage,
the boxes in, the boxes out and the time spent, so that each stage's effect can be measured by
running with and without it (the seed's tables):

- :class:`PositionFilter`: regions where signs never appear, given as polygons; a box with at
  least ``min_corners`` corners inside one polygon is dropped (the seed: two corners in the
  road triangle, or above/below a band of rows).
- :class:`ShapeFilter`: minimum and maximum side, maximum aspect ratio (signs are near square).
- :class:`ClassifierGate`: a background-vs-sign CNN on the box crops (MobileNet v2 at a width
  multiplier in the seed); keeps boxes whose sign probability reaches a threshold.
- :class:`SignClassifier`: a sign CNN on the crops that relabels each box and rescales its
  score by the class probability.
- :class:`ClassNMS`: class-aware NMS (the seed: IoU 0.3).
- :class:`TopK`: at most ``k`` detections per image (the seed: 6).
"""
from __future__ import annotations

import time

import numpy as np
from PIL import Image

from minidl import ops
from minidl.grad_mode import no_grad
from minidl.models.detection import images_to_tensor


def _select(dets, keep):
    return {k: np.asarray(v)[keep] for k, v in dets.items()}


def points_in_polygon(points, polygon):
    """(n,) bool: whether each (x, y) of ``points`` (n, 2) lies inside ``polygon`` (ray casting)."""
    poly = np.asarray(polygon, np.float64)
    x, y = points[:, 0:1], points[:, 1:2]  # (n, 1)
    x1, y1 = poly[:, 0][None], poly[:, 1][None]  # (1, m)
    x2, y2 = np.roll(poly[:, 0], -1)[None], np.roll(poly[:, 1], -1)[None]
    crosses = (y1 > y) != (y2 > y)
    with np.errstate(divide="ignore", invalid="ignore"):
        x_at = x1 + (y - y1) * (x2 - x1) / (y2 - y1)
    return (crosses & (x < x_at)).sum(axis=1) % 2 == 1


class PositionFilter:
    """Drop boxes with >= ``min_corners`` corners inside any polygon or outside rows [y_min, y_max]."""

    name = "position"

    def __init__(self, polygons=(), min_corners=2, y_min=None, y_max=None):
        self.polygons = [np.asarray(p, np.float64) for p in polygons]
        for i, p in enumerate(self.polygons):
            if p.ndim != 2 or p.shape[1] != 2 or p.shape[0] < 3:
                raise ValueError(f"polygons[{i}] must be a list of at least 3 (x, y) points, got shape {p.shape}")
        if not 1 <= min_corners <= 4:
            raise ValueError(f"min_corners must be in 1..4, got {min_corners}")
        self.min_corners, self.y_min, self.y_max = int(min_corners), y_min, y_max

    def __call__(self, image, dets):
        b = np.asarray(dets["boxes"], np.float64).reshape(-1, 4)
        corners = np.stack([b[:, [0, 1]], b[:, [2, 1]], b[:, [0, 3]], b[:, [2, 3]]], axis=1)  # (n, 4, 2)
        bad = np.zeros(len(b), bool)
        for poly in self.polygons:
            inside = points_in_polygon(corners.reshape(-1, 2), poly).reshape(-1, 4)
            bad |= inside.sum(axis=1) >= self.min_corners
        if self.y_min is not None:
            bad |= (corners[..., 1] < self.y_min).sum(axis=1) >= self.min_corners
        if self.y_max is not None:
            bad |= (corners[..., 1] > self.y_max).sum(axis=1) >= self.min_corners
        return _select(dets, ~bad)


class ShapeFilter:
    """Keep boxes with ``min_side <= w, h <= max_side`` and ``max(w/h, h/w) <= max_aspect``."""

    name = "shape"

    def __init__(self, min_side=0.0, max_side=float("inf"), max_aspect=float("inf")):
        if min_side < 0 or max_side < min_side or max_aspect < 1:
            raise ValueError(f"ShapeFilter: expected 0 <= min_side <= max_side and max_aspect >= 1, got "
                             f"{min_side}, {max_side}, {max_aspect}")
        self.min_side, self.max_side, self.max_aspect = float(min_side), float(max_side), float(max_aspect)

    def __call__(self, image, dets):
        b = np.asarray(dets["boxes"], np.float64).reshape(-1, 4)
        w, h = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
        with np.errstate(divide="ignore", invalid="ignore"):
            aspect = np.maximum(w / h, h / w)
        keep = (np.minimum(w, h) >= self.min_side) & (np.maximum(w, h) <= self.max_side) & (aspect <= self.max_aspect)
        return _select(dets, keep)


def crop_boxes(image, boxes, size):
    """Crops of ``boxes`` from an (H, W, 3) uint8 image, resized to size x size: (n, size, size, 3) uint8."""
    pil = Image.fromarray(image)
    h, w = image.shape[:2]
    out = np.empty((len(boxes), size, size, 3), np.uint8)
    for i, (x1, y1, x2, y2) in enumerate(np.asarray(boxes, np.float64).reshape(-1, 4)):
        # Pillow refuses boxes outside the image: clip, keeping at least one pixel
        x1, y1 = min(max(x1, 0.0), w - 1.0), min(max(y1, 0.0), h - 1.0)
        x2, y2 = min(max(x2, x1 + 1), float(w)), min(max(y2, y1 + 1), float(h))
        out[i] = np.asarray(pil.resize((size, size), Image.BILINEAR, box=(x1, y1, x2, y2)))
    return out


def classify_crops(model, crops, batch_size=256):
    """Softmax probabilities (n, K) of a crop classifier on uint8 crops (n, S, S, 3)."""
    if len(crops) == 0:
        return np.zeros((0, 0), np.float32)
    model.eval()
    probs = []
    with no_grad():
        for start in range(0, len(crops), batch_size):
            logits = model(images_to_tensor(list(crops[start:start + batch_size]))).data
            logits = logits - logits.max(axis=1, keepdims=True)
            e = np.exp(logits)
            probs.append(e / e.sum(axis=1, keepdims=True))
    return np.concatenate(probs)


class ClassifierGate:
    """Keep boxes whose crop a background(0)-vs-sign(1) classifier calls a sign with p >= threshold."""

    name = "gate"

    def __init__(self, model, threshold=0.5, crop_size=32):
        self.model, self.threshold, self.crop_size = model, float(threshold), int(crop_size)

    def __call__(self, image, dets):
        if len(dets["boxes"]) == 0:
            return dets
        p = classify_crops(self.model, crop_boxes(image, dets["boxes"], self.crop_size))
        return _select(dets, p[:, 1] >= self.threshold)


class SignClassifier:
    """A sign classifier on the crops.

    ``mode="relabel"`` (the seed's): each box takes the classifier's class and its score becomes
    detector score * class probability. ``mode="rescore"``: the detector's label stays and the
    score becomes detector score * the classifier's probability of that label, so that the two
    classifiers must agree. Boxes whose used probability is below ``threshold`` are dropped.
    """

    name = "classifier"

    def __init__(self, model, threshold=0.0, crop_size=32, mode="relabel"):
        if mode not in ("relabel", "rescore"):
            raise ValueError(f"mode must be 'relabel' or 'rescore', got {mode!r}")
        self.model, self.threshold, self.crop_size, self.mode = model, float(threshold), int(crop_size), mode

    def __call__(self, image, dets):
        if len(dets["boxes"]) == 0:
            return dets
        p = classify_crops(self.model, crop_boxes(image, dets["boxes"], self.crop_size))
        if self.mode == "relabel":
            labels, prob = p.argmax(axis=1), p.max(axis=1)
        else:
            labels = np.asarray(dets["labels"])
            prob = p[np.arange(len(p)), labels]
        out = {"boxes": dets["boxes"], "scores": np.asarray(dets["scores"]) * prob, "labels": labels}
        return _select(out, prob >= self.threshold)


class ClassNMS:
    """Class-aware NMS at ``iou_threshold``."""

    name = "nms"

    def __init__(self, iou_threshold=0.3):
        self.iou_threshold = float(iou_threshold)

    def __call__(self, image, dets):
        if len(dets["boxes"]) == 0:
            return dets
        keep = ops.batched_nms(np.asarray(dets["boxes"], np.float32), np.asarray(dets["scores"], np.float32),
                               np.asarray(dets["labels"]), self.iou_threshold).numpy()
        return _select(dets, keep)


class TopK:
    """At most ``k`` detections per image, the highest scores."""

    name = "topk"

    def __init__(self, k=6):
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        self.k = int(k)

    def __call__(self, image, dets):
        order = np.argsort(-np.asarray(dets["scores"]), kind="stable")[: self.k]
        return _select(dets, order)


class Pipeline:
    """Stages applied in order; ``stats[name] = {"in", "out", "seconds"}`` summed over images."""

    def __init__(self, stages=()):
        self.stages = list(stages)
        self.reset()

    def reset(self):
        self.stats = {s.name: {"in": 0, "out": 0, "seconds": 0.0} for s in self.stages}

    def without(self, name):
        """A pipeline with the stage ``name`` left out."""
        if name not in [s.name for s in self.stages]:
            raise ValueError(f"no stage {name!r}; stages: {[s.name for s in self.stages]}")
        return Pipeline([s for s in self.stages if s.name != name])

    def __call__(self, image, dets):
        for stage in self.stages:
            start = time.perf_counter()
            n_in = len(dets["boxes"])
            dets = stage(image, dets)
            st = self.stats[stage.name]
            st["in"] += n_in
            st["out"] += len(dets["boxes"])
            st["seconds"] += time.perf_counter() - start
        return dets
