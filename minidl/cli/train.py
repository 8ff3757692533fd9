"""``minidl train MODEL`` and ``minidl evaluate MODEL --checkpoint FILE``.

Examples::

    minidl train mlp                                   # the seed MLP on the embedded digits
    minidl train lenet5 --augment --plot runs/lenet    # LeNet-5 on digits upsampled to 32x32
    minidl train lenet5 --checkpoint runs/ck --epochs 4 && minidl train lenet5 --checkpoint runs/ck --resume
    minidl evaluate lenet5 --checkpoint runs/ck/best.npz

Inputs adapt to the model: the dataset's channels become ``in_channels`` (or the MLP's
``input_size``) where the builder accepts it, and images are resized to the model's input
size (the digits stay 8x8 for the MLPs and are upsampled to 32x32 for LeNet-5 and the CNNs).
"""
from __future__ import annotations

import importlib
import inspect
import os
import pkgutil
import sys
import time

import numpy as np

from . import UsageError, distributed
from .preflight import check_writable_folder, image_problem, make_folder, unreadable_summary

OPTIMIZERS = ("sgd", "adam", "adamw", "adamax", "nadam", "radam")
SCHEDULERS = ("none", "step", "cosine", "onecycle", "plateau", "warmup")
DATASETS = ("digits", "mnist", "fashion_mnist", "cifar10", "cifar100", "gtsrb")

# The options left unset come from the model's training recipe: ``ModelCard.recipe``, next to its
# builder in minidl/models/<family>.py (LeNet-5's and the digits MLP's are the issues' main jobs);
# ``minidl.models.Recipe()``'s defaults for a model that names none.

# options a resumed run takes from its checkpoint unless given again
_RESUMABLE = ("epochs", "batch_size", "lr", "optimizer", "momentum", "weight_decay", "scheduler", "label_smoothing",
              "augment", "freeze", "val_split", "seed", "early_stopping", "clip_grad_norm")

# dataset -> (channels, native side) ; folders are read as RGB
_NATIVE = {"digits": (1, 8), "mnist": (1, 28), "fashion_mnist": (1, 28), "cifar10": (3, 32), "cifar100": (3, 32),
           "gtsrb": (3, 32)}


# --------------------------------------------------------------------------------------
# argument parsing
# --------------------------------------------------------------------------------------

def add_parser(subparsers, command):
    if command == "train":
        p = subparsers.add_parser("train", help="train a model (default: on the embedded digits)",
                                  description="Train MODEL; prints the test accuracy at the end.")
        _common(p)
        p.add_argument("--epochs", type=int, help="epochs to train (model default: mlp 30, lenet5 15, else 10)")
        p.add_argument("--batch-size", type=int, help="batch size (model default)")
        p.add_argument("--lr", type=float, help="learning rate (model default)")
        p.add_argument("--optimizer", choices=OPTIMIZERS, help="optimizer (default sgd)")
        p.add_argument("--momentum", type=float, help="SGD momentum (default 0.9)")
        p.add_argument("--weight-decay", type=float, help="weight decay (model default)")
        p.add_argument("--scheduler", choices=SCHEDULERS, help="lr schedule (default cosine)")
        p.add_argument("--label-smoothing", type=float, help="label smoothing in [0, 1) (default 0)")
        p.add_argument("--augment", nargs="?", const="standard", metavar="PRESET|LIST",
                       help="training augmentation: a preset (light, standard, xray, signs; bare --augment is "
                            "standard: rotation, shift, zoom, flips for RGB) or a comma list such as "
                            "flip,rotate=15,zoom=0.1,perspective=0.2,color=0.2; flips follow the dataset's "
                            "flip map (GTSRB: a left-turn sign mirrored is a right-turn sign)")
        p.add_argument("--balance", choices=("none", "sampler", "loss"), default="none",
                       help="even out the classes: sampler (draw each class equally often), loss (cross-entropy "
                            "class weights N/(C*count)) or none (default); class counts are printed at the start")
        p.add_argument("--top-k", metavar="K,K,...",
                       help="top-k accuracies reported at the end (default 1,2,5, those below the class count)")
        p.add_argument("--weights", metavar="NAME|FILE",
                       help="start from these weights: one of the model's weights records (IMAGENET1K_V1, "
                            "DEFAULT; read from the cache folder and checked by SHA-256) or a checkpoint file; "
                            "a head with another class count is replaced for the dataset's classes")
        _transfer_options(p)
        p.add_argument("--val-split", type=float, help="fraction of training data for validation (default 0.1)")
        p.add_argument("--test-split", type=float,
                       help="for an image folder without train/ and test/ (or val/) sub-folders: the fraction "
                            "of each class held out, with --seed, as the test split (default 0.2)")
        p.add_argument("--early-stopping", type=int, metavar="PATIENCE",
                       help="stop after PATIENCE epochs without a better validation loss")
        p.add_argument("--clip-grad-norm", type=float, help="clip the gradient norm to this value")
        p.add_argument("--checkpoint", metavar="DIR", help="write last.npz and best.npz into DIR")
        p.add_argument("--resume", action="store_true", help="continue from DIR/last.npz")
        p.add_argument("--plot", metavar="DIR", help="write curves.png, confusion_matrix.png and roc.png")
        p.add_argument("--detect-anomaly", action="store_true", help="name the op whose backward gives NaN/inf (slow)")
        distributed.add_arguments(p)
        p.add_argument("--time-limit", type=float, metavar="SECONDS",
                       help="language models (char_lstm, char_transformer): stop training after SECONDS "
                            "(model default)")
        p.set_defaults(handler=run_train)
    else:
        p = subparsers.add_parser("evaluate", help="evaluate a checkpoint on a test split",
                                  description="Classification report, top-k accuracy and AUROC of a checkpoint.")
        _common(p)
        p.add_argument("--checkpoint", required=True, metavar="FILE", help="trainer checkpoint or weights file")
        p.add_argument("--batch-size", type=int, default=256, help="batch size (default 256)")
        p.add_argument("--plot", metavar="DIR", help="write confusion_matrix.png and roc.png")
        p.add_argument("--top-k", metavar="K,K,...",
                       help="top-k accuracies to report, k at most the class count (default 1,2,5, those below "
                            "the class count)")
        p.set_defaults(handler=run_evaluate)


def _freeze_value(text):
    """``--freeze``: a count (an int) or, for ``--freeze-by prefix``, name prefixes joined by '+'."""
    text = text.strip()
    return int(text) if text.lstrip("-").isdigit() else text


def _transfer_options(p, schedule=True):
    """--num-classes, --freeze, --freeze-by, and with ``schedule`` --unfreeze-at, --head-lr (``minidl.transfer``)."""
    p.add_argument("--num-classes", type=int, metavar="K",
                   help="classes of the new head (default: the dataset's; given, it must equal the dataset's "
                        "class count, a check that the weights' head is replaced for the right data)")
    p.add_argument("--freeze", type=_freeze_value, metavar="N|PREFIX",
                   help="freeze the start of the model (transfer learning): the first N units counted as "
                        "--freeze-by says, or with --freeze-by prefix name prefixes joined by '+' "
                        "(features, conv1+layer1). Frozen batch-norm layers stay in eval mode while the rest "
                        "trains (their running statistics are used and not updated), as Keras does for "
                        "BatchNormalization(trainable=False)")
    p.add_argument("--freeze-by", choices=("layers", "modules", "parameters", "prefix"),
                   help="how --freeze N counts: layers (default) = every call of a leaf module in forward "
                        "order, activations and pooling included (a module used twice counts twice), as Keras "
                        "counts layers (prints 'froze N of M layers'); modules = modules that own parameters; "
                        "parameters = parameter tensors (a weight and a bias are two); prefix = --freeze names "
                        "prefixes")
    if not schedule:
        return
    p.add_argument("--unfreeze-at", type=int, metavar="EPOCH",
                   help="gradual unfreezing: from the start of EPOCH (1-based) every frozen layer trains, "
                        "at its group's learning rate (--lr for the body)")
    p.add_argument("--head-lr", type=float, metavar="LR",
                   help="learning rate of the classifier head (its own optimizer parameter group; the body "
                        "keeps --lr; default: --lr for everything)")


def _common(p):
    p.add_argument("model", help="model name (see `minidl models`)")
    p.add_argument("--dataset", default="digits",
                   help=f"one of {', '.join(DATASETS)} or an image-folder path (default digits)")
    p.add_argument("--data-root", metavar="DIR", help="where datasets live (default: the cache folder)")
    p.add_argument("--download", action="store_true", help="download the dataset if it is missing")
    p.add_argument("--seed", type=int, help="random seed (default 0)")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--workers", type=int, default=0, help="data-loading threads (default 0)")
    p.add_argument("--threads", type=int,
                   help="compute threads (BLAS and Numba); default 1 for the digits, where splitting "
                        "tiny batches over threads costs more than it saves, else all cores")
    p.add_argument("--quiet", action="store_true", help="no progress bars or per-epoch lines")
    p.add_argument("--strict-data", action="store_true",
                   help="refuse an image folder holding files that do not open as images (default: skip "
                        "them with one warning listing them)")
    p.add_argument("--image-size", type=int, metavar="SIDE",
                   help="resize the images to SIDE x SIDE (default: the model's input size, 224 for the "
                        "ImageNet models; evaluate: the checkpoint's); a small side makes CPU runs fast")


# --------------------------------------------------------------------------------------
# building blocks
# --------------------------------------------------------------------------------------

def set_num_threads(n):
    """Limit Numba's and the BLAS library's threads to ``n`` for this process."""
    import numba

    numba.set_num_threads(max(1, min(int(n), numba.config.NUMBA_NUM_THREADS)))
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # without threadpoolctl, OPENBLAS_NUM_THREADS set before start does it
        return
    threadpool_limits(int(n))


def _builder(name):
    """The registered builder of ``name``; imports the model families on first use."""
    from minidl import models

    if name not in models.list_models():
        # families register themselves when imported; import any not yet loaded
        for info in pkgutil.iter_modules(models.__path__):
            if not info.name.startswith("_") and info.name != "registry":
                importlib.import_module(f"minidl.models.{info.name}")
    if name not in models.list_models():
        raise UsageError(f"unknown model {name!r}; available: {', '.join(models.list_models())}")
    return models.get_model_builder(name)


def _is_mlp(builder):
    return "input_size" in inspect.signature(builder).parameters


def _input_shape(builder, dataset_key, channels):
    """(C, H, W) the model will see."""
    default = getattr(builder, "default_input_size", (3, 224, 224))
    if _is_mlp(builder):
        side = _NATIVE.get(dataset_key, (3, 32))[1]
        return channels, side, side
    return channels, default[1], default[2]


def _build_model(name, builder, num_classes, shape, extra):
    params = inspect.signature(builder).parameters
    kwargs = {k: v for k, v in extra.items() if k in params}
    takes_kwargs = any(v.kind is inspect.Parameter.VAR_KEYWORD for v in params.values())
    if "num_classes" in params or takes_kwargs:  # torchvision-style builders (**kwargs) take it too
        kwargs["num_classes"] = num_classes
    if "in_channels" in params:
        kwargs["in_channels"] = shape[0]
    elif "input_size" in params:
        kwargs["input_size"] = tuple(shape)
    elif shape[0] != 3:
        raise UsageError(f"model {name!r} takes 3-channel images and has no in_channels option; "
                         f"the dataset has {shape[0]} channel(s)")
    return builder(**kwargs)


def _augmentation_plan(spec, channels):
    """The ``minidl.data.augment.Augmentation`` of ``--augment SPEC`` (None for no augmentation).

    A checkpoint or recipe written before the presets says ``True``: the ``standard`` preset.
    """
    from minidl.data.augment import parse_augment

    if spec is None or spec is False or str(spec).lower() == "none":
        return None
    try:
        return parse_augment("standard" if spec is True else spec, channels)
    except ValueError as err:
        raise UsageError(str(err)) from None


def _balance(args, train_part, classes, device):
    """``(sampler, loss_fn)`` for ``--balance``; prints the training split's class counts."""
    from minidl.data.balance import (
        balanced_sampler, class_counts, dataset_targets, format_class_counts, loss_weights)

    targets = dataset_targets(train_part)
    counts = class_counts(targets, len(classes))
    if not args.quiet or args.balance != "none":
        print(format_class_counts(counts, classes), flush=True)
    if args.balance == "sampler":
        print("balance: WeightedRandomSampler, each sample drawn with weight 1/count of its class", flush=True)
        return balanced_sampler(targets), None
    if args.balance == "loss":
        from minidl.nn import functional as F
        from minidl.tensor import Tensor

        weights = loss_weights(counts)
        print("balance: cross-entropy class weights " + ", ".join(f"{w:.3g}" for w in weights), flush=True)
        weight = Tensor(weights.astype(np.float32))
        if device == "cuda":
            weight = weight.to("cuda")
        smoothing = args.label_smoothing

        def loss_fn(logits, target):
            return F.cross_entropy(logits, target, weight=weight, label_smoothing=smoothing)

        return None, loss_fn
    return None, None


def _load_data(args, builder, train, augment=False, split=None):
    """``(dataset, shape, classes)`` of the training (``train=True``) or test split.

    An image folder without train/ and test/ (val/) sub-folders is split by ``split``
    ``(test fraction, seed)`` (default: ``--test-split`` and ``--seed``), so the test split
    never holds a training image; the split's sizes are printed once, with the training split.

    Every dataset is a reader of ``minidl.datasets`` whose transform makes the model's input:
    ``ToTensor`` (CHW float32 in [0, 1]) and a resize to the model's side (the digits' 8x8
    become 32x32 for LeNet-5 and the CNNs), then the augmentation when ``augment``.
    Samples stay NumPy; the DataLoader's ``default_collate`` makes the batches Tensors.
    """
    from minidl.data import transforms as T

    key = args.dataset.lower()
    if key not in _NATIVE and not os.path.isdir(os.path.expanduser(args.dataset)):
        raise UsageError(f"unknown dataset {args.dataset!r}: expected one of {', '.join(DATASETS)} "
                         "or an existing image folder")
    from minidl.datasets import get_dataset

    channels = _NATIVE.get(key, (3, 0))[0]
    shape = _input_shape(builder, key, channels)
    if getattr(args, "image_size", None) is not None:
        if args.image_size < 1:
            raise UsageError(f"--image-size must be a positive side in pixels, got {args.image_size}")
        shape = (channels, args.image_size, args.image_size)
    size = (shape[1], shape[2])
    if key == "digits":  # resized on the float values (bilinear, as load_digits(size=...)); 8x8 stays
        steps = [T.ToTensor()] + ([T.Resize(size)] if size != (8, 8) else [])
    else:
        steps = [T.Resize(size), T.ToTensor()]
    if augment:
        steps += augment.steps
    from minidl.datasets import DEFAULT_TEST_SPLIT, DatasetSplit

    test_split, seed = split or (getattr(args, "test_split", None), getattr(args, "seed", None))
    test_split = DEFAULT_TEST_SPLIT if test_split is None else test_split
    try:
        dataset = get_dataset(args.dataset, root=args.data_root, train=train, transform=T.Compose(steps),
                              download=args.download, test_split=test_split, seed=seed or 0)
    except RuntimeError as err:  # readers report missing files this way; one line, exit 2
        raise UsageError(str(err)) from None
    classes = list(getattr(dataset, "classes", []))
    if isinstance(dataset, DatasetSplit) and train and not augment:
        n_all = len(dataset.dataset)
        print(f"{args.dataset} has no train/ and test/ sub-folders: split its {n_all} images (seed {seed or 0}) "
              f"into {len(dataset)} for training and validation and {n_all - len(dataset)} held out for testing "
              f"(--test-split {test_split:g})", flush=True)
    if key not in _NATIVE:  # an image folder: every file is decoded once before training
        dataset = _drop_unreadable(args, dataset)
    if augment:  # the flip goes with the label: the dataset's flip map (minidl.data.flips) keeps it true
        from minidl.data.flips import find_flip_map

        dataset = augment.wrap(dataset, find_flip_map(dataset))
    if key == "digits" and not augment:  # 1,797 small images: transform each once, not once per epoch
        from minidl.data import CachedDataset

        dataset = CachedDataset(dataset)
    return dataset, shape, classes


def _load_weights(model, name, weights, num_classes):
    """Load ``--weights`` (a weights record's name or a file) into ``model``; returns a line saying what loaded.

    A checkpoint whose classifier has another number of classes (ImageNet's 1000, say) is loaded
    into a head of its own size, which is then replaced by a new one for the dataset's classes.
    """
    from minidl import nn
    from minidl.models import WeightsEnum, resolve_weights
    from minidl.train import load_model_state

    record = resolve_weights(name, weights)  # an unknown name or a missing file: one line, exit 2
    state = record.get_state_dict() if isinstance(record, WeightsEnum) else load_model_state(record)
    head = nn.head_names(model)[0]  # fc, classifier.1, heads.head, ...: one rule for every zoo model
    saved_classes = None
    if f"{head}.weight" in state:
        saved_classes = int(state[f"{head}.weight"].shape[0])
        if saved_classes != num_classes:
            nn.replace_head(model, saved_classes)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as err:
        raise UsageError(f"--weights {weights} does not fit {name} for this dataset: {str(err)[:300]}") from None
    source = repr(record) if isinstance(record, WeightsEnum) else record
    if saved_classes is not None and saved_classes != num_classes:
        nn.replace_head(model, num_classes)
        return f"weights: {source} (its {saved_classes}-class head replaced by a new {num_classes}-class one)"
    return f"weights: {source}"


def _optimizer(name, groups, lr, momentum, weight_decay):
    from minidl import optim

    if name == "sgd":
        return optim.SGD(groups, lr=lr, momentum=momentum, weight_decay=weight_decay)
    cls = {"adam": optim.Adam, "adamw": optim.AdamW, "adamax": optim.Adamax, "nadam": optim.NAdam,
           "radam": optim.RAdam}[name]
    return cls(groups, lr=lr, weight_decay=weight_decay)


def _scheduler(name, opt, epochs, steps_per_epoch, lr):
    from minidl.optim import lr_scheduler as S

    if name == "none":
        return None
    if name == "step":
        return S.StepLR(opt, step_size=max(1, epochs // 3), gamma=0.1)
    if name == "cosine":
        return S.CosineAnnealingLR(opt, T_max=epochs)
    if name == "onecycle":
        return S.OneCycleLR(opt, max_lr=[g["lr"] for g in opt.param_groups], epochs=epochs,
                            steps_per_epoch=steps_per_epoch)
    if name == "plateau":
        return S.ReduceLROnPlateau(opt, factor=0.5, patience=2)
    warmup = max(1, min(5, epochs // 5))  # "warmup": linear warm-up, then cosine
    if epochs <= warmup:
        return S.LinearLR(opt, start_factor=0.1, total_iters=warmup)
    return S.SequentialLR(opt, [S.LinearLR(opt, start_factor=0.1, total_iters=warmup),
                                S.CosineAnnealingLR(opt, T_max=epochs - warmup)], milestones=[warmup])


# --------------------------------------------------------------------------------------
# preflight: everything that can be checked before the first batch
# --------------------------------------------------------------------------------------

def _is_folder_dataset(args):
    return args.dataset.lower() not in _NATIVE


def _sample_paths(dataset):
    """The image path of each index of ``dataset`` (an ImageFolder, or Subsets of one); None if unknown."""
    if hasattr(dataset, "samples"):
        return [path for path, _ in dataset.samples]
    inner, indices = getattr(dataset, "dataset", None), getattr(dataset, "indices", None)
    if inner is not None and indices is not None:
        paths = _sample_paths(inner)
        return None if paths is None else [paths[i] for i in indices]
    return None


def _drop_unreadable(args, dataset):
    """``dataset`` without the samples whose file does not open as an image (each file decoded once
    per run); ``--strict-data`` refuses instead. The skipped files are reported once, by
    :func:`_warn_unreadable`, before training."""
    from minidl.data import Subset

    paths = _sample_paths(dataset)
    if paths is None:
        return dataset
    checked = args.__dict__.setdefault("_image_checks", {})
    # a split of a class folder (minidl.datasets.DatasetSplit): check the whole folder, so the report
    # (and --strict-data) covers the held-out images too, before the first batch
    whole = _sample_paths(dataset.dataset) if hasattr(dataset, "split") and hasattr(dataset, "dataset") else None
    for path in (whole or paths):
        if path not in checked:
            checked[path] = image_problem(path)
    bad = [i for i, path in enumerate(paths) if checked[path] is not None]
    if not bad:
        return dataset
    if getattr(args, "strict_data", False):
        raise UsageError(f"--strict-data: {_unreadable_summary(args)}")
    drop = set(bad)
    return Subset(dataset, [i for i in range(len(paths)) if i not in drop])


def _unreadable_summary(args):
    return unreadable_summary(args.__dict__.get("_image_checks", {}), args.dataset)


def _warn_unreadable(args):
    summary = _unreadable_summary(args)
    if summary:
        print(f"warning: skipping {summary}", file=sys.stderr, flush=True)


def _preflight_folders(args, checkpoint_is_folder):
    if checkpoint_is_folder and args.checkpoint:
        check_writable_folder(args.checkpoint, "--checkpoint")
    if getattr(args, "plot", None):
        check_writable_folder(args.plot, "--plot")
    if args.download and not _is_folder_dataset(args) and args.dataset.lower() != "digits":
        from minidl.datasets import get_cache_dir

        root = args.data_root or os.path.join(get_cache_dir(), "datasets")
        check_writable_folder(root, "--data-root" if args.data_root else "the cache folder")


def _check_resume(args, saved, last):
    """Refuse a resume whose optimizer or lr schedule is not the checkpoint's (its state could not be
    loaded into them), and one that would run past the end of a schedule that cannot be stretched."""
    for name in ("optimizer", "scheduler"):
        given = getattr(args, name)
        if given is not None and name in saved and given != saved[name]:
            raise UsageError(f"--{name} {given}: {last} was trained with --{name} {saved[name]}, and a resumed "
                             f"run continues its {name} state; resume without --{name}, or start a new run "
                             "in another --checkpoint folder")
    scheduler = args.scheduler if args.scheduler is not None else saved.get("scheduler")
    planned = saved.get("epochs")
    if args.epochs is not None and planned is not None and args.epochs > planned and scheduler in ("onecycle",
                                                                                                   "warmup"):
        raise UsageError(f"--epochs {args.epochs}: {last} follows a {scheduler} schedule planned for {planned} "
                         f"epochs, which cannot be stretched; resume with --epochs {planned} or fewer, or start "
                         "a new run")


def _fit_schedule(trainer, epochs):
    """Stretch (or shrink) a resumed cosine schedule to ``epochs``: the lr continues on the cosine a
    run planned for ``epochs`` would follow, so a finished schedule resumed for more epochs never
    trains at its final lr of 0. Returns a note, or None when nothing changed."""
    from minidl.optim.lr_scheduler import CosineAnnealingLR

    scheduler = trainer.scheduler
    if not isinstance(scheduler, CosineAnnealingLR) or scheduler.T_max == epochs:
        return None
    old = scheduler.T_max
    scheduler.T_max = epochs
    lrs = scheduler._get_closed_form_lr()
    for group, lr in zip(scheduler.optimizer.param_groups, lrs):
        group["lr"] = lr
    scheduler._last_lr = list(lrs)
    return (f"note: the cosine schedule planned for {old} epochs now spans {epochs}; "
            f"lr {lrs[-1]:.3g} at epoch {trainer.epoch + 1}")


def _check_args(args):
    for name in ("epochs", "batch_size"):
        value = getattr(args, name, None)
        if value is not None and value < 1:
            raise UsageError(f"--{name.replace('_', '-')} must be >= 1, got {value}")
    if getattr(args, "lr", None) is not None and not args.lr > 0:
        raise UsageError(f"--lr must be > 0, got {args.lr}")
    if getattr(args, "val_split", None) is not None and not 0.0 <= args.val_split < 1.0:
        raise UsageError(f"--val-split must be in [0, 1), got {args.val_split}")
    if getattr(args, "test_split", None) is not None and not 0.0 < args.test_split < 1.0:
        raise UsageError(f"--test-split must be in (0, 1), got {args.test_split}")
    if getattr(args, "label_smoothing", None) is not None and not 0.0 <= args.label_smoothing < 1.0:
        raise UsageError(f"--label-smoothing must be in [0, 1), got {args.label_smoothing}")
    if args.workers < 0:
        raise UsageError(f"--workers must be >= 0, got {args.workers}")
    if args.threads is not None and args.threads < 1:
        raise UsageError(f"--threads must be >= 1, got {args.threads}")
    if args.device == "cuda":
        from minidl import cuda

        if not cuda.is_available():
            raise UsageError("--device cuda: no CUDA device is available (CuPy and an NVIDIA GPU are needed)")
    if getattr(args, "resume", False) and not args.checkpoint:
        raise UsageError("--resume needs --checkpoint DIR (the folder holding last.npz)")


def _setup(args, checkpoint_is_folder):
    _check_args(args)
    _preflight_folders(args, checkpoint_is_folder)
    threads = args.threads if args.threads is not None else (1 if args.dataset.lower() == "digits" else None)
    if threads is not None:
        set_num_threads(threads)


# --------------------------------------------------------------------------------------
# transfer learning: --freeze, --freeze-by, --unfreeze-at, --head-lr (minidl.transfer)
# --------------------------------------------------------------------------------------

# the transfer options a resumed run takes from its checkpoint unless given again
_TRANSFER = ("freeze_by", "unfreeze_at", "head_lr")


def _freeze(args, model, shape, saved):
    """Apply --freeze/--freeze-by; returns the Trainer's ``on_epoch_start`` (None when nothing is frozen)."""
    from minidl.transfer import FrozenLayers, freeze

    for name in _TRANSFER:
        if getattr(args, name) is None:
            setattr(args, name, saved.get(name))
    by = args.freeze_by or "layers"
    args.freeze_by = by
    if args.head_lr is not None and not args.head_lr > 0:
        raise UsageError(f"--head-lr must be > 0, got {args.head_lr}")
    if by == "prefix" and isinstance(args.freeze, int):
        raise UsageError(f"--freeze-by prefix: --freeze names layer prefixes (features, conv1+layer1), "
                         f"got the number {args.freeze}")
    if by != "prefix" and isinstance(args.freeze, str):
        raise UsageError(f"--freeze {args.freeze}: a name prefix needs --freeze-by prefix "
                         f"(--freeze-by {by} counts, --freeze N)")
    if args.unfreeze_at is not None:
        if not args.freeze:
            raise UsageError("--unfreeze-at needs --freeze (there is nothing frozen to unfreeze)")
        if args.unfreeze_at < 2:
            raise UsageError(f"--unfreeze-at must be an epoch >= 2 (epoch 1 trains the head alone), "
                             f"got {args.unfreeze_at}")
    if not args.freeze:
        return None
    try:
        result = freeze(model, args.freeze.split("+") if by == "prefix" else args.freeze, by=by,
                        input_size=shape)
    except ValueError as err:
        raise UsageError(f"--freeze {args.freeze} --freeze-by {by}: {str(err).removeprefix('freeze: ')}") from None
    if not any(p.requires_grad for p in model.parameters()):
        raise UsageError(f"--freeze {args.freeze} --freeze-by {by} freezes every layer, the head included: "
                         f"freeze fewer than {result.total} {result.unit}")
    if not args.quiet:
        print(result, flush=True)
    log = (lambda line: None) if args.quiet else (lambda line: print(line, flush=True))
    return FrozenLayers(model, result, unfreeze_at=args.unfreeze_at, log=log)


# --------------------------------------------------------------------------------------
# minidl train
# --------------------------------------------------------------------------------------

def run_train(args):
    return distributed.launch(_run_train, args)  # --distributed: one process of several; else just the run


def _run_train(args):
    import minidl
    from minidl import nn
    from minidl.data import DataLoader, Subset, random_split
    from minidl.datasets import DEFAULT_TEST_SPLIT, DatasetSplit
    from minidl.train import Trainer, param_groups, read_trainer_metadata

    start = time.perf_counter()
    _setup(args, checkpoint_is_folder=True)
    builder = _builder(args.model)
    from .train_text import is_text_model, run_text_train

    if is_text_model(builder) and args.distributed:
        raise UsageError(f"--distributed trains the image classifiers; {args.model} trains in one process")
    if is_text_model(builder):  # char_lstm, char_transformer: next-character training on text
        return run_text_train(args, builder, _optimizer, _RESUMABLE, set_num_threads)
    last = os.path.join(args.checkpoint, "last.npz") if args.checkpoint else None
    saved = {}
    if args.resume and os.path.isfile(last):
        saved = read_trainer_metadata(last).get("config", {})
        if saved.get("model", args.model) != args.model:
            raise UsageError(f"{last} was written by `minidl train {saved['model']}`, not {args.model!r}")
        _check_resume(args, saved, last)
        if args.image_size is None and saved.get("input_shape"):  # resumed at the side it was trained at
            args.image_size = int(saved["input_shape"][-1])
    # explicit option > the resumed run's setting > the model's recipe
    defaults = {**builder.card.recipe.as_dict(), **saved}
    for name in _RESUMABLE:
        if getattr(args, name) is None:
            setattr(args, name, defaults[name])
        elif saved and name == "epochs" and args.epochs != saved[name]:
            print(f"note: --epochs {args.epochs} differs from the checkpoint's {saved[name]}: the run now ends "
                  f"after epoch {args.epochs}", file=sys.stderr)
        elif saved and name in saved and getattr(args, name) != saved[name]:
            print(f"note: --{name.replace('_', '-')} {getattr(args, name)} differs from the checkpoint's "
                  f"{saved[name]}; the saved optimizer and lr-schedule state are kept", file=sys.stderr)
    epochs, batch_size, lr = args.epochs, args.batch_size, args.lr
    opt_name, weight_decay, sched_name = args.optimizer, args.weight_decay, args.scheduler

    minidl.manual_seed(args.seed)
    if args.test_split is None:  # a resumed run keeps its split: its test images were never trained on
        args.test_split = saved.get("test_split")
    train_set, shape, classes = _load_data(args, builder, train=True)
    test_set, _, _ = _load_data(args, builder, train=False)
    num_classes = len(classes)
    if num_classes < 2:
        raise UsageError(f"dataset {args.dataset!r} has {num_classes} class(es); a classifier needs at least 2")
    if args.num_classes is not None and args.num_classes != num_classes:
        raise UsageError(f"--num-classes {args.num_classes}: dataset {args.dataset!r} has {num_classes} classes "
                         f"({', '.join(map(str, classes[:5]))}{', ...' if num_classes > 5 else ''}); give "
                         f"--num-classes {num_classes} or the dataset with {args.num_classes} classes")
    from .evaluation import print_evaluation, top_k_for

    top_k = top_k_for(args.top_k, num_classes)  # a k above the class count: one line, before training
    n_val = round(args.val_split * len(train_set))
    if n_val > 0:
        train_part, val_part = random_split(train_set, [len(train_set) - n_val, n_val], generator=args.seed)
    else:
        train_part, val_part = train_set, None
    plan = _augmentation_plan(args.augment, shape[0])
    if plan is not None:  # the same training samples, read through the augmenting transform
        from minidl.data.flips import find_flip_map

        args.augment = plan.name
        if plan.vflip > 0 and find_flip_map(train_set) is not None:
            raise UsageError(f"--augment {plan.name}: vflip would turn the signs of {args.dataset} upside down; "
                             "leave it out (horizontal flips follow the dataset's flip map)")
        print(f"augment {plan.name}: " + "; ".join(plan.describe(find_flip_map(train_set))), flush=True)
        augmented_set = _load_data(args, builder, train=True, augment=plan)[0]
        train_part = Subset(augmented_set, train_part.indices if n_val > 0 else range(len(train_set)))
    sampler, balance_loss = _balance(args, train_part, classes, args.device)
    if sampler is not None and getattr(args, "distributed", False):
        raise UsageError("--balance sampler draws one weighted sample stream; with --distributed use "
                         "--balance loss (class weights in the loss) instead")
    train_sampling = {"sampler": sampler} if sampler is not None else distributed.sampling(args, train_part, shuffle=True)
    loader = DataLoader(train_part, batch_size=batch_size, num_workers=args.workers, seed=args.seed, **train_sampling)
    val_loader = DataLoader(val_part, batch_size=256, num_workers=args.workers,
                            **distributed.sampling(args, val_part, shuffle=False)) if val_part is not None else None
    test_loader = DataLoader(test_set, batch_size=256, num_workers=args.workers,
                             **distributed.sampling(args, test_set, shuffle=False))

    model = _build_model(args.model, builder, num_classes, shape, defaults["model_kwargs"])
    if args.weights:
        note = _load_weights(model, args.model, args.weights, num_classes)
        if not args.quiet:
            print(note, flush=True)
    frozen = _freeze(args, model, shape, saved)
    if args.device == "cuda":
        model.to("cuda")
    # frozen layers stay out of the optimizer unless --unfreeze-at brings them back; --head-lr: the head's group
    head = [name + "." for name in nn.head_names(model)] if args.head_lr is not None else None
    groups = param_groups(model, lr, head_lr=args.head_lr, head=head, trainable_only=args.unfreeze_at is None)
    opt = _optimizer(opt_name, groups, lr, args.momentum, weight_decay)
    scheduler = _scheduler(sched_name, opt, epochs, len(loader), lr)
    config = {"model": args.model, "dataset": args.dataset, "input_shape": list(shape), "classes": classes}
    config.update({name: getattr(args, name) for name in _RESUMABLE + _TRANSFER})
    if isinstance(test_set, DatasetSplit):
        config["test_split"] = args.test_split if args.test_split is not None else DEFAULT_TEST_SPLIT
    trainer = Trainer(distributed.wrap(args, model), opt, scheduler=scheduler, loss_fn=balance_loss,
                      label_smoothing=args.label_smoothing,
                      clip_grad_norm=args.clip_grad_norm, early_stopping=args.early_stopping,
                      monitor="val_loss" if val_loader is not None else "train_loss",
                      checkpoint_dir=args.checkpoint, config=config, progress=not args.quiet,
                      device="cuda" if args.device == "cuda" else None, detect_anomaly=args.detect_anomaly,
                      on_epoch_start=frozen)
    n_params = model.num_parameters()
    if not args.quiet:
        print(f"training {args.model} ({n_params:,} parameters) on {args.dataset} {tuple(shape)}: "
              f"{len(train_part)} train / {0 if val_part is None else len(val_part)} val / "
              f"{len(test_set)} test images, {opt_name} lr {lr:g}, {sched_name}, {epochs} epochs", flush=True)
        if args.distributed:
            print(distributed.describe(args, batch_size), flush=True)
    _warn_unreadable(args)
    if args.resume and os.path.isfile(last):
        # loaded here, not by fit(resume=True), so the schedule can be fitted to --epochs before any batch
        trainer.load_checkpoint(last, train_loader=loader)
        if not args.quiet:
            print(f"resumed from {last} after epoch {trainer.epoch}", file=sys.stderr, flush=True)
        note = _fit_schedule(trainer, epochs)
        if note:
            print(note, file=sys.stderr, flush=True)
    elif args.resume:
        print(f"no checkpoint at {last}: starting from scratch", flush=True)
    if args.checkpoint:
        make_folder(args.checkpoint, "--checkpoint")
    if args.plot:
        make_folder(args.plot, "--plot")
    trainer.fit(loader, val_loader, epochs=epochs)

    result = trainer.evaluate(test_loader, desc="test")
    elapsed = time.perf_counter() - start
    if distributed.is_main():
        print_evaluation(result["targets"], _softmax(result["logits"]), classes, top_k, args.plot, trainer.history)
    print(f"test accuracy: {100 * result['acc']:.1f}% ({len(result['targets'])} images), {elapsed:.1f} s",
          flush=True)
    # what a caller in the same process reads (minidl sweep): the epochs' rows and the test result
    args.results = {"history": trainer.history.rows, "test_acc": result["acc"], "test_loss": result["loss"],
                    "seconds": elapsed}
    return 0


def _softmax(logits):
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


# --------------------------------------------------------------------------------------
# minidl evaluate
# --------------------------------------------------------------------------------------

def run_evaluate(args):
    from minidl.data import DataLoader
    from minidl.train import Trainer, load_model_state, read_trainer_metadata

    _setup(args, checkpoint_is_folder=False)
    if os.path.isdir(args.checkpoint):
        raise UsageError(f"--checkpoint {args.checkpoint} is a folder: give the checkpoint file in it "
                         f"(e.g. {os.path.join(args.checkpoint, 'best.npz')})")
    if not os.path.isfile(args.checkpoint):
        raise FileNotFoundError(f"checkpoint file not found: {args.checkpoint}")
    builder = _builder(args.model)
    saved_config = read_trainer_metadata(args.checkpoint).get("config", {})
    saved_model = saved_config.get("model")
    if saved_model is not None and saved_model != args.model:
        raise UsageError(f"{args.checkpoint} holds a {saved_model!r} model, not {args.model!r}")
    state = load_model_state(args.checkpoint)
    # the folder the checkpoint was trained on: its held-out split (same fraction and seed); another
    # folder was never trained on, so all of it is the test set
    def _real(path):
        return os.path.realpath(os.path.expanduser(str(path)))

    same = "test_split" in saved_config and _real(saved_config.get("dataset", "")) == _real(args.dataset)
    split = (saved_config["test_split"], saved_config.get("seed", 0)) if same else (0, 0)
    if not os.path.isdir(os.path.expanduser(args.dataset)):
        split = None
    if args.image_size is None and saved_config.get("input_shape"):  # the side the checkpoint was trained at
        args.image_size = int(saved_config["input_shape"][-1])
    test_set, shape, classes = _load_data(args, builder, train=False, split=split)
    if len(classes) < 2:
        raise UsageError(f"dataset {args.dataset!r} has {len(classes)} class(es); a classifier needs at least 2")
    from .evaluation import top_k_for

    top_k = top_k_for(args.top_k, len(classes))  # a k above the class count: one line, before any work
    _warn_unreadable(args)
    if args.plot:
        make_folder(args.plot, "--plot")
    model = _build_model(args.model, builder, len(classes), shape, builder.card.recipe.model_kwargs)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as err:
        raise UsageError(f"{args.checkpoint} does not fit {args.model} with {len(classes)} classes and input "
                         f"{tuple(shape)}: {str(err)[:300]}") from None
    if args.device == "cuda":
        model.to("cuda")
    from minidl import optim

    trainer = Trainer(model, optim.SGD(model.parameters(), lr=0.0), progress=not args.quiet,
                      device="cuda" if args.device == "cuda" else None)
    result = trainer.evaluate(DataLoader(test_set, batch_size=args.batch_size, num_workers=args.workers),
                              desc="evaluate")
    from .evaluation import print_evaluation

    y = result["targets"]
    print_evaluation(y, _softmax(result["logits"]), classes, top_k, args.plot)
    print(f"test loss: {result['loss']:.4f}, test accuracy: {100 * result['acc']:.1f}% ({len(y)} images)")
    return 0


if __name__ == "__main__":  # pragma: no cover
    from minidl.cli import main

    sys.exit(main(["train", *sys.argv[1:]]))
