"""Pretrained-weights round trips: torchvision-layout checkpoints written by torch load into minidl's
models without torch's help, and the logits equal PyTorch's (ResNet-18 and MobileNet v2)."""
import numpy as np
import pytest

import minidl
from minidl.cli import main
from minidl.models import get_model
from minidl.serialization import load_checkpoint

torch = pytest.importorskip("torch")
import torch_reference_models  # noqa: E402

try:  # torchvision's own models where it imports (CI installs it); else replicas with its module names
    import torchvision

    CASES = {"resnet18": torchvision.models.resnet18, "mobilenet_v2": torchvision.models.mobilenet_v2}
except ImportError:
    CASES = {"resnet18": torch_reference_models.ResNet18, "mobilenet_v2": torch_reference_models.MobileNetV2}
REPLICAS = {"resnet18": torch_reference_models.ResNet18, "mobilenet_v2": torch_reference_models.MobileNetV2}


def _torch_model(name, seed=0):
    torch.manual_seed(seed)
    model = CASES[name]()
    # non-trivial batch-norm statistics, so that evaluation mode is really exercised
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 1.5)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)
            m.num_batches_tracked.fill_(7)
    return model.eval()


@pytest.mark.parametrize("name", sorted(REPLICAS))
def test_replicas_have_torchvision_layout(name):
    """The replicas stand in for torchvision where it does not import: same state_dict keys, order, shapes."""
    tv = pytest.importorskip("torchvision")
    theirs = {k: tuple(v.shape) for k, v in getattr(tv.models, name)().state_dict().items()}
    ours = {k: tuple(v.shape) for k, v in REPLICAS[name]().state_dict().items()}
    assert list(ours) == list(theirs) and ours == theirs


@pytest.mark.parametrize("name", sorted(CASES))
def test_torch_checkpoint_round_trip_logits(name, tmp_path):
    reference = _torch_model(name)
    path = tmp_path / f"{name}.pth"
    torch.save(reference.state_dict(), path)

    state = load_checkpoint(path)
    expected = reference.state_dict()
    assert list(state) == list(expected)
    for key, value in expected.items():
        np.testing.assert_array_equal(state[key], value.numpy(), err_msg=key)

    model = get_model(name, weights=str(path)).eval()
    x = np.random.default_rng(0).standard_normal((2, 3, 64, 64)).astype(np.float32)
    with minidl.no_grad():
        logits = model(minidl.tensor(x)).numpy()
    with torch.no_grad():
        torch_logits = reference(torch.tensor(x)).numpy()
    assert logits.shape == (2, 1000)
    np.testing.assert_allclose(logits, torch_logits, rtol=1e-4, atol=1e-4)


def test_convert_to_safetensors_and_fine_tune_head(tmp_path, capsys):
    reference = _torch_model("resnet18", seed=1)
    pth = tmp_path / "r18.pth"
    torch.save(reference.state_dict(), pth)
    out = tmp_path / "r18.safetensors"
    assert main(["convert", str(pth), str(out)]) == 0
    assert f"{len(reference.state_dict())} tensors" in capsys.readouterr().out
    state = load_checkpoint(out)
    assert set(state) == set(reference.state_dict())
    # fine-tuning with a new head: strict=False reports the head keys, the backbone loads
    model = get_model("resnet18", num_classes=5)
    state = {k: v for k, v in state.items() if not k.startswith("fc.")}
    result = model.load_state_dict(state, strict=False)
    assert result.missing_keys == ["fc.weight", "fc.bias"] and result.unexpected_keys == []
    np.testing.assert_array_equal(model.conv1.weight.numpy(), reference.conv1.weight.detach().numpy())
    with pytest.raises(RuntimeError, match="fc.weight"):
        get_model("resnet18", num_classes=5).load_state_dict(load_checkpoint(out))


def test_predict_prints_top5(tmp_path, capsys):
    from PIL import Image

    reference = _torch_model("resnet18", seed=2)
    pth = tmp_path / "r18.pth"
    torch.save(reference.state_dict(), pth)
    image = tmp_path / "cat.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (300, 260, 3), dtype=np.uint8)).save(image)
    assert main(["predict", "resnet18", "--weights", str(pth), str(image)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == str(image) and len(out) == 6
    # the top class agrees with PyTorch on the same preprocessed input
    from minidl.weights import preset

    x = preset("resnet18").transforms()(Image.open(image).convert("RGB"))[None]  # a CHW NumPy sample
    with torch.no_grad():
        top = int(reference(torch.tensor(x)).argmax())
    assert f"{top:4d}  " in out[1]


def test_predict_wrong_architecture_is_one_line(tmp_path, capsys):
    reference = _torch_model("mobilenet_v2")
    pth = tmp_path / "m.pth"
    torch.save(reference.state_dict(), pth)
    assert main(["predict", "resnet18", "--weights", str(pth), str(pth)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "does not fit resnet18" in err[0]
