"""The heat map of sign positions the seed drew to design its position filter (``minidl detect heatmap``).

Every ground-truth box adds 1 to the pixels it covers; the map, normalised by the number of
images, shows where signs stand (the seed, section 4.2.1: "we created a heatmap from the ground
truth of traffic signs ... we draw some areas where the bounding boxes rarely appear"). The
PNG draws the position filter on top (its band of rows and its polygons), and
:func:`boxes_dropped` counts the ground-truth boxes a filter would wrongly drop: the check that
the regions are where signs never are.
"""
from __future__ import annotations

import numpy as np

from minidl.detection.pipeline import PositionFilter


def sign_heatmap(targets, size):
    """(H, W) float64: how many boxes cover each pixel, over ``targets`` (dicts with ``boxes`` (n, 4)).

    ``size`` is the frame's (width, height); boxes are clipped to it.
    """
    w, h = size
    # a 2-D difference array: +1 at each box's top-left, -1 past its right and bottom edges, then cumulative sums
    diff = np.zeros((h + 1, w + 1), np.float64)
    for target in targets:
        for x1, y1, x2, y2 in np.asarray(target["boxes"], np.float64).reshape(-1, 4):
            x1, x2 = int(np.clip(np.floor(x1), 0, w)), int(np.clip(np.ceil(x2), 0, w))
            y1, y2 = int(np.clip(np.floor(y1), 0, h)), int(np.clip(np.ceil(y2), 0, h))
            if x2 > x1 and y2 > y1:
                diff[y1, x1] += 1
                diff[y1, x2] -= 1
                diff[y2, x1] -= 1
                diff[y2, x2] += 1
    return diff.cumsum(axis=0).cumsum(axis=1)[:h, :w]


def boxes_dropped(targets, position_filter):
    """(dropped, total): ground-truth boxes that ``position_filter`` (a ``PositionFilter``) would drop."""
    dropped = total = 0
    for target in targets:
        boxes = np.asarray(target["boxes"], np.float32).reshape(-1, 4)
        dets = {"boxes": boxes, "scores": np.ones(len(boxes), np.float32), "labels": np.zeros(len(boxes), np.int64)}
        kept = position_filter(None, dets)
        total += len(boxes)
        dropped += len(boxes) - len(kept["boxes"])
    return dropped, total


def draw_heatmap(heat, path, position_filter=None, images=None, title="sign positions (ground truth)"):
    """Save the heat map as a PNG, with the position filter's rows and polygons drawn over it; returns ``path``."""
    from minidl.plot import _pyplot, _save

    plt = _pyplot()
    h, w = heat.shape
    fig, ax = plt.subplots(figsize=(8, 8 * h / w + 0.6))
    shown = heat / images if images else heat
    im = ax.imshow(shown, cmap="inferno", extent=(0, w, h, 0), interpolation="nearest")
    fig.colorbar(im, ax=ax, fraction=0.03, label="signs per image covering the pixel" if images else "boxes")
    if isinstance(position_filter, PositionFilter):
        for y in (position_filter.y_min, position_filter.y_max):
            if y is not None:
                ax.axhline(y, color="cyan", linestyle="--", linewidth=1)
        for poly in position_filter.polygons:
            closed = np.vstack([poly, poly[:1]])
            ax.plot(closed[:, 0], closed[:, 1], color="cyan", linewidth=1.5)
    ax.set_xlim(0, w)
    ax.set_ylim(h, 0)
    ax.set_title(title)
    return _save(fig, path)


__all__ = ["boxes_dropped", "draw_heatmap", "sign_heatmap"]
