"""In-place ops, the version counter and differentiable ``__setitem__``, against PyTorch.

Each in-place op runs on a non-leaf in the graph with minidl and with torch: the values, the
input gradients and the version counter must agree; the "modified by an inplace operation"
and "leaf Variable" errors must be raised in the same situations.
"""
import numpy as np
import pytest

import minidl
import minidl.nn as nn
import minidl.nn.functional as F

RNG = np.random.default_rng(2)
X = RNG.uniform(0.2, 2.0, (3, 4)).astype(np.float32) * RNG.choice([-1, 1], (3, 4)).astype(np.float32)
W = RNG.standard_normal((3, 4)).astype(np.float32)
V = RNG.standard_normal((4,)).astype(np.float32)
PROJ = RNG.standard_normal((3, 4)).astype(np.float32)
INDEX = np.array([[0, 2, 1, 0], [2, 0, 0, 1]], dtype=np.int64)

# name -> op(lib, y, w, v): modifies y in place (y = 1.5 x, a non-leaf); w (3, 4) and v (4,) require grad
CASES = {
    "add_": lambda lib, y, w, v: y.add_(w),
    "add_ alpha": lambda lib, y, w, v: y.add_(v, alpha=-2.0),
    "sub_": lambda lib, y, w, v: y.sub_(v),
    "mul_": lambda lib, y, w, v: y.mul_(w),
    "mul_ scalar": lambda lib, y, w, v: y.mul_(3.0),
    "div_": lambda lib, y, w, v: y.div_(w * w + 1),
    "pow_": lambda lib, y, w, v: y.pow_(2),
    "exp_": lambda lib, y, w, v: y.exp_(),
    "sqrt_": lambda lib, y, w, v: y.abs_().sqrt_(),
    "neg_": lambda lib, y, w, v: y.neg_(),
    "abs_": lambda lib, y, w, v: y.abs_(),
    "clamp_": lambda lib, y, w, v: y.clamp_(-1.0, 1.0),
    "clamp_min_": lambda lib, y, w, v: y.clamp_min_(0.5),
    "clamp_max_": lambda lib, y, w, v: y.clamp_max_(0.5),
    "relu_": lambda lib, y, w, v: y.relu_(),
    "sigmoid_": lambda lib, y, w, v: y.sigmoid_(),
    "tanh_": lambda lib, y, w, v: y.tanh_(),
    "zero_": lambda lib, y, w, v: y.zero_(),
    "fill_": lambda lib, y, w, v: y.fill_(2.5),
    "copy_": lambda lib, y, w, v: y.copy_(v),
    "masked_fill_": lambda lib, y, w, v: y.masked_fill_(lib.tensor(X > 0), -1.0),
    "index_add_": lambda lib, y, w, v: y.index_add_(0, lib.tensor([2, 0, 2]), w, alpha=0.5),
    "scatter_ src": lambda lib, y, w, v: y.scatter_(0, lib.tensor(INDEX), w[1:]),  # torch: src shaped as index
    "scatter_ value": lambda lib, y, w, v: y.scatter_(1, lib.tensor(INDEX), value=7.0),
    "setitem slice": lambda lib, y, w, v: y.__setitem__((slice(0, 2), slice(1, 3)), w[0, :2]),
    "setitem int array": lambda lib, y, w, v: y.__setitem__(lib.tensor([2, 0]), v),
    "setitem mask": lambda lib, y, w, v: y.__setitem__(lib.tensor(X < 0), 0.0),
    "setitem row": lambda lib, y, w, v: y.__setitem__(1, v * 2),
    "iadd": lambda lib, y, w, v: y.__iadd__(w),
    "imul": lambda lib, y, w, v: y.__imul__(v),
}


def _run(lib, op):
    x = lib.tensor(X, requires_grad=True)
    w = lib.tensor(W, requires_grad=True)
    v = lib.tensor(V, requires_grad=True)
    y = x * 1.5
    before = y._version
    out = op(lib, y, w, v)
    if out is not None:
        assert out is y  # in-place ops return the tensor itself
    (y * lib.tensor(PROJ)).sum().backward()
    grads = [t.grad.numpy() if t.grad is not None else np.zeros(t.shape, np.float32) for t in (x, w, v)]
    return y.detach().numpy(), grads, y._version - before, y.grad_fn is not None


@pytest.mark.parametrize("name", sorted(CASES))
def test_inplace_op_matches_torch(name):
    torch = pytest.importorskip("torch")
    ours = _run(minidl, CASES[name])
    theirs = _run(torch, CASES[name])
    np.testing.assert_allclose(ours[0], theirs[0], rtol=1e-5, atol=1e-6)
    for a, b in zip(ours[1], theirs[1]):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
    assert ours[2] == theirs[2]  # the version counter counts the same writes
    assert ours[3] and theirs[3]


def _gradcheck_inplace(op, *extra):
    def f(x, *rest):
        y = x * 1.0
        op(y, *rest)
        return y

    x = minidl.tensor(RNG.uniform(0.5, 2.0, (3, 4)), requires_grad=True)
    return minidl.gradcheck(f, [x, *extra])


def test_inplace_ops_gradcheck_float64():
    w = minidl.tensor(RNG.standard_normal((3, 4)), requires_grad=True)
    v = minidl.tensor(RNG.standard_normal(4), requires_grad=True)
    assert _gradcheck_inplace(lambda y, w: y.mul_(w).add_(w, alpha=2).div_(w * w + 1), w)
    assert _gradcheck_inplace(lambda y: y.pow_(3).mul_(2).sqrt_())
    for name in ("exp_", "tanh_", "sigmoid_", "neg_", "relu_"):
        assert _gradcheck_inplace(lambda y: getattr(y.add_(-1.0), name)())
    assert _gradcheck_inplace(lambda y, v: y.__setitem__((slice(1, 3),), v), v)
    assert _gradcheck_inplace(lambda y, w: y.index_add_(1, minidl.tensor([3, 0, 3]), w[:, :3], alpha=2.0), w)
    assert _gradcheck_inplace(lambda y, w: y.scatter_(0, minidl.tensor(INDEX), w), w)
    assert _gradcheck_inplace(lambda y, v: y.copy_(v), v)


# ------------------------------------------------------------------ the version counter's errors, as torch's
def _exp_then_exp_(lib, x):
    y = x.exp()
    y.exp_()
    return y


def _sigmoid_then_mul_output(lib, x):
    y = (x * 1).sigmoid()
    y.mul_(2)
    return y


def _sigmoid_then_mul_input(lib, x):  # sigmoid keeps its output, not its input: allowed
    h = x * 1
    y = h.sigmoid()
    h.mul_(2)
    return y + h


def _log_then_add_input(lib, x):  # log keeps its input
    h = x * 1
    y = h.log()
    h.add_(1)
    return y


def _mul_by_grad_tensor_then_modify(lib, x):
    h = x * 1
    y = h * x
    h.add_(1)
    return y


def _mul_by_constant_then_modify(lib, x):  # x * 2 keeps only the 2: allowed
    h = x * 1
    y = h * 2
    h.add_(1)
    return y * h


def _add_then_modify(lib, x):  # add keeps nothing: the old value's gradient still flows
    h = x * 1
    y = h + 1
    h.mul_(2)
    return y * h


def _modified_under_no_grad(lib, x):
    y = x.exp()
    with lib.no_grad():
        y.add_(1)
    return y


def _relu_then_relu_(lib, x):
    y = (x * 1).relu()
    y.relu_()
    return y


def _setitem_after_use(lib, x):
    h = x * 1
    y = h.sqrt()
    h[0] = 1.0
    return y


def _exp_then_write_through_a_view(lib, x):  # exp keeps its output, which the view's write changes
    y = x.exp()
    v = y[0]
    v.mul_(2)
    return y


def _log_then_write_through_a_reshape(lib, x):  # log keeps its input, which the reshape's write changes
    h = x * 1
    y = h.log()
    h.reshape(-1).add_(1)
    return y


def _add_then_write_through_a_view(lib, x):  # add keeps nothing: allowed
    h = x * 1
    y = h + 1
    h[1].mul_(3)
    return y


def _log_of_a_row_then_write_the_tensor(lib, x):  # log keeps the row, a view of h: h's write changes it
    h = x * 1
    y = h[0].log()
    h += 1
    return y


def _log_of_a_slice_then_write_another_row(lib, x):  # one memory, one version counter: PyTorch raises too
    h = x * 1
    y = h[0:1].log()
    h[1] = 2.0
    return y


def _mul_by_a_constant_slice_then_write_it(lib, x):  # the slice of a tensor outside the graph, kept for x's grad
    h = lib.tensor(np.abs(X) + 1.0)
    y = x * h[1]
    h.mul_(2)
    return y


def _mul_by_a_constant_then_write_a_row_of_it(lib, x):  # the write goes through a view made outside the graph
    h = lib.tensor(np.abs(X) + 1.0)
    y = x * h
    h[0].mul_(2)
    return y


ERROR_CASES = [_mul_by_a_constant_then_write_a_row_of_it, _log_of_a_row_then_write_the_tensor, _log_of_a_slice_then_write_another_row,
               _mul_by_a_constant_slice_then_write_it, _exp_then_write_through_a_view, _log_then_write_through_a_reshape, _add_then_write_through_a_view,
               _exp_then_exp_, _sigmoid_then_mul_output, _sigmoid_then_mul_input, _log_then_add_input,
               _mul_by_grad_tensor_then_modify, _mul_by_constant_then_modify, _add_then_modify, _modified_under_no_grad, _relu_then_relu_,
               _setitem_after_use]


def _outcome(lib, case):
    x = lib.tensor(np.abs(X) + 0.5, requires_grad=True)
    try:
        case(lib, x).sum().backward()
    except RuntimeError as e:
        assert "modified by an inplace operation" in str(e)
        return "error"
    return x.grad.numpy().copy()


@pytest.mark.parametrize("case", ERROR_CASES, ids=[c.__name__ for c in ERROR_CASES])
def test_version_errors_where_torch_raises(case):
    torch = pytest.importorskip("torch")
    ours, theirs = _outcome(minidl, case), _outcome(torch, case)
    if isinstance(theirs, str):
        assert ours == theirs
    else:
        assert not isinstance(ours, str), f"minidl raised where torch computed {theirs}"
        np.testing.assert_allclose(ours, theirs, rtol=1e-5)


def test_leaf_errors_and_no_grad_as_torch():
    torch = pytest.importorskip("torch")
    for lib in (minidl, torch):
        x = lib.ones(3, requires_grad=True)
        for op in (lambda: x.add_(1), lambda: x.mul_(2), lambda: x.zero_(), lambda: x.__setitem__(0, 2.0),
                   lambda: x.uniform_(), lambda: x.__iadd__(1)):
            with pytest.raises(RuntimeError, match="a leaf Variable that requires grad is being used in an in-place"):
                op()
        with lib.no_grad():
            x.add_(1)
            x[0] = 5.0
            x.mul_(2)
        assert x.tolist() == [10.0, 4.0, 4.0] and x._version == 3 and x.is_leaf


def test_inplace_dtype_and_shape_errors_as_torch():
    torch = pytest.importorskip("torch")
    for lib in (minidl, torch):
        i = lib.tensor([1, 2, 3])
        with pytest.raises(RuntimeError, match="can't be cast to the desired output type Long"):
            i.add_(1.5)
        i.add_(2)
        assert i.tolist() == [3, 4, 5] and i.dtype == lib.int64
        with pytest.raises(RuntimeError, match="doesn't match the broadcast shape"):
            lib.zeros(3).add_(lib.ones(2, 3))
        with pytest.raises(RuntimeError, match="boolean"):
            lib.zeros(3).masked_fill_(lib.tensor([1, 0, 1]), 1.0)


def test_inplace_keeps_aliases_and_identity():
    x = minidl.zeros(2, 3)
    row = x[0]  # a view of x's array
    row.add_(1)
    x[1] = minidl.tensor([1.0, 2.0, 3.0])
    assert x.tolist() == [[1.0, 1.0, 1.0], [1.0, 2.0, 3.0]]
    torch = pytest.importorskip("torch")
    for lib in (minidl, torch):  # a view in the graph: writing into it writes into the tensor it views
        h = lib.zeros(2, 3, requires_grad=True) * 1
        v = h[0]
        v += 1
        flat = h.reshape(6)
        flat.mul_(3)
        assert h.tolist() == [[3.0, 3.0, 3.0], [0.0, 0.0, 0.0]]
        d = h.detach()  # shares the values, as torch's
        h += 1
        assert d.tolist() == h.tolist()
    h = minidl.ones(3, requires_grad=True) * 2
    same = h
    h += 1
    assert h is same and h.tolist() == [3.0, 3.0, 3.0] and h.grad_fn.name() == "AddBackward0"


def test_hooks_before_an_inplace_op_see_the_old_gradient_as_torch():
    torch = pytest.importorskip("torch")
    seen = {}
    for lib in (minidl, torch):
        x = lib.ones(3, requires_grad=True)
        y = x * 2
        y.retain_grad()
        y.register_hook(lambda g, lib=lib: seen.setdefault(lib.__name__, g.tolist()) and None)
        y.mul_(3)
        y.sum().backward()
        seen[lib.__name__ + " y.grad"] = y.grad.tolist()
        seen[lib.__name__ + " x.grad"] = x.grad.tolist()
    assert seen["minidl"] == seen["torch"] == [3.0, 3.0, 3.0]
    assert seen["minidl y.grad"] == seen["torch y.grad"] and seen["minidl x.grad"] == seen["torch x.grad"]


# ------------------------------------------------------------------ init and optimizers keep working
def test_random_fills_and_init_under_no_grad():
    minidl.manual_seed(0)
    p = nn.Parameter(minidl.zeros(2000)) if hasattr(nn, "Parameter") else minidl.zeros(2000, requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf Variable"):
        p.normal_()
    with minidl.no_grad():
        p.uniform_(-2.0, 2.0)
        assert -2.0 <= p.numpy().min() and p.numpy().max() < 2.0 and abs(float(p.numpy().mean())) < 0.15
        p.normal_(1.0, 0.5)
        assert abs(float(p.numpy().mean()) - 1.0) < 0.05 and abs(float(p.numpy().std()) - 0.5) < 0.05
    layer = nn.Linear(3, 2)
    nn.init.normal_(layer.weight, 0.0, 0.01)
    nn.init.zeros_(layer.bias)
    assert layer.bias.tolist() == [0.0, 0.0] and layer.weight.requires_grad


def test_fused_inplace_relu_counts_a_version_and_still_fuses():
    bn = nn.BatchNorm2d(3)
    conv = nn.Conv2d(3, 3, 3, padding=1)
    x = minidl.randn(2, 3, 5, 5, requires_grad=True)
    out = bn(conv(x))
    out += x  # a residual: in place, and F.relu(inplace=True) can still clamp it
    r = F.relu(out, inplace=True)
    assert r is out and out._version == 2
    r.sum().backward()
    assert x.grad is not None and x.grad.shape == x.shape
    h = minidl.randn(4, requires_grad=True) * 1
    r = F.relu(h, inplace=True)
    r.add_(1)  # relu keeps its output for backward: overwriting it is an error, as in torch
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        r.sum().backward()


# In-place ops on a view change the tensor it views: its gradient must flow through them (PyTorch's CopySlices).
def _row_mul_(lib, x):
    h = x * 1
    h[0].mul_(3)
    return h * h


def _transposed_column_exp_(lib, x):
    h = x * 1
    h.t()[1].exp_()
    return h.sin()


def _reshaped_add_of_a_graph_tensor(lib, x):
    h = x * 1
    w = x.sum(1, keepdim=True)
    h.reshape(2, 6)[1].add_(w.reshape(-1)[:1] * 2)
    return h * x


def _slice_of_a_constant_mul_by_x(lib, x):  # the viewed tensor joins the graph through the view
    h = lib.ones(3, 4)
    h[:, 1:3].mul_(x[:, :2])
    return h * h


def _view_of_a_view(lib, x):
    h = x * 2
    h[1:][0].div_(x[0] + 3)
    return h ** 2


VIEW_WRITE_CASES = [_row_mul_, _transposed_column_exp_, _reshaped_add_of_a_graph_tensor, _slice_of_a_constant_mul_by_x,
                    _view_of_a_view]


@pytest.mark.parametrize("case", VIEW_WRITE_CASES, ids=[c.__name__ for c in VIEW_WRITE_CASES])
def test_write_through_a_view_reaches_the_gradient(case):
    torch = pytest.importorskip("torch")
    results = []
    for lib in (minidl, torch):
        x = lib.tensor(np.abs(X) + 0.5, requires_grad=True)
        y = case(lib, x)
        y.sum().backward()
        results.append((y.detach().numpy().copy(), x.grad.numpy().copy()))
    (y_ours, g_ours), (y_theirs, g_theirs) = results
    np.testing.assert_allclose(y_ours, y_theirs, rtol=1e-5)
    np.testing.assert_allclose(g_ours, g_theirs, rtol=1e-5)
