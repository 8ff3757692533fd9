"""``minidl generate CHECKPOINT``: sample text from a trained character-level language model.

Example::

    minidl train char_lstm --checkpoint runs/lstm
    minidl generate runs/lstm/best.npz --prompt "ROMEO." --length 300 --temperature 0.8 --top-k 10 --seed 1

The checkpoint's record names the model, its builder arguments and its vocabulary; the
prompt may use only those characters. Sampling, one character at a time:

- the model reads the text so far (for the transformer, the last ``seq_len`` characters, the window
  length it was trained on;
  the LSTM carries its hidden state forward and reads one new character per step);
- the last position's logits are divided by ``--temperature`` (below 1: safer, above 1:
  wilder; 0 picks the most likely character every time);
- ``--top-k K`` keeps only the K most likely characters;
- the next character is drawn from the softmax of what is left, with a generator seeded by
  ``--seed``, so a seed always gives the same text.

The prompt and the ``--length`` sampled characters are printed.
"""
from __future__ import annotations

import inspect
import os

import numpy as np

from . import UsageError


def add_parser(subparsers, command):
    p = subparsers.add_parser("generate", help="sample text from a trained char_lstm / char_transformer",
                              description="Sample text, one character at a time, from a language-model "
                                          "checkpoint written by `minidl train char_lstm|char_transformer`.")
    p.add_argument("checkpoint", help="checkpoint file (DIR/best.npz or DIR/last.npz of `minidl train`)")
    p.add_argument("--prompt", default="\n", help="text to start from (default: a new line)")
    p.add_argument("--length", type=int, default=500, help="characters to sample (default 500)")
    p.add_argument("--temperature", type=float, default=0.8, help="softmax temperature; 0: greedy (default 0.8)")
    p.add_argument("--top-k", type=int, default=None, metavar="K", help="sample among the K likeliest characters")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--threads", type=int, default=1, help="compute threads (default 1)")
    p.set_defaults(handler=run_generate)


def next_char_distribution(logits, temperature, top_k):
    """Probabilities of the next character from one position's ``logits`` (1-D NumPy array)."""
    logits = np.asarray(logits, dtype=np.float64)
    if temperature == 0:
        probs = np.zeros_like(logits)
        probs[int(np.argmax(logits))] = 1.0
        return probs
    z = logits / temperature
    if top_k is not None and top_k < len(z):
        kth = np.sort(z)[-top_k]
        z = np.where(z >= kth, z, -np.inf)
    z = z - z.max()
    e = np.exp(z)
    return e / e.sum()


def load_language_model(path):
    """``(model, vocab, config)`` of a ``minidl train`` language-model checkpoint."""
    from minidl.datasets.text import CharVocab
    from minidl.train import load_model_state, read_trainer_metadata

    from .train import _builder
    from .train_text import build_text_model

    if os.path.isdir(path):
        raise UsageError(f"{path} is a folder: give the checkpoint file in it (e.g. {os.path.join(path, 'best.npz')})")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"checkpoint file not found: {path}")
    config = read_trainer_metadata(path).get("config", {})
    if config.get("task") != "text" or "vocab" not in config:
        raise UsageError(f"{path} is not a language-model checkpoint of `minidl train char_lstm|char_transformer`")
    vocab = CharVocab(config["vocab"])
    model = build_text_model(_builder(config["model"]), len(vocab), config.get("model_kwargs", {}))
    try:
        model.load_state_dict(load_model_state(path), strict=True)
    except RuntimeError as err:
        raise UsageError(f"{path} does not fit {config['model']} as recorded in it: {str(err)[:300]}") from None
    model.eval()
    return model, vocab, config


def sample(model, vocab, prompt, length, temperature=0.8, top_k=None, seed=0, context_len=None):
    """``prompt`` followed by ``length`` sampled characters (see the module docstring).

    ``context_len``: the most characters a stateless model (the transformer) reads, default its
    ``block_size``; ``minidl generate`` passes the window length it was trained on, since the position
    embeddings past it were never trained.
    """
    import minidl

    rng = np.random.default_rng(seed)
    ids = list(vocab.encode(prompt))
    stateful = "return_state" in inspect.signature(model.forward).parameters
    block = context_len or getattr(model, "block_size", None)
    state, pending = None, ids
    with minidl.no_grad():
        for _ in range(length):
            if stateful:  # feed only what the carried state has not seen
                logits, state = model(minidl.tensor(np.array([pending], dtype=np.int64)), state, return_state=True)
            else:
                context = ids[-block:] if block else ids
                logits = model(minidl.tensor(np.array([context], dtype=np.int64)))
            probs = next_char_distribution(logits.numpy()[0, -1], temperature, top_k)
            nxt = int(rng.choice(len(probs), p=probs))
            ids.append(nxt)
            pending = [nxt]
    return vocab.decode(ids)


def run_generate(args):
    if args.length < 0:
        raise UsageError(f"--length must be >= 0, got {args.length}")
    if not args.temperature >= 0:
        raise UsageError(f"--temperature must be >= 0, got {args.temperature}")
    if args.top_k is not None and args.top_k < 1:
        raise UsageError(f"--top-k must be >= 1, got {args.top_k}")
    if not args.prompt:
        raise UsageError("--prompt must hold at least one character")
    from .train import set_num_threads

    set_num_threads(args.threads)
    model, vocab, config = load_language_model(args.checkpoint)
    block = getattr(model, "block_size", None)
    context_len = min(block, config["seq_len"]) if block and config.get("seq_len") else block
    try:
        text = sample(model, vocab, args.prompt, args.length, args.temperature, args.top_k, args.seed, context_len)
    except ValueError as err:  # a prompt character outside the vocabulary
        raise UsageError(f"--prompt: {err}") from None
    print(text, flush=True)
    return 0
