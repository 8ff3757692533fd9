"""Where a training step's time goes: per-op timing of every Function's forward and backward.

While a :func:`profile` is active, the Tensor floor times each Function's ``forward`` (in
``minidl.tensor.apply``) and each ``backward`` (in the graph walk), and adds the seconds and
one call to that Function class and phase. Inactive, it costs one module-attribute test per op.
The caller times what is not an op: a whole step (:meth:`Profile.step`) and regions such as the
optimizer (:meth:`Profile.region`); "Python overhead" is then the step time the ops and the
regions do not account for (Module calls, argument checks, building the graph, the backward
walk itself with its gradient sums for tensors used twice).

>>> from minidl.profiler import profile                        # doctest: +SKIP
>>> with profile() as prof:                                   # doctest: +SKIP
...     for _ in range(3):
...         with prof.step():
...             loss = F.cross_entropy(model(x), y)
...             loss.backward()
...             with prof.region("optimizer"):
...                 opt.step()
>>> print(prof.format_table())                                # doctest: +SKIP

The timings are process-wide: ops run by other threads while a profile is active count too.
No imports from the rest of minidl: the Tensor floor reads :data:`active` on every op.
"""
from __future__ import annotations

import contextlib
import time

# The Profile collecting now, or None. Read by minidl.tensor (apply and the backward walk).
active = None

# Function classes by the module that defines them; a class elsewhere (ops/, a user's
# autograd.Function) is an "other op" unless named below.
_CATEGORY_OF_MODULE = {
    "minidl.functions.conv": "conv",
    "minidl.functions.norm": "batch-norm",  # batch-norm (train and eval) and local response norm
    "minidl.functions.activation": "activation",
    "minidl.functions.pooling": "pooling",
    "minidl.functions.loss": "loss",
}
_CATEGORY_OF_CLASS = {
    ("minidl.functions.arith", "MatMul"): "linear/matmul",  # F.linear is MatMul, Permute (W.T) and Add
    ("minidl.functions.activation", "MaskMultiply"): "other ops",  # dropout's mask, not an activation
}

# The rows of the summary, in order; "conv" splits into forward and backward.
CATEGORIES = ("conv forward", "conv backward", "batch-norm", "activation", "pooling", "loss", "linear/matmul",
              "other ops", "optimizer", "Python overhead")


def category(function_class, phase):
    """The summary row of one Function class in one phase ("forward" or "backward")."""
    module = function_class.__module__
    name = _CATEGORY_OF_CLASS.get((module, function_class.__name__)) or _CATEGORY_OF_MODULE.get(module, "other ops")
    return f"conv {phase}" if name == "conv" else name


class Profile:
    """Seconds and calls per (Function class, phase), per caller-timed region, and over whole steps."""

    def __init__(self):
        self.ops = {}  # (Function class, "forward" | "backward") -> [seconds, calls]
        self.regions = {}  # region name -> [seconds, calls], seconds excluding the ops timed inside
        self.wall = 0.0  # seconds inside step()
        self.steps = 0
        self._op_seconds = 0.0  # running total of self.ops, to keep regions exclusive of ops

    def add(self, function_class, phase, seconds):
        """Called by the Tensor floor for each timed forward or backward."""
        entry = self.ops.get((function_class, phase))
        if entry is None:
            self.ops[(function_class, phase)] = [seconds, 1]
        else:
            entry[0] += seconds
            entry[1] += 1
        self._op_seconds += seconds

    @contextlib.contextmanager
    def region(self, name):
        """Time a block that is not an op (``"optimizer"``); ops run inside it count as ops, not twice."""
        start, ops_before = time.perf_counter(), self._op_seconds
        try:
            yield self
        finally:
            seconds = time.perf_counter() - start - (self._op_seconds - ops_before)
            entry = self.regions.setdefault(name, [0.0, 0])
            entry[0] += seconds
            entry[1] += 1

    @contextlib.contextmanager
    def step(self):
        """Time one whole step (the wall time that the summary splits into categories)."""
        start = time.perf_counter()
        try:
            yield self
        finally:
            self.wall += time.perf_counter() - start
            self.steps += 1

    def calls(self, name, phase):
        """How many times Function class ``name`` ran ``phase`` (0 if never)."""
        return sum(calls for (cls, p), (_, calls) in self.ops.items() if cls.__name__ == name and p == phase)

    def summary(self):
        """Seconds per category, summed over all steps: :data:`CATEGORIES` in order (a region with
        another name gets its own entry before "Python overhead"), then ``"step"``: the wall time.

        "Python overhead" is the step time that nothing else accounts for, never below zero
        (0 when no step was timed).
        """
        out = dict.fromkeys(CATEGORIES[:-1], 0.0)
        for (cls, phase), (seconds, _) in self.ops.items():
            out[category(cls, phase)] += seconds
        for name, (seconds, _) in self.regions.items():
            out[name] = out.get(name, 0.0) + seconds
        out["Python overhead"] = max(0.0, self.wall - sum(out.values()))
        out["step"] = self.wall
        return out

    def format_table(self):
        """A markdown table: ms per step and share of the step, per category."""
        summary = self.summary()
        steps = max(self.steps, 1)
        lines = ["| category | ms per step | % of step |", "| --- | ---: | ---: |"]
        for name in summary:
            share = 100.0 * summary[name] / summary["step"] if summary["step"] else 0.0
            lines.append(f"| {name} | {1000.0 * summary[name] / steps:.2f} | {share:.1f} |")
        return "\n".join(lines)


@contextlib.contextmanager
def profile():
    """Context manager: time every op while active; yields the :class:`Profile`. Not reentrant."""
    global active
    if active is not None:
        raise RuntimeError("minidl.profiler.profile: a profile is already active")
    prof = Profile()
    active = prof
    try:
        yield prof
    finally:
        active = None
