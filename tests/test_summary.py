"""minidl.summary and the `minidl models` / `minidl summary` commands.

LeNet-5 against the course's layer table, MACs of AlexNet, VGG-16, GoogLeNet and
Inception v3 against shared/reference/param_counts.md (within 0.1%), depth folding,
frozen parameters, and that the summary leaves the model and the classes as they were.
"""
import numpy as np
import pytest

import minidl
from minidl import models, nn
from minidl.cli import main
from minidl.nn.module import Module


def test_lenet5_table_matches_the_course():
    s = minidl.summary(models.lenet5(), (1, 32, 32))
    rows = [(r.name, r.type, r.output_shape, r.params, r.macs) for r in s.rows]
    assert rows == [
        ("conv1", "Conv2d", [1, 6, 28, 28], 156, 6 * 28 * 28 * 1 * 25),
        ("pool", "MaxPool2d", [1, 6, 14, 14], 0, 0),
        ("conv2", "Conv2d", [1, 16, 10, 10], 2_416, 16 * 10 * 10 * 6 * 25),
        ("pool", "MaxPool2d", [1, 16, 5, 5], 0, 0),  # one module, called twice: two rows
        ("fc1", "Linear", [1, 120], 48_120, 400 * 120),
        ("fc2", "Linear", [1, 84], 10_164, 120 * 84),
        ("fc3", "Linear", [1, 10], 850, 84 * 10),
    ]
    assert s.total_params == s.trainable_params == 61_706 and s.non_trainable_params == 0
    assert s.total_macs == 117_600 + 240_000 + 48_000 + 10_080 + 840
    assert s["conv1"].output_bytes == 6 * 28 * 28 * 4
    assert s.activation_bytes == 4 * (6 * 28 * 28 + 6 * 14 * 14 + 16 * 10 * 10 + 16 * 5 * 5 + 120 + 84 + 10)
    assert s.param_bytes == 61_706 * 4 and s.input_bytes == 32 * 32 * 4
    assert s.total_bytes == s.input_bytes + s.activation_bytes + s.param_bytes + s.buffer_bytes
    text = str(s)
    for expected in ("conv1", "Conv2d", "[1, 6, 28, 28]", "48,120", "Total params: 61,706", "416,520"):
        assert expected in text


def test_batch_size_scales_shapes_macs_and_memory():
    one = minidl.summary(models.lenet5(), (1, 32, 32))
    four = minidl.summary(models.lenet5(), (1, 32, 32), batch_size=4)
    assert four["fc3"].output_shape == [4, 10]
    assert four.total_macs == 4 * one.total_macs and four.activation_bytes == 4 * one.activation_bytes
    assert four.total_params == one.total_params


# Reference MACs of Conv2d + Linear layers (shared/reference/param_counts.md)
REFERENCE_MACS = [
    ("alexnet", (3, 224, 224), 0.7142e9),
    ("vgg16", (3, 224, 224), 15.4703e9),
    ("googlenet", (3, 224, 224), 1.4984e9),
    ("inception_v3", (3, 299, 299), 5.7132e9),
    ("resnet18", (3, 224, 224), 1.8141e9),
    ("resnet50", (3, 224, 224), 4.0892e9),
    ("mobilenet_v2", (3, 224, 224), 0.3008e9),
    ("efficientnet_b0", (3, 224, 224), 0.3858e9),
    ("densenet121", (3, 224, 224), 2.8342e9),
]


@pytest.mark.parametrize("name, size, expected", REFERENCE_MACS, ids=[r[0] for r in REFERENCE_MACS])
def test_macs_agree_with_the_reference_table(zero_init, name, size, expected):
    s = minidl.summary(models.get_model(name), size, depth=1)
    assert abs(s.total_macs - expected) / expected < 1e-3, s.total_macs
    assert s.total_params == models.get_model_builder(name).published_params


def test_depth_folds_sub_modules_into_their_parent(zero_init):
    model = models.googlenet(aux_logits=False)
    shallow = minidl.summary(model, (3, 64, 64), depth=1)
    deep = minidl.summary(model, (3, 64, 64), depth=3)
    names = [r.name for r in shallow.rows]
    assert names[:5] == ["conv1", "maxpool1", "conv2", "conv3", "maxpool2"] and names[-3:] == ["avgpool", "dropout", "fc"]
    assert all("." not in n for n in names)
    block = shallow["inception3a"]
    assert block.params == sum(p.numel() for p in model.inception3a.parameters())
    convs = [r for r in deep.layers if r.name.startswith("inception3a.") and r.type == "Conv2d"]
    assert len(convs) == 6 and block.macs == sum(r.macs for r in convs)
    assert "inception3a.branch2.1" in [r.name for r in deep.rows]
    assert "inception3a.branch2.1.conv" not in [r.name for r in deep.rows]  # depth 4: folded into its parent
    assert shallow.total_macs == deep.total_macs
    assert "branch2" not in str(shallow) and "branch2" in str(deep)


def test_frozen_parameters_are_non_trainable():
    model = models.lenet5()
    nn.freeze(model, prefix="conv1")
    s = minidl.summary(model, (1, 32, 32))
    assert s.non_trainable_params == 156 and s.trainable_params == 61_706 - 156
    assert s["conv1"].non_trainable == 156 and s["conv2"].non_trainable == 0


def test_summary_leaves_model_classes_and_random_stream_untouched(zero_init):
    model = models.googlenet(num_classes=5)
    model.train()
    model.inception3a.eval()  # a mixed state must come back as it was
    state = minidl.get_rng_state()
    call = Module.__call__
    s = minidl.summary(model, (3, 32, 32), depth=1, batch_size=2)
    aux1 = s["aux1"]  # eval by default: the auxiliary classifiers do not run, their row says so
    assert aux1.note == "training only" and aux1.output_shapes == [] and aux1.macs == 0
    assert model.training and not model.inception3a.training and model.inception3b.training
    assert minidl.get_rng_state() == state
    assert Module.__call__ is call
    running = model.conv1.bn.running_mean.numpy().copy()
    trained = minidl.summary(model, (3, 32, 32), depth=1, batch_size=2, mode="train")
    assert {"aux1", "aux2"} <= {r.name for r in trained.rows}
    assert trained.total_macs > s.total_macs
    np.testing.assert_array_equal(running, model.conv1.bn.running_mean.numpy())
    assert int(model.conv1.bn.num_batches_tracked.item()) == 0


def test_call_is_restored_when_the_forward_pass_fails():
    call = Module.__call__
    with pytest.raises(ValueError, match="32, 32"):
        minidl.summary(models.lenet5(), (1, 28, 28))
    assert Module.__call__ is call


def test_bad_arguments():
    model = models.lenet5()
    with pytest.raises(ValueError, match="input_size"):
        minidl.summary(model, (1, 0, 32))
    with pytest.raises(ValueError, match="depth"):
        minidl.summary(model, (1, 32, 32), depth=0)
    with pytest.raises(ValueError, match="mode"):
        minidl.summary(model, (1, 32, 32), mode="test")
    with pytest.raises(TypeError, match="Module"):
        minidl.summary(lambda x: x, (1, 32, 32))


def test_summary_is_callable_from_the_package_every_time(capsys):
    first = minidl.summary(models.mlp(), (1, 8, 8))
    second = minidl.summary(models.mlp(), (1, 8, 8), verbose=True)
    assert first.total_params == second.total_params == 17_226
    assert "Total params: 17,226" in capsys.readouterr().out


# ----------------------------------------------------------------------------- command line
def test_cli_summary(capsys):
    assert main(["summary", "lenet5", "--depth", "1"]) == 0
    out = capsys.readouterr().out
    assert "Total params: 61,706" in out and "[1, 16, 10, 10]" in out
    assert main(["summary", "mlp_gtsdb", "--input", "3x48x48", "--num-classes", "5"]) == 0
    # the MLP is built for the requested input: 6912 inputs, 300-150 hidden units, 5 classes
    assert f"Total params: {6912 * 300 + 300 + 300 * 150 + 150 + 150 * 5 + 5:,}" in capsys.readouterr().out
    assert main(["summary", "no_such_model"]) == 2
    assert "unknown model" in capsys.readouterr().err
    assert main(["summary", "lenet5", "--input", "1xtwo"]) == 2
    assert "--input" in capsys.readouterr().err
    assert main(["summary", "lenet5", "--input", "1x28x28"]) == 2


def test_cli_models_table(capsys):
    # "_cnn" is a substring pattern ("cifar" would now also match the *_cifar ResNets of the zoo)
    assert main(["models", "lenet5", "mlp_*", "_cnn"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["model", "params", "published", "match", "input"]
    rows = {line.split()[0]: line.split() for line in lines[2:]}
    assert set(rows) == {"lenet5", "mlp_cifar100", "mlp_gtsdb", "cifar_cnn"}
    assert rows["lenet5"] == ["lenet5", "61,706", "61,706", "✓", "1x32x32"]
    assert rows["cifar_cnn"] == ["cifar_cnn", "7,826,660", "--", "--", "3x32x32"]
    assert main(["models", "zzz_nothing"]) == 2
