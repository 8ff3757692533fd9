"""Winograd's minimal filtering F(4x4, 3x3), written out plainly in NumPy (float64).

This is the readable version of ``kernels/cpu/winograd.py`` and the oracle its tests use
besides the direct convolution of ``kernels/reference/conv.py``.

The idea
--------
A 3x3 correlation computes each output from 9 multiply-adds, so a 4x4 block of outputs
costs 144. Winograd (1980), brought to CNNs by Lavin and Gray (2015), computes the same
4x4 block from the 6x6 input tile ``d`` that covers it with 36 multiplies::

    Y = A^T [ (G g G^T) * (B^T d B) ] A          (* is elementwise)

``g`` is the 3x3 kernel, ``U = G g G^T`` its 6x6 transform (once per weight),
``V = B^T d B`` the input tile's transform, ``A^T (.) A`` the output transform. The
matrices come from evaluating polynomials at the points 0, 1, -1, 2, -2 and infinity
(the Chinese remainder theorem; Lavin's paper gives the derivation).

With many channels the elementwise product turns into matrix products: summing over the
input channels ``c`` for output channel ``k`` and tile ``t``::

    M[xi, k, t] = sum_c U[xi, k, c] * V[xi, c, t]        for each of the 36 positions xi

i.e. 36 independent GEMMs of (K, C) @ (C, T), a quarter of the direct convolution's
multiply-adds. The transforms are cheap (additions and small constant multiplies, linear
in the data), so on a CPU the convolution runs at up to 4x the GEMM's speed.

Backward follows from the same formula, because every stage is linear:

* output gradient into the Winograd domain: ``dM = A dY A^T`` (zero where the tile
  hangs over the output's edge);
* ``dU[xi] = dM[xi] @ V[xi]^T`` then ``dg = G^T dU G`` (summed over tiles: a GEMM);
* ``dV[xi] = U[xi]^T @ dM[xi]`` then ``dd = B dV B^T``, added onto the input pixels the
  tile read (neighbouring tiles overlap by two pixels).

So the gradients are exact for the computation performed, and the gradcheck holds.

Accuracy: the transforms multiply and divide by up to 8 and 24 (in ``A^T``, ``G``), so in
float32 the result differs from the direct convolution by about 1e-6 to 1e-5 of the output's
scale (measured in tests/test_kernels_conv.py; the bound asserted there is 1e-4 of
max |y|); in float64 the two agree to ~1e-13.
"""

import numpy as np

M = 4  # outputs per tile side
R = 3  # kernel size
TILE = M + R - 1  # 6: input tile side

BT = np.array([
    [4, 0, -5, 0, 1, 0],
    [0, -4, -4, 1, 1, 0],
    [0, 4, -4, -1, 1, 0],
    [0, -2, -1, 2, 1, 0],
    [0, 2, -1, -2, 1, 0],
    [0, 4, 0, -5, 0, 1],
], dtype=np.float64)

G = np.array([
    [1 / 4, 0, 0],
    [-1 / 6, -1 / 6, -1 / 6],
    [-1 / 6, 1 / 6, -1 / 6],
    [1 / 24, 1 / 12, 1 / 6],
    [1 / 24, -1 / 12, 1 / 6],
    [0, 0, 1],
], dtype=np.float64)

AT = np.array([
    [1, 1, 1, 1, 1, 0],
    [0, 1, -1, 2, -2, 0],
    [0, 1, 1, 4, 4, 0],
    [0, 1, -1, 8, -8, 1],
], dtype=np.float64)


def tile_counts(oh, ow):
    """Tiles per axis: ceil(OH / 4), ceil(OW / 4)."""
    return -(-oh // M), -(-ow // M)


def weight_transform(w):
    """U (36, K, C) = G g G^T for every 3x3 kernel g = w[k, c]."""
    k_out, c_in = w.shape[:2]
    u = np.einsum("ai,kcij,bj->abkc", G, w, G)
    return u.reshape(TILE * TILE, k_out, c_in)


def input_tiles(x, padding, n_th, n_tw):
    """The 6x6 tiles d[n, c, th, tw] of the zero-padded input (stride 4, overlapping by 2)."""
    n, c, h, w = x.shape
    ph, pw = padding
    xp = np.zeros((n, c, M * n_th + 2, M * n_tw + 2))
    xp[:, :, ph:ph + h, pw:pw + w] = x
    d = np.empty((n, c, n_th, n_tw, TILE, TILE))
    for th in range(n_th):
        for tw in range(n_tw):
            d[:, :, th, tw] = xp[:, :, M * th:M * th + TILE, M * tw:M * tw + TILE]
    return d


def input_transform(x, padding, n_th, n_tw):
    """V (36, C, T) = B^T d B for every tile, T = N * n_th * n_tw tiles in (n, th, tw) order."""
    d = input_tiles(x, padding, n_th, n_tw)
    n, c = x.shape[:2]
    v = np.einsum("ri,nctuij,sj->rscntu", BT, d, BT)
    return v.reshape(TILE * TILE, c, n * n_th * n_tw)


def output_transform(m, n, oh, ow, n_th, n_tw):
    """Y (N, K, OH, OW) from M (36, K, T): A^T M A per tile, cropped to the output size."""
    k_out = m.shape[1]
    m6 = m.reshape(TILE, TILE, k_out, n, n_th, n_tw)
    y = np.einsum("ir,rskntu,js->kntiuj", AT, m6, AT)  # (K, N, th, 4, tw, 4)
    y = y.reshape(k_out, n, n_th * M, n_tw * M).transpose(1, 0, 2, 3)
    return y[:, :, :oh, :ow]


def conv3x3_forward(x, w, b, padding):
    """Stride-1 3x3 correlation (one group) by F(4x4, 3x3)."""
    n, c, h, wd = x.shape
    oh, ow = h + 2 * padding[0] - 2, wd + 2 * padding[1] - 2
    n_th, n_tw = tile_counts(oh, ow)
    u = weight_transform(np.asarray(w, np.float64))
    v = input_transform(np.asarray(x, np.float64), padding, n_th, n_tw)
    m = np.matmul(u, v)  # the 36 GEMMs: (K, C) @ (C, T)
    y = output_transform(m, n, oh, ow, n_th, n_tw)
    if b is not None:
        y = y + np.asarray(b, np.float64)[None, :, None, None]
    return y


def conv3x3_backward(gy, x, w, padding):
    """(dL/dx, dL/dw) of :func:`conv3x3_forward`, through the Winograd domain."""
    n, c, h, wd = x.shape
    k_out = w.shape[0]
    oh, ow = gy.shape[2:]
    n_th, n_tw = tile_counts(oh, ow)
    gyp = np.zeros((n, k_out, n_th * M, n_tw * M))
    gyp[:, :, :oh, :ow] = gy
    gy6 = gyp.reshape(n, k_out, n_th, M, n_tw, M)
    dm = np.einsum("ri,nktiuj,sj->rskntu", AT.T, gy6, AT.T).reshape(TILE * TILE, k_out, -1)
    u = weight_transform(np.asarray(w, np.float64))
    v = input_transform(np.asarray(x, np.float64), padding, n_th, n_tw)
    du = np.matmul(dm, v.transpose(0, 2, 1)).reshape(TILE, TILE, k_out, c)
    gw = np.einsum("ai,abkc,bj->kcij", G, du, G)
    dv = np.matmul(u.transpose(0, 2, 1), dm).reshape(TILE, TILE, c, n, n_th, n_tw)
    dd = np.einsum("ri,rscntu,sj->nctuij", BT, dv, BT)  # (N, C, th, tw, 6, 6)
    ph, pw = padding
    gxp = np.zeros((n, c, M * n_th + 2, M * n_tw + 2))
    for th in range(n_th):
        for tw in range(n_tw):
            gxp[:, :, M * th:M * th + TILE, M * tw:M * tw + TILE] += dd[:, :, th, tw]
    return gxp[:, :, ph:ph + h, pw:pw + wd], gw
