"""Numba compiles minidl's CPU kernels on their first call: say so when that takes a while.

A first run (an empty Numba cache) spends seconds in the compiler before its first batch;
the machine code is then kept in ``__pycache__`` next to the kernels, and later runs load
it. :func:`announce_compilation` listens to Numba's compile events and prints one line,
``compiling kernels (first run only) ...``, once the compiling done in this process has
taken more than ``threshold`` seconds: while the compiler is still at work (a timer
thread), not after it. A run whose kernels all load from the cache never compiles, so it
prints nothing. The command line turns it on for the commands that run kernels.

>>> announce_compilation(threshold=60.0).shown
False
"""
from __future__ import annotations

import sys
import threading
import time

from numba.core import event

NOTICE = "compiling kernels (first run only) ..."

_listener = None  # the process's one listener, once announce_compilation has been called


def _print_to_stderr(line):
    print(line, file=sys.stderr, flush=True)


class CompileNotice(event.Listener):
    """Adds up the seconds of outermost Numba compiles and shows :data:`NOTICE` past ``threshold``."""

    def __init__(self, threshold, write):
        self.threshold = threshold
        self.write = write
        self.seconds = 0.0  # spent in finished compiles so far
        self.shown = False
        self._depth = 0  # compiles nest (a kernel compiles its helpers); Numba compiles one at a time
        self._started = None
        self._timer = None
        self._lock = threading.Lock()

    def on_start(self, event):
        self._depth += 1
        if self._depth > 1 or self.shown:
            return
        self._started = time.perf_counter()
        # shows the notice while this compile is still running, once the total passes the threshold
        self._timer = threading.Timer(max(0.0, self.threshold - self.seconds), self._show)
        self._timer.daemon = True
        self._timer.start()

    def on_end(self, event):
        self._depth -= 1
        if self._depth > 0 or self._started is None:
            return
        self.seconds += time.perf_counter() - self._started
        self._started = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self.seconds > self.threshold:
            self._show()

    def _show(self):
        with self._lock:
            if self.shown:
                return
            self.shown = True
        self.write(NOTICE)


def announce_compilation(threshold=1.0, write=None):
    """Print :data:`NOTICE` once in this process when Numba compiling passes ``threshold`` seconds.

    ``write`` is called with the line (default: print it on stderr); a caller showing
    progress bars passes one that writes above them (``tqdm.write``). Nested compiles (a
    kernel's helpers) count once, inside their kernel's. Calling it again (a second command
    in the same process) keeps the one listener, gives it the new ``threshold`` and
    ``write`` and counts from zero again; the notice still shows at most once per process.
    Returns the listener.
    """
    global _listener
    if _listener is None:
        _listener = CompileNotice(threshold, write or _print_to_stderr)
        event.register("numba:compile", _listener)
    else:
        _listener.threshold = threshold
        _listener.write = write or _print_to_stderr
        _listener.seconds = 0.0
    return _listener


def silence_in_this_process():
    """No notice from this process (a worker whose siblings already announce for the command)."""
    if _listener is not None:
        _listener.shown = True
