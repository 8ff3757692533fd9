"""``minidl.save`` writes PyTorch's .pt/.pth zip format; ``minidl.load`` gives back the saved object.

Checked against real torch: ``torch.load(weights_only=True)`` reads what minidl writes, and
``minidl.load`` reads what ``torch.save`` writes, nested structure and tensors alike.
"""
import zipfile
from collections import OrderedDict

import numpy as np
import pytest

import minidl
from minidl import nn, optim
from minidl.errors import CheckpointError
from minidl.serialization import UnsafeCheckpointError, load_checkpoint


def _checkpoint():
    minidl.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    opt = optim.Adam(model.parameters(), lr=0.01)
    loss = model(minidl.randn(5, 4)).sum()
    loss.backward()
    opt.step()
    return model, opt, {
        "model": model.state_dict(), "optimizer": opt.state_dict(), "epoch": 7, "loss": 0.25,
        "name": "run-1", "done": False, "note": None, "history": [1.5, 0.5], "shape": (2, 3),
        "big": 2**40, "negative": -3, "od": OrderedDict([("b", np.arange(3)), ("a", np.float16([1, 2]))]),
        "scalar": minidl.tensor(2.5), "mask": np.array([True, False]), "empty": np.zeros((2, 0)),
    }


def _assert_same(got, want, torch=None, path="obj"):
    """Same structure (types, keys in order) and equal tensors; ``got`` holds minidl or torch tensors."""
    if isinstance(want, dict):
        assert type(got) is type(want), path
        assert list(got) == list(want), path
        for k in want:
            _assert_same(got[k], want[k], torch, f"{path}[{k!r}]")
    elif isinstance(want, (list, tuple)):
        assert type(got) is type(want) and len(got) == len(want), path
        for k, (g, w) in enumerate(zip(got, want)):
            _assert_same(g, w, torch, f"{path}[{k}]")
    elif isinstance(want, (np.ndarray, minidl.Tensor)):
        want = want.numpy() if isinstance(want, minidl.Tensor) else want
        if torch is not None:
            assert isinstance(got, torch.Tensor), path
            got = got.numpy()
        else:
            assert isinstance(got, minidl.Tensor), path
            got = got.numpy()
        assert got.dtype == want.dtype and got.shape == want.shape, path
        np.testing.assert_array_equal(got, want, err_msg=path)
    else:
        assert type(got) is type(want) and got == want, path


@pytest.mark.parametrize("ext", [".pt", ".pth"])
def test_minidl_round_trip(tmp_path, ext):
    _, _, obj = _checkpoint()
    path = tmp_path / f"ck{ext}"
    minidl.save(obj, path)
    _assert_same(minidl.load(path), obj)
    # the flat reader (load_checkpoint) still finds the model's tensors under the wrapper key
    minidl.save({"model": obj["model"], "optimizer": obj["optimizer"], "epoch": 7}, path)
    assert list(load_checkpoint(path)) == list(obj["model"])


def test_torch_reads_what_minidl_writes(tmp_path):
    torch = pytest.importorskip("torch")
    _, _, obj = _checkpoint()
    path = tmp_path / "ck.pt"
    minidl.save(obj, path)
    _assert_same(torch.load(path, weights_only=True), obj, torch)
    # the layout torch.save writes: stored members, data aligned at 64 bytes
    with zipfile.ZipFile(path) as zf:
        names = zf.namelist()
        assert names[0] == "archive/data.pkl"
        assert zf.read("archive/version") == b"3\n" and zf.read("archive/byteorder") == b"little"
        for info in zf.infolist():
            assert info.compress_type == zipfile.ZIP_STORED
            if info.filename.startswith("archive/data/"):
                with open(path, "rb") as f:
                    f.seek(info.header_offset + 26)
                    name_len, extra_len = np.frombuffer(f.read(4), "<u2")
                assert (info.header_offset + 30 + name_len + extra_len) % 64 == 0


def test_tied_tensors_share_one_storage(tmp_path):
    torch = pytest.importorskip("torch")
    w = minidl.randn(3, 3)
    minidl.save({"a": w, "b": w}, tmp_path / "tied.pt")
    loaded = torch.load(tmp_path / "tied.pt", weights_only=True)
    assert loaded["a"].data_ptr() == loaded["b"].data_ptr()
    back = minidl.load(tmp_path / "tied.pt")
    np.testing.assert_array_equal(back["a"].numpy(), back["b"].numpy())
    back["a"].data[0, 0] += 1      # minidl gives each name its own memory
    assert back["b"].numpy()[0, 0] != back["a"].numpy()[0, 0]


def test_minidl_reads_what_torch_writes(tmp_path):
    torch = pytest.importorskip("torch")
    gen = torch.Generator().manual_seed(0)
    model = torch.nn.Linear(4, 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model(torch.randn(3, 4, generator=gen)).sum().backward()
    opt.step()
    obj = {"model": model.state_dict(), "optimizer": opt.state_dict(), "epoch": 2, "tag": ("a", 1.5, None),
           "view": torch.arange(12.0).reshape(3, 4).t(), "bf": torch.ones(2, dtype=torch.bfloat16)}
    torch.save(obj, tmp_path / "t.pt")
    got = minidl.load(tmp_path / "t.pt")
    assert list(got) == list(obj) and isinstance(got["model"], OrderedDict)
    for k, v in obj["model"].items():
        np.testing.assert_array_equal(got["model"][k].numpy(), v.detach().numpy())
    assert got["epoch"] == 2 and got["tag"] == ("a", 1.5, None)
    np.testing.assert_array_equal(got["view"].numpy(), obj["view"].numpy())
    assert got["bf"].dtype == np.float32                  # bfloat16 widened
    assert list(got["optimizer"]["state"]) == [0, 1]
    np.testing.assert_array_equal(got["optimizer"]["state"][0]["momentum_buffer"].numpy(),
                                  obj["optimizer"]["state"][0]["momentum_buffer"].numpy())
    # the state loads into a minidl optimizer over the same parameters
    m = nn.Linear(4, 2)
    m.load_state_dict(got["model"])
    mine = optim.SGD(m.parameters(), lr=0.5, momentum=0.9)
    mine.load_state_dict(got["optimizer"])
    assert mine.param_groups[0]["lr"] == 0.1


def test_minidl_reads_torch_legacy_files(tmp_path):
    torch = pytest.importorskip("torch")
    obj = {"w": torch.arange(6.0).reshape(2, 3), "nested": [1, (2, "x")], "od": OrderedDict(b=torch.ones(1))}
    torch.save(obj, tmp_path / "legacy.pt", _use_new_zipfile_serialization=False)
    got = minidl.load(tmp_path / "legacy.pt")
    assert type(got) is dict and type(got["od"]) is OrderedDict
    assert got["nested"] == [1, (2, "x")]
    np.testing.assert_array_equal(got["w"].numpy(), np.arange(6.0).reshape(2, 3))


def test_optimizer_state_round_trips(tmp_path):
    model, opt, obj = _checkpoint()
    minidl.save(obj, tmp_path / "ck.pt")
    loaded = minidl.load(tmp_path / "ck.pt")
    fresh = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    fresh.load_state_dict(loaded["model"])
    opt2 = optim.Adam(fresh.parameters(), lr=1.0)
    opt2.load_state_dict(loaded["optimizer"])
    assert opt2.param_groups[0]["lr"] == 0.01
    # one more identical step gives identical weights
    x = minidl.randn(5, 4)
    for m, o in ((model, opt), (fresh, opt2)):
        o.zero_grad()
        m(x).sum().backward()
        o.step()
    for a, b in zip(model.parameters(), fresh.parameters()):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_torch_optimizer_loads_minidl_state(tmp_path):
    torch = pytest.importorskip("torch")
    _, _, obj = _checkpoint()
    minidl.save(obj, tmp_path / "ck.pt")
    loaded = torch.load(tmp_path / "ck.pt", weights_only=True)
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 2))
    model.load_state_dict(loaded["model"])
    opt = torch.optim.Adam(model.parameters(), lr=1.0)
    opt.load_state_dict(loaded["optimizer"])
    assert opt.param_groups[0]["lr"] == 0.01
    assert float(opt.state[model[0].weight]["step"]) == 1


def test_save_refuses_what_a_pt_file_cannot_hold(tmp_path):
    with pytest.raises(TypeError, match="set"):
        minidl.save({"s": {1, 2}}, tmp_path / "x.pt")
    with pytest.raises(TypeError, match="uint32"):
        minidl.save({"u": np.ones(2, np.uint32)}, tmp_path / "x.pt")
    with pytest.raises(ValueError, match="metadata"):
        minidl.save({"w": np.ones(2)}, tmp_path / "x.pt", metadata={"a": "b"})
    cycle = []
    cycle.append(cycle)
    with pytest.raises(ValueError, match="deep"):
        minidl.save(cycle, tmp_path / "x.pt")
    assert not list(tmp_path.iterdir())          # nothing, not even a temporary, was left


def test_module_is_saved_as_its_state_dict(tmp_path):
    model = nn.Linear(2, 2)
    minidl.save(model, tmp_path / "m.pth")
    loaded = minidl.load(tmp_path / "m.pth")
    assert list(loaded) == ["weight", "bias"]


def test_load_keeps_the_hostile_file_defences(tmp_path):
    import pickle

    class Payload:
        def __reduce__(self):
            return (print, ("pwned",))

    with zipfile.ZipFile(tmp_path / "evil.pt", "w") as zf:
        zf.writestr("archive/data.pkl", pickle.dumps({"w": Payload()}, protocol=2))
    with pytest.raises(UnsafeCheckpointError, match="print"):
        minidl.load(tmp_path / "evil.pt")
    with pytest.raises(UnsafeCheckpointError):
        minidl.load(tmp_path / "evil.pt", weights_only=False)   # still never runs code


def test_load_safetensors_npz_and_map_location(tmp_path):
    minidl.save({"w": np.arange(3, dtype=np.float32)}, tmp_path / "w.safetensors")
    minidl.save({"w": np.arange(3, dtype=np.float32)}, tmp_path / "w.npz")
    for name in ("w.safetensors", "w.npz"):
        got = minidl.load(tmp_path / name, map_location="cpu")
        assert isinstance(got["w"], minidl.Tensor)
        np.testing.assert_array_equal(got["w"].numpy(), [0, 1, 2])
    assert minidl.load(tmp_path / "w.npz", map_location=minidl.device("cpu"))["w"].device == minidl.device("cpu")
    with pytest.raises(TypeError, match="map_location"):
        minidl.load(tmp_path / "w.npz", map_location=lambda storage, location: storage)
    with pytest.raises(ValueError, match="device"):
        minidl.load(tmp_path / "w.npz", map_location="tpu")


def test_trainer_checkpoint_loads_with_one_call(tmp_path):
    from minidl.data import DataLoader, TensorDataset
    from minidl.train import Trainer

    minidl.manual_seed(0)
    rng = np.random.default_rng(0)
    ds = TensorDataset(rng.standard_normal((16, 4)).astype(np.float32), rng.integers(0, 3, 16))
    model = nn.Linear(4, 3)
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    trainer = Trainer(model, opt, checkpoint_dir=str(tmp_path), progress=False)
    trainer.fit(DataLoader(ds, batch_size=8), epochs=1)
    ck = minidl.load(tmp_path / "last.npz")
    assert ck["epoch"] == 1 and ck["optimizer_type"] == "SGD"
    fresh = nn.Linear(4, 3)
    fresh.load_state_dict(ck["model"])
    np.testing.assert_array_equal(fresh.weight.numpy(), model.weight.numpy())
    opt2 = optim.SGD(fresh.parameters(), lr=0.5)
    opt2.load_state_dict(ck["optimizer"])
    np.testing.assert_array_equal(opt2.state[fresh.weight]["momentum_buffer"],
                                  opt.state[model.weight]["momentum_buffer"])


def test_trainer_checkpoint_with_a_missing_array_is_refused(tmp_path):
    import json

    from minidl.serialization import TRAINER_RECORD_KEY, save

    record = {"format": "minidl-trainer", "epoch": 1,
              "optimizer": {"type": "SGD", "state": {"state": {"0": {"momentum_buffer": {"__array__": "nope"}}},
                                                     "param_groups": []}}}
    save({"model/w": np.ones(2, np.float32)}, tmp_path / "bad.npz", metadata={TRAINER_RECORD_KEY: json.dumps(record)})
    with pytest.raises(CheckpointError, match="nope"):
        minidl.load(tmp_path / "bad.npz")


def test_minidl_predict_reads_a_trainer_checkpoint(tmp_path, capsys):
    from PIL import Image

    from minidl.cli import main
    from minidl.cli.train import _build_model, _builder
    from minidl.train import Trainer

    builder = _builder("mlp")
    model = _build_model("mlp", builder, 3, (1, 8, 8), builder.card.recipe.model_kwargs)
    config = {"model": "mlp", "input_shape": [1, 8, 8], "classes": ["cat", "dog", "emu"]}
    trainer = Trainer(model, optim.SGD(model.parameters(), lr=0.1), config=config, progress=False)
    trainer.save_checkpoint(tmp_path / "last.npz")
    image = tmp_path / "x.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (20, 20), dtype=np.uint8)).save(image)

    assert main(["predict", "mlp", "--weights", str(tmp_path / "last.npz"), "--top", "3", str(image)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == str(image)
    rows = [line.split() for line in lines[1:4]]
    assert sorted(r[2] for r in rows) == ["cat", "dog", "emu"]
    # the printed probabilities are the model's on the image read as training reads it (gray, 8x8, [0, 1])
    x = np.asarray(Image.open(image).convert("L").resize((8, 8), Image.BILINEAR), np.float32)[None, None] / 255
    model.eval()
    probs = model(minidl.from_numpy(x)).softmax(dim=1).numpy()[0]
    for percent, k, _ in rows:
        assert float(percent[:-1]) == pytest.approx(100 * probs[int(k)], abs=0.02)
    # another architecture is refused in one line, named from the checkpoint's record
    assert main(["predict", "lenet5", "--weights", str(tmp_path / "last.npz"), str(image)]) == 2
    assert "holds a 'mlp' model" in capsys.readouterr().err


def test_a_deeply_nested_trainer_record_is_refused(tmp_path):
    from minidl.serialization import TRAINER_RECORD_KEY, save

    deep = "[" * 500 + "]" * 500
    record = '{"format": "minidl-trainer", "epoch": 1, "history": ' + deep + "}"
    save({"model/w": np.ones(2, np.float32)}, tmp_path / "deep.npz", metadata={TRAINER_RECORD_KEY: record})
    with pytest.raises(UnsafeCheckpointError, match="deep.npz"):
        minidl.load(tmp_path / "deep.npz")


def test_minidl_convert_writes_pt(tmp_path, capsys):
    torch = pytest.importorskip("torch")
    from minidl.cli import main

    minidl.save({"fc.weight": np.eye(3, dtype=np.float32), "fc.bias": np.zeros(3, np.float32)}, tmp_path / "w.npz")
    assert main(["convert", str(tmp_path / "w.npz"), str(tmp_path / "w.pt")]) == 0
    loaded = torch.load(tmp_path / "w.pt", weights_only=True)
    assert list(loaded) == ["fc.weight", "fc.bias"]
    np.testing.assert_array_equal(loaded["fc.weight"].numpy(), np.eye(3))
