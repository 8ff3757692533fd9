"""PyTorch's autograd API on minidl: ctx-style Functions, autograd.grad, hooks, grad_fn, inference_mode.

The same code runs with ``torch`` and with ``minidl`` bound to the same name; values and
gradients must agree (float32), and the custom Functions pass gradcheck in float64.
"""
import numpy as np
import pytest

import minidl
from minidl.autograd import AccumulateGrad

RNG = np.random.default_rng(15)


def extending_examples(torch):
    """The three examples of PyTorch's "Extending PyTorch" notes, written once for either library."""
    class LinearFunction(torch.autograd.Function):
        @staticmethod
        def forward(ctx, input, weight, bias=None):
            ctx.save_for_backward(input, weight, bias)
            output = input.mm(weight.t())
            if bias is not None:
                output += bias.unsqueeze(0).expand_as(output)
            return output

        @staticmethod
        def backward(ctx, grad_output):
            input, weight, bias = ctx.saved_tensors
            grad_input = grad_weight = grad_bias = None
            if ctx.needs_input_grad[0]:
                grad_input = grad_output.mm(weight)
            if ctx.needs_input_grad[1]:
                grad_weight = grad_output.t().mm(input)
            if bias is not None and ctx.needs_input_grad[2]:
                grad_bias = grad_output.sum(0)
            return grad_input, grad_weight, grad_bias

    class MulConstant(torch.autograd.Function):
        @staticmethod
        def forward(ctx, tensor, constant):
            ctx.constant = constant
            return tensor * constant

        @staticmethod
        def backward(ctx, grad_output):
            return grad_output * ctx.constant, None

    class MyReLU(torch.autograd.Function):
        @staticmethod
        def forward(ctx, input):
            ctx.save_for_backward(input)
            return input.clamp(min=0)

        @staticmethod
        def backward(ctx, grad_output):
            input, = ctx.saved_tensors
            grad_input = grad_output.clone()
            grad_input[input < 0] = 0
            return grad_input

    return LinearFunction, MulConstant, MyReLU


def _pair(*shapes, dtype="float32"):
    """The same random values as minidl and torch leaves that require grad."""
    torch = pytest.importorskip("torch")
    arrays = [RNG.standard_normal(s).astype(dtype) for s in shapes]
    ours = [minidl.tensor(a, requires_grad=True) for a in arrays]
    theirs = [torch.tensor(a, requires_grad=True) for a in arrays]
    return ours, theirs


def _close(ours, theirs, atol=1e-5):
    np.testing.assert_allclose(ours.numpy(), theirs.detach().numpy(), rtol=1e-5, atol=atol)


def test_extending_pytorch_examples_match_torch():
    torch = pytest.importorskip("torch")
    (x, w, b), (tx, tw, tb) = _pair((5, 3), (4, 3), (4,))
    for lib, (xx, ww, bb) in ((minidl, (x, w, b)), (torch, (tx, tw, tb))):
        linear, mulc, relu = extending_examples(lib)
        out = relu.apply(mulc.apply(linear.apply(xx, ww, bb), 0.5))
        (out * out).sum().backward()
        if lib is minidl:
            ours = out
        else:
            theirs = out
    _close(ours, theirs)
    for a, ta in ((x, tx), (w, tw), (b, tb)):
        _close(a.grad, ta.grad)
    assert ours.grad_fn.name() == theirs.grad_fn.name() == "MyReLUBackward"


def test_extending_pytorch_examples_pass_gradcheck():
    linear, mulc, relu = extending_examples(minidl)
    x = minidl.randn(4, 3, dtype=minidl.float64, requires_grad=True)
    w = minidl.randn(2, 3, dtype=minidl.float64, requires_grad=True)
    b = minidl.randn(2, dtype=minidl.float64, requires_grad=True)
    assert minidl.autograd.gradcheck(linear.apply, (x, w, b), eps=1e-6, atol=1e-4)
    assert minidl.autograd.gradcheck(lambda t: mulc.apply(t, 3.0), (x,))
    away = minidl.tensor(RNG.choice([-1.0, 1.0], (3, 4)) * RNG.uniform(0.1, 1.0, (3, 4)), requires_grad=True)
    assert minidl.autograd.gradcheck(relu.apply, (away,))
    assert minidl.autograd.gradcheck is minidl.gradcheck


def test_a_wrong_custom_backward_fails_gradcheck():
    class Wrong(minidl.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x * x

        @staticmethod
        def backward(ctx, g):
            x, = ctx.saved_tensors
            return g * x  # should be 2 x g

    x = minidl.randn(3, dtype=minidl.float64, requires_grad=True)
    with pytest.raises(minidl.autograd.GradcheckError):
        minidl.autograd.gradcheck(Wrong.apply, (x,))


def _split_functions(torch, once_differentiable):
    class SplitScale(torch.autograd.Function):
        """Two outputs, one non-differentiable integer output, grads not materialised."""

        @staticmethod
        def forward(ctx, x, k):
            ctx.k = k
            ctx.save_for_backward(x)
            idx = (x > 0).long()
            ctx.mark_non_differentiable(idx)
            return x * k, x * x, idx

        @staticmethod
        @once_differentiable
        def backward(ctx, g1, g2, gidx):
            x, = ctx.saved_tensors
            return g1 * ctx.k + 2 * x * g2, None

    return SplitScale


def test_multiple_outputs_and_non_differentiable_match_torch():
    torch = pytest.importorskip("torch")
    ours, theirs = [], []
    (x,), (tx,) = _pair((6,))
    for lib, xx, store in ((minidl, x, ours), (torch, tx, theirs)):
        f = _split_functions(lib, lib.autograd.function.once_differentiable)
        a, b, idx = f.apply(xx, 3.0)
        assert not idx.requires_grad and a.requires_grad and b.requires_grad
        (a * 2 + b).sum().backward()
        store.append(xx.grad)
        # only one output used: the other output's gradient arrives as zeros
        xx.grad = None
        a, b, idx = f.apply(xx, 3.0)
        b.sum().backward()
        store.append(xx.grad)
    for o, t in zip(ours, theirs):
        _close(o, t)


def test_setup_context_style_and_needs_input_grad():
    seen = []

    class Scale(minidl.autograd.Function):
        @staticmethod
        def forward(x, w):
            return x * w

        @staticmethod
        def setup_context(ctx, inputs, output):
            ctx.save_for_backward(*inputs)

        @staticmethod
        def backward(ctx, g):
            x, w = ctx.saved_tensors
            seen.append(ctx.needs_input_grad)
            return (g * w if ctx.needs_input_grad[0] else None), (g * x if ctx.needs_input_grad[1] else None)

    x = minidl.tensor([1.0, 2.0], requires_grad=True)
    w = minidl.tensor([3.0, 4.0])
    Scale.apply(x, w).sum().backward()
    assert seen == [(True, False)] and x.grad.tolist() == [3.0, 4.0]
    with minidl.no_grad():
        y = Scale.apply(x, w)
    assert not y.requires_grad and y.grad_fn is None


def test_custom_function_errors_as_torch():
    torch = pytest.importorskip("torch")
    for lib in (minidl, torch):
        class TooFew(lib.autograd.Function):
            @staticmethod
            def forward(ctx, x, y):
                return x * y

            @staticmethod
            def backward(ctx, g):
                return g

        x = lib.ones(2, requires_grad=True)
        with pytest.raises(RuntimeError, match="incorrect number of gradients"):
            TooFew.apply(x, lib.ones(2)).sum().backward()

        class Saves(lib.autograd.Function):
            @staticmethod
            def forward(ctx, x):
                ctx.save_for_backward(x)
                return x * 2

            @staticmethod
            def backward(ctx, g):
                x, = ctx.saved_tensors
                return g * 2

        h = x * 1
        y = Saves.apply(h)
        h.add_(1)
        with pytest.raises(RuntimeError, match="modified by an inplace operation"):
            y.sum().backward()


def test_custom_function_mark_dirty_matches_torch():
    torch = pytest.importorskip("torch")
    results = []
    (x,), (tx,) = _pair((4,))
    for lib, xx in ((minidl, x), (torch, tx)):
        class AddOneInPlace(lib.autograd.Function):
            @staticmethod
            def forward(ctx, t):
                t.add_(1)
                ctx.mark_dirty(t)
                return t

            @staticmethod
            def backward(ctx, g):
                return g * 3  # deliberately not the true derivative, to see it used

        h = xx * 2
        out = AddOneInPlace.apply(h)
        assert out is h
        (h * h).sum().backward()
        results.append((h, xx.grad))
    _close(results[0][0], results[1][0])
    _close(results[0][1], results[1][1])


# ------------------------------------------------------------------ autograd.grad
def test_grad_matches_torch_and_leaves_dot_grad_alone():
    torch = pytest.importorskip("torch")
    (x, w), (tx, tw) = _pair((3, 4), (4, 2))
    outs = []
    for lib, xx, ww in ((minidl, x, w), (torch, tx, tw)):
        h = (xx @ ww).tanh()
        y1, y2 = h.sum(), (h * h).sum()
        g = lib.autograd.grad([y1, y2], [xx, ww, h], grad_outputs=[lib.tensor(2.0), None])
        outs.append(g)
        assert xx.grad is None and ww.grad is None
    for o, t in zip(*outs):
        _close(o, t)


def test_grad_allow_unused_and_errors():
    torch = pytest.importorskip("torch")
    for lib in (minidl, torch):
        x = lib.ones(3, requires_grad=True)
        unused = lib.ones(2, requires_grad=True)
        y = (x * 3).sum()
        with pytest.raises(RuntimeError, match="not have been used in the graph"):
            lib.autograd.grad(y, [x, unused], retain_graph=True)
        gx, gu = lib.autograd.grad(y, [x, unused], allow_unused=True, retain_graph=True)
        assert gu is None and gx.tolist() == [3.0, 3.0, 3.0]
        gx, gu = lib.autograd.grad(y, [x, unused], allow_unused=True, materialize_grads=True)
        assert gu.tolist() == [0.0, 0.0]
        with pytest.raises(RuntimeError, match="does not require grad"):
            lib.autograd.grad((x * 2).sum(), [lib.ones(2)])
    x = minidl.ones(3, requires_grad=True)
    with pytest.raises(RuntimeError, match=r"input 1, of shape \[2\]"):
        minidl.autograd.grad((x * 2).sum(), [x, minidl.ones(2, requires_grad=True)])
    with pytest.raises(RuntimeError, match="create_graph"):
        minidl.autograd.grad((x * 2).sum(), [x], create_graph=True)


def test_grad_runs_only_the_inputs_hooks():
    calls = []
    x = minidl.tensor([1.0, 2.0], requires_grad=True)
    w = minidl.tensor([3.0, 4.0], requires_grad=True)
    x.register_hook(lambda g: calls.append("x"))
    w.register_hook(lambda g: calls.append("w") or g * 10)
    (gw,) = minidl.autograd.grad((x * w).sum(), [w])
    assert calls == ["w"] and gw.tolist() == [10.0, 20.0] and w.grad is None


def test_grad_frees_the_graph_unless_retained():
    x = minidl.tensor([1.0, 2.0], requires_grad=True)
    y = (x.exp() * x).sum()
    a, = minidl.autograd.grad(y, x, retain_graph=True)
    b, = minidl.autograd.grad(y, x)
    np.testing.assert_allclose(a.numpy(), b.numpy())
    with pytest.raises(RuntimeError, match="second time"):
        minidl.autograd.grad(y, x)


def test_backward_inputs_as_torch():
    torch = pytest.importorskip("torch")
    for lib in (minidl, torch):
        x = lib.tensor([1.0, 2.0], requires_grad=True)
        w = lib.tensor([3.0, 4.0], requires_grad=True)
        (x * w).sum().backward(inputs=[w])
        assert x.grad is None and w.grad.tolist() == [1.0, 2.0]


def test_autograd_backward_of_several_tensors():
    x = minidl.tensor([1.0, 2.0], requires_grad=True)
    minidl.autograd.backward([(x * x).sum(), x * 3], [None, minidl.tensor([1.0, -1.0])])
    assert x.grad.tolist() == [5.0, 1.0]


# ------------------------------------------------------------------ hooks, retain_grad, is_leaf, requires_grad_
def test_hooks_match_torch():
    torch = pytest.importorskip("torch")
    (x,), (tx,) = _pair((4,))
    logs = []
    for lib, xx in ((minidl, x), (torch, tx)):
        calls = []
        xx.register_hook(lambda g, calls=calls: calls.append(("leaf", g.clone())) or g * 2)
        h = xx * 3
        h.retain_grad()
        handle = h.register_hook(lambda g, calls=calls: calls.append(("h", g.clone())))
        h.register_hook(lambda g: g + 1)
        y = (h * h).sum() + (xx * xx).sum()  # x used twice: its hook sees the sum once
        y.backward()
        handle.remove()
        logs.append((calls, xx.grad, h.grad))
    (ours, gx, gh), (theirs, tgx, tgh) = logs
    assert [c[0] for c in ours] == [c[0] for c in theirs]
    for (_, a), (_, b) in zip(ours, theirs):
        _close(a, b)
    _close(gx, tgx)
    _close(gh, tgh)


def test_hook_removal_and_errors():
    x = minidl.tensor([1.0, 2.0], requires_grad=True)
    handle = x.register_hook(lambda g: g * 10)
    handle.remove()
    (x * 1).sum().backward()
    assert x.grad.tolist() == [1.0, 1.0]
    with pytest.raises(RuntimeError, match="doesn't require gradient"):
        minidl.tensor([1.0]).register_hook(lambda g: g)


@pytest.mark.filterwarnings("ignore:The .grad attribute of a Tensor that is not a leaf")
def test_leaf_and_requires_grad_flags_as_torch():
    torch = pytest.importorskip("torch")
    for lib in (minidl, torch):
        x = lib.ones(2, requires_grad=True)
        y = x * 2
        assert x.is_leaf and not y.is_leaf and lib.ones(2).is_leaf
        with pytest.raises(RuntimeError, match="leaf variables"):
            y.requires_grad_(False)
        z = lib.ones(2).requires_grad_()
        assert z.requires_grad and z.is_leaf
        with pytest.raises(RuntimeError):
            lib.ones(2).retain_grad()
        (y * y).sum().backward()
        assert y.grad is None  # not retained


# ------------------------------------------------------------------ grad_fn
def test_grad_fn_names_and_next_functions_as_torch():
    torch = pytest.importorskip("torch")
    shapes = []
    for lib in (minidl, torch):
        x = lib.ones(2, 3, requires_grad=True)
        w = lib.ones(2, 3, requires_grad=True)
        y = (x * w).exp().sum()
        s = y.grad_fn
        e = s.next_functions[0][0]
        m = e.next_functions[0][0]
        names = [s.name(), e.name(), m.name()]
        leaves = m.next_functions
        assert leaves[0][0].variable is x and leaves[1][0].variable is w
        assert leaves[0][1] == 0 and type(leaves[0][0]).__name__ == "AccumulateGrad"
        assert x.grad_fn is None
        scaled = (x * 2).grad_fn.next_functions
        shapes.append((names, len(scaled), scaled[1][0]))
    assert shapes[0] == shapes[1] == (["SumBackward0", "ExpBackward0", "MulBackward0"], 2, None)
    assert isinstance(minidl.ones(1, requires_grad=True).mul(2).grad_fn.next_functions[0][0], AccumulateGrad)


def test_grad_fn_of_a_non_grad_input_is_none():
    x = minidl.ones(2, requires_grad=True)
    y = x + minidl.ones(2)
    assert y.grad_fn.next_functions[1] == (None, 0)
    assert "AddBackward0" in repr(y)


# ------------------------------------------------------------------ grad modes
def test_inference_mode_as_context_and_decorator():
    torch = pytest.importorskip("torch")
    x = minidl.ones(2, requires_grad=True)
    with minidl.inference_mode():
        assert not (x * 2).requires_grad
    with minidl.inference_mode(False):
        assert (x * 2).requires_grad

    @minidl.inference_mode()
    def f(t):
        return t * 2

    @minidl.inference_mode
    def g(t):
        return t * 2

    assert not f(x).requires_grad and not g(x).requires_grad and (x * 2).requires_grad
    assert minidl.autograd.inference_mode is minidl.inference_mode
    assert not x.is_inference() and not torch.ones(1).is_inference()


def test_torch_style_import_paths():
    from minidl.autograd.function import FunctionCtx, once_differentiable

    assert once_differentiable is minidl.autograd.once_differentiable
    assert FunctionCtx is minidl.autograd.FunctionCtx


def test_detect_anomaly_is_exported():
    assert minidl.autograd.detect_anomaly is minidl.grad_mode.detect_anomaly
    with minidl.autograd.detect_anomaly():
        assert minidl.autograd.is_anomaly_enabled()
