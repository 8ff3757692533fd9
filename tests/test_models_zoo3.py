"""Architecture zoo III: SqueezeNet, ShuffleNet v2, MobileNet v3 (torchvision), Inception v4 and
Inception-ResNet v2 (timm), BN-Inception, the CIFAR ResNets of He et al. with their unit variants and
plain twins, the pre-activation bottleneck ResNet-164/1001, ResNet's ``stride_in_1x1`` layout and the
Conv MobileNet baseline.

Exact parameter counts; logits equal to torchvision's / timm's with their weights copied in; torch.nn
replicas (written here) for the models without a reference, compared in float32 (eval and train) and
through a float64 backward pass; MAC figures through ``minidl.summary``. The full-size runs are marked
``slow`` and run only with ``MINIDL_SLOW=1``; the default run compares single modules and small inputs.
"""
import functools
import importlib
import os

import numpy as np
import pytest

import minidl
from minidl import models, nn
from minidl.models.bn_inception import INCEPTIONS

slow = pytest.mark.skipif(not os.environ.get("MINIDL_SLOW"), reason="full-size model: set MINIDL_SLOW=1")


# ----------------------------------------------------------------------------- exact counts
PUBLISHED = {
    # torchvision / timm (the figures)
    "squeezenet1_0": 1_248_424, "squeezenet1_1": 1_235_496, "shufflenet_v2_x0_5": 1_366_792,
    "shufflenet_v2_x1_0": 2_278_604, "shufflenet_v2_x1_5": 3_503_624, "shufflenet_v2_x2_0": 7_393_996,
    "mobilenet_v3_large": 5_483_032, "mobilenet_v3_small": 2_542_856, "inception_v4": 42_679_816,
    "inception_resnet_v2": 55_843_464,
    # He et al. 2016, CIFAR-10 (option A shortcuts: no parameters), and their plain twins
    "resnet20_cifar": 269_722, "resnet32_cifar": 464_154, "resnet44_cifar": 658_586, "resnet56_cifar": 853_018,
    "resnet110_cifar": 1_727_962, "plain20_cifar": 269_722, "plain56_cifar": 853_018, "plain110_cifar": 1_727_962,
    # derived in the docstrings
    "preact_resnet164_cifar": 1_703_258, "preact_resnet1001_cifar": 10_327_706, "bn_inception": 11_285_224,
    "inception_v2": 11_285_224, "conv_mobilenet_v1": 29_294_088,
}


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_exact_count_and_card(no_init, name):
    assert models.get_model_card(name).num_params == PUBLISHED[name]
    assert models.get_model(name).num_parameters() == PUBLISHED[name]


def _cifar_count(n, widths=(16, 32, 64), classes=10):
    """He et al.'s 6n + 2 net with option A, counted from its definition: 3x3 conv weights + 2 per BN channel."""
    total = 27 * widths[0] + 2 * widths[0]  # stem conv + BN
    c_in = widths[0]
    for w in widths:
        for _ in range(n):
            total += 9 * c_in * w + 9 * w * w + 4 * w
            c_in = w
    return total + widths[-1] * classes + classes


@pytest.mark.parametrize("n, name", [(3, "resnet20_cifar"), (5, "resnet32_cifar"), (7, "resnet44_cifar"),
                                     (9, "resnet56_cifar"), (18, "resnet110_cifar")])
def test_cifar_counts_follow_from_the_definition(n, name):
    assert _cifar_count(n) == PUBLISHED[name]


def _preact_bottleneck_count(n, classes=10):
    """9n + 2 pre-activation bottleneck net: stem 3x3 16, stages of 64/128/256 outputs, 1x1 projections."""
    total, c_in = 27 * 16, 16
    for out in (64, 128, 256):
        mid = out // 4
        for j in range(n):
            total += 2 * c_in + c_in * mid + 2 * mid + 9 * mid * mid + 2 * mid + mid * out  # BN, 1x1, BN, 3x3, BN, 1x1
            if j == 0:
                total += c_in * out  # the projection of the stage's first unit
            c_in = out
    return total + 2 * 256 + 256 * classes + classes  # final BN, classifier


def test_preact_bottleneck_counts_follow_from_the_definition():
    assert _preact_bottleneck_count(18) == PUBLISHED["preact_resnet164_cifar"]
    assert _preact_bottleneck_count(111) == PUBLISHED["preact_resnet1001_cifar"]
    # the paper's rounded figures (Identity Mappings, Table 2: 1.7M and 10.2M)
    assert round(PUBLISHED["preact_resnet164_cifar"] / 1e6, 1) == 1.7
    assert abs(PUBLISHED["preact_resnet1001_cifar"] / 1e6 - 10.2) < 0.15


def test_bn_inception_count_follows_from_the_table():
    """The docstring's derivation, recomputed from the table rows: conv weights + 2 per BN channel."""
    total = 49 * 3 * 64 + 2 * 64 + 64 * 64 + 2 * 64 + 9 * 64 * 192 + 2 * 192  # conv1, conv2_reduce, conv2
    for name, c, a, r, b, d, e, pool, p in INCEPTIONS:
        convs = [(1, c, a), (1, c, r), (9, r, b), (1, c, d), (9, d, e), (9, e, e), (1, c, p)]
        total += sum(k * i * o + 2 * o for k, i, o in convs)
    total += 1024 * 1000 + 1000
    assert total == PUBLISHED["bn_inception"]
    model = models.bn_inception()
    assert model.num_parameters() == total
    # every module's input is the previous one's output (a reduction passes its input through the max-pool)
    width = 192
    for name, c, a, r, b, d, e, pool, p in INCEPTIONS:
        assert c == width, name
        width = a + b + e + (p if p else c)
    assert width == 1024
    # the docstring's table: each row's figure is that layer's count
    doc = importlib.import_module("minidl.models.bn_inception").__doc__
    rows = {line.split()[0]: int(line.split()[-1].replace(",", "")) for line in doc.splitlines()
            if line[:1].isalnum() and line.split()[-1].replace(",", "").isdigit()}
    for layer, figure in rows.items():
        module = model if layer == "total" else getattr(model, layer if not layer[0].isdigit() else "inception" + layer)
        assert module.num_parameters() == figure, layer
    assert len(rows) == 3 + len(INCEPTIONS) + 2


def test_conv_mobilenet_counts_match_the_paper(no_init):
    # the paper (MobileNets, Table 4): 29.3 M parameters, 4866 M mult-adds for the full-convolution net
    model = models.conv_mobilenet_v1()
    weights = sum(p.numel() for p in model.parameters() if p.ndim > 1)
    assert round(weights / 1e6, 1) == 29.3
    assert model.state_dict()["blocks.4.1.conv.weight"].shape == (1024, 1024, 3, 3)
    assert models.mobilenet_v1().num_parameters() < model.num_parameters() / 6


def test_option_b_and_plain_nets():
    # option B projects with 1x1 conv + BN where the shape changes (2 stages): 16*32 + 64 + 32*64 + 128 more
    assert models.resnet20_cifar(shortcut="B").num_parameters() == 269_722 + 16 * 32 + 64 + 32 * 64 + 128
    plain = models.plain20_cifar()
    assert all(block.shortcut is None and not block.residual for block in plain.modules()
               if type(block).__name__ == "CifarBasicBlock")
    with pytest.raises(ValueError, match="unit must be one of"):
        models.resnet20_cifar(unit="preact")
    with pytest.raises(ValueError, match="shortcut must be"):
        models.resnet20_cifar(shortcut="C")
    with pytest.raises(ValueError, match="bottleneck blocks only"):
        models.resnet18(stride_in_1x1=True)


# ----------------------------------------------------------------------------- torchvision / timm logits
def _references():
    torch = pytest.importorskip("torch")
    return torch


def _randomise_bn(torch, module):
    """Random BN statistics and affine parameters, so that eval mode is not a near-identity."""
    g = torch.Generator().manual_seed(0)
    for m in module.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            n = m.num_features
            m.running_mean.copy_(torch.randn(n, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(n, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(n, generator=g) * 0.1)


def _compare_logits(torch, ours, reference, x, mode="eval"):
    """Copy the reference's state_dict into ours (same keys and shapes) and compare the outputs."""
    with torch.no_grad():
        _randomise_bn(torch, reference)
    assert [(k, tuple(v.shape)) for k, v in ours.state_dict().items()] == \
        [(k, tuple(v.shape)) for k, v in reference.state_dict().items()]
    ours.load_state_dict({k: v.detach().numpy() for k, v in reference.state_dict().items()})
    getattr(ours, mode)()
    getattr(reference, mode)()
    with torch.no_grad():
        expected = reference(torch.from_numpy(x)).numpy()
    with minidl.no_grad():
        out = ours(minidl.tensor(x)).numpy()
    np.testing.assert_allclose(out, expected, atol=1e-4 * np.abs(expected).max() + 1e-6, rtol=1e-3)
    return out


@pytest.mark.parametrize("name", ["squeezenet1_1", "shufflenet_v2_x1_0", "mobilenet_v3_large", "mobilenet_v3_small"])
def test_logits_equal_torchvision(name):
    torch = _references()
    torchvision = pytest.importorskip("torchvision")
    torch.manual_seed(0)
    reference = getattr(torchvision.models, name)()
    if name.startswith("mobilenet_v3"):  # N(0, 0.01) classifier weights give logits near 0: widen them
        torch.nn.init.normal_(reference.classifier[3].weight, 0, 0.5)
    x = np.random.default_rng(0).standard_normal((2, 3, 64, 64)).astype(np.float32)
    out = _compare_logits(torch, models.get_model(name), reference, x)
    assert out.shape == (2, 1000) and np.abs(out).max() > 1e-2


def _timm_conv_block():
    """The ConvNormAct the timm networks give their blocks: padding 0 unless stated, BN eps 0.001."""
    from timm.layers import ConvNormAct

    return functools.partial(ConvNormAct, padding=0, norm_kwargs=dict(eps=1e-3))


@pytest.mark.parametrize("block", ["InceptionA", "ReductionA", "InceptionB", "ReductionB", "InceptionC",
                                   "Mixed3a", "Mixed4a", "Mixed5a"])
def test_inception_v4_blocks_equal_timm(block):
    """The fast version of the full-model comparison: each module type against timm's on a small grid."""
    torch = _references()
    pytest.importorskip("timm")
    ours_module = importlib.import_module("minidl.models.inception_v4")
    timm_module = importlib.import_module("timm.models.inception_v4")

    torch.manual_seed(0)
    reference = getattr(timm_module, block)(conv_block=_timm_conv_block())
    channels = {"InceptionA": 384, "ReductionA": 384, "InceptionB": 1024, "ReductionB": 1024, "InceptionC": 1536,
                "Mixed3a": 64, "Mixed4a": 160, "Mixed5a": 192}[block]
    x = np.random.default_rng(0).standard_normal((1, channels, 9, 9)).astype(np.float32)
    _compare_logits(torch, getattr(ours_module, block)(), reference, x)


@pytest.mark.parametrize("block", ["Mixed_5b", "Block35", "Mixed_6a", "Block17", "Mixed_7a", "Block8"])
def test_inception_resnet_v2_blocks_equal_timm(block):
    torch = _references()
    pytest.importorskip("timm")
    ours_module = importlib.import_module("minidl.models.inception_resnet")
    timm_module = importlib.import_module("timm.models.inception_resnet_v2")

    torch.manual_seed(0)
    scale = {"Block35": 0.17, "Block17": 0.10, "Block8": 0.20}.get(block)
    kwargs = {} if scale is None else {"scale": scale}
    reference = getattr(timm_module, block)(conv_block=_timm_conv_block(), **kwargs)
    channels = {"Mixed_5b": 192, "Block35": 320, "Mixed_6a": 320, "Block17": 1088, "Mixed_7a": 1088,
                "Block8": 2080}[block]
    x = np.random.default_rng(0).standard_normal((1, channels, 7, 7)).astype(np.float32)
    _compare_logits(torch, getattr(ours_module, block.replace("_", ""))(**kwargs), reference, x)


@slow
@pytest.mark.parametrize("name", ["inception_v4", "inception_resnet_v2"])
def test_logits_equal_timm(name):
    torch = _references()
    timm = pytest.importorskip("timm")
    torch.manual_seed(0)
    reference = timm.create_model(name)
    x = np.random.default_rng(0).standard_normal((1, 3, 75, 75)).astype(np.float32)
    _compare_logits(torch, models.get_model(name), reference, x)


def test_stride_in_1x1_equals_torchvision_with_the_stride_moved():
    """torchvision's ResNet-50 with each first bottleneck's stride moved from conv2 to conv1 is He et al.'s
    layout; ours with ``stride_in_1x1=True`` gives the same logits."""
    torch = _references()
    torchvision = pytest.importorskip("torchvision")
    torch.manual_seed(0)
    reference = torchvision.models.resnet50()
    for layer in (reference.layer2, reference.layer3, reference.layer4):
        layer[0].conv1.stride, layer[0].conv2.stride = (2, 2), (1, 1)
    x = np.random.default_rng(0).standard_normal((1, 3, 64, 64)).astype(np.float32)
    model = models.resnet50(stride_in_1x1=True)
    assert model.layer2[0].conv1.stride == (2, 2) and model.layer2[0].conv2.stride == (1, 1)
    _compare_logits(torch, model, reference, x)


def _compare_gradients(torch, ours, reference, x, atol=1e-8):
    """Float64, training mode: the gradients of every parameter under a random projection of the output."""
    ours.load_state_dict({k: v.detach().numpy() for k, v in reference.state_dict().items()})
    ours.double().train()
    reference.double().train()
    for m in reference.modules():  # compare the deterministic part
        if isinstance(m, torch.nn.Dropout):
            m.p = 0.0
    for m in ours.modules():
        if isinstance(m, nn.Dropout):
            m.p = 0.0
    out = ours(minidl.tensor(x))
    expected = reference(torch.from_numpy(x))
    np.testing.assert_allclose(out.numpy(), expected.detach().numpy(), rtol=1e-9, atol=atol)
    r = np.random.default_rng(3).standard_normal(out.shape)
    (out * minidl.tensor(r)).sum().backward()
    (expected * torch.from_numpy(r)).sum().backward()
    theirs = reference.state_dict(keep_vars=True)
    checked = 0
    for key, p in ours.state_dict(keep_vars=True).items():
        if theirs[key].grad is None:
            continue
        want = theirs[key].grad.numpy()
        np.testing.assert_allclose(p.grad.numpy(), want, atol=atol * max(np.abs(want).max(), 1.0), rtol=1e-7,
                                   err_msg=key)
        checked += 1
    assert checked == len(list(reference.parameters()))


@pytest.mark.parametrize("name", ["squeezenet1_1", "shufflenet_v2_x0_5", "mobilenet_v3_small"])
def test_gradients_equal_torchvision_float64(no_init, name):
    torch = _references()
    torchvision = pytest.importorskip("torchvision")
    torch.manual_seed(0)
    reference = getattr(torchvision.models, name)(num_classes=10)
    x = np.random.default_rng(0).standard_normal((2, 3, 48, 48))  # a 2x2 grid at the end: BN sees 8 values
    _compare_gradients(torch, models.get_model(name, num_classes=10), reference, x)


@pytest.mark.parametrize("module, block, channels", [("inception_v4", "InceptionA", 384),
                                                     ("inception_resnet_v2", "Block35", 320)])
def test_inception_block_gradients_equal_timm_float64(module, block, channels):
    torch = _references()
    pytest.importorskip("timm")
    ours_module = importlib.import_module({"inception_v4": "minidl.models.inception_v4",
                                           "inception_resnet_v2": "minidl.models.inception_resnet"}[module])
    torch.manual_seed(0)
    reference = getattr(importlib.import_module(f"timm.models.{module}"), block)(conv_block=_timm_conv_block())
    x = np.random.default_rng(0).standard_normal((2, channels, 5, 5))
    _compare_gradients(torch, getattr(ours_module, block)(), reference, x)


# ----------------------------------------------------------------------------- torch.nn replicas
def _torch_cifar_resnet(torch, n, unit="original", shortcut="A", classes=10):
    """He et al.'s CIFAR ResNet in torch.nn, written from the papers' figures (minidl's names)."""
    tnn, tF = torch.nn, torch.nn.functional

    class Block(tnn.Module):
        def __init__(self, c_in, c_out, stride):
            super().__init__()
            self.conv1 = tnn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
            self.bn1 = tnn.BatchNorm2d(c_in if unit == "full_preact" else c_out)
            self.conv2 = tnn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
            self.bn2 = tnn.BatchNorm2d(c_out)
            self.project = shortcut == "B" and (stride != 1 or c_in != c_out)
            if self.project:
                self.shortcut = tnn.Sequential(tnn.Conv2d(c_in, c_out, 1, stride, bias=False), tnn.BatchNorm2d(c_out))
            self.pad = (c_out - c_in) // 2
            self.stride = stride

        def skip(self, x):
            if self.project:
                return self.shortcut(x)
            x = x[:, :, ::self.stride, ::self.stride]
            return tF.pad(x, (0, 0, 0, 0, self.pad, self.pad))

        def forward(self, x):
            s = self.skip(x) if shortcut else 0
            if unit == "original":  # Fig. 4a
                return tF.relu(self.bn2(self.conv2(tF.relu(self.bn1(self.conv1(x))))) + s)
            if unit == "bn_after_add":  # Fig. 4b
                return tF.relu(self.bn2(self.conv2(tF.relu(self.bn1(self.conv1(x)))) + s))
            if unit == "relu_before_add":  # Fig. 4c
                return tF.relu(self.bn2(self.conv2(tF.relu(self.bn1(self.conv1(x)))))) + s
            if unit == "relu_preact":  # Fig. 4d
                return self.bn2(self.conv2(tF.relu(self.bn1(self.conv1(tF.relu(x)))))) + s
            return self.conv2(tF.relu(self.bn2(self.conv1(tF.relu(self.bn1(x)))))) + s  # Fig. 4e

    class Net(tnn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = tnn.Conv2d(3, 16, 3, 1, 1, bias=False)
            if unit != "full_preact":
                self.bn1 = tnn.BatchNorm2d(16)
            c_in = 16
            for i, c in enumerate((16, 32, 64)):
                blocks = []
                for j in range(n):
                    blocks.append(Block(c_in, c, 2 if i and not j else 1))
                    c_in = c
                setattr(self, f"layer{i + 1}", tnn.Sequential(*blocks))
            if unit == "full_preact":
                self.final_bn = tnn.BatchNorm2d(64)
            self.fc = tnn.Linear(64, classes)

        def forward(self, x):
            x = self.conv1(x)
            if unit in ("original", "bn_after_add", "relu_before_add"):
                x = tF.relu(self.bn1(x))
            elif unit == "relu_preact":
                x = self.bn1(x)
            x = self.layer3(self.layer2(self.layer1(x)))
            if unit == "full_preact":
                x = self.final_bn(x)
            if unit in ("relu_preact", "full_preact"):
                x = tF.relu(x)
            return self.fc(x.mean((2, 3)))

    return Net()


CIFAR_VARIANTS = [("original", "A"), ("bn_after_add", "A"), ("relu_before_add", "A"), ("relu_preact", "A"),
                  ("full_preact", "A"), ("original", "B"), ("original", False)]


@pytest.mark.parametrize("unit, shortcut", CIFAR_VARIANTS)
def test_cifar_resnet_equals_torch_replica(unit, shortcut):
    torch = _references()
    torch.manual_seed(0)
    reference = _torch_cifar_resnet(torch, 1, unit, shortcut)
    model = models.CifarResNet(1, unit=unit, shortcut=shortcut)
    x = np.random.default_rng(0).standard_normal((2, 3, 16, 16)).astype(np.float32)
    _compare_logits(torch, model, reference, x, mode="eval")
    _compare_logits(torch, model, reference, x, mode="train")
    _compare_gradients(torch, model, reference, x.astype(np.float64))


def test_resnet20_cifar_equals_torch_replica():
    torch = _references()
    torch.manual_seed(0)
    x = np.random.default_rng(0).standard_normal((2, 3, 32, 32)).astype(np.float32)
    _compare_logits(torch, models.resnet20_cifar(), _torch_cifar_resnet(torch, 3), x)
    assert models.resnet20_cifar().layer3[0].shortcut.extra == 32


def _torch_bn_inception(torch, classes=10):
    """BN-Inception in torch.nn from the paper's table (the rows of ``INCEPTIONS``), minidl's names."""
    tnn = torch.nn

    def conv(c_in, c_out, k, stride=1, padding=0):
        return tnn.Sequential(tnn.Conv2d(c_in, c_out, k, stride, padding, bias=False),
                              tnn.BatchNorm2d(c_out, eps=0.001), tnn.ReLU())

    class Module(tnn.Module):
        def __init__(self, c, a, r, b, d, e, pool, p):
            super().__init__()
            s = 1 if a else 2
            if a:
                self.branch1 = conv(c, a, 1)
            self.branch2 = tnn.Sequential(conv(c, r, 1), conv(r, b, 3, s, 1))
            self.branch3 = tnn.Sequential(conv(c, d, 1), conv(d, e, 3, 1, 1), conv(e, e, 3, s, 1))
            self.branch4 = tnn.Sequential(tnn.AvgPool2d(3, 1, 1) if pool == "avg" else tnn.MaxPool2d(3, s, 1))
            if p:
                self.branch4.append(conv(c, p, 1))

        def forward(self, x):
            outs = [self.branch1(x)] if hasattr(self, "branch1") else []
            return torch.cat(outs + [self.branch2(x), self.branch3(x), self.branch4(x)], 1)

    class Net(tnn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = conv(3, 64, 7, 2, 3)
            self.conv2_reduce = conv(64, 64, 1)
            self.conv2 = conv(64, 192, 3, 1, 1)
            for name, *row in INCEPTIONS:
                setattr(self, name, Module(*row))
            self.fc = tnn.Linear(1024, classes)

        def forward(self, x):
            x = tnn.functional.max_pool2d(self.conv1(x), 3, 2, ceil_mode=True)
            x = tnn.functional.max_pool2d(self.conv2(self.conv2_reduce(x)), 3, 2, ceil_mode=True)
            for name, *_ in INCEPTIONS:
                x = getattr(self, name)(x)
            return self.fc(x.mean((2, 3)))

    return Net()


def _rename_conv_bn(state):
    """torch replica's ``conv.0`` / ``conv.1`` -> BasicConv2d's ``conv`` / ``bn``."""
    out = {}
    for key, value in state.items():
        parts = key.split(".")
        for i, part in enumerate(parts[:-1]):
            if part in ("0", "1") and i == len(parts) - 2:
                parts[i] = "conv" if part == "0" else "bn"
        out[".".join(parts)] = value
    return out


def test_bn_inception_equals_torch_replica():
    torch = _references()
    torch.manual_seed(0)
    reference = _torch_bn_inception(torch)
    with torch.no_grad():
        _randomise_bn(torch, reference)
    model = models.bn_inception(num_classes=10)
    state = _rename_conv_bn(reference.state_dict())
    assert sorted((k, tuple(v.shape)) for k, v in state.items()) == \
        sorted((k, tuple(v.shape)) for k, v in model.state_dict().items())
    model.load_state_dict({k: v.numpy() for k, v in state.items()})
    x = np.random.default_rng(0).standard_normal((2, 3, 48, 48)).astype(np.float32)  # 2x2 at the end
    for mode in ("eval", "train"):
        getattr(model, mode)()
        getattr(reference, mode)()
        with torch.no_grad():
            expected = reference(torch.from_numpy(x)).numpy()
        out = model(minidl.tensor(x)).numpy()
        np.testing.assert_allclose(out, expected, atol=2e-4 * np.abs(expected).max() + 1e-5, rtol=2e-3)
    # float64 backward through the replica (its conv.0 / conv.1 renamed as above)
    model.double().train()
    reference.double().train()
    x64 = x.astype(np.float64)
    out = model(minidl.tensor(x64))
    expected = reference(torch.from_numpy(x64))
    r = np.random.default_rng(3).standard_normal(out.shape)
    (out * minidl.tensor(r)).sum().backward()
    (expected * torch.from_numpy(r)).sum().backward()
    theirs = _rename_conv_bn(reference.state_dict(keep_vars=True))
    for key, p in model.state_dict(keep_vars=True).items():
        if p.grad is not None:
            want = theirs[key].grad.numpy()
            np.testing.assert_allclose(p.grad.numpy(), want, atol=1e-8 * max(np.abs(want).max(), 1.0), rtol=1e-7,
                                       err_msg=key)


def _torch_conv_mobilenet(torch, classes=10):
    """The MobileNet paper's full-convolution baseline in torch.nn: 3x3 conv-BN-ReLU6 throughout."""
    tnn = torch.nn

    class ConvBN(tnn.Module):
        def __init__(self, c_in, c_out, stride):
            super().__init__()
            self.conv = tnn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
            self.bn = tnn.BatchNorm2d(c_out)

        def forward(self, x):
            return tnn.functional.relu6(self.bn(self.conv(x)))

    class Net(tnn.Module):
        def __init__(self):
            super().__init__()
            self.conv_stem = tnn.Conv2d(3, 32, 3, 2, 1, bias=False)
            self.bn1 = tnn.BatchNorm2d(32)
            self.blocks = tnn.Sequential()
            c_in = 32
            for c, n, s in [(64, 1, 1), (128, 2, 2), (256, 2, 2), (512, 6, 2), (1024, 2, 2)]:
                stage = tnn.Sequential()
                for i in range(n):
                    stage.append(ConvBN(c_in, c, s if i == 0 else 1))
                    c_in = c
                self.blocks.append(stage)
            self.classifier = tnn.Linear(1024, classes)

        def forward(self, x):
            x = self.blocks(tnn.functional.relu6(self.bn1(self.conv_stem(x))))
            return self.classifier(x.mean((2, 3)))

    return Net()


def test_conv_mobilenet_equals_torch_replica(no_init):
    torch = _references()
    torch.manual_seed(0)
    reference = _torch_conv_mobilenet(torch)
    x = np.random.default_rng(0).standard_normal((2, 3, 64, 64)).astype(np.float32)
    model = models.conv_mobilenet_v1(num_classes=10)
    _compare_logits(torch, model, reference, x, mode="eval")
    _compare_gradients(torch, model, reference, x[:, :, :48, :48].astype(np.float64))


def test_preact_bottleneck_cifar_equals_timm_resnetv2():
    """preact_resnet164/1001_cifar are ``PreActResNet`` with three 64/128/256 stages and a 3x3 stem: the same
    network as timm's ``ResNetV2`` so configured (its stem swapped for the 3x3 convolution), here with n = 2."""
    torch = _references()
    pytest.importorskip("timm")
    from collections import OrderedDict

    from timm.layers import BatchNormAct2d, create_conv2d
    from timm.models.resnetv2 import ResNetV2

    from minidl.models.cifar_resnet import _preact_bottleneck_cifar

    torch.manual_seed(0)
    reference = ResNetV2(layers=[2, 2, 2], channels=(64, 128, 256), stem_chs=16, num_classes=10,
                         conv_layer=create_conv2d, norm_layer=BatchNormAct2d)
    reference.stem = torch.nn.Sequential(OrderedDict(conv=torch.nn.Conv2d(3, 16, 3, 1, 1, bias=False)))
    x = np.random.default_rng(0).standard_normal((2, 3, 16, 16)).astype(np.float32)
    model = _preact_bottleneck_cifar(2)
    _compare_logits(torch, model, reference, x, mode="eval")
    _compare_gradients(torch, model, reference, x.astype(np.float64))


def test_preact_bottleneck_cifar_runs_at_32x32():
    model = models.preact_resnet164_cifar().eval()
    assert len(model.stages) == 3 and len(model.stages[0].blocks) == 18
    assert model.state_dict()["stages.2.blocks.0.downsample.conv.weight"].shape == (256, 128, 1, 1)
    with minidl.no_grad():
        out = model(minidl.tensor(np.random.default_rng(0).standard_normal((1, 3, 32, 32)).astype(np.float32)))
    assert out.shape == (1, 10) and np.isfinite(out.numpy()).all()


# ----------------------------------------------------------------------------- MACs, cards, CLI


CHEAP_MACS = ["squeezenet1_0", "squeezenet1_1", "shufflenet_v2_x0_5", "shufflenet_v2_x1_0", "shufflenet_v2_x1_5",
              "shufflenet_v2_x2_0", "mobilenet_v3_small", "mobilenet_v3_large", "resnet20_cifar", "plain20_cifar"]
BIG_MACS = ["inception_v4", "inception_resnet_v2", "inception_v2", "bn_inception", "conv_mobilenet_v1",
            "resnet110_cifar", "preact_resnet164_cifar", "preact_resnet1001_cifar"]


def _check_card_macs(name):
    card = models.get_model_card(name)
    s = minidl.summary(models.get_model(name), card.input_size, depth=1)
    assert abs(s.total_macs - card.macs) / card.macs < 1e-3, (name, s.total_macs, card.macs)


@pytest.mark.parametrize("name", CHEAP_MACS)
def test_card_macs_agree_with_summary(zero_init, name):
    _check_card_macs(name)


@slow
@pytest.mark.parametrize("name", BIG_MACS)
def test_card_macs_agree_with_summary_big(zero_init, name):
    _check_card_macs(name)


def test_published_macs_of_the_reference_tables():
    """The figures the papers and torchvision publish, to the digits they give."""
    card = models.get_model_card
    assert round(card("squeezenet1_1").macs / 1e9, 3) == 0.349  # torchvision: 0.349 GFLOPS
    assert round(card("shufflenet_v2_x1_0").macs / 1e9, 3) == 0.145  # torchvision 0.145; the paper 146 M
    assert round(card("mobilenet_v3_large").macs / 1e9, 3) == 0.217  # torchvision 0.217; the paper 219 M
    assert round(card("mobilenet_v3_small").macs / 1e9, 3) == 0.057  # torchvision 0.057; the paper 56 M
    assert round(card("conv_mobilenet_v1").macs / 1e6) - 1 == 4866  # the paper's 4866 M + the 1 M classifier
    assert round(card("resnet20_cifar").macs / 1e6) == 41  # He et al.: 41 M FLOPs for ResNet-20 (not tabled)


@pytest.mark.parametrize("name, expected", [("resnet50", 3.86e9), ("resnet101", 7.57e9), ("resnet152", 11.28e9)])
def test_stride_in_1x1_gives_the_papers_macs(zero_init, name, expected):
    """He et al. Table 1: 3.8 / 7.6 / 11.3 x 10^9 FLOPs (multiply-adds) for ResNet-50/101/152, which is the
    original layout (stride on the first 1x1); torchvision's v1.5 costs 4.09 / 7.80 / 11.51 G."""
    if name != "resnet50" and not os.environ.get("MINIDL_SLOW"):
        pytest.skip("full-size model: set MINIDL_SLOW=1")
    s = minidl.summary(models.get_model(name, stride_in_1x1=True), (3, 224, 224), depth=1)
    assert abs(s.total_macs - expected) / expected < 0.01
    assert s.total_params == models.get_model_card(name).num_params


def test_stride_in_1x1_macs_from_the_layer_shapes():
    """The MAC saving, counted by hand: in each of the three strided bottlenecks, conv1 (C_in -> w, 1x1) moves
    from the input grid to the output grid (a quarter of the pixels) and conv2 stays on the output grid."""
    saved = 0
    for c_in, width, out_hw in [(256, 128, 28), (512, 256, 14), (1024, 512, 7)]:
        saved += c_in * width * (2 * out_hw) ** 2 * 3 // 4
    assert saved == 4_089_184_256 - 3_857_973_248  # torchvision's resnet50 MACs - He et al.'s layout
    assert abs((7_801_405_440 - saved) - 7.57e9) / 7.57e9 < 0.01
    assert abs((11_513_626_624 - saved) - 11.28e9) / 11.28e9 < 0.01


def test_cli_lists_and_summarises_the_new_models(capsys):
    from minidl.cli import main

    assert main(["models", "cifar"]) == 0
    table = capsys.readouterr().out
    for name in ("resnet20_cifar", "resnet110_cifar", "plain56_cifar", "preact_resnet1001_cifar"):
        line = next(row for row in table.splitlines() if row.startswith(name + " "))
        assert "✓" in line
    assert main(["summary", "resnet20_cifar", "--depth", "1"]) == 0
    out = capsys.readouterr().out
    assert "40,551,040" in out and "269,722" in out
