"""The main jobs of issues 2 and 3, run as a user runs them (``minidl train MODEL``, defaults only).

- ``minidl train mlp``: >= 95% test accuracy on the embedded digits in under 30 s on a 2-core CPU.
- ``minidl train lenet5``: >= 97% test accuracy (digits upsampled to 32x32) in under 60 s.

The wall time is measured around the whole command (data loading, model building, training,
validation, test evaluation), in this process; Numba kernels come from the on-disk cache after
the first run of the suite.
"""
import re
import time

import pytest

from minidl.cli import main

ACCURACY = re.compile(r"test accuracy: ([\d.]+)% \((\d+) images\), ([\d.]+) s")


def _run(capsys, model):
    start = time.perf_counter()
    rc = main(["train", model, "--quiet"])
    wall = time.perf_counter() - start
    out = capsys.readouterr().out
    match = ACCURACY.search(out)
    assert rc == 0 and match, out
    assert match.group(2) == "359"  # the whole fixed test split
    return float(match.group(1)), wall


@pytest.mark.parametrize("model, min_accuracy, max_seconds", [("mlp", 95.0, 30.0), ("lenet5", 97.0, 60.0)])
def test_main_job(capsys, model, min_accuracy, max_seconds):
    accuracy, wall = _run(capsys, model)
    print(f"minidl train {model}: {accuracy:.1f}% in {wall:.1f} s")
    assert accuracy >= min_accuracy, f"{model}: {accuracy}% < {min_accuracy}%"
    assert wall < max_seconds, f"{model}: {wall:.1f} s >= {max_seconds} s"
