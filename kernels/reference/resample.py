"""Plain NumPy reference for resizing images (F.interpolate's nearest and bilinear modes), in float64.

The textbook version of ``minidl/functions/resample.py``, and the oracle its tests compare
against: one output pixel at a time, with PyTorch's index rules written out.

Each output row ``o`` of an axis resized from ``n_in`` to ``n_out`` reads a *source
coordinate* on the input axis:

* ``align_corners=True``: the first and last pixels' centres line up,
  ``src = o * (n_in - 1) / (n_out - 1)``;
* ``align_corners=False``: the pixel *areas* line up, ``src = (o + 0.5) * n_in / n_out - 0.5``,
  clamped at 0 (PyTorch's rule for the linear modes).

Bilinear interpolation weighs the four input pixels around ``(src_h, src_w)`` by the
distances to them; nearest takes ``floor(o * n_in / n_out)``, and nearest-exact rounds
the pixel centre, ``floor((o + 0.5) * n_in / n_out)``.

Example::

    >>> x = np.array([[[[0.0, 1.0], [2.0, 3.0]]]])
    >>> upsample_bilinear2d(x, 3, 3, align_corners=True)[0, 0]
    array([[0. , 0.5, 1. ],
           [1. , 1.5, 2. ],
           [2. , 2.5, 3. ]])
"""

import math

import numpy as np


def source_coordinate(o, n_in, n_out, align_corners):
    """Where on the input axis output position ``o`` samples (linear modes)."""
    if align_corners:
        return o * (n_in - 1) / (n_out - 1) if n_out > 1 else 0.0
    return max((o + 0.5) * n_in / n_out - 0.5, 0.0)


def upsample_bilinear2d(x, out_h, out_w, align_corners=False):
    """y (N, C, out_h, out_w): each pixel a distance-weighted mean of its four input neighbours."""
    x = np.asarray(x, dtype=np.float64)
    n_batch, channels, h, w = x.shape
    y = np.zeros((n_batch, channels, out_h, out_w))
    for oh in range(out_h):
        sh = source_coordinate(oh, h, out_h, align_corners)
        h0 = min(int(math.floor(sh)), h - 1)
        h1 = min(h0 + 1, h - 1)
        dh = sh - h0  # weight of the lower neighbour row h1
        for ow in range(out_w):
            sw = source_coordinate(ow, w, out_w, align_corners)
            w0 = min(int(math.floor(sw)), w - 1)
            w1 = min(w0 + 1, w - 1)
            dw = sw - w0
            y[:, :, oh, ow] = ((1 - dh) * (1 - dw) * x[:, :, h0, w0] + (1 - dh) * dw * x[:, :, h0, w1]
                               + dh * (1 - dw) * x[:, :, h1, w0] + dh * dw * x[:, :, h1, w1])
    return y


def upsample_nearest2d(x, out_h, out_w, exact=False):
    """y (N, C, out_h, out_w): each pixel copies one input pixel (nearest, or nearest-exact)."""
    x = np.asarray(x, dtype=np.float64)
    h, w = x.shape[2:]
    shift = 0.5 if exact else 0.0
    rows = [min(int(math.floor((o + shift) * h / out_h)), h - 1) for o in range(out_h)]
    cols = [min(int(math.floor((o + shift) * w / out_w)), w - 1) for o in range(out_w)]
    y = np.zeros(x.shape[:2] + (out_h, out_w))
    for oh, ih in enumerate(rows):
        for ow, iw in enumerate(cols):
            y[:, :, oh, ow] = x[:, :, ih, iw]
    return y
