"""The ``minidl`` command line: one module per subcommand, each with ``add_parser`` and ``run``.

One error contract: every error a user can fix (unknown model, missing or malformed file, bad
option, a folder that cannot be written, a full disk, too little memory, an image Pillow cannot
read) prints exactly one line, ``minidl: error: ...``, on stderr and exits with code 2; Ctrl-C
prints one line and exits with 130; a training run that diverges (FloatingPointError: a non-finite
loss) prints one line and exits with 1. ``--debug`` (anywhere on the command line) or
``MINIDL_DEBUG=1`` prints the traceback instead. Any other exception is a bug in minidl: it is
reported in one line too, with the hint to rerun with ``--debug``, and exits with code 1.

The commands that run kernels print ``compiling kernels (first run only) ...`` on stderr once
Numba has compiled for more than a second in the run (``MINIDL_COMPILE_NOTICE_SECONDS``
changes the second); a run whose kernels load from Numba's cache prints nothing.
"""
from __future__ import annotations

import argparse
import errno
import importlib
import os
import sys
import traceback
import warnings

# subcommand -> module under minidl.cli
COMMANDS = {
    "train": "train",
    "evaluate": "train",
    "gradcheck": "gradcheck",
    "models": "models",
    "summary": "models",
    "bench": "bench",
    "detect": "detect",
    "convert": "weights",
    "predict": "weights",
    "generate": "generate",
    # issue 17: the seeds' transfer-learning studies as commands
    "lr-find": "lr_find",
    "sweep": "sweep",
}
# issue 18: pictures of the graph, and the ops explained step by step
COMMANDS.update({"graph": "graph", "explain": "explain"})

# the subcommands that run kernels, which Numba compiles on a first run
COMPILING = ("train", "evaluate", "gradcheck", "bench", "detect", "summary", "predict", "generate",
             "lr-find", "sweep")
COMPILING += ("graph", "explain")  # issue 18

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130
EXIT_INTERNAL_ERROR = 1
EXIT_TRAINING_FAILED = 1  # training diverged (a non-finite loss): not a bug, not a bad input


class UsageError(Exception):
    """A problem with the user's input: reported in one line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    """argparse's parser, reporting a bad command line in the one-line form (usage via --help)."""

    def error(self, message):
        self.exit(EXIT_USER_ERROR, f"minidl: error: {message} (see `{self.prog} --help`)\n")


def _user_errors():
    """The exception types that are the user's to fix (exit 2, one line, no traceback)."""
    kinds = [UsageError, ValueError, TypeError, OSError, MemoryError, OverflowError, RecursionError,
             UnicodeError, EOFError]
    try:  # Pillow's own errors that are not OSError/ValueError subclasses
        from PIL import Image

        kinds.append(Image.DecompressionBombError)
    except ImportError:  # pragma: no cover - Pillow is a dependency
        pass
    return tuple(kinds)


def _describe(exc):
    """The one-line message for ``exc`` (no newlines; names the file for OS errors)."""
    if isinstance(exc, MemoryError):
        detail = str(exc).strip()
        text = "out of memory" + (f" ({detail})" if detail else "") + ": use a smaller --batch-size or model"
    elif isinstance(exc, RecursionError):
        text = f"input nested too deeply to read ({exc})"
    elif isinstance(exc, OSError) and exc.strerror and not type(exc).__module__.startswith("PIL"):
        text = exc.strerror
        if exc.filename is not None:
            text = f"{os.fspath(exc.filename)}: {text}"
        if exc.filename2 is not None:
            text += f" (-> {os.fspath(exc.filename2)})"
        if exc.errno == errno.ENOSPC:
            text += ": free some space or write elsewhere"
    else:
        text = str(exc) or type(exc).__name__
    if isinstance(exc, (TypeError, RecursionError)):  # input that is wrong, or a bug: say how to tell
        text += " (rerun with --debug for the traceback)"
    return " ".join(text.split())  # one line, however the message was written


def _debug_requested(argv):
    """``(argv without --debug, debug?)``: the flag counts anywhere before a ``--``."""
    end = argv.index("--") if "--" in argv else len(argv)
    debug = "--debug" in argv[:end]
    rest = [a for a in argv[:end] if a != "--debug"] + argv[end:]
    return rest, debug or os.environ.get("MINIDL_DEBUG", "").strip() not in ("", "0")


def _write_above_bars(line):
    from tqdm import tqdm

    tqdm.write(line, file=sys.stderr)  # above a progress bar that is being drawn, not through it


def _announce_compilation():
    """The one-line notice when a first run waits on Numba's compiler (``minidl.compilation``)."""
    from minidl.compilation import announce_compilation

    text = os.environ.get("MINIDL_COMPILE_NOTICE_SECONDS", "").strip()
    try:
        threshold = float(text) if text else 1.0
    except ValueError:
        raise UsageError(f"MINIDL_COMPILE_NOTICE_SECONDS must be a number of seconds, got {text!r}") from None
    announce_compilation(threshold, write=_write_above_bars)


def _first_run_helper(argv):
    """Record the kernels this run compiles (MINIDL_RECORD_KERNELS=path), or on a first run start the helper
    process that compiles the back half of them (``minidl.compilation.precompile_in_background``); returns
    its :class:`minidl.compilation.FirstRun` or None.

    Called on the raw arguments before the parser is built, so that the helper starts as early as it can.
    Manifests exist for a command's default settings (``train lenet5``: the digits, one thread, the CPU);
    other settings compile other kernels, so they get no helper."""
    path = os.environ.get("MINIDL_RECORD_KERNELS", "").strip()
    if path:
        from minidl import compilation

        compilation.record_kernels(path)
        return None
    settings = ("--dataset", "--threads", "--device", "--distributed", "--weights")
    if (len(argv) >= 2 and argv[0] == "train" and not argv[1].startswith("-")
            and not any(a.split("=")[0] in settings for a in argv)):
        from minidl import compilation

        return compilation.precompile_in_background(f"train-{argv[1]}")
    return None


def build_parser():
    parser = _Parser(prog="minidl", description="minidl: deep learning from scratch on NumPy")
    parser.add_argument("--debug", action="store_true",
                        help="show the traceback of an error instead of one line (also MINIDL_DEBUG=1); "
                             "accepted anywhere on the command line")
    sub = parser.add_subparsers(dest="command", required=True)
    loaded = {}
    for command, module_name in COMMANDS.items():
        try:
            module = loaded.get(module_name) or importlib.import_module(f"minidl.cli.{module_name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"minidl.cli.{module_name}":
                continue  # that subcommand is not part of this build
            raise
        loaded[module_name] = module
        module.add_parser(sub, command)
    return parser


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    argv, debug = _debug_requested(argv)
    first_run = _first_run_helper(argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    args.debug = debug
    try:
        if args.command in COMPILING:
            _announce_compilation()
        if first_run is not None:
            first_run.compile_front()  # this process's half of the kernels; the helper compiles the rest
        with warnings.catch_warnings():
            if not debug:
                # NumPy's overflow/invalid-value warnings from a diverging run: the Trainer stops at the
                # first non-finite loss or gradient with one line of its own, so they only add noise
                warnings.filterwarnings("ignore", category=RuntimeWarning, module=r"minidl\.")
            return args.handler(args) or 0
    except KeyboardInterrupt:
        if debug:
            traceback.print_exc()
        print("minidl: error: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except FloatingPointError as exc:  # a non-finite loss or gradient: one line naming where, exit 1
        if debug:
            traceback.print_exc()
        else:
            print(f"minidl: error: {_describe(exc)}", file=sys.stderr)
        return EXIT_TRAINING_FAILED
    except _user_errors() as exc:
        if debug:
            traceback.print_exc()
            return EXIT_USER_ERROR
        print(f"minidl: error: {_describe(exc)}", file=sys.stderr)
        return EXIT_USER_ERROR
    except Exception as exc:  # a bug in minidl: still one line, the traceback on request
        if debug:
            traceback.print_exc()
            return EXIT_INTERNAL_ERROR
        print(f"minidl: error: internal error ({type(exc).__name__}: {_describe(exc)}); "
              "rerun with --debug for the traceback and report it", file=sys.stderr)
        return EXIT_INTERNAL_ERROR


if __name__ == "__main__":
    sys.exit(main())
