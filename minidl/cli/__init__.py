"""The ``minidl`` command line: one module per subcommand, each with ``add_parser`` and ``run``.

Errors a user can fix (unknown model, missing file, bad option) print one line and exit with code 2.
"""
from __future__ import annotations

import argparse
import importlib
import sys

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
}


class UsageError(Exception):
    """A problem with the user's input: reported in one line, exit code 2."""


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="minidl", description="minidl: deep learning from scratch on NumPy")
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
    args = parser.parse_args(argv)
    try:
        return args.handler(args) or 0
    except (UsageError, FileNotFoundError, ValueError) as exc:
        print(f"minidl {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
