"""Each model's facts next to its builder: model cards and weights records, ``get_model(weights=...)``,
``minidl train --weights`` and the recipes and counts the CLI reads from the cards."""
import gc
import hashlib
import os
import re
import subprocess
import sys

import numpy as np
import pytest

import minidl
from minidl import nn
from minidl.cli import main
from minidl.models import (
    Preset, Recipe, ResNet18_Weights, VGG16_Weights, Weights, WeightsEnum, get_model, get_model_builder,
    get_model_card, imagenet_classes, list_models,
)
from minidl.serialization import save
from minidl.train import load_model_state

ACCURACY = re.compile(r"test accuracy: ([\d.]+)%")


def _entries(enum_cls):
    """The distinct records of a WeightsEnum (aliases such as DEFAULT once)."""
    return [] if enum_cls is None else list(enum_cls)


# ----------------------------------------------------------------------------- the records themselves
COUNTED = [name for name in list_models() if get_model_card(name).num_params is not None]


def test_published_counts_are_recorded_for_the_zoo():
    # every model of shared/reference/param_counts.md has its count on its card
    assert {"lenet5", "alexnet", "alexnet_bn", "vgg16", "googlenet", "inception_v3", "resnet18", "resnet50",
            "resnext101_32x8d", "mobilenet_v1", "mobilenet_v2", "efficientnet_b7", "densenet201", "xception",
            "preact_resnet50"} <= set(COUNTED)


@pytest.mark.parametrize("name", COUNTED)
def test_card_and_weights_counts_equal_the_builder(no_init, name):
    card = get_model_card(name)
    model = get_model_builder(name)()
    count = model.num_parameters()
    del model
    gc.collect()
    assert card.num_params == count
    assert get_model_builder(name).published_params == count
    for entry in _entries(card.weights):
        # a record's model is the default builder with as many classes as the record has names
        assert len(entry.meta["categories"]) == 1000
        assert entry.meta["num_params"] == count, entry


@pytest.mark.parametrize("name", ["alexnet", "resnet18", "mobilenet_v2", "efficientnet_b0"])
def test_card_macs_agree_with_summary(zero_init, name):
    card = get_model_card(name)
    assert card.macs is not None
    s = minidl.summary(get_model(name), card.input_size, depth=1)
    assert abs(s.total_macs - card.macs) / card.macs < 1e-3, (s.total_macs, card.macs)


def test_weights_records_carry_class_names_hash_and_preset():
    names = imagenet_classes()
    for model in list_models():
        card = get_model_card(model)
        for entry in _entries(card.weights):
            assert list(entry.meta["categories"]) == names
            # torchvision's file names end in the first 8 hex digits of the file's SHA-256
            stem = os.path.splitext(entry.file_name)[0]
            assert entry.sha256 == stem.rsplit("-", 1)[1] and len(entry.sha256) == 8
            assert entry.url.endswith("/" + entry.file_name)
            assert entry.transforms.crop == card.input_size[1] == card.input_size[2]
        if card.weights is not None:
            assert card.preset == card.weights.DEFAULT.transforms
    assert ResNet18_Weights.DEFAULT is ResNet18_Weights.IMAGENET1K_V1
    assert VGG16_Weights.IMAGENET1K_V1.file_name == "vgg16-397923af.pth"
    assert get_model_card("inception_v3").preset == Preset(342, 299)
    assert get_model_card("efficientnet_b3").preset == Preset(320, 300, interpolation="bicubic")
    assert get_model_card("xception").preset.mean == (0.5, 0.5, 0.5)


def test_weights_preset_lookup_reads_the_cards():
    from minidl.weights import preset

    for name in list_models():
        assert preset(name) == get_model_card(name).preset
    assert preset("not_a_model") == Preset(256, 224)


def test_verify_names_and_refuse_others():
    assert ResNet18_Weights.verify("DEFAULT") is ResNet18_Weights.IMAGENET1K_V1
    assert ResNet18_Weights.verify("ResNet18_Weights.IMAGENET1K_V1") is ResNet18_Weights.IMAGENET1K_V1
    assert ResNet18_Weights.verify(None) is None
    with pytest.raises(ValueError, match="IMAGENET1K_V1"):
        ResNet18_Weights.verify("IMAGENET1K_V9")
    with pytest.raises(TypeError, match="ResNet18_Weights"):
        ResNet18_Weights.verify(VGG16_Weights.DEFAULT)
    with pytest.raises(ValueError, match="hex"):
        Weights(file_name="x.npz", sha256="xyz", url="", transforms=Preset(32, 32), meta={})


def test_cache_folder_follows_minidl_home(tmp_path, monkeypatch):
    monkeypatch.setenv("MINIDL_HOME", str(tmp_path))
    assert ResNet18_Weights.DEFAULT.path() == os.path.join(str(tmp_path), "checkpoints", "resnet18-f37072fd.pth")
    monkeypatch.delenv("MINIDL_HOME")
    assert ResNet18_Weights.DEFAULT.path() == os.path.join(os.path.expanduser("~"), ".cache", "minidl",
                                                           "checkpoints", "resnet18-f37072fd.pth")


# ----------------------------------------------------------------------------- get_model(weights=...)
def _sha256(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


@pytest.fixture
def lenet_record(tmp_path, monkeypatch):
    """A LeNet-5 weights record registered for the test: its file saved in $MINIDL_HOME/checkpoints in
    each format, the record's digest taken from the file. Returns a function format -> (enum, state)."""
    monkeypatch.setenv("MINIDL_HOME", str(tmp_path))
    os.makedirs(tmp_path / "checkpoints")
    builder = get_model_builder("lenet5")
    minidl.manual_seed(3)
    source = get_model("lenet5")
    state = {k: v.numpy().copy() for k, v in source.state_dict().items()}

    def register(ext, digest_length=64):
        path = tmp_path / "checkpoints" / f"lenet5-digits{ext}"
        if ext == ".pth":
            torch = pytest.importorskip("torch")
            torch.save({k: torch.tensor(v) for k, v in state.items()}, path)
        else:
            save(source, path)

        class LeNet5_TestWeights(WeightsEnum):
            DIGITS_V1 = Weights(file_name=path.name, sha256=_sha256(path)[:digest_length],
                                url=f"https://example.invalid/{path.name}", transforms=Preset(32, 32),
                                meta={"num_params": 61_706, "categories": tuple("0123456789")})
            DEFAULT = DIGITS_V1

        monkeypatch.setattr(builder, "card", builder.card.replace(weights=LeNet5_TestWeights))
        return LeNet5_TestWeights, state, path

    return register


def _same_state(model, state):
    got = {k: v.numpy() for k, v in model.state_dict().items()}
    assert list(got) == list(state)
    for key in state:
        np.testing.assert_array_equal(got[key], state[key], err_msg=key)


@pytest.mark.parametrize("ext", [".npz", ".safetensors", ".pth"])
def test_get_model_loads_a_verified_record(lenet_record, ext):
    enum_cls, state, _ = lenet_record(ext)
    for weights in (enum_cls.DIGITS_V1, "DIGITS_V1", "DEFAULT", "LeNet5_TestWeights.DIGITS_V1"):
        _same_state(get_model("lenet5", weights=weights), state)


def test_get_model_accepts_the_published_prefix_of_the_digest(lenet_record):
    enum_cls, state, _ = lenet_record(".npz", digest_length=8)
    _same_state(get_model("lenet5", weights="DEFAULT"), state)


def test_get_model_refuses_a_file_with_another_hash(lenet_record):
    enum_cls, _, path = lenet_record(".npz")
    before = path.read_bytes()
    save({k: v + 1 for k, v in load_model_state(path).items()}, path)  # same name, other bytes
    assert path.read_bytes() != before
    with pytest.raises(ValueError, match=re.escape(str(path)) + ".*does not match.*not used"):
        get_model("lenet5", weights="DEFAULT")


def test_get_model_says_where_to_put_a_missing_file(lenet_record, tmp_path):
    enum_cls, _, path = lenet_record(".npz")
    os.remove(path)
    with pytest.raises(FileNotFoundError) as info:
        get_model("lenet5", weights=enum_cls.DEFAULT)
    message = str(info.value)
    assert str(path) in message and "https://example.invalid/lenet5-digits.npz" in message
    assert "MINIDL_HOME" in message


def test_get_model_checks_the_record_belongs_to_the_model(lenet_record):
    enum_cls, _, _ = lenet_record(".npz")
    with pytest.raises(TypeError, match="another model"):
        get_model("resnet18", weights=enum_cls.DEFAULT)
    with pytest.raises(ValueError, match="10 classes"):
        get_model("lenet5", weights="DEFAULT", num_classes=5)
    with pytest.raises(FileNotFoundError, match="DIGITS_V1"):
        get_model("lenet5", weights="DIGITS_V2")


def test_get_model_loads_a_local_file(tmp_path):
    minidl.manual_seed(4)
    source = get_model("lenet5")
    path = tmp_path / "mine.safetensors"
    save(source, path)
    state = {k: v.numpy() for k, v in source.state_dict().items()}
    _same_state(get_model("lenet5", weights=str(path)), state)
    _same_state(get_model("lenet5", weights=path), state)  # os.PathLike too
    with pytest.raises(FileNotFoundError, match="no such file"):
        get_model("lenet5", weights=str(tmp_path / "absent.npz"))


# ----------------------------------------------------------------------------- the CLI reads the cards
def test_train_recipe_comes_from_the_card(capsys, monkeypatch):
    builder = get_model_builder("lenet5")
    assert builder.card.recipe == Recipe(epochs=15, batch_size=32, lr=0.05, weight_decay=5e-4, label_smoothing=0.1)
    assert get_model_card("mlp").recipe.model_kwargs == {"dropout": 0.1}
    monkeypatch.setattr(builder, "card", builder.card.replace(recipe=Recipe(epochs=1, lr=0.02, optimizer="adam")))
    assert main(["train", "lenet5", "--val-split", "0"]) == 0
    out = capsys.readouterr().out
    assert "adam lr 0.02, cosine, 1 epochs" in out and "1438 train" in out


def test_models_command_reads_the_cards(capsys, monkeypatch):
    assert main(["models", "lenet5"]) == 0
    assert "61,706" in capsys.readouterr().out
    builder = get_model_builder("lenet5")
    monkeypatch.setattr(builder, "card", builder.card.replace(num_params=61_707))
    assert main(["models", "lenet5"]) == 1
    out, err = capsys.readouterr()
    assert "61,707" in out and "lenet5" in err


# shared/reference/param_counts.md's exact column, for a spread of the zoo
REFERENCE_COUNTS = {"lenet5": 61_706, "alexnet": 61_100_840, "vgg16": 138_357_544, "vgg19_bn": 143_678_248,
                    "googlenet": 13_004_888, "inception_v3": 27_161_264, "resnet50": 25_557_032,
                    "resnext101_32x8d": 88_791_336, "mobilenet_v2": 3_504_872, "efficientnet_b7": 66_347_960,
                    "densenet201": 20_013_928, "xception": 22_855_952}


def test_models_command_counts_without_drawing_or_writing_weights(capsys, monkeypatch):
    """`minidl models` builds every model with its initialisation skipped: not one draw, not one fill."""
    def refuse(*args, **kwargs):
        raise AssertionError("minidl models initialised a weight")

    monkeypatch.setattr(nn.init, "_rng", refuse)
    monkeypatch.setattr(nn.init, "_fill", refuse)
    assert main(["models"]) == 0
    rows = {line.split()[0]: line.split() for line in capsys.readouterr().out.splitlines()[2:]}
    assert set(rows) == set(list_models())
    for name, count in REFERENCE_COUNTS.items():
        assert rows[name][1:4] == [f"{count:,}", f"{count:,}", "✓"], rows[name]
    assert all(row[3] in ("✓", "--") for row in rows.values())


def test_models_command_leaves_the_weights_memory_untouched():
    """VGG-19-BN's 575 MB of float32 weights are allocated, never written: the process stays small."""
    if not os.path.exists("/proc/self/status"):
        pytest.skip("reads the peak resident memory from /proc (Linux)")
    # VmHWM: this process image's peak resident memory (getrusage's would count the forking parent's)
    code = ("import sys\nfrom minidl.cli import main\nrc = main(['models', 'vgg19_bn'])\n"
            "peak = [line for line in open('/proc/self/status') if line.startswith('VmHWM:')][0]\n"
            "print(int(peak.split()[1]) // 1024, file=sys.stderr)\nsys.exit(rc)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "143,678,248" in result.stdout
    peak_mb = int(result.stderr.strip().splitlines()[-1])
    assert peak_mb < 400, f"peak resident memory {peak_mb} MB"


def test_skip_init_leaves_the_initialisers_on_afterwards():
    from minidl.nn.utils import skip_init

    minidl.manual_seed(0)
    skipped = skip_init(nn.Linear, 3, 2)
    assert skipped.weight.shape == (2, 3) and skipped.num_parameters() == 8
    minidl.manual_seed(0)
    drawn = nn.Linear(3, 2)  # initialised as always: the seeded draw, inside the PyTorch bound
    assert np.all(np.abs(drawn.weight.numpy()) <= 1 / np.sqrt(3)) and np.any(drawn.weight.numpy() != 0)
    minidl.manual_seed(0)
    assert np.array_equal(nn.Linear(3, 2).weight.numpy(), drawn.weight.numpy())


def _accuracy(out):
    match = ACCURACY.search(out)
    assert match, out
    return float(match.group(1))


def test_train_starts_from_a_weights_file(tmp_path, capsys):
    assert main(["train", "lenet5", "--epochs", "3", "--quiet", "--checkpoint", str(tmp_path / "ck")]) == 0
    assert _accuracy(capsys.readouterr().out) > 85
    # with a learning rate this small one epoch barely moves the weights: the accuracy is the file's
    tiny = ["--epochs", "1", "--lr", "1e-6", "--quiet"]
    assert main(["train", "lenet5", *tiny, "--weights", str(tmp_path / "ck" / "best.npz")]) == 0
    assert _accuracy(capsys.readouterr().out) > 85
    assert main(["train", "lenet5", *tiny]) == 0  # the same run from scratch: near chance (10 classes)
    assert _accuracy(capsys.readouterr().out) < 40


def test_train_weights_replaces_the_head_and_freezes(tmp_path, capsys):
    minidl.manual_seed(5)
    source = get_model("lenet5", num_classes=43)  # e.g. trained on traffic signs
    save(source, tmp_path / "signs.npz")
    saved = {k: v.numpy() for k, v in source.state_dict().items()}
    # --freeze counts layers as Keras does: conv1, its pooling, conv2
    rc = main(["train", "lenet5", "--weights", str(tmp_path / "signs.npz"), "--freeze", "3", "--epochs", "1",
               "--checkpoint", str(tmp_path / "ck")])
    out = capsys.readouterr().out
    assert rc == 0 and "43-class head replaced by a new 10-class one" in out
    state = load_model_state(tmp_path / "ck" / "last.npz")
    for key in ("conv1.weight", "conv1.bias", "conv2.weight", "conv2.bias"):  # frozen: as loaded
        np.testing.assert_array_equal(state[key], saved[key], err_msg=key)
    assert not np.array_equal(state["fc1.weight"], saved["fc1.weight"])  # trained from the loaded values
    assert state["fc3.weight"].shape == (10, 84)


def test_train_weights_record_and_its_errors(lenet_record, capsys):
    enum_cls, state, path = lenet_record(".npz")
    assert main(["train", "lenet5", "--weights", "DEFAULT", "--epochs", "1", "--lr", "1e-6"]) == 0
    assert "weights: LeNet5_TestWeights.DIGITS_V1" in capsys.readouterr().out
    save({k: v * 2 for k, v in state.items()}, path)
    assert main(["train", "lenet5", "--weights", "DEFAULT", "--epochs", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(path) in err[0] and "not used" in err[0]
    assert main(["train", "lenet5", "--weights", "NOPE", "--epochs", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "DIGITS_V1" in err[0]


def test_a_real_record_refuses_a_file_that_is_not_its_own(tmp_path, monkeypatch):
    # torchvision's ResNet-18 record expects a file whose SHA-256 starts with f37072fd: any other
    # file at that place is refused before a model is built
    monkeypatch.setenv("MINIDL_HOME", str(tmp_path))
    path = ResNet18_Weights.DEFAULT.path()
    os.makedirs(os.path.dirname(path))
    save(get_model("lenet5"), path + ".npz")
    os.rename(path + ".npz", path)
    with pytest.raises(ValueError, match="f37072fd.*not used"):
        get_model("resnet18", weights="IMAGENET1K_V1")
    assert main(["predict", "resnet18", "--weights", "DEFAULT", path]) == 2
