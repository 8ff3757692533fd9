"""Architecture zoo IV: ConvNeXt-T and ViT-B/16 (torchvision), vit_tiny (timm's vit_tiny_patch16_224), and
stochastic depth as ``minidl.ops`` (torchvision.ops).

Exact parameter counts; logits and gradients equal to torchvision's / timm's with their weights copied in,
on reduced-depth configurations built with the same classes on both sides (the full-size runs are marked
``slow`` and run only with ``MINIDL_SLOW=1``); MAC figures of the cards through ``minidl.summary``.
"""
import os

import numpy as np
import pytest

import minidl
from minidl import models, nn, ops
from minidl.models.convnext import CNBlockConfig, ConvNeXt
from minidl.models.vision_transformer import TimmVisionTransformer, VisionTransformer

slow = pytest.mark.skipif(not os.environ.get("MINIDL_SLOW"), reason="full-size model: set MINIDL_SLOW=1")


# ----------------------------------------------------------------------------- exact counts and cards
PUBLISHED = {"convnext_tiny": 28_589_128, "vit_b_16": 86_567_656, "vit_tiny": 5_717_416}


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_exact_count_and_card(no_init, name):
    assert models.get_model_card(name).num_params == PUBLISHED[name]
    assert models.get_model(name).num_parameters() == PUBLISHED[name]


def test_cards_record_the_published_macs_and_presets():
    card = models.get_model_card
    assert round(card("convnext_tiny").macs / 1e9, 3) == 4.456  # torchvision: 4.456 GFLOPS
    assert round(card("vit_b_16").macs / 1e9, 3) == 17.564  # torchvision: 17.564 GFLOPS
    # vit_tiny: Conv/Linear layers plus the attention products Q K^T and A V (2 x 12 layers x 197^2 x 192)
    assert card("vit_tiny").macs == 1_074_851_328 + 2 * 12 * 197 * 197 * 192
    assert card("convnext_tiny").preset == models.Preset(236, 224)
    assert card("vit_tiny").preset.mean == (0.5, 0.5, 0.5) and card("vit_tiny").preset.interpolation == "bicubic"
    assert {"convnext_tiny", "vit_b_16", "vit_tiny"} <= set(models.list_models())


def test_vit_b_16_macs_from_the_layer_shapes():
    """torchvision's 17.564 G: patchify conv, per layer the q/k/v/out projections, Q K^T and A V, the MLP."""
    tokens, d = 197, 768
    per_layer = tokens * d * 3 * d + tokens * d * d + 2 * tokens * tokens * d + 2 * tokens * d * 4 * d
    total = 196 * d * 3 * 16 * 16 + 12 * per_layer + d * 1000
    assert abs(total - 17.564e9) < 1e6


def _check_card_macs(name):
    card = models.get_model_card(name)
    s = minidl.summary(models.get_model(name), card.input_size, depth=1)
    assert abs(s.total_macs - card.macs) / card.macs < 1e-3, (name, s.total_macs, card.macs)


def test_card_macs_agree_with_summary(zero_init):
    _check_card_macs("vit_tiny")


def test_convnext_card_macs_agree_with_summary_at_64(zero_init):
    """Every ConvNeXt layer but the classifier runs on a grid of (side / 4)^2, (side / 8)^2, ... pixels, so
    its MACs scale with the pixel count: summary at 64x64 times (224 / 64)^2, plus the classifier, is the
    card's 224x224 figure."""
    head = 768 * 1000
    s = minidl.summary(models.convnext_tiny(), (3, 64, 64), depth=1)
    at_224 = (s.total_macs - head) * 49 // 4 + head
    assert abs(at_224 - models.get_model_card("convnext_tiny").macs) / 4.456e9 < 1e-3, at_224


@slow
@pytest.mark.parametrize("name", ["convnext_tiny", "vit_b_16"])
def test_card_macs_agree_with_summary_big(zero_init, name):
    _check_card_macs(name)


def test_summary_counts_attention_products():
    """MultiheadAttention: q/k/v projections (L E^2 + 2 S E^2) and Q K^T, A V (2 L S E); out_proj as a Linear."""
    mha = nn.MultiheadAttention(16, 4, batch_first=True)

    class Cross(nn.Module):
        def __init__(self):
            super().__init__()
            self.attn = mha

        def forward(self, x):
            return self.attn(x[:, :3], x, x, need_weights=False)[0]

    s = minidl.summary(Cross(), (7, 16), batch_size=2)
    length, source, e = 3, 7, 16
    expected = 2 * (length * e * e + 2 * source * e * e + 2 * length * source * e + length * e * e)
    assert s.total_macs == expected


# ----------------------------------------------------------------------------- logits against the references
def _torch():
    return pytest.importorskip("torch")


def _copy_and_compare(torch, ours, reference, x, grads=False):
    """Copy the reference's state_dict into ours (same keys and shapes); compare outputs (and gradients)."""
    assert [(k, tuple(v.shape)) for k, v in ours.state_dict().items()] == \
        [(k, tuple(v.shape)) for k, v in reference.state_dict().items()]
    ours.load_state_dict({k: v.detach().numpy() for k, v in reference.state_dict().items()})
    ours.eval()
    reference.eval()
    xt = torch.from_numpy(x).requires_grad_(grads)
    expected = reference(xt)
    xm = minidl.tensor(x, requires_grad=grads)
    out = ours(xm)
    e = expected.detach().numpy()
    np.testing.assert_allclose(out.detach().numpy(), e, atol=1e-4 * np.abs(e).max() + 1e-6, rtol=1e-3)
    assert np.abs(e).max() > 1e-2  # not a near-zero output that any network would match
    if grads:
        w = np.random.default_rng(1).standard_normal(e.shape).astype(np.float32)
        (expected * torch.from_numpy(w)).sum().backward()
        (out * minidl.tensor(w)).sum().backward()
        g = xt.grad.numpy()
        np.testing.assert_allclose(xm.grad.numpy(), g, atol=1e-4 * np.abs(g).max(), rtol=1e-3)
        ours_params = dict(ours.named_parameters())
        for name, p in reference.named_parameters():
            ref = p.grad.numpy()
            np.testing.assert_allclose(ours_params[name].grad.numpy(), ref, atol=1e-4 * np.abs(ref).max() + 1e-7,
                                       rtol=1e-3, err_msg=name)
    return out


def _randomise_heads(torch, module):
    """Reference initialisations that give near-zero logits (zero ViT heads) are widened."""
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, p in module.named_parameters():
            if "head" in name or "norm" in name or "ln" in name:
                centre = 1.0 if name.endswith("weight") and p.ndim == 1 else 0.0  # LayerNorm scales around 1
                p.copy_(torch.randn(p.shape, generator=g) * 0.5 + centre)


def test_convnext_reduced_equals_torchvision():
    """Two stages of two blocks, layer_scale 0.5 (so that the blocks matter): logits and every gradient."""
    torch = _torch()
    tv_convnext = pytest.importorskip("torchvision.models.convnext")
    setting = [(16, 32, 2), (32, None, 2)]
    torch.manual_seed(0)
    reference = tv_convnext.ConvNeXt([tv_convnext.CNBlockConfig(*s) for s in setting], layer_scale=0.5,
                                     num_classes=10)
    _randomise_heads(torch, reference)
    ours = ConvNeXt([CNBlockConfig(*s) for s in setting], layer_scale=0.5, num_classes=10)
    x = np.random.default_rng(0).standard_normal((2, 3, 32, 32)).astype(np.float32)
    _copy_and_compare(torch, ours, reference, x, grads=True)


def test_convnext_tiny_equals_torchvision_small_input(no_init):
    torch = _torch()
    torchvision = pytest.importorskip("torchvision")
    torch.manual_seed(0)
    reference = torchvision.models.convnext_tiny(layer_scale=0.3)
    x = np.random.default_rng(0).standard_normal((1, 3, 32, 32)).astype(np.float32)
    out = _copy_and_compare(torch, models.convnext_tiny(), reference, x)
    assert out.shape == (1, 1000)


def test_vit_reduced_equals_torchvision():
    torch = _torch()
    tv_vit = pytest.importorskip("torchvision.models.vision_transformer")
    kwargs = dict(image_size=32, patch_size=16, num_layers=2, num_heads=4, hidden_dim=64, mlp_dim=128, num_classes=10)
    torch.manual_seed(0)
    reference = tv_vit.VisionTransformer(**kwargs)
    _randomise_heads(torch, reference)
    x = np.random.default_rng(0).standard_normal((2, 3, 32, 32)).astype(np.float32)
    _copy_and_compare(torch, VisionTransformer(**kwargs), reference, x, grads=True)


def test_vit_reduced_equals_timm():
    torch = _torch()
    timm_vit = pytest.importorskip("timm.models.vision_transformer")
    kwargs = dict(img_size=32, patch_size=16, embed_dim=64, depth=2, num_heads=4, num_classes=10)
    torch.manual_seed(0)
    reference = timm_vit.VisionTransformer(**kwargs)
    _randomise_heads(torch, reference)
    x = np.random.default_rng(0).standard_normal((2, 3, 32, 32)).astype(np.float32)
    _copy_and_compare(torch, TimmVisionTransformer(**kwargs), reference, x, grads=True)


@slow
@pytest.mark.parametrize("name", ["convnext_tiny", "vit_b_16", "vit_tiny"])
def test_full_size_logits_equal_the_reference(name):
    torch = _torch()
    torch.manual_seed(0)
    if name == "vit_tiny":
        timm = pytest.importorskip("timm")
        reference = timm.create_model("vit_tiny_patch16_224")
    else:
        torchvision = pytest.importorskip("torchvision")
        reference = getattr(torchvision.models, name)()
    _randomise_heads(torch, reference)
    x = np.random.default_rng(0).standard_normal((1, 3, 224, 224)).astype(np.float32)
    _copy_and_compare(torch, models.get_model(name), reference, x)


def test_vision_transformers_refuse_other_image_sizes():
    with pytest.raises(ValueError, match="32x32"):
        VisionTransformer(32, 16, 1, 2, 8, 16)(minidl.zeros(1, 3, 48, 48))
    with pytest.raises(ValueError, match="32x32"):
        TimmVisionTransformer(img_size=32, patch_size=16, embed_dim=8, depth=1, num_heads=2)(minidl.zeros(1, 3, 64, 64))


def test_stochastic_depth_rates_grow_with_depth(no_init):
    probs = [m.p for m in models.convnext_tiny().modules() if isinstance(m, ops.StochasticDepth)]
    assert len(probs) == 18 and probs[0] == 0.0 and abs(probs[-1] - 0.1) < 1e-12
    assert np.all(np.diff(probs) > 0)


# ----------------------------------------------------------------------------- minidl.ops.stochastic_depth
def test_stochastic_depth_is_one_copy_in_ops():
    from minidl.models import _utils, efficientnet

    assert _utils.StochasticDepth is ops.StochasticDepth and efficientnet.StochasticDepth is ops.StochasticDepth
    assert _utils.stochastic_depth is ops.stochastic_depth


def test_stochastic_depth_modes_and_statistics():
    x = minidl.ones(4000, 3)
    assert ops.stochastic_depth(x, 0.3, "row", training=False) is x
    layer = ops.StochasticDepth(0.25, "row")
    assert repr(layer) == "StochasticDepth(p=0.25, mode=row)"
    y = layer(x).numpy()
    assert np.all(y[:, 0:1] == y)  # one draw per row
    assert np.all(np.isclose(y, 0.0) | np.isclose(y, 1 / 0.75))  # dropped, or kept and rescaled
    assert abs((y[:, 0] == 0).mean() - 0.25) < 0.03
    assert abs(y.mean() - 1.0) < 0.05  # the expectation is kept
    layer.eval()
    assert np.array_equal(layer(x).numpy(), x.numpy())
    batch = ops.stochastic_depth(x, 0.5, "batch").numpy()
    assert len(np.unique(batch)) == 1 and batch[0, 0] in (0.0, 2.0)
    assert np.all(ops.stochastic_depth(x, 1.0, "row").numpy() == 0)
    with pytest.raises(ValueError, match="mode"):
        ops.StochasticDepth(0.1, "column")
    with pytest.raises(ValueError, match="p must be"):
        ops.stochastic_depth(x, -0.1, "row")


def test_stochastic_depth_gradcheck_float64():
    x = minidl.randn(6, 2, 3, dtype="float64", requires_grad=True)

    def fn(t):  # the same mask on every call: a fixed generator
        return ops.stochastic_depth(t, 0.5, "row", generator=np.random.default_rng(7)) * t

    assert minidl.gradcheck(fn, [x])
    kept = fn(x).detach().numpy().reshape(6, -1).any(axis=1)
    assert 0 < kept.sum() < 6  # the check covered dropped and kept rows


def test_stochastic_depth_equals_torchvision_where_deterministic():
    """Values and gradients against torchvision.ops in the cases without randomness (eval, p=0, p=1)."""
    torch = _torch()
    tv_ops = pytest.importorskip("torchvision.ops")
    x = np.random.default_rng(0).standard_normal((4, 3, 2, 2)).astype(np.float32)
    for p, mode, training in [(0.3, "row", False), (0.0, "batch", True), (1.0, "row", True), (1.0, "batch", True)]:
        xt = torch.from_numpy(x).requires_grad_(True)
        xm = minidl.tensor(x, requires_grad=True)
        expected = tv_ops.stochastic_depth(xt, p, mode, training)
        out = ops.stochastic_depth(xm, p, mode, training)
        np.testing.assert_array_equal(out.detach().numpy(), expected.detach().numpy())
        (expected * 2).sum().backward()
        (out * 2).sum().backward()
        np.testing.assert_array_equal(xm.grad.numpy(), xt.grad.numpy())
    assert repr(tv_ops.StochasticDepth(0.25, "row")) == repr(ops.StochasticDepth(0.25, "row"))


def test_stochastic_depth_row_mask_matches_torchvision_statistics():
    """Random masks cannot be compared draw for draw: both keep each row with probability 1 - p, scaled."""
    torch = _torch()
    tv_ops = pytest.importorskip("torchvision.ops")
    torch.manual_seed(0)
    x = np.ones((20000, 1), dtype=np.float32)
    theirs = tv_ops.stochastic_depth(torch.from_numpy(x), 0.2, "row", True).numpy()
    ours = ops.stochastic_depth(minidl.tensor(x), 0.2, "row", True).numpy()
    assert np.array_equal(np.unique(theirs), np.unique(ours)) and np.allclose(np.unique(ours), [0.0, 1.25])
    assert abs((ours == 0).mean() - (theirs == 0).mean()) < 0.02
