"""Every differentiable core op: gradcheck in float64 (with broadcasting and size-1 dims), and
forward/backward against PyTorch where torch is importable."""
import numpy as np
import pytest

import minidl
import minidl.nn.functional as F

RNG = np.random.default_rng(0)


def t64(*shape, positive=False, low=None):
    a = RNG.standard_normal(shape)
    if positive:
        a = np.abs(a) + 0.5
    return minidl.tensor(a, dtype="float64", requires_grad=True)


# (name, fn, input shapes, options) -- fn takes minidl tensors; the same fn runs on torch tensors
# when ``torch_fn`` is None (the API is the same), else torch_fn.
UNARY = {
    "neg": lambda x: -x,
    "exp": lambda x: x.exp(),
    "log": lambda x: (x.abs() + 0.5).log(),
    "sqrt": lambda x: (x.abs() + 0.5).sqrt(),
    "abs": lambda x: (x + 0.05).abs(),
    "pow_scalar": lambda x: x ** 3,
    "pow_fractional": lambda x: (x.abs() + 0.5) ** 1.5,
    "rdiv": lambda x: 2.0 / (x.abs() + 0.5),
    "rsub": lambda x: 1.0 - x,
    "clamp": lambda x: x.clamp(-0.5, 0.7),
    "clamp_min": lambda x: x.clamp(min=0.1),
    "sum": lambda x: x.sum(),
    "sum_dim": lambda x: x.sum(dim=1),
    "sum_keepdim": lambda x: x.sum(dim=(0, 2), keepdim=True),
    "mean": lambda x: x.mean(dim=-1),
    "var": lambda x: x.var(dim=1),
    "var_biased": lambda x: x.var(dim=0, unbiased=False),
    "std": lambda x: x.std(dim=2, keepdim=True),
    "max_all": lambda x: x.max(),
    "max_dim": lambda x: x.max(dim=1)[0],
    "min_dim_keep": lambda x: x.min(dim=2, keepdim=True)[0],
    "reshape": lambda x: x.reshape(4, -1),
    "view": lambda x: x.view(2, 12),
    "transpose": lambda x: x.transpose(0, 2),
    "permute": lambda x: x.permute(2, 0, 1),
    "flatten": lambda x: x.flatten(1),
    "squeeze_unsqueeze": lambda x: x.unsqueeze(1).squeeze(1),
    "expand": lambda x: x[:, :1, :].expand(2, 3, 4),
    "getitem_slice": lambda x: x[1:, ::2, 1],
    "getitem_step": lambda x: x[..., ::-1] if False else x[:, 1::2],
    "getitem_repeat": lambda x: x[[0, 0, 1]],
    "getitem_mask": lambda x: x[x > 0],
    "split": lambda x: x.split(2, dim=2)[1],
    "chunk": lambda x: x.chunk(2, dim=2)[0] * 2,
    "relu": lambda x: F.relu(x) if isinstance(x, minidl.Tensor) else x.relu(),
    "sigmoid": lambda x: x.sigmoid(),
    "tanh": lambda x: x.tanh(),
    "softmax": lambda x: x.softmax(dim=1),
    "log_softmax": lambda x: x.log_softmax(dim=-1),
}

ACTIVATIONS = ["relu", "relu6", "leaky_relu", "elu", "selu", "silu", "gelu", "sigmoid", "tanh",
               "hardswish", "hardsigmoid", "softplus"]


@pytest.mark.parametrize("name", sorted(UNARY))
def test_unary_gradcheck(name):
    x = t64(2, 3, 4)
    assert minidl.gradcheck(UNARY[name], [x])


@pytest.mark.parametrize("name", sorted(UNARY))
def test_unary_against_torch(name):
    torch = pytest.importorskip("torch")
    a = RNG.standard_normal((2, 3, 4))
    x = minidl.tensor(a, dtype="float64", requires_grad=True)
    tx = torch.tensor(a, requires_grad=True)
    out, tout = UNARY[name](x), UNARY[name](tx)
    np.testing.assert_allclose(out.numpy(), tout.detach().numpy(), rtol=1e-6, atol=1e-9)
    g = RNG.standard_normal(out.shape)
    out.backward(minidl.tensor(g, dtype="float64"))
    tout.backward(torch.tensor(g))
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-6, atol=1e-9)


BINARY = {
    "add": lambda a, b: a + b,
    "sub": lambda a, b: a - b,
    "mul": lambda a, b: a * b,
    "div": lambda a, b: a / (b.abs() + 0.5),
    "pow": lambda a, b: (a.abs() + 0.5) ** b,
    "maximum": lambda a, b: a.maximum(b) if hasattr(a, "maximum") else None,
    "minimum": lambda a, b: a.minimum(b),
}
SHAPES = [((3, 4), (3, 4)), ((3, 4), (4,)), ((3, 1), (1, 4)), ((2, 1, 4), (3, 1)), ((1,), (2, 3))]


@pytest.mark.parametrize("shapes", SHAPES, ids=str)
@pytest.mark.parametrize("name", sorted(BINARY))
def test_binary_broadcast(name, shapes):
    a, b = t64(*shapes[0]), t64(*shapes[1])
    assert minidl.gradcheck(BINARY[name], [a, b])
    torch = pytest.importorskip("torch")
    ta = torch.tensor(a.numpy(), requires_grad=True)
    tb = torch.tensor(b.numpy(), requires_grad=True)
    out, tout = BINARY[name](a, b), BINARY[name](ta, tb)
    np.testing.assert_allclose(out.numpy(), tout.detach().numpy(), rtol=1e-6)
    out.sum().backward()
    tout.sum().backward()
    np.testing.assert_allclose(a.grad.numpy(), ta.grad.numpy(), rtol=1e-6, atol=1e-12)
    np.testing.assert_allclose(b.grad.numpy(), tb.grad.numpy(), rtol=1e-6, atol=1e-12)


@pytest.mark.parametrize("shapes", [((3, 4), (4, 5)), ((2, 3, 4), (4, 5)), ((4,), (4, 5)), ((3, 4), (4,)),
                                    ((4,), (4,)), ((2, 1, 3, 4), (5, 4, 2)), ((2, 3, 4), (2, 4, 5))], ids=str)
def test_matmul(shapes):
    a, b = t64(*shapes[0]), t64(*shapes[1])
    assert minidl.gradcheck(lambda x, y: x @ y, [a, b])
    torch = pytest.importorskip("torch")
    ta = torch.tensor(a.numpy())
    tb = torch.tensor(b.numpy())
    np.testing.assert_allclose((a @ b).numpy(), (ta @ tb).numpy(), rtol=1e-10)


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_activation(name):
    x = t64(3, 5)
    fn = getattr(F, name)
    assert minidl.gradcheck(fn, [x])
    torch = pytest.importorskip("torch")
    tx = torch.tensor(x.numpy(), requires_grad=True)
    out, tout = fn(x), getattr(torch.nn.functional, name)(tx)
    np.testing.assert_allclose(out.numpy(), tout.detach().numpy(), rtol=1e-6, atol=1e-9)
    out.sum().backward()
    tout.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-6, atol=1e-9)


def test_activation_options():
    x = t64(4, 6) * 4
    x = x.detach().requires_grad_()
    assert minidl.gradcheck(lambda v: F.leaky_relu(v, 0.2), [x])
    assert minidl.gradcheck(lambda v: F.elu(v, alpha=0.7), [x])
    assert minidl.gradcheck(lambda v: F.gelu(v, approximate="tanh"), [x])
    assert minidl.gradcheck(lambda v: F.softplus(v, beta=2.0, threshold=5.0), [x])


@pytest.mark.parametrize("temperature", [1.0, 0.5, 3.0])
def test_softmax_temperature(temperature):
    x = t64(3, 5)
    assert minidl.gradcheck(lambda v: F.softmax(v, dim=1, temperature=temperature), [x])
    assert minidl.gradcheck(lambda v: F.log_softmax(v, dim=0, temperature=temperature), [x])
    expected = np.exp(x.numpy() / temperature)
    expected /= expected.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(F.softmax(x, dim=1, temperature=temperature).numpy(), expected, rtol=1e-12)


def test_where_cat_stack_pad():
    a, b = t64(3, 4), t64(3, 4)
    cond = a.numpy() > 0
    assert minidl.gradcheck(lambda x, y: minidl.where(cond, x, y), [a, b])
    assert minidl.gradcheck(lambda x, y: minidl.cat([x, y, x], dim=1), [a, b])
    assert minidl.gradcheck(lambda x, y: minidl.stack([x, y], dim=1), [a, b])
    for mode in ("constant", "reflect", "replicate"):
        x = t64(1, 2, 4, 5)
        assert minidl.gradcheck(lambda v: F.pad(v, (1, 2, 2, 1), mode=mode), [x])
    torch = pytest.importorskip("torch")
    x = t64(1, 2, 4, 5)
    for mode in ("constant", "reflect", "replicate"):
        np.testing.assert_allclose(F.pad(x, (1, 2, 2, 1), mode=mode).numpy(),
                                   torch.nn.functional.pad(torch.tensor(x.numpy()), (1, 2, 2, 1), mode=mode).numpy())


def test_gradient_accumulates_over_reuse():
    x = minidl.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = x * x + x * 3  # x used three times
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * x.numpy() + 3)
    z = (x * 2).sum()
    z.backward()  # accumulates into .grad, as PyTorch
    np.testing.assert_allclose(x.grad.numpy(), 2 * x.numpy() + 5)


def test_graph_freed_unless_retained():
    x = minidl.tensor([1.0, 2.0], requires_grad=True)
    y = (x.exp() * x).sum()
    y.backward(retain_graph=True)
    first = x.grad.numpy().copy()
    y.backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * first)
    with pytest.raises(RuntimeError, match="second time"):
        y.backward()


def test_no_grad_and_detach():
    x = minidl.tensor([1.0, 2.0], requires_grad=True)
    with minidl.no_grad():
        y = x * 2
    assert not y.requires_grad and y.grad_fn is None
    d = (x * 2).detach()
    assert not d.requires_grad
    assert x.numpy() is x.data  # numpy() works on tensors that require grad


def test_comparisons_have_no_grad():
    x = minidl.tensor([1.0, -2.0], requires_grad=True)
    for c in (x > 0, x < 0, x == 1.0, x >= 0, x <= 0, x != 1.0):
        assert not c.requires_grad and c.dtype == minidl.bool


def test_dtypes_and_creation():
    assert minidl.tensor([1.0, 2.0]).dtype == minidl.float32
    assert minidl.tensor([1, 2]).dtype == minidl.int64
    assert minidl.tensor([True]).dtype == minidl.bool
    assert minidl.tensor([1, 2], dtype="float64").dtype == minidl.float64
    assert minidl.tensor(np.zeros(3)).dtype == minidl.float64
    assert minidl.zeros(2, 3).shape == (2, 3) and minidl.zeros(2, 3).dtype == minidl.float32
    assert minidl.ones((4,)).numpy().sum() == 4
    assert minidl.full((2, 2), 7).dtype == minidl.int64
    assert minidl.arange(5).tolist() == [0, 1, 2, 3, 4]
    assert minidl.arange(0, 1, 0.25).dtype == minidl.float32
    np.testing.assert_allclose(minidl.linspace(0, 1, 5).numpy(), [0, 0.25, 0.5, 0.75, 1])
    np.testing.assert_array_equal(minidl.eye(3).numpy(), np.eye(3))
    minidl.manual_seed(3)
    a = minidl.randn(4)
    minidl.manual_seed(3)
    np.testing.assert_array_equal(a.numpy(), minidl.randn(4).numpy())
    r = minidl.randint(0, 5, (100,))
    assert r.dtype == minidl.int64 and 0 <= r.numpy().min() and r.numpy().max() < 5
    assert minidl.rand(3, 2).numpy().max() < 1
    x = minidl.randn(2, 3, dtype="float64")
    for like in (minidl.zeros_like, minidl.ones_like, minidl.randn_like, minidl.rand_like, minidl.empty_like):
        out = like(x)
        assert out.shape == x.shape and out.dtype == minidl.float64
    assert minidl.full_like(x, 2.5).numpy().max() == 2.5


def test_max_min_return_values_and_indices():
    x = minidl.tensor([[1.0, 5.0, 3.0], [7.0, 2.0, 0.0]])
    values, indices = x.max(dim=1)
    assert values.tolist() == [5.0, 7.0] and indices.tolist() == [1, 0]
    assert x.min(dim=0).indices.tolist() == [0, 1, 1]
    assert x.argmax(dim=1).tolist() == [1, 0]
    assert x.max().item() == 7.0


def test_functions_exist_as_methods_and_module_functions():
    x = minidl.tensor([[1.0, 4.0]])
    np.testing.assert_allclose(minidl.exp(x).numpy(), x.exp().numpy())
    np.testing.assert_allclose(minidl.sqrt(x).numpy(), [[1.0, 2.0]])
    assert minidl.sum(x).item() == 5.0
    assert minidl.mean(x, dim=1).tolist() == [2.5]


def test_python_scalars_do_not_promote():
    x = minidl.tensor([1.0, 2.0])
    assert (x * 2.5).dtype == minidl.float32
    assert (2 + x).dtype == minidl.float32
    assert (minidl.tensor([1, 2]) / 2).dtype == minidl.float32


def test_setitem_and_retain_grad():
    x = minidl.zeros(3)
    x[1] = 5.0
    assert x.tolist() == [0.0, 5.0, 0.0]
    a = minidl.tensor([1.0, 2.0], requires_grad=True)
    b = a * 3
    b.retain_grad()
    (b * b).sum().backward()
    np.testing.assert_allclose(b.grad.numpy(), 2 * b.numpy())


def test_gather_topk_repeat_against_torch():
    torch = pytest.importorskip("torch")
    a = RNG.standard_normal((3, 5))
    x = minidl.tensor(a, dtype="float64", requires_grad=True)
    index = np.array([[0, 1], [2, 2], [4, 0]])
    np.testing.assert_array_equal(x.gather(1, minidl.tensor(index)).numpy(),
                                  torch.tensor(a).gather(1, torch.tensor(index)).numpy())
    assert minidl.gradcheck(lambda t: t.gather(1, minidl.tensor(index)), [x])
    values, indices = x.topk(2, dim=1)
    t_values, t_indices = torch.tensor(a).topk(2, dim=1)
    np.testing.assert_array_equal(values.numpy(), t_values.numpy())
    np.testing.assert_array_equal(indices.numpy(), t_indices.numpy())
    np.testing.assert_array_equal(x.repeat(2, 1, 2).numpy(), torch.tensor(a).repeat(2, 1, 2).numpy())
    assert minidl.gradcheck(lambda t: t.repeat(2, 3), [x])


def test_leaf_gradients_never_share_memory():
    a = minidl.tensor([1.0, 2.0], requires_grad=True)
    b = minidl.tensor([3.0, 4.0], requires_grad=True)
    (a + b).sum().backward()  # Add's backward hands the same array to both inputs
    assert not np.shares_memory(a.grad.numpy(), b.grad.numpy())
    a.grad.numpy()[...] = 0
    assert b.grad.tolist() == [1.0, 1.0]
    x = minidl.tensor([1.0, 2.0], requires_grad=True)
    g = minidl.tensor([5.0, 6.0])
    (x + 0).backward(g)
    x.grad.numpy()[...] = 0
    assert g.tolist() == [5.0, 6.0]  # the caller's gradient is not adopted


def test_views_of_shared_memory_are_copied_into_grad():
    x = minidl.tensor(np.zeros((2, 3)), requires_grad=True)
    y = minidl.tensor(np.zeros((2, 3)), requires_grad=True)
    # cat's backward splits one array into two views of the same memory
    minidl.cat([x, y], dim=0).sum().backward()
    assert not np.shares_memory(x.grad.numpy(), y.grad.numpy())
