"""The built-in gradient-check suite behind ``minidl gradcheck``: every differentiable op, several cases each.

Each entry is ``(op name, [case, ...])``; a case is ``(description, fn, input shapes)``
where ``fn`` takes float64 tensors. Inputs are drawn from a seeded generator; for
max-pooling the values are a random permutation so that no window has ties
(a tie makes the function non-differentiable there).
"""
from __future__ import annotations

import time

import numpy as np

from . import nn
from .gradcheck import gradcheck_report
from .nn import functional as F
from .tensor import Tensor


def _cases():
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
    c["local_response_norm"] = [("size 3", lambda x: F.local_response_norm(x, 3, alpha=0.1, beta=0.75, k=2.0),
                                 [(2, 5, 3, 3)])]
    return c


def _where(a, b):
    from .tensor import where

    return where(a.data > b.data, a, b)


def _cat(tensors, dim):
    from .tensor import cat

    return cat(tensors, dim=dim)


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


def run_suite(atol=1e-5, rtol=1e-3, seed=0, only=None):
    """Run every case; returns rows (op, cases, max abs error, max rel error, passed, seconds)."""
    rng = np.random.default_rng(seed)
    rows = []
    for op, cases in _cases().items():
        if only and not any(o in op for o in only):
            continue
        start = time.perf_counter()
        max_abs = max_rel = 0.0
        passed = True
        for _, fn, shapes in cases:
            inputs = _inputs(shapes, rng, no_ties="pool" in op)
            for item in gradcheck_report(fn, inputs):
                err = item["abs_error"]
                scale = np.abs(item["numeric"])
                max_abs = max(max_abs, float(err.max(initial=0.0)))
                rel = err / np.maximum(scale, 1e-12)
                max_rel = max(max_rel, float(np.where(scale > 1e-8, rel, 0).max(initial=0.0)))
                passed &= bool(np.all(err <= atol + rtol * scale))
        rows.append((op, len(cases), max_abs, max_rel, passed, time.perf_counter() - start))
    return rows


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


__all__ = ["run_suite", "format_table", "nn"]
