"""The float32 tanh and sigmoid kernels (kernels/cpu/activation.py) against float64 NumPy, and through autograd."""
from __future__ import annotations

import numpy as np
import pytest

import minidl
from minidl.kernels.cpu import activation as act


def _inputs(n, seed=0):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(n) * 4).astype(np.float32)
    # the edges: around 0 (the polynomial branch and its border), large |x|, infinities, NaN
    x[:12] = [0.0, -0.0, 1e-30, -1e-7, 0.0624, 0.0625, -0.0626, 9.0, -20.0, np.inf, -np.inf, np.nan]
    return x


@pytest.mark.parametrize("n", [1000, 300_000])  # the serial kernel, and the chunked parallel one
def test_tanh_and_sigmoid_match_float64_within_three_ulp(n):
    x = _inputs(n)
    for fast, exact in ((act.tanh, np.tanh(x.astype(np.float64))),
                        (act.sigmoid, 1 / (1 + np.exp(-x.astype(np.float64))))):
        got = fast(x)
        assert got.dtype == np.float32 and got.shape == x.shape
        finite = np.isfinite(exact)
        ulp = np.spacing(np.abs(exact[finite]).astype(np.float32))
        assert np.all(np.abs(got[finite] - exact[finite]) <= 3 * ulp + 1e-30), fast.__name__
        assert np.isnan(got[11]) and got[9] == exact[9]
        assert abs(got[10] - exact[10]) < 1e-38  # sigmoid(-inf): exp is clamped at 88, 1/(1 + e^88) = 6e-39
        assert np.signbit(act.tanh(np.array([-0.0], np.float32)))[0]  # tanh is odd, down to the sign of zero


def test_backward_passes_and_other_dtypes():
    rng = np.random.default_rng(1)
    g = rng.standard_normal((70, 1000)).astype(np.float32)
    y = rng.random((70, 1000)).astype(np.float32)
    np.testing.assert_allclose(act.tanh_backward(g, y), g * (1 - y * y), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(act.sigmoid_backward(g, y), g * y * (1 - y), rtol=1e-6, atol=1e-7)
    x64 = rng.standard_normal((3, 4))
    assert act.tanh(x64).dtype == np.float64 and np.array_equal(act.tanh(x64), np.tanh(x64))  # float64: NumPy
    strided = _inputs(2000).reshape(40, 50)[:, ::2]  # non-contiguous input
    np.testing.assert_allclose(act.tanh(strided), np.tanh(strided), rtol=3e-7, atol=1e-7)
    assert act.tanh(np.zeros((0, 3), np.float32)).shape == (0, 3)


def test_tanh_and_sigmoid_layers_match_torch():
    torch = pytest.importorskip("torch")
    x = _inputs(5000)[12:].reshape(-1, 4)  # finite values
    for name in ("tanh", "sigmoid"):
        xm = minidl.tensor(x, requires_grad=True)
        xt = torch.tensor(x, requires_grad=True)
        ym, yt = getattr(xm, name)(), getattr(xt, name)()
        np.testing.assert_allclose(ym.numpy(), yt.detach().numpy(), rtol=1e-6, atol=1e-7)
        (ym * ym).sum().backward()
        (yt * yt).sum().backward()
        np.testing.assert_allclose(xm.grad.numpy(), xt.grad.numpy(), rtol=1e-5, atol=1e-6)
