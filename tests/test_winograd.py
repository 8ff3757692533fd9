"""Winograd F(4x4, 3x3) convolution and the BLAS thread helpers it runs on.

Accuracy stated and asserted here: against the float64 direct convolution, the float32 CPU
kernel's error is below 1e-4 of max |y| (and of max |grad|) for unit-scale data; measured
~1e-6 to 5e-6. In float64 the Winograd path agrees to 1e-12.
"""
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import minidl
import minidl.nn.functional as F
from minidl.functions import conv as plan
from minidl.kernels.cpu import blas, conv as cpu_conv, winograd
from minidl.kernels.reference import conv as ref, winograd as ref_winograd

SHAPES = [  # (N, C, H, W), K, padding
    ((2, 3, 9, 7), 5, (1, 1)),
    ((1, 4, 6, 6), 5, (0, 0)),
    ((2, 2, 5, 11), 3, (2, 1)),
    ((3, 5, 4, 4), 2, (1, 1)),
    ((1, 16, 3, 3), 16, (1, 1)),  # one tile, mostly padding
]


def _data(shape, k_out, dtype, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape).astype(dtype)
    w = rng.standard_normal((k_out, shape[1], 3, 3)).astype(dtype)
    b = rng.standard_normal(k_out).astype(dtype)
    return x, w, b


def _direct(x, w, b, padding, gy=None):
    args = ((1, 1), padding, (1, 1), 1)
    x, w = x.astype(np.float64), w.astype(np.float64)
    if gy is None:
        return ref.conv2d_forward(x, w, None if b is None else b.astype(np.float64), *args)
    return ref.conv2d_backward(gy.astype(np.float64), x, w, *args)


@pytest.mark.parametrize("shape, k_out, padding", SHAPES)
def test_reference_winograd_equals_direct_convolution(shape, k_out, padding):
    x, w, b = _data(shape, k_out, np.float64)
    y = ref_winograd.conv3x3_forward(x, w, b, padding)
    np.testing.assert_allclose(y, _direct(x, w, b, padding), rtol=1e-12, atol=1e-12)
    gy = np.random.default_rng(1).standard_normal(y.shape)
    gx, gw = ref_winograd.conv3x3_backward(gy, x, w, padding)
    rgx, rgw, _ = _direct(x, w, b, padding, gy)
    np.testing.assert_allclose(gx, rgx, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(gw, rgw, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype, bound", [(np.float64, 1e-12), (np.float32, 1e-4)])
@pytest.mark.parametrize("shape, k_out, padding", SHAPES)
def test_cpu_kernel_matches_direct_convolution(shape, k_out, padding, dtype, bound):
    x, w, b = _data(shape, k_out, dtype)
    y = winograd.winograd_forward(x, w, b, padding)
    want = _direct(x, w, b, padding)
    assert y.dtype == dtype and y.shape == want.shape
    assert np.abs(y - want).max() <= bound * np.abs(want).max()
    gy = np.random.default_rng(1).standard_normal(y.shape).astype(dtype)
    gx, gw = winograd.winograd_backward(gy, x, w, padding)
    rgx, rgw, _ = _direct(x, w, b, padding, gy)
    for got, want in ((gx, rgx), (gw, rgw)):
        assert got.dtype == dtype and got.shape == want.shape
        assert np.abs(got - want).max() <= bound * np.abs(want).max()
    only_x, none_w = winograd.winograd_backward(gy, x, w, padding, needs_weight_grad=False)
    none_x, only_w = winograd.winograd_backward(gy, x, w, padding, needs_input_grad=False)
    assert none_w is None and none_x is None
    np.testing.assert_array_equal(only_x, gx)
    np.testing.assert_array_equal(only_w, gw)


def test_scratch_reuse_does_not_leak_between_calls():
    """Two convolutions of different shapes in a row: the workspace is reused, results stay right."""
    big = _data((2, 16, 12, 12), 24, np.float32)
    small = _data((1, 16, 5, 5), 16, np.float32, seed=3)
    y_small_first = winograd.winograd_forward(*small, (1, 1))
    winograd.winograd_forward(*big, (1, 1))
    np.testing.assert_array_equal(winograd.winograd_forward(*small, (1, 1)), y_small_first)
    winograd.release_workspace()
    np.testing.assert_array_equal(winograd.winograd_forward(*small, (1, 1)), y_small_first)


def test_plan_takes_winograd_for_dense_stride1_3x3_on_the_cpu_only():
    wide = dict(winograd=True)
    assert plan.conv_plan((2, 16, 8, 8), (16, 16, 3, 3), (1, 1), (1, 1), 1, (1, 1), **wide) == "winograd"
    assert plan.conv_plan((2, 16, 8, 8), (16, 16, 3, 3), (1, 1), (1, 1), 1, (1, 1)) == "gemm"  # no kernel
    assert plan.conv_plan((2, 3, 8, 8), (24, 3, 3, 3), (1, 1), (1, 1), 1, (1, 1), **wide) == "gemm"  # RGB in
    assert plan.conv_plan((2, 16, 8, 8), (16, 16, 3, 3), (2, 2), (1, 1), 1, (1, 1), **wide) == "gemm"
    assert plan.conv_plan((2, 16, 8, 8), (16, 16, 3, 3), (1, 1), (2, 2), 1, (2, 2), **wide) == "gemm"
    assert plan.conv_plan((2, 32, 8, 8), (32, 16, 3, 3), (1, 1), (1, 1), 2, (1, 1), **wide) == "gemm"
    assert plan.conv_plan((2, 16, 7, 7), (16, 16, 3, 3), (1, 1), (1, 1), 1, (1, 1), **wide) == "gemm"  # 7x7 out
    assert plan.conv_plan((2, 16, 10, 10), (16, 16, 3, 3), (1, 1), (0, 0), 1, (1, 1), **wide) == "winograd"
    assert plan.conv_plan((2, 1, 32, 32), (6, 1, 5, 5), (1, 1), (0, 0), 1, (1, 1), **wide) == "direct"  # LeNet conv1
    assert plan.conv_plan((2, 3, 32, 32), (32, 3, 3, 3), (1, 1), (1, 1), 1, (1, 1), **wide) == "gemm"
    assert plan.conv_plan((2, 1, 32, 32), (6, 1, 5, 5), (2, 2), (0, 0), 1, (1, 1), **wide) == "gemm"
    fn = plan.Conv2d()
    fn(*_data((1, 16, 8, 8), 16, np.float32), stride=(1, 1), padding=(1, 1))
    assert fn.path == "winograd" and hasattr(cpu_conv, "winograd_forward")


def test_gradcheck_through_the_winograd_path():
    rng = np.random.default_rng(0)
    x = minidl.tensor(rng.standard_normal((1, 16, 8, 9)), requires_grad=True)
    w = minidl.tensor(rng.standard_normal((16, 16, 3, 3)) * 0.1, requires_grad=True)
    b = minidl.tensor(rng.standard_normal(16), requires_grad=True)
    assert minidl.gradcheck(lambda x, w, b: F.conv2d(x, w, b, padding=1), (x, w, b))


def test_matches_torch_float32():
    torch = pytest.importorskip("torch")
    x, w, b = _data((4, 32, 14, 14), 48, np.float32)
    tx, tw, tb = (torch.from_numpy(a.copy()).requires_grad_() for a in (x, w, b))
    ty = torch.nn.functional.conv2d(tx, tw, tb, padding=1)
    gy = np.random.default_rng(2).standard_normal(ty.shape).astype(np.float32)
    ty.backward(torch.from_numpy(gy))
    mx, mw, mb = (minidl.tensor(a, requires_grad=True) for a in (x, w, b))
    my = F.conv2d(mx, mw, mb, padding=1)
    my.backward(minidl.tensor(gy))
    for got, want in ((my, ty), (mx.grad, tx.grad), (mw.grad, tw.grad), (mb.grad, tb.grad)):
        want = want.detach().numpy()
        assert np.abs(got.numpy() - want).max() <= 1e-4 * np.abs(want).max()


@pytest.mark.parametrize("m, k, n", [(64, 576, 2048), (300, 40, 7), (5, 3, 4), (0, 3, 4)])
def test_blas_matmul_splits_and_restores_thread_count(m, k, n):
    rng = np.random.default_rng(0)
    a = rng.standard_normal((m, k)).astype(np.float32)
    b = rng.standard_normal((k, n)).astype(np.float32)
    before = [c.get_num_threads() for c in blas._controllers()]
    np.testing.assert_allclose(blas.matmul(a, b), a @ b, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(blas.matmul(a.T.copy().T, b), a @ b, rtol=1e-5, atol=1e-4)
    outs = [np.empty((m, n), np.float32) for _ in range(3)]
    blas.matmul_many([a] * 3, [b, 2 * b, 3 * b], outs)
    for i, out in enumerate(outs):
        np.testing.assert_allclose(out, (i + 1) * (a @ b), rtol=1e-5, atol=1e-3)
    assert [c.get_num_threads() for c in blas._controllers()] == before


def test_threads_from_dataloader_and_training_do_not_abort():
    """Numba's workqueue layer aborts on concurrent launches; minidl's kernels hold the GIL, so
    DataLoader worker threads running convolutions next to a training step must be safe."""
    code = textwrap.dedent("""
        import threading, numpy as np, numba, minidl, minidl.nn as nn, minidl.nn.functional as F
        from minidl.kernels.cpu import threading_report
        x = minidl.tensor(np.random.rand(4, 16, 12, 12).astype(np.float32), requires_grad=True)
        w = minidl.tensor(np.random.rand(16, 16, 3, 3).astype(np.float32), requires_grad=True)
        def work():
            for _ in range(20):
                F.max_pool2d(F.conv2d(x, w, padding=1), 2).sum().backward()
        threads = [threading.Thread(target=work) for _ in range(3)]
        [t.start() for t in threads]; work(); [t.join() for t in threads]
        print(threading_report()["numba_layer"])
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "workqueue"


def test_threading_layer_is_the_same_whatever_the_import_order():
    pytest.importorskip("torch")
    code = ("import {first}, {second}, numpy as np\n"
            "from minidl.kernels.cpu import conv, threading_report\n"
            "conv.im2col(np.zeros((1, 2, 4, 4), np.float32), 3, 3, (1, 1), (1, 1), (1, 1))\n"
            "print(threading_report()['numba_layer'])")
    for first, second in (("torch", "minidl"), ("minidl", "torch")):
        out = subprocess.run([sys.executable, "-c", code.format(first=first, second=second)],
                             capture_output=True, text=True, timeout=600)
        assert out.returncode == 0, out.stderr
        assert out.stdout.strip() == "workqueue"
