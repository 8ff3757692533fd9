"""Checks the CLI makes before the first batch, shared by its subcommands: folders it will write."""
from __future__ import annotations

import os
import tempfile

from . import UsageError

__all__ = ["check_writable_folder", "make_folder"]


def check_writable_folder(path, option):
    """Raise UsageError unless ``path`` is (or can be created as) a folder this process can write.

    Nothing is created: the nearest existing ancestor must be a folder, and a probe file is written
    into it (and removed), which is what a read-only folder or file system refuses. The folder
    itself is created by :func:`make_folder` once every other check has passed.
    """
    path = os.path.abspath(os.path.expanduser(os.fspath(path)))
    existing = path
    while not os.path.lexists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        what = "is a file" if existing == path else f"cannot be created: {existing} is a file"
        raise UsageError(f"{option} {path} {what}, not a folder")
    try:
        with tempfile.NamedTemporaryFile(dir=existing, prefix=".minidl-probe-"):
            pass
    except OSError as err:
        raise UsageError(f"{option} {path}: cannot write into {existing} ({err.strerror or err})") from None


def make_folder(path, option):
    """Create ``path`` (checked by :func:`check_writable_folder`); one line on failure."""
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as err:
        raise UsageError(f"{option} {path}: cannot create the folder ({err.strerror or err})") from None
