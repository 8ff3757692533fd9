"""nn.Module machinery, layers, init, losses (against PyTorch), gradcheck itself, and error messages."""
import math
from collections import OrderedDict

import numpy as np
import pytest

import minidl
import minidl.nn as nn
import minidl.nn.functional as F
from minidl.autograd import Function
from minidl.gradcheck import GradcheckError

RNG = np.random.default_rng(1)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Dropout(0.5))
        self.bn = nn.BatchNorm1d(8)
        self.head = nn.Linear(8, 3)

    def forward(self, x):
        return self.head(self.bn(self.features(x)))


def test_module_registration_and_state_dict():
    net = Net()
    names = [n for n, _ in net.named_parameters()]
    assert names == ["features.0.weight", "features.0.bias", "bn.weight", "bn.bias", "head.weight", "head.bias"]
    assert [n for n, _ in net.named_buffers()] == ["bn.running_mean", "bn.running_var", "bn.num_batches_tracked"]
    assert list(net.state_dict()) == ["features.0.weight", "features.0.bias", "bn.weight", "bn.bias",
                                      "bn.running_mean", "bn.running_var", "bn.num_batches_tracked",
                                      "head.weight", "head.bias"]
    assert [n for n, _ in net.named_children()] == ["features", "bn", "head"]
    assert len(list(net.modules())) == 7
    assert sum(p.numel() for p in net.parameters()) == 4 * 8 + 8 + 16 + 8 * 3 + 3


def test_load_state_dict_round_trip_and_errors():
    a, b = Net(), Net()
    b.load_state_dict(a.state_dict())
    for (k, va), (_, vb) in zip(a.state_dict().items(), b.state_dict().items()):
        np.testing.assert_array_equal(va.numpy(), vb.numpy())
    # plain arrays are accepted too
    b.load_state_dict({k: v.numpy() * 0 for k, v in a.state_dict().items()})
    assert b.head.weight.numpy().sum() == 0
    state = a.state_dict()
    state.pop("head.bias")
    state["extra.weight"] = np.zeros(2)
    state["head.weight"] = np.zeros((5, 8))
    with pytest.raises(RuntimeError) as info:
        b.load_state_dict(state)
    message = str(info.value)
    assert "head.bias" in message and "extra.weight" in message
    assert "head.weight" in message and "(5, 8)" in message and "(3, 8)" in message
    state["head.weight"] = np.zeros((3, 8))
    result = b.load_state_dict(state, strict=False)
    assert result.missing_keys == ["head.bias"] and result.unexpected_keys == ["extra.weight"]


def test_train_eval_apply_zero_grad_repr():
    net = Net()
    net.eval()
    assert all(not m.training for m in net.modules())
    net.train()
    assert all(m.training for m in net.modules())
    seen = []
    net.apply(lambda m: seen.append(type(m).__name__))
    assert seen[-1] == "Net" and "Linear" in seen
    x = minidl.randn(5, 4)
    net(x).sum().backward()
    assert net.head.weight.grad is not None
    net.zero_grad()
    assert net.head.weight.grad is None
    text = repr(net)
    assert "(features): Sequential(" in text
    assert "(0): Linear(in_features=4, out_features=8, bias=True)" in text
    assert "(bn): BatchNorm1d(8, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)" in text


def test_containers():
    layers = nn.ModuleList([nn.Linear(2, 2) for _ in range(3)])
    assert len(layers) == 3 and len(list(layers.parameters())) == 6
    d = nn.ModuleDict({"a": nn.ReLU(), "b": nn.Linear(1, 1)})
    assert list(d.keys()) == ["a", "b"] and "b" in d
    seq = nn.Sequential(OrderedDict([("fc", nn.Linear(3, 2)), ("act", nn.Tanh())]))
    assert list(seq.state_dict()) == ["fc.weight", "fc.bias"]
    assert isinstance(seq[1], nn.Tanh) and len(seq[:1]) == 1


def test_linear_default_init_bounds():
    minidl.manual_seed(0)
    layer = nn.Linear(100, 50)
    bound = 1 / math.sqrt(100)
    assert np.abs(layer.weight.numpy()).max() <= bound and np.abs(layer.bias.numpy()).max() <= bound
    assert np.abs(layer.weight.numpy()).max() > 0.9 * bound  # uniform over the whole range


def test_init_functions():
    w = nn.Parameter(np.zeros((200, 100), dtype=np.float32))
    nn.init.kaiming_normal_(w, mode="fan_out", nonlinearity="relu")
    assert abs(w.numpy().std() - math.sqrt(2 / 200)) < 0.01
    nn.init.xavier_uniform_(w)
    assert np.abs(w.numpy()).max() <= math.sqrt(6 / 300)
    nn.init.xavier_normal_(w)
    assert abs(w.numpy().std() - math.sqrt(2 / 300)) < 0.005
    nn.init.trunc_normal_(w, std=0.5, a=-0.3, b=0.3)
    assert np.abs(w.numpy()).max() <= 0.3 and w.numpy().std() > 0.1
    nn.init.constant_(w, 0.25)
    assert np.all(w.numpy() == 0.25)
    nn.init.zeros_(w)
    assert not w.numpy().any()
    nn.init.ones_(w)
    assert w.numpy().all()
    nn.init.normal_(w, 1.0, 0.1)
    assert abs(w.numpy().mean() - 1.0) < 0.01
    nn.init.kaiming_uniform_(w, a=math.sqrt(5))
    assert np.abs(w.numpy()).max() <= 1 / math.sqrt(100) + 1e-7


# ----------------------------------------------------------------------------- losses
def _torch_pair(array, requires_grad=True):
    torch = pytest.importorskip("torch")
    return minidl.tensor(array, requires_grad=requires_grad), torch.tensor(array, requires_grad=requires_grad)


@pytest.mark.parametrize("options", [
    {}, {"reduction": "sum"}, {"reduction": "none"}, {"label_smoothing": 0.1},
    {"weight": "w"}, {"weight": "w", "label_smoothing": 0.2}, {"ignore_index": 2},
    {"ignore_index": 1, "weight": "w", "reduction": "mean"}, {"ignore_index": 2, "label_smoothing": 0.2},
    {"ignore_index": 2, "label_smoothing": 0.2, "weight": "w"},
])
def test_cross_entropy_against_torch(options):
    torch = pytest.importorskip("torch")
    logits = RNG.standard_normal((6, 4))
    target = np.array([0, 2, 1, 3, 2, 0])
    weight = np.array([0.5, 1.0, 2.0, 1.5])
    kw = dict(options)
    x, tx = _torch_pair(logits)
    kw_m = {k: (minidl.tensor(weight) if v == "w" else v) for k, v in kw.items()}
    kw_t = {k: (torch.tensor(weight) if v == "w" else v) for k, v in kw.items()}
    out = F.cross_entropy(x, minidl.tensor(target), **kw_m)
    tout = torch.nn.functional.cross_entropy(tx, torch.tensor(target), **kw_t)
    np.testing.assert_allclose(out.numpy(), tout.detach().numpy(), rtol=1e-6)
    out.sum().backward()
    tout.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-6, atol=1e-12)


def test_cross_entropy_probability_targets_and_spatial():
    torch = pytest.importorskip("torch")
    logits = RNG.standard_normal((3, 5))
    probs = RNG.random((3, 5))
    probs /= probs.sum(axis=1, keepdims=True)
    x, tx = _torch_pair(logits)
    out = F.cross_entropy(x, minidl.tensor(probs), label_smoothing=0.1)
    tout = torch.nn.functional.cross_entropy(tx, torch.tensor(probs), label_smoothing=0.1)
    np.testing.assert_allclose(out.numpy(), tout.detach().numpy(), rtol=1e-6)
    # (N, C, H, W) logits with (N, H, W) targets
    logits4 = RNG.standard_normal((2, 3, 4, 5))
    target4 = RNG.integers(0, 3, (2, 4, 5))
    x4, tx4 = _torch_pair(logits4)
    out = F.cross_entropy(x4, minidl.tensor(target4), reduction="none")
    tout = torch.nn.functional.cross_entropy(tx4, torch.tensor(target4), reduction="none")
    np.testing.assert_allclose(out.numpy(), tout.detach().numpy(), rtol=1e-6)
    out.sum().backward()
    tout.sum().backward()
    np.testing.assert_allclose(x4.grad.numpy(), tx4.grad.numpy(), rtol=1e-6, atol=1e-12)


def test_cross_entropy_gradcheck_and_extreme_logits():
    x = minidl.tensor(RNG.standard_normal((4, 5)), dtype="float64", requires_grad=True)
    target = minidl.tensor([0, 4, 2, 2])
    assert minidl.gradcheck(lambda v: F.cross_entropy(v, target, label_smoothing=0.1), [x])
    big = minidl.tensor([[1e4, -1e4, 0.0], [-1e4, 1e4, 5.0]], requires_grad=True)
    loss = F.cross_entropy(big, minidl.tensor([1, 1]))
    loss.backward()
    assert np.isfinite(loss.item()) and np.all(np.isfinite(big.grad.numpy()))
    np.testing.assert_allclose(loss.item(), 1e4, rtol=1e-6)
    bce = F.binary_cross_entropy_with_logits(big, minidl.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]]))
    assert np.isfinite(bce.item())


@pytest.mark.parametrize("name", ["nll_loss", "mse_loss", "l1_loss", "smooth_l1_loss",
                                  "binary_cross_entropy_with_logits"])
def test_other_losses_against_torch(name):
    torch = pytest.importorskip("torch")
    inp = RNG.standard_normal((5, 3))
    if name == "nll_loss":
        target_m, target_t = minidl.tensor([0, 2, 1, 1, 0]), torch.tensor([0, 2, 1, 1, 0])
        inp = np.log(np.exp(inp) / np.exp(inp).sum(1, keepdims=True))
    elif name == "binary_cross_entropy_with_logits":
        t = (RNG.random((5, 3)) > 0.5).astype(np.float64)
        target_m, target_t = minidl.tensor(t), torch.tensor(t)
    else:
        t = RNG.standard_normal((5, 3)) * 2
        target_m, target_t = minidl.tensor(t), torch.tensor(t)
    for reduction in ("mean", "sum", "none"):
        x, tx = _torch_pair(inp)
        out = getattr(F, name)(x, target_m, reduction=reduction)
        tout = getattr(torch.nn.functional, name)(tx, target_t, reduction=reduction)
        np.testing.assert_allclose(out.numpy(), tout.detach().numpy(), rtol=1e-6, atol=1e-12)
        out.sum().backward()
        tout.sum().backward()
        np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-6, atol=1e-12)
    x = minidl.tensor(inp, requires_grad=True)
    assert minidl.gradcheck(lambda v: getattr(F, name)(v, target_m), [x])


def test_bce_pos_weight_and_loss_modules():
    torch = pytest.importorskip("torch")
    inp = RNG.standard_normal((4, 3))
    t = (RNG.random((4, 3)) > 0.5).astype(np.float64)
    pw = np.array([1.0, 2.0, 0.5])
    out = nn.BCEWithLogitsLoss(pos_weight=minidl.tensor(pw))(minidl.tensor(inp), minidl.tensor(t))
    tout = torch.nn.BCEWithLogitsLoss(pos_weight=torch.tensor(pw))(torch.tensor(inp), torch.tensor(t))
    np.testing.assert_allclose(out.numpy(), tout.numpy(), rtol=1e-6)
    logits = minidl.tensor(inp)
    target = minidl.tensor([0, 1, 2, 1])
    np.testing.assert_allclose(nn.CrossEntropyLoss(label_smoothing=0.1)(logits, target).item(),
                               torch.nn.CrossEntropyLoss(label_smoothing=0.1)(
                                   torch.tensor(inp), torch.tensor([0, 1, 2, 1])).item(), rtol=1e-6)
    assert nn.NLLLoss()(logits.log_softmax(1), target).item() == pytest.approx(
        nn.CrossEntropyLoss()(logits, target).item())
    assert nn.MSELoss()(logits, logits).item() == 0 and nn.L1Loss()(logits, logits).item() == 0
    assert nn.SmoothL1Loss(beta=0.5)(logits, logits * 0).item() > 0


# ----------------------------------------------------------------------------- gradcheck itself
class WrongSquare(Function):
    def forward(self, x):
        self.save_for_backward(x)
        return x * x

    def backward(self, g):
        (x,) = self.saved
        return (g * x,)  # deliberately wrong: should be 2 x


def test_gradcheck_catches_wrong_backward():
    x = minidl.tensor([[0.5, -1.0], [2.0, 3.0]], dtype="float64", requires_grad=True)
    with pytest.raises(GradcheckError) as info:
        minidl.gradcheck(lambda v: WrongSquare.apply(v), [x])
    message = str(info.value)
    assert "input 0" in message and "index (0, 0)" in message
    import re

    analytic, numeric = map(float, re.search(r"analytic (\S+), numeric (\S+)", message).groups())
    assert numeric == pytest.approx(2 * analytic, rel=1e-6)  # the true derivative is twice the wrong one
    assert minidl.gradcheck(lambda v: v * v, [x])
    assert minidl.gradcheck(lambda v: WrongSquare.apply(v), [x], raise_exception=False) is False


def test_gradcheck_requires_float64():
    x = minidl.tensor([1.0], requires_grad=True)
    with pytest.raises(TypeError, match="float64"):
        minidl.gradcheck(lambda v: v * 2, [x])


# ----------------------------------------------------------------------------- error messages
def test_error_messages_name_the_values():
    with pytest.raises(ValueError, match=r"matmul: shapes \(2, 3\) and \(4, 5\).*3 columns.*4 rows"):
        minidl.randn(2, 3) @ minidl.randn(4, 5)
    with pytest.raises(ValueError, match=r"\(2, 3\) and \(4,\) cannot be broadcast.*3 and 4"):
        minidl.randn(2, 3) + minidl.randn(4)
    with pytest.raises(TypeError, match="integer class indices.*float32"):
        F.cross_entropy(minidl.randn(3, 4), minidl.tensor([0.0, 1.0, 2.0]))
    with pytest.raises(ValueError, match=r"target values must be in \[0, 4\)"):
        F.cross_entropy(minidl.randn(3, 4), minidl.tensor([0, 1, 7]))
    with pytest.raises(RuntimeError, match=r"scalar outputs.*shape \(2, 2\)"):
        minidl.randn(2, 2, requires_grad=True).exp().backward()
    with pytest.raises(ValueError, match="linear: input has 5 features.*in_features=4"):
        nn.Linear(4, 2)(minidl.randn(3, 5))
    with pytest.raises(ValueError, match=r"reshape: shape \(4, 4\) is invalid for input of shape \(3, 5\)"):
        minidl.randn(3, 5).reshape(4, 4)
    with pytest.raises(TypeError, match="floating point"):
        minidl.tensor([1, 2], requires_grad=True)
