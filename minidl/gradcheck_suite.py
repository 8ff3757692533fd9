"""The built-in gradient-check suite behind ``minidl gradcheck``: every differentiable op, several cases each.

Each entry is ``(op name, [case, ...])``; a case is ``(description, fn, input shapes)``
where ``fn`` takes float64 tensors. Inputs are drawn from a seeded generator; for
max-pooling the values are a random permutation so that no window has ties
(a tie makes the function non-differentiable there).
"""
from __future__ import annotations

import time
import zlib

import numpy as np

from . import nn
from .gradcheck import gradcheck_report
from .nn import functional as F
from .ops.roi import roi_align, roi_pool
from .ops.stochastic_depth import stochastic_depth
from .tensor import Tensor


_CASES = None


def _cases():
    """The suite, built once per process: {op: [(description, fn, shapes), ...]}."""
    global _CASES
    if _CASES is None:
        _CASES = _build_cases()
    return _CASES


def _build_cases():
    c = {}
    c["add/sub/mul/div (broadcast)"] = [
        ("a + b", lambda a, b: a + b, [(3, 4), (4,)]),
        ("a - b", lambda a, b: a - b, [(2, 1, 4), (3, 1)]),
        ("a * b", lambda a, b: a * b, [(3, 1), (1, 4)]),
        ("a / b", lambda a, b: a / (b * b + 0.5), [(3, 4), (3, 4)]),
    ]
    c["pow"] = [("a ** 3", lambda a: a ** 3, [(3, 4)]),
                ("|a| ** b", lambda a, b: (a.abs() + 0.5) ** b, [(3, 4), (4,)])]
    c["exp/log/sqrt/abs"] = [("exp", lambda a: a.exp(), [(3, 4)]),
                             ("log", lambda a: (a * a + 0.5).log(), [(3, 4)]),
                             ("sqrt", lambda a: (a * a + 0.5).sqrt(), [(3, 4)]),
                             ("abs", lambda a: (a + 0.01).abs(), [(3, 4)])]
    c["clamp/maximum/minimum/where"] = [
        ("clamp", lambda a: a.clamp(-0.5, 0.5), [(4, 5)]),
        ("maximum", lambda a, b: a.maximum(b), [(4, 5), (5,)]),
        ("minimum", lambda a, b: a.minimum(b), [(4, 1), (1, 5)]),
        ("where", lambda a, b: _where(a, b), [(4, 5), (4, 5)]),
    ]
    c["matmul"] = [("2-D", lambda a, b: a @ b, [(3, 4), (4, 2)]),
                   ("batched broadcast", lambda a, b: a @ b, [(2, 1, 3, 4), (5, 4, 2)]),
                   ("vector", lambda a, b: a @ b, [(4,), (3, 4, 2)])]
    c["sum/mean/var/std"] = [("sum dim", lambda a: a.sum(dim=1), [(3, 4, 2)]),
                             ("mean keepdim", lambda a: a.mean(dim=(0, 2), keepdim=True), [(3, 4, 2)]),
                             ("var", lambda a: a.var(dim=0), [(5, 3)]),
                             ("std", lambda a: a.std(), [(5, 3)])]
    c["max/min"] = [("max dim", lambda a: a.max(dim=1)[0], [(3, 5)]),
                    ("min all", lambda a: a.min(), [(3, 5)])]
    c["reshape/permute/expand"] = [("reshape", lambda a: a.reshape(6, 2) * 2, [(3, 4)]),
                                   ("permute", lambda a: a.permute(2, 0, 1), [(2, 3, 4)]),
                                   ("expand", lambda a: a.expand(3, 4, 5), [(4, 1)])]
    c["getitem/cat/stack/split"] = [
        ("slice step", lambda a: a[1:, ::2], [(4, 5)]),
        ("int array repeats", lambda a: a[[0, 2, 2]], [(4, 5)]),
        ("bool mask", lambda a: a[a.data > 0], [(4, 5)]),
        ("cat", lambda a, b: _cat([a, b, a], 1), [(2, 3), (2, 2)]),
        ("stack", lambda a, b: _stack([a, b]), [(2, 3), (2, 3)]),
        ("split", lambda a: a.split(2, dim=1)[1], [(3, 5)]),
    ]
    _index = Tensor(np.array([[0, 2, 0, 1], [1, 1, 0, 2]]))
    c["einsum"] = [
        ("batched matmul", lambda a, b: _einsum("bij,bjk->bik", a, b), [(2, 3, 4), (2, 4, 2)]),
        ("ellipsis broadcast", lambda a, b: _einsum("...ij,...j->...i", a, b), [(2, 3, 4), (4,)]),
        ("trace and diagonal", lambda a: _einsum("ii->", a) + _einsum("iij->j", a.reshape(2, 2, 4)).sum(),
         [(4, 4)]),
        ("three operands", lambda a, b, c: _einsum("ik,jkl,il->ij", a, b, c), [(2, 3), (4, 3, 2), (2, 2)]),
    ]
    c["mm/addmm/outer/cross/inner"] = [
        ("addmm", lambda i, a, b: i.addmm(a, b, beta=0.5, alpha=2.0), [(3,), (3, 4), (4, 3)]),
        ("baddbmm", lambda i, a, b: i.baddbmm(a, b, alpha=0.5), [(2, 3, 2), (2, 3, 4), (2, 4, 2)]),
        ("addmv", lambda i, a, b: i.addmv(a, b, beta=2.0), [(3,), (3, 4), (4,)]),
        ("outer/dot", lambda a, b: a.outer(b) * a.dot(b), [(4,), (4,)]),
        ("cross", lambda a, b: a.cross(b, dim=1), [(2, 3), (2, 3)]),
        ("inner", lambda a, b: a.inner(b), [(2, 4), (3, 4)]),
    ]
    c["tril/triu/diag/trace"] = [
        ("tril -1", lambda a: a.tril(-1), [(2, 4, 5)]),
        ("triu 1", lambda a: a.triu(1), [(4, 5)]),
        ("diagonal offset", lambda a: a.diagonal(offset=1, dim1=2, dim2=0), [(4, 2, 5)]),
        ("diag embed", lambda a: a.diag(-1) * 2, [(4,)]),
        ("diag_embed", lambda a: a.diag_embed(offset=1, dim1=0, dim2=2), [(2, 3)]),
        ("trace", lambda a: a.trace(), [(3, 5)]),
    ]
    c["flip/roll/unfold/repeat_interleave"] = [
        ("flip", lambda a: a.flip(0, 2) * a, [(2, 3, 4)]),
        ("roll", lambda a: a.roll((1, -2), (0, 1)) * a, [(3, 4)]),
        ("roll flat", lambda a: a.roll(5) * a, [(3, 4)]),
        ("rot90", lambda a: a.rot90(3, (1, 0)), [(3, 4)]),
        ("movedim", lambda a: a.movedim((0, 1), (2, 0)), [(2, 3, 4)]),
        ("unfold", lambda a: a.unfold(1, 3, 2), [(2, 7)]),
        ("repeat_interleave", lambda a: a.repeat_interleave(Tensor(np.array([2, 0, 1])), dim=1), [(2, 3)]),
    ]
    c["gather/scatter/index_add/masked"] = [
        ("gather", lambda a: a.gather(1, _index), [(2, 5)]),
        ("take_along_dim", lambda a: a.take_along_dim(_index[:1], dim=1), [(3, 5)]),
        # plain scatter with distinct targets: with repeats, the overwritten src elements have no effect
        ("scatter", lambda a, s: a.scatter(1, Tensor(np.array([[2, 0, 3], [1, 2, 0]])), s), [(3, 4), (2, 4)]),
        ("scatter_add", lambda a, s: a.scatter_add(1, _index, s), [(2, 3), (2, 4)]),
        ("scatter_reduce sum", lambda a, s: a.scatter_reduce(1, _index, s, "sum", include_self=False),
         [(2, 3), (2, 4)]),
        ("scatter_reduce mean", lambda a, s: a.scatter_reduce(1, _index, s, "mean"), [(2, 4), (2, 4)]),
        ("scatter_reduce prod", lambda a, s: a.scatter_reduce(1, _index, s, "prod"), [(2, 3), (2, 4)]),
        ("scatter_reduce amax", lambda a, s: a.scatter_reduce(1, _index, s, "amax"), [(2, 3), (2, 4)]),
        ("scatter_reduce amin", lambda a, s: a.scatter_reduce(1, _index, s, "amin", include_self=False),
         [(2, 3), (2, 4)]),
        ("index_add", lambda a, s: a.index_add(0, Tensor(np.array([2, 0, 2])), s, alpha=0.5), [(3, 2), (3, 2)]),
        ("index_select/take", lambda a: a.index_select(1, Tensor(np.array([3, 0, 3]))) * a.take(_index[:, :3]),
         [(2, 4)]),
        ("masked_fill/masked_select", lambda a: a.masked_fill(a.data > 0.5, -1.0).sum() * a.masked_select(a.data < 0),
         [(3, 4)]),
        ("meshgrid xy", lambda a, b: _meshgrid(a, b)[0] * _meshgrid(a, b)[1], [(3,), (4,)]),
        ("fancy index after int", lambda a: a[1, :, [0, 2, 2]], [(2, 3, 4)]),
    ]
    for name in ("celu", "mish", "hardtanh", "logsigmoid", "softsign", "tanhshrink", "hardshrink", "softshrink",
                 "glu", "softmin", "normalize"):
        c[name] = [(name, getattr(F, name), [(4, 6)])]
    c["pad"] = [(mode, (lambda m: lambda a: F.pad(a, (1, 2, 2, 1), mode=m))(mode), [(1, 2, 4, 5)])
                for mode in ("constant", "reflect", "replicate")]
    # ---- layers for issue 15/16 (conv1d/3d, transposed convolutions, N-d pooling, resampling, attention)
    c["pad (crop, circular)"] = [
        ("constant crop", lambda a: F.pad(a, (-1, 2, 1, -2), value=0.5), [(1, 2, 4, 5)]),
        ("reflect crop", lambda a: F.pad(a, (2, -1, -2, 3), mode="reflect"), [(1, 2, 4, 5)]),
        ("circular", lambda a: F.pad(a, (1, 2, 3, -1), mode="circular"), [(1, 2, 4, 5)]),
    ]
    c["conv1d"] = [
        ("same, dilation 2", lambda x, w, b: F.conv1d(x, w, b, padding="same", dilation=2),
         [(2, 3, 7), (4, 3, 3), (4,)]),
        ("stride 2, groups 2", lambda x, w: F.conv1d(x, w, stride=2, padding=1, groups=2), [(2, 4, 8), (4, 2, 3)]),
    ]
    c["conv3d"] = [("stride 2 pad 1", lambda x, w, b: F.conv3d(x, w, b, stride=2, padding=1),
                    [(1, 2, 4, 3, 4), (3, 2, 2, 2, 3), (3,)]),
                   ("grouped dilated", lambda x, w: F.conv3d(x, w, dilation=(1, 2, 1), groups=2),
                    [(1, 4, 3, 5, 3), (2, 2, 2, 2, 2)])]
    c["conv_transpose1d/2d/3d"] = [
        ("2d s2 p1 op1 bias", lambda x, w, b: F.conv_transpose2d(x, w, b, stride=2, padding=1, output_padding=1),
         [(2, 3, 3, 4), (3, 2, 3, 3), (2,)]),
        ("2d grouped dilated", lambda x, w: F.conv_transpose2d(x, w, groups=2, dilation=(2, 1), padding=(1, 0)),
         [(1, 4, 3, 3), (4, 3, 2, 3)]),
        ("2d op >= stride", lambda x, w: F.conv_transpose2d(x, w, stride=1, dilation=2, output_padding=1),
         [(1, 2, 3, 3), (2, 2, 2, 2)]),
        ("1d stride 3", lambda x, w: F.conv_transpose1d(x, w, stride=3, padding=1), [(2, 2, 4), (2, 3, 3)]),
        ("3d stride 2", lambda x, w, b: F.conv_transpose3d(x, w, b, stride=(2, 1, 2), output_padding=(1, 0, 0)),
         [(1, 2, 2, 3, 2), (2, 2, 2, 2, 2), (2,)]),
    ]
    c["avg/max pool 1d and 3d"] = [
        ("avg_pool1d pad", lambda a: F.avg_pool1d(a, 3, 2, 1), [(2, 3, 8)]),
        ("max_pool1d dilation", lambda a: F.max_pool1d(a, 2, 2, 1, dilation=2), [(2, 3, 9)]),
        ("adaptive_avg_pool1d", lambda a: F.adaptive_avg_pool1d(a, 3), [(2, 3, 7)]),
        ("avg_pool3d exclude pad, ceil", lambda a: F.avg_pool3d(a, 3, 2, 1, ceil_mode=True, count_include_pad=False),
         [(1, 2, 5, 4, 6)]),
        ("max_pool3d", lambda a: F.max_pool3d(a, 2, (2, 1, 2), padding=1), [(1, 2, 4, 3, 4)]),
        ("max_unpool2d", lambda a: F.max_unpool2d(*F.max_pool2d(a, 2, return_indices=True), 2), [(2, 2, 4, 6)]),
        ("adaptive_avg_pool3d", lambda a: F.adaptive_avg_pool3d(a, (2, 3, 2)), [(1, 2, 5, 4, 3)]),
        ("adaptive_max_pool3d", lambda a: F.adaptive_max_pool3d(a, (2, 3, 2)), [(1, 2, 5, 4, 3)]),
        ("lp_pool2d", lambda a: F.lp_pool2d(a * a + 0.5, 3, 2, ceil_mode=True), [(1, 2, 5, 4)]),
    ]
    c["interpolate"] = [
        ("nearest 1d", lambda a: F.interpolate(a, size=7), [(2, 2, 5)]),
        ("nearest-exact 2d", lambda a: F.interpolate(a, scale_factor=1.5, mode="nearest-exact"), [(1, 2, 4, 3)]),
        ("linear", lambda a: F.interpolate(a, size=7, mode="linear"), [(2, 2, 4)]),
        ("bilinear align_corners", lambda a: F.interpolate(a, size=(5, 3), mode="bilinear", align_corners=True),
         [(1, 2, 3, 4)]),
        ("bicubic", lambda a: F.interpolate(a, scale_factor=2, mode="bicubic"), [(1, 1, 3, 3)]),
        ("trilinear", lambda a: F.interpolate(a, size=(3, 2, 4), mode="trilinear"), [(1, 1, 2, 3, 3)]),
        ("area", lambda a: F.interpolate(a, size=(2, 3), mode="area"), [(1, 2, 5, 4)]),
        ("bicubic antialias", lambda a: F.interpolate(a, size=(2, 4), mode="bicubic", antialias=True), [(1, 1, 5, 6)]),
    ]
    c["unfold/fold/pixel_shuffle"] = [
        ("unfold", lambda a: F.unfold(a, (2, 3), dilation=(1, 2), padding=1, stride=2), [(2, 2, 5, 6)]),
        ("fold", lambda a: F.fold(a, (4, 5), 2, padding=1), [(2, 8, 30)]),
        ("pixel_shuffle", lambda a: F.pixel_shuffle(a, 2) * F.pixel_shuffle(a, 2), [(1, 8, 2, 3)]),
        ("pixel_unshuffle", lambda a: F.pixel_unshuffle(a, 2) ** 2, [(1, 2, 4, 6)]),
        ("channel_shuffle", lambda a: F.channel_shuffle(a, 2) * a, [(1, 4, 2, 3)]),
    ]
    causal_free = np.array([[True, False, True, True], [True, True, False, True], [False, True, True, True]])
    c["scaled_dot_product_attention"] = [
        ("float mask", lambda q, k, v, m: F.scaled_dot_product_attention(q, k, v, attn_mask=m),
         [(2, 2, 3, 4), (2, 2, 4, 4), (2, 2, 4, 5), (3, 4)]),
        ("bool mask, scale", lambda q, k, v: F.scaled_dot_product_attention(q, k, v, attn_mask=causal_free, scale=0.3),
         [(2, 3, 4), (2, 4, 4), (2, 4, 2)]),
        ("causal, grouped-query", lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True,
                                                                                 enable_gqa=True),
         [(1, 4, 3, 2), (1, 2, 3, 2), (1, 2, 3, 3)]),
    ]
    for name in ("relu", "relu6", "leaky_relu", "elu", "selu", "silu", "gelu", "sigmoid", "tanh",
                 "hardswish", "hardsigmoid", "softplus"):
        c[name] = [(name, getattr(F, name), [(4, 6)])]
    c["softmax/log_softmax"] = [("softmax T=1", lambda a: F.softmax(a, dim=1), [(3, 5)]),
                                ("softmax T=2", lambda a: F.softmax(a, dim=1, temperature=2.0), [(3, 5)]),
                                ("log_softmax T=0.5", lambda a: F.log_softmax(a, dim=0, temperature=0.5), [(3, 5)])]
    target = Tensor(np.array([0, 3, 1, 3]))
    c["cross_entropy"] = [
        ("plain", lambda a: F.cross_entropy(a, target), [(4, 5)]),
        ("label smoothing 0.1", lambda a: F.cross_entropy(a, target, label_smoothing=0.1), [(4, 5)]),
        ("weights, ignore_index", lambda a: F.cross_entropy(a, target, weight=np.arange(1.0, 6.0), ignore_index=1),
         [(4, 5)]),
        ("sum", lambda a: F.cross_entropy(a, target, reduction="sum"), [(4, 5)]),
    ]
    c["other losses"] = [
        ("nll", lambda a: F.nll_loss(a, target), [(4, 5)]),
        ("mse", lambda a, b: F.mse_loss(a, b), [(3, 4), (3, 4)]),
        ("smooth_l1", lambda a, b: F.smooth_l1_loss(a, b, beta=0.5), [(3, 4), (3, 4)]),
        ("bce_with_logits", lambda a: F.binary_cross_entropy_with_logits(a, Tensor((np.arange(12) % 2).reshape(3, 4)
                                                                                   .astype(np.float64))), [(3, 4)]),
    ]
    c["linear"] = [("linear", lambda x, w, b: F.linear(x, w, b), [(3, 4), (2, 4), (2,)])]
    c["conv2d"] = [
        ("3x3 pad 1", lambda x, w, b: F.conv2d(x, w, b, padding=1), [(2, 3, 5, 5), (4, 3, 3, 3), (4,)]),
        ("stride 2 dilation 2", lambda x, w: F.conv2d(x, w, stride=2, dilation=2, padding=2),
         [(1, 2, 7, 6), (3, 2, 3, 3)]),
        ("grouped", lambda x, w: F.conv2d(x, w, groups=2, padding=1), [(2, 4, 5, 5), (6, 2, 3, 3)]),
        ("depthwise x2", lambda x, w: F.conv2d(x, w, groups=3, stride=2, padding=1), [(2, 3, 6, 5), (6, 1, 3, 3)]),
        ("1x1", lambda x, w: F.conv2d(x, w), [(2, 4, 3, 3), (5, 4, 1, 1)]),
        ("non-square 2x3 stride 3", lambda x, w: F.conv2d(x, w, stride=3, padding=(1, 2)),
         [(1, 2, 7, 8), (2, 2, 2, 3)]),
    ]
    c["max_pool2d"] = [
        ("3x3 s2 p1", lambda x: F.max_pool2d(x, 3, 2, 1), [(2, 2, 7, 7)]),
        ("2x2 ceil_mode", lambda x: F.max_pool2d(x, 2, ceil_mode=True), [(1, 2, 5, 5)]),
        ("dilation 2", lambda x: F.max_pool2d(x, 2, 1, dilation=2), [(1, 2, 5, 6)]),
    ]
    c["avg_pool2d"] = [
        ("3x3 s2 p1 include pad", lambda x: F.avg_pool2d(x, 3, 2, 1), [(2, 2, 7, 7)]),
        ("exclude pad, ceil", lambda x: F.avg_pool2d(x, 3, 2, 1, ceil_mode=True, count_include_pad=False),
         [(1, 2, 6, 6)]),
        ("divisor_override", lambda x: F.avg_pool2d(x, 2, divisor_override=3), [(1, 2, 4, 4)]),
    ]
    c["adaptive pooling"] = [
        ("avg 3x2", lambda x: F.adaptive_avg_pool2d(x, (3, 2)), [(2, 2, 7, 5)]),
        ("avg global", lambda x: F.adaptive_avg_pool2d(x, 1), [(2, 3, 4, 4)]),
        ("avg larger than input", lambda x: F.adaptive_avg_pool2d(x, 5), [(1, 2, 3, 3)]),
        ("max 2x3", lambda x: F.adaptive_max_pool2d(x, (2, 3)), [(1, 2, 5, 7)]),
    ]
    c["batch_norm"] = [
        ("training 4-D", lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True), [(3, 2, 3, 3), (2,), (2,)]),
        ("training 2-D", lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True), [(5, 3), (3,), (3,)]),
        ("eval", lambda x, w, b: F.batch_norm(x, Tensor(np.array([0.1, -0.2])), Tensor(np.array([1.5, 0.7])), w, b),
         [(3, 2, 3, 3), (2,), (2,)]),
    ]
    # ---- issue 16: normalisation beyond batch norm, embedding, recurrent layers
    c["layer_norm"] = [
        ("last dim, affine", lambda x, w, b: F.layer_norm(x, (4,), w, b), [(3, 2, 4), (4,), (4,)]),
        ("last 2 dims, affine", lambda x, w, b: F.layer_norm(x, (2, 4), w, b), [(3, 2, 4), (2, 4), (2, 4)]),
        ("no affine", lambda x: F.layer_norm(x, 5), [(2, 5)]),
    ]
    c["group_norm"] = [
        ("2 groups, affine", lambda x, w, b: F.group_norm(x, 2, w, b), [(2, 4, 3, 3), (4,), (4,)]),
        ("3 groups, 3-D, no affine", lambda x: F.group_norm(x, 3), [(2, 6, 5)]),
    ]
    c["instance_norm"] = [
        ("input stats, affine", lambda x, w, b: F.instance_norm(x, weight=w, bias=b), [(2, 3, 4, 4), (3,), (3,)]),
        ("running stats", lambda x, w, b: F.instance_norm(x, Tensor(np.array([0.1, -0.2])),
                                                          Tensor(np.array([1.5, 0.7])), w, b, use_input_stats=False),
         [(2, 2, 5), (2,), (2,)]),
    ]
    c["rms_norm"] = [("last dim, weight", lambda x, w: F.rms_norm(x, (4,), w, eps=1e-6), [(3, 4), (4,)])]
    c["embedding"] = [
        # the padding row gets no gradient by definition (its lookups are constants), so it is not looked up here;
        # tests/test_layers_norm_rnn.py checks that its gradient is zero
        ("padding_idx", lambda w: F.embedding(Tensor(np.array([[1, 3, 3], [0, 2, 1]])), w, padding_idx=4), [(5, 3)]),
        ("repeated indices", lambda w: F.embedding(Tensor(np.array([4, 1, 4, 4])), w), [(5, 2)]),
    ]
    c["embedding_bag"] = [
        ("mean, offsets with an empty bag", lambda w: F.embedding_bag(Tensor(np.array([4, 1, 1, 0])), w,
                                                                      Tensor(np.array([0, 2, 2]))), [(5, 3)]),
        ("sum, per_sample_weights", lambda w, p: F.embedding_bag(Tensor(np.array([[2, 0], [2, 3]])), w, mode="sum",
                                                                 per_sample_weights=p), [(4, 3), (2, 2)]),
        ("max", lambda w: F.embedding_bag(Tensor(np.array([[2, 0, 1], [3, 3, 1]])), w, mode="max"), [(4, 3)]),
    ]
    c["recurrent cells"] = [
        ("rnn_tanh_cell", F.rnn_tanh_cell, [(3, 4), (3, 2), (2, 4), (2, 2), (2,), (2,)]),
        ("rnn_relu_cell", lambda x, h, wi, wh: F.rnn_relu_cell(x, h, wi, wh), [(3, 4), (3, 2), (2, 4), (2, 2)]),
        ("lstm_cell (fused)", lambda x, h, c, wi, wh, bi, bh: _cat(F.lstm_cell(x, (h, c), wi, wh, bi, bh), 1),
         [(3, 4), (3, 2), (3, 2), (8, 4), (8, 2), (8,), (8,)]),
        ("gru_cell", F.gru_cell, [(3, 4), (3, 2), (6, 4), (6, 2), (6,), (6,)]),
    ]
    c["recurrent layers"] = [
        ("LSTM 2 layers bidirectional, h0 c0", _recurrent_case(nn.LSTM, num_layers=2, bidirectional=True),
         [(3, 2, 3), (4, 2, 2), (4, 2, 2)]),
        ("GRU batch_first bidirectional, h0", _recurrent_case(nn.GRU, batch_first=True, bidirectional=True),
         [(2, 3, 3), (2, 2, 2)]),
        ("RNN relu 2 layers", _recurrent_case(nn.RNN, num_layers=2, nonlinearity="relu"), [(3, 2, 3)]),
        # one direction's whole recurrence (one graph node each), with the recurrent weights as inputs
        ("LSTM layer node, reverse", lambda gi, h, c, w, b: _cat([s.reshape(-1) for s in _flat(
            F._lstm_layer(gi, (h, c), w, b, reverse=True))], 0), [(3, 2, 8), (2, 2), (2, 2), (8, 2), (8,)]),
        ("GRU layer node", lambda gi, h, w, b: F._gru_layer(gi, h, w, b)[0], [(3, 2, 6), (2, 2), (6, 2), (6,)]),
        ("RNN tanh layer node, reverse", lambda gi, h, w: F._rnn_layer(gi, h, w, None, "tanh", reverse=True)[0],
         [(4, 2, 3), (2, 3), (3, 3)]),
    ]
    c["local_response_norm"] = [("size 3", lambda x: F.local_response_norm(x, 3, alpha=0.1, beta=0.75, k=2.0),
                                 [(2, 5, 3, 3)])]
    # ---- issue 15: elementwise math, rounding, cumulative ops, sorting, norms
    from .linalg import matrix_norm, vector_norm

    inside = lambda a: a.tanh() * 0.9  # noqa: E731 - values in (-0.9, 0.9) for asin, acos, atanh
    c["trigonometric"] = [(n, (lambda n: lambda a: getattr(a, n)())(n), [(3, 4)])
                          for n in ("sin", "cos", "atan", "sinh", "cosh", "asinh")] + [
        ("tan", lambda a: (a * 0.4).tan(), [(3, 4)]),
        ("asin", lambda a: inside(a).asin(), [(3, 4)]),
        ("acos", lambda a: inside(a).acos(), [(3, 4)]),
        ("atanh", lambda a: inside(a).atanh(), [(3, 4)]),
        ("acosh", lambda a: (a * a + 1.2).acosh(), [(3, 4)]),
        ("atan2", lambda a, b: a.atan2(b), [(3, 4), (4,)]),
    ]
    c["exp2/log2/log10/log1p/expm1/erf"] = [
        ("exp2", lambda a: a.exp2(), [(3, 4)]),
        ("log2", lambda a: (a * a + 0.5).log2(), [(3, 4)]),
        ("log10", lambda a: (a * a + 0.5).log10(), [(3, 4)]),
        ("log1p", lambda a: (a * a).log1p(), [(3, 4)]),
        ("expm1", lambda a: a.expm1(), [(3, 4)]),
        ("erf", lambda a: a.erf(), [(3, 4)]),
        ("logaddexp", lambda a, b: a.logaddexp(b), [(3, 4), (3, 1)]),
    ]
    c["rounding/copysign/lerp/remainder"] = [
        ("frac, round", lambda a: (a * 3).frac() + (a * 3).round() * a, [(3, 4)]),
        ("copysign", lambda a, b: a.copysign(b), [(3, 4), (3, 4)]),
        ("lerp", lambda a, b, w: a.lerp(b, w), [(3, 4), (3, 4), (4,)]),
        ("remainder", lambda a, b: (a * 3) % (b.abs() + 0.5), [(3, 4), (3, 4)]),
        ("fmod", lambda a, b: (a * 3).fmod(b.abs() + 0.5), [(3, 4), (3, 4)]),
        ("fmax/fmin", lambda a, b: a.fmax(b) + a.fmin(b * 2), [(3, 4), (4,)]),
        ("clamp tensor bounds", lambda a, lo, hi: a.clamp(lo - 1, hi + 1), [(3, 4), (4,), (3, 1)]),
    ]
    c["prod/logsumexp/cumulative"] = [
        ("prod", lambda a: a.prod(), [(3, 4)]),
        ("prod dim", lambda a: a.prod(dim=1, keepdim=True), [(3, 4)]),
        ("logsumexp", lambda a: a.logsumexp(dim=(0, 2)), [(3, 4, 2)]),
        ("cumsum", lambda a: a.cumsum(dim=1), [(3, 4)]),
        ("cumprod", lambda a: a.cumprod(dim=0), [(4, 3)]),
        ("logcumsumexp", lambda a: a.logcumsumexp(dim=1), [(3, 5)]),
        ("cummax/cummin", lambda a: a.cummax(dim=1)[0] + a.cummin(dim=1)[0], [(3, 5)]),
    ]
    c["sort/median/kthvalue/amin"] = [
        ("sort descending", lambda a: a.sort(dim=1, descending=True)[0], [(3, 5)]),
        ("median", lambda a: a.median(dim=0)[0], [(5, 3)]),
        ("kthvalue", lambda a: a.kthvalue(2, dim=1)[0], [(3, 5)]),
        ("amin", lambda a: a.amin(dim=(0, 1)), [(3, 4, 2)]),
    ]
    c["norms"] = [
        ("norm", lambda a: a.norm(), [(3, 4)]),
        ("vector_norm ord=3", lambda a: vector_norm(a, ord=3, dim=1), [(3, 4)]),
        ("vector_norm ord=inf", lambda a: vector_norm(a, ord=float("inf"), dim=0), [(3, 4)]),
        ("matrix_norm nuc", lambda a: matrix_norm(a, ord="nuc"), [(2, 3, 4)]),
        ("matrix_norm 2", lambda a: matrix_norm(a, ord=2), [(3, 4)]),
        ("matrix_norm 1", lambda a: matrix_norm(a, ord=1), [(3, 4)]),
    ]
    # attention (issue 16)
    c["fused softmax (last dim)"] = [("rows of 5", lambda a: _softmax_last_dim(a), [(2, 3, 5)]),
                                     ("one row", lambda a: _softmax_last_dim(a), [(7,)])]
    causal = np.triu(np.ones((3, 3), dtype=bool), k=1)  # (L, L): True above the diagonal = not attended
    padding = np.array([[False, False, False], [False, False, True]])  # (N, S): key 2 of sample 1 is padding
    float_mask = np.linspace(-1.0, 1.0, 2 * 2 * 3 * 4).reshape(2 * 2, 3, 4)  # (N * heads, L, S)
    c["multi-head attention"] = [
        ("self, bool masks, batch_first", lambda x: _mha(dict(batch_first=True))(
            x, x, x, attn_mask=causal, key_padding_mask=padding)[0], [(2, 3, 4)]),
        ("kdim/vdim, 3-D float mask, per-head weights", lambda q, k, v: _mha(dict(kdim=3, vdim=5))(
            q, k, v, attn_mask=float_mask, average_attn_weights=False), [(3, 2, 4), (4, 2, 3), (4, 2, 5)]),
        ("parameters, add_bias_kv, add_zero_attn", lambda x, w, b, wo, bk: _mha(
            dict(add_bias_kv=True, add_zero_attn=True),
            {"in_proj_weight": w, "in_proj_bias": b, "out_proj.weight": wo, "bias_k": bk})(x, x, x),
         [(3, 2, 4), (12, 4), (12,), (4, 4), (1, 1, 4)]),
    ]
    # in-place ops (issue 15): each writes into a * 1, a non-leaf, and the case returns it
    rows = np.array([2, 0, 2])
    c["in-place ops, setitem"] = [
        ("mul_ add_ div_", _on_copy(lambda y, b: y.mul_(b).add_(b, alpha=2).div_(b * b + 1)), [(3, 4), (3, 4)]),
        ("setitem slice", _on_copy(lambda y, v: y.__setitem__((slice(1, 3),), v)), [(3, 4), (4,)]),
        ("index_add_", _on_copy(lambda y, s: y.index_add_(0, Tensor(rows), s, alpha=0.5)), [(3, 4), (3, 4)]),
        ("scatter_", _on_copy(lambda y, s: y.scatter_(1, Tensor(np.array([[1, 0], [3, 2], [0, 1]])), s)),
         [(3, 4), (3, 2)]),
        ("masked_fill_ tanh_", _on_copy(lambda y: y.masked_fill_(y.data > 0.5, 0.5).tanh_()), [(3, 4)]),
    ]
    # stochastic depth (issue 16): a generator seeded per call, so every evaluation draws the same mask
    c["stochastic_depth (minidl.ops)"] = [
        ("row, p=0.5", lambda a: stochastic_depth(a, 0.5, "row", generator=np.random.default_rng(7)) * a,
         [(6, 2, 3)]),
        ("batch, p=0.3", lambda a: stochastic_depth(a, 0.3, "batch", generator=np.random.default_rng(0)) * a,
         [(2, 3)]),
    ]
    # ---- issue 18: the detection ops' backward, and the Functions no case reached before
    rois = Tensor(np.array([[0, 0.6, 0.4, 4.1, 3.3], [1, 1.2, 0.8, 3.9, 4.7], [0, 2.5, 1.5, 6.2, 5.4]]))
    rois_x2 = Tensor(rois.data * np.array([1, 2, 2, 2, 2]))  # image coordinates of a stride-2 feature map
    c["roi_align/roi_pool (minidl.ops)"] = [
        ("roi_align 2x2 aligned, sampling 2", lambda x: roi_align(x, rois, 2, 1.0, 2, aligned=True), [(2, 2, 6, 7)]),
        ("roi_align 3x2 scale 0.5, adaptive", lambda x: roi_align(x, rois_x2, (3, 2), 0.5, -1), [(2, 2, 6, 7)]),
        ("roi_pool 2x2", lambda x: roi_pool(x, rois, 2), [(2, 2, 6, 7)]),
    ]
    c["dropout/div rounding/copy_/views"] = [
        ("dropout p=0.4", lambda a: F.dropout(a, 0.4, generator=np.random.default_rng(3)), [(4, 5)]),
        ("div floor, trunc", lambda a, b: a.div(b.abs() + 0.5, rounding_mode="floor") * a
         + a.div(b.abs() + 0.5, rounding_mode="trunc") * b, [(3, 4), (3, 4)]),
        ("copy_", _on_copy(lambda y, s: y[1:].copy_(s)), [(3, 4), (2, 4)]),
        ("in-place through a view", _on_copy(lambda y, v: y[:, 1:3].mul_(v)), [(3, 4), (3, 2)]),
    ]
    return c


def _flat(out):
    """The tensors of a nested (output, (h, c)) result, in order."""
    return [t for o in out for t in _flat(o)] if isinstance(out, tuple) else [out]


def _recurrent_case(layer, **options):
    """A float64 layer (3 input features, hidden size 2) as a function of its input and initial states."""
    module = layer(3, 2, dtype=np.float64, **options)

    def run(x, *states):
        hx = None if not states else (states if len(states) == 2 else states[0])
        output, hidden = module(x, hx)
        parts = [output.reshape(-1)] + [h.reshape(-1) for h in (hidden if isinstance(hidden, tuple) else (hidden,))]
        return _cat(parts, 0)

    return run
def _softmax_last_dim(a):
    from .functions.softmax_fused import SoftmaxLastDim
    from .tensor import apply

    return apply(SoftmaxLastDim, a)


def _mha(options, params=None):
    """A float64 nn.MultiheadAttention(4, 2) with fixed weights; ``params`` puts input tensors in place of some."""
    with nn.init.skipped():  # the weights are set below: no draws from the global generator
        mha = nn.MultiheadAttention(4, 2, dtype=np.float64, **options)
    rng = np.random.default_rng(1)
    for p in mha.parameters():
        p.data[...] = rng.standard_normal(p.shape) * 0.5
    for name, tensor in (params or {}).items():  # as torch.func.functional_call: the graph runs through them
        owner, _, leaf = name.rpartition(".")
        (mha.get_submodule(owner) if owner else mha)._parameters[leaf] = tensor
    return mha
def _on_copy(op):
    """A case for an in-place op: ``op`` modifies ``a * 1`` (a non-leaf in the graph), which is returned."""
    def fn(a, *rest):
        y = a * 1
        op(y, *rest)
        return y

    return fn


def _where(a, b):
    from .tensor import where

    return where(a.data > b.data, a, b)


def _cat(tensors, dim):
    from .tensor import cat

    return cat(tensors, dim=dim)


def _einsum(equation, *operands):
    from .tensor_functions import einsum

    return einsum(equation, *operands)


def _meshgrid(*tensors):
    from .tensor_functions import meshgrid

    return meshgrid(*tensors, indexing="xy")


def _stack(tensors):
    from .tensor import stack

    return stack(tensors, dim=1)


def _inputs(shapes, rng, no_ties):
    out = []
    for shape in shapes:
        if no_ties:
            n = int(np.prod(shape))
            values = (rng.permutation(n) - n / 2) / n * 4  # distinct values: no ties in any window
        else:
            values = rng.standard_normal(shape)
        out.append(Tensor(np.asarray(values, dtype=np.float64).reshape(shape), requires_grad=True))
    return out


def case_seed(op, description, seed=0):
    """The seed of one case's draws: from its own name, so that ``--op`` filters never change the numbers."""
    return zlib.crc32(f"{op}/{description}".encode()) ^ seed


def check_case(op, description, fn, shapes, atol=1e-5, rtol=1e-3, seed=0, no_ties=None):
    """Gradcheck one case on float64 inputs drawn from :func:`case_seed`; returns a case record.

    The record is a dict: ``op``, ``case``, ``shapes``, ``passed``, ``seconds`` and ``inputs``, one
    dict per input that requires grad with ``input``, ``shape``, ``max_abs``, ``max_rel``, ``passed``
    and the worst element (largest ``|analytic - numeric| - (atol + rtol |numeric|)``): ``worst_index``,
    ``analytic``, ``numeric``.
    """
    start = time.perf_counter()
    rng = np.random.default_rng(case_seed(op, description, seed))
    inputs = _inputs(shapes, rng, no_ties=("pool" in op) if no_ties is None else no_ties)
    per_input = []
    for item in gradcheck_report(fn, inputs, seed=seed):
        err = item["abs_error"]
        scale = np.abs(item["numeric"])
        rel = np.where(scale > 1e-8, err / np.maximum(scale, 1e-12), 0.0)
        excess = err - (atol + rtol * scale)
        j = int(np.argmax(excess)) if err.size else 0
        per_input.append({
            "input": item["input"],
            "shape": tuple(item["shape"]),
            "max_abs": float(err.max(initial=0.0)),
            "max_rel": float(rel.max(initial=0.0)),
            "passed": bool(np.all(excess <= 0)),
            "worst_index": tuple(int(i) for i in np.unravel_index(j, item["shape"])) if err.size else (),
            "analytic": float(item["analytic"][j]) if err.size else 0.0,
            "numeric": float(item["numeric"][j]) if err.size else 0.0,
        })
    return {"op": op, "case": description, "shapes": [tuple(s) for s in shapes],
            "passed": all(i["passed"] for i in per_input), "inputs": per_input,
            "seconds": time.perf_counter() - start}


def run_suite(atol=1e-5, rtol=1e-3, seed=0, only=None, on_case=None, workers=1):
    """Run every case; returns rows (op, cases, max abs error, max rel error, passed, seconds).

    Each case draws its inputs from its own seed (:func:`case_seed`), so a case gives the same
    numbers whether it runs alone (``only``), in the whole suite, or in another process.
    ``on_case`` is called with each case's record (:func:`check_case`) as soon as it is done
    (with ``workers > 1``, as soon as its op is done), in the suite's order.

    ``workers > 1`` runs the ops in that many worker processes, each taking the next op as it
    finishes one. The cases are independent, and a first run spends most of its time in Numba's
    compiler, which works one function at a time per process: two workers on two cores compile
    two kernels at once (each kernel lands in the shared on-disk cache).
    """
    ops = [op for op in _cases() if not only or any(o in op for o in only)]
    if workers > 1 and len(ops) > 1:
        return _run_in_workers(ops, atol, rtol, seed, on_case, workers)
    return [_op_row(op, records) for op, records in
            ((op, _run_op(op, atol, rtol, seed, on_case)) for op in ops)]


def _run_op(op, atol, rtol, seed, on_case=None):
    """The records of every case of ``op``."""
    records = []
    for description, fn, shapes in _cases()[op]:
        records.append(check_case(op, description, fn, shapes, atol, rtol, seed))
        if on_case is not None:
            on_case(records[-1])
    return records


def _op_row(op, records):
    inputs = [i for r in records for i in r["inputs"]]
    return (op, len(records), max((i["max_abs"] for i in inputs), default=0.0),
            max((i["max_rel"] for i in inputs), default=0.0), all(r["passed"] for r in records),
            sum(r["seconds"] for r in records))


def _worker_run_op(job):
    op, atol, rtol, seed = job
    return _run_op(op, atol, rtol, seed)


def _init_worker(first):
    """One worker (the first to start) may print the compile notice; the others stay quiet."""
    with first.get_lock():
        announces = first.value == 0
        first.value = 1
    if not announces:
        from .compilation import silence_in_this_process

        silence_in_this_process()


def _run_in_workers(ops, atol, rtol, seed, on_case, workers):
    import multiprocessing

    # fork where the platform has it: the workers start at once, with the suite already imported
    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    context = multiprocessing.get_context(method)
    rows = []
    first = context.Value("i", 0)
    with context.Pool(min(workers, len(ops)), initializer=_init_worker, initargs=(first,)) as pool:
        jobs = [(op, atol, rtol, seed) for op in ops]
        # runs of consecutive ops per task: neighbouring ops mostly share kernels, so a kernel is
        # compiled by one worker rather than by both at once; several runs per worker keep them balanced
        chunk = max(1, len(ops) // (8 * workers))
        for op, records in zip(ops, pool.imap(_worker_run_op, jobs, chunksize=chunk)):
            if on_case is not None:
                for record in records:
                    on_case(record)
            rows.append(_op_row(op, records))
    return rows


def format_case(record, verbose=True):
    """A case as lines: its shapes, then per input the max abs/rel error; the worst element when it failed."""
    shapes = ", ".join("x".join(map(str, s)) or "scalar" for s in record["shapes"])
    name = f"{record['op']} / {record['case']}" if record["case"] else record["op"]
    lines = [f"{name}  inputs {shapes}: {'ok' if record['passed'] else 'FAILED'}"]
    for item in record["inputs"]:
        if verbose or not item["passed"]:
            lines.append(f"    input {item['input']} {str(item['shape']):14s} max abs err {item['max_abs']:.3e}  "
                         f"max rel err {item['max_rel']:.3e}")
        if not item["passed"]:
            lines.append(f"      worst element {item['worst_index']}: analytic {item['analytic']:.10g}, "
                         f"numeric {item['numeric']:.10g}")
    return "\n".join(lines)


def format_table(rows):
    lines = [f"{'op':34s} {'cases':>5s} {'max abs err':>12s} {'max rel err':>12s}  pass",
             "-" * 72]
    for op, cases, max_abs, max_rel, passed, _ in rows:
        lines.append(f"{op:34s} {cases:5d} {max_abs:12.2e} {max_rel:12.2e}  {'yes' if passed else 'NO'}")
    total = sum(r[1] for r in rows)
    failed = [r[0] for r in rows if not r[4]]
    lines.append("-" * 72)
    lines.append(f"{len(rows)} ops, {total} cases: " + ("all passed" if not failed else f"FAILED: {', '.join(failed)}"))
    return "\n".join(lines)


__all__ = ["run_suite", "check_case", "case_seed", "format_case", "format_table", "nn"]
