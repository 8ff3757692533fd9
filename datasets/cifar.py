"""CIFAR-10 and CIFAR-100 from the published "python version" pickled batches.

Krizhevsky (2009), "Learning Multiple Layers of Features from Tiny Images",
https://www.cs.toronto.edu/~kriz/cifar.html. Each batch file is a dict pickled by
Python 2 (protocol 2) holding byte-string keys::

    b"data"          uint8 ndarray (N, 3072): 1024 red, 1024 green, 1024 blue values
                     per image, each plane row-major 32x32
    b"labels"        list of N ints (CIFAR-10)
    b"fine_labels"   list of N ints, b"coarse_labels" (CIFAR-100)
    b"batch_label", b"filenames"   bytes / list of bytes

Files are read from ``root/cifar-10-batches-py/`` (``cifar-100-python/``) or, if
that folder is absent, straight out of the published ``.tar.gz`` in ``root``.

Unpickling is restricted: ``pickle`` can call any importable function, so a
malicious "batch" could run code. :class:`RestrictedUnpickler` resolves only the
few globals those files need to rebuild NumPy arrays and byte strings, and refuses
every other one with :class:`UnsafePickleError` before anything is called.

Hostile files, and the limits that hold for them:

* The allowed globals resolve to stand-ins defined here, never to NumPy's own
  callables (``numpy.ndarray`` or ``numpy.dtype`` could build object arrays of forged
  pointers and crash the interpreter). An array is rebuilt only from a numeric dtype
  (bool, integers, floats, complex; never ``object``, strings, records or sub-arrays)
  and a byte string of exactly ``prod(shape) * itemsize`` bytes, so memory follows the
  bytes in the file, never a declared size. Before unpickling, the opcodes are walked
  once (``minidl.serialization.check_pickle_stream``) to prove that every counted string
  and memo index the pickle declares fits the bytes present, since CPython's unpickler
  allocates those up front.
* Each stand-in accepts the pickle ``BUILD`` opcode only where a rebuilt array or dtype
  needs it (once, with NumPy's state layout); BUILD on an allowed global or on anything
  already built is refused, so a file cannot set attributes on them.
* Object trees deeper than 100 levels, recursive ones, and ones of more than 5,000,000
  entries are refused; a batch file (or an archive member) larger than 1 GiB is refused
  before it is read.
* Every malformed file raises a ``ValueError`` subclass from :mod:`minidl.errors` naming
  the file: :class:`UnsafePickleError` (an :class:`~minidl.errors.UnsafeFileError`) for a
  pickle that asks for anything else, :class:`~minidl.errors.DatasetFormatError` otherwise.
"""

import io
import os
import pickle
import tarfile
import zlib

import numpy as np

from minidl.errors import DatasetFormatError, UnsafeFileError
from minidl.serialization import check_pickle_stream
from minidl.datasets.download import download_from_mirrors, extract_archive, verify_file
from minidl.datasets.vision import VisionDataset, array_to_image

__all__ = ["UnsafePickleError", "RestrictedUnpickler", "restricted_loads", "CIFAR10", "CIFAR100"]


class UnsafePickleError(pickle.UnpicklingError, UnsafeFileError):
    """The pickle names a global outside the allowed list, or asks a stand-in for something
    a CIFAR batch never needs (an object dtype, a BUILD on a global); nothing was called.

    ``UnsafePickleError(path, reason)``, or ``UnsafePickleError(reason)`` when the path is
    not known where it is raised (the reader fills it in).
    """


_MAX_DEPTH = 100
_MAX_NODES = 5_000_000
_MAX_FILE_BYTES = 1 << 30
# Kinds of dtype an array in a batch may have: bool, signed/unsigned integer, float, complex.
_NUMERIC_KINDS = "biufc"


def _text(value):
    """A pickled str (bytes under encoding="bytes" for Python 2 files) as str."""
    if isinstance(value, bytes):
        return value.decode("latin1")
    if isinstance(value, str):
        return value
    raise UnsafePickleError(f"expected a string in a NumPy record, got {type(value).__name__}")


def _numeric_dtype(dtype):
    if not isinstance(dtype, np.dtype) or dtype.kind not in _NUMERIC_KINDS or dtype.fields is not None \
            or dtype.subdtype is not None or dtype.hasobject:
        raise UnsafePickleError(
            f"refusing NumPy dtype {dtype!r}: a CIFAR batch holds only numeric arrays (never object "
            "arrays, strings or records)")
    return dtype


def _shape(value):
    if not isinstance(value, tuple) or len(value) > 32 or not all(
            type(n) is int and n >= 0 for n in value):
        raise UnsafePickleError(f"an array shape must be a tuple of non-negative ints, got {value!r}")
    return value


def _array_from_bytes(data, dtype, shape, fortran):
    """A writable array of ``dtype`` and ``shape`` from exactly ``prod(shape) * itemsize`` bytes."""
    if isinstance(data, pickle.PickleBuffer):
        data = data.raw().tobytes()
    if not isinstance(data, (bytes, bytearray)):
        raise UnsafePickleError(f"array data must be a byte string, got {type(data).__name__}")
    shape = _shape(shape)
    count = 1
    for n in shape:
        count *= n
    if count * dtype.itemsize != len(data):
        raise UnsafePickleError(
            f"an array of shape {shape} and dtype {dtype} needs {count * dtype.itemsize} bytes, "
            f"the file gives {len(data)}")
    flat = np.frombuffer(bytearray(data), dtype=dtype)
    return flat.reshape(shape[::-1]).transpose() if fortran else flat.reshape(shape)


class _Stub:
    """Base of every stand-in: refuses BUILD unless a subclass says otherwise."""

    __slots__ = ()

    def __setstate__(self, state):
        raise UnsafePickleError(f"a BUILD opcode targets {self!r}; refusing it")

    def __reduce__(self):
        raise TypeError("CIFAR unpickler stand-ins are not picklable")


class _Global(_Stub):
    """An allowed global: callable, with no attribute a BUILD could set."""

    __slots__ = ("_function", "_name")

    def __init__(self, function, name):
        self._function = function
        self._name = name

    def __call__(self, *args, **kwargs):
        return self._function(*args, **kwargs)

    def __repr__(self):
        return f"the global {self._name}"


class _NdarrayName(_Stub):
    """``numpy.ndarray`` as a *name* (the first argument of ``_reconstruct``); not callable."""

    __slots__ = ()

    def __call__(self, *args, **kwargs):
        raise UnsafePickleError("refusing to call numpy.ndarray: arrays are only rebuilt through _reconstruct")

    def __repr__(self):
        return "numpy.ndarray"


class _DtypeSpec(_Stub):
    """``numpy.dtype(name, align, copy)`` then one BUILD with NumPy's dtype state."""

    __slots__ = ("dtype", "built")

    def __init__(self, name, align=False, copy=True):
        self.dtype = _numeric_dtype(np.dtype(_text(name)))
        self.built = False

    def __setstate__(self, state):
        # NumPy's state: (version, byteorder, subarray, names, fields, elsize, alignment, flags[, metadata])
        if self.built or not isinstance(state, tuple) or len(state) < 5 or state[0] not in (3, 4) \
                or state[2] is not None or state[3] is not None or state[4] is not None:
            raise UnsafePickleError(f"refusing dtype state {state!r}: only plain numeric dtypes are rebuilt")
        order = _text(state[1])
        if order not in ("<", ">", "|", "="):
            raise UnsafePickleError(f"refusing dtype byte order {order!r}")
        if order in "<>":
            self.dtype = self.dtype.newbyteorder(order)
        self.built = True

    def __repr__(self):
        return f"dtype {self.dtype}"


class _ArraySpec(_Stub):
    """``_reconstruct(ndarray, (0,), b"b")`` then one BUILD with NumPy's array state."""

    __slots__ = ("array",)

    def __init__(self):
        self.array = None

    def __setstate__(self, state):
        if self.array is not None or not isinstance(state, tuple):
            raise UnsafePickleError("refusing a second or malformed BUILD of a NumPy array")
        if len(state) == 5:
            version, state = state[0], state[1:]
            if version != 1:
                raise UnsafePickleError(f"unsupported NumPy array state version {version!r}")
        if len(state) != 4:
            raise UnsafePickleError(f"malformed NumPy array state of {len(state)} fields")
        shape, dtype, fortran, data = state
        if not isinstance(dtype, _DtypeSpec) or type(fortran) is not bool:
            raise UnsafePickleError("malformed NumPy array state (dtype or order)")
        self.array = _array_from_bytes(data, dtype.dtype, shape, fortran)

    def __repr__(self):
        return "a NumPy array"


class _Scalar(_Stub):
    """A NumPy scalar, wrapped so that BUILD cannot reach ``numpy.generic.__setstate__``."""

    __slots__ = ("value",)

    def __init__(self, value):
        self.value = value

    def __repr__(self):
        return "a NumPy scalar"


def _latin1_encode(text, encoding="latin1"):
    """Stand-in for ``_codecs.encode``: Python 3 pickles ``bytes`` with protocol 2 as
    ``_codecs.encode(str, "latin1")``. Only that codec is allowed (no zlib/rot13/...)."""
    if not isinstance(text, str) or not isinstance(encoding, str) or \
            encoding.lower().replace("-", "").replace("_", "") not in ("latin1", "iso88591"):
        raise UnsafePickleError(f"_codecs.encode is only allowed for str with latin1, got {encoding!r}")
    return text.encode("latin1")


def _reconstruct(subtype, shape, typecode):
    if not isinstance(subtype, _NdarrayName):
        raise UnsafePickleError(f"_reconstruct may only rebuild numpy.ndarray, got {subtype!r}")
    return _ArraySpec()


def _scalar(dtype, data=None):
    if not isinstance(dtype, _DtypeSpec):
        raise UnsafePickleError("multiarray.scalar needs a rebuilt dtype")
    return _Scalar(_array_from_bytes(data, dtype.dtype, (), False)[()])


def _frombuffer(buffer, dtype, shape, order):
    if not isinstance(dtype, _DtypeSpec):
        raise UnsafePickleError("_frombuffer needs a rebuilt dtype")
    if order not in ("C", "F"):
        raise UnsafePickleError(f"_frombuffer order must be 'C' or 'F', got {order!r}")
    array = _ArraySpec()
    array.array = _array_from_bytes(buffer, dtype.dtype, shape, order == "F")
    return array


def _numpy_globals():
    """Stand-ins for the NumPy callables that rebuild an ndarray/dtype/scalar from its pickled state."""
    table = {("numpy", "ndarray"): _NdarrayName(), ("numpy", "dtype"): _Global(_DtypeSpec, "numpy.dtype")}
    # Name used by NumPy 1.x and by the Python 2 files, and the NumPy 2 name.
    for package in ("numpy.core", "numpy._core"):
        table[(f"{package}.multiarray", "_reconstruct")] = _Global(_reconstruct, f"{package}.multiarray._reconstruct")
        table[(f"{package}.multiarray", "scalar")] = _Global(_scalar, f"{package}.multiarray.scalar")
        # Protocol 5 out-of-band buffers (not used by CIFAR).
        table[(f"{package}.numeric", "_frombuffer")] = _Global(_frombuffer, f"{package}.numeric._frombuffer")
    return table


def _resolve(obj, source):
    """Replace the stand-ins of an unpickled tree by arrays, dtypes and scalars.

    Shared sub-trees are converted once; recursive, too deep or too large trees are refused.
    """
    memo, active, count = {}, set(), [0]

    def walk(value, depth):
        count[0] += 1
        if depth > _MAX_DEPTH or count[0] > _MAX_NODES:
            raise UnsafePickleError(
                source, f"the pickle nests deeper than {_MAX_DEPTH} levels or holds more than "
                f"{_MAX_NODES} entries")
        if isinstance(value, _ArraySpec):
            if value.array is None:
                raise UnsafePickleError(source, "a NumPy array without its data")
            return value.array
        if isinstance(value, _DtypeSpec):
            return value.dtype
        if isinstance(value, _Scalar):
            return value.value
        if isinstance(value, _Stub):
            raise UnsafePickleError(source, f"{value!r} appears as a value")
        if isinstance(value, (dict, list, tuple)):
            key = id(value)
            if key in memo:
                return memo[key]
            if key in active:
                raise UnsafePickleError(source, "the pickle holds a recursive structure")
            active.add(key)
            if isinstance(value, dict):
                out = {walk(k, depth + 1): walk(v, depth + 1) for k, v in value.items()}
            else:
                out = type(value)(walk(v, depth + 1) for v in value)
            active.discard(key)
            memo[key] = out
            return out
        if value is None or isinstance(value, (bool, int, float, complex, str, bytes)):
            return value
        raise UnsafePickleError(source, f"unexpected {type(value).__name__} in the pickle")

    return walk(obj, 0)


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that builds only dicts, lists, tuples, str, bytes, numbers and
    NumPy arrays. Any other global (``os.system``, ``builtins.eval``, ...) raises
    ``pickle.UnpicklingError`` naming it, so the payload never runs."""

    def __init__(self, file, source="<bytes>", **kwargs):
        super().__init__(file, **kwargs)
        self._source = source
        self._allowed = dict(_numpy_globals())
        self._allowed[("_codecs", "encode")] = _Global(_latin1_encode, "_codecs.encode")

    def find_class(self, module, name):
        try:
            return self._allowed[(module, name)]
        except (KeyError, TypeError):
            raise UnsafePickleError(
                self._source, f"refusing to load global {module}.{name}; a CIFAR batch holds only dicts, "
                "lists, bytes, numbers and NumPy arrays, so this file is not a genuine CIFAR batch"
            ) from None

    def persistent_load(self, pid):
        raise UnsafePickleError(self._source, "persistent ids are not allowed in a CIFAR batch")

    def load(self):
        """Unpickle, then replace the stand-ins by real arrays (see :func:`_resolve`)."""
        try:
            obj = super().load()
        except UnsafePickleError as error:
            if error.path is None:
                raise UnsafePickleError(self._source, error.reason) from None
            raise
        except RecursionError:
            raise UnsafePickleError(self._source, "the pickle nests too deeply") from None
        return _resolve(obj, self._source)


def restricted_loads(payload, source="<bytes>"):
    """Unpickle ``payload`` (bytes) with :class:`RestrictedUnpickler`, bytes encoding as
    the Python 2 CIFAR files need (their ``str`` objects come back as ``bytes``)."""
    stream = io.BytesIO(payload)
    unpickler = RestrictedUnpickler(stream, source=source, encoding="bytes")
    try:
        # CPython's unpickler allocates what a pickle declares (a BINBYTES length, a memo
        # index) before reading it; this pre-pass proves the declarations fit the bytes
        # (and refuses any global outside the allow-list as it meets it).
        check_pickle_stream(stream, source, unpickler.find_class)
    except UnsafePickleError:
        raise
    except ValueError as error:
        raise DatasetFormatError(source, f"not a readable CIFAR pickle ({error})") from None
    return unpickler.load()


def _key(entry, name):
    """Look ``name`` up as bytes (Python 2 files) or str (re-pickled by Python 3)."""
    if name.encode() in entry:
        return entry[name.encode()]
    return entry.get(name)


def _decode(value):
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


class CIFAR10(VisionDataset):
    """CIFAR-10: 50,000 train / 10,000 test colour 32x32 images in 10 classes.

    Args:
        root: folder holding ``cifar-10-batches-py/`` or ``cifar-10-python.tar.gz``.
        train: the five ``data_batch_*`` files if True, else ``test_batch``.
        transform, target_transform: applied to the PIL RGB image / int label.
        download: fetch and extract the published archive (SHA-256 checked) if absent.

    Attributes:
        data: uint8 (N, 32, 32, 3) (HWC, as torchvision). targets: int64 (N,).
        classes: names from the ``batches.meta`` file (default list if it is absent).
    """

    base_folder = "cifar-10-batches-py"
    filename = "cifar-10-python.tar.gz"
    # Base URLs tried in order (overridable: tests point this at a local server).
    # Unreachable from minidl's development machines; tested against a local mirror.
    mirrors = ["https://www.cs.toronto.edu/~kriz/"]
    # SHA-256 of the archive as torchvision lists it (prototype datasets/_builtin/cifar.py;
    # Keras uses the same value). torchvision's stable API: md5 c58f30108f718f92721af3b95e74349a.
    sha256 = "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce"
    train_list = ["data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5"]
    test_list = ["test_batch"]
    meta_file, meta_key = "batches.meta", "label_names"
    label_key = "labels"
    classes = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]

    def __init__(self, root, train=True, transform=None, target_transform=None, download=False):
        if root is None:
            raise TypeError(f"{type(self).__name__} needs a root folder, got None")
        super().__init__(os.path.expanduser(os.fspath(root)), transform, target_transform)
        if not isinstance(train, bool):
            raise TypeError(f"train must be a bool, got {train!r}")
        self.train = train
        if download:
            self.download()
        batches = self.train_list if train else self.test_list
        files = self._read_files(batches + [self.meta_file])
        images, labels = [], []
        for name in batches:
            data, targets = self._parse_batch(name, files[name])
            images.append(data)
            labels.append(targets)
        # (N, 3072) -> (N, 3, 32, 32) planes -> (N, 32, 32, 3) HWC for PIL
        self.data = np.ascontiguousarray(np.concatenate(images).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
        self.targets = np.concatenate(labels).astype(np.int64)
        if files[self.meta_file] is not None:
            meta = self._unpickle(self.meta_file, files[self.meta_file])
            if not isinstance(meta, dict):
                raise DatasetFormatError(self._file(self.meta_file), f"expected a dict, got {type(meta).__name__}")
            names = _key(meta, self.meta_key)
            if names is not None:
                if not isinstance(names, (list, tuple)) or not all(isinstance(n, (bytes, str)) for n in names):
                    raise DatasetFormatError(
                        self._file(self.meta_file), f"b'{self.meta_key}' must be a list of class names")
                try:
                    self.classes = [_decode(n) for n in names]
                except UnicodeDecodeError as error:
                    raise DatasetFormatError(
                        self._file(self.meta_file), f"class names are not UTF-8 ({error})") from None

    # -- locating and reading the batch files ---------------------------------------

    def _find_folder(self):
        """``root/<base_folder>``, or root itself when it is that folder; None if neither."""
        first = (self.train_list if self.train else self.test_list)[0]
        for folder in (os.path.join(self.root, self.base_folder), self.root):
            if os.path.isfile(os.path.join(folder, first)):
                return folder
        return None

    def _read_files(self, names):
        """Return ``{name: bytes}`` for the batch files (the meta file may be None).

        Reads the extracted folder if present, else the published archive in one
        pass (each ``tarfile`` lookup would otherwise decompress it again).
        """
        required = set(names) - {self.meta_file}
        folder = self._find_folder()
        found = {}
        if folder is not None:
            for name in names:
                path = os.path.join(folder, name)
                if os.path.isfile(path):
                    if os.path.getsize(path) > _MAX_FILE_BYTES:
                        raise DatasetFormatError(
                            path, f"{os.path.getsize(path)} bytes, larger than any CIFAR batch "
                            f"(limit {_MAX_FILE_BYTES}); not a genuine CIFAR batch")
                    with open(path, "rb") as f:
                        found[name] = f.read()
            where = folder
        else:
            archive = os.path.join(self.root, self.filename)
            if not os.path.isfile(archive):
                raise FileNotFoundError(
                    f"{type(self).__name__}: neither {os.path.join(self.root, self.base_folder)}/ nor {archive} "
                    "exists; pass download=True, or put the published python-version batches there"
                )
            verify_file(archive, self.sha256)  # the published archive, checked once (recorded beside it)
            wanted = {f"{self.base_folder}/{name}": name for name in names}
            try:
                with tarfile.open(archive) as tar:
                    for member in tar:
                        if member.isfile() and member.name in wanted:
                            if member.size > _MAX_FILE_BYTES:
                                raise DatasetFormatError(
                                    archive, f"member {member.name} declares {member.size} bytes, larger "
                                    f"than any CIFAR batch (limit {_MAX_FILE_BYTES})")
                            found[wanted[member.name]] = tar.extractfile(member).read()
            except (tarfile.TarError, EOFError, OSError, zlib.error) as error:
                if isinstance(error, OSError) and error.errno is not None:
                    raise
                raise DatasetFormatError(
                    archive, f"not a readable tar.gz ({error}): delete it and download again"
                ) from error
            where = archive
        self._where = where
        missing = sorted(required - set(found))
        if missing:
            raise FileNotFoundError(
                f"{type(self).__name__}: {', '.join(missing)} missing from {where}; the data are incomplete: "
                "delete them and download again"
            )
        found.setdefault(self.meta_file, None)
        return found

    def _file(self, name):
        """The path that names batch ``name`` in errors (a file, or ``archive:member``)."""
        where = getattr(self, "_where", self.root)
        if os.path.isdir(where):
            return os.path.join(where, name)
        return f"{where}:{self.base_folder}/{name}"

    def _unpickle(self, name, payload):
        source = self._file(name)
        try:
            return restricted_loads(payload, source=source)
        except UnsafePickleError:
            raise
        except MemoryError:
            raise
        except Exception as error:  # truncated or garbled bytes surface as many types
            raise DatasetFormatError(
                source, f"not a readable CIFAR pickle ({error!r}); delete it and download again"
            ) from error

    def _parse_batch(self, name, payload):
        """Return ``(data uint8 (N, 3072), labels int64 (N,))`` from one batch file."""
        entry = self._unpickle(name, payload)
        source = self._file(name)
        if not isinstance(entry, dict):
            raise DatasetFormatError(source, f"expected a dict, got {type(entry).__name__}")
        data, labels = _key(entry, "data"), _key(entry, self.label_key)
        if data is None or labels is None:
            raise DatasetFormatError(
                source, f"expected keys b'data' and b'{self.label_key}', got {sorted(map(repr, entry))}")
        if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 \
                or data.shape[1] != 3 * 32 * 32:
            got = f"{data.dtype} {data.shape}" if isinstance(data, np.ndarray) else type(data).__name__
            raise DatasetFormatError(source, f"b'data' must be uint8 (N, 3072), got {got}")
        if isinstance(labels, np.ndarray):
            ok = labels.dtype.kind in "iu" and labels.ndim == 1
        else:
            ok = isinstance(labels, (list, tuple)) and all(
                isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in labels)
        if not ok:
            raise DatasetFormatError(source, f"b'{self.label_key}' must be a list of ints")
        if len(labels) and (min(labels) < 0 or max(labels) >= len(self.classes)):
            raise DatasetFormatError(
                source, f"labels must lie in 0..{len(self.classes) - 1}, got {min(labels)}..{max(labels)}"
            )
        labels = np.asarray(labels, dtype=np.int64)
        if labels.shape != (len(data),):
            raise DatasetFormatError(source, f"expected {len(data)} labels, got shape {labels.shape}")
        return data, labels

    def download(self):
        """Fetch ``filename`` from :attr:`mirrors` (SHA-256 checked) and extract it under root."""
        if self._find_folder() is not None:
            return
        archive = download_from_mirrors(self.mirrors, self.filename, self.root, self.sha256)
        extract_archive(archive, self.root)

    def __len__(self):
        return len(self.data)

    def _load(self, index):
        return array_to_image(self.data[index]), int(self.targets[index])

    def extra_repr(self):
        return f"Split: {'Train' if self.train else 'Test'}"


class CIFAR100(CIFAR10):
    """CIFAR-100: the same images format, 100 fine classes (``fine_labels``)."""

    base_folder = "cifar-100-python"
    filename = "cifar-100-python.tar.gz"
    # SHA-256 as torchvision lists it (prototype); stable API md5 eb9058c3a382ffc7106e4002c42a8d85.
    sha256 = "85cd44d02ba6437773c5bbd22e183051d648de2e7d6b014e1ef29b855ba677a7"
    train_list = ["train"]
    test_list = ["test"]
    meta_file, meta_key = "meta", "fine_label_names"
    label_key = "fine_labels"
    # The fine label names of the meta file (alphabetical), used when it is absent.
    classes = [
        "apple", "aquarium_fish", "baby", "bear", "beaver", "bed", "bee", "beetle", "bicycle", "bottle",
        "bowl", "boy", "bridge", "bus", "butterfly", "camel", "can", "castle", "caterpillar", "cattle",
        "chair", "chimpanzee", "clock", "cloud", "cockroach", "couch", "crab", "crocodile", "cup", "dinosaur",
        "dolphin", "elephant", "flatfish", "forest", "fox", "girl", "hamster", "house", "kangaroo", "keyboard",
        "lamp", "lawn_mower", "leopard", "lion", "lizard", "lobster", "man", "maple_tree", "motorcycle",
        "mountain", "mouse", "mushroom", "oak_tree", "orange", "orchid", "otter", "palm_tree", "pear",
        "pickup_truck", "pine_tree", "plain", "plate", "poppy", "porcupine", "possum", "rabbit", "raccoon",
        "ray", "road", "rocket", "rose", "sea", "seal", "shark", "shrew", "skunk", "skyscraper", "snail",
        "snake", "spider", "squirrel", "streetcar", "sunflower", "sweet_pepper", "table", "tank", "telephone",
        "television", "tiger", "tractor", "train", "trout", "tulip", "turtle", "wardrobe", "whale",
        "willow_tree", "wolf", "woman", "worm",
    ]
