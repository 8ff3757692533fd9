"""``minidl convert IN OUT`` and ``minidl predict MODEL --weights FILE IMAGE...``.

``predict`` takes a torchvision/timm ``.pth``, a safetensors or npz weights file, a weights
record's name, or a checkpoint written by ``minidl train`` (``runs/a/last.npz``: the model is then
built with the classes and input size it was trained with).
"""
from __future__ import annotations

import os

from . import UsageError


def add_parser(subparsers, command):
    if command == "convert":
        p = subparsers.add_parser(command, help="convert a checkpoint (.pth/.pt/.safetensors/.npz) to "
                                                "safetensors, npz or PyTorch's .pt")
        p.add_argument("source")
        p.add_argument("target", help="output path; the extension (.safetensors, .npz, .pt or .pth) picks the format")
        p.set_defaults(handler=convert)
    else:
        p = subparsers.add_parser(command, help="classify images with a model and a checkpoint; prints the top-5")
        p.add_argument("model")
        p.add_argument("--weights", required=True,
                       help="checkpoint file (torchvision/timm .pth, safetensors, npz, a `minidl train` "
                            "checkpoint) or the name of one of the model's weights records (IMAGENET1K_V1, "
                            "DEFAULT), read from the cache folder")
        p.add_argument("--top", type=int, default=5)
        p.add_argument("--classes", help="text file with one class name per line (default: ImageNet's 1000)")
        p.add_argument("images", nargs="+")
        p.set_defaults(handler=predict)


def convert(args):
    from ..serialization import load_checkpoint, save

    ext = os.path.splitext(args.target)[1].lower()
    if ext not in (".safetensors", ".npz", ".pt", ".pth"):
        raise UsageError(f"target must end in .safetensors, .npz, .pt or .pth, got {args.target!r}")
    state = load_checkpoint(args.source)
    save(state, args.target)
    total = sum(int(v.size) for v in state.values())
    print(f"wrote {args.target}: {len(state)} tensors, {total:,} values")
    return 0


def predict(args):
    import numpy as np
    from PIL import Image

    from .. import from_numpy, no_grad
    from minidl.models import WeightsEnum, get_model, get_model_card, imagenet_classes, resolve_weights
    from ..serialization import load_checkpoint
    from ..train import load_model_state, read_trainer_metadata

    # --weights: a weights record of the model (its name: IMAGENET1K_V1, DEFAULT) or a checkpoint file
    record = resolve_weights(args.model, args.weights)
    config = None if isinstance(record, WeightsEnum) else read_trainer_metadata(record).get("config")
    if config:
        # a `minidl train` checkpoint: the model, input size and classes it was trained with
        model, transform, categories, mode = _trained_model(args, config)
        state = load_model_state(record)
    else:
        try:
            model = get_model(args.model)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        if isinstance(record, WeightsEnum):
            state, preset, categories = record.get_state_dict(), record.transforms, record.meta.get("categories")
        else:
            state, preset, categories = load_checkpoint(record), get_model_card(args.model).preset, None
        transform, mode = preset.transforms(), "RGB"
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise UsageError(f"{args.weights} does not fit {args.model}: {str(exc)[:300]}") from None
    model.eval()
    if args.classes:
        with open(args.classes, encoding="utf-8") as f:
            names = [line.strip() for line in f if line.strip()]
    else:
        names = list(categories) if categories is not None else imagenet_classes()
    batch = []
    for path in args.images:
        if not os.path.exists(path):
            raise FileNotFoundError(f"image not found: {path}")
        with Image.open(path) as image:
            x = transform(image.convert(mode))  # (C, H, W), a Tensor or an array
        batch.append(x.numpy() if hasattr(x, "numpy") and not isinstance(x, np.ndarray) else np.asarray(x))
    with no_grad():
        logits = model(from_numpy(np.stack(batch).astype(np.float32)))
    if isinstance(logits, tuple):
        logits = logits[0]
    probs = logits.softmax(dim=1).numpy()
    if probs.shape[1] != len(names):
        raise UsageError(f"the model has {probs.shape[1]} outputs but {len(names)} class names were given")
    for path, p in zip(args.images, probs):
        print(path)
        for k in np.argsort(-p, kind="stable")[: args.top]:
            print(f"  {p[k] * 100:6.2f}%  {k:4d}  {names[k]}")
    return 0


def _trained_model(args, config):
    """``(model, transform, class names, PIL mode)`` for a checkpoint written by ``minidl train``.

    The model is built as training built it (its classes and input shape are in the checkpoint's
    record), and an image is prepared as training read image files: resized to the input's
    side, then ``ToTensor`` (grayscale for a one-channel input).
    """
    from minidl.data import transforms as T

    from .train import _build_model, _builder

    if config.get("model") not in (None, args.model):
        raise UsageError(f"{args.weights} holds a {config['model']!r} model, not {args.model!r}")
    builder = _builder(args.model)
    classes = [str(c) for c in config.get("classes") or []]
    shape = tuple(config.get("input_shape") or ())
    if len(shape) != 3 or not classes:
        raise UsageError(f"{args.weights}: the trainer record has no input shape or classes")
    model = _build_model(args.model, builder, len(classes), shape, builder.card.recipe.model_kwargs)
    transform = T.Compose([T.Resize((shape[1], shape[2])), T.ToTensor()])
    return model, transform, classes, "L" if shape[0] == 1 else "RGB"
