"""Checkpoint reading and writing without torch, and without running pickled code.

Three formats are read, all into an ordered ``dict[str, numpy.ndarray]`` by :func:`load_checkpoint`:

* **PyTorch** ``.pth`` / ``.pt`` / ``.bin`` files, both the zip format that
  ``torch.save`` writes since PyTorch 1.6 and the older "legacy" format that
  ``torch.save(..., _use_new_zipfile_serialization=False)`` still writes.
  A PyTorch checkpoint is a pickle, and unpickling can call any importable
  function (``os.system`` included).  We therefore unpickle through
  :class:`_RestrictedUnpickler`, which resolves only the handful of globals a
  state_dict needs, to small stand-ins defined in this file, and refuses every
  other global with :class:`UnsafeCheckpointError` *before* anything is called.
* **safetensors** (https://github.com/huggingface/safetensors): an 8-byte
  little-endian header length N, N bytes of JSON
  ``{"name": {"dtype": "F32", "shape": [...], "data_offsets": [begin, end]},
  "__metadata__": {str: str}}``, then the raw little-endian buffers.  Our own
  reader and writer are used; the ``safetensors`` package is not needed.
* **minidl's own format**: a NumPy ``.npz`` of the arrays plus one uint8 array
  ``__metadata__`` holding UTF-8 JSON.  It is read with ``allow_pickle=False``.

Writing.  :func:`save` writes safetensors, minidl's ``.npz`` and PyTorch's own zip format
(``.pt``/``.pth``), the last with a pickle emitted opcode by opcode (:class:`_TorchPickleWriter`)
so that real ``torch.load(weights_only=True)`` reads it and torch is never imported.
:func:`load_object` (``minidl.load``) returns a file's whole saved object (nested dicts, lists,
numbers, strings, with minidl Tensors), where :func:`load_checkpoint` flattens it to a state_dict.

How a PyTorch tensor is rebuilt.  ``torch.save`` writes every storage (a flat
buffer) once, as raw bytes, and each tensor as
``_rebuild_tensor_v2(storage, storage_offset, size, stride, ...)``: element
``t[i0, i1, ...]`` lives at ``storage[storage_offset + sum_k i_k * stride_k]``.
That is exactly ``np.lib.stride_tricks.as_strided`` on the storage with strides
in bytes, so views (transposes, slices with an offset, two tensors sharing one
storage) come back right; we copy the view so every returned array owns
contiguous memory.

Hostile files.  Every reader here treats the file as untrusted, and its limits are:

* **No code, no objects.**  The pickle allow-list resolves to stand-ins defined here
  (never torch's or NumPy's own callables); each one, and every object they build,
  refuses the pickle ``BUILD`` opcode, so a file cannot set attributes (``__defaults__``,
  ``__dict__``) on them.  The only ``BUILD`` that succeeds is the one ``torch.save``
  itself writes: ``_metadata`` on a state_dict's ``OrderedDict`` instance (dropped on
  load).  Object dtypes are refused in every format (``.npy`` members are read with our
  own header parser, never ``allow_pickle``; the .pth and safetensors dtype tables hold
  only numeric types).
* **Memory bounded by the bytes present.**  Every declared size (a zip member's
  size, a legacy storage's element count, a ``.npy`` header's shape, a safetensors
  entry's offsets, a pickle's counted strings and memo indices, which CPython's
  unpickler would otherwise allocate up front: see :func:`check_pickle_stream`) is
  checked against the bytes actually in the file before anything is allocated.  Zip
  members may not overlap (one blob listed under many names), and safetensors entries
  may not overlap or repeat a name.  Compressed zip members are only accepted as
  ``deflate`` (torch and NumPy never write others) and may not declare more than
  ``_MAX_DEFLATE_RATIO`` (1100, deflate's own maximum is 1032) times their compressed
  size; they are read in chunks, so a lying declaration allocates nothing.  Copies made while rebuilding tensors (views such as
  transposes and slices, a tensor named twice) may allocate at most
  ``2 * file size + 64 MiB`` in total (``_COPY_BUDGET_*``); a file that asks for more
  (a stride-0 "expanded" tensor, a tensor repeated thousands of times) is *refused*
  with :class:`~minidl.errors.UnsafeFileError`, never materialised.
* **Bounded structure.**  An object tree nested deeper than ``_MAX_DEPTH`` (100) or with
  more than ``_MAX_NODES`` (1,000,000) entries (a recursive or exponentially shared
  pickle), and a JSON header nested too deeply, are refused.
* **One error contract.**  Every malformed file raises a ``ValueError`` subclass from
  :mod:`minidl.errors` (:class:`~minidl.errors.CheckpointError`, or
  :class:`UnsafeCheckpointError` / :class:`~minidl.errors.UnsafeFileError` for a file that
  asks for code, objects or memory it does not hold) whose message starts with the path.
  Plain I/O errors (missing file, permission) stay ``OSError``.

Example::

    >>> from minidl.serialization import save, load_checkpoint
    >>> import numpy as np
    >>> save({"w": np.ones((2, 3), np.float32)}, "/tmp/w.safetensors")
    >>> load_checkpoint("/tmp/w.safetensors")["w"].shape
    (2, 3)
"""

from __future__ import annotations

import ast
import contextlib
import errno
import io
import json
import math
import os
import pickle
import pickletools
import re
import secrets
import struct
import zipfile
import zlib
from collections import OrderedDict

import numpy as np

from minidl.errors import CheckpointError, FileFormatError, UnsafeFileError

__all__ = [
    "UnsafeCheckpointError",
    "load_checkpoint",
    "load",
    "load_object",
    "save",
    "save_safetensors",
    "load_safetensors",
    "read_metadata",
]


class UnsafeCheckpointError(pickle.UnpicklingError, UnsafeFileError):
    """A checkpoint's pickle names a global (function or class) outside the allow-list,
    or asks for something else a state_dict never needs (a BUILD on a stand-in, an
    unknown persistent id, more memory than the file holds).

    Derives from ``pickle.UnpicklingError`` (what ``torch.load(weights_only=True)``
    raises) and from :class:`minidl.errors.UnsafeFileError` (a ``ValueError``, what every
    other bad-file error here raises).  ``UnsafeCheckpointError(path, reason)``; the
    one-argument form ``UnsafeCheckpointError(reason)`` leaves the path to be filled in
    by the reader's entry point.
    """


# Limits on what a file may make us allocate or walk (see the module docstring).
_MAX_DEFLATE_RATIO = 1100
_COPY_BUDGET_FACTOR = 2
_COPY_BUDGET_SLACK = 64 << 20
_MAX_DEPTH = 100
_MAX_NODES = 1_000_000


class _Budget:
    """Bytes that copies made while rebuilding a file's tensors may still allocate."""

    __slots__ = ("source", "left", "limit")

    def __init__(self, source, file_size):
        self.source = source
        self.limit = self.left = _COPY_BUDGET_FACTOR * file_size + _COPY_BUDGET_SLACK

    def charge(self, nbytes, what):
        if nbytes > self.left:
            raise UnsafeCheckpointError(
                self.source,
                f"{what} would allocate {nbytes} bytes, beyond the {self.limit}-byte limit for a "
                f"file of this size (2 x file size + 64 MiB); a stride-0 (expanded) or repeated "
                "tensor is refused rather than materialised")
        self.left -= nbytes


class _Walk:
    """Counts the nodes of an object tree walk and refuses deep or huge (shared) trees."""

    __slots__ = ("nodes",)

    def __init__(self):
        self.nodes = 0

    def visit(self, depth):
        self.nodes += 1
        if depth > _MAX_DEPTH:
            raise UnsafeCheckpointError(
                f"the checkpoint's objects nest deeper than {_MAX_DEPTH} levels "
                "(a recursive or hostile pickle)")
        if self.nodes > _MAX_NODES:
            raise UnsafeCheckpointError(
                f"the checkpoint's object tree has more than {_MAX_NODES} entries "
                "(a pickle that repeats shared references)")


def _is_io_error(err):
    """A real file-system error (errno set), which stays an OSError.

    EINVAL is the exception: zipfile meets it seeking to a negative offset that a corrupted
    archive declares.
    """
    return isinstance(err, OSError) and err.errno is not None and err.errno != errno.EINVAL


@contextlib.contextmanager
def _reading(source, what="checkpoint"):
    """Turn every way a malformed file can fail into one :mod:`minidl.errors` type naming it."""
    try:
        yield
    except FileFormatError as err:
        if err.path is None:
            raise (UnsafeCheckpointError(source, err.reason) if isinstance(err, UnsafeFileError)
                   else CheckpointError(source, err.reason)) from None
        raise
    except RecursionError:
        raise UnsafeCheckpointError(
            source, f"the {what} nests too deeply to read (a recursive or hostile file)") from None
    except (pickle.UnpicklingError, EOFError, zipfile.BadZipFile, ValueError, TypeError,
            KeyError, IndexError, AttributeError, struct.error, OverflowError,
            NotImplementedError, zlib.error, OSError) as err:
        if _is_io_error(err):
            raise
        message = str(err)
        if message.startswith(source + ": "):
            message = message[len(source) + 2:]
        elif not isinstance(err, ValueError) or isinstance(err, UnicodeDecodeError):
            message = f"truncated or corrupted {what} ({type(err).__name__}: {message})"
        raise CheckpointError(source, message) from None


# Opcodes that store into the pickle memo at an index the pickle chooses.
_MEMO_PUTS = frozenset(("PUT", "BINPUT", "LONG_BINPUT"))
_MAX_FRAME = 1 << 30


class _BoundedReader:
    """A read-only view of a file that never hands out (or allocates for) more than ``end - tell``."""

    def __init__(self, file, end):
        self._file = file
        self._end = end

    def _left(self):
        return max(self._end - self._file.tell(), 0)

    def read(self, n=-1):
        left = self._left()
        return self._file.read(left if n is None or n < 0 or n > left else n)

    def readline(self, limit=-1):
        left = self._left()
        return self._file.readline(left if limit is None or limit < 0 or limit > left else limit)

    def readinto(self, buffer):
        view = memoryview(buffer).cast("B")
        return self._file.readinto(view[:self._left()])

    def tell(self):
        return self._file.tell()

    def seek(self, offset, whence=0):
        return self._file.seek(offset, whence)


def check_pickle_stream(file, source, find_class=None):
    """Walk one pickle's opcodes from ``file``'s position without building anything, then seek back.

    CPython's unpickler allocates what a pickle *declares* before reading it: a
    ``BINBYTES``/``BINUNICODE`` length (1 GiB for a 10-byte file), a ``LONG_BINPUT`` memo
    index (a 4 GiB memo table for ``r\xff\xff\xff\x0f``), a protocol-4 frame.  This
    pre-pass (``pickletools.genops``, which reads counted data with plain ``read(n)``)
    proves every count fits in the bytes present and every memo index is at most the
    number of opcodes so far, as in any pickle a real pickler writes; only then is the
    pickle unpickled.  Raises ``ValueError`` (no path) for a malformed stream.
    ``find_class(module, name)``, if given, is asked about every global the pickle names
    (GLOBAL, and STACK_GLOBAL after two strings), so a refused global is reported as such
    even when the pickle is also malformed further on.
    """
    start = file.tell()
    count = 0
    strings = [None, None]
    try:
        for opcode, arg, _ in pickletools.genops(file):
            count += 1
            if find_class is not None:
                if opcode.name == "GLOBAL" and isinstance(arg, str) and " " in arg:
                    find_class(*arg.split(" ", 1))
                elif opcode.name == "STACK_GLOBAL" and all(isinstance(v, str) for v in strings):
                    find_class(*strings)
                if isinstance(arg, str) and "UNICODE" in opcode.name:
                    strings = [strings[1], arg]
                elif opcode.name not in ("MEMOIZE", "PUT", "BINPUT", "LONG_BINPUT", "FRAME"):
                    strings = [strings[1], None]
            if opcode.name in _MEMO_PUTS and (type(arg) is not int or not 0 <= arg <= count):
                raise ValueError(f"pickle memo index {arg!r} at opcode {count} (a hostile pickle)")
            if opcode.name == "FRAME" and arg > _MAX_FRAME:
                raise ValueError(f"pickle frame of {arg} bytes")
    except FileFormatError:
        raise                            # find_class refused a global
    except (ValueError, TypeError, struct.error, UnicodeDecodeError, OverflowError) as err:
        raise ValueError(f"malformed pickle ({err})") from None
    file.seek(start)


class _Global:
    """An allowed pickle global: callable, but immune to BUILD (no attributes to set)."""

    __slots__ = ("_function", "_name")

    def __init__(self, function, name):
        self._function = function
        self._name = name

    def __call__(self, *args, **kwargs):
        return self._function(*args, **kwargs)

    def __setstate__(self, state):
        raise UnsafeCheckpointError(f"a BUILD opcode targets the global {self._name}; refusing it")

    def __reduce__(self):
        raise TypeError("allowed-global stand-ins are not picklable")


# --------------------------------------------------------------------------------------
# dtypes
# --------------------------------------------------------------------------------------

# torch dtype name -> (little-endian NumPy dtype of the stored bytes, safetensors code).
# bfloat16 has no NumPy dtype: it is the upper half of a float32, so we read it as
# uint16 and widen it with a 16-bit shift (see _bfloat16_to_float32).
_TORCH_DTYPES = {
    "float64": ("<f8", "F64"),
    "float32": ("<f4", "F32"),
    "float16": ("<f2", "F16"),
    "bfloat16": ("<u2", "BF16"),
    "int64": ("<i8", "I64"),
    "int32": ("<i4", "I32"),
    "int16": ("<i2", "I16"),
    "int8": ("|i1", "I8"),
    "uint8": ("|u1", "U8"),
    "bool": ("|b1", "BOOL"),
}

# Aliases under which torch pickles its dtypes (``torch.float`` is ``torch.float32``).
_TORCH_DTYPE_ALIASES = {
    "float": "float32", "double": "float64", "half": "float16",
    "long": "int64", "int": "int32", "short": "int16",
}

# Legacy typed-storage classes named in the pickle -> the dtype of their elements.
_STORAGE_CLASSES = {
    "DoubleStorage": "float64",
    "FloatStorage": "float32",
    "HalfStorage": "float16",
    "BFloat16Storage": "bfloat16",
    "LongStorage": "int64",
    "IntStorage": "int32",
    "ShortStorage": "int16",
    "CharStorage": "int8",
    "ByteStorage": "uint8",
    "BoolStorage": "bool",
    # An untyped storage is a plain byte buffer; the tensor brings its dtype (_rebuild_tensor_v3).
    "UntypedStorage": "uint8",
}

# safetensors dtype code -> little-endian NumPy dtype of the stored bytes.
_SAFETENSORS_DTYPES = {
    "F64": "<f8", "F32": "<f4", "F16": "<f2", "BF16": "<u2",
    "I64": "<i8", "I32": "<i4", "I16": "<i2", "I8": "|i1",
    "U64": "<u8", "U32": "<u4", "U16": "<u2", "U8": "|u1",
    "BOOL": "|b1",
}
# NumPy dtype (native or little-endian) -> safetensors code, for writing.
_NUMPY_TO_SAFETENSORS = {
    np.dtype(np.float64): "F64", np.dtype(np.float32): "F32", np.dtype(np.float16): "F16",
    np.dtype(np.int64): "I64", np.dtype(np.int32): "I32", np.dtype(np.int16): "I16",
    np.dtype(np.int8): "I8", np.dtype(np.uint64): "U64", np.dtype(np.uint32): "U32",
    np.dtype(np.uint16): "U16", np.dtype(np.uint8): "U8", np.dtype(np.bool_): "BOOL",
}

_METADATA_KEY = "__metadata__"
_NPZ_FORMAT_NAME = "minidl.npz"
_NPZ_FORMAT_VERSION = 1
# A safetensors header larger than this is treated as corrupt (the reference
# implementation uses the same 100 MB limit).
_MAX_SAFETENSORS_HEADER = 100_000_000
# The first pickle of a legacy torch file is this integer.
_LEGACY_MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
_LEGACY_PROTOCOL_VERSION = 1001


def _bfloat16_to_float32(bits: np.ndarray) -> np.ndarray:
    """Widen bfloat16 bit patterns (uint16) to float32.

    bfloat16 keeps float32's sign bit, its 8 exponent bits and the top 7 of its
    23 mantissa bits, so the float32 with the same value has those 16 bits on
    top and zeros below: ``float32_bits = bf16_bits << 16``.
    """
    return (bits.astype(np.uint32) << 16).view(np.float32)


# --------------------------------------------------------------------------------------
# The restricted unpickler and its stand-ins for torch objects
# --------------------------------------------------------------------------------------

class _TorchDtype:
    """Stand-in for a ``torch.dtype`` global such as ``torch.float32``."""

    __slots__ = ("name",)

    def __init__(self, name):
        self.name = name

    def __setstate__(self, state):
        raise UnsafeCheckpointError("a BUILD opcode targets a torch dtype; refusing it")


class _StorageType:
    """Stand-in for a storage class global such as ``torch.FloatStorage``.

    Deliberately not callable: a pickle that tries to *call* a storage class
    (rather than name it in a persistent id) fails inside the unpickler.
    """

    __slots__ = ("dtype_name",)

    def __init__(self, dtype_name):
        self.dtype_name = dtype_name

    def __setstate__(self, state):
        raise UnsafeCheckpointError("a BUILD opcode targets a storage class; refusing it")


class _Storage:
    """A loaded storage: its raw bytes and the torch dtype it was saved with."""

    __slots__ = ("raw", "dtype_name", "claimed")

    def __init__(self, raw: np.ndarray, dtype_name: str):
        self.raw = raw                  # (nbytes,) uint8, possibly read-only
        self.dtype_name = dtype_name
        # True once a tensor has taken self.raw as its own memory (see _tensor_from_storage).
        self.claimed = False

    def __setstate__(self, state):
        raise UnsafeCheckpointError("a BUILD opcode targets a storage; refusing it")


class _LoadedTensor:
    """A rebuilt tensor (a NumPy array) as the pickle sees it.

    Wrapping the array keeps ``numpy.ndarray.__setstate__`` out of the reach of
    the pickle's BUILD opcode; :func:`_unwrap` replaces the wrappers by arrays.
    """

    __slots__ = ("array",)

    def __init__(self, array: np.ndarray):
        self.array = array

    def __setstate__(self, state):
        raise UnsafeCheckpointError("a BUILD opcode targets a tensor; refusing it")


def _check_int_tuple(value, what):
    if not isinstance(value, (tuple, list)) or len(value) > 64 or not all(
        isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value
    ):
        raise ValueError(f"tensor {what} must be a tuple of non-negative ints, got {value!r}")
    return tuple(value)


def _tensor_from_storage(storage, storage_offset, size, stride, dtype_name, byteorder, budget):
    """Return a fresh contiguous array for the view ``(storage_offset, size, stride)``.

    Element ``[i0, i1, ...]`` is ``storage[storage_offset + sum_k i_k * stride_k]``,
    counted in elements of ``dtype_name``.  Every copy is charged to ``budget`` (a
    :class:`_Budget`) before it is made, so a stride-0 view declaring a huge size is
    refused, not materialised.
    """
    if not isinstance(storage, _Storage):
        raise ValueError(f"tensor storage must be a storage record, got {type(storage).__name__}")
    if type(storage_offset) is not int or storage_offset < 0:
        raise ValueError(
            f"tensor storage_offset must be a non-negative int, got {storage_offset!r}")
    size = _check_int_tuple(size, "size")
    stride = _check_int_tuple(stride, "stride")
    if len(size) != len(stride):
        raise ValueError(f"tensor size {size} and stride {stride} have different lengths")
    if dtype_name not in _TORCH_DTYPES:
        raise ValueError(f"tensor dtype {dtype_name!r} is not a torch dtype")
    stored, _ = _TORCH_DTYPES[dtype_name]
    dtype = np.dtype(stored)
    if byteorder == "big":
        dtype = dtype.newbyteorder(">")
    if storage.raw.size % dtype.itemsize:
        raise ValueError(
            f"storage of {storage.raw.size} bytes is not a whole number of {dtype_name} elements"
        )
    flat = storage.raw.view(dtype)       # (numel,) in the file's byte order

    numel = math.prod(size)
    if 0 in size:
        out = np.empty(size, dtype=dtype.newbyteorder("="))
    else:
        # The last element the view touches must lie inside the storage.
        last = storage_offset + sum((n - 1) * s for n, s in zip(size, stride))
        if last >= flat.size:
            raise ValueError(
                f"tensor of size {size}, stride {stride}, offset {storage_offset} reads element "
                f"{last} of a storage holding {flat.size} (truncated or corrupted data)"
            )
        whole = (storage_offset == 0 and numel == flat.size
                 and all(s == math.prod(size[k + 1:]) for k, (s, n) in enumerate(zip(stride, size)) if n > 1))
        if not (whole and dtype.isnative and dtype_name != "bfloat16"
                and storage.raw.flags.writeable and not storage.claimed):
            # A copy (or the bfloat16 widening) is made below: charge it first.
            widen = 2 if dtype_name == "bfloat16" else 1
            budget.charge(numel * dtype.itemsize * widen,
                          f"tensor of size {size}, stride {stride} (a view of a "
                          f"{storage.raw.size}-byte storage)")
        view = np.lib.stride_tricks.as_strided(
            flat[storage_offset:],
            shape=size,
            strides=tuple(s * dtype.itemsize for s in stride),
            writeable=False,
        )
        whole = storage_offset == 0 and view.size == flat.size and view.flags.c_contiguous
        if (whole and dtype.isnative and dtype_name != "bfloat16"
                and storage.raw.flags.writeable and not storage.claimed):
            # The common case, a tensor that is its whole storage: hand the freshly read
            # buffer over without a copy.  Only the first such tensor may take it, so
            # tied weights (one storage saved under two names) still get separate memory.
            storage.claimed = True
            return flat.reshape(size)
        # astype to the native byte order always copies into fresh C-contiguous memory,
        # so tensors that shared a storage no longer share memory.
        out = view.astype(dtype.newbyteorder("="), order="C", copy=True)
    if dtype_name == "bfloat16":
        out = _bfloat16_to_float32(out)
    return out


class _RestrictedUnpickler(pickle.Unpickler):
    """Unpickler for PyTorch state_dicts that resolves only an allow-list of globals.

    ``find_class`` runs when the pickle *names* a global (GLOBAL / STACK_GLOBAL
    opcodes), which always happens before the global can be called, so a refused
    global never runs.  The allowed globals resolve to functions defined here, not
    to torch's own: loading needs no torch at all.

    ``load_storage(storage_type, key, numel)`` returns the raw bytes of storage
    ``key``; the zip and legacy readers supply it.
    """

    def __init__(self, file, source, byteorder, load_storage, budget):
        super().__init__(file)
        self.source = source
        self.byteorder = byteorder
        self.load_storage = load_storage
        self.budget = budget
        self.storages = {}

    # -- the allowed callables -------------------------------------------------

    def _rebuild_tensor_v2(self, storage, storage_offset, size, stride,
                           requires_grad=False, backward_hooks=None, metadata=None):
        # requires_grad, backward_hooks and metadata concern autograd, not values.
        dtype_name = getattr(storage, "dtype_name", None)   # checked in _tensor_from_storage
        return _LoadedTensor(_tensor_from_storage(
            storage, storage_offset, size, stride, dtype_name, self.byteorder, self.budget))

    def _rebuild_tensor(self, storage, storage_offset, size, stride):
        return self._rebuild_tensor_v2(storage, storage_offset, size, stride)

    def _rebuild_tensor_v3(self, storage, storage_offset, size, stride, requires_grad,
                           backward_hooks, dtype, metadata=None):
        # v3 carries the tensor dtype explicitly (used with untyped byte storages).
        if not isinstance(dtype, _TorchDtype):
            raise ValueError(f"_rebuild_tensor_v3 dtype must be a torch dtype, got {dtype!r}")
        return _LoadedTensor(_tensor_from_storage(
            storage, storage_offset, size, stride, dtype.name, self.byteorder, self.budget))

    @staticmethod
    def _rebuild_parameter(data, requires_grad=True, backward_hooks=None):
        # nn.Parameter(data): for loading, a parameter is just its data.
        if not isinstance(data, _LoadedTensor):
            raise ValueError(f"_rebuild_parameter expects a tensor, got {type(data).__name__}")
        return data

    @staticmethod
    def _rebuild_parameter_with_state(data, requires_grad, backward_hooks, state):
        return _RestrictedUnpickler._rebuild_parameter(data, requires_grad, backward_hooks)

    # -- pickle hooks ---------------------------------------------------------------

    def find_class(self, module, name):
        # Every callable is handed out wrapped in a _Global, which refuses BUILD: the
        # pickle can call it but never set an attribute on it (or on the function inside).
        if module == "collections" and name == "OrderedDict":
            return _Global(OrderedDict, "collections.OrderedDict")
        if module == "torch._utils" and name in (
            "_rebuild_tensor", "_rebuild_tensor_v2", "_rebuild_tensor_v3",
            "_rebuild_parameter", "_rebuild_parameter_with_state",
        ):
            return _Global(getattr(self, name), f"torch._utils.{name}")
        if module in ("torch", "torch.cuda", "torch.storage") and name in _STORAGE_CLASSES:
            return _StorageType(_STORAGE_CLASSES[name])
        if module == "torch":
            dtype_name = _TORCH_DTYPE_ALIASES.get(name, name)
            if dtype_name in _TORCH_DTYPES:
                return _TorchDtype(dtype_name)
        hint = ""
        if module.startswith("__torch__"):
            hint = " (this looks like a TorchScript archive, not a state_dict)"
        elif module.startswith("torch.nn.modules"):
            hint = " (a whole pickled model: save and load model.state_dict() instead)"
        raise UnsafeCheckpointError(
            self.source, f"refusing to load global '{module}.{name}'{hint}; a checkpoint may "
            "only contain tensors, dicts, lists and plain values"
        )

    def persistent_load(self, pid):
        # Zip format:    ('storage', storage_type, key, location, numel)
        # Legacy format: ('storage', storage_type, key, location, numel, view_metadata)
        if not isinstance(pid, tuple) or not pid or pid[0] != "storage":
            kind = pid[0] if isinstance(pid, tuple) and pid else pid
            raise UnsafeCheckpointError(
                self.source, f"refusing persistent id of type {kind!r}; only storages are allowed"
            )
        if len(pid) not in (5, 6):
            raise ValueError(f"malformed storage record {pid!r}")
        storage_type, key, _location, numel = pid[1:5]
        if len(pid) == 6 and pid[5] is not None:
            # Storage views (view_key, offset, size) were written by PyTorch < 0.4 only;
            # torch.save has written view_metadata=None ever since.
            raise ValueError(f"{self.source}: legacy storage views are not supported")
        if not isinstance(storage_type, _StorageType):
            raise ValueError(f"storage record names {storage_type!r}, not a storage class")
        if not isinstance(key, str) or type(numel) is not int or numel < 0:
            raise ValueError(f"malformed storage record {pid!r}")
        # The location ('cpu', 'cuda:0') is ignored: every array lands in host memory.
        if key not in self.storages:
            raw = self.load_storage(storage_type, key, numel)
            self.storages[key] = _Storage(raw, storage_type.dtype_name)
        elif self.storages[key].dtype_name != storage_type.dtype_name:
            raise ValueError(f"storage {key!r} is named with two dtypes")
        return self.storages[key]


def _unwrap(obj, budget, seen=None, walk=None, depth=0):
    """Replace every _LoadedTensor in a loaded object tree by its array.

    One tensor saved under two names (tied weights) is one memoised pickle object;
    its second and later appearances get a copy (charged to ``budget``), so no two
    names share memory.  Deep, recursive or hugely shared trees are refused (_Walk).
    """
    seen = set() if seen is None else seen
    walk = _Walk() if walk is None else walk
    walk.visit(depth)
    if isinstance(obj, _LoadedTensor):
        if id(obj) in seen:
            budget.charge(obj.array.nbytes, "a tensor saved under several names")
            return obj.array.copy()
        seen.add(id(obj))
        return obj.array
    if isinstance(obj, dict):
        kind = OrderedDict if isinstance(obj, OrderedDict) else dict  # keep the type torch saved
        return kind((k, _unwrap(v, budget, seen, walk, depth + 1)) for k, v in obj.items())
    if isinstance(obj, (list, tuple)):
        return type(obj)(_unwrap(v, budget, seen, walk, depth + 1) for v in obj)
    return obj


# Keys under which training scripts nest the model's state_dict, tried in this order.
_WRAPPER_KEYS = ("state_dict", "model_state_dict", "model", "module", "net", "network", "params")


def _to_state_dict(obj, source):
    """Turn a loaded checkpoint object into a flat ordered ``name -> array`` dict.

    The rule, applied in order:

    1. Unwrap: while ``obj`` is a dict that holds no array directly but holds a dict
       under one of ``_WRAPPER_KEYS`` ("state_dict", "model_state_dict", "model",
       "module", "net", "network", "params"; the first present wins), descend
       into it.  ``{"state_dict": sd, "epoch": 3}`` becomes ``sd``.
    2. Flatten: nested dicts, lists and tuples become dotted keys
       (``{"a": {"b": t}}`` -> ``{"a.b": t}``, ``{"l": [t0, t1]}`` -> ``l.0``, ``l.1``).
    3. Leaves that are not arrays (epoch numbers, strings, None) are dropped.
    """
    while isinstance(obj, dict) and not any(isinstance(v, np.ndarray) for v in obj.values()):
        inner = next((obj[k] for k in _WRAPPER_KEYS if isinstance(obj.get(k), dict)), None)
        if inner is None:
            break
        obj = inner
    if isinstance(obj, np.ndarray):
        raise ValueError(
            f"{source}: holds a single tensor of shape {obj.shape}, not a state_dict"
        )
    out = OrderedDict()
    walk = _Walk()

    def flatten(prefix, value, depth):
        walk.visit(depth)
        if isinstance(value, np.ndarray):
            out[prefix] = value
        elif isinstance(value, dict):
            for k, v in value.items():
                flatten(f"{prefix}.{k}" if prefix else str(k), v, depth + 1)
        elif isinstance(value, (list, tuple)):
            for i, v in enumerate(value):
                flatten(f"{prefix}.{i}" if prefix else str(i), v, depth + 1)

    flatten("", obj, 0)
    if not out:
        raise ValueError(f"{source}: no tensors found in the checkpoint")
    return out


# --------------------------------------------------------------------------------------
# PyTorch readers
# --------------------------------------------------------------------------------------

def _read_torch_zip(zf: zipfile.ZipFile, source, budget):
    """Read a PyTorch >= 1.6 zip checkpoint into its (unwrapped) object tree.

    Layout: ``<prefix>/data.pkl`` (the pickle), ``<prefix>/data/<key>`` (the raw bytes
    of each storage), ``<prefix>/byteorder`` ("little" or "big"; absent in files
    older than PyTorch 1.11, which were little-endian).
    """
    _check_zip_layout(zf, source)
    names = zf.namelist()
    pickles = [n for n in names if n.endswith("data.pkl") and n.count("/") == 1]
    if len(pickles) != 1:
        raise ValueError(f"{source}: expected one '<archive>/data.pkl' record, found {pickles}")
    prefix = pickles[0][: -len("data.pkl")]
    byteorder = "little"
    if prefix + "byteorder" in names:
        byteorder = _read_zip_member(zf, prefix + "byteorder", max_size=64).tobytes()
        byteorder = byteorder.decode("ascii", "replace").strip()
        if byteorder not in ("little", "big"):
            raise ValueError(
                f"{source}: byteorder record must be 'little' or 'big', got {byteorder!r}")

    def load_storage(storage_type, key, numel):
        name = f"{prefix}data/{key}"
        if name not in names:
            raise ValueError(f"storage record {name!r} is missing from the archive")
        # numel counts elements of the storage's dtype (bytes for an untyped storage).
        nbytes = numel * np.dtype(_TORCH_DTYPES[storage_type.dtype_name][0]).itemsize
        size = zf.getinfo(name).file_size
        if size < nbytes:
            raise ValueError(f"storage {name!r} holds {size} bytes, expected {nbytes}")
        raw = _read_zip_member(zf, name)
        return raw[:nbytes]

    data_pkl = io.BytesIO(_read_zip_member(zf, pickles[0]).tobytes())
    unpickler = _RestrictedUnpickler(data_pkl, source, byteorder, load_storage, budget)
    check_pickle_stream(data_pkl, source, unpickler.find_class)
    return unpickler.load()


def _check_zip_layout(zf: zipfile.ZipFile, source):
    """Refuse archives whose members overlap (one stored blob listed under many names: the
    classic zip bomb, whose reads would multiply the file's bytes) or lie outside the file."""
    archive_size = os.path.getsize(zf.filename)
    end = 0
    previous = None
    for info in sorted(zf.infolist(), key=lambda i: i.header_offset):
        if info.flag_bits & 0x1:
            raise ValueError(f"{source}: zip member {info.filename!r} is encrypted; checkpoints never are")
        if info.header_offset < end:
            raise UnsafeFileError(
                source, f"zip members {previous!r} and {info.filename!r} overlap (a zip bomb or a "
                "corrupted archive)")
        end = info.header_offset + 30 + info.compress_size
        previous = info.filename
        if end > archive_size:
            raise ValueError(
                f"{source}: zip member {info.filename!r} declares {info.compress_size} bytes beyond the "
                f"end of the {archive_size}-byte archive (truncated or lying archive)")


def _read_zip_member(zf: zipfile.ZipFile, name: str, max_size=None) -> np.ndarray:
    """Return a zip member's bytes as a writable uint8 array, CRC-checked.

    torch.save stores members uncompressed (ZIP_STORED), so we read them straight from
    the file into a bytearray that the arrays can keep (zipfile.read would return
    immutable bytes, forcing one more copy of every tensor).  The declared size is
    checked against the archive's real size before anything is allocated; a deflated
    member may not claim more than ``_MAX_DEFLATE_RATIO`` times its compressed size and
    is read in chunks (so memory follows the bytes really decompressed); no other
    compression method is accepted.
    """
    info = zf.getinfo(name)
    if max_size is not None and info.file_size > max_size:
        raise ValueError(f"zip member {name!r} declares {info.file_size} bytes, at most {max_size} expected")
    archive_size = os.path.getsize(zf.filename)
    if info.header_offset < 0 or info.header_offset + info.compress_size > archive_size:
        raise ValueError(
            f"zip member {name!r} declares {info.compress_size} bytes at offset {info.header_offset}, "
            f"beyond the end of the {archive_size}-byte archive (truncated or lying archive)")
    if info.compress_type == zipfile.ZIP_DEFLATED:
        return np.frombuffer(_read_deflated(zf, info), dtype=np.uint8)
    if info.compress_type != zipfile.ZIP_STORED:
        raise ValueError(
            f"zip member {name!r} uses compression method {info.compress_type}; only stored "
            "and deflated members are read")
    if info.file_size != info.compress_size:
        raise ValueError(f"stored zip member {name!r} declares two different sizes (corrupted archive)")
    with open(zf.filename, "rb") as f:
        # Local file header: 30 fixed bytes, then the name and an extra field whose
        # lengths are little-endian uint16 at offsets 26 and 28.
        f.seek(info.header_offset)
        local = f.read(30)
        if len(local) != 30 or local[:4] != b"PK\x03\x04":
            raise ValueError(f"zip member {name!r} has a corrupted local header")
        name_length, extra_length = struct.unpack("<HH", local[26:30])
        start = info.header_offset + 30 + name_length + extra_length
        if start + info.file_size > archive_size:
            raise ValueError(f"zip member {name!r} is truncated")
        f.seek(start)
        buf = bytearray(info.file_size)
        if f.readinto(buf) != info.file_size:
            raise ValueError(f"zip member {name!r} is truncated")
    if zlib.crc32(buf) != info.CRC:
        raise ValueError(f"zip member {name!r} fails its CRC-32 check (corrupted data)")
    return np.frombuffer(buf, dtype=np.uint8)


def _read_deflated(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytearray:
    """A deflated member's bytes, read in chunks; its declared size is capped by deflate's ratio."""
    if info.file_size > _MAX_DEFLATE_RATIO * max(info.compress_size, 1):
        raise ValueError(
            f"zip member {info.filename!r} declares {info.file_size} bytes from {info.compress_size} "
            f"compressed ones, more than deflate can produce (ratio {_MAX_DEFLATE_RATIO}): refusing it")
    buf = bytearray()
    with zf.open(info) as member:         # zipfile stops at file_size and checks the CRC-32
        while True:
            chunk = member.read(1 << 20)
            if not chunk:
                break
            buf += chunk
            if len(buf) > info.file_size:
                raise ValueError(f"zip member {info.filename!r} decompresses beyond its declared size")
    if len(buf) != info.file_size:
        raise ValueError(f"zip member {info.filename!r} is truncated")
    return buf


def _read_torch_legacy(f, source, budget):
    """Read a legacy (PyTorch < 1.6 default) checkpoint into its object tree.

    The file is a sequence of pickles and raw buffers:
    magic number, protocol version (1001), sys_info dict (byte order, C type sizes),
    the object (storages as persistent ids), the sorted list of storage keys, then
    for each key an int64 element count followed by the storage's raw bytes.
    Storage bytes are only known after the object pickle, so storages are
    placeholders filled in place once the buffers have been read; tensors are
    rebuilt lazily at the end.
    """
    f = _BoundedReader(f, os.fstat(f.fileno()).st_size)

    def plain_load():
        unpickler = _RestrictedUnpickler(f, source, "little", _refuse_storage, budget)
        check_pickle_stream(f, source, unpickler.find_class)
        return unpickler.load()

    magic = plain_load()
    if magic != _LEGACY_MAGIC_NUMBER:
        raise ValueError(f"{source}: not a PyTorch checkpoint (bad magic number {magic!r})")
    protocol = plain_load()
    if protocol != _LEGACY_PROTOCOL_VERSION:
        raise ValueError(f"{source}: unsupported legacy protocol version {protocol!r}")
    sys_info = plain_load()
    if not isinstance(sys_info, dict):
        raise ValueError(f"{source}: malformed sys_info record {sys_info!r}")
    byteorder = "little" if sys_info.get("little_endian", True) else "big"

    # First pass over the object pickle: record which storages it uses and the
    # tensors' view parameters, since the storage bytes come after it.
    deferred = _DeferredLegacyUnpickler(f, source, byteorder, budget)
    check_pickle_stream(f, source, deferred.find_class)
    obj = deferred.load()
    keys = plain_load()
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        raise ValueError(f"{source}: malformed storage key list")
    count_format = "<q" if byteorder == "little" else ">q"
    file_size = f._end
    for key in keys:
        if key not in deferred.records:
            raise ValueError(f"{source}: storage {key!r} is listed but never used")
        dtype_name, numel = deferred.records[key]
        header = f.read(8)
        if len(header) != 8:
            raise ValueError(f"{source}: file ends before storage {key!r} (truncated)")
        (count,) = struct.unpack(count_format, header)
        if count != numel:
            raise ValueError(f"{source}: storage {key!r} holds {count} elements, expected {numel}")
        nbytes = numel * np.dtype(_TORCH_DTYPES[dtype_name][0]).itemsize
        if nbytes > file_size - f.tell():
            raise ValueError(
                f"{source}: storage {key!r} declares {numel} elements ({nbytes} bytes) but only "
                f"{file_size - f.tell()} bytes are left in the file (truncated or lying file)")
        buf = bytearray(nbytes)
        if f.readinto(buf) != nbytes:
            raise ValueError(f"{source}: file ends inside storage {key!r} (truncated)")
        deferred.storages[key].raw = np.frombuffer(buf, dtype=np.uint8)
    return _realise(obj, deferred, _Walk(), 0)


def _refuse_storage(storage_type, key, numel):
    raise ValueError("a storage appears where only plain values are allowed")


class _PendingTensor:
    """A legacy-format tensor whose storage bytes have not been read yet."""

    __slots__ = ("args", "loaded")

    def __init__(self, args):
        self.args = args
        self.loaded = None

    def __setstate__(self, state):
        raise UnsafeCheckpointError("a BUILD opcode targets a tensor; refusing it")


class _DeferredLegacyUnpickler(_RestrictedUnpickler):
    """Restricted unpickler that defers tensor rebuilding until storages are read."""

    def __init__(self, file, source, byteorder, budget):
        super().__init__(file, source, byteorder, self._placeholder, budget)
        self.records = {}                # key -> (dtype_name, numel)

    def _placeholder(self, storage_type, key, numel):
        self.records[key] = (storage_type.dtype_name, numel)
        return np.empty(0, dtype=np.uint8)     # replaced after the object pickle

    def _rebuild_tensor_v2(self, storage, storage_offset, size, stride,
                           requires_grad=False, backward_hooks=None, metadata=None):
        if not isinstance(storage, _Storage):
            raise ValueError(
                f"tensor storage must be a storage record, got {type(storage).__name__}")
        return _PendingTensor((storage, storage_offset, size, stride, storage.dtype_name))

    def _rebuild_tensor_v3(self, storage, storage_offset, size, stride, requires_grad,
                           backward_hooks, dtype, metadata=None):
        if not isinstance(dtype, _TorchDtype):
            raise ValueError(f"_rebuild_tensor_v3 dtype must be a torch dtype, got {dtype!r}")
        return _PendingTensor((storage, storage_offset, size, stride, dtype.name))

    @staticmethod
    def _rebuild_parameter(data, requires_grad=True, backward_hooks=None):
        if not isinstance(data, _PendingTensor):
            raise ValueError(f"_rebuild_parameter expects a tensor, got {type(data).__name__}")
        return data

    @staticmethod
    def _rebuild_parameter_with_state(data, requires_grad, backward_hooks, state):
        return _DeferredLegacyUnpickler._rebuild_parameter(data, requires_grad, backward_hooks)


def _realise(obj, deferred, walk, depth):
    """Replace the _PendingTensors of a legacy object tree by arrays.

    One _PendingTensor met twice (memoised) becomes one _LoadedTensor, as in the zip format.
    """
    walk.visit(depth)
    if isinstance(obj, _PendingTensor):
        if obj.loaded is None:
            storage, offset, size, stride, dtype_name = obj.args
            obj.loaded = _LoadedTensor(_tensor_from_storage(
                storage, offset, size, stride, dtype_name, deferred.byteorder, deferred.budget))
        return obj.loaded
    if isinstance(obj, dict):
        kind = OrderedDict if isinstance(obj, OrderedDict) else dict  # keep the type torch saved
        return kind((k, _realise(v, deferred, walk, depth + 1)) for k, v in obj.items())
    if isinstance(obj, (list, tuple)):
        return type(obj)(_realise(v, deferred, walk, depth + 1) for v in obj)
    return obj


# --------------------------------------------------------------------------------------
# safetensors
# --------------------------------------------------------------------------------------

def _read_safetensors_header(f, source, file_size):
    """Read and validate the header; return (header dict, offset of the data buffer)."""
    prefix = f.read(8)
    if len(prefix) != 8:
        raise ValueError(
            f"{source}: file is {len(prefix)} bytes, too short for a safetensors header")
    (header_size,) = struct.unpack("<Q", prefix)
    if header_size > _MAX_SAFETENSORS_HEADER or 8 + header_size > file_size:
        raise ValueError(
            f"{source}: safetensors header claims {header_size} bytes but the file has "
            f"{file_size - 8} after the length field (truncated or not a safetensors file)"
        )
    header = _parse_json(f.read(header_size), source, "safetensors header")
    if not isinstance(header, dict):
        raise ValueError(
            f"{source}: safetensors header must be a JSON object, got {type(header).__name__}")
    return header, 8 + header_size


def _no_duplicate_keys(pairs):
    keys = [k for k, _ in pairs]
    if len(set(keys)) != len(keys):
        twice = sorted({k for k in keys if keys.count(k) > 1})
        raise ValueError(f"the JSON names {twice} more than once")
    return dict(pairs)


def _parse_json(data, source, what):
    """Parse UTF-8 JSON from a file, refusing duplicate keys and deep nesting with a clear error."""
    try:
        return json.loads(data.decode("utf-8"), object_pairs_hook=_no_duplicate_keys)
    except RecursionError:
        raise UnsafeFileError(source, f"{what} nests too deeply to parse (a hostile file)") from None
    except (UnicodeDecodeError, ValueError) as err:     # JSONDecodeError is a ValueError
        raise CheckpointError(source, f"{what} is not valid JSON ({err})") from None


def _is_count(value):
    """A JSON integer (not a boolean) that is >= 0."""
    return type(value) is int and value >= 0


def _parse_safetensors_entries(header, source, data_size):
    """Validate the tensor entries; return [(name, dtype code, shape, begin, end)] in file order."""
    entries = []
    for name, info in header.items():
        if name == _METADATA_KEY:
            continue
        try:
            code, shape, (begin, end) = info["dtype"], info["shape"], info["data_offsets"]
        except (TypeError, KeyError, ValueError):
            raise ValueError(f"{source}: malformed safetensors entry {name!r}: {info!r}") from None
        if not isinstance(code, str) or code not in _SAFETENSORS_DTYPES:
            raise ValueError(
                f"{source}: tensor {name!r} has dtype {code!r}; "
                f"supported: {sorted(_SAFETENSORS_DTYPES)}"
            )
        if not isinstance(shape, list) or len(shape) > 64 or not all(_is_count(n) for n in shape):
            raise ValueError(f"{source}: tensor {name!r} has invalid shape {shape!r}")
        itemsize = np.dtype(_SAFETENSORS_DTYPES[code]).itemsize
        if not (_is_count(begin) and _is_count(end) and begin <= end <= data_size):
            raise ValueError(
                f"{source}: tensor {name!r} data_offsets [{begin}, {end}] fall outside the "
                f"{data_size}-byte data buffer (truncated or corrupted file)"
            )
        if end - begin != math.prod(shape) * itemsize:
            raise ValueError(
                f"{source}: tensor {name!r} of shape {shape} and dtype {code} needs "
                f"{math.prod(shape) * itemsize} bytes, data_offsets give {end - begin}"
            )
        entries.append((name, code, tuple(shape), begin, end))
    entries.sort(key=lambda e: (e[3], e[4]))
    previous = None
    for entry in entries:
        if entry[3] == entry[4]:
            continue                         # an empty tensor occupies no bytes
        if previous is not None and entry[3] < previous[4]:
            raise ValueError(
                f"{source}: tensors {previous[0]!r} (bytes {previous[3]}..{previous[4]}) and "
                f"{entry[0]!r} (bytes {entry[3]}..{entry[4]}) overlap in the data buffer; "
                "each tensor must have its own bytes")
        previous = entry
    return entries


def load_safetensors(path) -> "OrderedDict[str, np.ndarray]":
    """Read a ``.safetensors`` file into an ordered dict of arrays (file order).

    BF16 tensors come back as float32 (NumPy has no bfloat16).

    >>> save_safetensors({"b": np.zeros(3, np.float16)}, "/tmp/b.safetensors")
    >>> load_safetensors("/tmp/b.safetensors")["b"].dtype
    dtype('float16')
    """
    source = os.fspath(path)
    file_size = os.path.getsize(source)
    with _reading(source, "safetensors file"), open(source, "rb") as f:
        header, data_start = _read_safetensors_header(f, source, file_size)
        entries = _parse_safetensors_entries(header, source, file_size - data_start)
        out = OrderedDict()
        for name, code, shape, begin, end in entries:
            # readinto a fresh bytearray gives a writable array without a second copy.
            buf = bytearray(end - begin)
            f.seek(data_start + begin)
            if f.readinto(buf) != len(buf):
                raise ValueError(f"{source}: file ends inside tensor {name!r} (truncated)")
            array = np.frombuffer(buf, dtype=_SAFETENSORS_DTYPES[code]).reshape(shape)
            if code == "BF16":
                array = _bfloat16_to_float32(array)
            elif array.dtype.byteorder == "<" and not array.dtype.isnative:
                array = array.astype(array.dtype.newbyteorder("="))
            out[name] = array
    return out


def save_safetensors(tensors, path, metadata=None) -> None:
    """Write name -> array (or Tensor, or a Module's state_dict) as ``.safetensors``, atomically.

    ``metadata`` is a dict of str to str, stored under ``__metadata__``.
    Tensors are written in the dict's order, contiguous and little-endian.
    """
    arrays = _as_arrays(tensors)
    metadata = _check_metadata(metadata)
    header = OrderedDict()
    if metadata:
        header[_METADATA_KEY] = metadata
    offset = 0
    for name, array in arrays.items():
        code = _NUMPY_TO_SAFETENSORS.get(array.dtype.newbyteorder("="))
        if code is None:
            raise TypeError(
                f"tensors[{name!r}] has dtype {array.dtype}; safetensors stores "
                f"{sorted(str(d) for d in _NUMPY_TO_SAFETENSORS)}"
            )
        header[name] = {"dtype": code, "shape": list(array.shape),
                        "data_offsets": [offset, offset + array.nbytes]}
        offset += array.nbytes
    header_bytes = json.dumps(header, separators=(",", ":")).encode("utf-8")
    # Pad the header with spaces so the data buffer starts 8-byte aligned, as the
    # reference implementation does.
    header_bytes += b" " * (-len(header_bytes) % 8)

    def write(f):
        f.write(struct.pack("<Q", len(header_bytes)))
        f.write(header_bytes)
        for array in arrays.values():
            little = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<"))
            f.write(little.reshape(-1).view(np.uint8).data)

    _atomic_write(path, write)


# --------------------------------------------------------------------------------------
# minidl's own .npz format
# --------------------------------------------------------------------------------------

def _save_npz(arrays, path, metadata):
    for name, array in arrays.items():
        if array.dtype.hasobject:
            raise TypeError(f"tensors[{name!r}] has dtype object; only numeric arrays can be saved")
    if _METADATA_KEY in arrays:
        raise ValueError(f"tensor name {_METADATA_KEY!r} is reserved for the metadata record")
    record = {"format": _NPZ_FORMAT_NAME, "version": _NPZ_FORMAT_VERSION,
              "order": list(arrays), "metadata": metadata}
    meta = np.frombuffer(json.dumps(record).encode("utf-8"), dtype=np.uint8)
    _atomic_write(path, lambda f: np.savez(f, **arrays, **{_METADATA_KEY: meta}))


def _npz_members(zf):
    """name -> ZipInfo of an .npz archive's ``.npy`` members."""
    return OrderedDict((info.filename[:-len(".npy")], info) for info in zf.infolist()
                       if info.filename.endswith(".npy"))


_MAX_NPY_HEADER = 65536


def _read_npy_header(fp, name, source):
    """Parse a ``.npy`` header ourselves: ``(shape, fortran_order, dtype, header length)``.

    The header is a Python dict literal, read with ``ast.literal_eval`` (no code runs);
    ``descr`` must be a dtype string (never a list: no structured or object records).
    """
    magic = fp.read(8)
    if len(magic) != 8 or magic[:6] != b"\x93NUMPY" or magic[6] not in (1, 2, 3) or magic[7] != 0:
        raise ValueError(f"{source}: array {name!r} is not a .npy file (magic {magic!r})")
    size_format = "<H" if magic[6] == 1 else "<I"
    size_bytes = fp.read(struct.calcsize(size_format))
    if len(size_bytes) != struct.calcsize(size_format):
        raise ValueError(f"{source}: array {name!r} has a truncated .npy header")
    (length,) = struct.unpack(size_format, size_bytes)
    if length > _MAX_NPY_HEADER:
        raise ValueError(f"{source}: array {name!r} has a {length}-byte .npy header (at most {_MAX_NPY_HEADER})")
    raw = fp.read(length)
    if len(raw) != length:
        raise ValueError(f"{source}: array {name!r} has a truncated .npy header")
    try:
        header = ast.literal_eval(raw.decode("utf-8" if magic[6] == 3 else "latin1"))
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError, UnicodeDecodeError) as err:
        raise ValueError(f"{source}: array {name!r} has an unreadable .npy header ({type(err).__name__})") from None
    if not isinstance(header, dict) or set(header) != {"descr", "fortran_order", "shape"}:
        raise ValueError(f"{source}: array {name!r} has a malformed .npy header {str(header)[:200]}")
    shape, fortran, descr = header["shape"], header["fortran_order"], header["descr"]
    if not isinstance(shape, tuple) or len(shape) > 64 or not all(_is_count(n) for n in shape):
        raise ValueError(f"{source}: array {name!r} has an invalid shape {str(shape)[:200]}")
    if type(fortran) is not bool:
        raise ValueError(f"{source}: array {name!r} has an invalid fortran_order {fortran!r}")
    if not isinstance(descr, str):
        raise UnsafeFileError(
            source, f"array {name!r} has a record dtype {str(descr)[:200]}; only plain dtypes are read")
    try:
        dtype = np.dtype(descr)
    except (TypeError, ValueError, SyntaxError, KeyError, IndexError, RecursionError) as err:
        raise ValueError(f"{source}: array {name!r} has an invalid dtype {descr!r} ({err})") from None
    if dtype.kind == "V":
        raise UnsafeFileError(source, f"array {name!r} has a void/record dtype {descr!r}; not read")
    return shape, fortran, dtype, 8 + len(size_bytes) + length


def _read_npy_member(zf, info, source):
    """Read one ``.npy`` member with our own checks (never ``allow_pickle``).

    The header's dtype must hold no Python objects, and its shape must need exactly
    the bytes the member holds, checked before anything is allocated.
    """
    name = info.filename
    with zf.open(info) as fp:
        shape, fortran, dtype, header_length = _read_npy_header(fp, name, source)
    if dtype.hasobject:
        raise UnsafeFileError(
            source, f"array {name!r} has dtype {dtype} (Python objects); only numeric arrays are read")
    if dtype.itemsize == 0 and math.prod(shape) != 0:
        raise ValueError(f"{source}: array {name!r} has a zero-size dtype {dtype}")
    nbytes = math.prod(shape) * dtype.itemsize
    if nbytes != info.file_size - header_length:
        raise ValueError(
            f"{source}: array {name!r} declares shape {shape} of {dtype} ({nbytes} bytes) but the "
            f"member holds {info.file_size - header_length} (corrupted or lying .npy header)")
    raw = _read_zip_member(zf, name)[header_length:]
    if fortran:
        array = raw.view(dtype).reshape(shape[::-1]).transpose()
    else:
        array = raw.view(dtype).reshape(shape)
    # A plain np.savez file may hold big-endian arrays; return native order.
    if not array.dtype.isnative:
        array = array.astype(array.dtype.newbyteorder("="))
    return array


def _read_npz_record(zf, members, source):
    if _METADATA_KEY not in members:
        return None
    meta = _read_npy_member(zf, members[_METADATA_KEY], source)
    if meta.dtype != np.uint8 or meta.ndim != 1:
        raise ValueError(f"{source}: metadata record must be a 1-D uint8 array, got {meta.dtype} {meta.shape}")
    record = _parse_json(meta.tobytes(), source, "metadata record")
    if not isinstance(record, dict):
        raise ValueError(f"{source}: metadata record must be a JSON object")
    return record


def _load_npz(path, source):
    with _reading(source, ".npz archive"), zipfile.ZipFile(path) as zf:
        _check_zip_layout(zf, source)
        members = _npz_members(zf)
        record = _read_npz_record(zf, members, source)
        names = [n for n in members if n != _METADATA_KEY]
        order = record.get("order") if record is not None else None
        if isinstance(order, list) and all(isinstance(n, str) for n in order) \
                and sorted(order) == sorted(names):
            names = order
        out = OrderedDict()
        for name in names:
            out[name] = _read_npy_member(zf, members[name], source)
        return out


# --------------------------------------------------------------------------------------
# Writing PyTorch's zip format, without torch
# --------------------------------------------------------------------------------------

# NumPy dtype -> the name of the torch storage class torch.save writes for it.
_STORAGE_CLASS_OF = {
    np.dtype(_TORCH_DTYPES[dtype_name][0]).newbyteorder("="): name
    for name, dtype_name in _STORAGE_CLASSES.items()
    if name != "UntypedStorage" and dtype_name != "bfloat16"
}


class _TorchPickleWriter:
    """Write an object tree as the protocol-2 pickle of ``torch.save``, opcode by opcode.

    Only what ``torch.load(weights_only=True)`` accepts is written: ``None``, bools, ints,
    floats, strings, tuples, lists, dicts (``OrderedDict`` as ``collections.OrderedDict()``
    then SETITEMS) and tensors.  A tensor (a minidl Tensor or a NumPy array) becomes::

        torch._utils._rebuild_tensor_v2(storage, 0, size, stride, requires_grad, OrderedDict())

    where ``storage`` is the persistent id ``('storage', torch.FloatStorage, key, 'cpu', numel)``
    that ``torch.load`` resolves to the zip member ``data/<key>``.  Globals are written as
    GLOBAL opcodes by name, so torch is never imported.  No memo is written: a tensor that
    appears twice (tied weights) is written twice over the same storage key, which both
    torch and minidl load as one storage.
    """

    def __init__(self):
        self.out = io.BytesIO()
        self.storages = OrderedDict()  # key -> contiguous little-endian array
        self._key_of = {}              # id(source array) -> key
        self._sources = []             # keeps the source arrays alive while ids are in use

    def dump(self, obj):
        self.out.write(pickle.PROTO + bytes([2]))
        self._save(obj, "obj", 0)
        self.out.write(pickle.STOP)
        return self.out.getvalue()

    # -- opcodes ----------------------------------------------------------------------

    def _global(self, module, name):
        self.out.write(pickle.GLOBAL + f"{module}\n{name}\n".encode("ascii"))

    def _int(self, value):
        if 0 <= value < 256:
            self.out.write(pickle.BININT1 + bytes([value]))
        elif -2**31 <= value < 2**31:
            self.out.write(pickle.BININT + struct.pack("<i", value))
        else:  # two's complement, little-endian, with room for the sign bit
            data = value.to_bytes(value.bit_length() // 8 + 1, "little", signed=True)
            self.out.write(pickle.LONG1 + bytes([len(data)]) + data)

    def _str(self, value):
        data = value.encode("utf-8", "surrogatepass")
        self.out.write(pickle.BINUNICODE + struct.pack("<I", len(data)) + data)

    def _tuple(self, items, where, depth):
        if not items:
            self.out.write(pickle.EMPTY_TUPLE)
            return
        if len(items) > 3:
            self.out.write(pickle.MARK)
        for k, item in enumerate(items):
            self._save(item, f"{where}[{k}]", depth + 1)
        self.out.write({1: pickle.TUPLE1, 2: pickle.TUPLE2, 3: pickle.TUPLE3}.get(len(items), pickle.TUPLE))

    def _save(self, obj, where, depth):
        if depth > _MAX_DEPTH:
            raise ValueError(f"save: {where} is nested more than {_MAX_DEPTH} levels deep (a cycle?)")
        if isinstance(obj, np.generic) and not isinstance(obj, np.ndarray):
            obj = obj.item()                         # NumPy scalars as Python numbers
        if obj is None:
            self.out.write(pickle.NONE)
        elif obj is True or obj is False:
            self.out.write(pickle.NEWTRUE if obj else pickle.NEWFALSE)
        elif isinstance(obj, int):
            self._int(int(obj))
        elif isinstance(obj, float):
            self.out.write(pickle.BINFLOAT + struct.pack(">d", obj))
        elif isinstance(obj, str):
            self._str(obj)
        elif isinstance(obj, tuple):
            self._tuple(tuple(obj), where, depth)
        elif isinstance(obj, list):
            self.out.write(pickle.EMPTY_LIST)
            if obj:
                self.out.write(pickle.MARK)
                for k, item in enumerate(obj):
                    self._save(item, f"{where}[{k}]", depth + 1)
                self.out.write(pickle.APPENDS)
        elif isinstance(obj, dict):
            if isinstance(obj, OrderedDict):           # collections.OrderedDict()
                self._global("collections", "OrderedDict")
                self.out.write(pickle.EMPTY_TUPLE + pickle.REDUCE)
            else:
                self.out.write(pickle.EMPTY_DICT)
            if obj:
                self.out.write(pickle.MARK)
                for key, value in obj.items():
                    if _is_tensor_like(key):
                        raise TypeError(f"save: {where} has a tensor as a dict key")
                    self._save(key, f"{where} key", depth + 1)
                    self._save(value, f"{where}[{key!r}]", depth + 1)
                self.out.write(pickle.SETITEMS)
        elif _is_tensor_like(obj):
            self._tensor(obj, where)
        else:
            raise TypeError(
                f"save: {where} is a {type(obj).__name__}; a .pt/.pth file holds Tensors, arrays, dicts, "
                "lists, tuples, str, int, float, bool and None (save a Module's state_dict())")

    def _tensor(self, obj, where):
        from minidl.data.convert import to_numpy

        source = obj.data if hasattr(obj, "requires_grad") else obj   # minidl Tensor -> its array
        requires_grad = bool(getattr(obj, "requires_grad", False))
        key = self._key_of.get(id(source))
        array = None
        if key is None:
            array = np.asarray(to_numpy(source), order="C")   # (ascontiguousarray would make 0-d 1-d)
            if array.dtype.newbyteorder("=") not in _STORAGE_CLASS_OF:
                raise TypeError(f"save: {where} has dtype {array.dtype}, which a torch file cannot hold")
            key = str(len(self.storages))
            self.storages[key] = array.astype(array.dtype.newbyteorder("<"), copy=False)
            self._key_of[id(source)] = key
            self._sources.append(source)
        array = self.storages[key]
        shape = tuple(int(n) for n in array.shape)
        # element strides of a C-contiguous array: stride[k] = size[k+1] * ... * size[-1]
        stride = tuple(math.prod(shape[k + 1:]) for k in range(len(shape)))

        self._global("torch._utils", "_rebuild_tensor_v2")
        self.out.write(pickle.MARK)
        # the storage, as a persistent id torch.load resolves to the member data/<key>
        self.out.write(pickle.MARK)
        self._str("storage")
        self._global("torch", _STORAGE_CLASS_OF[array.dtype.newbyteorder("=")])
        self._str(key)
        self._str("cpu")
        self._int(int(array.size))
        self.out.write(pickle.TUPLE + pickle.BINPERSID)
        self._int(0)                                  # storage_offset
        self._tuple(shape, where, 0)
        self._tuple(stride, where, 0)
        self.out.write(pickle.NEWTRUE if requires_grad else pickle.NEWFALSE)
        self._global("collections", "OrderedDict")     # backward_hooks: an empty OrderedDict
        self.out.write(pickle.EMPTY_TUPLE + pickle.REDUCE)
        self.out.write(pickle.TUPLE + pickle.REDUCE)


def _is_tensor_like(obj):
    """A minidl Tensor (has ``.data`` and ``requires_grad``), a NumPy array or a CuPy array."""
    return (isinstance(obj, np.ndarray) or hasattr(obj, "requires_grad") and hasattr(obj, "data")
            or type(obj).__module__.split(".")[0] == "cupy")


_TORCH_ALIGNMENT = 64  # torch.save starts every member's data at a multiple of 64 bytes


def _write_torch_zip(f, obj):
    """Write ``obj`` to the open file ``f`` in the layout of ``torch.save`` (zip, stored).

    Members: ``archive/data.pkl`` (the pickle), ``archive/byteorder``, one
    ``archive/data/<key>`` per storage (raw little-endian bytes), ``archive/version`` and
    ``archive/.data/serialization_id``.  Each member's data starts at a multiple of 64 bytes,
    padded with an extra field in the local header (as torch's writer does), so a reader may
    map the storages straight from the file.
    """
    writer = _TorchPickleWriter()
    data_pkl = writer.dump(obj)
    records = [("data.pkl", data_pkl), ("byteorder", b"little")]
    records += [(f"data/{key}", array) for key, array in writer.storages.items()]
    records += [("version", b"3\n"),
                (".data/serialization_id", "".join(secrets.choice("0123456789") for _ in range(40)).encode())]
    with zipfile.ZipFile(f, "w", zipfile.ZIP_STORED) as zf:
        for name, data in records:
            payload = memoryview(data.reshape(-1).view(np.uint8)) if isinstance(data, np.ndarray) else data
            info = zipfile.ZipInfo(f"archive/{name}", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_STORED
            info.file_size = len(payload)
            zip64 = len(payload) > zipfile.ZIP64_LIMIT
            # local header: 30 bytes + name + our extra field (4 + pad) + zipfile's zip64 field
            used = f.tell() + 30 + len(info.filename.encode("utf-8")) + 4 + (20 if zip64 else 0)
            pad = -used % _TORCH_ALIGNMENT
            info.extra = struct.pack("<HH", 0x4246, pad) + b"Z" * pad
            with zf.open(info, "w", force_zip64=zip64) as member:
                member.write(payload)


# --------------------------------------------------------------------------------------
# minidl.load: the saved object back, tensors as minidl Tensors
# --------------------------------------------------------------------------------------

# The key of a trainer checkpoint's JSON record in a .npz file's metadata (minidl.train writes it).
TRAINER_RECORD_KEY = "minidl.trainer"


def unpack_array_references(value, arrays, walk=None, depth=0):
    """Replace every ``{"__array__": name}`` in a JSON record by ``arrays[name]``.

    A trainer checkpoint keeps its arrays as the members of a .npz file and everything else
    as a JSON record in which each array is such a reference (see ``minidl.train``).
    Raises KeyError for a reference to an array the file does not hold, and
    :class:`UnsafeCheckpointError` for a record nested deeper than ``_MAX_DEPTH``.
    """
    walk = _Walk() if walk is None else walk
    walk.visit(depth)
    if isinstance(value, dict):
        if set(value) == {"__array__"}:
            return arrays[value["__array__"]]
        return {k: unpack_array_references(v, arrays, walk, depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        return [unpack_array_references(v, arrays, walk, depth + 1) for v in value]
    return value


def _trainer_checkpoint(source, record, arrays):
    """A ``minidl train`` checkpoint (.npz arrays + JSON record) as one PyTorch-style dict.

    ``{"model": state_dict, "optimizer": optimizer state_dict, "scheduler": its state_dict or
    None, "epoch", "global_step", "config", ...}``: ``model.load_state_dict(ck["model"])`` and
    ``optimizer.load_state_dict(ck["optimizer"])`` restore a run.  The optimizer's and
    scheduler's class names are under ``"optimizer_type"`` and ``"scheduler_type"``.
    """
    checkpoint = {"model": OrderedDict((k[len("model/"):], v) for k, v in arrays.items()
                                       if k.startswith("model/"))}
    try:
        for key, value in record.items():
            if key in ("optimizer", "scheduler") and isinstance(value, dict):
                state = unpack_array_references(value.get("state"), arrays)
                if key == "optimizer" and isinstance(state, dict) and isinstance(state.get("state"), dict):
                    # JSON turned the parameter indices into strings: make them ints again
                    state["state"] = {int(k): v for k, v in state["state"].items()}
                checkpoint[key] = state
                checkpoint[f"{key}_type"] = value.get("type")
            elif key != "format" and key != "version":
                checkpoint[key] = unpack_array_references(value, arrays)
    except KeyError as err:
        raise CheckpointError(source, f"the trainer record refers to the array {err.args[0]!r}, "
                                      "which the file does not hold") from None
    except (TypeError, ValueError) as err:
        if isinstance(err, FileFormatError):
            raise
        raise CheckpointError(source, f"malformed trainer record ({err})") from None
    return checkpoint


def _as_tensors(obj, device):
    """Every NumPy array in a loaded tree as a minidl Tensor (on ``device`` when given)."""
    from minidl.creation import from_numpy

    if isinstance(obj, np.ndarray):
        tensor = from_numpy(obj)
        return tensor if device is None else tensor.to(device)
    if isinstance(obj, dict):
        return type(obj)((k, _as_tensors(v, device)) for k, v in obj.items())
    if isinstance(obj, (list, tuple)):
        return type(obj)(_as_tensors(v, device) for v in obj)
    return obj


def load_object(path, map_location=None, weights_only=True, mmap=None):
    """``minidl.load``: the object saved by ``minidl.save`` or ``torch.save``, as ``torch.load`` returns it.

    * a PyTorch ``.pt``/``.pth`` file (zip or legacy): the saved dicts, lists, tuples, ints,
      floats, strings, bools and None, with every tensor a :class:`minidl.Tensor`;
    * ``.safetensors`` and plain ``.npz``: an ordered dict ``name -> Tensor``;
    * a ``minidl train`` checkpoint (``last.npz``, ``best.npz``): ``{"model": state_dict,
      "optimizer": ..., "scheduler": ..., "epoch": ..., ...}`` (see :func:`_trainer_checkpoint`).

    PyTorch pickles are read through the same allow-list as :func:`load_checkpoint`: no
    pickled code ever runs, whatever ``weights_only`` says.  ``weights_only=False`` is
    accepted for ``torch.load`` habits and reads exactly what ``True`` reads; a file that
    needs more (a pickled Module, NumPy objects) raises :class:`UnsafeCheckpointError`.
    ``map_location`` is None or ``"cpu"`` (host memory) or a device such as ``"cuda"`` that
    every tensor is moved to.  ``mmap`` is accepted and ignored (files are read into memory).

    >>> import numpy as np
    >>> save({"epoch": 3, "w": np.ones(2, np.float32)}, "/tmp/ck.pt")
    >>> ck = load_object("/tmp/ck.pt")
    >>> ck["epoch"], ck["w"].shape
    (3, (2,))
    """
    del weights_only, mmap  # see the docstring: the reading is the same
    device = None
    if map_location is not None:
        from minidl.device import Device

        if not isinstance(map_location, (str, Device)):
            raise TypeError("map_location: expected None, a device name such as 'cpu' or 'cuda', or a "
                            f"minidl.device, got {type(map_location).__name__}")
        device = Device(map_location)     # ValueError for a name that is not a device
        if device.type == "cpu":
            device = None
    source = os.fspath(path)
    if not os.path.isfile(source):
        raise FileNotFoundError(f"checkpoint file not found: {source}")
    with _reading(source):
        kind = _detect_format(source)
    if kind == "safetensors":
        tree = load_safetensors(source)
    elif kind == "npz":
        tree = _load_npz(source, source)
        record = read_metadata(source).get(TRAINER_RECORD_KEY)
        if record is not None:
            with _reading(source, "trainer record"):
                record = _parse_json(record.encode("utf-8"), source, "trainer record")
                if not isinstance(record, dict):
                    raise CheckpointError(source, "the trainer record is not a JSON object")
                tree = _trainer_checkpoint(source, record, tree)
    else:
        with _reading(source, "PyTorch checkpoint"):
            tree = _read_torch_file(source, kind)
    return _as_tensors(tree, device)


# --------------------------------------------------------------------------------------
# Public entry points
# --------------------------------------------------------------------------------------

def _detect_format(source):
    """Return 'torch-zip', 'npz', 'torch-legacy' or 'safetensors' from the file's first bytes."""
    size = os.path.getsize(source)
    with open(source, "rb") as f:
        head = f.read(512)
    if size == 0:
        raise ValueError(f"{source}: file is empty")
    if head.startswith(b"PK\x03\x04") or head.startswith(b"PK\x05\x06"):
        try:
            with zipfile.ZipFile(source) as zf:
                names = zf.namelist()
        except zipfile.BadZipFile as err:
            raise ValueError(f"{source}: truncated or corrupted zip archive ({err})") from None
        if any(n.endswith("data.pkl") and n.count("/") == 1 for n in names):
            return "torch-zip"
        if names and all(n.endswith(".npy") for n in names):
            return "npz"
        raise ValueError(
            f"{source}: zip archive holds neither a PyTorch checkpoint ('<archive>/data.pkl') "
            f"nor .npy arrays; its first entries are {names[:5]}"
        )
    if len(head) > 262 and head[257:262] == b"ustar":
        raise ValueError(
            f"{source}: PyTorch's tar checkpoint format (PyTorch < 0.4) is not supported; "
            "re-save it with a recent torch.save"
        )
    if os.path.splitext(source)[1].lower() == ".safetensors":
        return "safetensors"                     # its reader explains what is wrong
    # safetensors before pickle: the header length's low byte may well be 0x80.
    if len(head) >= 9 and head[8:9] == b"{":
        return "safetensors"
    if head[:1] == b"\x80":                      # pickle PROTO opcode
        return "torch-legacy"
    raise ValueError(
        f"{source}: unrecognised checkpoint format (not a PyTorch zip or legacy file, "
        "safetensors or .npz); first bytes " + repr(head[:16])
    )


def load_checkpoint(path, map_location=None) -> "OrderedDict[str, np.ndarray]":
    """Read a checkpoint into an ordered ``name -> numpy.ndarray`` dict, without torch.

    Formats are recognised from the content, not the extension: PyTorch zip
    (``torch.save`` since 1.6) and legacy files, ``.safetensors``, and minidl's
    ``.npz``.  PyTorch pickles are read through an allow-list (see the module
    docstring); any other global raises :class:`UnsafeCheckpointError` before it
    can run.  Nested checkpoints are reduced to one flat state_dict: a wrapper key
    (``state_dict``, ``model_state_dict``, ``model``, ``module``, ``net``,
    ``network``, ``params``) is descended into, remaining nesting becomes dotted
    keys, and non-tensor values (``epoch``, ...) are dropped.  bfloat16 becomes
    float32; every other dtype is kept.

    ``map_location`` exists for ``torch.load`` habits: ``None`` or ``"cpu"``
    (arrays always land in host memory; move a model with ``.to("cuda")`` after
    ``load_state_dict``).

    >>> import numpy as np
    >>> save({"fc.weight": np.eye(2, dtype=np.float32)}, "/tmp/m.npz")
    >>> list(load_checkpoint("/tmp/m.npz"))
    ['fc.weight']
    """
    if map_location not in (None, "cpu"):
        raise ValueError(
            f"map_location must be None or 'cpu', got {map_location!r}: checkpoints load into "
            "host memory; move the model with .to(device) after load_state_dict"
        )
    source = os.fspath(path)
    if not os.path.isfile(source):
        raise FileNotFoundError(f"checkpoint file not found: {source}")
    with _reading(source):
        kind = _detect_format(source)
    if kind == "safetensors":
        return load_safetensors(source)
    if kind == "npz":
        return _load_npz(source, source)
    # Corrupted pickles surface as many exception types; _reading names the file and the cause.
    with _reading(source, "PyTorch checkpoint"):
        return _to_state_dict(_read_torch_file(source, kind), source)


def _read_torch_file(source, kind):
    """The object a torch.save file (zip or legacy ``kind``) holds, unwrapped (:func:`_unwrap`).
    Callers read inside ``_reading``, which names the file in whatever a corrupted pickle raises."""
    budget = _Budget(source, os.path.getsize(source))
    if kind == "torch-zip":
        with zipfile.ZipFile(source) as zf:
            obj = _read_torch_zip(zf, source, budget)
    else:
        with open(source, "rb") as f:
            obj = _read_torch_legacy(f, source, budget)
    return _unwrap(obj, budget)


def load(path) -> "OrderedDict[str, np.ndarray]":
    """Alias of :func:`load_checkpoint`: the flat ``name -> array`` state_dict of a file.

    ``minidl.load`` is :func:`load_object` instead (PyTorch's ``torch.load``: the saved object,
    tensors as Tensors).
    """
    return load_checkpoint(path)


def save(obj, path, format=None, metadata=None) -> None:
    """Save a checkpoint atomically: PyTorch's ``.pt``/``.pth``, ``.safetensors`` or ``.npz``.

    ``format`` is ``"torch"``, ``"safetensors"`` or ``"npz"``; ``None`` infers it from the
    extension (``.pt`` and ``.pth`` are ``"torch"``).

    * ``"torch"`` writes ``torch.save``'s zip format, readable by
      ``torch.load(path, weights_only=True)`` and by :func:`load_object` (``minidl.load``):
      ``obj`` is any nesting of dicts, lists and tuples of Tensors (or NumPy arrays, saved as
      tensors), ints, floats, strings, bools and None, such as
      ``{"model": model.state_dict(), "optimizer": opt.state_dict(), "epoch": 3}``.  A Module
      is saved as its ``state_dict()`` (minidl never pickles code).  Such files hold no metadata.
    * ``"safetensors"`` and ``"npz"`` hold a flat dict of name -> Tensor/array (or a Module's
      state_dict), plus ``metadata``, a dict of str to str (the safetensors convention, used
      for both formats), read back by :func:`read_metadata`.

    The file is written to a temporary file in the same folder and renamed over ``path``, so
    an interrupted save never leaves a half-written checkpoint.

    >>> import numpy as np
    >>> save({"w": np.zeros(2, np.float32)}, "/tmp/w.npz", metadata={"epoch": "3"})
    >>> read_metadata("/tmp/w.npz")
    {'epoch': '3'}
    """
    source = os.fspath(path)
    if format is None:
        ext = os.path.splitext(source)[1].lower()
        format = {".safetensors": "safetensors", ".npz": "npz", ".pt": "torch", ".pth": "torch"}.get(ext)
        if format is None:
            raise ValueError(
                f"path extension must be '.pt', '.pth', '.safetensors' or '.npz' when format is None, got {ext!r}"
            )
    if format == "safetensors":
        save_safetensors(obj, source, metadata)
    elif format == "npz":
        _save_npz(_as_arrays(obj), source, _check_metadata(metadata))
    elif format == "torch":
        if metadata is not None:
            raise ValueError("metadata: a PyTorch .pt/.pth file has no metadata record; "
                             "put the values in the saved dict instead")
        if hasattr(obj, "state_dict") and hasattr(obj, "parameters"):   # a Module
            obj = obj.state_dict()
        _atomic_write(source, lambda f: _write_torch_zip(f, obj))
    else:
        raise ValueError(f"format must be 'torch', 'safetensors', 'npz' or None, got {format!r}")


def read_metadata(path) -> dict:
    """Return the str -> str metadata stored by :func:`save` (empty if there is none).

    PyTorch checkpoints carry no metadata record, so they give ``{}``.
    """
    source = os.fspath(path)
    with _reading(source):
        kind = _detect_format(source)
        if kind == "safetensors":
            with open(source, "rb") as f:
                header, _ = _read_safetensors_header(f, source, os.path.getsize(source))
            metadata = header.get(_METADATA_KEY) or {}
            if not isinstance(metadata, dict):
                raise ValueError(f"{source}: __metadata__ must be a JSON object, got {metadata!r}")
            return dict(metadata)
        if kind == "npz":
            with zipfile.ZipFile(source) as zf:
                _check_zip_layout(zf, source)
                record = _read_npz_record(zf, _npz_members(zf), source)
            metadata = record.get("metadata") if record else None
            if metadata is not None and not isinstance(metadata, dict):
                raise ValueError(f"{source}: metadata must be a JSON object, got {metadata!r}")
            return dict(metadata or {})
        return {}


# --------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------

def _to_numpy(value, name):
    """A state_dict value as a host array (minidl.data.to_numpy's rule), refusing anything that is not one."""
    from minidl.data.convert import to_numpy

    if hasattr(value, "numpy") and not isinstance(value, np.ndarray):  # minidl.Tensor (and torch.Tensor)
        value = value.numpy()
    if not isinstance(value, (np.ndarray, np.generic, int, float, bool)) and \
            type(value).__module__.split(".")[0] != "cupy":
        raise TypeError(
            f"tensors[{name!r}] must be a Tensor or numpy array, got {type(value).__name__}")
    return to_numpy(value)


def _as_arrays(obj) -> "OrderedDict[str, np.ndarray]":
    """Module (has state_dict()) or mapping name -> Tensor/array -> ordered name -> ndarray."""
    if hasattr(obj, "state_dict"):
        obj = obj.state_dict()
    if not isinstance(obj, dict):
        raise TypeError(
            f"obj must be a Module or a dict of name -> Tensor/array, got {type(obj).__name__}"
        )
    out = OrderedDict()
    for name, value in obj.items():
        if not isinstance(name, str):
            raise TypeError(f"tensor names must be str, got {name!r} ({type(name).__name__})")
        array = _to_numpy(value, name)
        if not array.dtype.isnative:
            # Both formats store little-endian; keep arrays in native order from here on.
            array = array.astype(array.dtype.newbyteorder("="))
        out[name] = array
    return out


def _check_metadata(metadata):
    if metadata is None:
        return {}
    if not isinstance(metadata, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()
    ):
        raise TypeError(f"metadata must be a dict of str to str, got {metadata!r}")
    return dict(metadata)


# Temporary files of an atomic write: ".<target name>.minidl-<pid>-<random>.tmp" beside the target.
# The pid says whose write it is: a temporary file whose writer is no longer running is what a
# killed write (kill -9, power loss) left behind, and the next write into the folder removes it.
_TMP_PATTERN = re.compile(r"^\..+\.minidl-(\d+)-[A-Za-z0-9_]{8}\.tmp$")
# A temporary file of this kind left untouched this long is stale even when its pid is running
# (the pid was reused, or the writer lived on another machine sharing the folder): no write of
# a checkpoint pauses for a day.
_STALE_AGE = 24 * 3600.0
# Earlier minidl versions named their temporaries ".<name>.npz.<8 random>.tmp" (tempfile.mkstemp),
# without a pid: those are removed only once untouched for _STALE_AGE.
_LEGACY_TMP_PATTERN = re.compile(r"^\..+\.(npz|safetensors)\.[a-z0-9_]{8}\.tmp$")
# Younger than this, a temporary file is never removed (a writer on another machine sharing
# the folder may be in the middle of writing it; writing updates its modification time).
_FRESH_AGE = 10.0


def _pid_running(pid):
    """True when ``pid`` is a running process on this machine (or we cannot tell)."""
    if os.name != "posix":
        return True  # os.kill(pid, 0) would end the process on Windows: rely on the age only
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # PermissionError: it runs, as another user
        return True
    return True


def _remove_stale_temporaries(folder, now=None):
    """Remove minidl's temporary files in ``folder`` left by writes that were killed.

    Only names of minidl's own pattern (``.<name>.minidl-<pid>-<random>.tmp``) are
    considered, and only stale ones: the writing process is not running (and the file is
    older than 10 seconds), or the file has not been touched for a day. The pid-less names
    of earlier versions (``.<name>.npz.<random>.tmp``) go once untouched for a day. Returns the
    removed paths. Errors (a file that vanished, a folder we cannot list) are ignored: the
    write itself does not depend on this.
    """
    import time

    now = time.time() if now is None else now
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        match = _TMP_PATTERN.match(entry.name)
        legacy = match is None and _LEGACY_TMP_PATTERN.match(entry.name) is not None
        if match is None and not legacy:
            continue
        try:
            if not entry.is_file(follow_symlinks=False):
                continue
            age = now - entry.stat(follow_symlinks=False).st_mtime
            if legacy:
                if age < _STALE_AGE:
                    continue
            else:
                pid = int(match.group(1))
                if age < _FRESH_AGE or (age < _STALE_AGE and (pid == os.getpid() or _pid_running(pid))):
                    continue
            os.remove(entry.path)
            removed.append(entry.path)
        except OSError:
            continue
    return removed


def _atomic_write(path, write):
    """Call ``write(file)`` on a temporary file beside ``path``, then rename it over ``path``.

    The temporary file is created with mode 0o666 filtered by the process umask (as ``open``
    would create ``path`` itself), so the renamed file honours the umask and the folder's
    default ACL; stale temporary files of earlier, killed writes into the same folder are
    removed first (see :func:`_remove_stale_temporaries`).
    """
    target = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(target))
    _remove_stale_temporaries(folder)
    prefix = f".{os.path.basename(target)}.minidl-{os.getpid()}-"
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0) | getattr(os, "O_CLOEXEC", 0)
    for _ in range(100):
        tmp = os.path.join(folder, prefix + secrets.token_hex(4) + ".tmp")
        try:
            fd = os.open(tmp, flags, 0o666)
            break
        except FileExistsError:
            continue
    else:
        raise FileExistsError(f"cannot create a temporary file beside {target}: every name tried exists")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
