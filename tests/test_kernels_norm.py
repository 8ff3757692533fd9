"""Batch-norm, LRN and dropout2d kernels vs the float64 reference and vs PyTorch."""

import numpy as np
import pytest

from minidl.kernels.cpu import norm as fast
from minidl.kernels.reference import norm as ref

SHAPES = [(16, 5), (1, 3, 4, 5), (4, 3, 7, 6), (2, 4, 1, 1)]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("affine", [False, True])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_batch_norm_train_matches_reference(shape, affine, dtype):
    rng = np.random.default_rng(0)
    c = shape[1]
    # An offset of 3 against unit spread checks the statistics do not cancel.
    x = (rng.standard_normal(shape) + 3.0).astype(dtype)
    w = rng.standard_normal(c).astype(dtype) if affine else None
    b = rng.standard_normal(c).astype(dtype) if affine else None
    y, mean, invstd, var = fast.batch_norm_train_forward(x, w, b, 1e-5)
    y_r, mean_r, invstd_r, var_r = ref.batch_norm_train_forward(x, w, b, 1e-5)
    tol = 2e-5 if dtype == np.float32 else 1e-10
    assert y.dtype == dtype and mean.dtype == dtype and y.shape == shape
    for got, want in ((y, y_r), (mean, mean_r), (invstd, invstd_r), (var, var_r)):
        np.testing.assert_allclose(got, want, rtol=tol, atol=tol)
    g = rng.standard_normal(shape).astype(dtype)
    gx, gw, gb = fast.batch_norm_backward(g, x, w, mean, invstd, True, True)
    gx_r, gw_r, gb_r = ref.batch_norm_backward(g, x, w, mean_r, invstd_r, True, True)
    np.testing.assert_allclose(gx, gx_r, rtol=tol * 10, atol=tol * 10)
    assert gx.dtype == dtype
    if affine:
        np.testing.assert_allclose(gw, gw_r, rtol=tol * 10, atol=tol * 10)
        np.testing.assert_allclose(gb, gb_r, rtol=tol * 10, atol=tol * 10)
    else:
        assert gw is None and gb is None
    gx2, gw2, gb2 = fast.batch_norm_backward(g, x, w, mean, invstd, False, True)
    assert gx2 is None


def test_batch_norm_eval_matches_reference():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 4, 5, 5)).astype(np.float32)
    rm, rv = rng.standard_normal(4), rng.random(4) + 0.5
    w, b = rng.standard_normal(4), rng.standard_normal(4)
    np.testing.assert_allclose(
        fast.batch_norm_eval_forward(x, rm, rv, w, b, 1e-5), ref.batch_norm_eval_forward(x, rm, rv, w, b, 1e-5), rtol=1e-5, atol=1e-5
    )


def test_batch_norm_reference_gradient_by_finite_differences():
    """The oracle itself: central differences of sum(y * g) in float64."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal((3, 2, 2, 2))
    w = rng.standard_normal(2)
    g = rng.standard_normal(x.shape)
    _, mean, invstd, _ = ref.batch_norm_train_forward(x, w, None, 1e-5)
    gx, gw, _ = ref.batch_norm_backward(g, x, w, mean, invstd)
    eps = 1e-6
    for idx in [(0, 0, 0, 0), (2, 1, 1, 0), (1, 0, 1, 1)]:
        xp, xm = x.copy(), x.copy()
        xp[idx] += eps
        xm[idx] -= eps
        num = ((ref.batch_norm_train_forward(xp, w, None, 1e-5)[0] - ref.batch_norm_train_forward(xm, w, None, 1e-5)[0]) * g).sum() / (2 * eps)
        assert abs(num - gx[idx]) < 1e-6
    wp, wm = w.copy(), w.copy()
    wp[1] += eps
    wm[1] -= eps
    num = ((ref.batch_norm_train_forward(x, wp, None, 1e-5)[0] - ref.batch_norm_train_forward(x, wm, None, 1e-5)[0]) * g).sum() / (2 * eps)
    assert abs(num - gw[1]) < 1e-6


@pytest.mark.parametrize("shape", [(8, 6), (2, 5, 4, 3)])
def test_batch_norm_vs_torch(shape):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    c = shape[1]
    x = rng.standard_normal(shape).astype(np.float32)
    w = rng.standard_normal(c).astype(np.float32)
    b = rng.standard_normal(c).astype(np.float32)
    g = rng.standard_normal(shape).astype(np.float32)
    xt, wt, bt = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    rm, rv = torch.zeros(c), torch.ones(c)
    yt = torch.nn.functional.batch_norm(xt, rm, rv, wt, bt, training=True, momentum=1.0, eps=1e-5)
    gxt, gwt, gbt = torch.autograd.grad(yt, (xt, wt, bt), torch.tensor(g))
    y, mean, invstd, var = fast.batch_norm_train_forward(x, w, b, 1e-5)
    np.testing.assert_allclose(y, yt.detach().numpy(), rtol=1e-4, atol=1e-5)
    m = x.size // c
    # momentum=1 leaves the running buffers at the batch statistics, with the unbiased variance.
    np.testing.assert_allclose(mean, rm.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(var * m / (m - 1), rv.numpy(), rtol=1e-5, atol=1e-6)
    gx, gw, gb = fast.batch_norm_backward(g, x, w, mean, invstd, True, True)
    np.testing.assert_allclose(gx, gxt.numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(gw, gwt.numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(gb, gbt.numpy(), rtol=1e-4, atol=1e-5)


def test_batch_norm_errors():
    with pytest.raises(ValueError, match="2-D"):
        fast.batch_norm_train_forward(np.zeros((2, 3, 4), np.float32), None, None, 1e-5)
    with pytest.raises(ValueError, match="weight"):
        fast.batch_norm_train_forward(np.zeros((2, 3), np.float32), np.ones(4), None, 1e-5)
    with pytest.raises(TypeError, match="float32"):
        fast.batch_norm_train_forward(np.zeros((2, 3), np.int64), None, None, 1e-5)


@pytest.mark.parametrize("size", [1, 2, 3, 5, 8])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_lrn_matches_reference(size, dtype):
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 6, 3, 4)).astype(dtype)
    args = (size, 1e-2, 0.75, 2.0)
    y, scale = fast.local_response_norm_forward(x, *args)
    y_r, scale_r = ref.local_response_norm_forward(x, *args)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    assert y.dtype == dtype
    np.testing.assert_allclose(y, y_r, rtol=tol, atol=tol)
    np.testing.assert_allclose(scale, scale_r, rtol=tol, atol=tol)
    g = rng.standard_normal(x.shape).astype(dtype)
    np.testing.assert_allclose(
        fast.local_response_norm_backward(g, x, y, scale, *args), ref.local_response_norm_backward(g, x, y_r, scale_r, *args), rtol=tol, atol=tol
    )


@pytest.mark.parametrize("size", [2, 5])
@pytest.mark.parametrize("shape", [(2, 7, 3, 3), (3, 6, 5)])
def test_lrn_vs_torch(size, shape):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(5)
    x = rng.standard_normal(shape) * 3
    g = rng.standard_normal(shape)
    xt = torch.tensor(x, requires_grad=True)
    yt = torch.nn.functional.local_response_norm(xt, size, alpha=0.1, beta=0.75, k=1.5)
    (gt,) = torch.autograd.grad(yt, xt, torch.tensor(g))
    y, scale = fast.local_response_norm_forward(x, size, 0.1, 0.75, 1.5)
    np.testing.assert_allclose(y, yt.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(fast.local_response_norm_backward(g, x, y, scale, size, 0.1, 0.75, 1.5), gt.numpy(), rtol=1e-9, atol=1e-12)


def test_dropout2d_mask():
    rng = np.random.default_rng(6)
    mask = fast.dropout2d_mask((200, 50, 4, 4), 0.3, rng)
    assert mask.shape == (200, 50, 1, 1)
    values = np.unique(mask)
    np.testing.assert_allclose(values, [0.0, 1 / 0.7], rtol=1e-6)
    assert abs((mask > 0).mean() - 0.7) < 0.02
    assert not fast.dropout2d_mask((2, 3, 4, 4), 1.0, rng).any()
    with pytest.raises(ValueError, match="p must"):
        fast.dropout2d_mask((2, 3), 1.5, rng)
