"""minidl.profiler: per-op times by category on a tiny training step (counts and sums, never timings)."""
import contextlib

import numpy as np
import pytest

import minidl
import minidl.nn as nn
import minidl.nn.functional as F
from minidl import profiler
from minidl.optim import SGD


def _tiny_model():
    minidl.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(4, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 4 * 4, 5))


def _data():
    rng = np.random.default_rng(0)
    return minidl.tensor(rng.standard_normal((2, 3, 8, 8)).astype(np.float32)), minidl.tensor(np.array([1, 3]))


def _train_step(model, opt, x, y, prof=None):
    with prof.step() if prof else contextlib.nullcontext():
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        with prof.region("optimizer") if prof else contextlib.nullcontext():
            opt.step()
    return loss


def test_profile_counts_ops_and_splits_the_step():
    model = _tiny_model()
    opt = SGD(model.parameters(), lr=0.1, momentum=0.9)
    x, y = _data()
    with profiler.profile() as prof:
        for _ in range(2):
            _train_step(model, opt, x, y, prof)
    assert prof.steps == 2
    # two convolutions per step: two forwards and two backwards each step
    assert prof.calls("Conv2d", "forward") == 4
    assert prof.calls("Conv2d", "backward") == 4
    assert prof.calls("BatchNormTrain", "forward") == 2 and prof.calls("BatchNormTrain", "backward") == 2
    assert prof.calls("ReLU", "forward") == 4
    assert prof.calls("MaxPool2d", "forward") == 2
    assert prof.calls("SoftmaxCrossEntropy", "backward") == 2
    assert prof.calls("MatMul", "forward") == 2

    summary = prof.summary()
    assert list(summary) == list(profiler.CATEGORIES) + ["step"]
    for name in ("conv forward", "conv backward", "batch-norm", "activation", "pooling", "loss", "linear/matmul",
                 "other ops", "optimizer"):
        assert summary[name] > 0, name
    parts = sum(v for k, v in summary.items() if k != "step")
    assert parts <= summary["step"] * (1 + 1e-9)
    assert sum(v for k, v in summary.items() if k not in ("step", "Python overhead")) <= prof.wall
    table = prof.format_table()
    assert "| conv backward |" in table and "| Python overhead |" in table


def test_categories_follow_the_function_modules():
    from minidl.functions import activation, arith, conv, norm, pooling

    assert profiler.category(conv.Conv2d, "forward") == "conv forward"
    assert profiler.category(conv.Conv2d, "backward") == "conv backward"
    assert profiler.category(norm.BatchNormTrain, "backward") == "batch-norm"
    for cls in (activation.ReLU, activation.ReLU6, activation.Tanh, activation.Sigmoid, activation.SiLU):
        assert profiler.category(cls, "forward") == "activation"
    assert profiler.category(activation.MaskMultiply, "forward") == "other ops"  # dropout
    assert profiler.category(pooling.MaxPool2d, "forward") == "pooling"
    assert profiler.category(arith.MatMul, "backward") == "linear/matmul"
    assert profiler.category(arith.Add, "forward") == "other ops"


def test_inactive_profiler_leaves_results_and_records_untouched():
    x, y = _data()
    losses, grads = [], []
    for profiled in (False, True, False):
        model = _tiny_model()
        opt = SGD(model.parameters(), lr=0.1, momentum=0.9)
        if profiled:
            with profiler.profile() as prof:
                loss = _train_step(model, opt, x, y, prof)
        else:
            loss = _train_step(model, opt, x, y)
        losses.append(float(loss.item()))
        grads.append([p.grad.numpy().copy() for p in model.parameters()])
    assert losses[0] == losses[1] == losses[2]
    for a, b in zip(grads[0], grads[1]):
        np.testing.assert_array_equal(a, b)

    recorded = {key: list(value) for key, value in prof.ops.items()}
    assert profiler.active is None
    model = _tiny_model()
    _train_step(model, SGD(model.parameters(), lr=0.1), x, y)  # after the block: nothing recorded
    assert {key: list(value) for key, value in prof.ops.items()} == recorded


def test_profile_is_not_reentrant_and_always_deactivates():
    with pytest.raises(ValueError):
        with profiler.profile():
            raise ValueError("boom")
    assert profiler.active is None
    with profiler.profile():
        with pytest.raises(RuntimeError, match="already active"):
            with profiler.profile():
                pass
    assert profiler.active is None
