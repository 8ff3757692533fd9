"""The backend is chosen once per call, from the array type, and GPU arrays reach ``kernels/cuda``.

No GPU is needed: a stand-in ``cupy`` module and an array type that calls itself a CuPy array
(``type(a).__module__`` starts with "cupy", which is what :func:`minidl.backend.get_array_module`
reads) make the dispatcher pick the CUDA kernel modules; spies in those modules record the
calls and answer with NumPy results. What is proved is the route (op -> Function -> backend ->
``minidl.kernels.cuda.*``), not the CUDA kernels themselves (tests/test_cuda_sim.py runs those
under the Numba CUDA simulator).
"""
import sys
import types

import numpy as np
import pytest

import minidl
import minidl.nn.functional as F
from minidl import ops
from minidl.backend import get_array_module, kernels_for
from minidl.functions.conv import Conv2d, conv_plan
from minidl.kernels.cpu import conv as cpu_conv
from minidl.kernels.cpu import nms as cpu_nms


class FakeCupyArray(np.ndarray):
    """A NumPy array that the dispatcher takes for a CuPy array."""


FakeCupyArray.__module__ = "cupy._core.core"


def _gpu(a):
    return np.asarray(a).view(FakeCupyArray)


@pytest.fixture
def fake_cupy(monkeypatch):
    module = types.ModuleType("cupy")
    module.ndarray = FakeCupyArray
    monkeypatch.setitem(sys.modules, "cupy", module)
    return module


def test_get_array_module_and_kernels_for_follow_the_array_type(fake_cupy):
    assert get_array_module(np.zeros(2)) is np
    assert get_array_module(_gpu(np.zeros(2))) is fake_cupy
    assert kernels_for(np, "conv").__name__ == "minidl.kernels.cpu.conv"
    assert kernels_for(fake_cupy, "nms").__name__ == "minidl.kernels.cuda.nms"
    assert kernels_for(fake_cupy, "conv") is kernels_for(fake_cupy, "conv")  # looked up once, cached


@pytest.mark.parametrize("name", ["nms", "batched_nms", "box_iou"])
def test_ops_send_gpu_arrays_to_the_cuda_kernels(fake_cupy, monkeypatch, name):
    cuda_nms = kernels_for(fake_cupy, "nms")
    calls = []

    def spy(*args):
        calls.append(type(args[0]))
        return getattr(cpu_nms, name)(*(np.asarray(a) for a in args))

    monkeypatch.setattr(cuda_nms, name, spy)
    boxes = _gpu(np.array([[0, 0, 10, 10], [1, 1, 10, 10], [20, 20, 30, 30]], np.float32))
    scores = _gpu(np.array([0.9, 0.8, 0.7], np.float32))
    if name == "nms":
        out = ops.nms(minidl.Tensor._wrap(boxes), minidl.Tensor._wrap(scores), 0.5)
        assert out.tolist() == [0, 2]
    elif name == "batched_nms":
        out = ops.batched_nms(boxes, scores, _gpu(np.array([0, 1, 0])), 0.5)
        assert sorted(out.tolist()) == [0, 1, 2]
    else:
        out = ops.box_iou(boxes, boxes)
        np.testing.assert_allclose(np.diag(out.numpy()), 1.0)
    assert calls == [FakeCupyArray]


def test_cpu_arrays_never_reach_the_cuda_kernels(fake_cupy, monkeypatch):
    def refuse(*args):
        raise AssertionError("a CPU array reached kernels/cuda")

    monkeypatch.setattr(kernels_for(fake_cupy, "nms"), "nms", refuse)
    boxes = np.array([[0, 0, 10, 10], [1, 1, 10, 10]], np.float32)
    assert ops.nms(boxes, np.array([0.9, 0.8], np.float32), 0.5).tolist() == [0]


@pytest.mark.parametrize("shape,weight,stride,padding,groups,path", [
    ((2, 4, 6, 6), (8, 4, 1, 1), (1, 1), (0, 0), 1, "pointwise"),
    ((2, 4, 6, 6), (4, 1, 3, 3), (1, 1), (1, 1), 4, "direct"),
    ((2, 4, 6, 6), (8, 4, 3, 3), (2, 2), (1, 1), 1, "gemm"),
])
def test_conv_plan_is_chosen_once_and_backward_reuses_the_backend(fake_cupy, monkeypatch, shape, weight, stride,
                                                                  padding, groups, path):
    """Forward picks the path and the CUDA module once; backward calls the same module, same path."""
    assert conv_plan(shape, weight, stride, padding, groups) == path
    cuda_conv = kernels_for(fake_cupy, "conv")
    calls = []
    names = ["pointwise_forward", "pointwise_backward", "grouped_direct_forward", "grouped_direct_backward",
             "conv2d_forward_gemm", "conv2d_backward_gemm"]
    for name in names:
        def spy(*args, _name=name):
            calls.append(_name)
            return getattr(cpu_conv, _name)(*(np.asarray(a) if isinstance(a, np.ndarray) else a for a in args))

        monkeypatch.setattr(cuda_conv, name, spy)
    rng = np.random.default_rng(0)
    x = _gpu(rng.standard_normal(shape).astype(np.float32))
    w = _gpu(rng.standard_normal(weight).astype(np.float32))
    fn = Conv2d()
    y = fn(x, w, None, stride=stride, padding=padding, dilation=(1, 1), groups=groups)
    assert fn.kernels is cuda_conv and fn.path == path
    fn.backward(np.ones(y.shape, np.float32).view(FakeCupyArray))
    prefix = {"pointwise": "pointwise", "direct": "grouped_direct", "gemm": "conv2d"}[path]
    assert calls == [c for c in names if c.startswith(prefix)]


def test_gpu_tensors_reach_cuda_kernels_through_the_functional_floor(fake_cupy, monkeypatch):
    """F.max_pool2d on a CUDA-looking tensor: forward and backward both go to kernels/cuda/pooling."""
    from minidl.kernels.cpu import pooling as cpu_pool

    cuda_pool = kernels_for(fake_cupy, "pooling")
    calls = []
    for name in ("max_pool2d_forward", "max_pool2d_backward"):
        def spy(*args, _name=name):
            calls.append(_name)
            return getattr(cpu_pool, _name)(*(np.asarray(a) if isinstance(a, np.ndarray) else a for a in args))

        monkeypatch.setattr(cuda_pool, name, spy)
    x = minidl.Tensor._wrap(_gpu(np.random.default_rng(1).standard_normal((1, 2, 4, 4)).astype(np.float32)),
                            requires_grad=True)
    F.max_pool2d(x, 2).sum().backward()
    assert calls == ["max_pool2d_forward", "max_pool2d_backward"]
    assert x.grad.shape == (1, 2, 4, 4)


# the primitives each Function family calls on its kernel module
PRIMITIVES = {
    "conv": ["pointwise_forward", "pointwise_backward", "grouped_direct_forward", "grouped_direct_backward",
             "grouped_direct_backward_input", "grouped_direct_backward_weight", "conv2d_forward_gemm",
             "conv2d_backward_gemm"],
    "pooling": ["max_pool2d_forward", "max_pool2d_backward", "avg_pool2d_forward", "avg_pool2d_backward",
                "adaptive_avg_pool2d_forward", "adaptive_avg_pool2d_backward", "global_avg_pool2d_forward",
                "adaptive_max_pool2d_forward", "adaptive_max_pool2d_backward"],
    "norm": ["batch_norm_train_forward", "batch_norm_backward", "batch_norm_eval_forward",
             "local_response_norm_forward", "local_response_norm_backward"],
    "loss": ["softmax_cross_entropy_forward", "softmax_cross_entropy_backward"],
    "nms": ["nms", "batched_nms", "box_iou"],
}


@pytest.mark.parametrize("family", list(PRIMITIVES))
@pytest.mark.parametrize("backend", ["cpu", "cuda", "reference"])
def test_every_backend_supplies_the_same_primitives(family, backend):
    import importlib

    module = importlib.import_module(f"minidl.kernels.{backend}.{family}")
    missing = [name for name in PRIMITIVES[family] if not callable(getattr(module, name, None))]
    assert not missing, f"minidl.kernels.{backend}.{family} lacks {missing}"


@pytest.mark.parametrize("shape,weight,stride,padding,groups", [
    ((2, 4, 5, 5), (6, 4, 1, 1), (1, 1), (0, 0), 1),   # pointwise
    ((2, 4, 6, 5), (8, 1, 3, 3), (2, 1), (1, 1), 4),   # direct (depthwise, multiplier 2)
    ((2, 4, 6, 5), (6, 2, 3, 2), (1, 2), (1, 0), 2),   # direct (grouped, 2 channels per group)
    ((2, 3, 7, 6), (5, 3, 3, 3), (2, 2), (1, 1), 1),   # gemm
])
def test_the_plan_runs_on_the_reference_backend_as_on_the_cpu(shape, weight, stride, padding, groups):
    """Conv2d with kernels=reference (float64 loops) equals Conv2d with the CPU kernels, path by path."""
    from minidl.kernels.reference import conv as ref_conv

    rng = np.random.default_rng(3)
    x, w, b = rng.standard_normal(shape), rng.standard_normal(weight), rng.standard_normal(weight[0])
    options = dict(stride=stride, padding=padding, dilation=(1, 1), groups=groups)
    fast, slow = Conv2d(), Conv2d(kernels=ref_conv)
    np.testing.assert_allclose(fast(x, w, b, **options), slow(x, w, b, **options), rtol=1e-10, atol=1e-10)
    assert fast.kernels is cpu_conv and fast.path == slow.path
    g = rng.standard_normal(fast(x, w, b, **options).shape)
    for got, want in zip(fast.backward(g), slow.backward(g)):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10)
