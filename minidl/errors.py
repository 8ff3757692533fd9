"""minidl's error types for files and data (one module, so every reader raises the same kinds).

Every malformed-file error is a ``ValueError`` subclass whose message names the file and what is
wrong with it, so a caller (and the CLI, which prints one line for each) can catch
``ValueError`` or :class:`FileFormatError` without knowing which reader raised it.

>>> try:
...     raise CheckpointError("run/last.npz", "the array 'model/fc.weight' has shape (2, 3), expected (3, 2)")
... except ValueError as err:
...     print(err)
run/last.npz: the array 'model/fc.weight' has shape (2, 3), expected (3, 2)
"""
from __future__ import annotations

import os

__all__ = ["FileFormatError", "CheckpointError", "DatasetFormatError", "UnsafeFileError"]


class FileFormatError(ValueError):
    """A file that cannot be read as what it claims to be. ``path`` names it; the message says why."""

    def __init__(self, path, reason):
        self.path = None if path is None else os.fspath(path)
        self.reason = reason
        super().__init__(reason if path is None else f"{self.path}: {reason}")


class CheckpointError(FileFormatError):
    """A checkpoint or weights file (.npz, .pth/.pt, .safetensors) that is malformed or does not fit."""


class DatasetFormatError(FileFormatError):
    """A dataset file (IDX, CIFAR batch, CSV, image, archive) that is malformed."""


class UnsafeFileError(FileFormatError):
    """A file that asks for something minidl never does while reading data: run code, build
    arbitrary objects, allocate more than the file holds.

    ``UnsafeFileError(path, reason)``, or ``UnsafeFileError(reason)`` where it is raised deep
    inside an unpickler that does not know the path (the reader's entry point fills it in).
    """

    def __init__(self, path, reason=None):
        if reason is None:
            path, reason = None, path
        super().__init__(path, reason)
