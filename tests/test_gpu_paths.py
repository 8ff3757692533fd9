"""minidl's GPU code paths run on the CPU: a CuPy double (tests/fake_cupy) plus the Numba CUDA simulator.

Each test runs a short script in a child process where ``import cupy`` gives the double and
``NUMBA_ENABLE_CUDASIM=1`` runs the CUDA kernels thread by thread. The double refuses what CuPy
refuses (a host array inside a device operation, ``cupy.ascontiguousarray(numpy_array)``), hands
a kernel launched with a host array an error (numba-cuda would copy it both ways, synchronising),
and counts every device-to-host transfer: each one stalls a GPU until its queue drains. So these
tests check, without a GPU, what a GPU run depends on: which device each tensor lives on, that a
training step reads nothing back but the loss the Trainer prints, and that empty batches launch
nothing. Whether the kernels are fast, and compile, on a real GPU waits for one
(``scripts/gpu_first_run.sh``).
"""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FAKE = os.path.join(ROOT, "tests", "fake_cupy")

PRELUDE = """
import numpy as np
import cupy
cupy.install_kernel_audit()
import minidl
import minidl.nn.functional as F
"""


def _run(code, timeout=240):
    pytest.importorskip("numba.cuda")
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1", PYTHONPATH=os.pathsep.join([FAKE, ROOT]),
               OMP_NUM_THREADS="1", NUMBA_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-c", PRELUDE + textwrap.dedent(code)], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    return proc.stdout


def test_tensors_are_made_on_the_device_as_leaves_and_move_once():
    _run("""
    x = minidl.randn(2, 3, device="cuda", requires_grad=True)
    assert type(x.data) is cupy.ndarray and x.is_leaf and x.device == minidl.device("cuda:0")
    z = minidl.zeros_like(x, requires_grad=True)
    assert z.is_leaf and type(z.data) is cupy.ndarray
    (x * x).sum().backward()
    assert type(x.grad.data) is cupy.ndarray, type(x.grad.data)   # the gradient stays on the device
    np.testing.assert_allclose(x.grad.data.get(), 2 * x.data.get())
    host = minidl.randn(4, 5)
    cupy.reset_counters()
    moved = host.to("cuda")
    assert cupy.counters == {"d2h": 0, "h2d": 1}, cupy.counters    # one copy per .to()
    assert moved.to("cuda") is moved and moved.cuda() is moved
    cupy.reset_counters()
    back = moved.cpu()
    assert cupy.counters["d2h"] == 1 and type(back.data) is np.ndarray
    """)


def test_lenet5_training_step_reads_nothing_back_to_the_host():
    out = _run("""
    from minidl import models
    from minidl.optim import SGD
    minidl.manual_seed(0)
    cpu_model = models.lenet5()
    model = models.lenet5().to("cuda")
    model.load_state_dict(cpu_model.state_dict())
    opt = SGD(model.parameters(), lr=0.01, momentum=0.9)
    x = np.random.default_rng(0).standard_normal((1, 1, 32, 32)).astype(np.float32)
    xd, yd = minidl.tensor(x, device="cuda"), minidl.tensor([3], device="cuda")
    cupy.reset_counters()
    opt.zero_grad()
    loss = F.cross_entropy(model(xd), yd)
    loss.backward()
    minidl.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    for t in cupy.transfers:
        print("transfer:", t)
    assert cupy.counters == {"d2h": 0, "h2d": 0}, cupy.counters
    assert cupy.launches and all(device == 0 for _, _, device in cupy.launches)
    expected = F.cross_entropy(cpu_model(minidl.tensor(x)), minidl.tensor([3]))
    print("loss", float(loss), float(expected))   # the Trainer's one read per step
    assert abs(float(loss) - float(expected)) < 1e-5
    assert type(model.conv1.weight.grad.data) is cupy.ndarray
    """, timeout=400)
    assert "transfer:" not in out


def test_losses_take_host_targets_and_weights_with_device_logits():
    _run("""
    rng = np.random.default_rng(1)
    z = rng.standard_normal((5, 4)).astype(np.float32)
    t = np.array([0, 3, 1, -100, 2])
    w = [0.5, 1.0, 2.0, 1.5]
    zd = minidl.tensor(z, device="cuda", requires_grad=True)
    zc = minidl.tensor(z, requires_grad=True)
    for target in (t, minidl.tensor(t), minidl.tensor(t, device="cuda")):
        for weight in (None, w, np.array(w, np.float32), minidl.tensor(w, device="cuda")):
            got = F.cross_entropy(zd, target, weight=weight)
            want = F.cross_entropy(zc, t, weight=None if weight is None else w)
            assert abs(float(got) - float(want)) < 1e-6, (float(got), float(want))
            lp_d, lp_c = F.log_softmax(zd, 1), F.log_softmax(zc, 1)
            got = F.nll_loss(lp_d, target, weight=weight)
            want = F.nll_loss(lp_c, t, weight=None if weight is None else w)
            assert abs(float(got) - float(want)) < 1e-6
    # a CPU weight *tensor* with GPU logits is refused with the device error
    try:
        F.cross_entropy(zd, t, weight=minidl.tensor(w))
        raise AssertionError("no error")
    except RuntimeError as e:
        assert "same device" in str(e), e
    # smooth L1 (default beta) and its gradient on the device
    y = rng.standard_normal((5, 4)).astype(np.float32)
    F.smooth_l1_loss(zd, minidl.tensor(y, device="cuda")).backward()
    F.smooth_l1_loss(zc, minidl.tensor(y)).backward()
    np.testing.assert_allclose(zd.grad.data.get(), zc.grad.data, rtol=1e-6, atol=1e-7)
    # a device target out of range is not read back: it gives NaN (PyTorch asserts on the device)
    cupy.reset_counters()
    bad = F.cross_entropy(zd, minidl.tensor([0, 9, 1, 1, 2], device="cuda"), reduction="none")
    assert cupy.counters["d2h"] == 0
    values = bad.data.get()
    assert np.isnan(values[1]) and np.isfinite(values[[0, 2, 3, 4]]).all()
    """)


def test_empty_batches_launch_nothing_and_give_empty_results():
    _run("""
    cupy.reset_counters()
    z = minidl.zeros(0, 7, device="cuda", requires_grad=True)
    loss = F.cross_entropy(z, minidl.zeros(0, dtype="int64", device="cuda"), reduction="sum")
    loss.backward()
    assert z.grad.shape == (0, 7)
    x = minidl.zeros(0, 3, 4, 4, device="cuda", requires_grad=True)
    y = F.max_pool2d(x, 2)
    assert y.shape == (0, 3, 2, 2)
    y.sum().backward()
    assert x.grad.shape == (0, 3, 4, 4)
    assert cupy.launches == [], cupy.launches
    """)


def test_kernels_run_on_cupys_current_stream_and_the_inputs_device():
    _run("""
    cupy.cuda.runtime.device_count = 2
    x = minidl.randn(2, 3, 5, 5, device="cuda:1", requires_grad=True)
    assert x.device == minidl.device("cuda:1")
    stream = cupy.cuda.Stream()
    cupy.reset_counters()
    with stream:
        y = F.max_pool2d(x, 2)
        y.sum().backward()
    assert cupy.launches and all(s is stream for _, s, _ in cupy.launches), cupy.launches
    assert all(device == 1 for _, _, device in cupy.launches), cupy.launches   # run on cuda:1, not the current 0
    assert cupy.cuda.Device().id == 0
    """)


def test_dropout_and_stochastic_depth_draw_their_masks_on_the_device():
    _run("""
    from minidl.ops import stochastic_depth
    minidl.manual_seed(3)
    x = minidl.ones(64, 64, device="cuda")
    cupy.reset_counters()
    y = F.dropout(x, 0.25)
    z = stochastic_depth(x, 0.5, "row")
    d2 = F.dropout2d(minidl.ones(4, 8, 3, 3, device="cuda"), 0.5)
    assert cupy.counters == {"d2h": 0, "h2d": 0}, cupy.transfers
    kept = (y.data.get() != 0).mean()
    assert 0.7 < kept < 0.8 and np.allclose(y.data.get()[y.data.get() != 0], 1 / 0.75)
    minidl.manual_seed(3)
    assert (F.dropout(x, 0.25).data.get() == y.data.get()).all()   # manual_seed repeats device draws
    """)


def test_roi_align_and_pool_run_on_the_device_and_match_the_cpu():
    _run("""
    from minidl import ops
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 3, 7, 6)).astype(np.float32)
    boxes = [np.array([[0.5, 1.0, 5.0, 4.5]], np.float32), np.array([[1, 1, 4, 6], [0, 0, 2, 2]], np.float32)]
    for op, kwargs in ((ops.roi_align, dict(spatial_scale=0.9, sampling_ratio=2)), (ops.roi_pool, dict(spatial_scale=0.9))):
        xd = minidl.tensor(x, device="cuda", requires_grad=True)
        xc = minidl.tensor(x, requires_grad=True)
        yd = op(xd, [minidl.tensor(b, device="cuda") for b in boxes], (2, 2), **kwargs)
        yc = op(xc, boxes, (2, 2), **kwargs)
        assert type(yd.data) is cupy.ndarray
        np.testing.assert_allclose(yd.data.get(), yc.data, rtol=1e-5, atol=1e-6)
        (yd * yd).sum().backward()
        (yc * yc).sum().backward()
        np.testing.assert_allclose(xd.grad.data.get(), xc.grad.data, rtol=1e-5, atol=1e-6)
    """)


def test_faster_rcnn_losses_and_detections_on_the_device_match_the_cpu():
    """The two-stage detector on a GPU: head outputs read back once per stage, indices, targets and RoIs
    handed back to the device; its losses, gradients and detections equal the CPU run's."""
    _run("""
    from minidl import nn
    from minidl.models.detection.faster_rcnn import FasterRCNN, images_to_tensor

    class Backbone(nn.Module):   # tiny, so that the simulator's conv kernels stay quick
        out_channels, stride = 4, 8
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3, stride=8, padding=1)
        def forward(self, x):
            return self.conv(x)

    def build():
        minidl.manual_seed(0)
        return FasterRCNN(Backbone(), 3, anchor_sizes=(8, 16), aspect_ratios=(1.0,), box_batch_size_per_image=8,
                          representation_size=8, rpn_batch_size_per_image=8, rpn_pre_nms_top_n=(20, 20),
                          rpn_post_nms_top_n=(6, 6), roi_output_size=2, box_score_thresh=0.0)

    rng = np.random.default_rng(0)
    x = images_to_tensor([(rng.random((16, 24, 3)) * 255).astype(np.uint8)])
    targets = [{"boxes": np.array([[2, 2, 12, 12]], np.float32), "labels": np.array([1])}]
    cpu, gpu = build(), build().to("cuda")
    lc, lg = cpu(x, targets), gpu(x.to("cuda"), targets)
    for k in lc:
        assert type(lg[k].data) is cupy.ndarray
        assert abs(float(lc[k]) - float(lg[k])) < 1e-5, (k, float(lc[k]), float(lg[k]))
    sum(lc.values(), minidl.tensor(0.0)).backward()
    sum(lg.values(), minidl.tensor(0.0, device="cuda")).backward()
    for (name, p), q in zip(cpu.named_parameters(), gpu.parameters()):
        np.testing.assert_allclose(q.grad.data.get(), p.grad.data, rtol=1e-4, atol=1e-6, err_msg=name)
    cpu.eval(); gpu.eval()
    with minidl.no_grad():
        dc, dg = cpu(x)[0], gpu(x.to("cuda"))[0]
    assert dg["boxes"].shape == dc["boxes"].shape
    np.testing.assert_allclose(dg["boxes"], dc["boxes"], rtol=1e-5, atol=1e-4)
    np.testing.assert_array_equal(dg["labels"], dc["labels"])
    """)


# ---------------------------------------------------------------------------------------------------
# Issue 20, points 3-4: kernel warm-up, every loss and the indexing ops on the device, the op audit.

def test_warmup_launches_every_cuda_kernel_once_on_device_arrays():
    _run("""
    import minidl.cuda
    from minidl.kernels.cuda.warmup import kernel_names
    cupy.reset_counters()
    minidl.cuda.warmup()
    launched = {name for name, _, _ in cupy.launches}
    assert len(kernel_names()) >= 30, kernel_names()
    assert launched == kernel_names(), (kernel_names() - launched, launched - kernel_names())
    assert cupy.counters["d2h"] == 0, cupy.transfers
    """)


def test_cuda_kernels_are_cached_on_disk():
    import re

    for name in os.listdir(os.path.join(ROOT, "kernels", "cuda")):
        if name.endswith(".py"):
            with open(os.path.join(ROOT, "kernels", "cuda", name)) as f:
                source = f.read()
            plain = re.findall(r"^@cuda\.jit\s*$", source, re.M)
            assert not plain, f"kernels/cuda/{name}: declare kernels @cuda.jit(cache=True) (compiled once per machine)"


def test_every_functional_op_and_tensor_method_runs_on_the_device_and_matches_the_cpu():
    """The op audit (tests/gpu_op_audit.py, listed in docs/gpu.md): no op is left CPU only."""
    out = _run("""
    import sys
    sys.path.insert(0, "tests")
    import gpu_op_audit
    assert gpu_op_audit.missing() == [], gpu_op_audit.missing()
    outcome = gpu_op_audit.audit()
    failed = {name: error for name, error in outcome.items() if error is not None}
    assert not failed, failed
    assert len(outcome) > 250
    print("audited", len(outcome))
    """)
    assert "audited" in out


def test_every_loss_takes_device_inputs_with_host_targets_or_names_the_device():
    """Class targets (CE, NLL) may be host arrays: they are moved. Other targets are refused, clearly."""
    _run("""
    rng = np.random.default_rng(0)
    z = rng.standard_normal((4, 5)).astype(np.float32)
    t = rng.random((4, 5)).astype(np.float32)
    zd = minidl.tensor(z, device="cuda", requires_grad=True)
    for name in ("mse_loss", "l1_loss", "smooth_l1_loss", "binary_cross_entropy", "binary_cross_entropy_with_logits"):
        fn = getattr(F, name)
        x = F.sigmoid(zd) if name == "binary_cross_entropy" else zd
        for target in (t, minidl.tensor(t)):
            try:
                fn(x, target)
                raise AssertionError(f"{name}: a host target was mixed with a device input silently")
            except RuntimeError as e:
                assert "same device" in str(e) and "cuda:0" in str(e) and "cpu" in str(e), (name, e)
        got = fn(x, minidl.tensor(t, device="cuda"))
        want = fn(F.sigmoid(minidl.tensor(z)) if name == "binary_cross_entropy" else minidl.tensor(z), minidl.tensor(t))
        assert abs(float(got) - float(want)) < 1e-5, (name, float(got), float(want))
    labels = np.array([1, 0, 4, 2])
    for target in (labels, minidl.tensor(labels)):
        got = F.cross_entropy(zd, target, label_smoothing=0.2)
        assert abs(float(got) - float(F.cross_entropy(minidl.tensor(z), labels, label_smoothing=0.2))) < 1e-5
        got = F.cross_entropy(zd, F.softmax(minidl.tensor(t, device="cuda"), dim=1))   # probabilities on the device
        want = F.cross_entropy(minidl.tensor(z), F.softmax(minidl.tensor(t), dim=1))
        assert abs(float(got) - float(want)) < 1e-5
    """)


def test_max_over_a_dim_topk_and_gather_stay_on_the_device():
    """max(dim) backward scatters with cupy.put_along_axis (CuPy >= 14); no read back to the host."""
    _run("""
    x = np.random.default_rng(0).standard_normal((4, 6)).astype(np.float32)
    x[2, 1] = x[2, 4] = 5.0   # a tie
    used = []
    original = cupy.put_along_axis
    cupy.put_along_axis = lambda *a, **k: (used.append(1), original(*a, **k))[1]
    xd = minidl.tensor(x, device="cuda", requires_grad=True)
    xc = minidl.tensor(x, requires_grad=True)
    cupy.reset_counters()
    outs = []
    for t in (xd, xc):
        values, indices = t.max(dim=1)
        low = t.min(dim=0, keepdim=True)[0]
        top = t.topk(3, dim=1)
        picked = t.gather(1, minidl.tensor([[0, 5], [1, 1], [4, 2], [3, 0]], device=t.device))
        (values.sum() + 2 * low.sum() + (top[0] ** 2).sum() + (picked * 3).sum()).backward()
        outs.append((values, indices, top[1], t.grad))
    assert cupy.counters["d2h"] == 0, cupy.transfers
    assert used, "max(dim) backward did not use cupy.put_along_axis"
    for gpu, cpu in zip(*outs):
        assert type(gpu.data) is cupy.ndarray
        np.testing.assert_allclose(gpu.data.get(), cpu.data, rtol=1e-6)
    """)


def test_pad_embedding_layer_norm_and_attention_on_the_device():
    _run("""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 4, 5)).astype(np.float32)
    for mode in ("constant", "reflect", "replicate", "circular"):
        results = []
        for device in ("cpu", "cuda"):
            t = minidl.tensor(x, device=device, requires_grad=True)
            y = F.pad(t, (2, 1, 1, 2), mode=mode)
            (y * y).sum().backward()
            results.append((y.numpy(), t.grad.numpy()))
        for a, b in zip(*results):
            np.testing.assert_allclose(a, b, rtol=1e-6)
    minidl.manual_seed(0)
    emb, ln = minidl.nn.Embedding(10, 8, padding_idx=0), minidl.nn.LayerNorm(8)
    attn = minidl.nn.MultiheadAttention(8, 2, batch_first=True)
    tokens = np.array([[1, 4, 0, 4], [9, 2, 2, 0]])
    results = []
    for device in ("cpu", "cuda"):
        for m in (emb, ln, attn):
            m.to(device)
            m.zero_grad()
        h = ln(emb(minidl.tensor(tokens, device=device)))
        out, _ = attn(h, h, h, need_weights=False)
        out.pow(2).sum().backward()
        assert type(emb.weight.grad.data) is (cupy.ndarray if device == "cuda" else np.ndarray)
        results.append([out.numpy()] + [p.grad.numpy() for m in (emb, ln, attn) for p in m.parameters()])
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    assert not results[1][1][0].any()   # the padding row gets no gradient
    """)
