"""What minidl's file readers defend against: the list of attacks a hostile file can try.

Every reader (CIFAR batches, IDX/MNIST, PyTorch .pth zip and legacy, .safetensors, .npz)
must end in success or a ``ValueError`` subclass from :mod:`minidl.errors` naming the
file: never a crash, never code run from data, never an allocation the file's bytes do
not back, never another exception type.  The seeded fuzz tests mutate small real files
in-process (a crash would kill pytest, which fails the run); the named tests below them
each reproduce one attack.
"""

import gzip
import io
import json
import os
import pickle
import struct
import tracemalloc
import zipfile
import zlib
from collections import OrderedDict

import numpy as np
import pytest

from minidl.datasets import CIFAR10, MNIST, read_idx, restricted_loads
from minidl.datasets import cifar as cifar_module
from minidl.errors import CheckpointError, DatasetFormatError, FileFormatError, UnsafeFileError
from minidl.serialization import (
    UnsafeCheckpointError,
    _RestrictedUnpickler,
    load_checkpoint,
    read_metadata,
    save,
)

# --------------------------------------------------------------------------------------
# Hand-built PyTorch checkpoints (no torch needed): pickled with stand-ins defined here,
# whose global names are then rewritten to torch's.
# --------------------------------------------------------------------------------------


class FloatStorage:
    """Named ``torch.FloatStorage`` in the written pickle."""


class LongStorage:
    """Named ``torch.LongStorage`` in the written pickle."""


def _rebuild_tensor_v2(*args):
    """Named ``torch._utils._rebuild_tensor_v2`` in the written pickle; never called here."""
    raise AssertionError("only pickled, never called")


_STORAGE_CLASSES = {np.dtype(np.float32): FloatStorage, np.dtype(np.int64): LongStorage}


class _StorageRef:
    def __init__(self, key, array, numel=None):
        self.key, self.array = key, np.ascontiguousarray(array).reshape(-1)
        self.numel = self.array.size if numel is None else numel
        self.cls = _STORAGE_CLASSES[self.array.dtype]


class _TensorRef:
    def __init__(self, storage, offset, size, stride):
        self.storage, self.offset, self.size, self.stride = storage, offset, tuple(size), tuple(stride)

    def __reduce__(self):
        return _rebuild_tensor_v2, (self.storage, self.offset, self.size, self.stride, False, OrderedDict())


def _torch_pickle(obj, legacy):
    buf = io.BytesIO()
    pickler = pickle.Pickler(buf, protocol=2)
    pickler.persistent_id = lambda o: (
        ("storage", o.cls, o.key, "cpu", o.numel) + ((None,) if legacy else ())
        if isinstance(o, _StorageRef) else None)
    pickler.dump(obj)
    data = buf.getvalue()
    for name in ("FloatStorage", "LongStorage"):
        data = data.replace(f"c{__name__}\n{name}\n".encode(), f"ctorch\n{name}\n".encode())
    data = data.replace(f"c{__name__}\n_rebuild_tensor_v2\n".encode(), b"ctorch._utils\n_rebuild_tensor_v2\n")
    assert __name__.encode() not in data
    return data


def write_pth(path, tensors, legacy=False, counts=None):
    """Write ``name -> _TensorRef`` as a PyTorch zip (or legacy) checkpoint, the way torch.save lays it out.

    ``counts`` overrides the element count a legacy file declares before each storage's bytes.
    """
    obj = OrderedDict(tensors)
    storages = OrderedDict()
    for ref in obj.values():
        storages.setdefault(ref.storage.key, ref.storage)
    if not legacy:
        with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
            zf.writestr("archive/data.pkl", _torch_pickle(obj, legacy=False))
            zf.writestr("archive/byteorder", "little")
            for key, storage in storages.items():
                zf.writestr(f"archive/data/{key}", storage.array.tobytes())
            zf.writestr("archive/version", "3\n")
        return
    buf = io.BytesIO()
    for value in (0x1950A86A20F9469CFC6C, 1001, {"protocol_version": 1001, "little_endian": True}):
        pickle.dump(value, buf, protocol=2)
    buf.write(_torch_pickle(obj, legacy=True))
    pickle.dump(sorted(storages), buf, protocol=2)
    for key in sorted(storages):
        storage = storages[key]
        count = (counts or {}).get(key, storage.numel)
        buf.write(struct.pack("<q", count) + storage.array.tobytes())
    with open(path, "wb") as f:
        f.write(buf.getvalue())


def small_state():
    base = _StorageRef("0", np.arange(12, dtype=np.float32))
    steps = _StorageRef("1", np.array([3, -1, 7], dtype=np.int64))
    return OrderedDict([
        ("w", _TensorRef(base, 0, (3, 4), (4, 1))),
        ("t", _TensorRef(base, 0, (4, 3), (1, 4))),          # a transpose of the same storage
        ("s", _TensorRef(base, 5, (2,), (3,))),              # an offset, strided slice
        ("n", _TensorRef(steps, 0, (3,), (1,))),
    ])


def torch_sample(path, legacy):
    """A small real torch.save file when torch is importable, else the hand-built one."""
    try:
        import torch
    except ImportError:
        write_pth(path, small_state(), legacy=legacy)
        return
    w = torch.arange(12, dtype=torch.float32).reshape(3, 4)
    state = torch.nn.Linear(4, 3).state_dict()     # carries the _metadata BUILD torch writes
    state.update({"w": w, "t": w.t(), "s": w.reshape(-1)[5::3], "n": torch.tensor([3, -1, 7])})
    torch.save(state, path, _use_new_zipfile_serialization=not legacy)


# --------------------------------------------------------------------------------------
# Small real files of every other format
# --------------------------------------------------------------------------------------

def cifar_bytes(n=1, labels=None):
    data = np.random.default_rng(0).integers(0, 256, size=(n, 3072), dtype=np.uint8)
    entry = {b"batch_label": b"testing batch 1 of 1", b"labels": labels or [3] * n, b"data": data,
             b"filenames": [b"a.png"] * n}
    return pickle.dumps(entry, protocol=2)


def read_cifar(root):
    def read(payload):
        (root / "cifar-10-batches-py" / "test_batch").write_bytes(payload)
        return CIFAR10(root, train=False)
    (root / "cifar-10-batches-py").mkdir(exist_ok=True)
    return read


def idx_bytes(array):
    codes = {np.dtype(np.uint8): 0x08, np.dtype(np.int32): 0x0C}
    return bytes([0, 0, codes[array.dtype], array.ndim]) + np.array(array.shape, ">i4").tobytes() + \
        array.astype(array.dtype.newbyteorder(">")).tobytes()


def safetensors_bytes(header, data=b""):
    raw = json.dumps(header).encode() if not isinstance(header, bytes) else header
    return struct.pack("<Q", len(raw)) + raw + data


def npy_bytes(descr, shape, data):
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": descr, "fortran_order": False, "shape": shape})
    return buf.getvalue() + data


def zip_bytes(members, method=zipfile.ZIP_STORED):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", method) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def zip_members(data):
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return OrderedDict((info.filename, (zf.read(info), info.compress_type)) for info in zf.infolist())


def rezip(members):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, (data, method) in members.items():
            zf.writestr(name, data, compress_type=method)
    return buf.getvalue()


def cifar_object_array_pickle():
    """A CIFAR "batch" whose data array has dtype object and a raw byte buffer: forged pointers."""
    payload = pickle.dumps({b"data": np.zeros(2, dtype=np.int64), b"labels": [0, 1]}, protocol=2)
    evil = payload.replace(b"X\x02\x00\x00\x00i8", b"X\x02\x00\x00\x00O8").replace(
        b"X\x01\x00\x00\x00<", b"X\x01\x00\x00\x00|")
    assert evil != payload and b"O8" in evil
    return evil


# --------------------------------------------------------------------------------------
# Fuzzing
# --------------------------------------------------------------------------------------

INTERESTING = [b"\x00", b"\xff", b"\x7f", b"\x80", b"\x01", b"\xff\xff\xff\x7f", b"\x00\x00\x00\x80"]


def mutate(rng, data):
    """One random mutation: flipped bytes, a truncation, an insertion/deletion, or extreme values."""
    data = bytearray(data)
    if not data:
        return bytes(rng.integers(0, 256, size=4, dtype=np.uint8))
    kind = int(rng.integers(5))
    at = int(rng.integers(len(data)))
    if kind == 0:
        for _ in range(int(rng.integers(1, 5))):
            data[int(rng.integers(len(data)))] ^= 1 << int(rng.integers(8))
    elif kind == 1:
        del data[at:]
    elif kind == 2:
        data[at:at] = bytes(rng.integers(0, 256, size=int(rng.integers(1, 9)), dtype=np.uint8))
    elif kind == 3:
        del data[at:at + int(rng.integers(1, 9))]
    else:
        value = INTERESTING[int(rng.integers(len(INTERESTING)))]
        data[at:at + len(value)] = value
    return bytes(data)


def mutate_member(rng, data):
    """Mutate one member of a zip archive and re-zip it, so the CRCs pass and the parser is reached."""
    try:
        members = zip_members(data)
    except (zipfile.BadZipFile, ValueError, EOFError, OSError, NotImplementedError, zlib.error, RuntimeError):
        return mutate(rng, data)         # an earlier mutation already broke the archive
    if not members:
        return mutate(rng, data)
    name = list(members)[int(rng.integers(len(members)))]
    content, method = members[name]
    members[name] = (mutate(rng, content), method)
    return rezip(members)


def fuzz(read, samples, iterations, seed, member_mutations=False):
    """Apply ``iterations`` seeded mutations to the samples; every read must succeed or raise a ValueError."""
    rng = np.random.default_rng(seed)
    outcomes = {"loaded": 0, "refused": 0}
    for i in range(iterations):
        sample = samples[i % len(samples)]
        data = sample
        for _ in range(int(rng.integers(1, 3))):
            if member_mutations and rng.random() < 0.6:
                data = mutate_member(rng, data)
            else:
                data = mutate(rng, data)
        try:
            read(data)
            outcomes["loaded"] += 1
        except ValueError:
            outcomes["refused"] += 1
        except Exception as error:       # noqa: BLE001 - the point: nothing else may escape
            pytest.fail(f"seed {seed} iteration {i}: {type(error).__name__}: {error} "
                        f"(mutated sample starts {data[:64]!r})")
    # The fuzz reached both outcomes: it exercised the parsers, not only the first check.
    assert outcomes["loaded"] > 0 and outcomes["refused"] > 0, outcomes
    return outcomes


def file_reader(path, *readers):
    def read(data):
        path.write_bytes(data)
        for reader in readers:
            reader(path)
    return read


def test_fuzzed_cifar_batches_load_or_raise_value_error(tmp_path):
    fuzz(read_cifar(tmp_path), [cifar_bytes(1), cifar_bytes(2, [1, 9])], 700, seed=1)


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
def test_fuzzed_pth_checkpoints_load_or_raise_value_error(tmp_path, legacy):
    real = tmp_path / "real.pth"
    torch_sample(real, legacy)
    handmade = tmp_path / "handmade.pth"
    write_pth(handmade, small_state(), legacy=legacy)
    samples = [real.read_bytes(), handmade.read_bytes()]
    assert load_checkpoint(real)["n"].tolist() == [3, -1, 7]
    fuzz(file_reader(tmp_path / "fuzz.pth", load_checkpoint), samples, 500, seed=2 + legacy,
         member_mutations=not legacy)


def test_fuzzed_safetensors_load_or_raise_value_error(tmp_path):
    path = tmp_path / "real.safetensors"
    save({"w": np.arange(6, dtype=np.float32).reshape(2, 3), "i": np.array([1, 2], np.int64)}, path,
         metadata={"epoch": "3"})
    fuzz(file_reader(tmp_path / "fuzz.safetensors", load_checkpoint, read_metadata),
         [path.read_bytes()], 600, seed=4)


def test_fuzzed_npz_load_or_raise_value_error(tmp_path):
    path = tmp_path / "real.npz"
    save({"w": np.arange(6, dtype=np.float32).reshape(2, 3), "i": np.array([1, 2], np.int64)}, path,
         metadata={"epoch": "3"})
    plain = io.BytesIO()
    np.savez_compressed(plain, a=np.arange(4.0), b=np.ones((2, 2), ">i4"))
    fuzz(file_reader(tmp_path / "fuzz.npz", load_checkpoint, read_metadata),
         [path.read_bytes(), plain.getvalue()], 600, seed=5, member_mutations=True)


def test_fuzzed_idx_files_load_or_raise_value_error(tmp_path):
    images = idx_bytes(np.arange(2 * 4 * 5, dtype=np.uint8).reshape(2, 4, 5))
    labels = idx_bytes(np.array([3, 7], np.uint8))
    samples = [images, labels, gzip.compress(images), gzip.compress(labels)]
    fuzz(file_reader(tmp_path / "fuzz-idx", read_idx), samples, 600, seed=6)


# --------------------------------------------------------------------------------------
# 1. No memory unsafety, no code from data
# --------------------------------------------------------------------------------------

def test_cifar_object_dtype_array_is_refused_not_built(tmp_path):
    # Through NumPy's own unpickler this builds an object array from 16 raw bytes, i.e.
    # two forged PyObject pointers: touching it crashes the interpreter (exit 139).
    with pytest.raises(UnsafeFileError, match="object|O8"):
        restricted_loads(cifar_object_array_pickle(), source="evil")
    with pytest.raises(cifar_module.UnsafePickleError, match=r"test_batch: .*dtype"):
        read_cifar(tmp_path)(cifar_object_array_pickle())


def test_cifar_numpy_ndarray_and_dtype_cannot_be_called_as_constructors():
    # numpy.ndarray((2,), "O", buffer) directly: the name is allowed, calling it is not.
    call_ndarray = (b"\x80\x02cnumpy\nndarray\nK\x02\x85X\x01\x00\x00\x00OC\x10" + b"A" * 16
                    + b"\x87R.")
    with pytest.raises(UnsafeFileError, match="ndarray"):
        restricted_loads(call_ndarray)
    # numpy.dtype of a record with an object field, and of strings: refused, numeric only.
    for name in (b"O8", b"S4", b"V8", b"M8"):
        call_dtype = b"\x80\x02cnumpy\ndtype\nX" + struct.pack("<I", len(name)) + name + b"\x89\x88\x87R."
        with pytest.raises(UnsafeFileError, match="dtype"):
            restricted_loads(call_dtype)


def _build_on_global(module, name, state):
    """A pickle that names ``module.name`` and applies BUILD with ``state`` to it."""
    return b"\x80\x02c" + f"{module}\n{name}\n".encode() + pickle.dumps(state, protocol=2)[2:-1] + b"b."


def test_build_cannot_set_attributes_on_cifar_allowed_globals():
    before = cifar_module._latin1_encode.__defaults__
    for state in ((None, {"__defaults__": ("rot13",)}), {"__dict__": {"x": 1}, "injected": 1}):
        for module, name in (("_codecs", "encode"), ("numpy", "dtype"), ("numpy", "ndarray"),
                             ("numpy.core.multiarray", "_reconstruct")):
            with pytest.raises(UnsafeFileError, match="BUILD"):
                restricted_loads(_build_on_global(module, name, state))
    assert cifar_module._latin1_encode.__defaults__ == before
    assert not hasattr(cifar_module._latin1_encode, "injected")
    # A rebuilt array may be BUILT once (NumPy's own state); a second BUILD is refused.
    array_pickle = pickle.dumps(np.arange(3, dtype=np.uint8), protocol=2)
    assert restricted_loads(array_pickle).tolist() == [0, 1, 2]
    twice = array_pickle[:-1] + pickle.dumps((1, (3,), None, False, b"abc"), protocol=2)[2:-1] + b"b."
    with pytest.raises(UnsafeFileError):
        restricted_loads(twice)


def test_build_cannot_set_attributes_on_pth_allowed_globals(tmp_path):
    function = _RestrictedUnpickler._rebuild_parameter
    before = function.__defaults__
    for state in ((None, {"__defaults__": (True, "evil")}), {"injected": 1}):
        for module, name in (("torch._utils", "_rebuild_parameter"), ("torch._utils", "_rebuild_tensor_v2"),
                             ("collections", "OrderedDict"), ("torch", "float32"), ("torch", "FloatStorage")):
            path = tmp_path / "build.pth"
            path.write_bytes(zip_bytes({"archive/data.pkl": _build_on_global(module, name, state)}))
            with pytest.raises(UnsafeCheckpointError, match="BUILD") as info:
                load_checkpoint(path)
            assert str(path) in str(info.value)
    assert function.__defaults__ == before and not hasattr(function, "injected")
    assert not hasattr(OrderedDict, "injected")


def test_object_dtypes_are_refused_in_npz(tmp_path):
    path = tmp_path / "objects.npz"
    np.savez(path, w=np.array([1, "a", None], dtype=object))        # a pickled object array
    with pytest.raises(UnsafeFileError, match="object"):
        load_checkpoint(path)
    forged = tmp_path / "forged.npz"
    forged.write_bytes(zip_bytes({"w.npy": npy_bytes("|O", (2,), b"A" * 16)}))
    with pytest.raises(UnsafeFileError, match="object") as info:
        load_checkpoint(forged)
    assert str(forged) in str(info.value)


def test_object_dtypes_are_refused_in_safetensors_and_pth(tmp_path):
    path = tmp_path / "o.safetensors"
    path.write_bytes(safetensors_bytes({"w": {"dtype": "O", "shape": [2], "data_offsets": [0, 16]}}, b"A" * 16))
    with pytest.raises(CheckpointError, match="dtype"):
        load_checkpoint(path)
    pth = tmp_path / "o.pth"
    pth.write_bytes(zip_bytes({"archive/data.pkl": b"\x80\x02ctorch\nObjectStorage\n."}))
    with pytest.raises(UnsafeCheckpointError, match="ObjectStorage"):
        load_checkpoint(pth)


# --------------------------------------------------------------------------------------
# 2. Memory bounded by the bytes present
# --------------------------------------------------------------------------------------

def _peak_bytes(function, *args):
    """Peak Python/NumPy allocation while ``function`` runs (NumPy reports to tracemalloc)."""
    tracemalloc.start()
    try:
        function(*args)
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak


def _raises_within(error, limit, function, *args):
    def call():
        with pytest.raises(error) as info:
            function(*args)
        caught.append(info.value)
    caught = []
    peak = _peak_bytes(call)
    assert peak < limit, f"peak {peak} bytes"
    return caught[0]


def test_stride0_expanded_tensor_is_refused_not_materialised(tmp_path):
    one = _StorageRef("0", np.ones(1, np.float32))
    path = tmp_path / "expanded.pth"
    write_pth(path, {"w": _TensorRef(one, 0, (2 ** 28,), (0,))})       # 1 GiB of float32 from 4 bytes
    assert path.stat().st_size < 2000
    error = _raises_within(UnsafeCheckpointError, 32 << 20, load_checkpoint, path)
    assert "stride-0" in str(error) and str(path) in str(error)
    # A small expanded tensor is within the budget and loads with torch's values.
    write_pth(path, {"w": _TensorRef(one, 0, (2, 3), (0, 0))})
    np.testing.assert_array_equal(load_checkpoint(path)["w"], np.ones((2, 3), np.float32))


def test_repeated_tensor_cannot_multiply_memory(tmp_path):
    storage = _StorageRef("0", np.zeros(1 << 18, np.float32))          # 1 MiB
    tensor = _TensorRef(storage, 0, (1 << 18,), (1,))
    path = tmp_path / "repeated.pth"
    write_pth(path, {f"w{i}": tensor for i in range(200)})            # 200 names of one memoised tensor
    error = _raises_within(UnsafeCheckpointError, 160 << 20, load_checkpoint, path)
    assert "several names" in str(error)


def test_legacy_storage_lying_about_its_size_allocates_nothing(tmp_path):
    storage = _StorageRef("0", np.ones(4, np.float32), numel=2 ** 28)
    path = tmp_path / "lying.pt"
    write_pth(path, {"w": _TensorRef(storage, 0, (4,), (1,))}, legacy=True)
    assert path.stat().st_size < 1000
    error = _raises_within(CheckpointError, 16 << 20, load_checkpoint, path)
    assert "declares" in str(error) and str(path) in str(error)
    storage.numel = 2 ** 62                                           # once a bare OverflowError
    write_pth(path, {"w": _TensorRef(storage, 0, (4,), (1,))}, legacy=True)
    _raises_within(CheckpointError, 16 << 20, load_checkpoint, path)


def _lie_about_member_size(data, name, size, compressed=True):
    """Patch the central directory so that member ``name`` claims ``size`` bytes."""
    data = bytearray(data)
    entry = data.find(b"PK\x01\x02")
    while entry >= 0:
        name_length = struct.unpack("<H", data[entry + 28:entry + 30])[0]
        if data[entry + 46:entry + 46 + name_length] == name.encode():
            if compressed:
                data[entry + 20:entry + 24] = struct.pack("<I", size)
            data[entry + 24:entry + 28] = struct.pack("<I", size)
            return bytes(data)
        entry = data.find(b"PK\x01\x02", entry + 4)
    raise AssertionError(name)


def test_zip_member_lying_about_its_size_allocates_nothing(tmp_path):
    path = tmp_path / "lying.pth"
    write_pth(path, small_state())
    path.write_bytes(_lie_about_member_size(path.read_bytes(), "archive/data/0", 2 ** 30))
    assert path.stat().st_size < 4000
    error = _raises_within(CheckpointError, 16 << 20, load_checkpoint, path)
    assert str(path) in str(error) and "archive/data/0" in str(error)
    # A deflated member may not claim more than deflate can produce from its compressed bytes.
    members = zip_bytes({"archive/data.pkl": b"\x80\x02}.", "archive/data/0": bytes(1000)}, zipfile.ZIP_DEFLATED)
    deflated = tmp_path / "bomb.pth"
    deflated.write_bytes(_lie_about_member_size(members, "archive/data.pkl", 2 ** 31, compressed=False))
    error = _raises_within(CheckpointError, 16 << 20, load_checkpoint, deflated)
    assert "deflate" in str(error)


def test_npy_header_declaring_72_tib_allocates_nothing(tmp_path):
    path = tmp_path / "huge.npz"
    path.write_bytes(zip_bytes({"w.npy": npy_bytes("<f8", (9 * 10 ** 12,), bytes(32))}))   # 72 TiB
    error = _raises_within(CheckpointError, 16 << 20, load_checkpoint, path)
    assert "declares shape" in str(error) and str(path) in str(error)
    compressed = tmp_path / "huge_deflated.npz"
    compressed.write_bytes(zip_bytes({"w.npy": npy_bytes("<f8", (9 * 10 ** 12,), bytes(32))},
                                     zipfile.ZIP_DEFLATED))
    _raises_within(CheckpointError, 16 << 20, load_checkpoint, compressed)


def test_gzipped_idx_cannot_decompress_past_its_header(tmp_path):
    path = tmp_path / "bomb-idx1-ubyte.gz"
    header = bytes([0, 0, 8, 1]) + struct.pack(">i", 10)
    path.write_bytes(gzip.compress(header + bytes(50 << 20)))         # 50 MiB of zeros, 50 KB gzipped
    error = _raises_within(DatasetFormatError, 8 << 20, read_idx, path)
    assert "declares" in str(error) and str(path) in str(error)
    path.write_bytes(gzip.compress(bytes([0, 0, 8, 1]) + struct.pack(">i", 2 ** 31 - 1)))
    _raises_within(DatasetFormatError, 8 << 20, read_idx, path)


# --------------------------------------------------------------------------------------
# 3. Errors that are errors
# --------------------------------------------------------------------------------------

DEEP = 100_000


def test_deep_and_recursive_pickles_are_clear_errors(tmp_path):
    deep = b"\x80\x02" + b"]" * DEEP + b"a" * (DEEP - 1) + b"."
    recursive = b"\x80\x02]q\x00h\x00a."                      # a list that contains itself
    for name, payload in (("deep", deep), ("recursive", recursive)):
        path = tmp_path / f"{name}.pth"
        path.write_bytes(zip_bytes({"archive/data.pkl": payload}))
        with pytest.raises(UnsafeCheckpointError, match="nest|recursive") as info:
            load_checkpoint(path)
        assert str(path) in str(info.value)
        with pytest.raises(UnsafeFileError, match="nest|recursive"):
            restricted_loads(payload, source=name)


def test_deep_json_headers_are_clear_errors(tmp_path):
    deep = b'{"w": ' + b"[" * DEEP + b"]" * DEEP + b"}"
    path = tmp_path / "deep.safetensors"
    path.write_bytes(safetensors_bytes(deep))
    with pytest.raises(UnsafeFileError, match="nests too deeply") as info:
        load_checkpoint(path)
    assert str(path) in str(info.value)
    npz = tmp_path / "deep.npz"
    npz.write_bytes(zip_bytes({"__metadata__.npy": npy_bytes("|u1", (len(deep),), deep),
                               "w.npy": npy_bytes("<f4", (1,), bytes(4))}))
    with pytest.raises(UnsafeFileError, match="nests too deeply"):
        read_metadata(npz)


@pytest.mark.parametrize("entry", [
    {"dtype": "F32", "shape": [True], "data_offsets": [0, 4]},
    {"dtype": "F32", "shape": [1], "data_offsets": [False, 4]},
    {"dtype": ["F32"], "shape": [1], "data_offsets": [0, 4]},
    {"dtype": "F32", "shape": [1.0], "data_offsets": [0, 4]},
], ids=["bool-shape", "bool-offset", "list-dtype", "float-shape"])
def test_json_booleans_and_wrong_types_in_safetensors_header_are_clear_errors(tmp_path, entry):
    path = tmp_path / "bad.safetensors"
    path.write_bytes(safetensors_bytes({"w": entry}, bytes(4)))
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path)
    assert str(path) in str(info.value)


def test_overlapping_and_duplicate_safetensors_entries_are_refused(tmp_path):
    path = tmp_path / "overlap.safetensors"
    path.write_bytes(safetensors_bytes({
        "a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]},
        "b": {"dtype": "F32", "shape": [4], "data_offsets": [8, 24]}}, bytes(24)))
    with pytest.raises(CheckpointError, match="overlap"):
        load_checkpoint(path)
    duplicate = tmp_path / "duplicate.safetensors"
    entry = '{"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}'
    duplicate.write_bytes(safetensors_bytes(f'{{"w": {entry}, "w": {entry}}}'.encode(), bytes(4)))
    with pytest.raises(CheckpointError, match="more than once") as info:
        load_checkpoint(duplicate)
    assert str(duplicate) in str(info.value)
    # Empty tensors occupy no bytes and may share an offset.
    fine = tmp_path / "empty.safetensors"
    fine.write_bytes(safetensors_bytes({
        "a": {"dtype": "F32", "shape": [0], "data_offsets": [0, 0]},
        "b": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}, bytes(4)))
    assert load_checkpoint(fine)["b"].tolist() == [0.0]


@pytest.mark.parametrize("case", ["short-record", "bad-numel", "missing-storage", "bad-v3-dtype",
                                  "npz-record", "npz-order"])
def test_bad_checkpoint_records_raise_checkpoint_error(tmp_path, case):
    path = tmp_path / ("bad.npz" if case.startswith("npz") else "bad.pth")
    rebuild = b"ctorch._utils\n_rebuild_tensor_v2\n("
    storage = b"(X\x07\x00\x00\x00storagectorch\nFloatStorage\nX\x01\x00\x00\x000X\x03\x00\x00\x00cpu"
    tail = b"K\x00K\x01\x85K\x01\x85\x89tR."       # offset 0, size (1,), stride (1,), False
    if case == "short-record":
        pkl = b"\x80\x02" + rebuild + b"(X\x07\x00\x00\x00storagetQ" + tail
    elif case == "bad-numel":
        pkl = b"\x80\x02" + rebuild + storage + b"X\x01\x00\x00\x00xtQ" + tail
    elif case == "missing-storage":
        pkl = b"\x80\x02}X\x01\x00\x00\x00w" + rebuild + storage + b"K\x01tQ" + tail[:-1] + b"s."
    elif case == "bad-v3-dtype":
        pkl = (b"\x80\x02ctorch._utils\n_rebuild_tensor_v3\n(" + storage + b"K\x04tQ"
               + b"K\x00K\x01\x85K\x01\x85\x89NX\x01\x00\x00\x00xtR.")
    if case.startswith("npz"):
        record = {"format": "minidl.npz", "version": 1, "order": 5} if case == "npz-order" else [1, 2]
        meta = json.dumps(record).encode()
        path.write_bytes(zip_bytes({"__metadata__.npy": npy_bytes("|u1", (len(meta),), meta),
                                    "w.npy": npy_bytes("<f4", (1,), bytes(4))}))
        if case == "npz-order":                       # a malformed order list is ignored, not a crash
            assert list(load_checkpoint(path)) == ["w"]
            return
        with pytest.raises(CheckpointError, match="JSON object") as info:
            load_checkpoint(path)
    else:
        path.write_bytes(zip_bytes({"archive/data.pkl": pkl, "archive/data/1": bytes(4)}))
        with pytest.raises(CheckpointError) as info:
            load_checkpoint(path)
    assert str(path) in str(info.value)


def test_every_reader_error_is_a_file_format_error_naming_the_file(tmp_path):
    cases = {
        "x.pth": zip_bytes({"archive/data.pkl": b"\x80\x02ctorch\nfloat32\n."}),
        "y.safetensors": b"\x10\x00\x00\x00\x00\x00\x00\x00{\"w\": 1}        ",
        "z.npz": zip_bytes({"w.npy": b"\x93NUMPY\x01\x00\x10\x00{'descr': 'x'} \n"}),
        "t.pt": pickle.dumps(0x1950A86A20F9469CFC6C, protocol=2) + b"\x80\x02K\x01.",
    }
    for name, data in cases.items():
        path = tmp_path / name
        path.write_bytes(data)
        with pytest.raises(FileFormatError) as info:
            load_checkpoint(path)
        assert isinstance(info.value, ValueError) and str(info.value).startswith(str(path)), name


def test_mnist_label_out_of_range_is_refused(tmp_path):
    (tmp_path / "t10k-images-idx3-ubyte").write_bytes(idx_bytes(np.zeros((2, 28, 28), np.uint8)))
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(idx_bytes(np.array([3, 12], np.uint8)))
    with pytest.raises(DatasetFormatError, match=r"labels must lie in 0\.\.9, got 3\.\.12") as info:
        MNIST(tmp_path, train=False)
    assert "t10k-labels-idx1-ubyte" in str(info.value)
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(idx_bytes(np.array([3, 9], np.uint8)))
    assert MNIST(tmp_path, train=False).targets.tolist() == [3, 9]


def test_cifar_label_out_of_range_and_malformed_batch_name_the_file(tmp_path):
    read = read_cifar(tmp_path)
    with pytest.raises(DatasetFormatError, match=r"test_batch: labels must lie in 0\.\.9"):
        read(cifar_bytes(1, labels=[10]))
    with pytest.raises(DatasetFormatError, match=r"test_batch: b'labels' must be a list of ints"):
        read(cifar_bytes(1, labels=["x"]))
    assert read(cifar_bytes(2, labels=[0, 9])).targets.tolist() == [0, 9]


def test_zip_members_sharing_one_blob_are_refused(tmp_path):
    # One 1 MiB stored storage listed under 300 names, each a tensor of the state_dict:
    # reading them all would allocate 300 MiB from a 1 MiB file (overlapping-entries zip bomb).
    refs = OrderedDict((f"w{i}", _TensorRef(_StorageRef(f"{i:05d}", np.zeros(1, np.float32), numel=1 << 18),
                                            0, (1 << 18,), (1,))) for i in range(300))
    path = tmp_path / "bomb.pth"
    path.write_bytes(zip_bytes({"archive/data.pkl": _torch_pickle(refs, legacy=False),
                                "archive/data/00000": bytes(1 << 20)}))
    data = bytearray(path.read_bytes())
    central = data.find(b"PK\x01\x02", data.find(b"PK\x01\x02") + 4)       # the storage's entry
    end_record = data.find(b"PK\x05\x06")
    entry = bytes(data[central:end_record])
    copies = b"".join(entry.replace(b"archive/data/00000", f"archive/data/{i:05d}".encode())
                      for i in range(1, 300))
    data[end_record:end_record] = copies
    end_record += len(copies)
    data[end_record + 8:end_record + 12] = struct.pack("<HH", 301, 301)
    size = struct.unpack("<I", data[end_record + 12:end_record + 16])[0] + len(copies)
    data[end_record + 12:end_record + 16] = struct.pack("<I", size)
    path.write_bytes(bytes(data))
    assert len(zipfile.ZipFile(path).namelist()) == 301
    error = _raises_within(UnsafeFileError, 16 << 20, load_checkpoint, path)
    assert "overlap" in str(error) and str(path) in str(error)


def test_pickle_declaring_huge_lengths_or_memo_indices_allocates_nothing(tmp_path):
    # CPython's unpickler allocates a BINBYTES length or a LONG_BINPUT memo table before
    # reading: 1 GiB and 4 GiB from these 10-byte pickles without the opcode pre-pass.
    for name, payload in (("bytes", b"\x80\x03B\xff\xff\xff\x3f" + b"x" * 10),
                          ("memo", b"\x80\x02K\x01r\xff\xff\xff\x0f.")):
        path = tmp_path / f"{name}.pth"
        path.write_bytes(zip_bytes({"archive/data.pkl": payload}))
        error = _raises_within(CheckpointError, 16 << 20, load_checkpoint, path)
        assert str(path) in str(error)
        _raises_within(DatasetFormatError, 16 << 20, restricted_loads, payload, name)
        legacy = tmp_path / f"{name}.pt"
        legacy.write_bytes(payload)
        _raises_within(CheckpointError, 16 << 20, load_checkpoint, legacy)
