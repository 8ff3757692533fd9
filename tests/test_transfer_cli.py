"""Transfer learning (issue 17, point 1): heads of the zoo, freezing by layers/modules/parameters/prefix,
frozen batch norm, gradual unfreezing, per-group learning rates, and ``minidl train --weights ... --freeze``."""
import os
import re

import numpy as np
import pytest

import minidl
from minidl import nn, optim
from minidl.cli import main
from minidl.data import DataLoader, TensorDataset
from minidl.models import get_model
from minidl.train import Trainer, load_model_state, param_groups, read_trainer_metadata
from minidl.transfer import FrozenLayers, forward_layers, freeze


def _small_cnn():
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(4, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                         nn.Flatten(), nn.Linear(4, 3))


# ----------------------------------------------------------------------------- heads
def test_head_names_know_aux_heads_and_squeezenets_conv(no_init):
    assert nn.head_names(get_model("googlenet", num_classes=7)) == ["fc", "aux1.fc2", "aux2.fc2"]
    assert nn.head_names(get_model("resnet20_cifar")) == ["fc"]
    assert nn.head_names(get_model("mobilenet_v2")) == ["classifier.1"]
    squeeze = get_model("squeezenet1_1")
    assert nn.head_names(squeeze) == ["classifier.1"]
    head = nn.replace_head(squeeze, 5)
    assert isinstance(head, nn.Conv2d) and head.kernel_size == (1, 1)
    assert (head.in_channels, head.out_channels) == (512, 5)
    assert squeeze.classifier[1] is head and head.weight.shape == (5, 512, 1, 1)


def test_replace_head_swaps_the_aux_heads_too(no_init):
    model = get_model("googlenet", num_classes=1000)
    head = nn.replace_head(model, 4)
    assert model.fc is head and head.weight.shape == (4, 1024)
    assert model.aux1.fc2.weight.shape == (4, 1024) and model.aux2.fc2.weight.shape == (4, 1024)


def test_a_model_without_a_linear_head_is_refused_clearly():
    model = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3))
    with pytest.raises(ValueError, match=r"cannot tell the classifier of Sequential: its last parameter '1.bias' "
                                         r"belongs to a BatchNorm1d"):
        nn.replace_head(model, 2)


# ----------------------------------------------------------------------------- counting layers
def test_layers_are_leaf_modules_in_forward_order_not_registration_order():
    model = get_model("lenet5")
    # LeNet-5 registers its pooling layer last but calls it right after conv1, and again after conv2:
    # two layers, as Keras' LeNet has two pooling layers
    assert [name for name, m in model.named_modules() if name][-1] == "pool"
    assert forward_layers(model, (1, 32, 32)) == ["conv1", "pool", "conv2", "pool", "fc1", "fc2", "fc3"]
    result = freeze(model, 3, by="layers", input_size=(1, 32, 32))
    assert result.params == ["conv1.weight", "conv1.bias", "conv2.weight", "conv2.bias"]
    assert str(result).startswith("froze 3 of 7 layers (2,572 of 61,706 parameters;")
    assert model.num_parameters(trainable_only=True) == 61_706 - 156 - 2_416


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # uninitialised weights: only the call order counts
def test_aux_heads_not_called_in_eval_come_last(no_init):
    model = get_model("googlenet", num_classes=5)
    layers = forward_layers(model, (3, 64, 64))
    assert len(layers) == len([m for m in model.modules() if not m._modules]) == 140
    assert layers[-11:] == ["fc", "aux1.conv.conv", "aux1.conv.bn", "aux1.fc1", "aux1.fc2", "aux1.dropout",
                            "aux2.conv.conv", "aux2.conv.bn", "aux2.fc1", "aux2.fc2", "aux2.dropout"]
    assert layers[:3] == ["conv1.conv", "conv1.bn", "maxpool1"]


def test_freeze_by_each_unit():
    cases = [  # by, n, frozen parameter names, count line
        ("layers", 4, ["0.weight", "0.bias", "1.weight", "1.bias"], "froze 4 of 10 layers"),
        ("modules", 3, ["0.weight", "0.bias", "1.weight", "1.bias", "4.weight", "4.bias"],
         "froze 3 of 5 modules with parameters"),
        ("parameters", 3, ["0.weight", "0.bias", "1.weight"], "froze 3 of 10 parameter tensors"),
        ("prefix", ["1", "4"], ["1.weight", "1.bias", "4.weight", "4.bias"], "froze 4 of 10 parameter tensors"),
    ]
    for by, n, names, line in cases:
        model = _small_cnn()
        result = freeze(model, n, by=by, input_size=(1, 8, 8))
        assert result.params == names, by
        assert str(result).startswith(line), str(result)
        assert [name for name, p in model.named_parameters() if not p.requires_grad] == names


def test_prefix_matches_whole_name_parts():
    model = nn.Sequential(*[nn.Linear(2, 2) for _ in range(12)])
    assert freeze(model, "1", by="prefix").params == ["1.weight", "1.bias"]  # not 10.*, 11.*
    with pytest.raises(ValueError, match="no parameter name starts with 'layer9'"):
        freeze(model, "layer9", by="prefix")


def test_freeze_says_how_many_layers_there_are():
    with pytest.raises(ValueError, match=r"cannot freeze 11 layers: Sequential has 10 layers \(leaf-module calls"):
        freeze(_small_cnn(), 11, by="layers", input_size=(1, 8, 8))
    with pytest.raises(ValueError, match="by='layers' counts every leaf-module call"):
        nn.freeze(_small_cnn(), first_n=2, by="layers")


# ----------------------------------------------------------------------------- frozen BN, unfreezing, groups
def _fit(model, epochs, hook, groups, lr=0.1):
    minidl.manual_seed(0)
    x = minidl.randn(16, 1, 8, 8)
    y = minidl.tensor(np.arange(16) % 3)
    loader = DataLoader(TensorDataset(x, y), batch_size=8)
    trainer = Trainer(model, optim.SGD(groups, lr=lr), progress=False, on_epoch_start=hook)
    trainer.fit(loader, epochs=epochs)
    return trainer


def test_frozen_batch_norm_stays_in_eval_mode_and_keeps_its_statistics():
    model = _small_cnn()
    result = freeze(model, 4, by="layers", input_size=(1, 8, 8))
    assert result.batchnorms == ["1"]
    mean, var = model[1].running_mean.numpy().copy(), model[1].running_var.numpy().copy()
    frozen_weight = model[0].weight.numpy().copy()
    hook = FrozenLayers(model, result, log=lambda line: None)
    _fit(model, 1, hook, param_groups(model, 0.1))
    assert model[1].training is False and model[5].training is True
    np.testing.assert_array_equal(model[1].running_mean.numpy(), mean)  # not updated by training batches
    np.testing.assert_array_equal(model[1].running_var.numpy(), var)
    np.testing.assert_array_equal(model[0].weight.numpy(), frozen_weight)
    assert not np.array_equal(model[5].running_mean.numpy(), np.zeros(4))  # the trainable BN did update


def test_unfreeze_at_makes_the_frozen_layers_train_from_that_epoch():
    model = _small_cnn()
    result = freeze(model, 4, by="layers", input_size=(1, 8, 8))
    lines, weights = [], []
    hook = FrozenLayers(model, result, unfreeze_at=2, log=lines.append)

    def record(trainer, epoch):
        hook(trainer, epoch)
        weights.append((epoch, model[0].weight.requires_grad, model[1].training, model[0].weight.numpy().copy()))

    _fit(model, 3, record, param_groups(model, 0.1, trainable_only=False))
    (e1, g1, bn1, w1), (e2, g2, bn2, w2), (e3, g3, bn3, w3) = weights
    assert (g1, bn1, g2, bn2, g3, bn3) == (False, False, True, True, True, True)
    np.testing.assert_array_equal(w1, w2)  # frozen through epoch 1
    assert not np.array_equal(w2, w3)      # trained in epoch 2
    assert lines == ["epoch 2: unfroze the 4 frozen layers (48 parameters)"]  # conv 36 + 4, batch norm 4 + 4


def test_head_lr_is_its_own_param_group():
    model = _small_cnn()
    freeze(model, 4, by="layers", input_size=(1, 8, 8))
    groups = param_groups(model, 0.01, head_lr=0.5, head=[n + "." for n in nn.head_names(model)])
    assert [(len(g["params"]), g["lr"]) for g in groups] == [(4, 0.01), (2, 0.5)]
    everything = param_groups(model, 0.01, trainable_only=False)
    assert len(everything[0]["params"]) == 10


# ----------------------------------------------------------------------------- the CLI
def _train(capsys, *options):
    rc = main(["train", *options])
    out, err = capsys.readouterr()
    return rc, out, err


def _saved_each_epoch(monkeypatch):
    saved = []
    original = Trainer.save_checkpoint

    def keep(self, path, train_loader=None):
        original(self, path, train_loader)
        if os.path.basename(path) == "last.npz":
            saved.append(load_model_state(path))

    monkeypatch.setattr(Trainer, "save_checkpoint", keep)
    return saved


def test_train_from_a_weights_file_replaces_the_head_and_freezes(tmp_path, capsys, monkeypatch):
    minidl.manual_seed(1)
    pretrained = get_model("mlp", num_classes=3, dropout=0.1)  # "pretrained" on 3 classes: the digits have 10
    weights = tmp_path / "pretrained.npz"
    minidl.serialization.save(pretrained.state_dict(), weights)
    saved = _saved_each_epoch(monkeypatch)
    rc, out, err = _train(capsys, "mlp", "--weights", str(weights), "--num-classes", "10", "--freeze", "2",
                          "--head-lr", "0.2", "--scheduler", "none", "--epochs", "1", "--quiet",
                          "--checkpoint", str(tmp_path / "ck"))
    assert rc == 0, err
    state = saved[0]
    # the frozen first Linear is the file's; the hidden layer after it trained; the head is new (10 classes)
    np.testing.assert_array_equal(state["features.0.weight"], pretrained.features[0].weight.numpy())
    assert not np.array_equal(state["features.3.weight"], pretrained.features[3].weight.numpy())
    assert state["classifier.weight"].shape == (10, pretrained.classifier.in_features)
    record = read_trainer_metadata(tmp_path / "ck" / "last.npz")
    assert record["config"]["head_lr"] == 0.2 and record["config"]["freeze_by"] == "layers"
    assert record["history"][0]["lr"] == 0.2  # the head's group (the body keeps the recipe's lr)


def test_train_prints_the_frozen_count_and_unfreezes(tmp_path, capsys, monkeypatch):
    saved = _saved_each_epoch(monkeypatch)
    rc, out, err = _train(capsys, "mlp", "--freeze", "2", "--unfreeze-at", "2", "--epochs", "2",
                          "--checkpoint", str(tmp_path))
    assert rc == 0, err
    layers = forward_layers(get_model("mlp", dropout=0.1), (1, 8, 8))  # the digits recipe's MLP
    assert layers[:2] == ["flatten", "features.0"] and len(layers) == 8
    assert re.search(rf"^froze 2 of {len(layers)} layers \(\d[\d,]* of \d[\d,]* parameters; 0 frozen batch-norm", out,
                     re.M)
    assert "epoch 2: unfroze the 2 frozen layers" in out
    first, second = saved  # after epoch 1 and after epoch 2, when the first Linear trains too
    assert not np.array_equal(first["features.0.weight"], second["features.0.weight"])
    assert not np.array_equal(first["classifier.weight"], second["classifier.weight"])


@pytest.mark.parametrize("options, message", [
    (["--num-classes", "3"], "--num-classes 3: dataset 'digits' has 10 classes"),
    (["--freeze", "99"], "--freeze 99 --freeze-by layers: cannot freeze 99 layers: MLP has"),
    (["--freeze", "2", "--freeze-by", "prefix"], "--freeze-by prefix: --freeze names layer prefixes"),
    (["--freeze", "features"], "--freeze features: a name prefix needs --freeze-by prefix"),
    (["--freeze", "nothing", "--freeze-by", "prefix"], "no parameter name starts with 'nothing'"),
    (["--unfreeze-at", "2"], "--unfreeze-at needs --freeze"),
    (["--freeze", "1", "--unfreeze-at", "1"], "--unfreeze-at must be an epoch >= 2"),
    (["--head-lr", "0"], "--head-lr must be > 0"),
])
def test_transfer_option_errors_are_one_line(capsys, options, message):
    rc, _, err = _train(capsys, "mlp", "--epochs", "1", "--quiet", *options)
    assert rc == 2 and message in err and len(err.strip().splitlines()) == 1, err
