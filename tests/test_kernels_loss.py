"""Fused softmax cross-entropy vs the float64 reference and vs torch.nn.functional.cross_entropy."""

import numpy as np
import pytest

from minidl.kernels.cpu import loss as fast
from minidl.kernels.reference import loss as ref


def _problem(rng, n=12, c=7, dtype=np.float32, ignore=False, scale=3.0):
    z = (rng.standard_normal((n, c)) * scale).astype(dtype)
    t = rng.integers(0, c, n)
    if ignore:
        t[[1, 4]] = -100
    return z, t


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("ls", [0.0, 0.2])
@pytest.mark.parametrize("ignore", [False, True])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_ce_matches_reference(weighted, ls, ignore, dtype):
    rng = np.random.default_rng(0)
    z, t = _problem(rng, dtype=dtype, ignore=ignore)
    w = (rng.random(z.shape[1]) + 0.5).astype(dtype) if weighted else None
    loss, lse, sw = fast.softmax_cross_entropy_forward(z, t, w, -100, ls)
    loss_r, lse_r, sw_r = ref.softmax_cross_entropy_forward(z, t, w, -100, ls)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    assert loss.dtype == dtype
    np.testing.assert_allclose(loss, loss_r, rtol=tol, atol=tol)
    np.testing.assert_allclose(lse, lse_r, rtol=tol, atol=tol)
    np.testing.assert_allclose(sw, sw_r, rtol=tol, atol=tol)
    g = rng.standard_normal(z.shape[0]).astype(dtype)
    grad = fast.softmax_cross_entropy_backward(z, lse, t, w, -100, ls, g)
    assert grad.dtype == dtype
    np.testing.assert_allclose(grad, ref.softmax_cross_entropy_backward(z, lse_r, t, w, -100, ls, g), rtol=tol, atol=tol)
    if ignore:
        assert not grad[[1, 4]].any() and not loss[[1, 4]].any()


def test_reference_gradient_by_finite_differences():
    rng = np.random.default_rng(1)
    z, t = _problem(rng, n=3, c=5, dtype=np.float64)
    w = rng.random(5) + 0.5
    g = rng.standard_normal(3)
    _, lse, _ = ref.softmax_cross_entropy_forward(z, t, w, -100, 0.3)
    grad = ref.softmax_cross_entropy_backward(z, lse, t, w, -100, 0.3, g)
    eps = 1e-6
    for idx in [(0, 0), (1, int(t[1])), (2, 4)]:
        zp, zm = z.copy(), z.copy()
        zp[idx] += eps
        zm[idx] -= eps
        f = lambda a: (ref.softmax_cross_entropy_forward(a, t, w, -100, 0.3)[0] * g).sum()  # noqa: E731
        assert abs((f(zp) - f(zm)) / (2 * eps) - grad[idx]) < 1e-7


def test_large_logits_are_finite():
    rng = np.random.default_rng(2)
    z = (rng.standard_normal((6, 10)) * 1e4).astype(np.float32)
    t = rng.integers(0, 10, 6)
    loss, lse, _ = fast.softmax_cross_entropy_forward(z, t, None, -100, 0.1)
    grad = fast.softmax_cross_entropy_backward(z, lse, t, None, -100, 0.1, np.ones(6, np.float32))
    assert np.isfinite(loss).all() and np.isfinite(grad).all()
    loss_r, _, _ = ref.softmax_cross_entropy_forward(z, t, None, -100, 0.1)
    np.testing.assert_allclose(loss, loss_r, rtol=1e-5)
    # Gradient rows sum to zero without weights (softmax minus a distribution).
    np.testing.assert_allclose(grad.sum(axis=1), 0, atol=1e-4)


def test_nan_logits_propagate():
    z = np.zeros((2, 5), np.float32)
    z[0, 2] = np.nan
    loss, lse, _ = fast.softmax_cross_entropy_forward(z, np.array([0, 1]), None, -100, 0.0)
    grad = fast.softmax_cross_entropy_backward(z, lse, np.array([0, 1]), None, -100, 0.0, np.ones(2, np.float32))
    assert np.isnan(loss[0]) and np.isnan(grad[0]).all()
    np.testing.assert_allclose(loss[1], np.log(5), rtol=1e-6)
    np.testing.assert_allclose(grad[1], [0.2, -0.8, 0.2, 0.2, 0.2], rtol=1e-6)


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("ls", [0.0, 0.15])
@pytest.mark.parametrize("ignore", [False, True])
def test_ce_vs_torch(weighted, ls, ignore):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    rng = np.random.default_rng(3)
    z, t = _problem(rng, n=16, c=9, ignore=ignore)
    w = (rng.random(9) + 0.5).astype(np.float32) if weighted else None
    wt = None if w is None else torch.tensor(w)
    zt = torch.tensor(z, requires_grad=True)
    tt = torch.tensor(t)
    loss, lse, sw = fast.softmax_cross_entropy_forward(z, t, w, -100, ls)
    # reduction="none"
    lt = F.cross_entropy(zt, tt, weight=wt, label_smoothing=ls, reduction="none")
    np.testing.assert_allclose(loss, lt.detach().numpy(), rtol=1e-5, atol=1e-6)
    # reduction="mean" = sum(loss) / sum(sample_weight), except PyTorch's unweighted
    # smoothing term divided by N when samples are ignored (see kernels/cpu/loss.py).
    if weighted or not ignore or ls == 0.0:
        lt = F.cross_entropy(zt, tt, weight=wt, label_smoothing=ls, reduction="mean")
        denom = sw.sum()
        np.testing.assert_allclose(loss.sum() / denom, lt.item(), rtol=1e-5)
        (gt,) = torch.autograd.grad(lt, zt)
        grad = fast.softmax_cross_entropy_backward(z, lse, t, w, -100, ls, np.full(16, 1.0 / denom, np.float32))
        np.testing.assert_allclose(grad, gt.numpy(), rtol=1e-4, atol=1e-6)
    g = rng.standard_normal(16).astype(np.float32)
    lt = F.cross_entropy(zt, tt, weight=wt, label_smoothing=ls, reduction="none")
    (gt,) = torch.autograd.grad(lt, zt, torch.tensor(g))
    grad = fast.softmax_cross_entropy_backward(z, lse, t, w, -100, ls, g)
    np.testing.assert_allclose(grad, gt.numpy(), rtol=1e-4, atol=1e-6)


def test_ce_errors():
    z = np.zeros((3, 4), np.float32)
    with pytest.raises(ValueError, match="target\\[1\\] = 4"):
        fast.softmax_cross_entropy_forward(z, np.array([0, 4, 1]), None, -100, 0.0)
    with pytest.raises(ValueError, match="target must have shape"):
        fast.softmax_cross_entropy_forward(z, np.array([0, 1]), None, -100, 0.0)
    with pytest.raises(ValueError, match="weight must have shape"):
        fast.softmax_cross_entropy_forward(z, np.array([0, 1, 2]), np.ones(3), -100, 0.0)
    with pytest.raises(ValueError, match="logits"):
        fast.softmax_cross_entropy_forward(np.zeros(4), np.array([0]), None, -100, 0.0)
