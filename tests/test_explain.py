"""``minidl explain OP`` (issue 18 point 3): the printed steps are the right numbers.

Each op's steps are checked against PyTorch (or torchvision) on the same inputs, and the
printed text is parsed back to check that what a student reads is those numbers.
"""
import re

import numpy as np
import pytest

from minidl.cli import main
from minidl.explain import EXPLAINERS, OPS, chapter_path, explain


def _printed(text, title):
    """The number printed on the line ``title: value``."""
    match = re.search(rf"^{re.escape(title)}: (\S+)", text, re.M)
    assert match, f"no line {title!r} in:\n{text}"
    return float(match.group(1))


@pytest.mark.parametrize("op", sorted(EXPLAINERS))
def test_every_op_runs_and_agrees_with_its_reference_and_fast_kernel(op):
    e = explain(op)
    text = str(e)
    assert text.startswith(f"minidl explain {op}") and OPS[op][0] in text
    titles = [t for _, t, _, _ in e.steps]
    for title in titles:
        if title.startswith("max |") and "fast" not in title:
            assert e[title] < 1e-12, (title, e[title])  # float64 steps against the float64 reference
        elif title.startswith("max |"):
            assert e[title] < 1e-5, (title, e[title])  # the float32 fast kernel
    if op == "nms":
        assert e["reference equal"] and e["fast kernel equal"]
    else:
        assert e["gradcheck max abs error"] < 1e-6
        assert "passed" in text.splitlines()[-1]
        assert any("fast" in t for t in titles) and "== backward" in text


def test_conv2d_steps_match_torch_unfold_and_conv():
    torch = pytest.importorskip("torch")
    tF = torch.nn.functional
    e = explain("conv2d", shape=(1, 2, 5, 4), out_channels=3, kernel_size=(3, 2), stride=2, padding=1, dilation=1)
    x, w, b = (torch.tensor(e[k]) for k in ("input x", "weight", "bias"))
    col = tF.unfold(x, (3, 2), dilation=1, padding=1, stride=2)[0]  # (C*kh*kw, OH*OW) for one image
    np.testing.assert_allclose(e["im2col matrix"], col.numpy(), atol=1e-12)
    np.testing.assert_allclose(e["GEMM"], (w.reshape(3, -1) @ col).numpy(), atol=1e-12)
    x.requires_grad_(True), w.requires_grad_(True), b.requires_grad_(True)
    y = tF.conv2d(x, w, b, stride=2, padding=1)
    np.testing.assert_allclose(e["output y"], y.detach().numpy(), atol=1e-12)
    y.backward(torch.tensor(e["upstream gradient gy"]))
    np.testing.assert_allclose(e["grad x = col2im(grad columns)"], x.grad.numpy(), atol=1e-12)
    np.testing.assert_allclose(e["grad weight = gy matrix @ im2col matrix^T"], w.grad.numpy(), atol=1e-12)
    np.testing.assert_allclose(e["grad bias = gy summed over (N, OH, OW)"], b.grad.numpy(), atol=1e-12)


def test_depthwise_is_one_gemm_per_channel_and_matches_torch():
    torch = pytest.importorskip("torch")
    e = explain("depthwise", shape=(2, 3, 4, 4), multiplier=2, stride=2)
    assert e["weight"].shape == (6, 1, 3, 3)
    assert [t for _, t, _, _ in e.steps].count("GEMM of group 2") == 1 and e["GEMM of group 0"].shape == (2, 8)
    y = torch.nn.functional.conv2d(torch.tensor(e["input x"]), torch.tensor(e["weight"]), torch.tensor(e["bias"]),
                                   stride=2, padding=1, groups=3)
    np.testing.assert_allclose(e["output y"], y.numpy(), atol=1e-12)
    assert e["fast path"] == "direct"


def test_max_pool2d_argmax_map_is_torchs_indices():
    torch = pytest.importorskip("torch")
    e = explain("max_pool2d", shape=(2, 2, 5, 5), kernel_size=3, stride=2, padding=1, seed=3)
    x = torch.tensor(e["input x"], requires_grad=True)
    y, idx = torch.nn.functional.max_pool2d(x, 3, 2, 1, return_indices=True)
    np.testing.assert_array_equal(e["argmax map"], idx.numpy())
    np.testing.assert_allclose(e["output y"], y.detach().numpy())
    y.backward(torch.tensor(e["upstream gradient gy"]))
    np.testing.assert_allclose(e["grad x"], x.grad.numpy(), atol=1e-12)


def test_avg_pool2d_divisors_follow_count_include_pad():
    torch = pytest.importorskip("torch")
    e = explain("avg_pool2d", shape=(1, 1, 4, 4), kernel_size=3, stride=2, padding=1, count_include_pad=False)
    # 2x2 outputs: the windows hold 2x2, 2x3, 3x2 and 3x3 image pixels
    np.testing.assert_array_equal(e["divisors"], [[4, 6], [6, 9]])
    y = torch.nn.functional.avg_pool2d(torch.tensor(e["input x"]), 3, 2, 1, count_include_pad=False)
    np.testing.assert_allclose(e["output y"], y.numpy(), atol=1e-12)
    assert np.all(explain("avg_pool2d", kernel_size=3, stride=2, padding=1)["divisors"] == 9)


def test_batch_norm_statistics_and_running_update_match_torch():
    torch = pytest.importorskip("torch")
    e = explain("batch_norm", shape=(3, 2, 2, 3), momentum=0.2)
    x = torch.tensor(e["input x"], requires_grad=True)
    bn = torch.nn.BatchNorm2d(2, momentum=0.2).double()
    with torch.no_grad():
        bn.weight.copy_(torch.tensor(e["weight (gamma)"]))
        bn.bias.copy_(torch.tensor(e["bias (beta)"]))
    y = bn(x)
    np.testing.assert_allclose(e["mean"], x.detach().mean(dim=(0, 2, 3)).numpy(), atol=1e-12)
    np.testing.assert_allclose(e["var (biased, / M)"], x.detach().var(dim=(0, 2, 3), unbiased=False).numpy())
    np.testing.assert_allclose(e["running_mean after one step"], bn.running_mean.numpy(), atol=1e-12)
    np.testing.assert_allclose(e["running_var after one step"], bn.running_var.numpy(), atol=1e-12)
    np.testing.assert_allclose(e["output y = weight * xhat + bias"], y.detach().numpy(), atol=1e-12)
    y.backward(torch.tensor(e["upstream gradient gy"]))
    np.testing.assert_allclose(e["grad x = weight * invstd * (gy - mean(gy) - xhat * mean(gy * xhat))"],
                               x.grad.numpy(), atol=1e-12)
    assert e["values per channel M"] == 18


def test_cross_entropy_printed_loss_and_lse_are_torchs():
    torch = pytest.importorskip("torch")
    e = explain("cross_entropy", shape=(4, 5), label_smoothing=0.1, seed=2)
    z = torch.tensor(e["logits z"], requires_grad=True)
    target = torch.tensor(e["target"])
    loss = torch.nn.functional.cross_entropy(z, target, label_smoothing=0.1)
    text = str(e)
    assert _printed(text, "loss = mean") == pytest.approx(loss.item(), abs=5e-5)  # printed with 4 decimals
    np.testing.assert_allclose(e["lse = m + log sum exp(z - m)"], torch.logsumexp(z, 1).detach().numpy())
    loss.backward()
    np.testing.assert_allclose(e["grad z = (p - q) / N"], z.grad.numpy(), atol=1e-12)
    assert np.all(e["z - m"] <= 0) and np.allclose(e["z - m"].max(axis=1), 0)


def test_softmax_linear_relu_match_torch():
    torch = pytest.importorskip("torch")
    s = explain("softmax", shape=(3, 5))
    np.testing.assert_allclose(s["output y = exp(z - m) / sum"], torch.softmax(torch.tensor(s["input z"]), -1).numpy())
    lin = explain("linear", shape=(4, 3), out_features=2)
    x, w = torch.tensor(lin["input x"], requires_grad=True), torch.tensor(lin["weight W"], requires_grad=True)
    y = torch.nn.functional.linear(x, w, torch.tensor(lin["bias b"]))
    y.backward(torch.tensor(lin["upstream gradient gy"]))
    np.testing.assert_allclose(lin["output y = x @ W.T + b"], y.detach().numpy(), atol=1e-12)
    np.testing.assert_allclose(lin["grad W = gy^T @ x"], w.grad.numpy(), atol=1e-12)
    np.testing.assert_allclose(lin["grad x = gy @ W"], x.grad.numpy(), atol=1e-12)
    r = explain("relu")
    np.testing.assert_array_equal(r["output y = x where mask, else 0"], np.maximum(r["input x"], 0))


def test_nms_greedy_steps_are_consistent():
    e = explain("nms", shape=(8, 4), iou_threshold=0.4, seed=1)
    kept, iou, scores = e["kept"], e["IoU matrix"], e["scores"]
    assert list(scores[kept]) == sorted(scores[kept], reverse=True)
    for i in kept:  # no two kept boxes overlap above the threshold
        assert all(iou[i, j] <= 0.4 for j in kept if j != i)
    for j in set(range(8)) - set(kept):  # every dropped box overlaps a kept box of higher score
        assert any(iou[i, j] > 0.4 and (scores[i], -i) > (scores[j], -j) for i in kept)
    assert e["greedy steps"].count("kept;") == len(kept)


def test_roi_align_matches_torchvision():
    torch = pytest.importorskip("torch")
    try:
        import torchvision
    except Exception as err:  # noqa: BLE001 - a broken torchvision build is a skip, not a failure
        pytest.skip(f"torchvision does not import: {err}")
    e = explain("roi_align", shape=(1, 2, 7, 6), output_size=(2, 3), sampling_ratio=2, aligned=True, seed=4)
    y = torchvision.ops.roi_align(torch.tensor(e["input x"]), torch.tensor(e["box (batch index, x1, y1, x2, y2)"]),
                                  (2, 3), 1.0, 2, aligned=True)
    np.testing.assert_allclose(e["output y"], y.numpy(), atol=1e-12)
    assert e["bin (0, 0): average"] == pytest.approx(y[0, 0, 0, 0].item())


def test_cli_prints_steps_options_and_chapter(capsys):
    assert main(["explain", "conv2d", "--shape", "1x1x3x3", "--kernel-size", "2", "--padding", "0",
                 "--out-channels", "1", "--no-bias"]) == 0
    out = capsys.readouterr().out
    assert "im2col matrix (4, 4)" in out and "output y (1, 1, 2, 2)" in out and "GEMM + bias" not in out
    assert _printed(out, "gradcheck max abs error") < 1e-6
    assert main(["explain", "batch_norm", "--chapter"]) == 0
    assert capsys.readouterr().out.strip().endswith("docs/batch_norm.md")
    assert chapter_path("depthwise").endswith("docs/grouped_depthwise.md")
    assert main(["explain", "nms", "--kernel-size", "3"]) == 2
    assert "does not apply to nms" in capsys.readouterr().err
    assert main(["explain", "pooling"]) == 2
    assert "unknown op 'pooling'" in capsys.readouterr().err
