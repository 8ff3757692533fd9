"""Issue 16: LayerNorm, GroupNorm, InstanceNorm, RMSNorm, Embedding, RNN/LSTM/GRU and their cells.

Each layer is compared with torch.nn holding the same weights (copied through state_dict):
outputs, and the gradients of the inputs, the initial states and every parameter, in float32.
The fused kernels are compared with their float64 references; the float64 gradient checks are
entries of minidl/gradcheck_suite.py (run here for these ops only).
"""
import numpy as np
import pytest

import minidl
import minidl.nn as nn
import minidl.nn.functional as F
from minidl.kernels.cpu import layer_norm as cpu_ln
from minidl.kernels.cpu import recurrent as cpu_rec
from minidl.kernels.cuda import layer_norm as cuda_ln
from minidl.kernels.cuda import recurrent as cuda_rec
from minidl.kernels.reference import layer_norm as ref_ln
from minidl.kernels.reference import recurrent as ref_rec

RTOL, ATOL = 1e-5, 1e-5


def _rng(seed=0):
    return np.random.default_rng(seed)


def _flat(out):
    """The tensors of a (possibly nested) output tuple, in order."""
    if isinstance(out, (tuple, list)):
        return [t for o in out for t in _flat(o)]
    return [out]


def _copy_weights(mine, theirs):
    """Load torch's state_dict into the minidl module; the key names and shapes must be the same."""
    state = {k: v.detach().numpy().copy() for k, v in theirs.state_dict().items()}
    assert list(mine.state_dict()) == list(state)
    assert [tuple(v.shape) for v in mine.state_dict().values()] == [v.shape for v in state.values()]
    mine.load_state_dict(state)


def _compare(torch, mine, theirs, inputs, call=lambda m, *a: m(*a), rtol=RTOL, atol=ATOL):
    """Run both modules on the same float inputs (a list of arrays, or tuples of arrays for LSTM states)."""
    def wrap(lib, a):
        if a is None:
            return None
        if isinstance(a, tuple):
            return tuple(wrap(lib, x) for x in a)
        if a.dtype.kind in "iu":
            return lib.tensor(a)
        return lib.tensor(a, requires_grad=True)

    ours = [wrap(minidl, a) for a in inputs]
    ref = [wrap(torch, a) for a in inputs]
    out_m, out_t = _flat(call(mine, *ours)), _flat(call(theirs, *ref))
    assert len(out_m) == len(out_t)
    rng = _rng(7)
    loss_m = loss_t = 0
    for a, b in zip(out_m, out_t):
        assert tuple(a.shape) == tuple(b.shape)
        np.testing.assert_allclose(a.numpy(), b.detach().numpy(), rtol=rtol, atol=atol)
        w = rng.standard_normal(tuple(b.shape)).astype(np.float32)  # a loss that weighs every output differently
        loss_m = loss_m + (a * minidl.tensor(w)).sum()
        loss_t = loss_t + (b * torch.tensor(w)).sum()
    loss_m.backward()
    loss_t.backward()
    for a, b in zip(_flat(ours), _flat(ref)):
        if a is not None and b.requires_grad:
            np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=rtol, atol=atol)
    params_t = dict(theirs.named_parameters())
    for name, p in mine.named_parameters():
        if params_t[name].grad is None:
            assert p.grad is None or not np.any(p.grad.numpy()), name
        else:
            np.testing.assert_allclose(p.grad.numpy(), params_t[name].grad.numpy(), rtol=rtol, atol=atol,
                                       err_msg=name)
    return out_m, out_t


def _randomise(torch, module, seed=1):
    """Non-trivial affine parameters (torch's start at ones and zeros, which hide mistakes)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.5 + 1)


# --------------------------------------------------------------------------- kernels against float64 references
@pytest.mark.parametrize("module", [cpu_ln, cuda_ln], ids=["cpu", "cuda-array-twin"])
@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-12), (np.float32, 1e-5)])
@pytest.mark.parametrize("shape,affine", [((3, 2, 3, 5), True), ((2, 4, 1, 7), False), ((5, 1, 6, 1), True)])
def test_group_norm_kernel_matches_reference(module, dtype, tol, shape, affine):
    rng = _rng()
    x = rng.standard_normal(shape) * 3 + 5  # a large mean: the one-pass statistics must not cancel
    c = shape[1] * shape[2]
    w, b = (rng.standard_normal(c), rng.standard_normal(c)) if affine else (None, None)
    dy = rng.standard_normal(shape)
    y_ref, mean_ref, rstd_ref = ref_ln.group_norm_forward(x, w, b, 1e-5)
    grads_ref = ref_ln.group_norm_backward(dy, x, w, mean_ref, rstd_ref)
    cast = (lambda a: None if a is None else a.astype(dtype))
    y, mean, rstd = module.group_norm_forward(cast(x), cast(w), cast(b), 1e-5)
    assert y.dtype == dtype
    grads = module.group_norm_backward(cast(dy), cast(x), cast(w), mean, rstd)
    for got, want in zip((y, mean, rstd) + tuple(grads), (y_ref, mean_ref, rstd_ref) + tuple(grads_ref)):
        np.testing.assert_allclose(got, want, rtol=tol, atol=tol * 10)
    assert all(g.dtype == dtype for g in grads)


@pytest.mark.parametrize("module", [cpu_ln, cuda_ln], ids=["cpu", "cuda-array-twin"])
def test_layer_norm_kernel_matches_reference_and_skips_unwanted_grads(module):
    rng = _rng(1)
    x, dy = rng.standard_normal((6, 9)), rng.standard_normal((6, 9))
    w, b = rng.standard_normal(9), rng.standard_normal(9)
    y_ref, mean_ref, rstd_ref = ref_ln.layer_norm_forward(x, w, b, 1e-5)
    gx_ref, gw_ref, gb_ref = ref_ln.layer_norm_backward(dy, x, w, mean_ref, rstd_ref)
    y, mean, rstd = module.layer_norm_forward(x, w, b, 1e-5)
    np.testing.assert_allclose(y, y_ref, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(y.mean(axis=1) if w is None else ((y - b) / w).mean(axis=1), 0, atol=1e-12)
    gx, gw, gb = module.layer_norm_backward(dy, x, w, mean, rstd)
    for got, want in ((gx, gx_ref), (gw, gw_ref), (gb, gb_ref)):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    gx, gw, gb = module.layer_norm_backward(dy, x, w, mean, rstd, need_dx=False, need_affine=True)
    assert gx is None and gw is not None
    gx, gw, gb = module.layer_norm_backward(dy, x, w, mean, rstd, need_dx=True, need_affine=False)
    assert gw is None and gb is None
    np.testing.assert_allclose(gx, gx_ref, rtol=1e-12, atol=1e-12)


def test_layer_norm_kernel_on_many_rows_in_float32():
    """Rows split into several tasks (the weight and bias gradients are summed over their partial sums)."""
    rng = _rng(2)
    x, dy = rng.standard_normal((150, 37)) * 3 + 5, rng.standard_normal((150, 37))
    w, b = rng.standard_normal(37), rng.standard_normal(37)
    y_ref, mean_ref, rstd_ref = ref_ln.layer_norm_forward(x, w, b, 1e-5)
    grads_ref = ref_ln.layer_norm_backward(dy, x, w, mean_ref, rstd_ref)
    f32 = (lambda a: a.astype(np.float32))
    y, mean, rstd = cpu_ln.layer_norm_forward(f32(x), f32(w), f32(b), 1e-5)
    assert y.dtype == np.float32
    np.testing.assert_allclose(y, y_ref, rtol=1e-4, atol=1e-4)
    for got, want in zip(cpu_ln.layer_norm_backward(f32(dy), f32(x), f32(w), mean, rstd), grads_ref):
        assert got.dtype == np.float32
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("module", [cpu_rec, cuda_rec], ids=["cpu", "cuda-array-twin"])
@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-13), (np.float32, 1e-6)])
def test_lstm_cell_kernel_matches_reference(module, dtype, tol):
    rng = _rng(2)
    gi, gh = rng.standard_normal((5, 12)) * 2, rng.standard_normal((5, 12))
    c, dh, dc = rng.standard_normal((5, 3)), rng.standard_normal((5, 3)), rng.standard_normal((5, 3))
    want = ref_rec.lstm_cell_forward(gi, gh, c)
    want_back = ref_rec.lstm_cell_backward(dh, dc, want[2], c, want[3])
    got = module.lstm_cell_forward(gi.astype(dtype), gh.astype(dtype), c.astype(dtype))
    assert all(a.dtype == dtype for a in got)
    got_back = module.lstm_cell_backward(dh.astype(dtype), dc.astype(dtype), got[2], c.astype(dtype), got[3])
    for a, b in zip(tuple(got) + tuple(got_back), tuple(want) + tuple(want_back)):
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol)


def test_lstm_reference_backward_matches_finite_differences():
    """The reference's hand-written backward is itself checked: central differences of h' and c'."""
    rng = _rng(3)
    gi, gh, c = rng.standard_normal((2, 8)), rng.standard_normal((2, 8)), rng.standard_normal((2, 2))
    dh, dc = rng.standard_normal((2, 2)), rng.standard_normal((2, 2))

    def loss(gi_, c_):
        h_new, c_new, _, _ = ref_rec.lstm_cell_forward(gi_, gh, c_)
        return (h_new * dh).sum() + (c_new * dc).sum()

    _, _, gates, tanh_c = ref_rec.lstm_cell_forward(gi, gh, c)
    d_pre, dc_prev = ref_rec.lstm_cell_backward(dh, dc, gates, c, tanh_c)
    eps = 1e-6
    for idx in np.ndindex(gi.shape):
        e = np.zeros_like(gi)
        e[idx] = eps
        assert abs((loss(gi + e, c) - loss(gi - e, c)) / (2 * eps) - d_pre[idx]) < 1e-8
    for idx in np.ndindex(c.shape):
        e = np.zeros_like(c)
        e[idx] = eps
        assert abs((loss(gi, c + e) - loss(gi, c - e)) / (2 * eps) - dc_prev[idx]) < 1e-8


def test_gradcheck_suite_entries_pass():
    from minidl.gradcheck_suite import format_table, run_suite

    names = ["layer_norm", "group_norm", "instance_norm", "rms_norm", "embedding", "embedding_bag", "recurrent cells",
             "recurrent layers"]
    rows = run_suite(only=names)
    assert sorted(r[0] for r in rows) == sorted(names)
    assert all(r[4] for r in rows), format_table(rows)


# --------------------------------------------------------------------------- normalisation layers vs torch
@pytest.mark.parametrize("shape,normalized,kwargs", [
    ((2, 3, 5), (5,), {}),
    ((2, 3, 5), (3, 5), {}),
    ((4, 6), 6, {"elementwise_affine": False}),
    ((2, 3, 4), (4,), {"bias": False, "eps": 1e-3}),
])
def test_layer_norm_vs_torch(shape, normalized, kwargs):
    torch = pytest.importorskip("torch")
    theirs = torch.nn.LayerNorm(normalized, **kwargs)
    _randomise(torch, theirs)
    mine = nn.LayerNorm(normalized, **kwargs)
    _copy_weights(mine, theirs)
    x = (_rng().standard_normal(shape) * 2 + 3).astype(np.float32)
    _compare(torch, mine, theirs, [x])
    assert repr(mine) == repr(theirs)


@pytest.mark.parametrize("groups,channels,shape,affine", [(2, 6, (2, 6, 3, 4), True), (3, 6, (2, 6, 5), False),
                                                         (1, 4, (3, 4), True), (4, 4, (2, 4, 2, 2, 2), True),
                                                         (2, 4, (2, 4, 3), "no bias")])
def test_group_norm_vs_torch(groups, channels, shape, affine):
    torch = pytest.importorskip("torch")
    kwargs = {"bias": False} if affine == "no bias" else {"affine": affine}
    theirs = torch.nn.GroupNorm(groups, channels, **kwargs)
    _randomise(torch, theirs)
    mine = nn.GroupNorm(groups, channels, **kwargs)
    _copy_weights(mine, theirs)
    _compare(torch, mine, theirs, [_rng(4).standard_normal(shape).astype(np.float32)])
    assert repr(mine) == repr(theirs)


@pytest.mark.parametrize("cls,shape,kwargs", [
    ("InstanceNorm1d", (2, 4, 7), {"affine": True}),
    ("InstanceNorm1d", (4, 7), {}),                        # unbatched
    ("InstanceNorm2d", (2, 3, 4, 5), {}),                  # PyTorch's defaults: no affine, no running stats
    ("InstanceNorm2d", (3, 4, 5), {"affine": True}),       # unbatched
    ("InstanceNorm3d", (2, 2, 3, 2, 4), {"affine": True}),
    ("InstanceNorm1d", (2, 4, 7), {"affine": True, "bias": False}),
])
def test_instance_norm_vs_torch(cls, shape, kwargs):
    torch = pytest.importorskip("torch")
    channels = shape[1] if len(shape) == int(cls[-2]) + 2 else shape[0]
    theirs = getattr(torch.nn, cls)(channels, **kwargs)
    if kwargs.get("affine"):
        _randomise(torch, theirs)
    mine = getattr(nn, cls)(channels, **kwargs)
    _copy_weights(mine, theirs)
    _compare(torch, mine, theirs, [(_rng(5).standard_normal(shape) * 3 - 1).astype(np.float32)])
    assert repr(mine) == repr(theirs)


def test_instance_norm_running_stats_train_then_eval_vs_torch():
    torch = pytest.importorskip("torch")
    theirs = torch.nn.InstanceNorm2d(3, affine=True, track_running_stats=True, momentum=0.3)
    _randomise(torch, theirs)
    mine = nn.InstanceNorm2d(3, affine=True, track_running_stats=True, momentum=0.3)
    _copy_weights(mine, theirs)
    rng = _rng(6)
    for _ in range(2):
        _compare(torch, mine, theirs, [(rng.standard_normal((2, 3, 4, 5)) * 2 + 1).astype(np.float32)])
    for name in ("running_mean", "running_var"):
        np.testing.assert_allclose(getattr(mine, name).numpy(), getattr(theirs, name).numpy(), rtol=1e-5, atol=1e-6)
    assert not np.allclose(mine.running_mean.numpy(), 0)  # the statistics did move
    mine.eval()
    theirs.eval()
    _compare(torch, mine, theirs, [rng.standard_normal((2, 3, 4, 5)).astype(np.float32)])


def test_rms_norm_vs_torch():
    torch = pytest.importorskip("torch")
    for normalized, eps in (((5,), None), ((3, 5), 1e-4)):
        theirs = torch.nn.RMSNorm(normalized, eps=eps)
        _randomise(torch, theirs)
        mine = nn.RMSNorm(normalized, eps=eps)
        _copy_weights(mine, theirs)
        _compare(torch, mine, theirs, [_rng(8).standard_normal((2, 3, 5)).astype(np.float32)])


def test_norm_argument_errors():
    x = minidl.randn(2, 6, 4)
    with pytest.raises(ValueError, match="normalized_shape"):
        F.layer_norm(x, (5,))
    with pytest.raises(ValueError, match="divisible"):
        F.group_norm(x, 4)
    with pytest.raises(ValueError, match="divisible"):
        nn.GroupNorm(4, 6)
    with pytest.raises(ValueError, match="spatial"):
        F.instance_norm(minidl.randn(2, 3, 1))


# --------------------------------------------------------------------------- embedding vs torch
def test_embedding_padding_idx_vs_torch():
    torch = pytest.importorskip("torch")
    theirs = torch.nn.Embedding(10, 4, padding_idx=2)
    mine = nn.Embedding(10, 4, padding_idx=2)
    assert not np.any(mine.weight.numpy()[2]) and np.any(mine.weight.numpy()[3])  # the padding row starts at zero
    with torch.no_grad():
        theirs.weight[2] = 1.5  # a non-zero padding row: still no gradient, and its values are looked up
    _copy_weights(mine, theirs)
    idx = np.array([[2, 5, 5, 0], [9, 2, 1, 5]])
    _compare(torch, mine, theirs, [idx])
    assert not np.any(mine.weight.grad.numpy()[2])
    assert np.all(mine.weight.grad.numpy()[5] != 0)
    assert repr(mine) == repr(theirs)


@pytest.mark.parametrize("kwargs", [{"scale_grad_by_freq": True}, {"padding_idx": -1}, {"max_norm": 1.0},
                                    {"max_norm": 0.5, "norm_type": 1.0}])
def test_embedding_options_vs_torch(kwargs):
    torch = pytest.importorskip("torch")
    theirs = torch.nn.Embedding(7, 3, **kwargs)
    mine = nn.Embedding(7, 3, **kwargs)
    _copy_weights(mine, theirs)
    idx = np.array([6, 0, 3, 3, 3, 6])
    _compare(torch, mine, theirs, [idx])
    # max_norm renormalises the looked-up rows of the table in place, as PyTorch
    np.testing.assert_allclose(mine.weight.numpy(), theirs.weight.detach().numpy(), rtol=1e-6, atol=1e-7)


def test_embedding_from_pretrained_and_errors():
    table = np.arange(12, dtype=np.float32).reshape(4, 3)
    frozen = nn.Embedding.from_pretrained(minidl.tensor(table))
    assert not frozen.weight.requires_grad
    np.testing.assert_array_equal(frozen(minidl.tensor([3, 1])).numpy(), table[[3, 1]])
    trainable = nn.Embedding.from_pretrained(table, freeze=False, padding_idx=0)
    out = trainable(minidl.tensor([[0, 1], [1, 1]]))
    assert out.shape == (2, 2, 3)
    out.sum().backward()
    np.testing.assert_array_equal(trainable.weight.grad.numpy()[:, 0], [0, 3, 0, 0])
    with pytest.raises(IndexError):
        trainable(minidl.tensor([4]))
    with pytest.raises(TypeError):
        trainable(minidl.tensor([1.0]))


# --------------------------------------------------------------------------- recurrent layers vs torch
def _states(rng, mode, layers, batch, hidden):
    h = (rng.standard_normal((layers, batch, hidden)) * 0.5).astype(np.float32)
    if mode == "LSTM":
        return (h, (rng.standard_normal((layers, batch, hidden)) * 0.5).astype(np.float32))
    return h


@pytest.mark.parametrize("mode", ["LSTM", "GRU", "RNN"])
@pytest.mark.parametrize("batch_first", [False, True])
def test_recurrent_two_layers_bidirectional_vs_torch(mode, batch_first):
    torch = pytest.importorskip("torch")
    kwargs = dict(num_layers=2, bidirectional=True, batch_first=batch_first)
    theirs = getattr(torch.nn, mode)(3, 4, **kwargs)
    mine = getattr(nn, mode)(3, 4, **kwargs)
    _copy_weights(mine, theirs)
    rng = _rng(9)
    x = rng.standard_normal((2, 5, 3) if batch_first else (5, 2, 3)).astype(np.float32)
    _compare(torch, mine, theirs, [x, _states(rng, mode, 4, 2, 4)])
    _compare(torch, mine, theirs, [x])  # no initial state: zeros
    assert repr(mine) == repr(theirs)


@pytest.mark.parametrize("mode,kwargs", [
    ("RNN", {"nonlinearity": "relu", "bias": False}),
    ("LSTM", {"bias": False, "num_layers": 3}),
    ("GRU", {"num_layers": 2, "dropout": 0.5}),  # dropout is off in eval mode
])
def test_recurrent_options_vs_torch(mode, kwargs):
    torch = pytest.importorskip("torch")
    theirs = getattr(torch.nn, mode)(2, 3, **kwargs).eval()
    mine = getattr(nn, mode)(2, 3, **kwargs).eval()
    _copy_weights(mine, theirs)
    x = _rng(10).standard_normal((4, 2, 2)).astype(np.float32)
    _compare(torch, mine, theirs, [x])
    assert repr(mine) == repr(theirs)


@pytest.mark.parametrize("mode", ["LSTM", "GRU", "RNN"])
def test_recurrent_unbatched_vs_torch(mode):
    torch = pytest.importorskip("torch")
    theirs = getattr(torch.nn, mode)(3, 2, bidirectional=True)
    mine = getattr(nn, mode)(3, 2, bidirectional=True)
    _copy_weights(mine, theirs)
    rng = _rng(11)
    state = _states(rng, mode, 2, 1, 2)
    state = tuple(s[:, 0] for s in state) if mode == "LSTM" else state[:, 0]
    _compare(torch, mine, theirs, [rng.standard_normal((4, 3)).astype(np.float32), state])


def test_dropout_between_layers_in_training():
    """dropout=1 zeroes the first layer's output in training: the second layer then sees only zeros."""
    lstm = nn.LSTM(3, 2, num_layers=2, dropout=1.0)
    second = nn.LSTM(2, 2)
    second.load_state_dict({k.replace("_l1", "_l0"): v for k, v in lstm.state_dict().items() if "_l1" in k})
    x = minidl.randn(4, 2, 3)
    out, (h, c) = lstm(x)
    expected, (h1, c1) = second(minidl.zeros(4, 2, 2))
    np.testing.assert_allclose(out.numpy(), expected.numpy(), rtol=1e-6)
    np.testing.assert_allclose(h.numpy()[1], h1.numpy()[0], rtol=1e-6)
    lstm.eval()
    assert not np.allclose(lstm(x)[0].numpy(), expected.numpy())  # no dropout when evaluating


@pytest.mark.parametrize("cls,kwargs", [("RNNCell", {}), ("RNNCell", {"nonlinearity": "relu", "bias": False}),
                                        ("LSTMCell", {}), ("GRUCell", {}), ("GRUCell", {"bias": False})])
def test_cells_vs_torch(cls, kwargs):
    torch = pytest.importorskip("torch")
    theirs = getattr(torch.nn, cls)(3, 4, **kwargs)
    mine = getattr(nn, cls)(3, 4, **kwargs)
    _copy_weights(mine, theirs)
    rng = _rng(12)
    x = rng.standard_normal((5, 3)).astype(np.float32)
    h = rng.standard_normal((5, 4)).astype(np.float32)
    state = (h, rng.standard_normal((5, 4)).astype(np.float32)) if cls == "LSTMCell" else h
    _compare(torch, mine, theirs, [x, state])
    _compare(torch, mine, theirs, [x])  # zero state
    _compare(torch, mine, theirs, [x[0]])  # unbatched
    assert repr(mine) == repr(theirs)


@pytest.mark.parametrize("mode", ["LSTM", "GRU", "RNN"])
def test_recurrent_state_dict_and_init_as_torch(mode):
    torch = pytest.importorskip("torch")
    theirs = getattr(torch.nn, mode)(3, 16, num_layers=2, bidirectional=True)
    mine = getattr(nn, mode)(3, 16, num_layers=2, bidirectional=True)
    assert [(k, tuple(v.shape)) for k, v in mine.state_dict().items()] == \
        [(k, tuple(v.shape)) for k, v in theirs.state_dict().items()]
    bound = 1 / np.sqrt(16)
    values = np.concatenate([p.numpy().ravel() for p in mine.parameters()])
    assert values.min() >= -bound and values.max() <= bound
    assert values.min() < -0.8 * bound and values.max() > 0.8 * bound  # uniform over the whole interval
    for cell in ("RNNCell", "LSTMCell", "GRUCell"):
        assert [(k, tuple(v.shape)) for k, v in getattr(nn, cell)(3, 5).state_dict().items()] == \
            [(k, tuple(v.shape)) for k, v in getattr(torch.nn, cell)(3, 5).state_dict().items()]


def test_norm_state_dicts_as_torch():
    torch = pytest.importorskip("torch")
    pairs = [(nn.LayerNorm((3, 4)), torch.nn.LayerNorm((3, 4))), (nn.GroupNorm(2, 4), torch.nn.GroupNorm(2, 4)),
             (nn.InstanceNorm2d(3, affine=True, track_running_stats=True),
              torch.nn.InstanceNorm2d(3, affine=True, track_running_stats=True)),
             (nn.InstanceNorm1d(3), torch.nn.InstanceNorm1d(3)), (nn.RMSNorm(4), torch.nn.RMSNorm(4)),
             (nn.Embedding(5, 2), torch.nn.Embedding(5, 2))]
    for mine, theirs in pairs:
        assert [(k, tuple(v.shape)) for k, v in mine.state_dict().items()] == \
            [(k, tuple(v.shape)) for k, v in theirs.state_dict().items()], type(mine).__name__


def test_recurrent_state_shape_errors():
    lstm = nn.LSTM(3, 2, num_layers=2)
    with pytest.raises(ValueError, match="h_0"):
        lstm(minidl.randn(4, 1, 3), (minidl.zeros(1, 1, 2), minidl.zeros(2, 1, 2)))
    with pytest.raises(ValueError, match="input_size"):
        lstm(minidl.randn(4, 1, 5))
    with pytest.raises(ValueError, match="nonlinearity"):
        nn.RNN(3, 2, nonlinearity="sigmoid")


# --------------------------------------------------------------------------- embedding bag vs torch
@pytest.mark.parametrize("mode", ["sum", "mean", "max"])
@pytest.mark.parametrize("layout", ["offsets", "offsets, last included, padding", "2-D"])
def test_embedding_bag_vs_torch(mode, layout):
    torch = pytest.importorskip("torch")
    kwargs = {"mode": mode}
    if "last" in layout:
        kwargs.update(include_last_offset=True, padding_idx=3)
    theirs = torch.nn.EmbeddingBag(8, 3, **kwargs)
    mine = nn.EmbeddingBag(8, 3, **kwargs)
    _copy_weights(mine, theirs)
    if layout == "2-D":
        inputs = [np.array([[1, 3, 3], [7, 0, 3]])]
    elif "last" in layout:  # bags [0, 3) (with padding), [3, 3) empty, [3, 6), [6, 7) padding only
        inputs = [np.array([1, 3, 5, 2, 2, 6, 3]), np.array([0, 3, 3, 6, 7])]
    else:  # bags [0, 2), [2, 2) empty, [2, 5)
        inputs = [np.array([4, 1, 1, 6, 2]), np.array([0, 2, 2])]
    call = lambda m, *a: m(*a)  # noqa: E731
    _compare(torch, mine, theirs, inputs, call)
    assert repr(mine) == repr(theirs)


def test_embedding_bag_per_sample_weights_vs_torch():
    torch = pytest.importorskip("torch")
    theirs = torch.nn.EmbeddingBag(6, 2, mode="sum")
    mine = nn.EmbeddingBag(6, 2, mode="sum")
    _copy_weights(mine, theirs)
    idx, offsets = np.array([5, 0, 0, 2]), np.array([0, 1])
    psw = _rng(13).standard_normal(4).astype(np.float32)
    _compare(torch, mine, theirs, [idx, offsets, psw])
    with pytest.raises(ValueError, match="per_sample_weights"):
        F.embedding_bag(minidl.tensor(idx), mine.weight, minidl.tensor(offsets), mode="mean",
                        per_sample_weights=minidl.tensor(psw))


# --------------------------------------------------------------------------- backend dispatch
def test_gpu_arrays_reach_the_cuda_kernel_modules(monkeypatch):
    """A CuPy-looking array sends LayerNorm, GroupNorm and the LSTM cell to kernels/cuda/layer_norm and recurrent."""
    import sys
    import types

    from minidl.backend import kernels_for
    from minidl.functions.layer_norm import GroupNorm, LayerNorm
    from minidl.functions.recurrent import LSTMCell

    class FakeCupyArray(np.ndarray):
        pass

    FakeCupyArray.__module__ = "cupy._core.core"
    fake = types.ModuleType("cupy")
    fake.ndarray = FakeCupyArray
    fake.stack = lambda arrays, axis=0: np.stack(arrays, axis).view(FakeCupyArray)  # the one CuPy call a Function makes
    monkeypatch.setitem(sys.modules, "cupy", fake)
    calls = []
    for family, cpu, names in (("layer_norm", cpu_ln, ["group_norm_forward", "group_norm_backward",
                                                       "layer_norm_forward", "layer_norm_backward"]),
                               ("recurrent", cpu_rec, ["lstm_cell_forward", "lstm_cell_backward"])):
        module = kernels_for(fake, family)
        assert module.__name__ == f"minidl.kernels.cuda.{family}"
        for name in names:
            def spy(*args, _name=name, _cpu=cpu):
                calls.append(_name)
                return getattr(_cpu, _name)(*(np.asarray(a) if isinstance(a, np.ndarray) else a for a in args))
            monkeypatch.setattr(module, name, spy)
    gpu = lambda a: np.asarray(a, np.float32).view(FakeCupyArray)  # noqa: E731
    rng = _rng(14)
    fn = GroupNorm()
    y = fn(gpu(rng.standard_normal((2, 4, 3))), gpu(np.ones(4)), gpu(np.zeros(4)), num_groups=2)
    fn.backward(gpu(np.ones(y.shape)))
    fn = LayerNorm()
    y = fn(gpu(rng.standard_normal((2, 5))), None, None, normalized_ndim=1)
    fn.backward(gpu(np.ones(y.shape)))
    fn = LSTMCell()
    y = fn(gpu(rng.standard_normal((2, 8))), gpu(rng.standard_normal((2, 8))), gpu(rng.standard_normal((2, 2))))
    fn.backward(gpu(np.ones(y.shape)))
    assert calls == ["group_norm_forward", "group_norm_backward", "layer_norm_forward", "layer_norm_backward",
                     "lstm_cell_forward", "lstm_cell_backward"]
