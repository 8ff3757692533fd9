"""Zoo I: MLP presets, LeNet-5, AlexNet variants, VGG, the CIFAR CNN, GoogLeNet and Inception v3.

Exact parameter counts against shared/reference/param_counts.md, state_dict names and
shapes against torchvision's source, output shapes, one forward and backward on the
smallest valid input, a few SGD steps, freezing and head replacement.
"""
import itertools

import numpy as np
import pytest

import minidl
import minidl.nn.functional as F
from minidl import models, nn
from minidl.optim import SGD


def _googlenet_no_aux_count(kernel):
    """6,624,904 for the 3x3 branch; the paper's 5x5 adds ch5x5red * ch5x5 * (25 - 9) weights per module."""
    extra = sum(red * out * (kernel * kernel - 9) for _, _, _, _, _, red, out, _ in models.googlenet.__globals__[
        "INCEPTIONS"])
    return 6_624_904 + extra


def _mlp_count(sizes):
    return sum(a * b + b for a, b in itertools.pairwise(sizes))


LENET_LAYERS = 156 + 2_416 + 48_120 + 10_164  # everything but fc3

PARAM_COUNTS = [
    ("lenet5", {}, 61_706),
    ("lenet5", {"activation": "relu", "pooling": "avg"}, 61_706),
    ("lenet5", {"num_classes": 43}, LENET_LAYERS + 84 * 43 + 43),
    ("alexnet", {}, 61_100_840),
    ("alexnet", {"num_classes": 10}, 57_044_810),
    ("alexnet_bn", {}, 58_325_066),
    ("alexnet_lrn", {}, 60_965_224),
    ("alexnet_lrn", {"groups": 1}, 62_378_344),
    ("vgg11", {}, 132_863_336),
    ("vgg11_bn", {}, 132_868_840),
    ("vgg13", {}, 133_047_848),
    ("vgg13_bn", {}, 133_053_736),
    ("vgg16", {}, 138_357_544),
    ("vgg16_bn", {}, 138_365_992),
    ("vgg19", {}, 143_667_240),
    ("vgg19_bn", {}, 143_678_248),
    ("vgg16", {"num_classes": 10}, 138_357_544 - 4096 * 990 - 990),
    ("googlenet", {}, 13_004_888),
    ("googlenet", {"aux_logits": False}, 6_624_904),
    ("googlenet", {"aux_logits": False, "branch3_kernel_size": 5}, _googlenet_no_aux_count(5)),
    ("inception_v3", {}, 27_161_264),
    ("inception_v3", {"aux_logits": False}, 23_834_568),
    ("cifar_cnn", {}, 7_826_660),
    ("cifar_cnn", {"num_classes": 10}, 7_826_660 - 1024 * 90 - 90),
    ("mlp", {}, _mlp_count([64, 128, 64, 10])),
    ("mlp", {"hidden_sizes": (32,), "activation": "tanh", "input_size": (1, 28, 28)}, _mlp_count([784, 32, 10])),
    ("mlp_gtsdb", {}, _mlp_count([3072, 300, 150, 43])),
    ("mlp_gtsdb", {"input_size": (1, 48, 48)}, _mlp_count([2304, 300, 150, 43])),
    ("mlp_cifar100", {}, _mlp_count([3072, 1024, 768, 512, 100])),
]


@pytest.mark.parametrize("name, kwargs, expected", PARAM_COUNTS,
                         ids=[f"{n}-{'-'.join(f'{k}={v}' for k, v in kw.items()) or 'default'}"
                              for n, kw, _ in PARAM_COUNTS])
def test_parameter_count_is_exact(no_init, name, kwargs, expected):
    model = models.get_model(name, **kwargs)
    assert model.num_parameters() == expected


def test_registry_published_counts_match_builders(no_init):
    for name in ("lenet5", "alexnet", "alexnet_bn", "vgg16_bn", "googlenet", "inception_v3"):
        builder = models.get_model_builder(name)
        assert builder().num_parameters() == builder.published_params
    assert models.get_model_builder("inception_v3").default_input_size == (3, 299, 299)
    assert models.get_model_builder("lenet5").default_input_size == (1, 32, 32)
    assert set(models.list_models()) >= {"mlp", "mlp_gtsdb", "mlp_cifar100", "lenet5", "alexnet", "alexnet_bn",
                                         "alexnet_lrn", "vgg11", "vgg19_bn", "cifar_cnn", "googlenet", "inception_v3"}


def test_bad_arguments_raise_value_errors():
    with pytest.raises(ValueError, match="activation"):
        models.mlp(activation="swish")
    with pytest.raises(ValueError, match="pooling"):
        models.lenet5(pooling="median")
    with pytest.raises(ValueError, match="branch3_kernel_size"):
        models.googlenet(branch3_kernel_size=7, aux_logits=False)
    with pytest.raises(ValueError, match="norm"):
        models.alexnet_bn(norm="group")
    with pytest.raises(ValueError, match="32, 32"):
        models.lenet5()(minidl.randn(1, 1, 28, 28))


# ----------------------------------------------------------------------------- names and shapes
def _keys(model):
    return list(model.state_dict().keys())


def test_alexnet_and_vgg_keys_follow_torchvision_source(no_init):
    # torchvision alexnet.py: 5 convs at features.{0,3,6,8,10}, Linear at classifier.{1,4,6}
    sd = models.alexnet().state_dict()
    assert list(sd) == [f"{prefix}.{i}.{p}" for prefix, idx in (("features", (0, 3, 6, 8, 10)),
                                                              ("classifier", (1, 4, 6)))
                        for i in idx for p in ("weight", "bias")]
    assert sd["features.0.weight"].shape == (64, 3, 11, 11)
    assert sd["classifier.1.weight"].shape == (4096, 9216)
    # vgg.py make_layers for config D: conv, relu (, bn) ... and "M" pools
    keys = _keys(models.vgg16())
    convs = [0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28]
    assert keys == [f"features.{i}.{p}" for i in convs for p in ("weight", "bias")] + \
        [f"classifier.{i}.{p}" for i in (0, 3, 6) for p in ("weight", "bias")]
    keys = _keys(models.vgg16_bn())
    assert len(keys) == 13 * 2 + 13 * 5 + 6
    assert keys[:7] == ["features.0.weight", "features.0.bias", "features.1.weight", "features.1.bias",
                        "features.1.running_mean", "features.1.running_var", "features.1.num_batches_tracked"]
    assert keys[-1] == "classifier.6.bias" and "features.40.weight" in keys and "features.41.running_var" in keys


def test_googlenet_and_inception_keys_follow_torchvision_source(no_init):
    sd = models.googlenet().state_dict()
    keys = list(sd)
    # 57 BasicConv2d (3 stem + 6 per Inception x 9), each conv.weight + 5 batch-norm entries;
    # two aux heads (BasicConv2d + fc1 + fc2), fc.
    assert len(keys) == 57 * 6 + 2 * (6 + 4) + 2
    assert keys[:6] == ["conv1.conv.weight", "conv1.bn.weight", "conv1.bn.bias", "conv1.bn.running_mean",
                        "conv1.bn.running_var", "conv1.bn.num_batches_tracked"]
    assert keys[-6:] == ["aux2.fc1.weight", "aux2.fc1.bias", "aux2.fc2.weight", "aux2.fc2.bias",
                         "fc.weight", "fc.bias"]
    assert sd["inception3a.branch3.1.conv.weight"].shape == (32, 16, 3, 3)
    assert sd["inception5b.branch4.1.conv.weight"].shape == (128, 832, 1, 1)
    assert sd["aux1.fc1.weight"].shape == (1024, 2048)
    assert "aux1.conv.conv.weight" not in _keys(models.googlenet(aux_logits=False))

    sd = models.inception_v3().state_dict()
    keys = list(sd)
    # 96 BasicConv2d: stem 5, 3 x InceptionA 7, InceptionB 4, 4 x InceptionC 10, aux 2, InceptionD 6, 2 x InceptionE 9
    assert 5 + 3 * 7 + 4 + 4 * 10 + 2 + 6 + 2 * 9 == 96
    assert len(keys) == 96 * 6 + 2 + 2
    assert keys[0] == "Conv2d_1a_3x3.conv.weight" and keys[-1] == "fc.bias"
    assert keys.index("AuxLogits.fc.bias") < keys.index("Mixed_7a.branch3x3_1.conv.weight")
    assert sd["Mixed_6b.branch7x7_2.conv.weight"].shape == (128, 128, 1, 7)
    assert sd["Mixed_7c.branch3x3dbl_3b.conv.weight"].shape == (384, 384, 3, 1)
    assert sd["AuxLogits.conv1.conv.weight"].shape == (768, 128, 5, 5)
    assert sd["Mixed_5b.branch1x1.bn.running_var"].shape == (64,)


@pytest.mark.parametrize("name", ["alexnet", "vgg11_bn", "googlenet", "inception_v3"])
def test_state_dict_equals_torchvision(no_init, name):
    torchvision = pytest.importorskip("torchvision")
    reference = getattr(torchvision.models, name)(weights=None, init_weights=False) if name != "alexnet" \
        else torchvision.models.alexnet(weights=None)
    ours = models.get_model(name)
    theirs = {k: tuple(v.shape) for k, v in reference.state_dict().items()}
    assert {k: tuple(v.shape) for k, v in ours.state_dict().items()} == theirs
    assert _keys(ours) == list(theirs)


def test_checkpoint_round_trip_into_a_fresh_model(monkeypatch):
    source = models.googlenet(num_classes=7, aux_logits=False)
    monkeypatch.setattr(nn.init, "trunc_normal_", lambda tensor, *args, **kwargs: tensor)  # overwritten anyway
    target = models.googlenet(num_classes=7, aux_logits=False)
    target.load_state_dict(source.state_dict(), strict=True)
    x = minidl.randn(1, 3, 32, 32)
    source.eval(), target.eval()
    with minidl.no_grad():
        np.testing.assert_array_equal(source(x).numpy(), target(x).numpy())


# ----------------------------------------------------------------------------- initialisation
def test_vgg_initialisation_and_small_input_pass(monkeypatch):
    # The layers' own default draws are overwritten by VGG's initialisation: skip them to save time.
    for name in ("uniform_", "kaiming_uniform_"):
        monkeypatch.setattr(nn.init, name, lambda tensor, *args, **kwargs: tensor)
    minidl.manual_seed(0)
    model = models.vgg11_bn(num_classes=10)
    conv = model.features[8]  # 128 -> 256 channels, fan_out = 256 * 9
    assert isinstance(conv, nn.Conv2d) and conv.out_channels == 256
    assert conv.weight.numpy().std() == pytest.approx(np.sqrt(2.0 / (256 * 9)), rel=0.02)
    assert np.all(conv.bias.numpy() == 0)
    assert model.classifier[0].weight.numpy().std() == pytest.approx(0.01, rel=0.02)
    assert np.all(model.classifier[6].bias.numpy() == 0) and np.all(model.features[1].weight.numpy() == 1)
    out = _forward_backward(model, (2, 3, 32, 32), 10)  # adaptive pooling turns 1x1 into 7x7
    assert out.shape == (2, 10)


def test_googlenet_initialisation():
    minidl.manual_seed(0)
    g = models.googlenet(aux_logits=False)
    w = g.inception4e.branch2[1].conv.weight.numpy()
    assert w.std() == pytest.approx(0.01, rel=0.02) and np.abs(w).max() < 0.06
    assert np.all(g.inception4e.branch2[1].bn.weight.numpy() == 1)
    assert np.all(g.inception4e.branch2[1].bn.bias.numpy() == 0)


# ----------------------------------------------------------------------------- forward and backward
def _forward_backward(model, shape, num_classes):
    x = minidl.randn(*shape)
    out = model(x)
    logits = out[0] if isinstance(out, tuple) else out
    assert logits.shape == (shape[0], num_classes)
    target = minidl.tensor(np.arange(shape[0]) % num_classes)
    loss = F.cross_entropy(logits, target) if not isinstance(out, tuple) else (
        models.googlenet_loss(out, target) if isinstance(out, models.GoogLeNetOutputs)
        else models.inception_v3_loss(out, target))
    loss.backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    assert not missing, f"no gradient for {missing[:5]}"
    assert all(np.isfinite(p.grad.numpy()).all() for p in model.parameters())
    return out


@pytest.mark.parametrize("name, kwargs, shape, classes", [
    ("mlp", {}, (4, 1, 8, 8), 10),
    ("mlp", {"activation": "elu", "dropout": 0.2}, (4, 1, 8, 8), 10),
    ("mlp", {"activation": "leaky_relu", "hidden_sizes": (16, 8, 4)}, (4, 1, 8, 8), 10),
    ("mlp_gtsdb", {}, (4, 3, 32, 32), 43),
    ("mlp_cifar100", {"activation": "tanh"}, (2, 3, 32, 32), 100),
    ("lenet5", {}, (2, 1, 32, 32), 10),
    ("lenet5", {"activation": "relu", "pooling": "avg", "in_channels": 3}, (2, 3, 32, 32), 10),
    ("alexnet", {"num_classes": 10}, (1, 3, 63, 63), 10),
    ("alexnet_bn", {}, (1, 3, 224, 224), 10),
    ("cifar_cnn", {}, (2, 3, 32, 32), 100),
    ("googlenet", {"num_classes": 10}, (2, 3, 32, 32), 10),
])
def test_forward_backward_on_smallest_input(name, kwargs, shape, classes):
    model = models.get_model(name, **kwargs)
    model.train()
    out = _forward_backward(model, shape, classes)
    if name == "googlenet":
        assert isinstance(out, models.GoogLeNetOutputs)
        assert out.aux_logits1.shape == out.aux_logits2.shape == (shape[0], classes)
        model.eval()
        with minidl.no_grad():
            assert model(minidl.randn(*shape)).shape == (shape[0], classes)  # eval: logits only


def test_googlenet_paper_variant_forward():
    model = models.googlenet(num_classes=10, aux_logits=False, branch3_kernel_size=5, transform_input=True).eval()
    assert model.inception3a.branch3[1].conv.weight.shape == (32, 16, 5, 5)
    with minidl.no_grad():
        assert model(minidl.randn(1, 3, 32, 32)).shape == (1, 10)


def test_alexnet_lrn_forward_eval():
    model = models.alexnet_lrn(num_classes=5).eval()
    assert isinstance(model.conv1[2], nn.LocalResponseNorm) and model.conv2[0].groups == 2
    with minidl.no_grad():
        assert model(minidl.randn(1, 3, 224, 224)).shape == (1, 5)


def test_inception_v3_forward_backward_at_75():
    # 75x75 is the smallest input; evaluation mode (the auxiliary head needs a 17x17 grid, see below).
    minidl.manual_seed(0)
    model = models.inception_v3(num_classes=10, aux_logits=False).eval()
    # torchvision's initialisation: truncated normal, std 0.1 unless the module sets its own
    weight = model.Mixed_7c.branch_pool.conv.weight.numpy()
    assert weight.std() == pytest.approx(0.1, rel=0.05) and np.abs(weight).max() <= 2.0
    _forward_backward(model, (1, 3, 75, 75), 10)
    aux = models.inception_v3(num_classes=10).AuxLogits
    assert aux.fc.weight.numpy().std() == pytest.approx(0.001, rel=0.05)


def test_inception_aux_head_shapes():
    from minidl.models.inception import InceptionAux

    aux = InceptionAux(768, 10)
    out = aux(minidl.randn(2, 768, 17, 17))  # the 17x17 grid after Mixed_6e at 299x299
    assert out.shape == (2, 10)
    out.sum().backward()
    assert aux.conv1.conv.weight.grad.shape == (768, 128, 5, 5)


def test_googlenet_loss_weights_aux_by_0_3():
    logits, a2, a1 = (minidl.randn(3, 4) for _ in range(3))
    target = minidl.tensor(np.array([0, 1, 3]))
    outputs = models.GoogLeNetOutputs(logits, a2, a1)
    expected = (F.cross_entropy(logits, target) + 0.3 * F.cross_entropy(a1, target)
                + 0.3 * F.cross_entropy(a2, target)).item()
    assert models.googlenet_loss(outputs, target).item() == pytest.approx(expected, rel=1e-6)
    assert models.googlenet_loss(logits, target).item() == pytest.approx(F.cross_entropy(logits, target).item())
    inc = models.InceptionOutputs(logits, a1)
    assert models.inception_v3_loss(inc, target).item() == pytest.approx(
        F.cross_entropy(logits, target).item() + 0.4 * F.cross_entropy(a1, target).item(), rel=1e-6)


def test_lenet5_matches_torch():
    torch = pytest.importorskip("torch")
    for activation, pooling in (("tanh", "max"), ("relu", "avg")):
        ours = models.lenet5(activation=activation, pooling=pooling)
        act = torch.tanh if activation == "tanh" else torch.relu
        pool = torch.nn.functional.max_pool2d if pooling == "max" else torch.nn.functional.avg_pool2d
        w = {k: torch.tensor(v.numpy(), requires_grad=True) for k, v in ours.state_dict().items()}
        x = np.random.default_rng(1).standard_normal((3, 1, 32, 32)).astype(np.float32)
        t = torch.tensor(x)
        t = pool(act(torch.nn.functional.conv2d(t, w["conv1.weight"], w["conv1.bias"])), 2)
        t = pool(act(torch.nn.functional.conv2d(t, w["conv2.weight"], w["conv2.bias"])), 2).flatten(1)
        t = act(t @ w["fc1.weight"].T + w["fc1.bias"])
        t = act(t @ w["fc2.weight"].T + w["fc2.bias"])
        t = t @ w["fc3.weight"].T + w["fc3.bias"]
        out = ours(minidl.tensor(x))
        np.testing.assert_allclose(out.numpy(), t.detach().numpy(), rtol=1e-4, atol=1e-5)
        out.sum().backward()
        t.sum().backward()
        np.testing.assert_allclose(ours.conv1.weight.grad.numpy(), w["conv1.weight"].grad.numpy(), rtol=1e-3,
                                   atol=1e-4)


# ----------------------------------------------------------------------------- learning
def _sgd_losses(model, x, target, steps=5, lr=0.05, loss_fn=F.cross_entropy):
    optimizer = SGD([p for p in model.parameters() if p.requires_grad], lr=lr, momentum=0.9)
    losses = []
    for _ in range(steps):
        optimizer.zero_grad()
        loss = loss_fn(model(x), target)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


@pytest.mark.parametrize("name, kwargs, shape, classes, lr", [
    ("mlp", {}, (16, 1, 8, 8), 10, 0.1),
    ("mlp_gtsdb", {"dropout": 0.0}, (8, 3, 32, 32), 43, 0.01),
    ("lenet5", {}, (8, 1, 32, 32), 10, 0.1),
    ("cifar_cnn", {"num_classes": 10, "conv_dropout": 0.0, "dropout": 0.0}, (2, 3, 32, 32), 10, 0.01),
])
def test_sgd_steps_reduce_the_loss(name, kwargs, shape, classes, lr):
    minidl.manual_seed(0)
    model = models.get_model(name, **kwargs)
    x = minidl.randn(*shape)
    target = minidl.tensor(np.arange(shape[0]) % classes)
    losses = _sgd_losses(model, x, target, steps=3 if name == "cifar_cnn" else 5, lr=lr)
    assert losses[-1] < losses[0], losses


def test_googlenet_fine_tuning_with_aux_heads_reduces_the_loss():
    # Transfer learning as in the seeds: backbone frozen, the three classifiers trained with
    # googlenet_loss (main + 0.3 x each auxiliary loss).
    minidl.manual_seed(0)
    model = models.googlenet(num_classes=4, dropout=0.0, dropout_aux=0.0).train()
    frozen = nn.freeze(model, prefix=("conv", "inception", "aux1.conv", "aux2.conv"))
    assert all(n.startswith(("aux1.fc", "aux2.fc", "fc")) for n, p in model.named_parameters() if p.requires_grad)
    assert model.num_parameters(trainable_only=True) == 2 * (2048 * 1024 + 1024 + 1024 * 4 + 4) + 1024 * 4 + 4
    before = model.inception5b.branch1.conv.weight.numpy().copy()
    x = minidl.randn(4, 3, 32, 32)
    target = minidl.tensor(np.array([0, 1, 2, 3]))
    losses = _sgd_losses(model, x, target, steps=4, lr=0.05, loss_fn=models.googlenet_loss)
    assert losses[-1] < losses[0], losses
    np.testing.assert_array_equal(before, model.inception5b.branch1.conv.weight.numpy())
    assert "aux1.conv.conv.weight" in frozen and "aux1.fc1.weight" not in frozen


# ----------------------------------------------------------------------------- freezing and heads
def test_freeze_features_of_alexnet_and_replace_head():
    model = models.alexnet()
    frozen = nn.freeze(model, prefix="features")
    assert frozen == [f"features.{i}.{p}" for i in (0, 3, 6, 8, 10) for p in ("weight", "bias")]
    assert model.num_parameters(trainable_only=True) == 4096 * 9216 + 4096 + 4096 * 4096 + 4096 + 4096 * 1000 + 1000
    head = nn.replace_head(model, 3)
    assert model.classifier[6] is head and head.weight.shape == (3, 4096) and head.bias.shape == (3,)
    assert model.num_parameters() == 61_100_840 - 997 * 4097


def test_replace_head_finds_each_models_classifier(no_init):
    cases = [
        (models.lenet5(), "fc3", 84),
        (models.mlp(), "classifier", 64),
        (models.alexnet_bn(), "fc3.0", 4096),
        (models.vgg11(), "classifier.6", 4096),
        (models.googlenet(), "fc", 1024),
        (models.inception_v3(), "fc", 2048),
        (models.cifar_cnn(), "classifier.6", 1024),
    ]
    for model, name, in_features in cases:
        head = nn.replace_head(model, 5)
        assert model.get_submodule(name) is head
        assert head.weight.shape == (5, in_features)


def test_frozen_layers_do_not_move_under_sgd():
    minidl.manual_seed(0)
    model = models.lenet5()
    frozen = nn.freeze(model, first_n=2, by="modules")  # conv1 and conv2, weights and biases
    assert frozen == ["conv1.weight", "conv1.bias", "conv2.weight", "conv2.bias"]
    assert model.num_parameters(trainable_only=True) == 61_706 - 156 - 2_416
    before = {n: p.numpy().copy() for n, p in model.named_parameters()}
    x = minidl.randn(8, 1, 32, 32)
    target = minidl.tensor(np.arange(8) % 10)
    losses = _sgd_losses(model, x, target, steps=3, lr=0.1)
    assert losses[-1] < losses[0]
    for name, p in model.named_parameters():
        moved = not np.array_equal(before[name], p.numpy())
        assert moved == (name not in frozen), name
