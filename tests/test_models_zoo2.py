"""Architecture zoo II: ResNet/ResNeXt/Wide ResNet, pre-activation ResNet, MobileNet v1/v2, EfficientNet,
DenseNet and Xception.

Exact parameter counts (shared/reference/param_counts.md), state_dict names and shapes (against
torchvision/timm when importable, and a few keys and key counts derived from their sources), output
shapes, forward/backward on small inputs, the forward pass against the same network in torch.nn, and
the training-only randomness (dropout, stochastic depth).
"""
import functools
import importlib
import importlib.util
import os

import numpy as np
import pytest
from minidl.models import _utils

import minidl
import minidl.nn.functional as F
from minidl import models, nn

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@functools.cache
def build(name, **kwargs):
    """Each default model is built once per test session (the large ones take a second)."""
    minidl.manual_seed(0)
    return models.get_model(name, **kwargs)


def count(model):
    return sum(p.numel() for p in model.parameters())


def _torch_references():
    """The torch.nn reference builders of benchmarks/models.py (no torchvision needed)."""
    spec = importlib.util.spec_from_file_location("bench_models", os.path.join(ROOT, "benchmarks", "models.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ----------------------------------------------------------------------------- exact counts
PUBLISHED = {
    "resnet18": 11_689_512, "resnet34": 21_797_672, "resnet50": 25_557_032, "resnet101": 44_549_160,
    "resnet152": 60_192_808, "resnext50_32x4d": 25_028_904, "resnext101_32x8d": 88_791_336,
    "wide_resnet50_2": 68_883_240, "preact_resnet50": 25_549_352, "mobilenet_v1": 4_231_976,
    "mobilenet_v2": 3_504_872, "efficientnet_b0": 5_288_548, "efficientnet_b1": 7_794_184,
    "efficientnet_b2": 9_109_994, "efficientnet_b3": 12_233_232, "efficientnet_b4": 19_341_616,
    "efficientnet_b5": 30_389_784, "efficientnet_b6": 43_040_704, "efficientnet_b7": 66_347_960,
    "densenet121": 7_978_856, "densenet161": 28_681_000, "densenet169": 14_149_480, "densenet201": 20_013_928,
    "xception": 22_855_952,
}


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_published_count_exact_and_registered(name):
    builder = models.get_model_builder(name)
    assert builder.published_params == PUBLISHED[name]
    assert count(build(name)) == PUBLISHED[name]


@pytest.mark.parametrize("width, expected", [(0.35, 1_677_128), (0.5, 1_968_680), (0.75, 2_636_424),
                                             (1.0, 3_504_872), (1.3, 5_386_792), (1.4, 6_108_776),
                                             (0.7, 2_481_384)])
def test_mobilenet_v2_width_table(width, expected):
    assert count(models.mobilenet_v2(width_mult=width)) == expected


@pytest.mark.parametrize("width, expected", [(1.0, 4_231_976), (0.75, 2_585_560), (0.5, 1_331_592),
                                             (0.25, 470_072)])
def test_mobilenet_v1_widths(width, expected):
    # 1.0 is timm's mobilenetv1_100; the others are our count with timm's rounding (the paper: 2.6M/1.3M/0.5M)
    assert count(models.mobilenet_v1(width_mult=width)) == expected


def test_mobilenet_v1_width_builders_agree():
    for name, width in [("mobilenet_v1_075", 0.75), ("mobilenet_v1_050", 0.5), ("mobilenet_v1_025", 0.25)]:
        assert count(models.get_model(name)) == count(models.mobilenet_v1(width))


@pytest.mark.parametrize("name, expected", [("resnet18", 11_173_962), ("resnet34", 21_282_122),
                                            ("resnet50", 23_520_842), ("preact_resnet18", 11_172_170),
                                            ("mobilenet_v2", 2_236_682)])
def test_cifar_counts_documented(name, expected):
    model = models.get_model(name, cifar=True, num_classes=10)
    assert count(model) == expected
    module = importlib.import_module(models.get_model_builder(name).__module__)
    assert f"{expected:,}" in module.__doc__


def test_depthwise_separable_layer_count_from_the_slides():
    # C=512 in and out: 512 * (9 + 512) = 266,752 weights against 2,359,296 for the full 3x3 conv
    block = models.mobilenet.DepthwiseSeparableConv(512, 512)
    weights = block.conv_dw.weight.numel() + block.conv_pw.weight.numel()
    assert weights == 266_752 and nn.Conv2d(512, 512, 3, bias=False).weight.numel() == 2_359_296


def test_make_divisible_matches_torchvision_rounding():
    assert _utils.make_divisible(32 * 0.35) == 16  # 8 would lose more than 10%
    assert _utils.make_divisible(24 * 1.4) == 32
    assert _utils.make_divisible(1280 * 1.4) == 1792
    assert _utils.make_divisible(16 * 0.5) == 8
    assert _utils.make_divisible(3, 8) == 8  # never below the divisor
    with pytest.raises(ValueError, match="divisor"):
        _utils.make_divisible(10, 0)


def test_efficientnet_scaling_and_bn_settings():
    b0, b5 = build("efficientnet_b0"), build("efficientnet_b5")
    assert [len(stage) for stage in list(b0.features)[1:-1]] == [1, 2, 2, 3, 3, 4, 1]
    assert b0.classifier[0].p == 0.2 and build("efficientnet_b7").classifier[0].p == 0.5
    # B5-B7 use the TF batch-norm settings, B0-B4 PyTorch's
    bn5 = [m for m in b5.modules() if isinstance(m, nn.BatchNorm2d)]
    bn0 = [m for m in b0.modules() if isinstance(m, nn.BatchNorm2d)]
    assert all(m.eps == 1e-3 and m.momentum == 0.01 for m in bn5)
    assert all(m.eps == 1e-5 and m.momentum == 0.1 for m in bn0)
    # stochastic depth grows linearly from 0 to 0.2 * (15 / 16) over B0's 16 blocks
    probs = [m.p for m in b0.modules() if isinstance(m, _utils.StochasticDepth)]
    assert len(probs) == 16 and probs[0] == 0.0 and probs[-1] == pytest.approx(0.2 * 15 / 16)


# ----------------------------------------------------------------------------- names and shapes
# Keys and key counts read off the reference sources: every BatchNorm2d contributes 5 entries
# (weight, bias, running_mean, running_var, num_batches_tracked).
KEYS = {
    "resnet50": (320, ["conv1.weight", "bn1.num_batches_tracked", "layer1.0.downsample.0.weight",
                       "layer3.5.conv2.weight", "layer4.2.bn3.running_var", "fc.weight", "fc.bias"]),
    "resnext50_32x4d": (320, ["layer1.0.conv2.weight"]),
    "mobilenet_v2": (314, ["features.0.0.weight", "features.0.1.running_mean", "features.1.conv.0.0.weight",
                           "features.1.conv.1.weight", "features.2.conv.0.0.weight", "features.2.conv.3.bias",
                           "features.18.0.weight", "classifier.1.weight"]),
    "efficientnet_b0": (360, ["features.0.0.weight", "features.1.0.block.0.0.weight",
                              "features.1.0.block.1.fc1.weight", "features.1.0.block.1.fc2.bias",
                              "features.2.0.block.2.fc1.weight", "features.8.1.running_var",
                              "classifier.1.weight"]),
    "densenet121": (727, ["features.conv0.weight", "features.norm0.weight",
                          "features.denseblock1.denselayer1.norm1.weight",
                          "features.denseblock4.denselayer16.conv2.weight",
                          "features.transition3.conv.weight", "features.norm5.running_mean", "classifier.bias"]),
    "preact_resnet50": (300, ["stem.conv.weight", "stages.0.blocks.0.downsample.conv.weight",
                              "stages.0.blocks.0.norm1.running_mean", "stages.3.blocks.2.conv3.weight",
                              "norm.weight",
                              "head.fc.weight", "head.fc.bias"]),
    "mobilenet_v1": (164, ["conv_stem.weight", "bn1.weight", "blocks.0.0.conv_dw.weight", "blocks.0.0.bn1.bias",
                           "blocks.3.5.conv_pw.weight", "blocks.4.1.bn2.running_var", "classifier.weight"]),
    "xception": (276, ["conv1.weight", "bn2.running_mean", "block1.skip.weight", "block1.skipbn.weight",
                       "block1.rep.0.conv1.weight", "block1.rep.0.pointwise.weight", "block1.rep.1.weight",
                       "block2.rep.1.conv1.weight", "block4.rep.7.pointwise.weight", "block12.rep.5.weight",
                       "block12.rep.4.pointwise.weight",
                       "conv3.conv1.weight", "conv4.pointwise.weight", "bn4.num_batches_tracked", "fc.weight"]),
}


@pytest.mark.parametrize("name", sorted(KEYS))
def test_state_dict_keys_from_the_sources(name):
    total, keys = KEYS[name]
    state = build(name).state_dict()
    assert len(state) == total
    missing = [k for k in keys if k not in state]
    assert not missing, f"{name}: missing {missing}"


def test_selected_shapes():
    assert build("resnext50_32x4d").state_dict()["layer1.0.conv2.weight"].shape == (128, 4, 3, 3)
    assert build("wide_resnet50_2").state_dict()["layer1.0.conv2.weight"].shape == (128, 128, 3, 3)
    assert build("preact_resnet50").state_dict()["head.fc.weight"].shape == (1000, 2048, 1, 1)
    assert build("efficientnet_b0").state_dict()["features.2.0.block.2.fc1.weight"].shape == (4, 96, 1, 1)
    assert build("mobilenet_v1").state_dict()["blocks.4.1.conv_dw.weight"].shape == (1024, 1, 3, 3)
    assert build("xception").state_dict()["block12.rep.4.pointwise.weight"].shape == (1024, 728, 1, 1)
    assert build("densenet161").state_dict()["classifier.weight"].shape == (1000, 2208)


TORCHVISION = ["resnet18", "resnet50", "resnext50_32x4d", "wide_resnet50_2", "mobilenet_v2", "efficientnet_b0",
               "efficientnet_b5", "densenet121", "densenet161"]


@pytest.mark.parametrize("name", TORCHVISION)
def test_state_dict_matches_torchvision(name):
    torchvision = pytest.importorskip("torchvision")
    reference = getattr(torchvision.models, name)().state_dict()
    ours = build(name).state_dict()
    assert list(ours) == list(reference)
    assert all(tuple(ours[k].shape) == tuple(reference[k].shape) for k in ours)


@pytest.mark.parametrize("name, timm_name", [("preact_resnet50", "resnetv2_50"), ("mobilenet_v1", "mobilenetv1_100"),
                                             ("xception", "legacy_xception")])
def test_state_dict_matches_timm(name, timm_name):
    timm = pytest.importorskip("timm")
    reference = timm.create_model(timm_name).state_dict()
    ours = build(name).state_dict()
    assert sorted(ours) == sorted(reference)
    assert all(tuple(ours[k].shape) == tuple(reference[k].shape) for k in ours)


def test_mac_bearing_layers_are_modules():
    """Every 4-D weight belongs to a Conv2d and every 2-D one to a Linear, so summary can count MACs."""
    for name in ["resnet18", "preact_resnet50", "mobilenet_v1", "mobilenet_v2", "efficientnet_b0", "densenet121",
                 "xception"]:
        model = build(name)
        owners = {}
        for module in model.modules():
            for p in module._parameters.values():
                if p is not None:
                    owners[id(p)] = module
        for key, p in model.named_parameters():
            if p.ndim == 4:
                assert isinstance(owners[id(p)], nn.Conv2d), key
            elif p.ndim == 2:
                assert isinstance(owners[id(p)], nn.Linear), key


def test_summary_runs_when_available():
    if importlib.util.find_spec("minidl.summary") is None:
        pytest.skip("minidl.summary is not there yet")
    summary = importlib.import_module("minidl.summary").summary
    for name in ["mobilenet_v2", "efficientnet_b0", "preact_resnet50"]:
        summary(build(name), (3, 32, 32))


# ----------------------------------------------------------------------------- initialisation
def test_zero_init_residual():
    model = models.resnet50(zero_init_residual=True)
    assert all(np.all(b.bn3.weight.numpy() == 0) for b in [model.layer1[0], model.layer4[2]])
    basic = models.resnet18(zero_init_residual=True)
    assert np.all(basic.layer2[1].bn2.weight.numpy() == 0)
    assert np.all(build("resnet50").layer1[0].bn3.weight.numpy() == 1)


def test_he_init_fan_out():
    w = build("resnet50").layer3[0].conv2.weight.numpy()  # (256, 256, 3, 3): std sqrt(2 / (256 * 9))
    assert w.std() == pytest.approx(np.sqrt(2.0 / (256 * 9)), rel=0.05)
    fc = build("mobilenet_v2").classifier[1].weight.numpy()
    assert fc.std() == pytest.approx(0.01, rel=0.05) and np.all(build("mobilenet_v2").classifier[1].bias.numpy() == 0)


# ----------------------------------------------------------------------------- forward / backward
SMALL = [
    ("resnet18", dict(num_classes=10, cifar=True), (2, 3, 32, 32)),
    ("resnext50_32x4d", dict(num_classes=10), (2, 3, 32, 32)),
    ("preact_resnet18", dict(num_classes=10, cifar=True), (2, 3, 32, 32)),
    ("mobilenet_v1", dict(width_mult=0.25, num_classes=10), (2, 3, 64, 64)),
    ("mobilenet_v2", dict(width_mult=0.35, num_classes=10, cifar=True), (2, 3, 32, 32)),
    ("efficientnet_b0", dict(num_classes=10), (2, 3, 64, 64)),
    ("densenet121", dict(num_classes=10), (2, 3, 32, 32)),
    ("xception", dict(num_classes=10), (1, 3, 71, 71)),
]


@pytest.mark.parametrize("name, kwargs, shape", SMALL, ids=[s[0] for s in SMALL])
def test_forward_backward_small(name, kwargs, shape):
    minidl.manual_seed(0)
    model = models.get_model(name, **kwargs)
    x = minidl.tensor(np.random.default_rng(0).standard_normal(shape).astype(np.float32))
    target = minidl.tensor(np.arange(shape[0]) % 10)
    out = model(x)
    assert out.shape == (shape[0], 10)
    F.cross_entropy(out, target).backward()
    for key, p in model.named_parameters():
        assert p.grad is not None and p.grad.shape == p.shape, key
        assert np.all(np.isfinite(p.grad.numpy())), key
    # the stem always receives a gradient signal
    first = next(iter(model.parameters()))
    assert np.abs(first.grad.numpy()).sum() > 0


@pytest.mark.parametrize("name, shape", [("resnet152", (1, 3, 32, 32)), ("efficientnet_b7", (1, 3, 32, 32)),
                                         ("densenet201", (1, 3, 32, 32)), ("resnext101_32x8d", (1, 3, 32, 32))])
def test_largest_variants_forward(name, shape):
    model = build(name)
    model.eval()
    with minidl.no_grad():
        out = model(minidl.randn(*shape))
    assert out.shape == (1, 1000) and np.all(np.isfinite(out.numpy()))


def test_cifar_stems_keep_resolution():
    resnet = models.resnet18(cifar=True, num_classes=10)
    x = minidl.randn(1, 3, 32, 32)
    with minidl.no_grad():
        stem = resnet.maxpool(resnet.relu(resnet.bn1(resnet.conv1(x))))
        assert stem.shape == (1, 64, 32, 32)
        assert resnet.layer4(resnet.layer3(resnet.layer2(resnet.layer1(stem)))).shape == (1, 512, 4, 4)
        mobilenet = models.mobilenet_v2(width_mult=0.35, cifar=True, num_classes=10).eval()
        assert mobilenet.features(x).shape == (1, 1280, 4, 4)
        imagenet_stem = models.mobilenet_v2(width_mult=0.35, num_classes=10).eval()
        assert imagenet_stem.features(x).shape == (1, 1280, 1, 1)


def _paired_models(arch, ref):
    """The minidl model and the same network in torch.nn, with identical weights and random BN statistics."""
    minidl.manual_seed(1)
    if arch == "resnet18_cifar":
        model, reference = models.resnet18(num_classes=10, cifar=True), ref.torch_resnet(18, 10, True)
    elif arch == "resnet50":
        model, reference = models.resnet50(num_classes=10), ref.torch_resnet(50, 10)
    else:
        model, reference = models.mobilenet_v2(num_classes=10), ref.torch_mobilenet_v2(1.0, 10)
    # random BN statistics and affine parameters, so that eval mode is not a near-identity
    rng = np.random.default_rng(0)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.data[...] = rng.normal(0, 0.1, m.num_features)
            m.running_var.data[...] = rng.uniform(0.5, 1.5, m.num_features)
            m.weight.data[...] = rng.uniform(0.5, 1.5, m.num_features)
            m.bias.data[...] = rng.normal(0, 0.1, m.num_features)
        if isinstance(m, nn.Dropout):  # compare the deterministic part
            m.p = 0.0
    ref.copy_weights(model, reference)
    for m in reference.modules():
        if type(m).__name__ == "Dropout":
            m.p = 0.0
    return model, reference


ARCHS = ["resnet18_cifar", "resnet50", "mobilenet_v2"]
# ImageNet stems need 64x64 so that train-mode batch-norm in the last stage sees 2x2 maps (8 values per
# channel with 2 images); 1x1 maps would normalise 2 values and make every output +-1, ill-conditioned
SIZE = {"resnet18_cifar": 32, "resnet50": 64, "mobilenet_v2": 64}


@pytest.mark.parametrize("mode", ["train", "eval"])
@pytest.mark.parametrize("arch", ARCHS)
def test_forward_matches_torch(arch, mode):
    torch = pytest.importorskip("torch")
    model, reference = _paired_models(arch, _torch_references())
    getattr(model, mode)()
    getattr(reference, mode)()
    x = np.random.default_rng(2).standard_normal((2, 3, SIZE[arch], SIZE[arch])).astype(np.float32)
    with minidl.no_grad():
        out = model(minidl.tensor(x)).numpy()
    with torch.no_grad():
        expected = reference(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(out, expected, atol=2e-4 * np.abs(expected).max() + 1e-5, rtol=2e-3)


@pytest.mark.parametrize("arch", ["resnet18_cifar", "mobilenet_v2"])
def test_training_gradients_match_torch_float64(arch):
    """In float64 the whole backward pass (through ~20-50 train-mode batch-norms) agrees to 1e-9; in
    float32 both libraries drift from the exact gradient by up to a few percent on tiny batches."""
    torch = pytest.importorskip("torch")
    model, reference = _paired_models(arch, _torch_references())
    model.double().train()
    reference.double().train()
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 3, SIZE[arch], SIZE[arch]))
    out = model(minidl.tensor(x))
    expected = reference(torch.from_numpy(x))
    r = rng.standard_normal(out.shape)  # a random projection of the logits as the loss
    (out * minidl.tensor(r)).sum().backward()
    (expected * torch.from_numpy(r)).sum().backward()
    ours, theirs = model.state_dict(keep_vars=True), reference.state_dict(keep_vars=True)
    for key, p in ours.items():
        if p.grad is None:
            continue
        want = theirs[key].grad.numpy()
        np.testing.assert_allclose(p.grad.numpy(), want, atol=1e-9 * max(np.abs(want).max(), 1.0), rtol=1e-7,
                                   err_msg=key)


# ----------------------------------------------------------------------------- randomness only in training
def test_stochastic_depth_modes():
    x = minidl.ones(1000, 2, 1, 1)
    layer = _utils.StochasticDepth(0.3, "row")
    layer.eval()
    assert np.array_equal(layer(x).numpy(), x.numpy())
    layer.train()
    y = layer(x).numpy()
    per_sample = y[:, :, 0, 0]
    assert np.all(per_sample[:, 0] == per_sample[:, 1])  # one draw per sample, whole rows
    values = np.unique(per_sample)
    assert np.all(np.isclose(values, 0.0) | np.isclose(values, 1 / 0.7))  # dropped, or kept and rescaled
    assert abs((per_sample[:, 0] == 0).mean() - 0.3) < 0.06
    batch = _utils.stochastic_depth(x, 0.5, "batch", training=True).numpy()
    assert len(np.unique(batch)) == 1
    assert np.all(_utils.stochastic_depth(x, 1.0, "row", training=True).numpy() == 0)
    with pytest.raises(ValueError, match="mode"):
        _utils.StochasticDepth(0.1, "column")
    with pytest.raises(ValueError, match="p must be"):
        _utils.stochastic_depth(x, 1.5)


def test_stochastic_depth_backward_masks_the_gradient():
    minidl.manual_seed(3)
    x = minidl.randn(64, 3, 2, 2, requires_grad=True)
    y = _utils.stochastic_depth(x, 0.5, training=True)
    y.sum().backward()
    kept = y.numpy().reshape(64, -1).any(axis=1)
    g = x.grad.numpy().reshape(64, -1)
    assert np.allclose(g[kept], 2.0) and np.all(g[~kept] == 0)


@pytest.mark.parametrize("name, kwargs, shape", [
    ("efficientnet_b0", dict(num_classes=10), (4, 3, 32, 32)),
    ("mobilenet_v2", dict(num_classes=10, cifar=True, width_mult=0.35), (4, 3, 32, 32)),
    ("densenet121", dict(num_classes=10, drop_rate=0.5), (2, 3, 32, 32)),
])
def test_eval_is_deterministic_training_is_not(name, kwargs, shape):
    minidl.manual_seed(0)
    model = models.get_model(name, **kwargs)
    x = minidl.tensor(np.random.default_rng(1).standard_normal(shape).astype(np.float32))
    model.train()
    with minidl.no_grad():
        a, b = model(x).numpy(), model(x).numpy()
    assert not np.allclose(a, b)  # dropout and stochastic depth draw anew each pass
    model.eval()
    with minidl.no_grad():
        c, d = model(x).numpy(), model(x).numpy()
    np.testing.assert_array_equal(c, d)


def test_squeeze_excitation_gates_channels():
    se = _utils.SqueezeExcitation(8, 2)
    x = minidl.randn(2, 8, 5, 5)
    gate = F.sigmoid(se.fc2(F.relu(se.fc1(x.mean((2, 3), keepdim=True))))).numpy()
    np.testing.assert_allclose(se(x).numpy(), x.numpy() * gate, rtol=1e-5, atol=1e-6)


# ----------------------------------------------------------------------------- bad arguments
def test_bad_arguments_name_the_argument():
    with pytest.raises(ValueError, match="width_mult"):
        models.mobilenet_v2(width_mult=0)
    with pytest.raises(ValueError, match="width_mult"):
        models.mobilenet_v1(width_mult=-1)
    with pytest.raises(ValueError, match="layers"):
        models.resnet.ResNet(models.resnet.BasicBlock, [2, 2, 2])
    with pytest.raises(ValueError, match="groups"):
        models.resnet.ResNet(models.resnet.BasicBlock, [2, 2, 2, 2], groups=32)
    with pytest.raises(ValueError, match="block"):
        models.preact_resnet.PreActResNet([1, 1, 1, 1], block="wide")
    with pytest.raises(TypeError, match="MBConvConfig"):
        models.efficientnet.EfficientNet([], dropout=0.2)
    with pytest.raises(ValueError, match="channels"):
        build("resnet18")(minidl.randn(1, 1, 32, 32))
