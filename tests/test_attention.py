"""Attention and transformer layers (issue 16): the fused softmax kernels, nn.MultiheadAttention, and the
Transformer encoder/decoder layers and stacks, against the float64 reference and against PyTorch with
copied state_dicts (outputs, attention weights, input and parameter gradients)."""
from __future__ import annotations

import numpy as np
import pytest

import minidl
import minidl.nn as nn
from minidl.functions.softmax_fused import SoftmaxLastDim
from minidl.kernels.cpu import softmax as cpu_softmax
from minidl.kernels.reference import softmax as ref_softmax
from minidl.tensor import apply


def _close(got, want, tol):
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=tol, atol=tol)


# --------------------------------------------------------------------------- fused softmax


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_softmax_kernel_matches_reference(dtype):
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((3, 4, 9)) * 4).astype(dtype)
    x[0, 1, :5] = -np.inf  # masked keys get probability 0
    x[1, 2, 3] = 500.0  # exp would overflow without the max subtracted
    y = cpu_softmax.softmax_forward(x)
    assert y.dtype == dtype and y.shape == x.shape
    tol = 1e-6 if dtype == np.float32 else 1e-12
    _close(y, ref_softmax.softmax_forward(x), tol)
    _close(y.sum(axis=-1), np.ones((3, 4)), tol)
    assert not y[0, 1, :5].any() and y[1, 2, 3] == pytest.approx(1.0)
    g = rng.standard_normal(x.shape).astype(dtype)
    dx = cpu_softmax.softmax_backward(y, g)
    assert dx.dtype == dtype
    _close(dx, ref_softmax.softmax_backward(y, g), tol)
    _close(dx.sum(axis=-1), np.zeros((3, 4)), tol)  # softmax is shift invariant: the gradient sums to 0


def test_softmax_kernel_edge_cases():
    assert np.isnan(cpu_softmax.softmax_forward(np.full((2, 3), -np.inf))).all()  # no defined softmax: NaN, as torch
    x = np.array([[0.0, 1.0, -np.inf], [-np.inf, -np.inf, -np.inf]], np.float32)
    y = cpu_softmax.softmax_forward(x, safe=True)  # PyTorch's _safe_softmax: a fully masked row is zeros
    _close(y, ref_softmax.softmax_forward(x, safe=True), 1e-6)
    assert not y[1].any() and y[0].sum() == pytest.approx(1.0)
    assert not cpu_softmax.softmax_backward(y, np.ones_like(y))[1].any()
    assert cpu_softmax.softmax_forward(np.zeros((0, 4), np.float32)).shape == (0, 4)
    _close(cpu_softmax.softmax_forward(np.array([1.0, 2.0, 3.0])), ref_softmax.softmax_forward([1.0, 2.0, 3.0]), 1e-12)
    with pytest.raises(TypeError, match="float32 or float64"):
        cpu_softmax.softmax_forward(np.arange(4))
    with pytest.raises(ValueError, match="shape"):
        cpu_softmax.softmax_backward(np.ones((2, 3)), np.ones((3, 2)))


def test_fused_softmax_vs_torch_float32():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    x = (rng.standard_normal((2, 3, 6)) * 3).astype(np.float32)
    g = rng.standard_normal(x.shape).astype(np.float32)
    t = torch.tensor(x, requires_grad=True)
    torch.softmax(t, dim=-1).backward(torch.tensor(g))
    m = minidl.tensor(x, requires_grad=True)
    y = apply(SoftmaxLastDim, m)
    y.backward(minidl.tensor(g))
    assert y.dtype == np.float32
    _close(y.numpy(), torch.softmax(t, -1).detach().numpy(), 1e-6)
    _close(m.grad.numpy(), t.grad.numpy(), 1e-6)


def test_fused_softmax_gradcheck_float64():
    x = minidl.randn(2, 5, dtype="float64", requires_grad=True)
    assert minidl.gradcheck(lambda a: apply(SoftmaxLastDim, a), [x])


@pytest.mark.parametrize("backend", ["cpu", "cuda", "reference"])
def test_every_backend_supplies_the_softmax_primitives(backend):
    import importlib

    module = importlib.import_module(f"minidl.kernels.{backend}.softmax")
    assert callable(module.softmax_forward) and callable(module.softmax_backward)


@pytest.mark.cudasim
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cuda_softmax_matches_cpu(dtype):
    pytest.importorskip("numba.cuda")
    from minidl.kernels.cuda import softmax as cuda_softmax

    rng = np.random.default_rng(2)
    x = (rng.standard_normal((3, 11)) * 3).astype(dtype)  # 11 > 8 threads: the strided loop runs twice
    x[1, :4] = -np.inf
    y = cuda_softmax.softmax_forward(x)
    tol = 1e-6 if dtype == np.float32 else 1e-12
    _close(y, cpu_softmax.softmax_forward(x), tol)
    x[2] = -np.inf  # a fully masked row: NaN, or zeros when safe
    assert np.isnan(cuda_softmax.softmax_forward(x)[2]).all()
    _close(cuda_softmax.softmax_forward(x, safe=True), cpu_softmax.softmax_forward(x, safe=True), tol)
    g = rng.standard_normal(x.shape).astype(dtype)
    _close(cuda_softmax.softmax_backward(y, g), cpu_softmax.softmax_backward(y, g), tol)


# --------------------------------------------------------------------------- MultiheadAttention against torch


def _copy_weights(module, torch_module):
    """Load torch_module's state_dict into module after checking that the keys and shapes agree."""
    ours, theirs = module.state_dict(), torch_module.state_dict()
    assert list(ours) == list(theirs)
    assert [tuple(v.shape) for v in ours.values()] == [tuple(v.shape) for v in theirs.values()]
    module.load_state_dict({k: v.detach().numpy() for k, v in theirs.items()})


def _mask(kind, n, heads, length, source, rng, torch):
    """(attn_mask, key_padding_mask) as torch tensors for a mask kind; no query row is fully masked."""
    bool_2d = rng.random((length, source)) < 0.4
    bool_2d[:, 0] = False
    float_2d = rng.standard_normal((length, source)).astype(np.float32)
    bool_3d = rng.random((n * heads, length, source)) < 0.4
    bool_3d[:, :, 1] = False
    float_3d = rng.standard_normal((n * heads, length, source)).astype(np.float32)
    padding = np.zeros((n, source), dtype=bool)
    padding[-1, -2:] = True
    masks = {
        "none": (None, None),
        "attn bool 2-D": (bool_2d, None),
        "attn float 2-D": (float_2d, None),
        "attn bool 3-D": (bool_3d, None),
        "attn float 3-D": (float_3d, None),
        "padding bool": (None, padding),
        "padding float": (None, rng.standard_normal((n, source)).astype(np.float32)),
        "both bool": (bool_2d, padding),
    }
    return tuple(None if m is None else torch.tensor(m) for m in masks[kind])


MASK_KINDS = ["none", "attn bool 2-D", "attn float 2-D", "attn bool 3-D", "attn float 3-D", "padding bool",
              "padding float", "both bool"]


def _run_mha(torch, options, call, n=2, length=4, source=5, seed=0):
    """Run torch's and minidl's MHA (copied weights) on the same inputs; return both outputs and gradients."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    embed, heads = 8, 2
    kdim, vdim = options.get("kdim") or embed, options.get("vdim") or embed
    tm = torch.nn.MultiheadAttention(embed, heads, **options)
    mm = nn.MultiheadAttention(embed, heads, **options)
    _copy_weights(mm, tm)
    batch_first = options.get("batch_first", False)

    def shape(s, e):
        return (n, s, e) if batch_first else (s, n, e)

    arrays = [rng.standard_normal(shape(length, embed)), rng.standard_normal(shape(source, kdim)),
              rng.standard_normal(shape(source, vdim))]
    arrays = [a.astype(np.float32) for a in arrays]
    attn_mask, padding = _mask(call.pop("mask", "none"), n, heads, length, source, rng, torch)
    t_in = [torch.tensor(a, requires_grad=True) for a in arrays]
    m_in = [minidl.tensor(a, requires_grad=True) for a in arrays]
    t_out, t_w = tm(*t_in, attn_mask=attn_mask, key_padding_mask=padding, **call)
    m_out, m_w = mm(*m_in, attn_mask=None if attn_mask is None else attn_mask.numpy(),
                    key_padding_mask=None if padding is None else padding.numpy(), **call)
    # A loss reading the output and, when returned, the weights: both paths of the backward run.
    g = rng.standard_normal(t_out.shape).astype(np.float32)
    t_loss = (t_out * torch.tensor(g)).sum()
    m_loss = (m_out * minidl.tensor(g)).sum()
    if t_w is not None:
        gw = rng.standard_normal(t_w.shape).astype(np.float32)
        t_loss = t_loss + (t_w * torch.tensor(gw)).sum()
        m_loss = m_loss + (m_w * minidl.tensor(gw)).sum()
    t_loss.backward()
    m_loss.backward()
    return (tm, t_in, t_out, t_w), (mm, m_in, m_out, m_w)


def _assert_same(torch_run, minidl_run, tol=2e-5):
    tm, t_in, t_out, t_w = torch_run
    mm, m_in, m_out, m_w = minidl_run
    assert m_out.shape == tuple(t_out.shape) and m_out.dtype == np.float32
    _close(m_out.numpy(), t_out.detach().numpy(), tol)
    if t_w is None:
        assert m_w is None
    else:
        assert m_w.shape == tuple(t_w.shape)
        _close(m_w.numpy(), t_w.detach().numpy(), tol)
    for m, t in zip(m_in, t_in):
        _close(m.grad.numpy(), t.grad.numpy(), tol)
    t_params = dict(tm.named_parameters())
    for name, p in mm.named_parameters():
        _close(p.grad.numpy(), t_params[name].grad.numpy(), tol)


@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("mask", MASK_KINDS)
def test_mha_masks_vs_torch(batch_first, mask):
    torch = pytest.importorskip("torch")
    _assert_same(*_run_mha(torch, {"batch_first": batch_first}, {"mask": mask}))


@pytest.mark.parametrize("need_weights,average", [(True, True), (True, False), (False, True)])
@pytest.mark.parametrize("options", [{"kdim": 5, "vdim": 3}, {"bias": False, "batch_first": True},
                                     {"add_bias_kv": True}, {"add_zero_attn": True, "batch_first": True}],
                         ids=["kdim-vdim", "no-bias", "bias-kv", "zero-attn"])
def test_mha_options_vs_torch(options, need_weights, average):
    torch = pytest.importorskip("torch")
    call = {"need_weights": need_weights, "average_attn_weights": average, "mask": "both bool"}
    _assert_same(*_run_mha(torch, options, call))


def test_mha_unbatched_and_causal_vs_torch():
    torch = pytest.importorskip("torch")
    torch.manual_seed(3)
    tm = torch.nn.MultiheadAttention(6, 3)
    mm = nn.MultiheadAttention(6, 3)
    _copy_weights(mm, tm)
    x = np.random.default_rng(3).standard_normal((4, 6)).astype(np.float32)  # (L, E), no batch
    causal = torch.nn.Transformer.generate_square_subsequent_mask(4)
    for need_weights in (True, False):
        t_out, t_w = tm(*[torch.tensor(x)] * 3, attn_mask=causal, is_causal=True, need_weights=need_weights)
        m_out, m_w = mm(*[minidl.tensor(x)] * 3, attn_mask=causal.numpy(), is_causal=True, need_weights=need_weights)
        assert m_out.shape == (4, 6)
        _close(m_out.numpy(), t_out.detach().numpy(), 2e-5)
        if need_weights:
            assert m_w.shape == (4, 4)
            _close(m_w.numpy(), t_w.detach().numpy(), 2e-5)
            assert not np.triu(m_w.numpy(), k=1).any()  # no query attends to a later position


def test_mha_fully_masked_query_vs_torch():
    """A query with every key masked: NaN weights and output with need_weights (torch's softmax), zero attention
    output and zero gradients without (torch's scaled_dot_product_attention)."""
    torch = pytest.importorskip("torch")
    torch.manual_seed(8)
    tm = torch.nn.MultiheadAttention(4, 2, batch_first=True)
    with torch.no_grad():
        tm.in_proj_bias.normal_()
        tm.out_proj.bias.normal_()
    mm = nn.MultiheadAttention(4, 2, batch_first=True)
    _copy_weights(mm, tm)
    x = np.random.default_rng(8).standard_normal((2, 3, 4)).astype(np.float32)
    mask = np.zeros((3, 3), dtype=bool)
    mask[1] = True  # query 1 may attend to nothing
    t_x, m_x = torch.tensor(x, requires_grad=True), minidl.tensor(x, requires_grad=True)
    t_out = tm(t_x, t_x, t_x, attn_mask=torch.tensor(mask), need_weights=False)[0]
    m_out = mm(m_x, m_x, m_x, attn_mask=mask, need_weights=False)[0]
    t_out.sum().backward()
    m_out.sum().backward()
    _close(m_out.numpy(), t_out.detach().numpy(), 2e-5)
    _close(m_out.numpy()[:, 1], np.broadcast_to(mm.out_proj.bias.numpy(), (2, 4)), 1e-6)  # only the bias is left
    _close(m_x.grad.numpy(), t_x.grad.numpy(), 2e-5)
    with torch.no_grad():
        t_out, t_w = tm(*[torch.tensor(x)] * 3, attn_mask=torch.tensor(mask))
    m_out, m_w = mm(*[minidl.tensor(x)] * 3, attn_mask=mask)
    np.testing.assert_array_equal(np.isnan(m_w.numpy()), np.isnan(t_w.numpy()))
    np.testing.assert_array_equal(np.isnan(m_out.numpy()), np.isnan(t_out.numpy()))
    assert np.isnan(m_out.numpy()[:, 1]).all() and not np.isnan(m_out.numpy()[:, 0]).any()


def test_mha_errors_follow_torch():
    torch = pytest.importorskip("torch")
    with pytest.raises(AssertionError, match="divisible"):
        torch.nn.MultiheadAttention(6, 4)
    with pytest.raises(AssertionError, match="divisible"):
        nn.MultiheadAttention(6, 4)
    mha = nn.MultiheadAttention(4, 2)
    x = minidl.randn(3, 2, 4)
    with pytest.raises(RuntimeError, match="is_causal"):
        mha(x, x, x, is_causal=True)
    with pytest.raises(RuntimeError, match="2D attn_mask"):
        mha(x, x, x, attn_mask=np.zeros((3, 4), bool))
    with pytest.raises(RuntimeError, match="3D attn_mask"):
        mha(x, x, x, attn_mask=np.zeros((2, 3, 3), bool))
    with pytest.raises(AssertionError, match="only bool and floating"):
        mha(x, x, x, attn_mask=np.zeros((3, 3), np.int64))
    with pytest.raises(AssertionError, match="key_padding_mask"):
        mha(x, x, x, key_padding_mask=np.zeros((3, 3), bool))


def test_mha_init_follows_torch():
    minidl.manual_seed(0)
    mha = nn.MultiheadAttention(64, 4, add_bias_kv=True)
    bound = np.sqrt(6.0 / (64 + 3 * 64))  # xavier_uniform on (3E, E)
    w = mha.in_proj_weight.numpy()
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.9 * bound
    assert w.std() == pytest.approx(bound / np.sqrt(3), rel=0.05)
    assert not mha.in_proj_bias.numpy().any() and not mha.out_proj.bias.numpy().any()
    assert mha.bias_k.shape == (1, 1, 64) and mha.bias_k.numpy().std() > 0
    separate = nn.MultiheadAttention(8, 2, kdim=3, vdim=5, bias=False)
    assert separate.in_proj_weight is None and separate.in_proj_bias is None and separate.out_proj.bias is None
    assert separate.k_proj_weight.shape == (8, 3) and separate.v_proj_weight.shape == (8, 5)


def test_mha_dropout_only_in_training():
    minidl.manual_seed(1)
    mha = nn.MultiheadAttention(8, 2, dropout=0.5, batch_first=True)
    x = minidl.randn(2, 6, 8)
    mha.eval()
    out_eval, w_eval = mha(x, x, x, average_attn_weights=False)
    _close(w_eval.numpy().sum(axis=-1), np.ones((2, 2, 6)), 1e-5)
    out_again, _ = mha(x, x, x)
    _close(out_again.numpy(), out_eval.numpy(), 0)  # eval: deterministic, no dropout
    mha.train()
    out_train, w_train = mha(x, x, x, average_attn_weights=False)
    w = w_train.numpy()
    kept = w != 0
    assert 0.3 < kept.mean() < 0.7  # about half the weights dropped
    _close(w[kept], 2 * w_eval.numpy()[kept], 1e-5)  # the rest scaled by 1 / (1 - p)
    assert not np.allclose(out_train.numpy(), out_eval.numpy())


def test_mha_gradcheck_float64():
    with nn.init.skipped():
        mha = nn.MultiheadAttention(4, 2, kdim=3, batch_first=True, dtype=np.float64)
    rng = np.random.default_rng(4)
    for p in mha.parameters():
        p.data[...] = rng.standard_normal(p.shape) * 0.5
    padding = np.array([[False, False, True], [False, False, False]])
    q = minidl.tensor(rng.standard_normal((2, 2, 4)), requires_grad=True)
    k = minidl.tensor(rng.standard_normal((2, 3, 3)), requires_grad=True)
    v = minidl.tensor(rng.standard_normal((2, 3, 4)), requires_grad=True)
    assert minidl.gradcheck(lambda a, b, c: mha(a, b, c, key_padding_mask=padding), [q, k, v])
    mask = minidl.tensor(rng.standard_normal((2, 3)), requires_grad=True)  # a learned float mask stays in the graph
    assert minidl.gradcheck(lambda a, m: mha(a, k, v, attn_mask=m)[0], [q, mask])


# --------------------------------------------------------------------------- transformer layers against torch


def _layer_options(batch_first, norm_first, activation):
    return dict(d_model=8, nhead=2, dim_feedforward=12, dropout=0.0, activation=activation,
                batch_first=batch_first, norm_first=norm_first)


def _assert_params_grads(module, torch_module, tol):
    t_params = dict(torch_module.named_parameters())
    names = [name for name, _ in module.named_parameters()]
    assert names == list(t_params)
    for name, p in module.named_parameters():
        _close(p.grad.numpy(), t_params[name].grad.numpy(), tol)


# Each option both ways, in four runs (the stacks are the slowest tests here).
@pytest.mark.parametrize("batch_first,norm_first,activation,training", [
    (False, False, "relu", False), (True, True, "gelu", True), (True, False, "gelu", False), (False, True, "relu", True),
])
def test_encoder_decoder_stacks_vs_torch(batch_first, norm_first, activation, training):
    torch = pytest.importorskip("torch")
    torch.manual_seed(5)
    rng = np.random.default_rng(5)
    kw = _layer_options(batch_first, norm_first, activation)
    t_enc = torch.nn.TransformerEncoder(torch.nn.TransformerEncoderLayer(**kw), 2, norm=torch.nn.LayerNorm(8),
                                        enable_nested_tensor=False)
    m_enc = nn.TransformerEncoder(nn.TransformerEncoderLayer(**kw), 2, norm=nn.LayerNorm(8),
                                  enable_nested_tensor=False)
    t_dec = torch.nn.TransformerDecoder(torch.nn.TransformerDecoderLayer(**kw), 2)
    m_dec = nn.TransformerDecoder(nn.TransformerDecoderLayer(**kw), 2)
    _copy_weights(m_enc, t_enc)
    _copy_weights(m_dec, t_dec)
    for module in (t_enc, m_enc, t_dec, m_dec):
        module.train(training)
    src = rng.standard_normal((2, 5, 8) if batch_first else (5, 2, 8)).astype(np.float32)
    tgt = rng.standard_normal((2, 4, 8) if batch_first else (4, 2, 8)).astype(np.float32)
    padding = np.zeros((2, 5), dtype=bool)
    padding[1, 3:] = True
    causal = torch.nn.Transformer.generate_square_subsequent_mask(4)
    t_src, t_tgt = torch.tensor(src, requires_grad=True), torch.tensor(tgt, requires_grad=True)
    m_src, m_tgt = minidl.tensor(src, requires_grad=True), minidl.tensor(tgt, requires_grad=True)
    t_mem = t_enc(t_src, src_key_padding_mask=torch.tensor(padding))
    t_out = t_dec(t_tgt, t_mem, tgt_mask=causal, memory_key_padding_mask=torch.tensor(padding))
    m_mem = m_enc(m_src, src_key_padding_mask=padding)
    m_out = m_dec(m_tgt, m_mem, tgt_mask=causal.numpy(), memory_key_padding_mask=padding)
    g = rng.standard_normal(t_out.shape).astype(np.float32)
    (t_out * torch.tensor(g)).sum().backward()
    (m_out * minidl.tensor(g)).sum().backward()
    tol = 5e-5
    _close(m_mem.numpy(), t_mem.detach().numpy(), tol)
    _close(m_out.numpy(), t_out.detach().numpy(), tol)
    _close(m_src.grad.numpy(), t_src.grad.numpy(), tol)
    _close(m_tgt.grad.numpy(), t_tgt.grad.numpy(), tol)
    _assert_params_grads(m_enc, t_enc, tol)
    _assert_params_grads(m_dec, t_dec, tol)


def test_layers_with_callable_activation_and_float_masks_vs_torch():
    torch = pytest.importorskip("torch")
    torch.manual_seed(6)
    rng = np.random.default_rng(6)
    t_layer = torch.nn.TransformerEncoderLayer(8, 2, 12, dropout=0.0, activation=torch.nn.GELU(approximate="tanh"),
                                               layer_norm_eps=1e-3, batch_first=True, bias=False)
    m_layer = nn.TransformerEncoderLayer(8, 2, 12, dropout=0.0, activation=nn.GELU(approximate="tanh"),
                                         layer_norm_eps=1e-3, batch_first=True, bias=False)
    _copy_weights(m_layer, t_layer)
    x = rng.standard_normal((2, 5, 8)).astype(np.float32)
    mask = rng.standard_normal((5, 5)).astype(np.float32)
    t_x, m_x = torch.tensor(x, requires_grad=True), minidl.tensor(x, requires_grad=True)
    t_out = t_layer(t_x, src_mask=torch.tensor(mask))
    m_out = m_layer(m_x, src_mask=mask)
    t_out.sum().backward()
    m_out.sum().backward()
    _close(m_out.numpy(), t_out.detach().numpy(), 5e-5)
    _close(m_x.grad.numpy(), t_x.grad.numpy(), 5e-5)
    _assert_params_grads(m_layer, t_layer, 5e-5)


@pytest.mark.parametrize("norm_first", [False, True])
def test_state_dict_keys_and_shapes_match_torch(norm_first):
    torch = pytest.importorskip("torch")
    kw = dict(d_model=8, nhead=2, dim_feedforward=12, norm_first=norm_first)
    pairs = [
        (nn.MultiheadAttention(8, 2, kdim=3, vdim=5, add_bias_kv=True),
         torch.nn.MultiheadAttention(8, 2, kdim=3, vdim=5, add_bias_kv=True)),
        (nn.TransformerEncoderLayer(**kw), torch.nn.TransformerEncoderLayer(**kw)),
        (nn.TransformerDecoderLayer(**kw, bias=False), torch.nn.TransformerDecoderLayer(**kw, bias=False)),
        (nn.TransformerEncoder(nn.TransformerEncoderLayer(**kw), 3, norm=nn.LayerNorm(8)),
         torch.nn.TransformerEncoder(torch.nn.TransformerEncoderLayer(**kw), 3, norm=torch.nn.LayerNorm(8),
                                     enable_nested_tensor=False)),
        (nn.TransformerDecoder(nn.TransformerDecoderLayer(**kw), 2),
         torch.nn.TransformerDecoder(torch.nn.TransformerDecoderLayer(**kw), 2)),
    ]
    for ours, theirs in pairs:
        mine = {k: tuple(v.shape) for k, v in ours.state_dict().items()}
        assert mine == {k: tuple(v.shape) for k, v in theirs.state_dict().items()}
        assert list(mine) == list(theirs.state_dict())


def test_stacks_are_independent_copies_and_bad_activation_raises():
    layer = nn.TransformerEncoderLayer(8, 2, 12)
    encoder = nn.TransformerEncoder(layer, 2)
    first, second = encoder.layers[0], encoder.layers[1]
    assert first is not layer and first.linear1.weight is not second.linear1.weight
    np.testing.assert_array_equal(first.linear1.weight.numpy(), layer.linear1.weight.numpy())  # deep copies
    first.linear1.weight.data[...] = 0
    assert second.linear1.weight.numpy().any()
    with pytest.raises(RuntimeError, match="relu/gelu"):
        nn.TransformerEncoderLayer(8, 2, activation="tanh")


def test_transformer_model_vs_torch():
    torch = pytest.importorskip("torch")
    torch.manual_seed(7)
    rng = np.random.default_rng(7)
    kw = dict(d_model=8, nhead=2, num_encoder_layers=2, num_decoder_layers=1, dim_feedforward=12, dropout=0.0,
              batch_first=True)
    t_model = torch.nn.Transformer(**kw)
    minidl.manual_seed(7)
    m_model = nn.Transformer(**kw)
    w = m_model.encoder.layers[0].linear1.weight.numpy()  # every matrix re-drawn with xavier_uniform
    assert np.abs(w).max() <= np.sqrt(6.0 / (8 + 12)) and np.abs(w).max() > 0.8 * np.sqrt(6.0 / (8 + 12))
    _copy_weights(m_model, t_model)
    src = rng.standard_normal((2, 5, 8)).astype(np.float32)
    tgt = rng.standard_normal((2, 3, 8)).astype(np.float32)
    t_mask = torch.nn.Transformer.generate_square_subsequent_mask(3)
    m_mask = nn.Transformer.generate_square_subsequent_mask(3)
    assert m_mask.dtype == np.float32
    np.testing.assert_array_equal(m_mask.numpy(), t_mask.numpy())
    t_src, m_src = torch.tensor(src, requires_grad=True), minidl.tensor(src, requires_grad=True)
    t_out = t_model(t_src, torch.tensor(tgt), tgt_mask=t_mask, tgt_is_causal=True)
    m_out = m_model(m_src, minidl.tensor(tgt), tgt_mask=m_mask, tgt_is_causal=True)
    t_out.sum().backward()
    m_out.sum().backward()
    _close(m_out.numpy(), t_out.detach().numpy(), 5e-5)
    _close(m_src.grad.numpy(), t_src.grad.numpy(), 5e-5)
    _assert_params_grads(m_model, t_model, 5e-5)
    with pytest.raises(RuntimeError, match="d_model"):
        m_model(minidl.randn(2, 5, 6), minidl.randn(2, 3, 6))
