"""Layers of issues 15/16: conv1d/conv3d, transposed convolutions, 1-D/3-D pooling, max_unpool,
interpolate, pad (crop, circular), unfold/fold, pixel shuffle and scaled dot-product attention.

Each op: float32 values and input gradients against PyTorch (where importable); float64
gradient checks (the built-in suite's cases run in tests/test_gradcheck_suite.py, a few more
here); the transposed convolution also against its plain float64 reference.
"""
import numpy as np
import pytest

import minidl
import minidl.nn as nn
import minidl.nn.functional as F
from minidl.kernels.reference import resample as reference_resample
from minidl.kernels.reference.conv_transpose import conv_transpose2d_forward as reference_conv_transpose2d

RNG = np.random.default_rng(0)


def _arrays(shapes):
    return [RNG.standard_normal(s).astype(np.float32) for s in shapes]


def against_torch(fn, shapes, torch_fn=None, atol=1e-5, rtol=1e-4, grad=True):
    """Run ``fn`` on minidl and torch float32 tensors of ``shapes``; compare values and input gradients.

    ``fn`` takes (F, *tensors) so that one lambda serves both libraries.
    """
    torch = pytest.importorskip("torch")
    arrays = _arrays(shapes)
    mine = [minidl.tensor(a, requires_grad=grad) for a in arrays]
    theirs = [torch.tensor(a, requires_grad=grad) for a in arrays]
    out = fn(F, *mine)
    tout = (torch_fn or fn)(torch.nn.functional, *theirs)
    np.testing.assert_allclose(out.numpy(), tout.detach().numpy(), atol=atol, rtol=rtol)
    assert out.dtype == np.float32 and out.shape == tuple(tout.shape)
    if grad:
        g = RNG.standard_normal(tout.shape).astype(np.float32)
        out.backward(minidl.tensor(g))
        tout.backward(torch.tensor(g))
        for m, t in zip(mine, theirs):
            np.testing.assert_allclose(m.grad.numpy(), t.grad.numpy(), atol=atol * 10, rtol=rtol * 10)
    return out


def gradcheck(fn, shapes):
    inputs = [minidl.tensor(RNG.standard_normal(s), dtype="float64", requires_grad=True) for s in shapes]
    assert minidl.gradcheck(fn, inputs)


# ----------------------------------------------------------------------------- convolutions
@pytest.mark.parametrize("shapes, options", [
    ([(2, 3, 11), (6, 3, 5), (6,)], dict(stride=2, padding=2)),
    ([(1, 4, 9), (4, 2, 3)], dict(groups=2, dilation=3, padding=1)),
    ([(2, 3, 8), (5, 3, 4)], dict(padding="same", dilation=2)),  # even span: the extra pixel on the right
    ([(2, 3, 8), (5, 3, 4)], dict(padding="valid")),
    ([(3, 10), (2, 3, 3)], dict(stride=3)),  # unbatched
])
def test_conv1d_against_torch(shapes, options):
    against_torch(lambda f, *t: f.conv1d(*t, **options), shapes)


@pytest.mark.parametrize("shapes, options", [
    ([(1, 4, 5, 5, 5), (4, 4, 3, 3, 3)], dict(padding=1)),
    ([(2, 2, 6, 5, 7), (4, 2, 2, 3, 2), (4,)], dict(stride=(2, 1, 3), padding=(1, 0, 1))),
    ([(1, 4, 5, 6, 5), (6, 2, 2, 2, 2)], dict(groups=2, dilation=(2, 1, 2))),
    ([(1, 2, 4, 5, 4), (3, 2, 2, 3, 2)], dict(padding="same")),
    ([(2, 4, 4, 4), (3, 2, 3, 3, 3)], dict(padding=1)),  # unbatched
])
@pytest.mark.filterwarnings("ignore:Using padding='same'")  # torch's own note on its implementation
def test_conv3d_against_torch(shapes, options):
    against_torch(lambda f, *t: f.conv3d(*t, **options), shapes, atol=1e-4)


CONV_T2D = [
    ([(2, 4, 9, 9), (4, 4, 3, 3)], dict()),
    ([(2, 4, 4, 5), (4, 3, 3, 3), (3,)], dict(stride=(2, 1), padding=(1, 0))),
    ([(2, 4, 6, 5), (4, 4, 3, 3), (4,)], dict(stride=(2, 3), output_padding=(1, 2), padding=1)),
    ([(2, 4, 5, 5), (4, 2, 3, 2)], dict(groups=2, dilation=(2, 1))),
    ([(1, 2, 4, 4), (2, 3, 2, 2)], dict(dilation=3, output_padding=2, stride=2)),  # output_padding >= stride
    ([(1, 32, 6, 6), (32, 24, 3, 3)], dict(padding=1)),  # wide enough for the Winograd plan of the adjoint conv
    ([(2, 8, 5, 5), (8, 4, 1, 1), (4,)], dict()),  # 1x1: the pointwise plan
    ([(3, 5, 4), (3, 2, 3, 3)], dict(stride=2)),  # unbatched
]


@pytest.mark.parametrize("shapes, options", CONV_T2D)
def test_conv_transpose2d_against_torch(shapes, options):
    against_torch(lambda f, *t: f.conv_transpose2d(*t, **options), shapes, atol=1e-4)


@pytest.mark.parametrize("shapes, options", CONV_T2D[:5])
def test_conv_transpose2d_matches_float64_reference(shapes, options):
    x, w, *b = [RNG.standard_normal(s) for s in shapes]
    full = dict(stride=(1, 1), padding=(0, 0), output_padding=(0, 0), dilation=(1, 1), groups=1)
    full.update({k: (v if isinstance(v, tuple) or k == "groups" else (v, v)) for k, v in options.items()})
    want = reference_conv_transpose2d(x, w, b[0] if b else None, full["stride"], full["padding"],
                                      full["output_padding"], full["dilation"], full["groups"])
    got = F.conv_transpose2d(minidl.tensor(x), minidl.tensor(w), minidl.tensor(b[0]) if b else None, **options)
    assert got.dtype == np.float64
    np.testing.assert_allclose(got.numpy(), want, atol=1e-12)


def test_conv_transpose2d_gradcheck():
    gradcheck(lambda x, w, b: F.conv_transpose2d(x, w, b, stride=2, padding=(1, 0), output_padding=1, groups=2),
              [(2, 4, 3, 3), (4, 1, 3, 2), (2,)])


def test_conv_transpose1d_and_3d_against_torch():
    against_torch(lambda f, x, w, b: f.conv_transpose1d(x, w, b, stride=3, padding=1, output_padding=2),
                  [(2, 3, 7), (3, 4, 4), (4,)])
    against_torch(lambda f, x, w: f.conv_transpose3d(x, w), [(2, 4, 5, 5, 5), (4, 4, 3, 3, 3)], atol=1e-4)
    against_torch(lambda f, x, w, b: f.conv_transpose3d(x, w, b, stride=(1, 2, 2), padding=1, groups=2,
                                                        output_padding=(0, 1, 0)),
                  [(1, 4, 3, 4, 3), (4, 1, 3, 3, 2), (2,)], atol=1e-4)


def test_conv_transpose_is_the_adjoint_of_conv():
    """<conv(x, w), y> == <x, conv_transpose(y, w)>: the defining property."""
    x, w = RNG.standard_normal((2, 3, 7, 6)), RNG.standard_normal((4, 3, 3, 2))
    y = F.conv2d(minidl.tensor(x), minidl.tensor(w), stride=2, padding=1, dilation=(1, 2))
    u = RNG.standard_normal(y.shape)
    back = F.conv_transpose2d(minidl.tensor(u), minidl.tensor(w), stride=2, padding=1, dilation=(1, 2),
                              output_padding=(0, 1))
    assert back.shape == x.shape
    np.testing.assert_allclose(float((y.numpy() * u).sum()), float((x * back.numpy()).sum()), rtol=1e-10)


def test_conv_errors():
    x, w = minidl.randn(1, 4, 5, 5), minidl.randn(4, 4, 3, 3)
    with pytest.raises(ValueError):
        F.conv_transpose2d(x, w, padding=(1, 1, 1))
    with pytest.raises(ValueError):
        F.conv_transpose2d(x, w, stride=2, output_padding=2)  # output_padding must be below stride or dilation
    with pytest.raises(ValueError):
        F.conv1d(minidl.randn(1, 3, 5), minidl.randn(2, 4, 3))
    with pytest.raises(ValueError):
        F.conv3d(minidl.randn(1, 2, 3, 3, 3), minidl.randn(2, 2, 4, 1, 1))


# ----------------------------------------------------------------------------- pooling
def test_pool_1d_against_torch():
    against_torch(lambda f, x: f.max_pool1d(x, 3, 2, 1, dilation=2, ceil_mode=True), [(2, 3, 12)])
    against_torch(lambda f, x: f.avg_pool1d(x, 4, 3, 2, ceil_mode=True, count_include_pad=False), [(2, 3, 11)])
    against_torch(lambda f, x: f.adaptive_avg_pool1d(x, 4), [(2, 3, 11)])
    against_torch(lambda f, x: f.adaptive_max_pool1d(x, 5), [(3, 13)])
    torch = pytest.importorskip("torch")
    a = _arrays([(2, 3, 10)])[0]
    _, idx = F.max_pool1d(minidl.tensor(a), 3, return_indices=True)
    _, tidx = torch.nn.functional.max_pool1d(torch.tensor(a), 3, return_indices=True)
    np.testing.assert_array_equal(idx.numpy(), tidx.numpy())


@pytest.mark.parametrize("options", [
    dict(kernel_size=(8, 8, 8), stride=5, padding=1, count_include_pad=False),
    dict(kernel_size=3, stride=2, padding=1, ceil_mode=True),
    dict(kernel_size=(2, 3, 2), stride=(1, 2, 2), divisor_override=5),
])
def test_avg_pool3d_against_torch(options):
    against_torch(lambda f, x: f.avg_pool3d(x, **options), [(1, 2, 9, 10, 11)])


def test_max_pool3d_against_torch():
    torch = pytest.importorskip("torch")
    a = np.random.default_rng(1).permutation(2 * 3 * 6 * 5 * 7).astype(np.float32).reshape(2, 3, 6, 5, 7)
    out, idx = F.max_pool3d(minidl.tensor(a), 3, (2, 1, 2), padding=1, dilation=(1, 2, 1), return_indices=True)
    tout, tidx = torch.nn.functional.max_pool3d(torch.tensor(a), 3, (2, 1, 2), padding=1, dilation=(1, 2, 1),
                                                return_indices=True)
    np.testing.assert_array_equal(out.numpy(), tout.numpy())
    np.testing.assert_array_equal(idx.numpy(), tidx.numpy())
    against_torch(lambda f, x: f.max_pool3d(x, 2, ceil_mode=True), [(1, 2, 5, 4, 5)])


def test_max_pool2d_integer_input_and_indices():
    torch = pytest.importorskip("torch")
    a = RNG.integers(-50, 50, (4, 2, 11, 28)).astype(np.int32)
    for options in (dict(kernel_size=2, padding=1), dict(kernel_size=(3, 2), stride=(2, 3), dilation=(2, 1))):
        out, idx = F.max_pool2d(minidl.tensor(a), return_indices=True, **options)
        tout, tidx = torch.nn.functional.max_pool2d(torch.tensor(a), return_indices=True, **options)
        assert out.dtype == np.int32
        np.testing.assert_array_equal(out.numpy(), tout.numpy())
        # ties: PyTorch keeps the first maximum in scan order, as here
        np.testing.assert_array_equal(idx.numpy(), tidx.numpy())
    h = RNG.standard_normal((2, 3, 7, 6)).astype(np.float16)  # float16 takes the same plain path
    np.testing.assert_array_equal(F.max_pool2d(minidl.tensor(h), 2, padding=1).numpy(),
                                  torch.nn.functional.max_pool2d(torch.tensor(h), 2, padding=1).numpy())
    f = RNG.standard_normal((2, 3, 6, 6)).astype(np.float32)
    _, idx = F.max_pool2d(minidl.tensor(f), 3, padding=1, stride=2, return_indices=True)
    _, tidx = torch.nn.functional.max_pool2d(torch.tensor(f), 3, padding=1, stride=2, return_indices=True)
    np.testing.assert_array_equal(idx.numpy(), tidx.numpy())


@pytest.mark.parametrize("n, shape, options", [
    (2, (8, 3, 50, 50), dict(kernel_size=(5, 5), stride=(6, 5))),
    (2, (2, 3, 30, 30), dict(kernel_size=(3, 3), stride=(6, 7), padding=1, output_size=(30, 30))),
    (2, (1, 3, 7, 6), dict(kernel_size=2, output_size=(99, 99, 7, 6))),
    (1, (2, 3, 11), dict(kernel_size=3, stride=2)),
    (3, (1, 2, 6, 4, 4), dict(kernel_size=2)),
])
def test_max_unpool_against_torch(n, shape, options):
    torch = pytest.importorskip("torch")
    pool_options = {k: v for k, v in options.items() if k != "output_size"}
    pool = f"max_pool{n}d"
    unpool = f"max_unpool{n}d"

    def run(f, x):
        return getattr(f, unpool)(*getattr(f, pool)(x, return_indices=True, **pool_options), **options)

    against_torch(run, [shape])
    data = np.array([[[[np.inf, -np.inf, np.nan], [1.0, 2.0, 3.0]]]], dtype=np.float32)
    got = F.max_unpool2d(*F.max_pool2d(minidl.tensor(data), 2, return_indices=True), 2)
    want = torch.nn.functional.max_unpool2d(*torch.nn.functional.max_pool2d(torch.tensor(data), 2,
                                                                             return_indices=True), 2)
    np.testing.assert_array_equal(got.numpy(), want.numpy())


# ----------------------------------------------------------------------------- interpolate
@pytest.mark.parametrize("mode", ["nearest", "nearest-exact"])
@pytest.mark.parametrize("in_size, out_size", [((13,), (9,)), ((9,), (13,)), ((13, 10), (9, 11)),
                                               ((9, 11), (10, 22)), ((5, 2, 8), (3, 6, 4))])
def test_interpolate_nearest_against_torch(mode, in_size, out_size):
    against_torch(lambda f, x: f.interpolate(x, size=out_size, mode=mode), [(2, 3) + in_size])


@pytest.mark.parametrize("mode, in_size, out_size", [
    ("linear", (52,), (29,)), ("linear", (29,), (52,)), ("linear", (7,), (1,)),
    ("bilinear", (12, 20), (9, 31)), ("bilinear", (9, 31), (20, 12)),
    ("bicubic", (6, 7), (11, 5)),
    ("trilinear", (5, 2, 8), (3, 6, 4)),
])
@pytest.mark.parametrize("align_corners", [False, True])
def test_interpolate_linear_modes_against_torch(mode, in_size, out_size, align_corners):
    against_torch(lambda f, x: f.interpolate(x, size=out_size, mode=mode, align_corners=align_corners),
                  [(2, 3) + in_size], atol=1e-4)


@pytest.mark.parametrize("mode, shape, scale, recompute", [
    ("nearest", (1, 2, 5, 7), 1.7, None), ("bilinear", (1, 2, 5, 7), (2.5, 0.6), None),
    ("bilinear", (1, 2, 5, 7), 1.7, True), ("linear", (2, 2, 9), 0.5, None), ("area", (1, 2, 9, 7), 0.5, None),
    ("nearest-exact", (1, 1, 3, 4, 5), 2, None), ("trilinear", (1, 1, 3, 4, 5), 1.5, None),
])
def test_interpolate_scale_factor_against_torch(mode, shape, scale, recompute):
    against_torch(lambda f, x: f.interpolate(x, scale_factor=scale, mode=mode, recompute_scale_factor=recompute),
                  [shape], atol=1e-4)


@pytest.mark.parametrize("in_size, out_size", [((4, 5), (7, 3)), ((6, 3), (2, 8)), ((3, 3), (1, 1))])
def test_interpolate_matches_float64_reference(in_size, out_size):
    x = RNG.standard_normal((2, 3) + in_size)
    for align in (False, True):
        got = F.interpolate(minidl.tensor(x), size=out_size, mode="bilinear", align_corners=align)
        assert got.dtype == np.float64
        np.testing.assert_allclose(got.numpy(), reference_resample.upsample_bilinear2d(x, *out_size, align), atol=1e-12)
    for mode in ("nearest", "nearest-exact"):
        got = F.interpolate(minidl.tensor(x), size=out_size, mode=mode)
        want = reference_resample.upsample_nearest2d(x, *out_size, exact=mode == "nearest-exact")
        np.testing.assert_array_equal(got.numpy(), want)


@pytest.mark.parametrize("mode", ["bilinear", "bicubic"])
@pytest.mark.parametrize("in_size, out_size", [((17, 12), (5, 7)), ((6, 5), (9, 3))])
@pytest.mark.parametrize("align_corners", [False, True])
def test_interpolate_antialias_against_torch(mode, in_size, out_size, align_corners):
    against_torch(lambda f, x: f.interpolate(x, size=out_size, mode=mode, align_corners=align_corners,
                                             antialias=True), [(2, 3) + in_size], atol=1e-4)


def test_interpolate_area_and_errors():
    against_torch(lambda f, x: f.interpolate(x, size=(4, 3), mode="area"), [(2, 3, 9, 7)])
    x = minidl.randn(1, 2, 4, 4)
    with pytest.raises(ValueError):
        F.interpolate(x, size=3, mode="nearest", align_corners=True)
    with pytest.raises(ValueError):
        F.interpolate(x, size=3, mode="trilinear")
    with pytest.raises(ValueError):
        F.interpolate(x)
    up = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True)(x)
    np.testing.assert_allclose(up.numpy(), F.interpolate(x, size=(8, 8), mode="bilinear", align_corners=True).numpy())
    # exact at the corners, and a constant image stays constant
    np.testing.assert_allclose(up.numpy()[..., 0, 0], x.numpy()[..., 0, 0], rtol=1e-6)
    ones = F.interpolate(minidl.ones(1, 1, 3, 5), size=(7, 4), mode="bicubic")
    np.testing.assert_allclose(ones.numpy(), 1.0, rtol=1e-6)


# ----------------------------------------------------------------------------- pad
@pytest.mark.parametrize("shape, amounts, mode", [
    ((3, 3, 3, 3), (-1, 2, -3, 4), "constant"),
    ((3, 3), (-1, 2, -3, 4), "constant"),
    ((3, 3, 3, 3), (-1, 2, 2, -1), "reflect"),
    ((1, 1, 5, 5), (3, -5, 1, -5), "reflect"),
    ((1, 1, 5, 5), (4, 4, 0, 4), "reflect"),
    ((3, 3, 3, 3), (-1, 2, 2, -1), "replicate"),
    ((1, 1, 5, 5), (3, 11, 0, 30), "replicate"),
    ((1, 1, 5, 5), (0, 2, 3, 2), "circular"),
    ((1, 1, 5, 5, 5), (1, 2, 3, 5, 1, 2), "circular"),
    ((1, 1, 5, 5), (1, -2, 2, -1), "circular"),
])
def test_pad_against_torch(shape, amounts, mode):
    against_torch(lambda f, x: f.pad(x, amounts, mode=mode), [shape])


def test_pad_errors_and_values():
    x = minidl.randn(1, 1, 5, 5)
    with pytest.raises(ValueError):
        F.pad(x, (3, 6, 0, 0), mode="circular")  # wraps around more than once
    with pytest.raises(ValueError):
        F.pad(x, (5, 0), mode="reflect")  # reflection needs pad < size
    with pytest.raises(ValueError):
        F.pad(x, (0, 0, -6, 0))
    with pytest.raises(NotImplementedError):  # PyTorch's error type for an unknown mode (also a ValueError)
        F.pad(x, (1, 0), mode="typo")
    out = F.pad(minidl.tensor(np.arange(4.0).reshape(2, 2)), (-1, 1), value=7.0)
    np.testing.assert_array_equal(out.numpy(), [[1.0, 7.0], [3.0, 7.0]])


# ----------------------------------------------------------------------------- unfold, fold, pixel shuffle
def test_unfold_fold_against_torch():
    against_torch(lambda f, x: f.unfold(x, (2, 3), dilation=(1, 2), padding=1, stride=(2, 1)), [(2, 3, 7, 8)])
    against_torch(lambda f, x: f.fold(x, (6, 5), (2, 3), padding=1, stride=(2, 1)), [(2, 12, 20)])
    against_torch(lambda f, x: f.unfold(x, 2), [(3, 4, 5)])  # unbatched


def test_fold_of_unfold_counts_overlaps():
    x = minidl.ones(1, 1, 4, 4)
    counts = F.fold(F.unfold(x, 2), (4, 4), 2).numpy()[0, 0]
    np.testing.assert_array_equal(counts, [[1, 2, 2, 1], [2, 4, 4, 2], [2, 4, 4, 2], [1, 2, 2, 1]])


def test_pixel_shuffle_against_torch():
    against_torch(lambda f, x: f.pixel_shuffle(x, 3), [(2, 18, 4, 5)])
    against_torch(lambda f, x: f.pixel_unshuffle(x, 2), [(2, 3, 4, 6)])
    x = minidl.randn(2, 8, 3, 3)
    np.testing.assert_array_equal(nn.PixelUnshuffle(2)(nn.PixelShuffle(2)(x)).numpy(), x.numpy())


# ----------------------------------------------------------------------------- attention
@pytest.mark.parametrize("shapes, options", [
    ([(4, 2, 6, 8), (4, 2, 6, 8), (4, 2, 6, 8)], dict()),
    ([(4, 2, 3, 8), (4, 2, 6, 8), (4, 2, 6, 5), (3, 6)], dict()),  # float mask (gets a gradient)
    ([(2, 3, 6, 4), (2, 3, 6, 4), (2, 3, 6, 4)], dict(is_causal=True)),
    ([(2, 3, 4, 6), (2, 3, 5, 6), (2, 3, 5, 6)], dict(is_causal=True, scale=0.2)),  # L < S: top-left causal
    ([(2, 8, 5, 4), (2, 2, 5, 4), (2, 2, 5, 3)], dict(enable_gqa=True)),
    ([(5, 4), (7, 4), (7, 3)], dict()),  # no head dimension
])
def test_scaled_dot_product_attention_against_torch(shapes, options):
    if len(shapes) == 4:
        against_torch(lambda f, q, k, v, m: f.scaled_dot_product_attention(q, k, v, attn_mask=m, **options), shapes)
    else:
        against_torch(lambda f, *t: f.scaled_dot_product_attention(*t, **options), shapes)


def test_scaled_dot_product_attention_bool_mask_and_errors():
    torch = pytest.importorskip("torch")
    mask = RNG.random((6, 7)) > 0.3
    mask[:, 0] = True  # every query sees a key
    against_torch(lambda f, q, k, v: f.scaled_dot_product_attention(
        q, k, v, attn_mask=mask if f is F else torch.tensor(mask)), [(2, 6, 4), (2, 7, 4), (2, 7, 4)])
    mask[2] = False  # a query that sees no key: a zero row, and no gradient through it
    against_torch(lambda f, q, k, v: f.scaled_dot_product_attention(
        q, k, v, attn_mask=mask if f is F else torch.tensor(mask)), [(2, 6, 4), (2, 7, 4), (2, 7, 4)])
    q = minidl.randn(1, 2, 4, 3)
    with pytest.raises(RuntimeError):
        F.scaled_dot_product_attention(q, q, q, attn_mask=minidl.zeros(4, 4), is_causal=True)
    with pytest.raises(ValueError):
        F.scaled_dot_product_attention(minidl.randn(1, 3, 4, 3), q, q, enable_gqa=True)


def test_scaled_dot_product_attention_dropout():
    q, k = minidl.randn(2, 5, 4), minidl.randn(2, 6, 4)
    v = minidl.tensor(np.broadcast_to(np.eye(6, dtype=np.float32), (2, 6, 6)).copy())  # y = the attention weights
    weights = F.scaled_dot_product_attention(q, k, v).numpy()
    minidl.manual_seed(0)
    dropped = F.scaled_dot_product_attention(q, k, v, dropout_p=0.5).numpy()
    ratio = dropped / weights
    assert np.all(np.isclose(ratio, 0) | np.isclose(ratio, 2)) and 0.2 < np.isclose(ratio, 0).mean() < 0.8
    np.testing.assert_array_equal(F.scaled_dot_product_attention(q, k, v, dropout_p=1.0).numpy(), 0)

    def fn(q, k, v):  # the same mask on every call: a differentiable function of q, k, v
        minidl.manual_seed(1)
        return F.scaled_dot_product_attention(q, k, v, dropout_p=0.3)

    gradcheck(fn, [(2, 3, 4), (2, 5, 4), (2, 5, 3)])


# ----------------------------------------------------------------------------- modules
def test_modules_against_torch():
    torch = pytest.importorskip("torch")
    cases = [
        (nn.Conv1d(4, 6, 3, stride=2, padding=1, groups=2), torch.nn.Conv1d(4, 6, 3, stride=2, padding=1, groups=2),
         (2, 4, 9)),
        (nn.Conv1d(3, 5, 3, padding=2, padding_mode="circular"),
         torch.nn.Conv1d(3, 5, 3, padding=2, padding_mode="circular"), (2, 3, 7)),
        (nn.Conv1d(3, 2, 4, padding="same", padding_mode="reflect"),
         torch.nn.Conv1d(3, 2, 4, padding="same", padding_mode="reflect"), (2, 3, 7)),
        (nn.Conv2d(3, 4, 3, padding=(1, 2), padding_mode="reflect"),
         torch.nn.Conv2d(3, 4, 3, padding=(1, 2), padding_mode="reflect"), (2, 3, 5, 6)),
        (nn.Conv2d(3, 4, (2, 3), padding="same", padding_mode="circular"),
         torch.nn.Conv2d(3, 4, (2, 3), padding="same", padding_mode="circular"), (2, 3, 5, 6)),
        (nn.Conv3d(2, 3, 2, padding=1, bias=False), torch.nn.Conv3d(2, 3, 2, padding=1, bias=False), (1, 2, 3, 4, 3)),
        (nn.ConvTranspose2d(4, 6, 3, stride=2, padding=1, output_padding=1, groups=2),
         torch.nn.ConvTranspose2d(4, 6, 3, stride=2, padding=1, output_padding=1, groups=2), (2, 4, 5, 4)),
        (nn.ConvTranspose1d(3, 2, 4, stride=2), torch.nn.ConvTranspose1d(3, 2, 4, stride=2), (2, 3, 6)),
        (nn.ConvTranspose3d(2, 2, 2, stride=2), torch.nn.ConvTranspose3d(2, 2, 2, stride=2), (1, 2, 2, 3, 2)),
    ]
    for mine, theirs, shape in cases:
        assert mine.weight.shape == tuple(theirs.weight.shape)
        assert (mine.bias is None) == (theirs.bias is None)
        fan_in = theirs.weight.shape[1] * int(np.prod(theirs.weight.shape[2:]))
        assert np.abs(mine.weight.numpy()).max() <= 1 / np.sqrt(fan_in) + 1e-6  # kaiming_uniform(a=sqrt(5))
        with torch.no_grad():
            theirs.weight.copy_(torch.tensor(mine.weight.numpy()))
            if theirs.bias is not None:
                theirs.bias.copy_(torch.tensor(mine.bias.numpy()))
        x = _arrays([shape])[0]
        np.testing.assert_allclose(mine(minidl.tensor(x)).numpy(), theirs(torch.tensor(x)).detach().numpy(),
                                   atol=1e-5, rtol=1e-4)
    up = nn.ConvTranspose2d(2, 2, 3, stride=2, padding=1)
    assert up(minidl.randn(1, 2, 4, 4), output_size=(8, 8)).shape == (1, 2, 8, 8)
    assert up(minidl.randn(1, 2, 4, 4)).shape == (1, 2, 7, 7)


def test_pooling_and_shape_modules():
    x = minidl.randn(2, 3, 8)
    np.testing.assert_array_equal(nn.MaxPool1d(2)(x).numpy(), F.max_pool1d(x, 2).numpy())
    np.testing.assert_array_equal(nn.AvgPool1d(3, 2, 1)(x).numpy(), F.avg_pool1d(x, 3, 2, 1).numpy())
    np.testing.assert_array_equal(nn.AdaptiveAvgPool1d(3)(x).numpy(), F.adaptive_avg_pool1d(x, 3).numpy())
    y = minidl.randn(1, 2, 4, 4, 4)
    np.testing.assert_array_equal(nn.AvgPool3d(2)(y).numpy(), F.avg_pool3d(y, 2).numpy())
    np.testing.assert_array_equal(nn.MaxPool3d(2)(y).numpy(), F.max_pool3d(y, 2).numpy())
    z = minidl.randn(1, 2, 6, 6).abs() + 0.1  # positive: unpooling's zeros never beat a maximum
    out, idx = nn.MaxPool2d(2, return_indices=True)(z)
    restored = nn.MaxUnpool2d(2)(out, idx)
    assert restored.shape == z.shape
    np.testing.assert_array_equal(F.max_pool2d(restored, 2).numpy(), out.numpy())  # unpool then pool: the same maxima
    assert nn.Unflatten(1, (2, 3))(minidl.randn(4, 6, 5)).shape == (4, 2, 3, 5)
    assert nn.Unflatten(-1, (2, 2))(minidl.randn(3, 4)).shape == (3, 2, 2)
    u = nn.Unfold(2, stride=2)(z)
    assert u.shape == (1, 8, 9)
    np.testing.assert_array_equal(nn.Fold((6, 6), 2, stride=2)(u).numpy(), z.numpy())  # non-overlapping: exact
    assert nn.UpsamplingNearest2d(scale_factor=2)(z).shape == (1, 2, 12, 12)


@pytest.mark.parametrize("name, args, shape", [
    ("ZeroPad2d", ((1, 2, 0, 3),), (1, 2, 4, 5)), ("ConstantPad1d", (2, 3.5), (2, 3, 4)),
    ("ReflectionPad2d", (2,), (1, 2, 4, 5)), ("ReplicationPad3d", ((1, 0, 2, 1, 0, 2),), (1, 1, 2, 3, 4)),
    ("CircularPad1d", ((2, 1),), (2, 3, 4)), ("ZeroPad1d", ((-1, 2),), (2, 3, 4)),
])
def test_padding_modules_against_torch(name, args, shape):
    torch = pytest.importorskip("torch")
    x = _arrays([shape])[0]
    mine, theirs = getattr(nn, name)(*args), getattr(torch.nn, name)(*args)
    np.testing.assert_array_equal(mine(minidl.tensor(x)).numpy(), theirs(torch.tensor(x)).numpy())


@pytest.mark.filterwarnings("ignore:`nn.functional.upsample")  # torch's deprecation note
def test_more_pooling_and_shuffles_against_torch():
    against_torch(lambda f, x: f.adaptive_avg_pool3d(x, (3, None, 2)), [(2, 3, 7, 4, 5)])
    against_torch(lambda f, x: f.lp_pool2d(x.abs() + 0.1, 2, 3, 2), [(2, 3, 7, 8)])
    against_torch(lambda f, x: f.lp_pool1d(x.abs() + 0.1, 3, 2), [(2, 3, 7)])
    against_torch(lambda f, x: f.lp_pool3d(x.abs() + 0.1, 2, 2, ceil_mode=True), [(1, 2, 5, 4, 5)])
    against_torch(lambda f, x: f.channel_shuffle(x, 3) * x, [(2, 6, 4, 5)])
    against_torch(lambda f, x: f.upsample_bilinear(x, scale_factor=2), [(1, 2, 3, 4)])
    against_torch(lambda f, x: f.max_pool2d_with_indices(x, 2)[0], [(1, 2, 4, 6)])
    torch = pytest.importorskip("torch")
    x = _arrays([(2, 6, 5)])[0]
    np.testing.assert_array_equal(nn.ChannelShuffle(2)(minidl.tensor(x)).numpy(),
                                  torch.nn.ChannelShuffle(2)(torch.tensor(x)).numpy())


@pytest.mark.cudasim
@pytest.mark.parametrize("options", [dict(stride=(2, 1), padding=(1, 0), output_padding=(1, 0), groups=1),
                                     dict(stride=(1, 1), padding=(0, 1), output_padding=(0, 0), groups=2)])
def test_conv_transpose2d_cuda_kernels_match_cpu(options):
    """The transposed convolution through the CUDA conv kernels (simulator) equals the CPU path, both ways."""
    pytest.importorskip("numba.cuda")
    import importlib

    from minidl.functions.conv_transpose import ConvTranspose

    cuda_conv = importlib.import_module("minidl.kernels.cuda.conv")
    rng = np.random.default_rng(3)
    x, w = rng.standard_normal((1, 4, 3, 3)), rng.standard_normal((4, 2, 2, 3))
    b = rng.standard_normal(2 * options["groups"])
    outputs = []
    for kernels in (None, cuda_conv):
        fn = ConvTranspose(kernels)
        y = fn(x, w, b, dilation=(1, 1), **options)
        gy = np.linspace(-1, 1, y.size).reshape(y.shape)
        outputs.append((y,) + fn.backward(gy))
    for cpu, cuda in zip(*outputs):
        np.testing.assert_allclose(cuda, cpu, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("shape, output_size", [((2, 3, 7, 5, 6), (3, 2, 4)), ((2, 5, 4, 9), (2, None, 4))])
def test_adaptive_max_pool3d_against_torch(shape, output_size):
    torch = pytest.importorskip("torch")
    a = np.random.default_rng(2).permutation(int(np.prod(shape))).astype(np.float32).reshape(shape)
    out, idx = F.adaptive_max_pool3d(minidl.tensor(a), output_size, return_indices=True)
    tout, tidx = torch.nn.functional.adaptive_max_pool3d(torch.tensor(a), output_size, return_indices=True)
    np.testing.assert_array_equal(out.numpy(), tout.numpy())
    np.testing.assert_array_equal(idx.numpy(), tidx.numpy())
    against_torch(lambda f, x: f.adaptive_max_pool3d(x, output_size), [shape])
    assert nn.AdaptiveMaxPool3d(2)(minidl.tensor(a)).shape == tuple(tout.shape[:-3]) + (2, 2, 2)
