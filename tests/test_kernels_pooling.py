"""Pooling kernels: fast Numba kernels vs the float64 reference, and vs PyTorch."""

import numpy as np
import pytest

from minidl.kernels.cpu import pooling as fast
from minidl.kernels.reference import pooling as ref


def _distinct(rng, shape, dtype=np.float64):
    """Random values without ties (a permutation), so the arg-max is unique."""
    x = rng.permutation(int(np.prod(shape))).reshape(shape).astype(np.float64)
    return (x / x.size - 0.5).astype(dtype)


MAX_CASES = [
    # (H, W), kernel, stride, padding, dilation
    ((7, 9), (3, 3), (2, 2), (1, 1), (1, 1)),
    ((8, 8), (2, 2), (2, 2), (0, 0), (1, 1)),
    ((9, 7), (3, 2), (2, 3), (1, 1), (1, 1)),
    ((10, 11), (3, 3), (1, 2), (1, 0), (2, 2)),
    ((5, 6), (2, 3), (3, 2), (1, 0), (1, 2)),
    ((6, 6), (1, 1), (2, 2), (0, 0), (1, 1)),
]


@pytest.mark.parametrize("case", MAX_CASES)
@pytest.mark.parametrize("ceil_mode", [False, True])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_max_pool_matches_reference(case, ceil_mode, dtype):
    rng = np.random.default_rng(0)
    (h, w), k, s, p, d = case
    x = _distinct(rng, (2, 3, h, w), dtype)
    y, idx = fast.max_pool2d_forward(x, k, s, p, d, ceil_mode)
    y_ref, idx_ref = ref.max_pool2d_forward(x, k, s, p, d, ceil_mode)
    assert y.dtype == dtype and idx.dtype == np.int64
    np.testing.assert_array_equal(y, y_ref.astype(dtype))
    np.testing.assert_array_equal(idx, idx_ref)
    g = rng.standard_normal(y.shape).astype(dtype)
    gx = fast.max_pool2d_backward(g, idx, x.shape)
    assert gx.dtype == dtype
    np.testing.assert_allclose(gx, ref.max_pool2d_backward(g, idx_ref, x.shape), rtol=1e-5, atol=1e-6)


def test_max_pool_ties_pick_first_and_nan_propagates():
    x = np.zeros((1, 1, 4, 4), np.float32)
    y, idx = fast.max_pool2d_forward(x, (2, 2), (2, 2), (0, 0), (1, 1), False)
    np.testing.assert_array_equal(idx[0, 0], [[0, 2], [8, 10]])
    x[0, 0, 1, 1] = np.nan
    y, idx = fast.max_pool2d_forward(x, (2, 2), (2, 2), (0, 0), (1, 1), False)
    assert np.isnan(y[0, 0, 0, 0]) and idx[0, 0, 0, 0] == 5
    # A window of -inf still reports an in-image index.
    x = np.full((1, 1, 3, 3), -np.inf)
    _, idx = fast.max_pool2d_forward(x, (3, 3), (2, 2), (1, 1), (1, 1), True)
    _, idx_ref = ref.max_pool2d_forward(x, (3, 3), (2, 2), (1, 1), (1, 1), True)
    np.testing.assert_array_equal(idx, idx_ref)


@pytest.mark.parametrize("hw", [(8, 8), (9, 7), (5, 6)])
@pytest.mark.parametrize("fill", ["random", "ties", "nan", "inf", "all_nan"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_max_pool_2x2_fast_path_equals_general_kernel(hw, fill, dtype):
    """The 2x2/2 kernel (max first, index by equality, NaN rows redone) == the general kernel == reference."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 3) + hw).astype(dtype)
    if fill == "ties":
        x = np.round(x)
    elif fill == "nan":
        x[0, 0, 0, 0] = x[1, 2, 3, 2] = x[1, 2, 2, 2] = np.nan  # a NaN first, and two in one window
    elif fill == "inf":
        x[0, 0, :2, :2] = -np.inf
        x[1, 1, 2:4, 2:4] = np.inf
        x[1, 1, 2, 3] = np.nan
    elif fill == "all_nan":
        x[:] = np.nan
    oh, ow = hw[0] // 2, hw[1] // 2
    y, idx = fast.max_pool2d_forward(x, (2, 2), (2, 2), (0, 0), (1, 1), False)
    y_gen, idx_gen = fast._max_pool2d_fwd(x, 2, 2, 2, 2, 0, 0, 1, 1, oh, ow)
    y_ref, idx_ref = ref.max_pool2d_forward(x, (2, 2), (2, 2), (0, 0), (1, 1), False)
    np.testing.assert_array_equal(y, y_gen)
    np.testing.assert_array_equal(idx, idx_gen)
    np.testing.assert_array_equal(y, y_ref.astype(dtype))
    np.testing.assert_array_equal(idx, idx_ref)


@pytest.mark.parametrize("case", MAX_CASES)
@pytest.mark.parametrize("fill", ["ties", "nan", "inf"])
def test_max_pool_two_pass_kernel_keeps_the_exact_rule(case, fill):
    """Max first, then the first position holding it (NaN rows redone exactly) == the reference's running rule."""
    rng = np.random.default_rng(5)
    (h, w), k, s, p, d = case
    x = np.round(rng.standard_normal((2, 3, h, w)) * 2).astype(np.float32)  # many ties
    if fill == "nan":
        x[0, 0, 1, 1] = x[1, 2, 0, 0] = x[1, 2, 0, 1] = np.nan
    elif fill == "inf":
        x[0, 0, :3, :3] = -np.inf
        x[1, 1, 1:3, 1:3] = np.inf
    for ceil_mode in (False, True):
        y, idx = fast.max_pool2d_forward(x, k, s, p, d, ceil_mode)
        y_ref, idx_ref = ref.max_pool2d_forward(x, k, s, p, d, ceil_mode)
        np.testing.assert_array_equal(y, y_ref.astype(np.float32))
        np.testing.assert_array_equal(idx, idx_ref)


AVG_CASES = [
    ((8, 8), (2, 2), (2, 2), (0, 0)),
    ((7, 9), (3, 3), (2, 2), (1, 1)),
    ((9, 7), (3, 2), (2, 3), (1, 1)),
    ((6, 5), (2, 3), (1, 2), (1, 0)),
    ((7, 7), (2, 2), (2, 2), (0, 0)),
]


@pytest.mark.parametrize("case", AVG_CASES)
@pytest.mark.parametrize("ceil_mode", [False, True])
@pytest.mark.parametrize("count_include_pad", [False, True])
@pytest.mark.parametrize("divisor_override", [None, 3])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_avg_pool_matches_reference(case, ceil_mode, count_include_pad, divisor_override, dtype):
    rng = np.random.default_rng(1)
    (h, w), k, s, p = case
    x = rng.standard_normal((2, 3, h, w)).astype(dtype)
    args = (k, s, p, ceil_mode, count_include_pad, divisor_override)
    y = fast.avg_pool2d_forward(x, *args)
    assert y.dtype == dtype
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(y, ref.avg_pool2d_forward(x, *args), rtol=tol, atol=tol)
    g = rng.standard_normal(y.shape).astype(dtype)
    gx = fast.avg_pool2d_backward(g, x.shape, *args)
    assert gx.dtype == dtype
    np.testing.assert_allclose(gx, ref.avg_pool2d_backward(g, x.shape, *args), rtol=tol, atol=tol)


@pytest.mark.parametrize("in_hw,out_hw", [((7, 9), (3, 4)), ((8, 8), (1, 1)), ((5, 3), (7, 6)), ((1, 1), (2, 3)), ((6, 6), (6, 6))])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_adaptive_pools_match_reference(in_hw, out_hw, dtype):
    rng = np.random.default_rng(2)
    x = _distinct(rng, (1, 3) + in_hw, dtype)
    y = fast.adaptive_avg_pool2d_forward(x, out_hw)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(y, ref.adaptive_avg_pool2d_forward(x, out_hw), rtol=tol, atol=tol)
    g = rng.standard_normal(y.shape).astype(dtype)
    np.testing.assert_allclose(
        fast.adaptive_avg_pool2d_backward(g, x.shape), ref.adaptive_avg_pool2d_backward(g, x.shape), rtol=tol, atol=tol
    )
    ym, idx = fast.adaptive_max_pool2d_forward(x, out_hw)
    ym_ref, idx_ref = ref.adaptive_max_pool2d_forward(x, out_hw)
    np.testing.assert_array_equal(ym, ym_ref.astype(dtype))
    np.testing.assert_array_equal(idx, idx_ref)
    np.testing.assert_allclose(
        fast.adaptive_max_pool2d_backward(g, idx, x.shape), ref.adaptive_max_pool2d_backward(g, idx, x.shape), rtol=tol, atol=tol
    )


def test_global_avg_pool():
    x = np.random.default_rng(3).standard_normal((2, 5, 7, 3)).astype(np.float32)
    y = fast.global_avg_pool2d_forward(x)
    assert y.shape == (2, 5, 1, 1) and y.dtype == np.float32
    np.testing.assert_allclose(y, ref.global_avg_pool2d_forward(x), rtol=1e-6)


def test_output_size_rule_and_errors():
    assert fast.pool_output_size(56, 56, (3, 3), (2, 2), (1, 1), (1, 1), False) == (28, 28)
    # ceil_mode: 5 -> ceil((5-2)/2)+1 = 3; the 3rd window starts at 4 < 5: kept.
    assert fast.pool_output_size(5, 5, (2, 2), (2, 2), (0, 0), (1, 1), True) == (3, 3)
    # 5 + 2*1 - 2 = 5 -> ceil(5/2)+1 = 4, but the 4th window would start at 6 >= 5+1 (right padding only): dropped.
    assert fast.pool_output_size(5, 5, (2, 2), (2, 2), (1, 1), (1, 1), True) == (3, 3)
    with pytest.raises(ValueError, match="padding"):
        fast.pool_output_size(8, 8, (2, 2), (1, 1), (2, 2), (1, 1), False)
    with pytest.raises(ValueError, match="too small"):
        fast.pool_output_size(2, 2, (3, 3), (1, 1), (0, 0), (1, 1), False)
    with pytest.raises(ValueError, match="4-D"):
        fast.max_pool2d_forward(np.zeros((3, 4, 4)), (2, 2), (2, 2), (0, 0), (1, 1), False)


# --------------------------------------------------------------------------- vs PyTorch

torch_cases = [
    ((3, 3), (2, 2), (1, 1), (1, 1), False),
    ((3, 3), (2, 2), (1, 1), (1, 1), True),
    ((2, 3), (1, 2), (1, 0), (2, 1), True),
    ((3, 2), (3, 2), (0, 1), (1, 1), True),
]


@pytest.mark.parametrize("k,s,p,d,ceil_mode", torch_cases)
def test_max_pool_vs_torch(k, s, p, d, ceil_mode):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(4)
    x = _distinct(rng, (1, 2, 9, 10), np.float32)
    y, idx = fast.max_pool2d_forward(x, k, s, p, d, ceil_mode)
    xt = torch.tensor(x, requires_grad=True)
    yt, it = torch.nn.functional.max_pool2d(xt, k, s, p, d, ceil_mode=ceil_mode, return_indices=True)
    np.testing.assert_array_equal(y, yt.detach().numpy())
    np.testing.assert_array_equal(idx, it.numpy())
    g = rng.standard_normal(y.shape).astype(np.float32)
    (gt,) = torch.autograd.grad(yt, xt, torch.tensor(g))
    np.testing.assert_allclose(fast.max_pool2d_backward(g, idx, x.shape), gt.numpy(), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("k,s,p,ceil_mode,cip,div", [
    ((3, 3), (2, 2), (1, 1), True, False, None),
    ((3, 3), (2, 2), (1, 1), True, True, None),
    ((2, 3), (2, 1), (1, 1), False, False, 5),
    ((2, 2), (2, 2), (0, 0), False, True, None),
    ((3, 3), (3, 3), (1, 1), True, True, None),
])
def test_avg_pool_vs_torch(k, s, p, ceil_mode, cip, div):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(5)
    x = rng.standard_normal((1, 2, 8, 10)).astype(np.float32)
    args = (k, s, p, ceil_mode, cip, div)
    y = fast.avg_pool2d_forward(x, *args)
    xt = torch.tensor(x, requires_grad=True)
    yt = torch.nn.functional.avg_pool2d(xt, k, s, p, ceil_mode, cip, div)
    np.testing.assert_allclose(y, yt.detach().numpy(), rtol=1e-5, atol=1e-6)
    g = rng.standard_normal(y.shape).astype(np.float32)
    (gt,) = torch.autograd.grad(yt, xt, torch.tensor(g))
    np.testing.assert_allclose(fast.avg_pool2d_backward(g, x.shape, *args), gt.numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("out_hw", [(3, 4), (7, 12), (1, 1)])
def test_adaptive_vs_torch(out_hw):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(6)
    x = _distinct(rng, (2, 2, 5, 7), np.float32)
    xt = torch.tensor(x, requires_grad=True)
    g = rng.standard_normal((2, 2) + out_hw).astype(np.float32)
    yt = torch.nn.functional.adaptive_avg_pool2d(xt, out_hw)
    (gt,) = torch.autograd.grad(yt, xt, torch.tensor(g))
    np.testing.assert_allclose(fast.adaptive_avg_pool2d_forward(x, out_hw), yt.detach().numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(fast.adaptive_avg_pool2d_backward(g, x.shape), gt.numpy(), rtol=1e-5, atol=1e-6)
    yt, it = torch.nn.functional.adaptive_max_pool2d(xt, out_hw, return_indices=True)
    (gt,) = torch.autograd.grad(yt, xt, torch.tensor(g))
    y, idx = fast.adaptive_max_pool2d_forward(x, out_hw)
    np.testing.assert_array_equal(y, yt.detach().numpy())
    np.testing.assert_array_equal(idx, it.numpy())
    np.testing.assert_allclose(fast.adaptive_max_pool2d_backward(g, idx, x.shape), gt.numpy(), rtol=1e-6, atol=1e-6)
