"""Stride-1 3x3 convolution by Winograd's F(4x4, 3x3): Numba transforms around 36 BLAS GEMMs.

Arrays in, arrays out, no autograd. The maths, the matrices and a plain NumPy version are in
``kernels/reference/winograd.py``; read that first. This file does the same in four passes:

1. weight transform ``U = G g G^T`` (small: NumPy, once per call);
2. input transform ``V = B^T d B``: one Numba pass over the input, parallel over (image,
   channel) planes; each plane is zero-padded once into a small buffer, the vertical half of
   the transform runs along whole rows (contiguous, vectorised), the horizontal half per tile;
3. 36 GEMMs ``M[xi] = U[xi] @ V[xi]``, each one 2-D BLAS call written in place, spread over
   the threads by ``kernels/cpu/blas.py`` (a loop of 2-D calls measured faster than
   ``np.matmul`` on the stacked arrays);
4. output transform ``Y = A^T M A`` (+ bias), parallel over (image, output channel) planes.

Backward reuses the same layout: ``dM = A dY A^T`` (a pass like 2.), then ``dU = dM V^T`` and
``dV = U^T dM`` (72 GEMMs), ``dg = G^T dU G`` and ``dd = B dV B^T`` added onto the input's
overlapping tiles (a pass like 4.). ``V`` is recomputed in backward rather than kept from
forward: it is 2.25x the size of the input, and one more input transform costs far less than
the GEMMs (see benchmarks/results/cpu-kernels.md).

Why: the GEMMs do a quarter of im2col's multiply-adds, and the transforms read and write each
element a few times instead of im2col's nine copies. Numba parallel regions (the transforms)
and threaded BLAS calls (the GEMMs) alternate, never overlap.
"""

import numpy as np
from numba import njit, prange

from minidl.kernels.cpu import serialise_parallel_kernels
from minidl.kernels.cpu import blas, workspace

from minidl.kernels.reference.winograd import G, M, TILE, tile_counts


# How the passes are written (measured on the 2-core development machine; see the docstring
# of _input_plane). Each pass is a serial function on one (image, channel) plane, driven by a
# parallel loop over channels with the images inside: for a fixed channel the tile index
# t = (n, th, tw) runs front to back, so each row v[xi, c, :] is written as one stream. Inside a
# plane, every loop touches two arrays only (indexed directly, never through per-row slice
# views): LLVM vectorises a loop only after proving at run time that its stores miss its loads,
# and gave up on the version that wrote six row views while reading six others (10x slower).
# The 36 values of a plane's tiles go through a small local buffer ``loc`` (36, tiles) and are
# copied to or from the big (36, C, T) array in 36 contiguous pieces. Constants come in as
# ``k[j] == j`` in the data's dtype: a float literal would turn float32 arithmetic into float64.

@njit(cache=True)
def _input_plane(x, n, c, ph, pw, xp, tmp, loc, v, t_base, k):
    """v[:, c, t_base + (th, tw)] = B^T d B for every 6x6 tile d of plane x[n, c].

    Vertical half along whole rows (vectorised over the width, ~0.5 ms for the benchmark
    conv's 2048 planes on one core), horizontal half per tile row into ``loc`` (~3.5 ms),
    then 36 contiguous copies into v (~2 ms: the writing of V itself).
    """
    h, w = x.shape[2], x.shape[3]
    n_th, n_tw = (xp.shape[0] - 2) // M, (xp.shape[1] - 2) // M
    wp = xp.shape[1]
    k2, k4, k5 = k[2], k[4], k[5]
    for hh in range(h):  # zero-pad into xp (its border stays zero)
        dst = xp[hh + ph, pw:pw + w]
        src = x[n, c, hh]
        for q in range(w):
            dst[q] = src[q]
    for th in range(n_th):
        r0 = M * th
        for q in range(wp):  # vertical B^T
            d0, d1, d2 = xp[r0, q], xp[r0 + 1, q], xp[r0 + 2, q]
            d3, d4, d5 = xp[r0 + 3, q], xp[r0 + 4, q], xp[r0 + 5, q]
            tmp[0, q] = k4 * d0 - k5 * d2 + d4
            tmp[1, q] = d3 + d4 - k4 * (d1 + d2)
            tmp[2, q] = k4 * (d1 - d2) - d3 + d4
            tmp[3, q] = k2 * (d3 - d1) - d2 + d4
            tmp[4, q] = k2 * (d1 - d3) - d2 + d4
            tmp[5, q] = k4 * d1 - k5 * d3 + d5
        o = th * n_tw
        for r in range(TILE):  # horizontal B^T, one tile per step
            b = r * TILE
            for tw in range(n_tw):
                q = M * tw
                d0, d1, d2 = tmp[r, q], tmp[r, q + 1], tmp[r, q + 2]
                d3, d4, d5 = tmp[r, q + 3], tmp[r, q + 4], tmp[r, q + 5]
                loc[b, o + tw] = k4 * d0 - k5 * d2 + d4
                loc[b + 1, o + tw] = d3 + d4 - k4 * (d1 + d2)
                loc[b + 2, o + tw] = k4 * (d1 - d2) - d3 + d4
                loc[b + 3, o + tw] = k2 * (d3 - d1) - d2 + d4
                loc[b + 4, o + tw] = k2 * (d1 - d3) - d2 + d4
                loc[b + 5, o + tw] = k4 * d1 - k5 * d3 + d5
    tiles = n_th * n_tw
    for xi in range(TILE * TILE):
        dst = v[xi, c, t_base:t_base + tiles]
        src = loc[xi]
        for q in range(tiles):
            dst[q] = src[q]


@njit(parallel=True, cache=True)
def _input_transform(x, v, ph, pw, n_th, n_tw, k):
    """v[xi, c, t] = (B^T d B)[xi] for the 6x6 tile d of plane (n, c), t = (n, th, tw)."""
    n_batch, c_in = x.shape[0], x.shape[1]
    hp, wp = M * n_th + 2, M * n_tw + 2  # >= H + 2ph: the padded plane holds all of x
    for c in prange(c_in):
        xp = np.zeros((hp, wp), dtype=x.dtype)
        tmp = np.empty((TILE, wp), dtype=x.dtype)
        loc = np.empty((TILE * TILE, n_th * n_tw), dtype=x.dtype)
        for n in range(n_batch):
            _input_plane(x, n, c, ph, pw, xp, tmp, loc, v, n * n_th * n_tw, k)


@njit(cache=True)
def _output_plane(mm, kk, t_base, b, loc, tmp, out, y, n, k):
    """y[n, kk] = A^T M A for every tile, + b, cropped to y's size."""
    oh, ow = y.shape[2], y.shape[3]
    n_tw = out.shape[1] // M
    n_th = loc.shape[1] // n_tw
    k2, k4, k8 = k[2], k[4], k[8]
    tiles = n_th * n_tw
    for xi in range(TILE * TILE):
        dst = loc[xi]
        src = mm[xi, kk, t_base:t_base + tiles]
        for q in range(tiles):
            dst[q] = src[q]
    for th in range(n_th):
        o = th * n_tw
        for r in range(TILE):  # horizontal A^T: tmp[r*4 + j, tw]
            b6, b4 = r * TILE, r * M
            for tw in range(n_tw):
                m0, m1, m2 = loc[b6, o + tw], loc[b6 + 1, o + tw], loc[b6 + 2, o + tw]
                m3, m4, m5 = loc[b6 + 3, o + tw], loc[b6 + 4, o + tw], loc[b6 + 5, o + tw]
                tmp[b4, tw] = m0 + m1 + m2 + m3 + m4
                tmp[b4 + 1, tw] = m1 - m2 + k2 * (m3 - m4)
                tmp[b4 + 2, tw] = m1 + m2 + k4 * (m3 + m4)
                tmp[b4 + 3, tw] = m1 - m2 + k8 * (m3 - m4) + m5
        for j in range(M):  # vertical A^T: out[i, 4*tw + j]
            for tw in range(n_tw):
                m0, m1, m2 = tmp[j, tw], tmp[M + j, tw], tmp[2 * M + j, tw]
                m3, m4, m5 = tmp[3 * M + j, tw], tmp[4 * M + j, tw], tmp[5 * M + j, tw]
                q = M * tw + j
                out[0, q] = m0 + m1 + m2 + m3 + m4 + b
                out[1, q] = m1 - m2 + k2 * (m3 - m4) + b
                out[2, q] = m1 + m2 + k4 * (m3 + m4) + b
                out[3, q] = m1 - m2 + k8 * (m3 - m4) + m5 + b
        for i in range(min(M, oh - M * th)):
            dst = y[n, kk, M * th + i]
            src = out[i]
            for q in range(ow):
                dst[q] = src[q]


@njit(parallel=True, cache=True)
def _output_transform(mm, bias, y, n_th, n_tw, k):
    """y[n, kk] = A^T M A per tile (+ bias[kk]), cropped to y's size; mm is (36, K, T)."""
    n_batch, k_out = y.shape[0], y.shape[1]
    for kk in prange(k_out):
        loc = np.empty((TILE * TILE, n_th * n_tw), dtype=y.dtype)
        tmp = np.empty((TILE * M, n_tw), dtype=y.dtype)
        out = np.empty((M, M * n_tw), dtype=y.dtype)
        for n in range(n_batch):
            _output_plane(mm, kk, n * n_th * n_tw, bias[kk], loc, tmp, out, y, n, k)


@njit(cache=True)
def _grad_output_plane(gy, n, kk, gp, tmp, loc, dm, t_base, k):
    """dm[:, kk, t_base + (th, tw)] = A dY A^T for every 4x4 tile of gy[n, kk] (gp: zero-padded copy)."""
    oh, ow = gy.shape[2], gy.shape[3]
    n_th, wq = gp.shape[0] // M, gp.shape[1]
    n_tw = wq // M
    k2, k4, k8 = k[2], k[4], k[8]
    for hh in range(oh):
        dst = gp[hh]
        src = gy[n, kk, hh]
        for q in range(ow):
            dst[q] = src[q]
    for th in range(n_th):
        r0 = M * th
        for q in range(wq):  # vertical A
            g0, g1, g2, g3 = gp[r0, q], gp[r0 + 1, q], gp[r0 + 2, q], gp[r0 + 3, q]
            tmp[0, q] = g0
            tmp[1, q] = g0 + g1 + g2 + g3
            tmp[2, q] = g0 - g1 + g2 - g3
            tmp[3, q] = g0 + k2 * g1 + k4 * g2 + k8 * g3
            tmp[4, q] = g0 - k2 * g1 + k4 * g2 - k8 * g3
            tmp[5, q] = g3
        o = th * n_tw
        for r in range(TILE):  # horizontal A, one tile per step
            b = r * TILE
            for tw in range(n_tw):
                q = M * tw
                g0, g1, g2, g3 = tmp[r, q], tmp[r, q + 1], tmp[r, q + 2], tmp[r, q + 3]
                loc[b, o + tw] = g0
                loc[b + 1, o + tw] = g0 + g1 + g2 + g3
                loc[b + 2, o + tw] = g0 - g1 + g2 - g3
                loc[b + 3, o + tw] = g0 + k2 * g1 + k4 * g2 + k8 * g3
                loc[b + 4, o + tw] = g0 - k2 * g1 + k4 * g2 - k8 * g3
                loc[b + 5, o + tw] = g3
    tiles = n_th * n_tw
    for xi in range(TILE * TILE):
        dst = dm[xi, kk, t_base:t_base + tiles]
        src = loc[xi]
        for q in range(tiles):
            dst[q] = src[q]


@njit(parallel=True, cache=True)
def _grad_output_transform(gy, dm, n_th, n_tw, k):
    """dm[xi, kk, t] = (A dY A^T)[xi] for the 4x4 tile of gy[n, kk] (zeros past the edge)."""
    n_batch, k_out = gy.shape[0], gy.shape[1]
    for kk in prange(k_out):
        gp = np.zeros((M * n_th, M * n_tw), dtype=gy.dtype)
        tmp = np.empty((TILE, M * n_tw), dtype=gy.dtype)
        loc = np.empty((TILE * TILE, n_th * n_tw), dtype=gy.dtype)
        for n in range(n_batch):
            _grad_output_plane(gy, n, kk, gp, tmp, loc, dm, n * n_th * n_tw, k)


@njit(cache=True)
def _grad_input_plane(dv, c, t_base, loc, gxp, tmp, gx, n, ph, pw, k):
    """gx[n, c] = the sum over tiles of B dV B^T, added where tiles overlap, then cropped."""
    h, w = gx.shape[2], gx.shape[3]
    n_th, n_tw = (gxp.shape[0] - 2) // M, (gxp.shape[1] - 2) // M
    wp = gxp.shape[1]
    k2, k4, k5 = k[2], k[4], k[5]
    tiles = n_th * n_tw
    for xi in range(TILE * TILE):
        dst = loc[xi]
        src = dv[xi, c, t_base:t_base + tiles]
        for q in range(tiles):
            dst[q] = src[q]
    gxp[:] = 0.0
    for th in range(n_th):
        o = th * n_tw
        for r in range(TILE):  # horizontal B; columns 4, 5 of a tile are columns 0, 1 of the next
            b = r * TILE
            for tw in range(n_tw):
                e0, e1, e2 = loc[b, o + tw], loc[b + 1, o + tw], loc[b + 2, o + tw]
                e3, e4, e5 = loc[b + 3, o + tw], loc[b + 4, o + tw], loc[b + 5, o + tw]
                q = M * tw
                tmp[r, q] = k4 * e0
                tmp[r, q + 1] = k4 * (e2 - e1 + e5) + k2 * (e4 - e3)
                tmp[r, q + 2] = -k5 * e0 - k4 * (e1 + e2) - e3 - e4
                tmp[r, q + 3] = e1 - e2 + k2 * (e3 - e4) - k5 * e5
            tmp[r, M * n_tw] = 0.0
            tmp[r, M * n_tw + 1] = 0.0
            for tw in range(n_tw):  # the overlapping two columns, added in a second loop
                e0, e1, e2 = loc[b, o + tw], loc[b + 1, o + tw], loc[b + 2, o + tw]
                e3, e4, e5 = loc[b + 3, o + tw], loc[b + 4, o + tw], loc[b + 5, o + tw]
                q = M * tw
                tmp[r, q + 4] += e0 + e1 + e2 + e3 + e4
                tmp[r, q + 5] += e5
        r0 = M * th
        for q in range(wp):  # vertical B, added onto the rows shared with the previous tile row
            e0, e1, e2 = tmp[0, q], tmp[1, q], tmp[2, q]
            e3, e4, e5 = tmp[3, q], tmp[4, q], tmp[5, q]
            gxp[r0, q] += k4 * e0
            gxp[r0 + 1, q] += k4 * (e2 - e1 + e5) + k2 * (e4 - e3)
            gxp[r0 + 2, q] = -k5 * e0 - k4 * (e1 + e2) - e3 - e4
            gxp[r0 + 3, q] = e1 - e2 + k2 * (e3 - e4) - k5 * e5
            gxp[r0 + 4, q] = e0 + e1 + e2 + e3 + e4
            gxp[r0 + 5, q] = e5
    for hh in range(h):
        dst = gx[n, c, hh]
        src = gxp[hh + ph, pw:pw + w]
        for q in range(w):
            dst[q] = src[q]


@njit(parallel=True, cache=True)
def _grad_input_transform(dv, gx, ph, pw, n_th, n_tw, k):
    """gx[n, c] = the sum of B dV B^T over the overlapping tiles of plane (n, c), cropped."""
    n_batch, c_in = gx.shape[0], gx.shape[1]
    hp, wp = M * n_th + 2, M * n_tw + 2
    for c in prange(c_in):
        loc = np.empty((TILE * TILE, n_th * n_tw), dtype=gx.dtype)
        gxp = np.empty((hp, wp), dtype=gx.dtype)
        tmp = np.empty((TILE, wp), dtype=gx.dtype)
        for n in range(n_batch):
            _grad_input_plane(dv, c, n * n_th * n_tw, loc, gxp, tmp, gx, n, ph, pw, k)


def _constants(dtype):
    """k[j] == j in the data's dtype: a float literal in a kernel would turn float32 sums into float64."""
    return np.arange(9, dtype=dtype)


def release_workspace():
    """Free this thread's scratch buffers (kernels/cpu/workspace.py)."""
    workspace.release()


def weight_transform(weight):
    """U (36, K, C) = G g G^T for each 3x3 kernel: one (36, 9) @ (9, K*C) product."""
    k_out, c_in = weight.shape[:2]
    gg = np.kron(G, G).astype(weight.dtype)  # (36, 9): U[(a,b)] = sum_(i,j) G[a,i] G[b,j] g[i,j]
    return (gg @ weight.reshape(k_out * c_in, 9).T).reshape(TILE * TILE, k_out, c_in)


def weight_grad_transform(du):
    """dL/dw (K, C, 3, 3) = G^T dU G for each kernel, from dU (36, K, C)."""
    k_out, c_in = du.shape[1:]
    gg = np.kron(G, G).astype(du.dtype)
    return np.ascontiguousarray((gg.T @ du.reshape(TILE * TILE, -1)).T).reshape(k_out, c_in, 3, 3)


def input_transform(x, padding, n_th, n_tw, out=None):
    """V (36, C, T) of x (N, C, H, W); T = N * n_th * n_tw tiles."""
    n_batch, c_in = x.shape[:2]
    v = out if out is not None else np.empty((TILE * TILE, c_in, n_batch * n_th * n_tw), dtype=x.dtype)
    _input_transform(np.ascontiguousarray(x), v, padding[0], padding[1], n_th, n_tw, _constants(x.dtype))
    return v


def _output_size(x_shape, padding):
    return x_shape[2] + 2 * padding[0] - 2, x_shape[3] + 2 * padding[1] - 2


def winograd_forward(x, weight, bias, padding):
    """y = conv2d(x, weight) + bias for a 3x3 kernel, stride 1, one group, by F(4x4, 3x3)."""
    n_batch, c_in = x.shape[:2]
    k_out = weight.shape[0]
    oh, ow = _output_size(x.shape, padding)
    n_th, n_tw = tile_counts(oh, ow)
    tiles = n_batch * n_th * n_tw
    u = weight_transform(np.ascontiguousarray(weight))
    v = input_transform(x, padding, n_th, n_tw, out=workspace.workspace("v", (TILE * TILE, c_in, tiles), x.dtype))
    mm = workspace.workspace("m", (TILE * TILE, k_out, tiles), x.dtype)
    blas.matmul_many(list(u), list(v), list(mm))  # the 36 GEMMs M[xi] = U[xi] @ V[xi]
    if bias is None:
        bias = np.zeros(k_out, dtype=x.dtype)
    y = np.empty((n_batch, k_out, oh, ow), dtype=x.dtype)
    _output_transform(mm, bias.astype(x.dtype, copy=False), y, n_th, n_tw, _constants(x.dtype))
    return y


def winograd_backward(grad_out, x, weight, padding, needs_input_grad=True, needs_weight_grad=True):
    """(grad_x, grad_w) of :func:`winograd_forward`; None where not needed."""
    k_out, c_in = weight.shape[:2]
    oh, ow = grad_out.shape[2:]
    n_th, n_tw = tile_counts(oh, ow)
    tiles = x.shape[0] * n_th * n_tw
    xi_all = range(TILE * TILE)
    dm = workspace.workspace("m", (TILE * TILE, k_out, tiles), x.dtype)
    _grad_output_transform(np.ascontiguousarray(grad_out), dm, n_th, n_tw, _constants(x.dtype))
    grad_x = grad_w = None
    if needs_weight_grad:
        v = input_transform(x, padding, n_th, n_tw, out=workspace.workspace("v", (TILE * TILE, c_in, tiles), x.dtype))
        du = np.empty((TILE * TILE, k_out, c_in), dtype=x.dtype)
        blas.matmul_many([dm[i] for i in xi_all], [v[i].T for i in xi_all], list(du))  # dU = dM V^T
        grad_w = weight_grad_transform(du)
    if needs_input_grad:
        u = weight_transform(np.ascontiguousarray(weight))
        dv = workspace.workspace("v", (TILE * TILE, c_in, tiles), x.dtype)  # V is no longer needed
        blas.matmul_many([u[i].T for i in xi_all], [dm[i] for i in xi_all], list(dv))  # dV = U^T dM
        grad_x = np.empty(x.shape, dtype=x.dtype)
        _grad_input_transform(dv, grad_x, padding[0], padding[1], n_th, n_tw, _constants(x.dtype))
    return grad_x, grad_w


serialise_parallel_kernels(globals())
