"""In-place ReLU/ReLU6 after batch norm (fused into the BN node), and graph memory freed by backward."""
import gc
import weakref

import numpy as np
import pytest

import minidl
import minidl.nn as nn
import minidl.nn.functional as F
from minidl.functions.norm import BatchNormEval, BatchNormTrain


def _grads(act, inplace, training, shape, seed=0):
    rng = np.random.default_rng(seed)
    x = minidl.tensor(rng.standard_normal(shape) * 3 + 1, requires_grad=True)
    bn = nn.BatchNorm2d(shape[1]) if len(shape) == 4 else nn.BatchNorm1d(shape[1])
    bn.weight.data[...] = rng.random(shape[1]) + 0.5
    bn.bias.data[...] = rng.standard_normal(shape[1])
    bn.running_var.data[...] = rng.random(shape[1]) + 0.5
    bn.train(training)
    y = act(bn(x.float() * 1.0), inplace=inplace)
    kind = type(y._ctx)
    (y * y * 0.5).sum().backward()
    return kind, y.numpy().copy(), x.grad.numpy(), bn.weight.grad.numpy(), bn.bias.grad.numpy()


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("act", [F.relu, F.relu6])
@pytest.mark.parametrize("shape", [(4, 6, 5, 5), (8, 6)])
def test_fused_equals_separate(act, training, shape):
    plain = _grads(act, False, training, shape)
    fused = _grads(act, True, training, shape)
    assert fused[0] is (BatchNormTrain if training else BatchNormEval)  # the activation joined the BN node
    assert plain[0] is not fused[0]
    for a, b in zip(plain[1:], fused[1:]):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)


def test_gradcheck_of_the_fused_node():
    rng = np.random.default_rng(1)
    x = minidl.tensor(rng.standard_normal((3, 4, 3, 3)) * 4, requires_grad=True)
    w = minidl.tensor(rng.random(4) + 0.5, requires_grad=True)
    b = minidl.tensor(rng.standard_normal(4), requires_grad=True)

    def f(x, w, b):
        y = F.batch_norm(x, None, None, w, b, training=True)
        return F.relu6(F.relu(y, inplace=True) * 3, inplace=False)
    assert minidl.gradcheck(f, (x, w, b))
    assert minidl.gradcheck(lambda x, w, b: F.relu6(F.batch_norm(x, None, None, w, b, training=True) * 1.0,
                                                    inplace=True), (x, w, b))


def test_inplace_where_autograd_allows_and_not_elsewhere():
    t = minidl.tensor(np.array([-1.0, 2.0, 7.0]))
    assert F.relu6(t, inplace=True) is t and t.numpy().tolist() == [0.0, 2.0, 6.0]  # outside the graph: in place
    leaf = minidl.tensor(np.array([-1.0, 2.0]), requires_grad=True)
    out = F.relu(leaf, inplace=True)  # a leaf that requires grad is never overwritten
    assert out is not leaf and leaf.numpy().tolist() == [-1.0, 2.0]
    mid = leaf * 2
    out = F.relu(mid, inplace=True)  # a product nobody read yet: overwritten, the graph re-hung
    assert out is mid and mid.numpy().tolist() == [0.0, 4.0]
    out.sum().backward()
    assert leaf.grad.numpy().tolist() == [0.0, 2.0]
    bn = nn.BatchNorm1d(2)
    y = bn(minidl.tensor(np.array([[1.0, 2.0], [3.0, 5.0]]), requires_grad=True))
    assert F.relu(y, inplace=True) is y
    assert F.relu6(y, inplace=True) is not y  # one activation per BN node; the second is a new op


def test_zoo_blocks_use_inplace_activations():
    from minidl.models import mobilenet_v2, resnet18
    reprs = repr(resnet18(num_classes=10)) + repr(mobilenet_v2(num_classes=10))
    assert "ReLU(inplace=True)" in reprs and "ReLU6(inplace=True)" in reprs


def test_backward_frees_intermediate_activations_while_the_loss_lives():
    rng = np.random.default_rng(0)
    x = minidl.tensor(rng.standard_normal((2, 3, 8, 8)).astype(np.float32))
    conv = nn.Conv2d(3, 4, 3, padding=1)
    bn = nn.BatchNorm2d(4)
    h = F.relu(bn(conv(x)), inplace=True)
    probe = weakref.ref(h)
    loss = (F.max_pool2d(h, 2) * 2.0).sum()
    del h
    gc.collect()
    assert probe() is not None  # the graph holds it until backward
    loss.backward()
    gc.collect()
    assert probe() is None  # released by backward, though `loss` is still alive
    assert conv.weight.grad is not None and bn.weight.grad is not None
    with pytest.raises(RuntimeError, match="second time"):
        loss.backward()


def test_retain_graph_keeps_everything_for_a_second_backward():
    x = minidl.tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    y = F.relu(nn.BatchNorm1d(3)(x), inplace=True)
    loss = (y * y).sum()
    loss.backward(retain_graph=True)
    first = x.grad.numpy().copy()
    loss.backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * first)


def test_inplace_relu_after_a_residual_add_rehangs_the_graph():
    rng = np.random.default_rng(0)
    a = minidl.tensor(rng.standard_normal((2, 3, 4, 4)), requires_grad=True)
    b = minidl.tensor(rng.standard_normal((2, 3, 4, 4)), requires_grad=True)
    grads = []
    for inplace in (False, True):
        a.grad = b.grad = None
        s = a * 2 + b
        out = F.relu(s, inplace=inplace)
        assert (out is s) == inplace
        (out * out).sum().backward()
        grads.append((out.numpy().copy(), a.grad.numpy().copy(), b.grad.numpy().copy()))
    for x, y in zip(*grads):
        np.testing.assert_allclose(x, y)
    assert minidl.gradcheck(lambda a, b: F.relu6(a * 3 + b, inplace=True) * a, (a, b))


def test_inplace_refused_when_another_op_already_read_the_tensor():
    a = minidl.tensor(np.array([-1.0, 2.0]), requires_grad=True)
    s = a + 1
    t = s * 3  # s has been read
    out = F.relu(s, inplace=True)
    assert out is not s and s.numpy().tolist() == [0.0, 3.0]
    (t.sum() + out.sum()).backward()
    assert a.grad.numpy().tolist() == [3.0, 4.0]  # relu'(0) = 0
    y = nn.BatchNorm1d(2)(minidl.tensor(np.array([[1.0, 2.0], [3.0, 5.0]]), requires_grad=True))
    z = y * 1  # the BN output has been read: no fusion
    assert F.relu(y, inplace=True) is not y and z is not None


def test_inplace_refused_when_the_op_backward_reads_its_output():
    a = minidl.tensor(np.array([-1.0, 2.0]), requires_grad=True)
    e = a.exp() - 2  # the subtraction's output: fine
    s = a.sigmoid()  # sigmoid saves its output for backward
    assert F.relu(s, inplace=True) is not s
    assert F.relu(e, inplace=True) is e
