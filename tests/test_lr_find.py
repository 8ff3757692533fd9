"""The learning-rate range test (issue 17, point 2): ``minidl.lr_finder`` and ``minidl lr-find``."""
import re

import numpy as np
import pytest

import minidl
from minidl import nn, optim
from minidl.cli import main
from minidl.data import DataLoader, TensorDataset
from minidl.lr_finder import LRFinder, suggest_lr

PNG = b"\x89PNG\r\n\x1a\n"


def test_suggestions_on_a_known_curve():
    lrs = np.logspace(-6, 0, 61)  # ten points a decade
    x = np.log10(lrs)
    smoothed = 2.0 - np.tanh(2 * (x + 3)) + np.where(x > -1, 50 * (x + 1) ** 2, 0.0)  # falls fastest at 1e-3
    lr, at_min = suggest_lr(lrs, smoothed, "steepest")
    assert lr == pytest.approx(1e-3)
    assert at_min == lrs[np.argmin(smoothed)]
    assert suggest_lr(lrs, smoothed, "min10") == (pytest.approx(at_min / 10), at_min)
    with pytest.raises(ValueError, match="at least 3 are needed"):
        suggest_lr(lrs[:2], smoothed[:2])


def _setup(seed=0):
    minidl.manual_seed(seed)
    model = nn.Sequential(nn.Linear(8, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, 3))
    x = minidl.randn(64, 8)
    y = minidl.tensor(np.argmax(x.numpy()[:, :3], axis=1))
    return model, DataLoader(TensorDataset(x, y), batch_size=16, shuffle=True, seed=seed)


def test_range_test_ramps_smooths_stops_and_restores():
    model, loader = _setup()
    opt = optim.SGD(model.parameters(), lr=0.123, momentum=0.9)
    before = {k: v.numpy().copy() for k, v in model.state_dict().items()}
    finder = LRFinder(model, opt)
    result = finder.range_test(loader, start_lr=1e-4, end_lr=1e4, num_iter=60)
    # an exponential ramp: a constant ratio from start_lr, reaching end_lr at step num_iter
    ratio = (1e4 / 1e-4) ** (1 / 59)
    np.testing.assert_allclose(result.lrs, 1e-4 * ratio ** np.arange(len(result.lrs)), rtol=1e-9)
    # the smoothed loss: s_i = 0.05 loss_i + 0.95 s_{i-1}
    s = result.smoothed
    np.testing.assert_allclose(s[1:], 0.05 * np.array(result.losses[1:]) + 0.95 * np.array(s[:-1]), rtol=1e-12)
    assert s[0] == result.losses[0]
    # lr 1e4 diverges: stopped before the end, on a smoothed loss over 4x the best (or a non-finite step)
    assert result.diverged and len(result.lrs) < 60
    assert s[-1] > 4 * min(s) or len(result.lrs) < 59
    assert result.lrs[0] <= result.suggested_lr <= result.min_loss_lr
    # weights, running statistics and optimizer restored
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(v.numpy(), before[k], err_msg=k)
    assert opt.param_groups[0]["lr"] == 0.123 and opt.state_dict()["state"] == {}
    assert model.training is True


def test_plot_is_a_png(tmp_path):
    pytest.importorskip("matplotlib")
    model, loader = _setup()
    finder = LRFinder(model, optim.SGD(model.parameters(), lr=0.1))
    finder.range_test(loader, start_lr=1e-3, end_lr=1.0, num_iter=10)
    path = finder.plot(tmp_path / "lr.png")
    assert open(path, "rb").read(8) == PNG


def test_lr_find_cli_prints_a_suggestion_and_writes_the_plot(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    rc = main(["lr-find", "mlp", "--steps", "25", "--start-lr", "1e-4", "--end-lr", "100", "--quiet",
               "--plot", str(tmp_path / "lr.png")])
    out, err = capsys.readouterr()
    assert rc == 0, err
    match = re.search(r"suggested lr: ([\d.e+-]+) \(steepest descent of the smoothed loss\); lowest smoothed loss "
                      r"[\d.]+ at lr ([\d.e+-]+); (\d+) steps", out)
    assert match, out
    suggested, at_min, steps = float(match.group(1)), float(match.group(2)), int(match.group(3))
    assert 1e-4 <= suggested <= at_min <= 100 and 3 <= steps <= 25
    assert (tmp_path / "lr.png").read_bytes()[:8] == PNG


def test_lr_find_cli_errors(capsys):
    assert main(["lr-find", "mlp", "--start-lr", "1", "--end-lr", "0.1"]) == 2
    assert "need 0 < --start-lr < --end-lr" in capsys.readouterr().err
    assert main(["lr-find", "mlp", "--steps", "2"]) == 2
    assert "--steps must be >= 3" in capsys.readouterr().err
