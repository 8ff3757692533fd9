"""Convolution kernels: fast CPU paths against the float64 reference and PyTorch."""

import numpy as np
import pytest

from minidl.functions import conv as plan
from minidl.kernels import shapes
from minidl.kernels.cpu import conv
from minidl.kernels.reference import conv as ref

# (N, C, H, W), K, (kh, kw), stride, padding, dilation, groups
CASES = [
    ((2, 3, 7, 6), 4, (3, 2), (1, 1), (1, 0), (1, 1), 1),      # non-square kernel and input
    ((1, 4, 9, 8), 6, (3, 3), (2, 2), (1, 1), (1, 1), 1),      # batch 1, stride 2
    ((2, 4, 11, 10), 4, (3, 3), (3, 2), (2, 1), (2, 1), 1),    # stride 3, padding 2, dilation 2
    ((2, 3, 5, 7), 5, (1, 1), (1, 1), (0, 0), (1, 1), 1),      # 1x1 GEMM path, one product over the batch
    ((2, 3, 12, 11), 5, (1, 1), (1, 1), (0, 0), (1, 1), 1),    # 1x1 GEMM path, per-image products
    ((2, 4, 6, 5), 3, (1, 1), (2, 1), (1, 0), (1, 1), 1),      # 1x1 with stride/padding: im2col path
    ((2, 4, 7, 7), 6, (3, 3), (1, 1), (1, 1), (1, 1), 2),      # grouped, direct path
    ((2, 20, 6, 5), 20, (3, 3), (1, 2), (2, 1), (1, 1), 2),    # grouped, 10 channels/group: GEMM path
    ((2, 4, 9, 8), 4, (3, 3), (1, 1), (1, 1), (1, 1), 4),      # depthwise 3x3/1: the one-pass kernels
    ((2, 5, 7, 9), 5, (3, 3), (1, 1), (0, 2), (1, 1), 5),      # depthwise 3x3/1, padding 0 and 2
    ((2, 3, 8, 7), 6, (3, 3), (2, 1), (1, 2), (2, 1), 3),      # depthwise, multiplier 2, dilation
    ((1, 5, 7, 9), 10, (3, 2), (3, 2), (2, 0), (1, 2), 5),     # depthwise, multiplier 2, odd everything
    ((2, 2, 5, 5), 2, (2, 2), (1, 1), (0, 0), (2, 2), 2),      # depthwise, no padding
    ((2, 16, 9, 10), 16, (3, 3), (1, 1), (1, 1), (1, 1), 1),   # Winograd F(4x4, 3x3), sizes not 4k
    ((3, 1, 12, 11), 6, (5, 5), (1, 1), (0, 0), (1, 1), 1),    # dense, 1 -> 6 channels: direct path
    ((2, 3, 9, 8), 16, (3, 3), (1, 1), (1, 2), (2, 1), 1),     # dense, 3 -> 16, dilated: direct path
    ((1, 17, 10, 10), 18, (3, 3), (1, 1), (0, 0), (1, 1), 1),  # Winograd, no padding
    ((2, 16, 7, 11), 20, (3, 3), (1, 1), (2, 1), (1, 1), 1),   # Winograd, padding 2 and 1
    ((3, 6, 14, 14), 16, (5, 5), (1, 1), (0, 0), (1, 1), 1),   # LeNet-5's conv2: GEMM on the wide grid
    ((2, 3, 12, 12), 20, (3, 3), (1, 1), (2, 1), (2, 1), 1),   # wide grid, padded and dilated
    ((2, 3, 8, 8), 33, (3, 3), (1, 1), (1, 1), (1, 1), 1),     # wide grid, W.T @ gY then col2im (K > 32)
    ((2, 20, 9, 9), 3, (3, 3), (1, 1), (1, 1), (1, 1), 1),     # wide grid, K not a multiple of four
    ((2, 5, 12, 13), 36, (3, 3), (2, 2), (1, 1), (1, 1), 1),   # stride 2 on phase planes, odd width
    ((2, 6, 11, 12), 8, (1, 1), (2, 2), (0, 0), (1, 1), 1),    # 1x1 stride 2: short runs (one phase of four)
    ((2, 6, 11, 12), 8, (3, 3), (2, 2), (1, 1), (1, 1), 1),    # 3x3/2, K <= 32: fused input gradient on phases
    ((1, 3, 17, 18), 40, (7, 7), (2, 2), (3, 3), (1, 1), 1),   # 7x7/2 stem, padding 3
    ((2, 4, 13, 14), 9, (3, 2), (3, 2), (2, 1), (2, 1), 1),    # strides 3 and 2 with dilation
]
WIDE_CASES = [c for c in CASES if c[-1] == 1 and plan.conv_plan(c[0], (c[1], c[0][1]) + c[2], c[3], c[4], 1, c[5])
              == "gemm" and conv.use_wide_grid(c[0], (c[1], c[0][1]) + c[2], c[3], c[4], c[5])]
IDS = [f"x{s}-k{k}-{ks}-s{st}-p{p}-d{d}-g{g}" for s, k, ks, st, p, d, g in CASES]


def _make(case, dtype, seed=0):
    shape, k_out, (kh, kw), stride, padding, dilation, groups = case
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape).astype(dtype)
    w = rng.standard_normal((k_out, shape[1] // groups, kh, kw)).astype(dtype)
    b = rng.standard_normal(k_out).astype(dtype)
    return x, w, b, (stride, padding, dilation, groups)


def _tol(dtype):
    return dict(rtol=1e-4, atol=1e-4) if dtype == np.float32 else dict(rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_forward_backward_match_reference(case, dtype):
    x, w, b, args = _make(case, dtype)
    y = plan.conv2d_forward(x, w, b, *args)
    assert y.dtype == dtype
    np.testing.assert_allclose(y, ref.conv2d_forward(x, w, b, *args), **_tol(dtype))

    gy = np.random.default_rng(1).standard_normal(y.shape).astype(dtype)
    gx, gw, gb = plan.conv2d_backward(gy, x, w, *args)
    rgx, rgw, rgb = ref.conv2d_backward(gy, x, w, *args)
    for got, want in ((gx, rgx), (gw, rgw), (gb, rgb)):
        assert got.dtype == dtype and got.shape == want.shape
        np.testing.assert_allclose(got, want, **_tol(dtype))


def test_wide_grid_cases_take_both_input_gradient_routes():
    """The wide-grid cases above really run there, through the fused input gradient and the col2im one."""
    assert len(WIDE_CASES) >= 8
    assert {c[1] <= conv.WIDE_FUSED_MAX_OUT_CHANNELS for c in WIDE_CASES} == {True, False}
    assert {c[3] != (1, 1) for c in WIDE_CASES} == {True, False}  # stride 1 and phase planes
    assert {c[3] != (1, 1) and c[1] <= conv.WIDE_FUSED_MAX_OUT_CHANNELS for c in WIDE_CASES} == {True, False}
    assert conv.use_wide_grid((2, 3, 14, 14), (16, 3, 3, 3), (2, 2), (1, 1), (1, 1))  # 8 phase columns for 7
    assert not conv.use_wide_grid((2, 3, 6, 6), (16, 3, 5, 5), (1, 1), (0, 0), (1, 1))  # 6 / 2: too much waste
    assert not conv.use_wide_grid((2, 6, 11, 12), (8, 6, 1, 1), (2, 2), (0, 0), (1, 1))  # strided 1x1


@pytest.mark.parametrize("case", [c for c in CASES if c in WIDE_CASES])
def test_wide_grid_equals_short_run_im2col(case, monkeypatch):
    """Forward and both gradients on the wide grid == the same GEMM path with short-run im2col."""
    x, w, b, (stride, padding, dilation, groups) = _make(case, np.float32)
    y = conv.conv2d_forward_gemm(x, w, b, stride, padding, dilation, groups)
    gy = np.random.default_rng(2).standard_normal(y.shape).astype(np.float32)
    gx, gw = conv.conv2d_backward_gemm(gy, x, w, stride, padding, dilation, groups)
    monkeypatch.setattr(conv, "WIDE_MAX_WASTE", 0.0)
    assert not conv.use_wide_grid(x.shape, w.shape, stride, padding, dilation)
    np.testing.assert_allclose(y, conv.conv2d_forward_gemm(x, w, b, stride, padding, dilation, groups),
                               rtol=1e-5, atol=1e-5)
    gx2, gw2 = conv.conv2d_backward_gemm(gy, x, w, stride, padding, dilation, groups)
    np.testing.assert_allclose(gx, gx2, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(gw, gw2, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("case", [c for c in CASES if conv.use_depthwise3x3(c[0], (c[1], 1) + c[2], c[3], c[4], c[5], c[6])])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_depthwise3x3_kernels_equal_the_general_direct_kernels(case, dtype, monkeypatch):
    """The one-pass depthwise 3x3 forward, input gradient (the turned kernel) and weight gradient == the general kernels."""
    x, w, b, (stride, padding, dilation, groups) = _make(case, dtype)
    y = conv.grouped_direct_forward(x, w, b, stride, padding, dilation, groups)
    gy = np.random.default_rng(4).standard_normal(y.shape).astype(dtype)
    gx, gw = conv.grouped_direct_backward(gy, x, w, stride, padding, dilation, groups)
    gx1 = conv.grouped_direct_backward_input(gy, w, x.shape, stride, padding, dilation, groups)
    gw1 = conv.grouped_direct_backward_weight(gy, x, w.shape, stride, padding, dilation, groups)
    monkeypatch.setattr(conv, "use_depthwise3x3", lambda *args: False)
    tol = _tol(dtype)
    np.testing.assert_allclose(y, conv.grouped_direct_forward(x, w, b, stride, padding, dilation, groups), **tol)
    gx2, gw2 = conv.grouped_direct_backward(gy, x, w, stride, padding, dilation, groups)
    for got in (gx, gx1):
        np.testing.assert_allclose(got, gx2, **tol)
    for got in (gw, gw1):
        np.testing.assert_allclose(got, gw2, **tol)


def test_backward_computes_only_what_is_needed():
    x, w, b, args = _make(CASES[0], np.float64)
    gy = np.ones(plan.conv2d_forward(x, w, b, *args).shape)
    rgx, rgw, rgb = ref.conv2d_backward(gy, x, w, *args)
    gx, gw, gb = plan.conv2d_backward(gy, x, w, *args, needs_input_grad=False, needs_bias_grad=False)
    assert gx is None and gb is None
    np.testing.assert_allclose(gw, rgw, rtol=1e-10)
    gx, gw, gb = plan.conv2d_backward(gy, x, w, *args, needs_weight_grad=False)
    assert gw is None
    np.testing.assert_allclose(gx, rgx, rtol=1e-10)
    np.testing.assert_allclose(gb, rgb, rtol=1e-10)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("multiplier", [1, 2])
@pytest.mark.parametrize("stride", [(1, 1), (2, 2)])
def test_depthwise_equals_grouped_gemm_equals_reference(multiplier, stride, dtype):
    """Depthwise kernel == generic grouped im2col+GEMM path == reference loops."""
    case = ((2, 3, 9, 8), 3 * multiplier, (3, 3), stride, (1, 1), (1, 1), 3)
    x, w, b, (stride, padding, dilation, groups) = _make(case, dtype)
    geom = (stride, padding, dilation)
    tol = _tol(dtype)

    y_dw = conv.depthwise_conv2d_forward(x, w, b, *geom)
    y_gemm = conv.conv2d_forward_gemm(x, w, b, *geom, groups)
    np.testing.assert_allclose(y_dw, y_gemm, **tol)
    np.testing.assert_allclose(y_dw, ref.conv2d_forward(x, w, b, *geom, groups), **tol)

    gy = np.random.default_rng(2).standard_normal(y_dw.shape).astype(dtype)
    gx_dw = conv.depthwise_conv2d_backward_input(gy, w, x.shape, *geom)
    gw_dw = conv.depthwise_conv2d_backward_weight(gy, x, w.shape, *geom)
    gx_gemm, gw_gemm = conv.conv2d_backward_gemm(gy, x, w, *geom, groups)
    rgx, rgw, _ = ref.conv2d_backward(gy, x, w, *geom, groups)
    np.testing.assert_allclose(gx_dw, gx_gemm, **tol)
    np.testing.assert_allclose(gw_dw, gw_gemm, **tol)
    np.testing.assert_allclose(gx_dw, rgx, **tol)
    np.testing.assert_allclose(gw_dw, rgw, **tol)
    # The fused backward gives the same as the two separate kernels.
    gx_fused, gw_fused = conv.grouped_direct_backward(gy, x, w, *geom, groups)
    np.testing.assert_allclose(gx_fused, gx_dw, **tol)
    np.testing.assert_allclose(gw_fused, gw_dw, **tol)


def test_im2col_col2im_are_adjoint():
    """<im2col(x), c> == <x, col2im(c)>: col2im is the transpose of im2col."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 3, 7, 6))
    geom = ((2, 1), (1, 2), (1, 2))
    col = conv.im2col(x, 3, 2, *geom)
    oh, ow = shapes.conv_output_size(7, 6, 3, 2, *geom)
    assert col.shape == (3 * 3 * 2, 2 * oh * ow)
    c = rng.standard_normal(col.shape)
    np.testing.assert_allclose(np.sum(col * c), np.sum(x * conv.col2im(c, x.shape, 3, 2, *geom)),
                               rtol=1e-12)


def test_output_size_matches_pytorch_formula():
    assert shapes.conv_output_size(32, 32, 3, 3, (1, 1), (1, 1), (1, 1)) == (32, 32)
    assert shapes.conv_output_size(16, 15, 3, 3, (2, 2), (1, 1), (1, 1)) == (8, 8)
    assert shapes.conv_output_size(10, 9, 3, 2, (3, 2), (2, 0), (2, 3)) == (4, 3)
    assert ref.conv_output_size(10, 9, 3, 2, (3, 2), (2, 0), (2, 3)) == (4, 3)


def test_errors_name_the_numbers():
    x = np.zeros((1, 4, 5, 5), np.float32)
    geom = ((1, 1), (0, 0), (1, 1))
    with pytest.raises(ValueError, match="4 channels.*3 \\* 1 = 3"):
        plan.conv2d_forward(x, np.zeros((2, 3, 3, 3), np.float32), None, *geom, 1)
    with pytest.raises(ValueError, match="groups=3 must divide both in_channels=4"):
        plan.conv2d_forward(x, np.zeros((3, 1, 3, 3), np.float32), None, *geom, 3)
    with pytest.raises(ValueError, match="groups=2 must divide.*out_channels=3"):
        plan.conv2d_forward(x, np.zeros((3, 2, 3, 3), np.float32), None, *geom, 2)
    with pytest.raises(ValueError, match="spans 7 pixels, larger than the padded input height 5"):
        plan.conv2d_forward(x, np.zeros((2, 4, 7, 3), np.float32), None, *geom, 1)
    with pytest.raises(ValueError, match="dilation 3 spans 7 pixels"):
        shapes.conv_output_size(5, 5, 3, 3, (1, 1), (0, 0), (3, 3))
    with pytest.raises(TypeError, match="weight dtype must match x dtype float32, got float64"):
        plan.conv2d_forward(x, np.zeros((2, 4, 3, 3)), None, *geom, 1)
    with pytest.raises(ValueError, match="grad_out must have shape \\(1, 2, 3, 3\\)"):
        plan.conv2d_backward(np.zeros((1, 2, 4, 4), np.float32), x,
                             np.zeros((2, 4, 3, 3), np.float32), *geom, 1)


# ----------------------------------------------------------------------------
# Against PyTorch
# ----------------------------------------------------------------------------

TORCH_CASES = [CASES[i] for i in (0, 2, 3, 5, 6, 8, 9)] + [
    ((2, 16, 8, 8), 16, (3, 3), (1, 1), (1, 1), (1, 1), 4),    # ResNeXt-like: 4 channels/group
]


@pytest.mark.parametrize("case", TORCH_CASES)
def test_matches_torch_forward_and_autograd(case):
    torch = pytest.importorskip("torch")
    x, w, b, (stride, padding, dilation, groups) = _make(case, np.float32)
    y = plan.conv2d_forward(x, w, b, stride, padding, dilation, groups)
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    ty = torch.nn.functional.conv2d(tx, tw, tb, stride, padding, dilation, groups)
    np.testing.assert_allclose(y, ty.detach().numpy(), rtol=1e-4, atol=1e-4)

    gy = np.random.default_rng(4).standard_normal(y.shape).astype(np.float32)
    want = torch.autograd.grad(ty, (tx, tw, tb), torch.from_numpy(gy))
    got = plan.conv2d_backward(gy, x, w, stride, padding, dilation, groups)
    for g, t in zip(got, want):
        np.testing.assert_allclose(g, t.numpy(), rtol=1e-4, atol=1e-4)


def test_reference_matches_torch():
    torch = pytest.importorskip("torch")
    x, w, b, args = _make(CASES[2], np.float64)
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    ty = torch.nn.functional.conv2d(tx, tw, tb, *args)
    np.testing.assert_allclose(ref.conv2d_forward(x, w, b, *args), ty.detach().numpy(), rtol=1e-10)
    gy = np.ones(ty.shape)
    want = torch.autograd.grad(ty, (tx, tw, tb), torch.from_numpy(gy))
    for g, t in zip(ref.conv2d_backward(gy, x, w, *args), want):
        np.testing.assert_allclose(g, t.numpy(), rtol=1e-10, atol=1e-10)
