"""``minidl train char_lstm|char_transformer``: next-character training on the embedded text.

``minidl train`` hands a model whose builder says ``task = "text"`` to :func:`run_text_train`.
The loop is the plain one of a language model:

- each optimizer step draws ``--batch-size`` windows of ``seq_len`` characters at random
  offsets of the training split (:meth:`minidl.datasets.CharText.random_batch`);
- the loss is the cross-entropy of every position's next character, in nats per character
  (``/ ln 2`` gives bits per character); a model that knows nothing scores ``ln(vocab)``;
- an "epoch" is ``steps_per_epoch`` steps followed by a validation round on a fixed set of
  windows spread evenly over the validation split (the last 10% of the text);
- the run stops after ``--epochs`` rounds or when ``--time-limit`` seconds of training have
  passed, whichever comes first; ``last.npz`` and ``best.npz`` (lowest validation loss) are
  written into ``--checkpoint DIR`` as for the image models, with the vocabulary in their
  record, so ``minidl generate DIR/best.npz`` can sample from them.
"""
from __future__ import annotations

import inspect
import math
import os
import time

import numpy as np

from . import UsageError
from .preflight import make_folder

# the recipe's model_kwargs that steer the loop rather than the builder
LOOP_KEYS = ("seq_len", "steps_per_epoch", "time_limit")
VAL_WINDOWS = 256  # validation windows per round, spread evenly over the validation split


def is_text_model(builder):
    return getattr(builder, "task", None) == "text"


def load_text_split(dataset, split, seq_len):
    """The embedded text (``dataset`` "digits", the CLI's default, or "shakespeare") or a UTF-8 text file."""
    from minidl.datasets.text import CharText

    key = os.fspath(dataset)
    if key.lower() in ("digits", "shakespeare"):
        return CharText(split, seq_len)
    path = os.path.expanduser(key)
    if not os.path.isfile(path):
        raise UsageError(f"--dataset {key}: a language model trains on the embedded text (shakespeare) or on a "
                         "UTF-8 text file; no such file")
    try:
        return CharText(split, seq_len, path=path)
    except (UnicodeDecodeError, ValueError) as err:
        raise UsageError(f"--dataset {key}: {err}") from None


def builder_arguments(builder, model_kwargs):
    """Every argument of the builder but ``vocab_size``: its defaults, updated by those of ``model_kwargs``
    it takes (stored in checkpoints, so a later change of a default cannot change a saved model)."""
    params = inspect.signature(builder).parameters
    kwargs = {k: p.default for k, p in params.items() if p.default is not inspect.Parameter.empty}
    kwargs.update({k: v for k, v in model_kwargs.items() if k in params})
    kwargs.pop("vocab_size", None)
    return kwargs


def build_text_model(builder, vocab_size, model_kwargs):
    """The builder's model for ``vocab_size`` characters, with the kwargs the builder takes."""
    return builder(vocab_size=vocab_size, **builder_arguments(builder, model_kwargs))


def sequence_loss(model, x, y):
    """Mean next-character cross-entropy (nats) of ids ``x`` against targets ``y``, both ``(N, T)``."""
    import minidl
    from minidl.nn import functional as F

    logits = model(minidl.tensor(x))
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), minidl.tensor(y.reshape(-1)))


def evaluate_text(model, windows, batch_size=64):
    """Mean loss in nats per character over ``windows`` = ``(x, y)`` arrays of shape ``(N, T)``."""
    import minidl

    x_all, y_all = windows
    was_training = model.training
    model.eval()
    total = 0.0
    with minidl.no_grad():
        for i in range(0, len(x_all), batch_size):
            x, y = x_all[i:i + batch_size], y_all[i:i + batch_size]
            total += float(sequence_loss(model, x, y).item()) * y.size
    model.train(was_training)
    return total / y_all.size


def _validation_windows(val_set):
    n = len(val_set)
    picks = np.unique(np.linspace(0, n - 1, num=min(n, VAL_WINDOWS)).astype(np.int64))
    return (np.stack([val_set[int(i)][0] for i in picks]), np.stack([val_set[int(i)][1] for i in picks]))


def run_text_train(args, builder, make_optimizer, resumable, set_num_threads):
    """``minidl train`` for a character-level language model; returns the exit code.

    ``make_optimizer(name, params, lr, momentum, weight_decay)``, ``resumable`` (the recipe's option
    names) and ``set_num_threads`` are minidl.cli.train's, passed in (this module never imports it).
    """
    import minidl
    from minidl.train import Trainer

    start = time.perf_counter()
    if args.resume:
        raise UsageError(f"--resume: {args.model} trains in one short run; start it again (--time-limit sets "
                         "its length)")
    for option in ("weights", "plot"):
        if getattr(args, option, None):
            raise UsageError(f"--{option} is for the image models, not {args.model}")
    recipe = builder.card.recipe.as_dict()
    for name in resumable:
        if getattr(args, name) is None:
            setattr(args, name, recipe[name])
    model_kwargs = dict(recipe["model_kwargs"])
    seq_len = int(model_kwargs.get("seq_len", 64))
    steps_per_epoch = int(model_kwargs.get("steps_per_epoch", 50))
    time_limit = args.time_limit if args.time_limit is not None else model_kwargs.get("time_limit")
    if time_limit is not None and not time_limit > 0:
        raise UsageError(f"--time-limit must be > 0, got {time_limit}")
    # one thread: the small matrices of these models run faster than when split over cores
    set_num_threads(args.threads if args.threads is not None else 1)

    minidl.manual_seed(args.seed)
    train_set = load_text_split(args.dataset, "train", seq_len)
    val_set = load_text_split(args.dataset, "val", seq_len)
    vocab = train_set.vocab
    model = build_text_model(builder, len(vocab), model_kwargs)
    if args.device == "cuda":
        model.to("cuda")
    opt = make_optimizer(args.optimizer, model.parameters(), args.lr, args.momentum, args.weight_decay)
    config = {"model": args.model, "task": "text", "dataset": os.fspath(args.dataset), "vocab": "".join(vocab.chars),
              "seq_len": seq_len, "model_kwargs": builder_arguments(builder, model_kwargs)}
    config.update({name: getattr(args, name) for name in resumable})
    trainer = Trainer(model, opt, config=config, progress=False)  # used here for its checkpoint format
    val_windows = _validation_windows(val_set)
    rng = np.random.default_rng(args.seed)
    chance = math.log(len(vocab))
    say = (lambda *a: None) if args.quiet else (lambda text: print(text, flush=True))
    say(f"training {args.model} ({model.num_parameters():,} parameters) on {len(train_set.ids):,} characters "
        f"({len(vocab)}-character vocabulary), validating on {val_windows[1].size:,} of "
        f"{len(val_set.ids):,}: {args.optimizer} lr {args.lr:g}, batch {args.batch_size} x {seq_len} characters, "
        f"{args.epochs} rounds of {steps_per_epoch} steps"
        + (f", at most {time_limit:g} s" if time_limit else ""))
    val_loss = evaluate_text(model, val_windows)
    say(f"step 0: validation loss {val_loss:.3f} nats/char ({val_loss / math.log(2):.3f} bits/char; "
        f"ln({len(vocab)}) = {chance:.3f})")
    if args.checkpoint:
        make_folder(args.checkpoint, "--checkpoint")
    train_start, out_of_time = time.perf_counter(), False
    for epoch in range(1, args.epochs + 1):
        losses = []
        for _ in range(steps_per_epoch):
            x, y = train_set.random_batch(args.batch_size, rng)
            loss = sequence_loss(model, x, y)
            opt.zero_grad()
            loss.backward()
            if args.clip_grad_norm:
                minidl.nn.utils.clip_grad_norm_(model.parameters(), args.clip_grad_norm)
            opt.step()
            trainer.global_step += 1
            losses.append(float(loss.item()))
            if not math.isfinite(losses[-1]):
                from minidl.train import NonFiniteLossError

                raise NonFiniteLossError(f"{args.model}: the training loss became {losses[-1]} at step "
                                         f"{trainer.global_step}; try a lower --lr")
            out_of_time = time_limit is not None and time.perf_counter() - train_start > time_limit
            if out_of_time:
                break
        val_loss = evaluate_text(model, val_windows)
        trainer.epoch = epoch
        seconds = time.perf_counter() - train_start
        trainer.history.append({"epoch": epoch, "train_loss": float(np.mean(losses)), "train_acc": None,
                                "val_loss": val_loss, "val_acc": None, "lr": args.lr, "time": seconds})
        improved = trainer.best_value is None or val_loss < trainer.best_value
        if improved:
            trainer.best_value, trainer.best_epoch = val_loss, epoch
        if args.checkpoint:
            trainer.save_checkpoint(os.path.join(args.checkpoint, "last.npz"))
            if improved:
                trainer.save_checkpoint(os.path.join(args.checkpoint, "best.npz"))
        say(f"epoch {epoch}/{args.epochs} (step {trainer.global_step}, {seconds:.0f} s): train loss "
            f"{np.mean(losses):.3f}, validation loss {val_loss:.3f} nats/char ({val_loss / math.log(2):.3f} bits/char)")
        if out_of_time:
            say(f"stopped after {seconds:.0f} s (time limit {time_limit:g} s)")
            break
    best = trainer.best_value
    print(f"validation loss: {best:.3f} nats/char ({best / math.log(2):.3f} bits/char), best of "
          f"{trainer.epoch} epochs, {time.perf_counter() - start:.1f} s", flush=True)
    return 0
