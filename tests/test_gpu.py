"""Real-GPU tests (marker ``gpu``): every op, every zoo model and a LeNet-5 training run on CUDA vs the CPU.

Skipped unless CuPy imports and an NVIDIA GPU is usable (``conftest.py``). Run on a
GPU machine with ``python -m pytest -m gpu tests/test_gpu.py``. The CPU path is the
oracle: the same inputs and the same parameters go through both backends, and
outputs and gradients must agree to float32 tolerance.
"""
from __future__ import annotations

import numpy as np
import pytest

import minidl
import minidl.nn.functional as F

pytestmark = pytest.mark.gpu

RTOL = 1e-4
ATOL = 1e-4


def _run(fn, arrays, device, grad_seed=0):
    """fn(*tensors) on ``device``; returns (output as NumPy, input gradients as NumPy) for a random upstream grad."""
    tensors = [minidl.tensor(a, requires_grad=a.dtype.kind == "f", device=device) if isinstance(a, np.ndarray)
               else a for a in arrays]
    # the leaves are the tensors moved to the device: keep gradients on them
    for t in tensors:
        if isinstance(t, minidl.Tensor) and t.requires_grad:
            t.retain_grad()
    out = fn(*tensors)
    g = np.random.default_rng(grad_seed).standard_normal(out.shape).astype(out.dtype)
    out.backward(minidl.tensor(g, device=device))
    grads = [t.grad.numpy() if isinstance(t, minidl.Tensor) and t.grad is not None else None for t in tensors]
    return out.numpy(), grads


def _assert_same_on_gpu(fn, *arrays, rtol=RTOL, atol=ATOL):
    y_cpu, g_cpu = _run(fn, arrays, "cpu")
    y_gpu, g_gpu = _run(fn, arrays, "cuda")
    np.testing.assert_allclose(y_gpu, y_cpu, rtol=rtol, atol=atol)
    for a, b in zip(g_gpu, g_cpu):
        if b is not None:
            np.testing.assert_allclose(a, b, rtol=rtol, atol=atol)


def _randn(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def test_tensor_moves_and_reports_device():
    import minidl.cuda

    assert minidl.cuda.is_available()
    x = minidl.randn(3, 4)
    y = x.to("cuda")
    assert str(y.device) == "cuda:0"
    np.testing.assert_array_equal(y.numpy(), x.numpy())
    assert str(minidl.tensor([1.0], device="cuda").device) == "cuda:0"
    with pytest.raises(RuntimeError, match="same device"):
        x + y


CONV_CASES = [
    # (N, C, H, W, K, k, stride, padding, dilation, groups)
    (2, 8, 12, 12, 16, 3, 1, 1, 1, 1),
    (2, 8, 13, 11, 16, 3, 2, 1, 1, 1),
    (2, 8, 12, 12, 8, 3, 1, 2, 2, 1),
    (2, 16, 12, 12, 16, 3, 1, 1, 1, 4),
    (2, 8, 12, 12, 16, 3, 1, 1, 1, 8),  # depthwise, multiplier 2
    (2, 8, 12, 12, 16, 3, 2, 1, 1, 8),
    (2, 8, 12, 12, 16, 1, 1, 0, 1, 1),  # pointwise
]


@pytest.mark.parametrize("case", CONV_CASES)
def test_conv2d(case):
    n, c, h, w, k, ks, stride, padding, dilation, groups = case
    _assert_same_on_gpu(
        lambda x, wt, b: F.conv2d(x, wt, b, stride=stride, padding=padding, dilation=dilation, groups=groups),
        _randn(n, c, h, w), _randn(k, c // groups, ks, ks, seed=1), _randn(k, seed=2), rtol=1e-3, atol=1e-3)


@pytest.mark.parametrize("kwargs", [
    dict(kernel_size=3, stride=2, padding=1), dict(kernel_size=3, stride=2, ceil_mode=True),
    dict(kernel_size=2), dict(kernel_size=3, stride=1, padding=1, dilation=2)])
def test_max_pool2d(kwargs):
    _assert_same_on_gpu(lambda x: F.max_pool2d(x, **kwargs), _randn(2, 3, 11, 10))


@pytest.mark.parametrize("kwargs", [
    dict(kernel_size=3, stride=2, padding=1), dict(kernel_size=3, stride=2, padding=1, count_include_pad=False),
    dict(kernel_size=3, stride=2, ceil_mode=True), dict(kernel_size=2), dict(kernel_size=3, divisor_override=4)])
def test_avg_pool2d(kwargs):
    _assert_same_on_gpu(lambda x: F.avg_pool2d(x, **kwargs), _randn(2, 3, 11, 10))


@pytest.mark.parametrize("size", [(1, 1), (3, 4), (13, 12)])
def test_adaptive_pools(size):
    _assert_same_on_gpu(lambda x: F.adaptive_avg_pool2d(x, size), _randn(2, 3, 11, 10))
    _assert_same_on_gpu(lambda x: F.adaptive_max_pool2d(x, size), _randn(2, 3, 11, 10))


@pytest.mark.parametrize("shape", [(8, 5, 6, 7), (16, 5)])
@pytest.mark.parametrize("training", [True, False])
def test_batch_norm(shape, training):
    c = shape[1]
    rm = np.random.default_rng(3).standard_normal(c).astype(np.float32)
    rv = (np.random.default_rng(4).random(c) + 0.5).astype(np.float32)

    def fn(x, w, b):
        dev = x.device
        return F.batch_norm(x, minidl.tensor(rm, device=dev), minidl.tensor(rv, device=dev), w, b,
                            training=training)

    _assert_same_on_gpu(fn, _randn(*shape) * 3 + 2, _randn(c, seed=1), _randn(c, seed=2))


def test_local_response_norm():
    _assert_same_on_gpu(lambda x: F.local_response_norm(x, 5, alpha=1e-2, beta=0.75, k=2.0), _randn(2, 7, 5, 5))


@pytest.mark.parametrize("kwargs", [dict(), dict(label_smoothing=0.1), dict(ignore_index=3),
                                    dict(reduction="sum"), dict(reduction="none")])
@pytest.mark.parametrize("weighted", [False, True])
def test_cross_entropy(kwargs, weighted):
    target = np.random.default_rng(5).integers(0, 10, 32)
    weight = (np.random.default_rng(6).random(10) + 0.5).astype(np.float32) if weighted else None

    def fn(z):
        dev = z.device
        w = minidl.tensor(weight, device=dev) if weighted else None
        return F.cross_entropy(z, minidl.tensor(target, device=dev), weight=w, **kwargs)

    _assert_same_on_gpu(fn, _randn(32, 10) * 3)


@pytest.mark.parametrize("name", ["relu", "sigmoid", "tanh", "gelu", "silu", "hardswish", "softmax", "log_softmax"])
def test_elementwise_and_softmax(name):
    fn = getattr(F, name)
    _assert_same_on_gpu(lambda x: fn(x) if "softmax" not in name else fn(x, dim=1), _randn(4, 9))


def test_linear_matmul_reductions_and_shapes():
    _assert_same_on_gpu(lambda x, w, b: F.linear(x, w, b).sum(dim=1, keepdim=True) * x.mean(),
                        _randn(5, 6), _randn(3, 6, seed=1), _randn(3, seed=2))
    _assert_same_on_gpu(lambda x: minidl.cat([x, x.transpose(0, 1)], dim=0).reshape(-1)[::2], _randn(4, 4))


def test_nms_and_box_iou_kernels():
    import cupy

    from minidl.kernels.cpu import nms as cpu_nms
    from minidl.kernels.cuda import nms as gpu_nms

    rng = np.random.default_rng(7)
    xy = rng.random((3000, 2)) * 500
    boxes = np.concatenate([xy, xy + rng.random((3000, 2)) * 60], axis=1).astype(np.float32)
    scores = rng.integers(0, 50, 3000).astype(np.float32)  # ties
    idxs = rng.integers(0, 5, 3000)
    for thr in (0.3, 0.5, 0.7):
        keep = gpu_nms.nms(cupy.asarray(boxes), cupy.asarray(scores), thr)
        np.testing.assert_array_equal(keep.get(), cpu_nms.nms(boxes, scores, thr))
    keep = gpu_nms.batched_nms(cupy.asarray(boxes), cupy.asarray(scores), cupy.asarray(idxs), 0.5)
    np.testing.assert_array_equal(keep.get(), cpu_nms.batched_nms(boxes, scores, idxs, 0.5))
    iou = gpu_nms.box_iou(cupy.asarray(boxes[:300]), cupy.asarray(boxes[:200]))
    np.testing.assert_allclose(iou.get(), cpu_nms.box_iou(boxes[:300], boxes[:200]), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("opt", ["SGD", "Adam", "AdamW"])
def test_optimizer_step_on_gpu_matches_cpu(opt):
    results = []
    for device in ("cpu", "cuda"):
        minidl.manual_seed(0)
        model = minidl.nn.Sequential(minidl.nn.Linear(6, 5), minidl.nn.ReLU(), minidl.nn.Linear(5, 3)).to(device)
        kwargs = dict(lr=0.1, momentum=0.9, weight_decay=1e-3) if opt == "SGD" else dict(lr=1e-2)
        optimizer = getattr(minidl.optim, opt)(model.parameters(), **kwargs)
        x = minidl.tensor(_randn(8, 6), device=device)
        target = minidl.tensor(np.arange(8) % 3, device=device)
        for _ in range(3):
            optimizer.zero_grad()
            F.cross_entropy(model(x), target).backward()
            optimizer.step()
        results.append([p.numpy().copy() for p in model.parameters()])
    for a, b in zip(*results):
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-5)


def _model_names():
    from minidl.models import list_models

    return list_models()


@pytest.mark.parametrize("name", _model_names())
def test_zoo_model_forward_matches_cpu(name):
    from minidl.models import get_model
    from minidl.models.registry import get_model_builder

    minidl.manual_seed(0)
    model = get_model(name)
    model.eval()
    c, h, w = get_model_builder(name).default_input_size
    x = _randn(2, c, h, w)
    with minidl.no_grad():
        y_cpu = model(minidl.tensor(x))
        model.to("cuda")
        y_gpu = model(minidl.tensor(x, device="cuda"))
    y_cpu = y_cpu[0] if isinstance(y_cpu, tuple) else y_cpu
    y_gpu = y_gpu[0] if isinstance(y_gpu, tuple) else y_gpu
    assert str(y_gpu.device) == "cuda:0"
    np.testing.assert_allclose(y_gpu.numpy(), y_cpu.numpy(), rtol=2e-3, atol=2e-3)


def test_lenet5_trains_on_digits_on_gpu():
    from minidl.datasets.digits import load_digits
    from minidl.models import lenet5

    x_train, y_train = load_digits("train", size=32)
    x_test, y_test = load_digits("test", size=32)
    x_train = x_train.reshape(-1, 1, 32, 32)
    x_test = x_test.reshape(-1, 1, 32, 32)
    minidl.manual_seed(0)
    model = lenet5().to("cuda")
    optimizer = minidl.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    rng = np.random.default_rng(0)
    xs = minidl.tensor(x_train, device="cuda")
    ys = minidl.tensor(y_train.astype(np.int64), device="cuda")
    model.train()
    for _epoch in range(15):
        order = rng.permutation(len(y_train))
        for start in range(0, len(order), 32):
            idx = minidl.tensor(order[start:start + 32], device="cuda")
            optimizer.zero_grad()
            loss = F.cross_entropy(model(xs[idx]), ys[idx])
            loss.backward()
            optimizer.step()
    model.eval()
    with minidl.no_grad():
        logits = model(minidl.tensor(x_test, device="cuda"))
    accuracy = float((logits.numpy().argmax(axis=1) == y_test).mean())
    assert accuracy >= 0.97, f"LeNet-5 on the digits reached {accuracy:.3f} on the GPU, expected >= 0.97"
