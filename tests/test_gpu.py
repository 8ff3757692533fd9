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
    # tensors made with device="cuda" are leaves on the device (issue 20): no retain_grad needed
    assert all(t.is_leaf and str(t.device).startswith(device) for t in tensors if isinstance(t, minidl.Tensor))
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


# ---------------------------------------------------------------------------------------------------
# Issue 20, point 3: the cases a first GPU run would otherwise meet untested. Shapes stay small (each
# test well under a second on a GPU, after compilation); scripts/gpu_first_run.sh runs them.

def _randn64(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


def _bn(x, w, b):
    return F.batch_norm(x, None, None, w, b, training=True)


FLOAT64_CASES = {
    "conv2d": (lambda x, w: F.conv2d(x, w, padding=1), [(2, 3, 6, 6), (4, 3, 3, 3)]),
    "conv2d_depthwise": (lambda x, w: F.conv2d(x, w, padding=1, groups=3), [(2, 3, 6, 6), (3, 1, 3, 3)]),
    "max_pool2d": (lambda x: F.max_pool2d(x, 3, 2, 1), [(2, 3, 7, 6)]),
    "avg_pool2d": (lambda x: F.avg_pool2d(x, 3, 2, 1), [(2, 3, 7, 6)]),
    "adaptive_avg_pool2d": (lambda x: F.adaptive_avg_pool2d(x, (2, 3)), [(2, 3, 7, 6)]),
    "batch_norm": (_bn, [(4, 3, 5, 5), (3,), (3,)]),
    "layer_norm": (lambda x: F.layer_norm(x, (6,)), [(4, 6)]),
    "local_response_norm": (lambda x: F.local_response_norm(x, 3), [(2, 5, 3, 3)]),
    "softmax": (lambda x: F.softmax(x, dim=1), [(4, 9)]),
    "cross_entropy": (lambda z: F.cross_entropy(z, minidl.tensor([1, 0, 3, 2], device=z.device),
                                                label_smoothing=0.1), [(4, 5)]),
}


@pytest.mark.parametrize("name", sorted(FLOAT64_CASES))
def test_float64_matches_the_cpu_to_float64_precision(name):
    fn, shapes = FLOAT64_CASES[name]
    arrays = [_randn64(*s, seed=i) for i, s in enumerate(shapes)]
    y, _ = _run(fn, arrays, "cuda")
    assert y.dtype == np.float64, f"{name} on the GPU gave {y.dtype} for float64 inputs"
    _assert_same_on_gpu(fn, *arrays, rtol=1e-9, atol=1e-11)


EMPTY_CASES = {
    "cross_entropy": (lambda z: F.cross_entropy(z, minidl.zeros(0, dtype="int64", device=z.device),
                                                reduction="sum"), [(0, 7)]),
    "conv2d": (lambda x, w: F.conv2d(x, w, padding=1), [(0, 3, 5, 5), (4, 3, 3, 3)]),
    "conv2d_depthwise": (lambda x, w: F.conv2d(x, w, padding=1, groups=3), [(0, 3, 5, 5), (3, 1, 3, 3)]),
    "max_pool2d": (lambda x: F.max_pool2d(x, 2), [(0, 3, 4, 4)]),
    "avg_pool2d": (lambda x: F.avg_pool2d(x, 2), [(0, 3, 4, 4)]),
    "adaptive_max_pool2d": (lambda x: F.adaptive_max_pool2d(x, 3), [(0, 3, 4, 4)]),
    "batch_norm_eval": (lambda x: F.batch_norm(x, minidl.zeros(3, device=x.device), minidl.ones(3, device=x.device),
                                               training=False), [(0, 3, 4, 4)]),
    "local_response_norm": (lambda x: F.local_response_norm(x, 3), [(0, 5, 2, 2)]),
    "softmax": (lambda x: F.softmax(x, dim=1), [(0, 9)]),
    "linear": (lambda x, w: F.linear(x, w), [(0, 6), (3, 6)]),
}


@pytest.mark.parametrize("name", sorted(EMPTY_CASES))
def test_empty_batch_gives_empty_outputs_and_gradients(name):
    from minidl.device import synchronize

    fn, shapes = EMPTY_CASES[name]
    arrays = [_randn(*s, seed=i) for i, s in enumerate(shapes)]
    y_gpu, g_gpu = _run(fn, arrays, "cuda")
    y_cpu, g_cpu = _run(fn, arrays, "cpu")
    assert y_gpu.shape == y_cpu.shape
    for a, b in zip(g_gpu, g_cpu):
        assert a.shape == b.shape and np.array_equal(a, b)
    synchronize()  # an out-of-bounds launch would surface here as an illegal address


NONCONTIGUOUS_CASES = {
    # each function makes a strided view of its input before the op: transposes, steps, permutes
    "conv2d": (lambda x, w: F.conv2d(x.transpose(2, 3), w, padding=1), [(2, 3, 6, 7), (4, 3, 3, 3)]),
    "conv2d_depthwise": (lambda x, w: F.conv2d(x[:, :, ::2], w, padding=1, groups=3), [(2, 3, 8, 5), (3, 1, 3, 3)]),
    "max_pool2d": (lambda x: F.max_pool2d(x.permute(0, 3, 1, 2), 2), [(2, 6, 6, 3)]),
    "avg_pool2d": (lambda x: F.avg_pool2d(x[..., 1:], 2), [(2, 3, 6, 7)]),
    "batch_norm": (lambda x, w, b: _bn(x.permute(0, 3, 1, 2), w, b), [(4, 5, 5, 3), (3,), (3,)]),
    "cross_entropy": (lambda z: F.cross_entropy(z.t(), minidl.tensor([1, 0, 3, 2, 4], device=z.device)), [(6, 5)]),
    "softmax": (lambda x: F.softmax(x.t(), dim=1), [(9, 4)]),
    "log_softmax": (lambda x: F.log_softmax(x[:, ::2], dim=1), [(4, 18)]),
    "local_response_norm": (lambda x: F.local_response_norm(x.transpose(2, 3), 3), [(2, 5, 3, 4)]),
}


@pytest.mark.parametrize("name", sorted(NONCONTIGUOUS_CASES))
def test_non_contiguous_inputs(name):
    fn, shapes = NONCONTIGUOUS_CASES[name]
    _assert_same_on_gpu(fn, *[_randn(*s, seed=i) for i, s in enumerate(shapes)])


@pytest.mark.parametrize("kwargs", [dict(), dict(label_smoothing=0.1, ignore_index=7), dict(reduction="none")])
def test_cross_entropy_with_more_classes_than_threads_per_block(kwargs):
    """1000 classes: each CE row is reduced by a block of 128 threads, each thread over several classes."""
    target = np.random.default_rng(5).integers(0, 1000, 16)
    target[3] = 7
    weight = (np.random.default_rng(6).random(1000) + 0.5).astype(np.float32)

    def fn(z):
        return F.cross_entropy(z, minidl.tensor(target, device=z.device), weight=minidl.tensor(weight, device=z.device),
                               **kwargs)

    _assert_same_on_gpu(fn, _randn(16, 1000) * 4)


LOSSES = {  # (logits-like z, target-like t, reduction) -> loss
    "cross_entropy": lambda z, t, r: F.cross_entropy(z, t.argmax(dim=1), reduction=r),
    "cross_entropy_probabilities": lambda z, t, r: F.cross_entropy(z, F.softmax(t, dim=1), reduction=r,
                                                                   label_smoothing=0.1),
    "nll_loss": lambda z, t, r: F.nll_loss(F.log_softmax(z, dim=1), t.argmax(dim=1), reduction=r),
    "mse_loss": lambda z, t, r: F.mse_loss(z, t, reduction=r),
    "l1_loss": lambda z, t, r: F.l1_loss(z, t, reduction=r),
    "smooth_l1_loss": lambda z, t, r: F.smooth_l1_loss(z, t, reduction=r),
    "smooth_l1_loss_beta": lambda z, t, r: F.smooth_l1_loss(z, t, reduction=r, beta=0.5),
    "binary_cross_entropy": lambda z, t, r: F.binary_cross_entropy(F.sigmoid(z), F.sigmoid(t), reduction=r),
    "binary_cross_entropy_with_logits": lambda z, t, r: F.binary_cross_entropy_with_logits(
        z, F.sigmoid(t), reduction=r, pos_weight=minidl.full((5,), 2.0, device=z.device)),
}


def test_every_loss_in_functional_is_covered():
    names = {n for n in dir(F) if not n.startswith("_") and (n.endswith("_loss") or "cross_entropy" in n)}
    assert names <= set(LOSSES), f"add these losses to LOSSES: {sorted(names - set(LOSSES))}"


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("name", sorted(LOSSES))
def test_every_loss(name, reduction):
    _assert_same_on_gpu(lambda z, t: LOSSES[name](z, t, reduction), _randn(6, 5), _randn(6, 5, seed=1))


@pytest.mark.parametrize("target_kind", ["numpy", "cpu tensor"])
@pytest.mark.parametrize("loss", ["cross_entropy", "nll_loss"])
def test_cpu_targets_with_gpu_logits(loss, target_kind):
    z = _randn(6, 5)
    t = np.array([0, 4, 1, -100, 2, 3])
    target = t if target_kind == "numpy" else minidl.tensor(t)
    weight = np.array([0.5, 1.0, 2.0, 1.5, 1.0], np.float32)
    fn = getattr(F, loss)
    zc = minidl.tensor(z, requires_grad=True)
    zd = minidl.tensor(z, requires_grad=True, device="cuda")
    inputs = (zc, zd) if loss == "cross_entropy" else (F.log_softmax(zc, dim=1), F.log_softmax(zd, dim=1))
    want = fn(inputs[0], t, weight=weight)
    got = fn(inputs[1], target, weight=weight)
    assert str(got.device) == "cuda:0"
    np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-5)
    want.backward()
    got.backward()
    np.testing.assert_allclose(zd.grad.numpy(), zc.grad.numpy(), rtol=1e-5, atol=1e-6)


def test_dropout_masks_on_the_gpu():
    minidl.manual_seed(0)
    x = minidl.ones(200, 100, device="cuda", requires_grad=True)
    y = F.dropout(x, 0.3)
    y.backward(minidl.ones(200, 100, device="cuda"))
    values, grad = y.numpy(), x.grad.numpy()
    assert abs((values != 0).mean() - 0.7) < 0.02
    np.testing.assert_allclose(values[values != 0], 1 / 0.7, rtol=1e-6)
    np.testing.assert_array_equal(grad, values)   # the gradient goes through the same mask
    np.testing.assert_array_equal(F.dropout(x, 0.3, training=False).numpy(), x.numpy())
    minidl.manual_seed(0)
    np.testing.assert_array_equal(F.dropout(x, 0.3).numpy(), values)
    d2 = F.dropout2d(minidl.ones(8, 16, 3, 3, device="cuda"), 0.5).numpy()
    per_channel = d2.reshape(8, 16, 9)
    assert ((per_channel == 0).all(axis=2) | (per_channel == 2.0).all(axis=2)).all()  # whole channels


@pytest.mark.parametrize("mode", ["constant", "reflect", "replicate", "circular"])
def test_pad(mode):
    value = dict(value=1.5) if mode == "constant" else {}
    _assert_same_on_gpu(lambda x: F.pad(x, (1, 2, 2, 1), mode=mode, **value), _randn(2, 3, 4, 5))
    _assert_same_on_gpu(lambda x: F.pad(x, (-1, 1, 0, 2), mode="constant"), _randn(2, 3, 4, 5))


def test_max_min_over_a_dim_and_their_indices():
    x = _randn(5, 7)
    x[1, 2] = x[1, 5] = 9.0   # a tie: the first index wins, as on the CPU
    for op in ("max", "min"):
        for keepdim in (False, True):
            _assert_same_on_gpu(lambda t: getattr(t, op)(dim=1, keepdim=keepdim)[0], x)
            cpu = getattr(minidl.tensor(x), op)(dim=1, keepdim=keepdim)[1].numpy()
            gpu = getattr(minidl.tensor(x, device="cuda"), op)(dim=1, keepdim=keepdim)[1].numpy()
            np.testing.assert_array_equal(gpu, cpu)
    _assert_same_on_gpu(lambda t: t.amax(dim=0) + t.amin(dim=1).sum(), x)


def test_topk_gather_and_friends():
    x = _randn(4, 9)
    index = np.random.default_rng(1).integers(0, 9, (4, 3))
    _assert_same_on_gpu(lambda t: t.topk(3, dim=1)[0], x)
    _assert_same_on_gpu(lambda t: t.topk(2, dim=0, largest=False)[0], x)
    np.testing.assert_array_equal(minidl.tensor(x, device="cuda").topk(3, dim=1)[1].numpy(),
                                  minidl.tensor(x).topk(3, dim=1)[1].numpy())
    _assert_same_on_gpu(lambda t: t.gather(1, minidl.tensor(index, device=t.device)), x)
    _assert_same_on_gpu(lambda t: t.index_select(0, minidl.tensor([3, 0, 3], device=t.device)), x)
    _assert_same_on_gpu(lambda t: t.sort(dim=1)[0] * t.argsort(dim=1).float(), x)
    _assert_same_on_gpu(lambda t: t.scatter_add(1, minidl.tensor(index, device=t.device), t[:, :3]), x)


@pytest.mark.parametrize("aligned", [False, True])
def test_roi_ops(aligned):
    from minidl import ops

    boxes = [np.array([[0.5, 1.0, 5.0, 4.5], [0, 0, 7, 6]], np.float32), np.array([[1, 1, 4, 6]], np.float32)]

    def align(x):
        return ops.roi_align(x, [minidl.tensor(b, device=x.device) for b in boxes], (3, 2), spatial_scale=0.9,
                             sampling_ratio=2, aligned=aligned)

    def pool(x):
        return ops.roi_pool(x, [minidl.tensor(b, device=x.device) for b in boxes], (2, 2), spatial_scale=0.9)

    _assert_same_on_gpu(align, _randn(2, 3, 8, 7))
    _assert_same_on_gpu(pool, _randn(2, 3, 8, 7))


def test_clip_grad_norm_on_the_gpu():
    results = []
    for device in ("cpu", "cuda"):
        params = [minidl.tensor(_randn(4, 3, seed=i) * 5, requires_grad=True, device=device) for i in range(3)]
        for i, p in enumerate(params):
            p.grad = minidl.tensor(_randn(4, 3, seed=10 + i) * 3, device=device)
        total = minidl.nn.utils.clip_grad_norm_(params, 1.0)
        assert str(total.device).startswith(device)
        results.append((float(total), [p.grad.numpy() for p in params]))
    (norm_cpu, grads_cpu), (norm_gpu, grads_gpu) = results
    assert abs(norm_gpu - norm_cpu) < 1e-4 * norm_cpu
    for a, b in zip(grads_gpu, grads_cpu):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    clipped = np.sqrt(sum((g ** 2).sum() for g in grads_gpu))
    assert abs(clipped - 1.0) < 1e-4


FAMILIES = [  # (model, input shape): one per family, small inputs where the model allows
    ("mlp", (1, 8, 8)), ("lenet5", (1, 32, 32)), ("resnet20_cifar", (3, 32, 32)), ("mobilenet_v2", (3, 64, 64)),
    ("googlenet", (3, 64, 64)), ("shufflenet_v2_x0_5", (3, 64, 64)), ("squeezenet1_1", (3, 64, 64)),
    ("efficientnet_b0", (3, 64, 64)), ("densenet121", (3, 64, 64)), ("vit_tiny", (3, 224, 224)),
    ("char_lstm", (32,)),
]


@pytest.mark.parametrize("name,shape", FAMILIES, ids=[f[0] for f in FAMILIES])
def test_training_step_per_model_family(name, shape):
    """One SGD step in train mode (batch-norm batch statistics) on both devices: same loss, gradients, weights."""
    from minidl.models import get_model

    rng = np.random.default_rng(0)
    x = rng.integers(0, 20, (2, *shape)) if len(shape) == 1 else rng.standard_normal((2, *shape)).astype(np.float32)
    results = []
    for device in ("cpu", "cuda"):
        minidl.manual_seed(0)
        model = get_model(name)
        for module in model.modules():   # dropout masks differ between devices' generators: switch them off
            if type(module).__name__ in ("Dropout", "Dropout2d", "StochasticDepth"):
                module.p = 0.0
        model.to(device).train()
        opt = minidl.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        out = model(minidl.tensor(x, device=device))
        out = out[0] if isinstance(out, tuple) else out
        out = out.reshape(-1, out.shape[-1])
        target = minidl.tensor(np.arange(out.shape[0]) % out.shape[-1], device=device)
        loss = F.cross_entropy(out, target)
        loss.backward()
        grads = [p.grad.numpy() for p in model.parameters() if p.grad is not None]
        assert all(str(p.grad.device).startswith(device) for p in model.parameters() if p.grad is not None)
        opt.step()
        results.append((float(loss), grads, [p.numpy() for p in model.parameters()]))
    (loss_cpu, g_cpu, p_cpu), (loss_gpu, g_gpu, p_gpu) = results
    assert abs(loss_gpu - loss_cpu) <= 1e-3 * max(1.0, abs(loss_cpu))
    assert len(g_gpu) == len(g_cpu) > 0
    for a, b in zip(g_gpu, g_cpu):
        np.testing.assert_allclose(a, b, rtol=1e-2, atol=1e-3 * max(1.0, float(np.abs(b).max())))
    for a, b in zip(p_gpu, p_cpu):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-4)


def test_every_functional_op_and_tensor_method_matches_the_cpu_on_the_gpu():
    """tests/gpu_op_audit.py on the real device (tests/test_gpu_paths.py runs it on the fake CuPy)."""
    import gpu_op_audit

    assert gpu_op_audit.missing() == []
    failed = {name: error for name, error in gpu_op_audit.audit().items() if error is not None}
    assert not failed, failed
