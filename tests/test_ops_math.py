"""Elementwise math, rounding, division modes, cumulative ops, sorting, norms, predicates, bitwise and
logical ops, and PyTorch's dtype promotion (issue 15): float64 gradient checks, and float32 values
and gradients against PyTorch."""
import math

import numpy as np
import pytest

import minidl
import minidl.nn as nn
import minidl.nn.functional as F

RNG = np.random.default_rng(15)


def _arrays(specs, dtype):
    """One array per (shape, low, high): uniform values, or the given list."""
    out = []
    for spec in specs:
        if isinstance(spec, list):
            out.append(np.asarray(spec, dtype=dtype))
        else:
            shape, low, high = spec
            out.append(RNG.uniform(low, high, shape).astype(dtype))
    return out


def _first(out):
    return out[0] if isinstance(out, tuple) else out


# (name, fn(lib, *inputs), input specs): lib is minidl or torch, so that one fn serves both
DIFFERENTIABLE = [
    ("sin", lambda L, x: x.sin(), [((3, 4), -3, 3)]),
    ("cos", lambda L, x: L.cos(x), [((3, 4), -3, 3)]),
    ("tan", lambda L, x: x.tan(), [((3, 4), -1.2, 1.2)]),
    ("asin", lambda L, x: x.asin(), [((3, 4), -0.9, 0.9)]),
    ("acos", lambda L, x: L.acos(x), [((3, 4), -0.9, 0.9)]),
    ("atan", lambda L, x: x.atan(), [((3, 4), -3, 3)]),
    ("sinh", lambda L, x: x.sinh(), [((3, 4), -2, 2)]),
    ("cosh", lambda L, x: x.cosh(), [((3, 4), -2, 2)]),
    ("asinh", lambda L, x: x.asinh(), [((3, 4), -3, 3)]),
    ("acosh", lambda L, x: x.acosh(), [((3, 4), 1.2, 3)]),
    ("atanh", lambda L, x: x.atanh(), [((3, 4), -0.9, 0.9)]),
    ("exp2", lambda L, x: L.exp2(x), [((3, 4), -2, 2)]),
    ("log2", lambda L, x: x.log2(), [((3, 4), 0.2, 3)]),
    ("log10", lambda L, x: L.log10(x), [((3, 4), 0.2, 3)]),
    ("log1p", lambda L, x: x.log1p(), [((3, 4), -0.5, 3)]),
    ("expm1", lambda L, x: x.expm1(), [((3, 4), -2, 2)]),
    ("erf", lambda L, x: L.erf(x), [((3, 4), -2, 2)]),
    ("frac", lambda L, x: x.frac(), [((3, 4), -3, 3)]),
    ("ceil+x", lambda L, x: x.ceil() + x, [((3, 4), -3, 3)]),
    ("floor*x", lambda L, x: x.floor() * x, [((3, 4), -3, 3)]),
    ("round+x", lambda L, x: x.round() + x, [((3, 4), -3, 3)]),
    ("round_decimals*x", lambda L, x: x.round(decimals=1) * x, [((3, 4), -3, 3)]),
    ("trunc*x", lambda L, x: L.trunc(x) * x, [((3, 4), -3, 3)]),
    ("sign*x", lambda L, x: x.sign() * x, [((3, 4), -3, 3)]),
    ("atan2", lambda L, a, b: L.atan2(a, b), [((3, 4), -2, 2), ((4,), -2, 2)]),
    ("copysign", lambda L, a, b: L.copysign(a, b), [((3, 4), -2, 2), ((3, 4), -2, 2)]),
    ("logaddexp", lambda L, a, b: L.logaddexp(a, b), [((3, 4), -3, 3), ((3, 1), -3, 3)]),
    ("lerp", lambda L, a, b, w: L.lerp(a, b, w), [((3, 4), -2, 2), ((3, 4), -2, 2), ((4,), 0, 1)]),
    ("lerp_scalar", lambda L, a, b: a.lerp(b, 0.3), [((3, 4), -2, 2), ((1, 4), -2, 2)]),
    ("remainder", lambda L, a, b: a % (b.abs() + 0.5), [((3, 4), -3, 3), ((3, 4), -2, 2)]),
    ("remainder_scalar", lambda L, a: L.remainder(a, 0.7), [((3, 4), -3, 3)]),
    ("fmod", lambda L, a, b: L.fmod(a, b.abs() + 0.5), [((3, 4), -3, 3), ((3, 4), -2, 2)]),
    ("div_floor*a", lambda L, a, b: a.div(b.abs() + 0.5, rounding_mode="floor") * a,
     [((3, 4), -3, 3), ((3, 4), -2, 2)]),
    ("div_trunc+a", lambda L, a, b: a.div(b, rounding_mode="trunc") + a, [((3, 4), -3, 3), ((3, 4), 0.5, 2)]),
    ("div_floor_scalar+a", lambda L, a: L.div(a, 0.7, rounding_mode="floor") + a, [((3, 4), -3, 3)]),
    ("fmax", lambda L, a, b: L.fmax(a, b), [((3, 4), -2, 2), ((4,), -2, 2)]),
    ("fmin", lambda L, a, b: a.fmin(b), [((3, 4), -2, 2), ((3, 4), -2, 2)]),
    ("clamp_tensor", lambda L, x, lo, hi: x.clamp(lo, hi), [((3, 4), -2, 2), ((4,), -1, 0), ((3, 1), 0, 1)]),
    ("clamp_min_tensor", lambda L, x, lo: L.clamp_min(x, lo), [((3, 4), -2, 2), ((3, 4), -1, 1)]),
    ("clamp_max", lambda L, x: x.clamp_max(0.3), [((3, 4), -2, 2)]),
    ("prod", lambda L, x: x.prod(), [((3, 4), 0.5, 1.5)]),
    ("prod_dim", lambda L, x: x.prod(dim=1), [((3, 4, 2), -2, 2)]),
    ("prod_keepdim_axis", lambda L, x: x.prod(axis=0, keepdim=True), [((3, 4), -2, 2)]),
    ("prod_with_zeros", lambda L, x: x.prod(dim=1),
     [[[1.5, 0.0, 2.0, -1.0], [0.0, 0.0, 3.0, 1.0], [2.0, 0.5, -1.0, 1.5]]]),
    ("cumsum", lambda L, x: x.cumsum(dim=1), [((3, 4), -2, 2)]),
    ("cumsum_axis", lambda L, x: L.cumsum(x, axis=0), [((3, 4), -2, 2)]),
    ("cumprod", lambda L, x: L.cumprod(x, dim=1), [((3, 5), -2, 2)]),
    ("cumprod_with_zeros", lambda L, x: x.cumprod(dim=1), [[[1.5, 0.0, 2.0, -1.0], [0.5, 2.0, 0.0, 0.0]]]),
    ("logcumsumexp", lambda L, x: x.logcumsumexp(dim=1), [((3, 5), -3, 3)]),
    ("logcumsumexp_large", lambda L, x: L.logcumsumexp(x, 0), [[100.0, 300.0, -50.0, 250.0]]),
    ("logsumexp", lambda L, x: x.logsumexp(dim=1), [((3, 4), -3, 3)]),
    ("logsumexp_dims_keepdim", lambda L, x: L.logsumexp(x, dim=(0, 2), keepdim=True), [((3, 4, 2), -3, 3)]),
    ("logsumexp_large", lambda L, x: x.logsumexp(0), [[1000.0, 999.0, -50.0]]),
    ("cummax", lambda L, x: L.cummax(x, dim=1)[0], [((3, 5), -2, 2)]),
    ("cummin", lambda L, x: x.cummin(0).values, [((4, 3), -2, 2)]),
    ("sort", lambda L, x: x.sort(dim=1)[0], [((3, 5), -2, 2)]),
    ("sort_descending", lambda L, x: L.sort(x, dim=0, descending=True).values, [((4, 3), -2, 2)]),
    ("msort", lambda L, x: L.msort(x), [((4, 3), -2, 2)]),
    ("median", lambda L, x: x.median(), [((3, 5), -2, 2)]),
    ("median_dim", lambda L, x: x.median(dim=1)[0], [((3, 4), -2, 2)]),
    ("kthvalue", lambda L, x: L.kthvalue(x, 2, dim=0, keepdim=True)[0], [((4, 3), -2, 2)]),
    ("amin", lambda L, x: x.amin(dim=(0, 2)), [((3, 4, 2), -2, 2)]),
    ("amax_axis", lambda L, x: x.amax(axis=1, keepdim=True), [((3, 4), -2, 2)]),
    ("max_axis", lambda L, x: x.max(axis=1)[0], [((3, 4), -2, 2)]),
    ("sum_axis", lambda L, x: x.sum(axis=(0, 2)), [((3, 4, 2), -2, 2)]),
    ("mean_axis", lambda L, x: x.mean(axis=-1, keepdim=True), [((3, 4), -2, 2)]),
    ("std_axis", lambda L, x: x.std(axis=0), [((3, 4), -2, 2)]),
    ("var_mean", lambda L, x: sum(L.var_mean(x, dim=1, correction=0)), [((3, 4), -2, 2)]),
    ("std_mean", lambda L, x: L.std_mean(x, dim=0, keepdim=True)[0] * 2 + L.std_mean(x)[1], [((3, 4), -2, 2)]),
    ("norm", lambda L, x: x.norm(), [((3, 4), -2, 2)]),
    ("norm_p3_dim", lambda L, x: x.norm(p=3, dim=1), [((3, 4), -2, 2)]),
    ("norm_nuc", lambda L, x: L.norm(x, p="nuc"), [((3, 4), -2, 2)]),
    ("vector_norm", lambda L, x: L.linalg.vector_norm(x, dim=(0, 1)), [((3, 4, 2), -2, 2)]),
    ("vector_norm_1", lambda L, x: L.linalg.vector_norm(x, ord=1, dim=1), [((3, 4), -2, 2)]),
    ("vector_norm_inf", lambda L, x: L.linalg.vector_norm(x, ord=math.inf, dim=1), [((3, 4), -2, 2)]),
    ("vector_norm_-inf", lambda L, x: L.linalg.vector_norm(x, ord=-math.inf), [((3, 4), -2, 2)]),
    ("vector_norm_0", lambda L, x: L.linalg.vector_norm(x, ord=0, dim=0) * x.sum(), [((3, 4), -2, 2)]),
    ("vector_norm_0.5_keepdim", lambda L, x: L.linalg.vector_norm(x, ord=0.5, dim=1, keepdim=True),
     [((3, 4), 0.5, 2)]),
    ("matrix_norm_fro", lambda L, x: L.linalg.matrix_norm(x), [((2, 3, 4), -2, 2)]),
    ("matrix_norm_nuc", lambda L, x: L.linalg.matrix_norm(x, ord="nuc"), [((2, 3, 4), -2, 2)]),
    ("matrix_norm_2", lambda L, x: L.linalg.matrix_norm(x, ord=2), [((2, 4, 3), -2, 2)]),
    ("matrix_norm_-2", lambda L, x: L.linalg.matrix_norm(x, ord=-2, keepdim=True), [((3, 4), -2, 2)]),
    ("matrix_norm_1", lambda L, x: L.linalg.matrix_norm(x, ord=1, dim=(0, 2)), [((3, 2, 4), -2, 2)]),
    ("matrix_norm_inf", lambda L, x: L.linalg.matrix_norm(x, ord=math.inf), [((3, 4), -2, 2)]),
    ("matrix_norm_-1", lambda L, x: L.linalg.matrix_norm(x, ord=-1), [((3, 4), -2, 2)]),
    ("pow_tensor_zero_base", lambda L, a, b: a ** b, [[0.0, 0.0, 2.0, 0.0], [0.0, 1.5, 0.5, 2.0]]),
]
NAMES = [case[0] for case in DIFFERENTIABLE]
CASES = {case[0]: case for case in DIFFERENTIABLE}
FIXED = {"prod_with_zeros", "cumprod_with_zeros", "logcumsumexp_large", "logsumexp_large", "pow_tensor_zero_base"}


@pytest.mark.parametrize("name", NAMES)
def test_gradcheck_float64(name):
    _, fn, specs = CASES[name]
    if name in ("logcumsumexp_large", "logsumexp_large"):
        specs = [[v / 100 for v in specs[0]]]  # exp of the differences must be representable for a numeric check
    if name == "pow_tensor_zero_base":
        specs = [[0.5, 0.7, 2.0, 1.0], specs[1]]  # the base 0 has a one-sided derivative only
    inputs = [minidl.tensor(a, requires_grad=True) for a in _arrays(specs, np.float64)]
    assert minidl.gradcheck(lambda *xs: _first(fn(minidl, *xs)), inputs)


@pytest.mark.parametrize("name", NAMES)
def test_float32_against_torch(name):
    torch = pytest.importorskip("torch")
    _, fn, specs = CASES[name]
    arrays = _arrays(specs, np.float32)
    mins = [minidl.tensor(a, requires_grad=True) for a in arrays]
    tins = [torch.tensor(a, requires_grad=True) for a in arrays]
    out, tout = _first(fn(minidl, *mins)), _first(fn(torch, *tins))
    assert out.dtype == np.float32 and out.shape == tuple(tout.shape)
    np.testing.assert_allclose(out.numpy(), tout.detach().numpy(), rtol=2e-5, atol=2e-5)
    weights = RNG.standard_normal(out.shape).astype(np.float32)
    (out * minidl.tensor(weights)).sum().backward()
    (tout * torch.tensor(weights)).sum().backward()
    for m, t in zip(mins, tins):
        expected = np.zeros(m.shape, np.float32) if t.grad is None else t.grad.numpy()
        np.testing.assert_allclose(m.grad.numpy(), expected, rtol=1e-4, atol=1e-4)


# ----------------------------------------------------------------------------- values and indices
def test_sort_and_argsort_stable_with_ties_and_nan():
    torch = pytest.importorskip("torch")
    a = np.array([[3.0, 1.0, 3.0, np.nan, 1.0, 2.0, 3.0], [0.0, -1.0, 0.0, 0.0, 5.0, np.nan, -1.0]], np.float32)
    for descending in (False, True):
        v, i = minidl.tensor(a).sort(dim=1, descending=descending, stable=True)
        tv, ti = torch.tensor(a).sort(dim=1, descending=descending, stable=True)
        np.testing.assert_array_equal(v.numpy(), tv.numpy())
        np.testing.assert_array_equal(i.numpy(), ti.numpy())
        order = minidl.argsort(minidl.tensor(a), dim=1, descending=descending, stable=True)
        t_order = torch.argsort(torch.tensor(a), dim=1, descending=descending, stable=True)
        np.testing.assert_array_equal(order.numpy(), t_order.numpy())
    ints = np.array([5, 2, 5, 1, 2, 5], np.int64)
    v, i = minidl.tensor(ints).sort(descending=True, stable=True)
    tv, ti = torch.tensor(ints).sort(descending=True, stable=True)
    assert v.dtype == np.int64 and i.dtype == np.int64
    np.testing.assert_array_equal(i.numpy(), ti.numpy())


def test_cummax_cummin_indices_on_ties():
    torch = pytest.importorskip("torch")
    a = np.array([[1.0, 3.0, 3.0, 2.0, 3.0, 1.0, 1.0], [2.0, 2.0, 0.0, 0.0, 5.0, 5.0, -1.0],
                  [1.0, np.nan, 3.0, np.nan, 0.0, 5.0, 2.0]], np.float32)  # NaN wins; a later NaN takes the index
    for name in ("cummax", "cummin"):
        v, i = getattr(minidl, name)(minidl.tensor(a), dim=1)
        tv, ti = getattr(torch, name)(torch.tensor(a), dim=1)
        np.testing.assert_array_equal(v.numpy(), tv.numpy())
        np.testing.assert_array_equal(i.numpy(), ti.numpy())


def test_median_mode_kthvalue_indices():
    torch = pytest.importorskip("torch")
    a = RNG.permutation(20).reshape(4, 5).astype(np.float32)
    for dim in (0, 1, -1):
        for keepdim in (False, True):
            for name, args in (("median", ()), ("kthvalue", (2,))):
                v, i = getattr(minidl.tensor(a), name)(*args, dim=dim, keepdim=keepdim)
                tv, ti = getattr(torch.tensor(a), name)(*args, dim=dim, keepdim=keepdim)
                np.testing.assert_array_equal(v.numpy(), tv.numpy())
                np.testing.assert_array_equal(i.numpy(), ti.numpy())
    assert minidl.tensor([4.0, 1.0, 3.0, 2.0]).median().item() == 2.0  # the lower of the two middle values
    nan_row = minidl.tensor([[1.0, float("nan"), 2.0]]).median(dim=1)
    assert math.isnan(nan_row.values.item()) and nan_row.indices.item() == 1
    m = np.array([[1, 2, 2, 1, 3], [4, 4, 0, 0, 4]], np.int64)
    v, i = minidl.mode(minidl.tensor(m), dim=1)
    tv, ti = torch.mode(torch.tensor(m), dim=1)
    np.testing.assert_array_equal(v.numpy(), tv.numpy())
    np.testing.assert_array_equal(i.numpy(), ti.numpy())


@pytest.mark.parametrize("dim", [None, 0, 1])
def test_unique(dim):
    torch = pytest.importorskip("torch")
    a = np.array([[3, 1, 3], [2, 1, 2], [3, 1, 3]], np.int64)
    out = minidl.unique(minidl.tensor(a), return_inverse=True, return_counts=True, dim=dim)
    tout = torch.unique(torch.tensor(a), return_inverse=True, return_counts=True, dim=dim)
    for m, t in zip(out, tout):
        np.testing.assert_array_equal(m.numpy(), t.numpy())
    np.testing.assert_array_equal(minidl.tensor(a).unique().numpy(), [1, 2, 3])


def test_predicates_match_torch():
    torch = pytest.importorskip("torch")
    a = np.array([-np.inf, -1.0, 0.0, 1.0 + 1e-7, np.inf, np.nan], np.float32)
    b = np.array([-np.inf, -1.0, 1e-9, 1.0, -np.inf, np.nan], np.float32)
    for name in ("isnan", "isinf", "isfinite", "isposinf", "isneginf"):
        np.testing.assert_array_equal(getattr(minidl, name)(minidl.tensor(a)).numpy(),
                                      getattr(torch, name)(torch.tensor(a)).numpy(), err_msg=name)
    for equal_nan in (False, True):
        np.testing.assert_array_equal(minidl.isclose(minidl.tensor(a), minidl.tensor(b), equal_nan=equal_nan).numpy(),
                                      torch.isclose(torch.tensor(a), torch.tensor(b), equal_nan=equal_nan).numpy())
    assert minidl.tensor(a).isclose(1.0).numpy().tolist() == torch.tensor(a).isclose(torch.tensor(1.0)).tolist()
    assert minidl.allclose(minidl.tensor([1.0, 2.0]), minidl.tensor([1.0, 2.0 + 1e-6]))
    assert not minidl.allclose(minidl.tensor([1.0, 2.0]), minidl.tensor([1.0, 2.1]))


def test_any_all_with_dim_and_axis():
    torch = pytest.importorskip("torch")
    a = np.array([[[0, 1], [0, 0]], [[1, 1], [2, 0]]], np.int64)
    for dim in (0, 1, 2, -1):
        for keepdim in (False, True):
            for name in ("any", "all"):
                out = getattr(minidl.tensor(a), name)(dim=dim, keepdim=keepdim)
                np.testing.assert_array_equal(out.numpy(), getattr(torch.tensor(a), name)(dim=dim, keepdim=keepdim))
                assert out.dtype == np.bool_
    np.testing.assert_array_equal(minidl.tensor(a).any(axis=1).numpy(), torch.tensor(a).any(axis=1).numpy())
    assert minidl.tensor(a).all().item() is False and minidl.all(minidl.tensor(a) >= 0).item() is True


def test_integer_division_modes_and_remainders():
    torch = pytest.importorskip("torch")
    a = np.array([-7, -4, 5, 4, 7, 8, -9], np.int64)
    b = np.array([2, -3, 8, -2, 3, 5, -4], np.int64)
    ma, mb, ta, tb = minidl.tensor(a), minidl.tensor(b), torch.tensor(a), torch.tensor(b)
    cases = [
        (ma // mb, ta // tb), (ma.div(mb, rounding_mode="trunc"), ta.div(tb, rounding_mode="trunc")),
        (minidl.floor_divide(ma, 3), torch.floor_divide(ta, 3)), (ma % mb, ta % tb), (ma % 3, ta % 3),
        (minidl.fmod(ma, mb), torch.fmod(ta, tb)), (7 // mb, 7 // tb), (ma / mb, ta / tb), (ma / 2, ta / 2),
        (ma.div(2.5, rounding_mode="floor"), ta.div(2.5, rounding_mode="floor")),
    ]
    for m, t in cases:
        assert m.dtype == np.dtype(str(t.dtype).replace("torch.", "")), (m.dtype, t.dtype)
        np.testing.assert_allclose(m.numpy(), t.numpy())
    for divide_by_zero in (lambda: ma // minidl.tensor([0]), lambda: ma % 0, lambda: minidl.fmod(ma, 0),
                           lambda: ma.div(0, rounding_mode="trunc")):
        with pytest.raises(RuntimeError, match="ZeroDivisionError"):
            divide_by_zero()
    with pytest.raises(ValueError, match="rounding_mode"):
        ma.div(mb, rounding_mode="round")


def test_bitwise_and_logical_ops():
    torch = pytest.importorskip("torch")
    a = np.array([0b1100, -3, 7, 0], np.int32)
    b = np.array([0b1010, 1, 2, 5], np.int32)
    ma, mb, ta, tb = minidl.tensor(a), minidl.tensor(b), torch.tensor(a), torch.tensor(b)
    cases = [
        (ma & mb, ta & tb), (ma | mb, ta | tb), (ma ^ mb, ta ^ tb), (~ma, ~ta), (ma << mb, ta << tb),
        (ma >> 1, ta >> 1), (1 << mb, 1 << tb), (5 & ma, 5 & ta),
        (minidl.bitwise_and(ma, mb), torch.bitwise_and(ta, tb)), (minidl.bitwise_or(ma, 3), torch.bitwise_or(ta, 3)),
        (minidl.bitwise_xor(ma, mb), torch.bitwise_xor(ta, tb)), (minidl.bitwise_not(ma), torch.bitwise_not(ta)),
        (minidl.bitwise_left_shift(ma, mb), torch.bitwise_left_shift(ta, tb)),
        (minidl.bitwise_right_shift(ma, mb), torch.bitwise_right_shift(ta, tb)),
        (minidl.logical_and(ma, mb), torch.logical_and(ta, tb)), (minidl.logical_or(ma, mb), torch.logical_or(ta, tb)),
        (minidl.logical_xor(ma, mb), torch.logical_xor(ta, tb)), (minidl.logical_not(ma), torch.logical_not(ta)),
        (minidl.tensor([True, False]) & True, torch.tensor([True, False]) & True),
    ]
    for m, t in cases:
        np.testing.assert_array_equal(m.numpy(), t.numpy())
        assert m.dtype == np.dtype(str(t.dtype).replace("torch.", "")), (m.dtype, t.dtype)
    with pytest.raises(RuntimeError):
        minidl.tensor([1.0]) & minidl.tensor([2.0])


def test_integer_inputs_give_pytorch_dtypes():
    torch = pytest.importorskip("torch")
    ints = np.array([[1, -2, 3], [4, 5, -6]], np.int32)
    m, t = minidl.tensor(ints), torch.tensor(ints)
    for name in ("sin", "exp2", "log1p", "erf", "sign", "ceil", "round", "abs"):
        mo, to = getattr(m, name)(), getattr(t, name)()
        assert mo.dtype == np.dtype(str(to.dtype).replace("torch.", "")), name
        np.testing.assert_allclose(mo.numpy(), to.numpy(), rtol=1e-6, err_msg=name)
    u8 = ints.astype(np.uint8)
    pairs = [(m.sum(), t.sum()), (m.sum(dtype=minidl.float32), t.sum(dtype=torch.float32)), (m.prod(), t.prod()),
             (m.cumsum(1), t.cumsum(1)), (m.cumprod(0), t.cumprod(0)),
             (m.sum(1, dtype=minidl.float64), t.sum(1, dtype=torch.float64)),
             (m.float().mean(axis=0, dtype=minidl.float64), t.float().mean(axis=0, dtype=torch.float64)),
             ((m > 0).sum(), (t > 0).sum()), (minidl.tensor(u8).sum(), torch.tensor(u8).sum())]
    for mo, to in pairs:
        assert mo.dtype == np.dtype(str(to.dtype).replace("torch.", ""))
        np.testing.assert_allclose(mo.numpy(), to.numpy())
    with pytest.raises(RuntimeError, match="negative integer powers"):
        m ** -2


DTYPES = ["bool", "uint8", "int8", "int32", "int64", "float16", "float32", "float64"]


@pytest.mark.parametrize("left", DTYPES)
def test_promotion_matches_torch(left):
    torch = pytest.importorskip("torch")
    for right in DTYPES:
        for zero_dim in (False, True):
            a = np.ones(3, left)
            b = np.ones(() if zero_dim else 3, right)
            expected = str(torch.result_type(torch.tensor(a), torch.tensor(b))).replace("torch.", "")
            assert minidl.result_type(minidl.tensor(a), minidl.tensor(b)) == np.dtype(expected), (left, right)
            if "bool" not in (left, right):
                assert (minidl.tensor(a) + minidl.tensor(b)).dtype == np.dtype(expected), (left, right, zero_dim)
        assert minidl.promote_types(left, right) == np.dtype(
            str(torch.promote_types(getattr(torch, left), getattr(torch, right))).replace("torch.", ""))
        for scalar in (True, 2, 2.5):
            expected = str(torch.result_type(torch.ones(3, dtype=getattr(torch, left)), scalar)).replace("torch.", "")
            assert minidl.result_type(minidl.ones(3, dtype=left), scalar) == np.dtype(expected), (left, scalar)


def test_mixed_dtype_arithmetic_keeps_gradients():
    a = minidl.tensor([1.0, 2.0], requires_grad=True)  # float32
    b = minidl.tensor([3.0, 4.0], dtype=minidl.float64, requires_grad=True)
    out = a * b
    assert out.dtype == np.float64
    out.sum().backward()
    assert a.grad.dtype == np.float32 and b.grad.dtype == np.float64
    np.testing.assert_allclose(a.grad.numpy(), [3.0, 4.0])
    assert (minidl.tensor([1, 2]) * 1.5).dtype == np.float32
    assert (minidl.tensor([1, 2]) + a).dtype == np.float32
    assert (a + minidl.tensor(2.0, dtype=minidl.float64)).dtype == np.float32  # a 0-d tensor does not promote
    assert (minidl.tensor([1, 2]) + minidl.tensor(2.0, dtype=minidl.float64)).dtype == np.float64


def test_default_dtype():
    assert minidl.get_default_dtype() == np.float32
    minidl.set_default_dtype(minidl.float64)
    try:
        assert minidl.tensor([1.0]).dtype == np.float64 and minidl.zeros(2).dtype == np.float64
        assert (minidl.tensor([1, 2]) / 2).dtype == np.float64 and minidl.tensor([1]).dtype == np.int64
    finally:
        minidl.set_default_dtype(minidl.float32)
    assert minidl.ones(2).dtype == np.float32
    with pytest.raises(TypeError):
        minidl.set_default_dtype(minidl.int64)


def test_like_functions_with_dtype_and_bitcast():
    x = minidl.tensor([[1.0, -2.0]])
    assert minidl.full_like(x, 4, dtype=minidl.int32).numpy().tolist() == [[4, 4]]
    assert minidl.ones_like(x, dtype=minidl.float64).dtype == np.float64
    assert minidl.zeros_like(minidl.tensor([1, 2]), dtype=minidl.bool).dtype == np.bool_
    torch = pytest.importorskip("torch")
    np.testing.assert_array_equal(x.view(minidl.int32).numpy(), torch.tensor([[1.0, -2.0]]).view(torch.int32).numpy())
    np.testing.assert_array_equal(x.bitcast(minidl.int32).bitcast(minidl.float32).numpy(), x.numpy())
    with pytest.raises(RuntimeError):
        x.bitcast(minidl.int64)


def test_pow_at_zero_as_pytorch():
    torch = pytest.importorskip("torch")
    vals = ([-math.inf, math.inf, 0.0, 0.0, 0.0, -2.0], [0.0, 0.0, 0.0, 0.3, -0.3, 1.5])
    ma, mb = (minidl.tensor(v, requires_grad=True) for v in vals)
    ta, tb = (torch.tensor(v, requires_grad=True) for v in vals)
    out, tout = ma ** mb, ta ** tb
    np.testing.assert_array_equal(out.numpy(), tout.detach().numpy())
    out.sum().backward()
    tout.sum().backward()
    np.testing.assert_array_equal(ma.grad.numpy(), ta.grad.numpy())
    np.testing.assert_array_equal(mb.grad.numpy(), tb.grad.numpy())
    x, tx = minidl.tensor([0.0, 2.0], requires_grad=True), torch.tensor([0.0, 2.0], requires_grad=True)
    (x ** 0).sum().backward()
    (tx ** 0).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), tx.grad.numpy())


def test_float16_elementwise_and_refused_kernels():
    torch = pytest.importorskip("torch")
    a = RNG.uniform(-2, 2, (3, 4)).astype(np.float16)
    m, t = minidl.tensor(a), torch.tensor(a)
    for name in ("sin", "exp", "tanh", "floor", "sigmoid"):
        out = getattr(m, name)()
        assert out.dtype == np.float16, name
        np.testing.assert_allclose(out.numpy().astype(np.float32), getattr(t, name)().float().numpy(), atol=2e-3)
    assert (m + 1.5).dtype == np.float16 and (m * minidl.tensor(2.0)).dtype == np.float16
    assert (m + minidl.ones(4)).dtype == np.float32
    for fn, args in [(F.conv2d, (minidl.ones(1, 1, 4, 4, dtype="float16"), minidl.ones(1, 1, 3, 3, dtype="float16"))),
                     (F.avg_pool2d, (minidl.ones(1, 1, 4, 4, dtype="float16"), 2)),
                     (F.cross_entropy, (minidl.ones(2, 3, dtype="float16"), minidl.tensor([0, 1]))),
                     (F.batch_norm, (minidl.ones(2, 3, dtype="float16"), None, None, None, None, True))]:
        with pytest.raises(TypeError, match=fn.__name__ + ": float16"):
            fn(*args)
    # max-pooling is computed in float16 (a max is exact in any dtype): tests/test_layers_extra.py compares it
    assert F.max_pool2d(minidl.ones(1, 1, 4, 4, dtype="float16"), 2).dtype == np.float16


def test_layers_refuse_mixed_float_dtypes():
    x64 = minidl.randn(2, 3, dtype=minidl.float64)
    with pytest.raises(RuntimeError, match="mat1 and mat2 must have the same dtype"):
        nn.Linear(3, 2)(x64)
    with pytest.raises(RuntimeError, match=r"Input type \(double\) and weight type \(float\) should be the same"):
        nn.Conv2d(2, 3, 3)(minidl.randn(1, 2, 5, 5, dtype=minidl.float64))
    conv = nn.Conv2d(2, 3, 3)
    conv.bias.data = conv.bias.data.astype(np.float64)
    with pytest.raises(RuntimeError, match="bias type"):
        conv(minidl.randn(1, 2, 5, 5))
    assert nn.Linear(3, 2)(minidl.randn(2, 3)).dtype == np.float32


def test_empty_and_zero_dim_inputs():
    torch = pytest.importorskip("torch")
    for shape, dim in (((2, 0, 4), 1), ((0, 3), 0), ((), 0)):
        a = RNG.standard_normal(shape).astype(np.float32)
        for name in ("cumsum", "cumprod", "logcumsumexp"):
            np.testing.assert_allclose(getattr(minidl.tensor(a), name)(dim).numpy(),
                                       getattr(torch.tensor(a), name)(dim).numpy(), rtol=1e-6)
        for name in ("cummax", "cummin"):
            v, i = getattr(minidl.tensor(a), name)(dim)
            tv, ti = getattr(torch.tensor(a), name)(dim)
            assert v.shape == tuple(tv.shape) and i.shape == tuple(ti.shape)
        np.testing.assert_allclose(minidl.tensor(a).logsumexp(dim).numpy(), torch.tensor(a).logsumexp(dim).numpy())
        np.testing.assert_allclose(minidl.tensor(a).prod().numpy(), torch.tensor(a).prod().numpy(), rtol=1e-6)


def test_gradient_conventions_at_ties_and_edges():
    """amax/amin share ties evenly; clamp with crossing tensor bounds; copysign at 0 and inf, as PyTorch."""
    torch = pytest.importorskip("torch")
    cases = [
        (lambda L, x: x.amax(dim=(0, 1)), [[[1.0, 3.0, 3.0], [2.0, 3.0, 1.0]]]),
        (lambda L, x: L.amin(x, 1), [[[1.0, 1.0, 3.0], [2.0, 2.0, 2.0]]]),
        (lambda L, x, lo, hi: x.clamp(lo, hi), [[-2.0, 0.5, 2.0, 0.3, 0.7, 0.5], [0.0, 0.0, 0.0, 0.9, 0.5, 0.5],
                                                [1.0, 1.0, 1.0, 0.1, 0.5, 0.5]]),
        (lambda L, a, b: L.copysign(a, b), [[0.0, -0.0, 2.0, math.inf, -1.5], [-1.0, 1.0, -0.0, -2.0, 3.0]]),
        (lambda L, a, b: L.fmax(a, b) + L.fmin(a, b), [[1.0, math.nan, 2.0, math.nan], [1.0, 3.0, math.nan, math.nan]]),
    ]
    for fn, vals in cases:
        mins = [minidl.tensor(v, requires_grad=True) for v in vals]
        tins = [torch.tensor(v, requires_grad=True) for v in vals]
        out, tout = fn(minidl, *mins), fn(torch, *tins)
        np.testing.assert_array_equal(out.numpy(), tout.detach().numpy())
        out.sum().backward()
        tout.sum().backward()
        for m, t in zip(mins, tins):
            np.testing.assert_array_equal(m.grad.numpy(), t.grad.numpy())


def test_errors_as_pytorch():
    x = minidl.tensor([1.0, 2.0])
    with pytest.raises(TypeError, match="dim"):
        x.cumsum()
    with pytest.raises(RuntimeError, match="out of range"):
        x.kthvalue(3)
    with pytest.raises(TypeError, match="axis"):
        x.sum(dim=0, axis=0)


def test_running_logaddexp_matches_accumulate():
    """The loop that logcumsumexp uses where ufunc.accumulate is missing (CuPy) gives NumPy's answer."""
    from minidl.functions.scan import running_logaddexp

    a = RNG.uniform(-300, 300, (3, 5, 4))
    for dim in (0, 1, -1):
        np.testing.assert_allclose(running_logaddexp(np, a, dim), np.logaddexp.accumulate(a, axis=dim), rtol=1e-12)


def test_inplace_ops_keep_the_dtype():
    x = minidl.tensor([1, 2])
    with pytest.raises(RuntimeError, match="can't be cast"):
        x += 1.5
    y = minidl.tensor([1.0, 2.0])
    y += minidl.tensor([0.5, 0.5], dtype=minidl.float64)
    assert y.dtype == np.float32 and y.tolist() == [1.5, 2.5]
    x *= 3
    assert x.dtype == np.int64 and x.tolist() == [3, 6]
    w = minidl.tensor([1.0, 2.0], requires_grad=True)
    h = w * 1
    h += minidl.tensor([1.0, 1.0], dtype=minidl.float64)
    assert h.dtype == np.float32
    h.sum().backward()
    assert w.grad.tolist() == [1.0, 1.0]
