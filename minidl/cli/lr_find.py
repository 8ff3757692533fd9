"""``minidl lr-find MODEL``: the learning-rate range test (``minidl.lr_finder.LRFinder``).

Examples::

    minidl lr-find mlp                                          # digits; writes lr_find.png
    minidl lr-find mobilenet_v2 --dataset waste/ --weights IMAGENET1K_V1 --freeze 80 --plot runs/lr.png

The data, model and transfer options are ``minidl train``'s; the test takes ``--steps``
training steps on the training split (never the test split) with the learning rate growing
exponentially from ``--start-lr`` to ``--end-lr``, stops when the smoothed loss passes
``--diverge`` times its lowest value, and prints a suggested learning rate. The model's
weights are restored afterwards (nothing is saved but the plot).
"""
from __future__ import annotations

import sys

from . import UsageError
from .preflight import check_writable_folder


def add_parser(subparsers, command):
    from .train import OPTIMIZERS, _common, _transfer_options

    p = subparsers.add_parser(
        "lr-find", help="learning-rate range test: plot loss against lr, suggest an lr",
        description="LR range test (Smith 2017): train --steps steps while the learning rate grows exponentially "
                    "from --start-lr to --end-lr, smooth the loss exponentially (--smooth), stop when the smoothed "
                    "loss exceeds --diverge times its lowest value, save the loss-vs-lr plot (log x) and print the "
                    "suggested lr: by default where the smoothed loss falls fastest (steepest descent against "
                    "log lr, before its minimum); --suggest min10 gives a tenth of the lr at the minimum. The "
                    "model's weights and the optimizer are restored afterwards. Data, model and transfer options "
                    "are minidl train's.")
    _common(p)
    p.add_argument("--batch-size", type=int, help="batch size (model default)")
    p.add_argument("--optimizer", choices=OPTIMIZERS, help="optimizer (model default)")
    p.add_argument("--momentum", type=float, help="SGD momentum (model default)")
    p.add_argument("--weight-decay", type=float, help="weight decay (model default)")
    p.add_argument("--label-smoothing", type=float, help="label smoothing in [0, 1) (model default)")
    p.add_argument("--weights", metavar="NAME|FILE", help="start from these weights (as minidl train --weights)")
    _transfer_options(p, schedule=False)
    p.add_argument("--start-lr", type=float, default=1e-7, help="first learning rate (default 1e-7)")
    p.add_argument("--end-lr", type=float, default=10.0, help="last learning rate (default 10)")
    p.add_argument("--steps", type=int, default=100, help="training steps of the ramp (default 100)")
    p.add_argument("--smooth", type=float, default=0.05,
                   help="smoothing factor f of the loss: s = f*loss + (1-f)*s (default 0.05)")
    p.add_argument("--diverge", type=float, default=4.0,
                   help="stop when the smoothed loss exceeds this many times its lowest value (default 4)")
    p.add_argument("--suggest", choices=("steepest", "min10"), default="steepest",
                   help="steepest: lr of the steepest descent of the smoothed loss (default); min10: a tenth "
                        "of the lr of the lowest smoothed loss")
    p.add_argument("--plot", metavar="FILE", default="lr_find.png", help="the PNG to write (default lr_find.png)")
    p.set_defaults(handler=run_lr_find)


def run_lr_find(args):
    import os

    import minidl
    from minidl.data import DataLoader
    from minidl.lr_finder import LRFinder
    from minidl.train import param_groups

    from .train import _build_model, _builder, _freeze, _load_data, _load_weights, _optimizer, _setup

    if not 0 < args.start_lr < args.end_lr:
        raise UsageError(f"need 0 < --start-lr < --end-lr, got {args.start_lr:g} and {args.end_lr:g}")
    if args.steps < 3:
        raise UsageError(f"--steps must be >= 3, got {args.steps}")
    if not 0 < args.smooth <= 1:
        raise UsageError(f"--smooth must be in (0, 1], got {args.smooth}")
    if not args.diverge > 1:
        raise UsageError(f"--diverge must be > 1, got {args.diverge}")
    args.checkpoint = None
    _setup(args, checkpoint_is_folder=False)
    check_writable_folder(os.path.dirname(os.path.abspath(args.plot)), "--plot")
    builder = _builder(args.model)
    from .train_text import is_text_model

    if is_text_model(builder):
        raise UsageError(f"lr-find trains image classifiers; {args.model!r} is a language model")
    recipe = builder.card.recipe.as_dict()
    for name in ("batch_size", "optimizer", "momentum", "weight_decay", "label_smoothing", "seed"):
        if getattr(args, name) is None:
            setattr(args, name, recipe[name])
    minidl.manual_seed(args.seed)
    train_set, shape, classes = _load_data(args, builder, train=True)
    if len(classes) < 2:
        raise UsageError(f"dataset {args.dataset!r} has {len(classes)} class(es); a classifier needs at least 2")
    if args.num_classes is not None and args.num_classes != len(classes):
        raise UsageError(f"--num-classes {args.num_classes}: dataset {args.dataset!r} has {len(classes)} classes")
    model = _build_model(args.model, builder, len(classes), shape, recipe["model_kwargs"])
    if args.weights:
        note = _load_weights(model, args.model, args.weights, len(classes))
        if not args.quiet:
            print(note, flush=True)
    args.head_lr = args.unfreeze_at = None  # one ramp for every layer that trains
    _freeze(args, model, shape, {})  # the range test runs on what training would train
    if args.device == "cuda":
        model.to("cuda")
    opt = _optimizer(args.optimizer, param_groups(model, args.start_lr), args.start_lr, args.momentum,
                     args.weight_decay)
    loader = DataLoader(train_set, batch_size=args.batch_size, shuffle=True, num_workers=args.workers,
                        seed=args.seed)
    finder = LRFinder(model, opt, label_smoothing=args.label_smoothing,
                      device="cuda" if args.device == "cuda" else None)
    if not args.quiet:
        print(f"lr range test of {args.model} on {args.dataset}: {args.optimizer}, batch {args.batch_size}, "
              f"lr {args.start_lr:g} -> {args.end_lr:g} over {args.steps} steps", flush=True)
    result = finder.range_test(loader, start_lr=args.start_lr, end_lr=args.end_lr, num_iter=args.steps,
                               smooth_f=args.smooth, diverge_th=args.diverge, suggestion=args.suggest)
    path = finder.plot(args.plot, title=f"{args.model} on {args.dataset}: lr range test")
    print(result)
    print(f"plot: {path}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    from minidl.cli import main

    sys.exit(main(["lr-find", *sys.argv[1:]]))
