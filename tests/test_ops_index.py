"""Indexing, linear algebra and shape ops, and the extra activations (issue 15), against PyTorch.

Each case is a function ``fn(lib, *inputs)`` written once for both libraries (minidl keeps
PyTorch's names), run in float32 on minidl and on torch: values and input gradients must
agree. Float64 gradient checks of the same ops live in ``minidl/gradcheck_suite.py``
(``test_gradcheck_suite.py`` runs them); a few extra ones are here.
"""
import math

import numpy as np
import pytest

import minidl
import minidl.nn as mnn
import minidl.nn.functional as MF

RNG = np.random.default_rng(7)
INDEX = np.array([[0, 2, 0, 1], [1, 1, 0, 2]])
UNIQUE = np.array([[2, 0, 3], [1, 2, 0]])


def F(lib):
    return lib.nn.functional


def ix(lib, array):
    return lib.tensor(np.asarray(array, dtype=np.int64))


# name -> (fn(lib, *xs), input shapes)
CASES = {
    # einsum
    "einsum_transpose": (lambda lib, a: lib.einsum("ij->ji", a), [(3, 4)]),
    "einsum_implicit": (lambda lib, a, b: lib.einsum("ij,jk", a, b), [(3, 4), (4, 5)]),
    "einsum_implicit_sorted": (lambda lib, a: lib.einsum("dog", a), [(2, 3, 4)]),
    "einsum_list_bmm_permuted": (lambda lib, a, b: lib.einsum("jik,ikl->jil", [a, b]), [(4, 2, 5), (2, 5, 3)]),
    "einsum_contraction": (lambda lib, a, b: lib.einsum("pqrs,tuqvr->pstuv", a, b), [(2, 3, 4, 2), (2, 3, 3, 2, 4)]),
    "einsum_three": (lambda lib, a, b, c: lib.einsum("ik,jkl,il->ij", a, b, c), [(2, 3), (5, 3, 4), (2, 4)]),
    "einsum_ellipsis": (lambda lib, a, b: lib.einsum("...id, ...jd -> ...ij", a, b), [(3, 4, 5), (3, 2, 5)]),
    "einsum_ellipsis_implicit": (lambda lib, a, b: lib.einsum("...id,...jd", a, b), [(3, 4, 5), (3, 2, 5)]),
    "einsum_ellipsis_broadcast": (lambda lib, a, b: lib.einsum("i...j,ji...->...", a, b), [(2, 3, 4, 5), (5, 2, 4)]),
    "einsum_ellipsis_size1": (lambda lib, a, b: lib.einsum("...ij,...jk->...ik", a, b), [(2, 1, 3, 4), (5, 4, 2)]),
    "einsum_trace": (lambda lib, a: lib.einsum("ii->", a), [(4, 4)]),
    "einsum_diagonal": (lambda lib, a: lib.einsum("ii->i", a), [(4, 4)]),
    "einsum_batch_trace": (lambda lib, a: lib.einsum("...ii->...", a), [(3, 5, 5)]),
    "einsum_repeat_with_other": (lambda lib, a, b: lib.einsum("iij,jk->ik", a, b), [(3, 3, 4), (4, 2)]),
    "einsum_summed_only_here": (lambda lib, a, b: lib.einsum("ij,k->i", a, b), [(3, 4), (5,)]),
    "einsum_scalar": (lambda lib, a: lib.einsum("->", a), [()]),
    # products
    "mm": (lambda lib, a, b: a.mm(b), [(3, 4), (4, 2)]),
    "bmm": (lambda lib, a, b: lib.bmm(a, b), [(2, 3, 4), (2, 4, 2)]),
    "mv": (lambda lib, a, b: lib.mv(a, b), [(3, 4), (4,)]),
    "dot": (lambda lib, a, b: lib.dot(a, b), [(5,), (5,)]),
    "outer": (lambda lib, a, b: lib.outer(a, b), [(3,), (4,)]),
    "inner": (lambda lib, a, b: lib.inner(a, b), [(2, 3, 4), (5, 4)]),
    "addmm": (lambda lib, i, a, b: lib.addmm(i, a, b, beta=0.5, alpha=2.0), [(2,), (3, 4), (4, 2)]),
    "addmm_beta0": (lambda lib, i, a, b: i.addmm(a, b, beta=0), [(3, 2), (3, 4), (4, 2)]),
    "baddbmm": (lambda lib, i, a, b: lib.baddbmm(i, a, b, alpha=0.5), [(1, 3, 2), (2, 3, 4), (2, 4, 2)]),
    "addmv": (lambda lib, i, a, b: lib.addmv(i, a, b, beta=2.0, alpha=-1.0), [(3,), (3, 4), (4,)]),
    "cross_dim": (lambda lib, a, b: lib.cross(a, b, dim=0), [(3, 4), (3, 4)]),
    "cross_last": (lambda lib, a, b: a.cross(b, dim=-1), [(2, 3), (1, 3)]),
    "matmul_zero_inner": (lambda lib, a, b: a @ b, [(8, 0), (0, 8)]),
    "matmul_zero_vector": (lambda lib, a, b: a @ b, [(0,), (0, 8)]),
    # triangles and diagonals
    "tril": (lambda lib, a: a.tril(), [(4, 5)]),
    "tril_neg": (lambda lib, a: lib.tril(a, -2), [(2, 4, 5)]),
    "triu_pos": (lambda lib, a: a.triu(2), [(4, 5)]),
    "triu_batched": (lambda lib, a: lib.triu(a, -1), [(3, 3, 4)]),
    "diag_vector": (lambda lib, a: a.diag(), [(5,)]),
    "diag_vector_offset": (lambda lib, a: lib.diag(a, -2), [(3,)]),
    "diag_matrix_offset": (lambda lib, a: a.diag(1), [(4, 5)]),
    "diagonal": (lambda lib, a: a.diagonal(), [(3, 4)]),
    "diagonal_batched": (lambda lib, a: a.diagonal(dim1=-2, dim2=-1), [(2, 3, 4, 5)]),
    "diagonal_offset_dims": (lambda lib, a: lib.diagonal(a, -1, 2, 0), [(4, 3, 5)]),
    "diagonal_offset_past_end": (lambda lib, a: a.diagonal(offset=7), [(3, 5)]),
    "diag_embed": (lambda lib, a: lib.diag_embed(a, 1, 0, 2), [(2, 3)]),
    "trace": (lambda lib, a: a.trace(), [(3, 5)]),
    # flips and rolls
    "flip": (lambda lib, a: a.flip((0, 1, 3)).flip(0), [(2, 3, 2, 4)]),
    "flip_empty_dims": (lambda lib, a: a.flip(()), [(2, 3)]),
    "flip_fn_negative": (lambda lib, a: lib.flip(a, (-1,)), [(2, 3)]),
    "fliplr_flipud": (lambda lib, a: lib.fliplr(a) * lib.flipud(a), [(3, 4)]),
    "rot90": (lambda lib, a: lib.rot90(a), [(3, 4)]),
    "rot90_k2": (lambda lib, a: a.rot90(2, (1, 2)), [(2, 3, 4)]),
    "rot90_k3": (lambda lib, a: a.rot90(3), [(3, 4)]),
    "rot90_negative": (lambda lib, a: a.rot90(-1, (0, 2)), [(2, 3, 4)]),
    "roll_flat": (lambda lib, a: a.roll(3), [(3, 4)]),
    "roll_dims": (lambda lib, a: lib.roll(a, shifts=(2, -1), dims=(0, 1)), [(3, 4)]),
    "roll_empty": (lambda lib, a: a.roll(1, 1), [(2, 0, 3)]),
    # shapes
    "unflatten": (lambda lib, a: a.unflatten(-1, (3, -1, 1)), [(2, 6)]),
    "unfold": (lambda lib, a: a.unfold(0, 3, 2), [(8,)]),
    "unfold_middle": (lambda lib, a: a.unfold(1, 2, 1), [(2, 4, 3)]),
    "unfold_zero": (lambda lib, a: a.unfold(1, 0, 8), [(3, 3, 3)]),
    "movedim": (lambda lib, a: lib.movedim(a, (0, 2), (2, 0)), [(2, 3, 4)]),
    "moveaxis": (lambda lib, a: a.moveaxis(-1, 0), [(2, 3, 4)]),
    "swapaxes": (lambda lib, a: lib.swapaxes(a, 0, 2), [(2, 3, 4)]),
    "narrow": (lambda lib, a: lib.narrow(a, 1, -3, 2), [(2, 5)]),
    "select": (lambda lib, a: a.select(-1, 2), [(2, 5)]),
    "axis_alias": (lambda lib, a: a.index_select(axis=1, index=ix(lib, [2, 0])).narrow(axis=0, start=1, length=2)
                   .repeat_interleave(2, axis=1), [(3, 4)]),
    "repeat_interleave_int": (lambda lib, a: a.repeat_interleave(2), [(2, 3)]),
    "repeat_interleave_dim": (lambda lib, a: lib.repeat_interleave(a, 3, dim=-2), [(2, 3)]),
    "repeat_interleave_tensor": (lambda lib, a: a.repeat_interleave(ix(lib, [1, 0, 3]), dim=1), [(2, 3)]),
    # gather/scatter family
    "gather": (lambda lib, a: a.gather(1, ix(lib, INDEX)), [(2, 5)]),
    "take": (lambda lib, a: lib.take(a, ix(lib, INDEX)), [(2, 5)]),
    "take_along_dim": (lambda lib, a: lib.take_along_dim(a, ix(lib, INDEX[:1]), dim=1), [(3, 5)]),
    "take_along_dim_flat": (lambda lib, a: a.take_along_dim(ix(lib, [3, 0, 3])), [(2, 3)]),
    "index_select": (lambda lib, a: lib.index_select(a, 1, ix(lib, [3, 0, 3])), [(2, 4)]),
    "index_add": (lambda lib, a, s: a.index_add(0, ix(lib, [2, 0, 2]), s, alpha=0.5), [(3, 2), (3, 2)]),
    "scatter_src": (lambda lib, a, s: a.scatter(1, ix(lib, UNIQUE), s), [(3, 4), (2, 3)]),
    "scatter_value": (lambda lib, a: a.scatter(0, ix(lib, INDEX[:, :3]), 2.5), [(3, 4)]),
    "scatter_add": (lambda lib, a, s: lib.scatter_add(a, 1, ix(lib, INDEX), s), [(2, 3), (2, 4)]),
    "masked_fill": (lambda lib, a: a.masked_fill(a > 0.3, -math.inf).exp(), [(4, 5)]),
    "masked_fill_broadcast": (lambda lib, a: lib.masked_fill(a, ix(lib, [1, 0, 1, 0, 0]) > 0, 1.5), [(4, 5)]),
    "masked_select": (lambda lib, a: a.masked_select(a > 0), [(4, 5)]),
    "masked_select_broadcast": (lambda lib, a: lib.masked_select(a, ix(lib, [[1], [0], [1]]) > 0), [(3, 4)]),
    "where_scalar_other": (lambda lib, a: lib.where(a > 0, a, 0.5), [(3, 4)]),
    "where_scalar_input": (lambda lib, a: lib.where(a > 0, -1.0, a), [(3, 4)]),
    "meshgrid_ij": (lambda lib, a, b, c: lib.stack(lib.meshgrid(a, b, c, indexing="ij")) * 1.5, [(2,), (3,), (4,)]),
    "meshgrid_xy": (lambda lib, a, b, c: lib.stack(lib.meshgrid([a, b, c], indexing="xy")), [(2,), (3,), (4,)]),
    "meshgrid_scalar": (lambda lib, a, b: lib.meshgrid(a, b, indexing="xy")[1], [(2,), ()]),
    # PyTorch's advanced indexing: integers select first
    "fancy_after_int": (lambda lib, a: a[1, :, ix(lib, [[0], [2]]), 0:2], [(2, 3, 4, 5)]),
    "fancy_int_between": (lambda lib, a: a[ix(lib, [0, 1]), 2, ix(lib, [1, 3])], [(2, 3, 4)]),
    "fancy_int_and_mask": (lambda lib, a: a[1, :, ix(lib, [1, 0, 1, 1]) > 0], [(2, 3, 4)]),
    # activations
    "celu": (lambda lib, a: F(lib).celu(a, 2.0), [(4, 5)]),
    "mish": (lambda lib, a: F(lib).mish(a), [(4, 5)]),
    "hardtanh": (lambda lib, a: F(lib).hardtanh(a, -0.5, 0.7), [(4, 5)]),
    "logsigmoid": (lambda lib, a: F(lib).logsigmoid(a * 30), [(4, 5)]),
    "softsign": (lambda lib, a: F(lib).softsign(a), [(4, 5)]),
    "tanhshrink": (lambda lib, a: F(lib).tanhshrink(a), [(4, 5)]),
    "hardshrink": (lambda lib, a: F(lib).hardshrink(a, 0.3), [(4, 5)]),
    "softshrink": (lambda lib, a: F(lib).softshrink(a), [(4, 5)]),
    "glu": (lambda lib, a: F(lib).glu(a, dim=0), [(4, 5)]),
    "softmin": (lambda lib, a: F(lib).softmin(a, dim=1), [(4, 5)]),
    "normalize": (lambda lib, a: F(lib).normalize(a), [(4, 5)]),
    "normalize_p1_dim0": (lambda lib, a: F(lib).normalize(a, p=1, dim=0), [(4, 5)]),
    "normalize_p3": (lambda lib, a: F(lib).normalize(a, p=3, dim=-1), [(2, 3, 4)]),
    "normalize_p0": (lambda lib, a: F(lib).normalize(a, p=0), [(4, 5)]),
    "normalize_inf": (lambda lib, a: F(lib).normalize(a, p=math.inf), [(4, 5)]),
    "modules": (lambda lib, a: lib.nn.Sequential(lib.nn.CELU(0.5), lib.nn.Hardtanh(-0.9, 0.9), lib.nn.Mish(),
                                                 lib.nn.LogSigmoid(), lib.nn.Softsign(), lib.nn.Tanhshrink(),
                                                 lib.nn.GLU(), lib.nn.Softmin(dim=1))(a), [(3, 8)]),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_against_torch(name):
    torch = pytest.importorskip("torch")
    fn, shapes = CASES[name]
    arrays = [RNG.standard_normal(s).astype(np.float32) for s in shapes]
    ms = [minidl.tensor(a, requires_grad=True) for a in arrays]
    ts = [torch.tensor(a, requires_grad=True) for a in arrays]
    out_m, out_t = fn(minidl, *ms), fn(torch, *ts)
    assert out_m.shape == tuple(out_t.shape)
    assert out_m.dtype == np.dtype(str(out_t.dtype).replace("torch.", ""))
    np.testing.assert_allclose(out_m.numpy(), out_t.detach().numpy(), rtol=1e-4, atol=1e-5)
    weights = RNG.standard_normal(out_m.shape).astype(np.float32)  # a random weighting: every output matters
    if not out_t.requires_grad:
        return
    (out_m * minidl.tensor(weights)).sum().backward()
    (out_t * torch.tensor(weights)).sum().backward()
    for m, t in zip(ms, ts):
        if t.grad is None or m.grad is None:  # an input the output does not depend on (addmm with beta=0)
            assert not (t.grad is not None and t.grad.numpy().any()) and not (m.grad is not None and m.grad.numpy().any())
            continue
        np.testing.assert_allclose(m.grad.numpy(), t.grad.numpy(), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("reduce", ["sum", "prod", "mean", "amax", "amin"])
@pytest.mark.parametrize("include_self", [True, False])
def test_scatter_reduce_against_torch(reduce, include_self):
    torch = pytest.importorskip("torch")
    a = RNG.standard_normal((3, 4)).astype(np.float32)
    s = RNG.standard_normal((2, 4)).astype(np.float32)
    s[1, 2] = s[0, 3] = 0.0  # zeros in prod's factors
    if reduce == "prod":
        a[0, 1] = 0.0  # (not for amax/amin: PyTorch then counts an excluded self equal to the result as a tie)
    s[1, 0] = s[1, 1]  # a tie in amax/amin
    index = np.array([[0, 2, 0, 1], [1, 1, 1, 3]])
    mats = [minidl.tensor(a, requires_grad=True), minidl.tensor(s, requires_grad=True)]
    tens = [torch.tensor(a, requires_grad=True), torch.tensor(s, requires_grad=True)]
    out_m = mats[0].scatter_reduce(1, minidl.tensor(index), mats[1], reduce, include_self=include_self)
    out_t = tens[0].scatter_reduce(1, torch.tensor(index), tens[1], reduce, include_self=include_self)
    np.testing.assert_allclose(out_m.numpy(), out_t.detach().numpy(), rtol=1e-5, atol=1e-6)
    w = RNG.standard_normal(out_m.shape).astype(np.float32)
    (out_m * minidl.tensor(w)).sum().backward()
    (out_t * torch.tensor(w)).sum().backward()
    for m, t in zip(mats, tens):
        np.testing.assert_allclose(m.grad.numpy(), t.grad.numpy(), rtol=1e-4, atol=1e-6)


def test_scatter_reduce_modes_and_int_values_against_torch():
    torch = pytest.importorskip("torch")
    x = RNG.standard_normal((4, 5, 6)).astype(np.float32)
    index = RNG.integers(0, 3, (3, 4, 5))
    for kwargs in ({"value": float("inf"), "reduce": "add"}, {"value": 2.0, "reduce": "multiply"}, {"value": 3}):
        out_m = minidl.tensor(x).scatter(1, minidl.tensor(index), **kwargs)
        out_t = torch.tensor(x).scatter(1, torch.tensor(index), **kwargs)
        np.testing.assert_array_equal(out_m.numpy(), out_t.numpy())
    xi = RNG.integers(-5, 5, (3, 4))
    si = RNG.integers(-5, 5, (3, 4))
    idx = RNG.integers(0, 4, (3, 4))
    for reduce in ("sum", "prod", "amax", "amin", "mean"):
        for include_self in (True, False):
            out_m = minidl.tensor(xi).scatter_reduce(1, minidl.tensor(idx), minidl.tensor(si), reduce, include_self=include_self)
            out_t = torch.tensor(xi).scatter_reduce(1, torch.tensor(idx), torch.tensor(si), reduce, include_self=include_self)
            assert out_m.dtype == np.int64
            np.testing.assert_array_equal(out_m.numpy(), out_t.numpy(), err_msg=f"{reduce} {include_self}")


def test_scatter_with_reduce_is_differentiable_as_scatter_reduce():
    """PyTorch has no derivative for scatter(reduce=...); minidl's is scatter_reduce's (include_self=True)."""
    torch = pytest.importorskip("torch")
    a, s = RNG.standard_normal((3, 4)), RNG.standard_normal((2, 4))
    index = np.array([[0, 1, 2, 0], [2, 1, 1, 0]])
    for reduce, torch_reduce in (("add", "sum"), ("multiply", "prod")):
        ms = [minidl.tensor(a, requires_grad=True), minidl.tensor(s, requires_grad=True)]
        ts = [torch.tensor(a, requires_grad=True), torch.tensor(s, requires_grad=True)]
        ms[0].scatter(0, minidl.tensor(index), ms[1], reduce=reduce).sum().backward()
        ts[0].scatter_reduce(0, torch.tensor(index), ts[1], torch_reduce).sum().backward()
        for m, t in zip(ms, ts):
            np.testing.assert_allclose(m.grad.numpy(), t.grad.numpy(), rtol=1e-10)


def test_nonzero_one_hot_and_integer_results_against_torch():
    torch = pytest.importorskip("torch")
    x = (RNG.standard_normal((4, 3, 2)) > 0.3)
    for data in (x, x[0, 0], np.array(2.5), np.array(0.0)):
        m, t = minidl.tensor(data).nonzero(), torch.tensor(data).nonzero()
        assert m.dtype == np.int64 and m.shape == tuple(t.shape)
        np.testing.assert_array_equal(m.numpy(), t.numpy())
    for m, t in zip(minidl.nonzero(minidl.tensor(x), as_tuple=True), torch.nonzero(torch.tensor(x), as_tuple=True)):
        np.testing.assert_array_equal(m.numpy(), t.numpy())
    for m, t in zip(minidl.where(minidl.tensor(x)), torch.where(torch.tensor(x))):
        np.testing.assert_array_equal(m.numpy(), t.numpy())
    labels = np.array([[1, 2, 4], [0, 5, 3]])
    for n in (6, -1):
        m, t = MF.one_hot(minidl.tensor(labels), n), torch.nn.functional.one_hot(torch.tensor(labels), n)
        assert m.dtype == np.int64
        np.testing.assert_array_equal(m.numpy(), t.numpy())
    counts = np.array([2, 0, 3])
    np.testing.assert_array_equal(minidl.repeat_interleave(minidl.tensor(counts)).numpy(),
                                  torch.repeat_interleave(torch.tensor(counts)).numpy())
    ints = np.arange(12).reshape(3, 4)
    for fn in (lambda lib, a: a.tril(1), lambda lib, a: a.flip(1), lambda lib, a: lib.where(a > 4, a, 1.5),
               lambda lib, a: lib.where(a > 4, 2, 1), lambda lib, a: a.masked_fill(a > 4, 2.7),
               lambda lib, a: lib.einsum("ij->j", a), lambda lib, a: a.diagonal(1), lambda lib, a: a.roll(1, 0)):
        m, t = fn(minidl, minidl.tensor(ints)), fn(torch, torch.tensor(ints))
        assert m.dtype == np.dtype(str(t.dtype).replace("torch.", ""))
        np.testing.assert_array_equal(m.numpy(), t.numpy())
    # the advanced-index shape of the peer suite's failing case: integers select before the arrays index
    d = RNG.integers(0, 4, (2, 1, 1, 5, 1, 1))
    xm, xt = minidl.zeros(2, 5, 6, 5, 3, 4), torch.zeros(2, 5, 6, 5, 3, 4)
    assert xm[1, :, 3:11:2, minidl.tensor(d), 0:2].shape == tuple(xt[1, :, 3:11:2, torch.tensor(d), 0:2].shape)


def test_multiply_at_matches_numpy():
    """scatter's 'prod' multiplies repeated targets rank by rank (CuPy has no multiply.at): same as NumPy's."""
    from minidl.functions.index import multiply_at, scatter_positions

    index = RNG.integers(0, 3, (4, 6))
    values = RNG.standard_normal((4, 6))
    for dim in (0, 1):
        target = scatter_positions(index, dim)
        expected = RNG.standard_normal((4, 6))
        out = expected.copy()
        np.multiply.at(expected, target, values)
        multiply_at(np, out, target, values)
        np.testing.assert_allclose(out, expected, rtol=1e-12)


def test_errors_follow_pytorch():
    x = minidl.randn(3, 4)
    with pytest.raises(RuntimeError):
        x.flip((1, -1))
    with pytest.raises(RuntimeError):
        x.diagonal(dim1=0, dim2=0)
    with pytest.raises(RuntimeError):
        x.roll((1, 2))
    with pytest.raises(RuntimeError):
        minidl.einsum("...ik..., ...jk ->", x, x)
    with pytest.raises(RuntimeError):
        minidl.einsum("i...j,ji...->...", minidl.randn(2, 3, 4), minidl.randn(2, 3, 4))
    with pytest.raises(RuntimeError):
        minidl.einsum("ij,jk->ik", x, x)
    with pytest.raises(RuntimeError):
        x.unfold(0, 9, 3)
    with pytest.raises(RuntimeError):
        x.unfold(0, 1, -1)
    with pytest.raises(IndexError):
        minidl.randn(8).unfold(1, 8, 3)
    with pytest.raises(RuntimeError):
        x.scatter_reduce(0, minidl.tensor([[0]]), x, reduce="INVALID")
    with pytest.raises(RuntimeError):
        x.scatter(0, minidl.tensor([[0]]), x.double())
    with pytest.raises(RuntimeError):
        minidl.randn(2, 3, 10).scatter(1, minidl.tensor(np.zeros((3, 4, 5), dtype=np.int64)), minidl.randn(10, 10, 10))
    with pytest.raises(RuntimeError):
        x.scatter(1, minidl.tensor([[-1]]), 1.0)  # negative indices are out of bounds, as in PyTorch
    with pytest.raises(RuntimeError):
        minidl.meshgrid(x[0], indexing="bad")
    with pytest.raises(RuntimeError):
        MF.one_hot(minidl.tensor([1, 7]), 5)
    with pytest.raises(RuntimeError):
        x.masked_fill(x, 0.0)  # a float mask
    with pytest.raises(RuntimeError):
        x.mm(x)
    with pytest.raises(RuntimeError):
        minidl.randn(3).tril()


def test_float64_gradchecks():
    def t64(*shape):
        return minidl.tensor(RNG.standard_normal(shape), dtype="float64", requires_grad=True)

    assert minidl.gradcheck(lambda a, b: minidl.einsum("...ii,i...->...", a, b), [t64(2, 3, 3), t64(3, 2)])
    assert minidl.gradcheck(lambda a: a[1, :, [0, 2, 2]], [t64(2, 3, 4)])
    assert minidl.gradcheck(lambda a, b: minidl.meshgrid(a, b)[0] * minidl.meshgrid(a, b)[1], [t64(3), t64(2)])
    assert minidl.gradcheck(lambda a: a.rot90(1, (0, 2)).unfold(0, 2, 1), [t64(3, 2, 4)])
    assert minidl.gradcheck(lambda a: a.masked_fill(minidl.tensor([True, False, True]), 0.0), [t64(2, 3)])
    assert minidl.gradcheck(lambda a: mnn.GLU(dim=0)(a), [t64(4, 3)])
