"""Checks the CLI makes before the first batch, shared by its subcommands: the folders it will write,
the images it will read."""
from __future__ import annotations

import os
import tempfile

from . import UsageError

__all__ = ["check_writable_folder", "image_problem", "make_folder", "unreadable_summary"]


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


def image_problem(path):
    """None if ``path`` opens and decodes as an image, else the reason (one line)."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            image.load()
    except Exception as err:  # Pillow raises OSError, SyntaxError, ValueError, zlib and struct errors
        return " ".join((str(err) or type(err).__name__).split())
    return None


def unreadable_summary(problems, what, shown=3):
    """One line naming the first ``shown`` unreadable files of ``problems`` ({path: reason or None})."""
    bad = sorted((p, why) for p, why in problems.items() if why is not None)
    if not bad:
        return None
    names = "; ".join(f"{path} ({why})" for path, why in bad[:shown])
    more = f" and {len(bad) - shown} more" if len(bad) > shown else ""
    return f"{len(bad)} file(s) of {what} do not open as images: {names}{more}"
