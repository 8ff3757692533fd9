"""The facts about a model, kept next to its builder: weights records and model cards.

As torchvision's ``ResNet18_Weights`` (``torchvision/models/_api.py``), each family file holds,
beside its builders:

- ``Weights``: one set of pretrained weights. The file name, its SHA-256 (the full digest, or
  the first 8 hex digits that torchvision publishes in its file names, which is all it
  publishes: ``resnet18-f37072fd.pth``), the source URL (informational: minidl never downloads
  weights), the preprocessing ``Preset`` the weights were trained with, and ``meta``:
  ``num_params`` (of the model built for these weights), ``macs`` (multiply-accumulates per
  image at the preset's crop, where ``shared/reference/param_counts.md`` gives them),
  ``categories`` (class names, in output order) and ``recipe`` (how they were trained).
- ``WeightsEnum``: the weights of one builder (``ResNet18_Weights.IMAGENET1K_V1``, with
  ``DEFAULT`` as an alias of the recommended entry).
- ``ModelCard``: the facts of one builder with its default arguments, weights or not: the
  published parameter count and MACs, the input size it is meant for, the preprocessing preset,
  the training recipe ``minidl train`` uses, and its ``WeightsEnum`` (None when there are no
  pretrained weights). Builders are registered with their card: ``@register_model(card=...)``.

Weights files live in the cache folder, ``$MINIDL_HOME/checkpoints`` (``~/.cache/minidl/checkpoints``
when the variable is unset: the folder the dataset readers use, with torch.hub's sub-folder
name), and are checked against their SHA-256 before use.

>>> from minidl.models.resnet import ResNet18_Weights
>>> ResNet18_Weights.DEFAULT
ResNet18_Weights.IMAGENET1K_V1
>>> ResNet18_Weights.IMAGENET1K_V1.meta["num_params"], len(ResNet18_Weights.IMAGENET1K_V1.meta["categories"])
(11689512, 1000)
"""
from __future__ import annotations

import enum
import importlib.resources
import os
from dataclasses import asdict, dataclass, field, replace
from types import MappingProxyType
from typing import Mapping, Optional

__all__ = [
    "IMAGENET_CATEGORIES", "IMAGENET_MEAN", "IMAGENET_STD", "INCEPTION_MEAN", "INCEPTION_STD", "ModelCard", "Preset",
    "Recipe", "Weights", "WeightsEnum", "imagenet_classes", "torchvision_weights", "weights_dir",
]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
INCEPTION_MEAN = (0.5, 0.5, 0.5)
INCEPTION_STD = (0.5, 0.5, 0.5)


def _read_imagenet_classes():
    # the one copy of the class names ships as package data of minidl.data
    text = importlib.resources.files("minidl.data").joinpath("imagenet_classes.txt").read_text(encoding="utf-8")
    return tuple(text.splitlines())


IMAGENET_CATEGORIES = _read_imagenet_classes()


def imagenet_classes() -> list:
    """The 1000 ImageNet-1k class names, in the order of torchvision's and timm's classifier outputs.

    >>> imagenet_classes()[0]
    'tench'
    """
    return list(IMAGENET_CATEGORIES)


# --------------------------------------------------------------------------------------
# preprocessing
# --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Preset:
    """Evaluation preprocessing: resize the shorter side, centre-crop, scale to [0, 1], normalise.

    The figures are those of torchvision's ``Weights.transforms()`` (``ImageClassification``) or
    timm's default config for the timm-named models.

    >>> Preset(256, 224)
    Preset(resize=256, crop=224, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225), interpolation='bilinear')
    """

    resize: int
    crop: int
    mean: tuple = IMAGENET_MEAN
    std: tuple = IMAGENET_STD
    interpolation: str = "bilinear"

    def transforms(self):
        """A ``minidl.data.transforms.Compose`` applying this preset to a PIL image."""
        from minidl.data import transforms as T

        mode = {"bilinear": T.InterpolationMode.BILINEAR, "bicubic": T.InterpolationMode.BICUBIC}[self.interpolation]
        return T.Compose([T.Resize(self.resize, interpolation=mode), T.CenterCrop(self.crop), T.ToTensor(),
                          T.Normalize(self.mean, self.std)])


DEFAULT_PRESET = Preset(256, 224)  # torchvision's ImageClassification(crop_size=224)


# --------------------------------------------------------------------------------------
# training recipe
# --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Recipe:
    """The training options ``minidl train MODEL`` uses when the command line leaves them unset.

    The defaults are the CLI's generic recipe; a card overrides what its model needs, e.g.
    ``Recipe(epochs=15, batch_size=32, lr=0.05, label_smoothing=0.1)`` for LeNet-5.
    ``model_kwargs`` are builder arguments (``{"dropout": 0.1}`` for the digits MLP).
    """

    epochs: int = 10
    batch_size: int = 64
    lr: float = 0.01
    optimizer: str = "sgd"
    momentum: float = 0.9
    weight_decay: float = 5e-4
    scheduler: str = "cosine"
    label_smoothing: float = 0.0
    augment: bool = False
    freeze: int = 0
    val_split: float = 0.1
    seed: int = 0
    early_stopping: Optional[int] = None
    clip_grad_norm: Optional[float] = None
    model_kwargs: Mapping = field(default_factory=dict)

    def as_dict(self) -> dict:
        """The recipe as a plain dict (``model_kwargs`` copied)."""
        out = asdict(self)
        out["model_kwargs"] = dict(self.model_kwargs)
        return out


# --------------------------------------------------------------------------------------
# weights records
# --------------------------------------------------------------------------------------

def weights_dir() -> str:
    """Where weights files are looked for: ``$MINIDL_HOME/checkpoints``, else ``~/.cache/minidl/checkpoints``."""
    from minidl.datasets.download import get_cache_dir

    return os.path.join(get_cache_dir(), "checkpoints")


@dataclass(frozen=True, eq=False)  # eq=False: records compare (and hash) by identity, as enum values
class Weights:
    """One set of pretrained weights; see the module docstring for the fields."""

    file_name: str
    sha256: str
    url: str
    transforms: Preset
    meta: Mapping

    def __post_init__(self):
        digest = self.sha256.lower()
        if len(digest) < 8 or len(digest) > 64 or any(c not in "0123456789abcdef" for c in digest):
            raise ValueError(f"Weights({self.file_name!r}): sha256 must be 8 to 64 hex digits (a full digest or its "
                             f"published prefix), got {self.sha256!r}")
        object.__setattr__(self, "sha256", digest)
        object.__setattr__(self, "meta", MappingProxyType(dict(self.meta)))


class WeightsEnum(enum.Enum):
    """The weights of one builder, as torchvision's ``WeightsEnum``: ``X_Weights.NAME`` is a ``Weights``.

    ``verify("IMAGENET1K_V1")`` / ``verify("ResNet18_Weights.DEFAULT")`` turn a name into the entry;
    ``path()`` is where its file is expected; ``get_state_dict()`` checks and reads it.
    """

    @classmethod
    def verify(cls, obj):
        """The entry named by ``obj`` (an entry, ``"NAME"`` or ``"ClassName.NAME"``); ``None`` stays ``None``."""
        if obj is None or isinstance(obj, cls):
            return obj
        if isinstance(obj, WeightsEnum):
            raise TypeError(f"expected weights of {cls.__name__}, got {obj!r}")
        if not isinstance(obj, str):
            raise TypeError(f"expected a {cls.__name__} entry or its name, got {type(obj).__name__}")
        name = obj[len(cls.__name__) + 1:] if obj.startswith(cls.__name__ + ".") else obj
        try:
            return cls[name]
        except KeyError:
            raise ValueError(f"{cls.__name__} has no weights {obj!r}; known: {', '.join(cls.names())}") from None

    @classmethod
    def names(cls):
        """Every name an entry can be given by, aliases (``DEFAULT``) included."""
        return list(cls.__members__)

    def __repr__(self):
        return f"{type(self).__name__}.{self.name}"

    # the record's fields, read through the entry as torchvision does
    @property
    def file_name(self):
        return self.value.file_name

    @property
    def sha256(self):
        return self.value.sha256

    @property
    def url(self):
        return self.value.url

    @property
    def transforms(self):
        return self.value.transforms

    @property
    def meta(self):
        return self.value.meta

    def path(self, root=None) -> str:
        """The file's expected location: ``root`` (default :func:`weights_dir`) / ``file_name``."""
        return os.path.join(weights_dir() if root is None else root, self.file_name)

    def check(self, root=None) -> str:
        """The path of the file after checking its SHA-256; raises if it is missing or differs.

        A missing file: ``FileNotFoundError`` saying where to put it (minidl does not download
        weights). A different digest: ``ValueError`` naming the file, which is then not used.
        """
        from minidl.datasets.download import sha256sum

        path = self.path(root)
        if not os.path.isfile(path):
            raise FileNotFoundError(
                f"{self!r}: weights file {self.file_name} not found in {os.path.dirname(path)}; minidl does not "
                f"download weights: fetch {self.url} and save it as {path} (set $MINIDL_HOME to use another cache "
                f"folder), or pass the path of a local file instead")
        digest = sha256sum(path)
        if not digest.startswith(self.sha256):
            what = "SHA-256" if len(self.sha256) == 64 else f"SHA-256 prefix {self.sha256} (published)"
            raise ValueError(f"{self!r}: {path} has SHA-256 {digest}, which does not match the expected {what}"
                             + ("" if len(self.sha256) < 64 else f" {self.sha256}")
                             + "; the file was not used (replace it with a good copy)")
        return path

    def get_state_dict(self, root=None):
        """The verified file's state_dict (NumPy arrays), read by ``minidl.serialization.load_checkpoint``."""
        from minidl.serialization import load_checkpoint

        return load_checkpoint(self.check(root))


# --------------------------------------------------------------------------------------
# model cards
# --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ModelCard:
    """The facts of one registered builder with its default arguments.

    ``num_params``: the exact parameter count of the reference implementation
    (``shared/reference/param_counts.md``; None where nothing is published); ``macs``:
    multiply-accumulates of the conv and linear layers per image at ``input_size`` (None where
    not recorded); ``transforms``: the preprocessing preset; ``recipe``: the ``minidl train``
    defaults; ``weights``: the builder's ``WeightsEnum``, whose ``DEFAULT`` entry supplies
    ``num_params``, ``macs`` and ``transforms`` where the card leaves them unset.
    """

    num_params: Optional[int] = None
    macs: Optional[float] = None
    input_size: tuple = (3, 224, 224)
    transforms: Optional[Preset] = None
    recipe: Recipe = field(default_factory=Recipe)
    weights: Optional[type] = None

    def __post_init__(self):
        object.__setattr__(self, "input_size", tuple(self.input_size))
        if self.weights is None:
            return
        if not (isinstance(self.weights, type) and issubclass(self.weights, WeightsEnum)):
            raise TypeError(f"ModelCard: weights must be a WeightsEnum class, got {self.weights!r}")
        default = self.weights["DEFAULT"] if "DEFAULT" in self.weights.__members__ else next(iter(self.weights))
        if self.num_params is None:
            object.__setattr__(self, "num_params", default.meta.get("num_params"))
        if self.macs is None:
            object.__setattr__(self, "macs", default.meta.get("macs"))
        if self.transforms is None:
            object.__setattr__(self, "transforms", default.transforms)

    @property
    def preset(self) -> Preset:
        """The preprocessing preset (torchvision's default 256 -> 224 where the card names none)."""
        return self.transforms or DEFAULT_PRESET

    def replace(self, **changes) -> "ModelCard":
        """A copy with some fields changed (``dataclasses.replace``)."""
        return replace(self, **changes)


_TORCHVISION_DOWNLOADS = "https://download.pytorch.org/models/"


def torchvision_weights(file_name, num_params, recipe, macs=None, transforms=DEFAULT_PRESET, **meta) -> Weights:
    """A record for a torchvision ImageNet-1k file, named ``<arch>-<first 8 hex digits of its SHA-256>.pth``.

    torchvision publishes only that prefix (torch.hub's ``check_hash`` checks it), so the record's
    ``sha256`` is the prefix read from the name; the URL is torchvision's download folder.

    >>> torchvision_weights("resnet18-f37072fd.pth", 11_689_512, "").sha256
    'f37072fd'
    """
    stem = os.path.splitext(file_name)[0]
    prefix = stem.rsplit("-", 1)[-1]
    return Weights(file_name=file_name, sha256=prefix, url=_TORCHVISION_DOWNLOADS + file_name, transforms=transforms,
                   meta={"categories": IMAGENET_CATEGORIES, "num_params": num_params, "macs": macs, "recipe": recipe,
                         **meta})
