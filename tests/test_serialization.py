"""Tests for minidl.serialization: torch-free checkpoint reading, safetensors, minidl .npz.

PyTorch files are written by torch (when installed) and read back without its help;
every array is compared with torch's own values.  Malicious pickles are written by
hand, and a sentinel file proves that nothing they name ever runs.
"""

import io
import json
import os
import pickle
import struct
import zipfile
from collections import OrderedDict

import numpy as np
import pytest

from minidl.models import imagenet_classes
from minidl.serialization import (
    UnsafeCheckpointError,
    load,
    load_checkpoint,
    load_safetensors,
    read_metadata,
    save,
    save_safetensors,
)


# --------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------

def _torch_reference(tensor):
    """What load_checkpoint must return for a torch tensor: bfloat16 widened to float32."""
    import torch

    tensor = tensor.detach()
    if tensor.dtype == torch.bfloat16:
        tensor = tensor.float()
    return tensor.numpy()


def _assert_same_state(loaded, expected):
    """Same keys in the same order, and every array equal in dtype, shape and value."""
    assert list(loaded) == list(expected)
    for name, ref in expected.items():
        ref = ref if isinstance(ref, np.ndarray) else _torch_reference(ref)
        got = loaded[name]
        assert isinstance(got, np.ndarray), name
        assert got.dtype == ref.dtype, (name, got.dtype, ref.dtype)
        assert got.shape == ref.shape, (name, got.shape, ref.shape)
        np.testing.assert_array_equal(got, ref, err_msg=name)


def _handmade_state(torch):
    """Tensors that exercise every path of the tensor rebuild."""
    gen = torch.Generator().manual_seed(0)
    base = torch.randn(5, 7, generator=gen)
    shared = torch.arange(12, dtype=torch.int32)
    return OrderedDict([
        ("base", base),
        ("tied", base),                                 # the same tensor under a second name
        ("transposed", base.t()),                       # strides (1, 7), shares base's storage
        ("sliced", base[1:4, 2:6]),                     # storage offset 9, row stride 7
        ("strided", base[::2, ::3]),                    # steps in both axes
        ("shared_a", shared[:6].view(2, 3)),            # two tensors on one storage
        ("shared_b", shared[6:].view(3, 2)),
        ("half", torch.randn(3, 4, generator=gen).half()),
        ("bfloat", torch.randn(6, generator=gen).bfloat16()),
        ("float64", torch.randn(2, 2, generator=gen, dtype=torch.float64)),
        ("int8", torch.tensor([-128, -1, 0, 127], dtype=torch.int8)),
        ("int16", torch.tensor([-32768, 5, 32767], dtype=torch.int16)),
        ("int64", torch.tensor([-(2 ** 62), 0, 2 ** 62 + 3])),
        ("uint8", torch.tensor([0, 200, 255], dtype=torch.uint8)),
        ("bool", torch.tensor([[True, False], [False, True]])),
        ("param", torch.nn.Parameter(torch.randn(4, generator=gen))),
        ("scalar", torch.tensor(2.5)),
        ("empty", torch.empty(0, 3)),
    ])


def _torch_stack_state(torch):
    """A conv/batch-norm/linear network's state_dict with non-trivial running stats."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.BatchNorm2d(8), torch.nn.ReLU(),
        torch.nn.Conv2d(8, 4, 3, groups=4, bias=False), torch.nn.BatchNorm2d(4), torch.nn.ReLU(),
        torch.nn.Flatten(), torch.nn.Linear(4 * 4 * 4, 10),
    )
    net.train()
    net(torch.randn(2, 3, 6, 6))          # updates running_mean/var and num_batches_tracked
    return net.state_dict()


@pytest.fixture(params=["zip", "legacy"])
def torch_format(request):
    return request.param


def _torch_save(torch, obj, path, fmt):
    torch.save(obj, path, _use_new_zipfile_serialization=(fmt == "zip"))


def _rewrite_zip(src, dst, edit):
    """Copy a zip archive, passing each (name, bytes) through edit(name, data) -> bytes or None."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_STORED) as zout:
        for info in zin.infolist():
            data = edit(info.filename, zin.read(info.filename))
            if data is not None:
                zout.writestr(info.filename, data)


# --------------------------------------------------------------------------------------
# PyTorch files
# --------------------------------------------------------------------------------------

def test_torch_network_state_dict(tmp_path, torch_format):
    torch = pytest.importorskip("torch")
    state = _torch_stack_state(torch)
    path = tmp_path / "net.pth"
    _torch_save(torch, state, path, torch_format)
    loaded = load_checkpoint(path)
    _assert_same_state(loaded, state)
    assert loaded["1.num_batches_tracked"].dtype == np.int64
    assert loaded["1.num_batches_tracked"] == 1


def test_torch_views_dtypes_and_shared_storage(tmp_path, torch_format):
    torch = pytest.importorskip("torch")
    state = _handmade_state(torch)
    path = tmp_path / "handmade.pt"
    _torch_save(torch, state, path, torch_format)
    loaded = load_checkpoint(path)
    _assert_same_state(loaded, state)
    # bfloat16 values are widened exactly: float32 -> bfloat16 -> float32 round trip.
    assert loaded["bfloat"].dtype == np.float32
    # Views come back as independent, contiguous, writable arrays.
    for name in ("transposed", "sliced", "strided", "shared_a"):
        assert loaded[name].flags["C_CONTIGUOUS"] and loaded[name].flags["WRITEABLE"], name
    loaded["shared_a"][...] = -1
    expected_b = np.arange(6, 12, dtype=np.int32).reshape(3, 2)
    np.testing.assert_array_equal(loaded["shared_b"], expected_b)
    for name in ("tied", "transposed", "sliced"):
        assert not np.shares_memory(loaded["base"], loaded[name]), name


def test_torch_big_endian_byteorder_record(tmp_path):
    """A zip whose byteorder record says "big" (storages byte-swapped) loads the same values."""
    torch = pytest.importorskip("torch")
    # One storage per tensor, so data/<i> belongs to the i-th tensor.
    state = OrderedDict([
        ("f32", torch.randn(3, 2)), ("f16", torch.randn(4).half()),
        ("bf16", torch.randn(5).bfloat16()),
        ("i64", torch.tensor([1, -2, 2 ** 40])), ("f64", torch.randn(2).double()),
        ("u8", torch.tensor([1, 2, 250], dtype=torch.uint8)),
    ])
    itemsizes = [4, 2, 2, 8, 8, 1]
    little = tmp_path / "little.pth"
    big = tmp_path / "big.pth"
    torch.save(state, little)

    def to_big(name, data):
        if name.endswith("/byteorder"):
            return b"big"
        parts = name.split("/")
        if len(parts) == 3 and parts[1] == "data":
            dtype = np.dtype(f"<u{itemsizes[int(parts[2])]}")
            return np.frombuffer(data, dtype).byteswap().tobytes()
        return data

    _rewrite_zip(little, big, to_big)
    # The crafted file is a valid big-endian checkpoint: torch reads the same values ...
    for name, value in torch.load(big, weights_only=True).items():
        assert torch.equal(value, state[name]), name
    # ... and so do we.
    _assert_same_state(load_checkpoint(big), state)


def test_nested_checkpoints_are_unwrapped_or_flattened(tmp_path):
    torch = pytest.importorskip("torch")
    state = _torch_stack_state(torch)
    params = [torch.nn.Parameter(torch.randn(2))]
    optimizer = torch.optim.SGD(params, lr=0.1, momentum=0.9)
    params[0].sum().backward()
    optimizer.step()
    training = {"epoch": 7, "state_dict": state, "optimizer": optimizer.state_dict(), "best": 0.5}
    torch.save(training, tmp_path / "train.pth")
    _assert_same_state(load_checkpoint(tmp_path / "train.pth"), state)

    torch.save({"model": state, "note": "x"}, tmp_path / "model.pth")
    _assert_same_state(load_checkpoint(tmp_path / "model.pth"), state)

    a, b, c = torch.randn(2), torch.randn(3), torch.randn(1)
    nested = {"enc": {"w": a, "inner": {"b": b}}, "list": [c], "step": 3}
    torch.save(nested, tmp_path / "nested.pth")
    flat = load_checkpoint(tmp_path / "nested.pth")
    _assert_same_state(flat, OrderedDict([("enc.w", a), ("enc.inner.b", b), ("list.0", c)]))


def test_single_tensor_and_tensorless_files_are_rejected(tmp_path):
    torch = pytest.importorskip("torch")
    torch.save(torch.ones(3), tmp_path / "t.pth")
    with pytest.raises(ValueError, match="single tensor"):
        load_checkpoint(tmp_path / "t.pth")
    torch.save({"epoch": 3}, tmp_path / "e.pth")
    with pytest.raises(ValueError, match="no tensors"):
        load_checkpoint(tmp_path / "e.pth")


def test_map_location(tmp_path):
    torch = pytest.importorskip("torch")
    torch.save({"w": torch.ones(2)}, tmp_path / "w.pth")
    loaded = load_checkpoint(tmp_path / "w.pth", map_location="cpu")
    np.testing.assert_array_equal(loaded["w"], [1, 1])
    with pytest.raises(ValueError, match="map_location"):
        load_checkpoint(tmp_path / "w.pth", map_location="tpu")


# --------------------------------------------------------------------------------------
# Malicious pickles: refused before anything runs
# --------------------------------------------------------------------------------------

def _system_call_pickle(module, name, argument):
    """Protocol-2 pickle bytes for ``module.name(argument)``, written opcode by opcode."""
    arg = argument.encode()
    return (
        b"\x80\x02"                                           # PROTO 2
        + b"c" + module.encode() + b"\n" + name.encode() + b"\n"  # GLOBAL module name
        + b"(" + b"X" + struct.pack("<I", len(arg)) + arg     # MARK, BINUNICODE argument
        + b"t"                                                # TUPLE
        + b"R"                                                # REDUCE: call it
        + b"."                                                # STOP
    )


def _zip_checkpoint(path, data_pkl, extra=None):
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("archive/data.pkl", data_pkl)
        zf.writestr("archive/byteorder", "little")
        zf.writestr("archive/version", "3\n")
        for name, data in (extra or {}).items():
            zf.writestr(name, data)


@pytest.mark.parametrize("module, name, make_argument", [
    ("os", "system", lambda sentinel: f"touch {sentinel}"),
    ("posix", "system", lambda sentinel: f"touch {sentinel}"),
    ("builtins", "eval", lambda sentinel: f"open({str(sentinel)!r}, 'w').close()"),
    ("builtins", "exec", lambda sentinel: f"open({str(sentinel)!r}, 'w').close()"),
])
def test_zip_pickle_naming_unsafe_global_is_refused(tmp_path, module, name, make_argument):
    sentinel = tmp_path / "pwned"
    # Sanity: the same bytes through plain pickle really would create the sentinel.
    payload = _system_call_pickle(module, name, make_argument(sentinel))
    path = tmp_path / "evil.pth"
    _zip_checkpoint(path, payload)
    with pytest.raises(UnsafeCheckpointError, match=f"'{module}.{name}'") as info:
        load_checkpoint(path)
    assert isinstance(info.value, pickle.UnpicklingError)
    assert str(path) in str(info.value)
    assert not sentinel.exists()
    pickle.loads(payload)                    # the control: unrestricted pickle runs it
    assert sentinel.exists()


def test_unsafe_global_after_valid_tensors_is_refused(tmp_path):
    """A payload hidden after real tensors in a real torch file is still refused."""
    torch = pytest.importorskip("torch")
    sentinel = tmp_path / "pwned"
    good = tmp_path / "good.pth"
    torch.save({"w": torch.ones(2), "v": torch.zeros(1)}, good)     # two items: SETITEMS
    with zipfile.ZipFile(good) as zf:
        data_pkl = zf.read(next(n for n in zf.namelist() if n.endswith("data.pkl")))
    # Replace the final SETITEMS + STOP so the dict gets one more item: 'x': os.system(...).
    assert data_pkl.endswith(b"u.")
    call = _system_call_pickle("os", "system", f"touch {sentinel}")[2:-1]   # no PROTO, no STOP
    evil_item = b"X\x01\x00\x00\x00x" + call
    evil = tmp_path / "evil.pth"
    _rewrite_zip(good, evil,
                 lambda n, d: d[:-2] + evil_item + b"u." if n.endswith("data.pkl") else d)
    with pytest.raises(UnsafeCheckpointError, match="'os.system'"):
        load_checkpoint(evil)
    assert not sentinel.exists()


def test_legacy_pickle_with_reduce_payload_is_refused(tmp_path):
    """A legacy-format file (plain pickle sequence) whose object pickle uses STACK_GLOBAL."""
    sentinel = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {sentinel}",))

    buf = io.BytesIO()
    pickle.dump(0x1950A86A20F9469CFC6C, buf, protocol=2)
    pickle.dump(1001, buf, protocol=2)
    pickle.dump({"protocol_version": 1001, "little_endian": True}, buf, protocol=2)
    # Protocol 4 names globals with STACK_GLOBAL rather than GLOBAL.
    pickle.dump({"w": Payload()}, buf, protocol=4)
    path = tmp_path / "evil_legacy.pt"
    path.write_bytes(buf.getvalue())
    with pytest.raises(UnsafeCheckpointError, match=r"'posix\.system'|'os\.system'"):
        load_checkpoint(path)
    assert not sentinel.exists()


def test_whole_pickled_model_is_refused(tmp_path, torch_format):
    torch = pytest.importorskip("torch")
    path = tmp_path / "model.pth"
    _torch_save(torch, torch.nn.Sequential(torch.nn.Linear(2, 2)), path, torch_format)
    with pytest.raises(UnsafeCheckpointError, match=r"torch\.nn\.modules.*state_dict\(\)"):
        load_checkpoint(path)


def test_calling_a_storage_class_or_unknown_persistent_id_is_refused(tmp_path):
    # REDUCE on torch.FloatStorage (allowed as a *name*, not as a callable).
    path = tmp_path / "call_storage.pth"
    _zip_checkpoint(path, b"\x80\x02ctorch\nFloatStorage\n)R.")
    with pytest.raises(ValueError, match="corrupted"):
        load_checkpoint(path)
    # A persistent id that is not a storage record (legacy 'module' records carry classes).
    path = tmp_path / "module_pid.pth"
    _zip_checkpoint(path, b"\x80\x02(X\x06\x00\x00\x00moduletQ.")
    with pytest.raises(UnsafeCheckpointError, match="persistent id"):
        load_checkpoint(path)


# --------------------------------------------------------------------------------------
# Truncated and corrupted files
# --------------------------------------------------------------------------------------

def test_truncated_torch_files(tmp_path, torch_format):
    torch = pytest.importorskip("torch")
    path = tmp_path / "full.pth"
    _torch_save(torch, {"w": torch.randn(64, 64), "b": torch.randn(64)}, path, torch_format)
    data = path.read_bytes()
    for cut in (len(data) // 2, len(data) - 7, 40):
        short = tmp_path / f"cut{cut}.pth"
        short.write_bytes(data[:cut])
        with pytest.raises(ValueError, match="truncated|corrupted") as info:
            load_checkpoint(short)
        assert str(short) in str(info.value)


def test_corrupted_torch_storage_bytes_fail_crc(tmp_path):
    torch = pytest.importorskip("torch")
    path = tmp_path / "w.pth"
    values = torch.arange(1000, dtype=torch.float32)
    torch.save({"w": values}, path)
    data = bytearray(path.read_bytes())
    at = bytes(data).find(values.numpy().tobytes()[400:416])
    data[at] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="CRC|corrupted"):
        load_checkpoint(path)


def test_storage_shorter_than_its_tensor(tmp_path):
    torch = pytest.importorskip("torch")
    good = tmp_path / "good.pth"
    torch.save({"w": torch.randn(10)}, good)
    bad = tmp_path / "short_storage.pth"
    _rewrite_zip(good, bad, lambda n, d: d[:12] if n.endswith("/data/0") else d)
    with pytest.raises(ValueError, match="holds 12 bytes, expected 40"):
        load_checkpoint(bad)


def test_unrecognised_and_empty_files(tmp_path):
    empty = tmp_path / "empty.pth"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match="empty"):
        load_checkpoint(empty)
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"hello world, not a checkpoint")
    with pytest.raises(ValueError, match="unrecognised"):
        load_checkpoint(junk)
    other_zip = tmp_path / "other.zip"
    with zipfile.ZipFile(other_zip, "w") as zf:
        zf.writestr("readme.txt", "hi")
    with pytest.raises(ValueError, match="neither"):
        load_checkpoint(other_zip)
    with pytest.raises(FileNotFoundError):
        load_checkpoint(tmp_path / "missing.pth")
    # PyTorch < 0.4 wrote tar archives; they are named, not misread.
    import tarfile

    old = tmp_path / "old.pth"
    member = tmp_path / "pickle"
    member.write_bytes(b"\x80\x02}q\x00.")
    with tarfile.open(old, "w", format=tarfile.PAX_FORMAT) as tar:
        tar.add(member, arcname="pickle")
    with pytest.raises(ValueError, match="tar checkpoint format"):
        load_checkpoint(old)


def _safetensors_bytes(header, data=b""):
    raw = json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw + data


def test_corrupted_safetensors_files(tmp_path):
    path = tmp_path / "ok.safetensors"
    save({"w": np.arange(16, dtype=np.float32)}, path)
    data = path.read_bytes()
    cases = {
        "truncated_data": (data[:-8], "outside"),
        "truncated_header": (data[:20], "header claims"),
        "tiny": (data[:5], "too short"),
        "bad_json": (struct.pack("<Q", 5) + b"{abc}", "not valid JSON"),
        "bad_offsets": (_safetensors_bytes(
            {"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 12]}}, bytes(16)),
            "needs 16 bytes"),
        "bad_dtype": (_safetensors_bytes(
            {"w": {"dtype": "F8_E4M3", "shape": [1], "data_offsets": [0, 1]}}, bytes(1)), "dtype"),
        "missing_field": (_safetensors_bytes({"w": {"dtype": "F32"}}), "malformed"),
        "huge_header": (struct.pack("<Q", 2 ** 40) + b"{}", "header claims"),
    }
    for name, (content, message) in cases.items():
        bad = tmp_path / f"{name}.safetensors"
        bad.write_bytes(content)
        with pytest.raises(ValueError, match=message) as info:
            load_checkpoint(bad)
        assert str(bad) in str(info.value), name


def test_truncated_npz(tmp_path):
    path = tmp_path / "m.npz"
    save({"w": np.arange(1000, dtype=np.float64)}, path)
    short = tmp_path / "short.npz"
    short.write_bytes(path.read_bytes()[:3000])
    with pytest.raises(ValueError) as info:
        load_checkpoint(short)
    assert str(short) in str(info.value)


# --------------------------------------------------------------------------------------
# safetensors
# --------------------------------------------------------------------------------------

def _numpy_state():
    rng = np.random.default_rng(0)
    return OrderedDict([
        ("conv.weight", rng.standard_normal((4, 3, 3, 3)).astype(np.float32)),
        ("conv.bias", rng.standard_normal(4).astype(np.float64)),
        ("half", rng.standard_normal((2, 5)).astype(np.float16)),
        ("bn.num_batches_tracked", np.array(7, dtype=np.int64)),
        ("int8", np.array([-3, 4], dtype=np.int8)),
        ("int16", np.array([-300, 4], dtype=np.int16)),
        ("int32", np.array([[1, 2]], dtype=np.int32)),
        ("uint8", np.array([0, 255], dtype=np.uint8)),
        ("mask", np.array([True, False, True])),
        ("empty", np.zeros((0, 4), dtype=np.float32)),
        ("fortran", np.asfortranarray(rng.standard_normal((3, 4)).astype(np.float32))),
        ("big_endian", np.arange(5, dtype=">i4")),
    ])


@pytest.mark.parametrize("fmt", ["safetensors", "npz"])
def test_round_trip_own_formats(tmp_path, fmt):
    state = _numpy_state()
    path = tmp_path / f"model.{fmt}"
    save(state, path, metadata={"arch": "lenet5", "epoch": "3"})
    loaded = load(path)
    expected = OrderedDict((k, v.astype(v.dtype.newbyteorder("="))) for k, v in state.items())
    _assert_same_state(loaded, expected)
    assert read_metadata(path) == {"arch": "lenet5", "epoch": "3"}
    # No temporary files are left beside the checkpoint.
    assert sorted(os.listdir(tmp_path)) == [f"model.{fmt}"]


def test_npz_holds_no_pickle(tmp_path):
    path = tmp_path / "m.npz"
    save(_numpy_state(), path)
    with np.load(path, allow_pickle=False) as npz:
        record = json.loads(npz["__metadata__"].tobytes())
        assert record["order"] == list(_numpy_state())
        assert all(npz[name].dtype != object for name in npz.files)
    # A plain np.savez file (no metadata record) loads too, in file order.
    plain = tmp_path / "plain.npz"
    np.savez(plain, b=np.ones(2), a=np.zeros(3))
    assert list(load_checkpoint(plain)) == ["b", "a"]
    assert read_metadata(plain) == {}


def test_safetensors_layout_is_the_published_one(tmp_path):
    path = tmp_path / "x.safetensors"
    w = np.arange(6, dtype=np.float32).reshape(2, 3)
    save_safetensors({"w": w, "b": np.array([1, 2], dtype=np.int64)}, path, metadata={"k": "v"})
    data = path.read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    assert (8 + n) % 8 == 0
    header = json.loads(data[8:8 + n])
    assert header["__metadata__"] == {"k": "v"}
    assert header["w"] == {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]}
    assert header["b"] == {"dtype": "I64", "shape": [2], "data_offsets": [24, 40]}
    assert data[8 + n:8 + n + 24] == w.astype("<f4").tobytes()
    assert len(data) == 8 + n + 40


def test_safetensors_package_reads_ours(tmp_path):
    safetensors_numpy = pytest.importorskip("safetensors.numpy")
    from safetensors import safe_open

    state = _numpy_state()
    path = tmp_path / "ours.safetensors"
    save(state, path, metadata={"source": "minidl"})
    theirs = safetensors_numpy.load_file(str(path))
    assert set(theirs) == set(state)
    for name, value in state.items():
        assert theirs[name].dtype == value.dtype.newbyteorder("=")
        np.testing.assert_array_equal(theirs[name], value, err_msg=name)
    with safe_open(str(path), framework="numpy") as f:
        assert f.metadata() == {"source": "minidl"}


def test_we_read_safetensors_package_files(tmp_path):
    safetensors_numpy = pytest.importorskip("safetensors.numpy")
    state = _numpy_state()
    del state["big_endian"], state["fortran"]
    path = tmp_path / "theirs.safetensors"
    safetensors_numpy.save_file(dict(state), str(path), metadata={"a": "b"})
    loaded = load_checkpoint(path)
    assert set(loaded) == set(state)
    for name, value in state.items():
        assert loaded[name].dtype == value.dtype
        np.testing.assert_array_equal(loaded[name], value, err_msg=name)
    assert read_metadata(path) == {"a": "b"}


def test_we_read_torch_safetensors_with_bfloat16(tmp_path):
    pytest.importorskip("safetensors")
    torch = pytest.importorskip("torch")
    from safetensors.torch import save_file

    state = _handmade_state(torch)
    # safetensors stores each tensor contiguously and refuses shared storages.
    state = OrderedDict((k, v.detach().contiguous().clone()) for k, v in state.items())
    path = tmp_path / "torch.safetensors"
    save_file(state, str(path))
    loaded = load_safetensors(path)
    assert set(loaded) == set(state)
    for name, value in state.items():
        ref = _torch_reference(value)
        assert loaded[name].dtype == ref.dtype, name
        np.testing.assert_array_equal(loaded[name], ref, err_msg=name)


# --------------------------------------------------------------------------------------
# save(): inputs, atomicity, errors
# --------------------------------------------------------------------------------------

class _DuckTensor:
    def __init__(self, array):
        self._array = array

    def numpy(self):
        return self._array


class _DuckModule:
    def state_dict(self):
        return OrderedDict([("fc.weight", _DuckTensor(np.eye(3, dtype=np.float32))),
                            ("fc.bias", _DuckTensor(np.arange(3, dtype=np.float32)))])


def test_save_accepts_modules_and_tensors(tmp_path):
    save(_DuckModule(), tmp_path / "duck.safetensors")
    loaded = load(tmp_path / "duck.safetensors")
    assert list(loaded) == ["fc.weight", "fc.bias"]
    np.testing.assert_array_equal(loaded["fc.weight"], np.eye(3))

    import minidl

    tensor = minidl.Tensor(np.arange(4, dtype=np.float32))
    save({"t": tensor}, tmp_path / "t.npz")
    np.testing.assert_array_equal(load(tmp_path / "t.npz")["t"], np.arange(4))


def test_save_rejects_bad_arguments(tmp_path):
    state = {"w": np.ones(2, dtype=np.float32)}
    with pytest.raises(ValueError, match="extension"):
        save(state, tmp_path / "w.pkl")  # .pt and .pth are written in PyTorch's format (tests/test_save_pt.py)
    with pytest.raises(ValueError, match="format"):
        save(state, tmp_path / "w.npz", format="pickle")
    with pytest.raises(TypeError, match="metadata"):
        save(state, tmp_path / "w.npz", metadata={"epoch": 3})
    with pytest.raises(TypeError, match="obj"):
        save([np.ones(2)], tmp_path / "w.npz")
    with pytest.raises(TypeError, match="complex"):
        save({"c": np.ones(2, dtype=np.complex64)}, tmp_path / "c.safetensors")


@pytest.mark.parametrize("fmt", ["safetensors", "npz"])
def test_failed_save_leaves_previous_file_intact(tmp_path, fmt):
    path = tmp_path / f"ckpt.{fmt}"
    save({"w": np.ones(3, dtype=np.float32)}, path)
    before = path.read_bytes()
    with pytest.raises(TypeError):
        save({"w": np.zeros(3, dtype=np.float32), "bad": np.array([object()])}, path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == [path.name]


# --------------------------------------------------------------------------------------
# ImageNet class names
# --------------------------------------------------------------------------------------

def test_imagenet_classes():
    names = imagenet_classes()
    assert len(names) == 1000 and len(set(names)) == 1000
    assert names[0] == "tench" and names[1] == "goldfish"
    assert names[281] == "tabby" and names[999] == "toilet tissue"
    names.append("x")                                        # callers get a copy
    assert len(imagenet_classes()) == 1000


def test_interrupted_write_leaves_previous_file_intact(tmp_path, monkeypatch):
    """A failure halfway through writing (disk full, Ctrl-C) never reaches the target file."""
    import minidl.serialization as serialization

    path = tmp_path / "ckpt.npz"
    save({"w": np.ones(3, dtype=np.float32)}, path)
    before = path.read_bytes()

    def savez_then_fail(file, **arrays):
        file.write(b"PK\x03\x04 half an archive")
        raise OSError("No space left on device")

    monkeypatch.setattr(serialization.np, "savez", savez_then_fail)
    with pytest.raises(OSError, match="No space"):
        save({"w": np.zeros(3, dtype=np.float32)}, path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == [path.name]
