"""Every public op of minidl.nn.functional and every Tensor method, on "cuda" against the CPU.

``python tests/gpu_op_audit.py`` runs each op (and its backward, where it has one) on small inputs on
both devices, compares the results and prints one line per op; the exit status is the number of ops
that failed. tests/test_gpu_paths.py runs it on the fake CuPy (tests/fake_cupy, the Numba CUDA
simulator), tests/test_gpu.py on a real GPU. docs/gpu.md lists the outcome. The tables below must name
every public function of ``minidl.nn.functional`` (``missing()``): a new op gets an entry here, so
that its GPU path is checked too. Tensor methods not named in ``TENSOR`` run with no arguments.
"""
from __future__ import annotations

import sys

import numpy as np

import minidl
import minidl.nn.functional as F

RNG = np.random.default_rng(0)


def _r(*shape):
    return RNG.standard_normal(shape).astype(np.float32)


X2, X3, X4, X5 = _r(4, 6), _r(2, 4, 8), _r(2, 4, 6, 6), _r(1, 2, 4, 4, 4)
T6 = np.array([1, 0, 5, 2])           # class targets for (4, 6) logits, a NumPy array: moved to the device


def _t(array, device):
    return minidl.tensor(array, device=device)


# name -> (function of the input tensors and the device, input arrays); inputs get requires_grad
FUNCTIONAL = {
    "adaptive_avg_pool1d": (lambda x, d: F.adaptive_avg_pool1d(x, 3), [X3]),
    "adaptive_avg_pool2d": (lambda x, d: F.adaptive_avg_pool2d(x, 4), [X4]),
    "adaptive_avg_pool3d": (lambda x, d: F.adaptive_avg_pool3d(x, 2), [X5]),
    "adaptive_max_pool1d": (lambda x, d: F.adaptive_max_pool1d(x, 3), [X3]),
    "adaptive_max_pool1d_with_indices": (lambda x, d: F.adaptive_max_pool1d_with_indices(x, 3)[0], [X3]),
    "adaptive_max_pool2d": (lambda x, d: F.adaptive_max_pool2d(x, 4), [X4]),
    "adaptive_max_pool2d_with_indices": (lambda x, d: F.adaptive_max_pool2d_with_indices(x, 4)[0], [X4]),
    "adaptive_max_pool3d": (lambda x, d: F.adaptive_max_pool3d(x, 2), [X5]),
    "adaptive_max_pool3d_with_indices": (lambda x, d: F.adaptive_max_pool3d_with_indices(x, 2)[0], [X5]),
    "avg_pool1d": (lambda x, d: F.avg_pool1d(x, 3, 2, 1), [X3]),
    "avg_pool2d": (lambda x, d: F.avg_pool2d(x, 3, 2, 1, ceil_mode=True), [X4]),
    "avg_pool3d": (lambda x, d: F.avg_pool3d(x, 2), [X5]),
    "max_pool1d": (lambda x, d: F.max_pool1d(x, 2), [X3]),
    "max_pool1d_with_indices": (lambda x, d: F.max_pool1d_with_indices(x, 2)[0], [X3]),
    "max_pool2d": (lambda x, d: F.max_pool2d(x, 3, 2, 1, dilation=2, ceil_mode=True), [X4]),
    "max_pool2d_with_indices": (lambda x, d: F.max_pool2d_with_indices(x, 2)[0], [X4]),
    "max_pool3d": (lambda x, d: F.max_pool3d(x, 2), [X5]),
    "max_pool3d_with_indices": (lambda x, d: F.max_pool3d_with_indices(x, 2)[0], [X5]),
    "max_unpool1d": (lambda x, d: F.max_unpool1d(*F.max_pool1d_with_indices(x, 2), 2), [X3]),
    "max_unpool2d": (lambda x, d: F.max_unpool2d(*F.max_pool2d_with_indices(x, 2), 2), [X4]),
    "max_unpool3d": (lambda x, d: F.max_unpool3d(*F.max_pool3d_with_indices(x, 2), 2), [X5]),
    "lp_pool1d": (lambda x, d: F.lp_pool1d(x.abs() + 0.1, 2.0, 2), [X3]),
    "lp_pool2d": (lambda x, d: F.lp_pool2d(x.abs() + 0.1, 2.0, 2), [X4]),
    "lp_pool3d": (lambda x, d: F.lp_pool3d(x.abs() + 0.1, 2.0, 2), [X5]),
    "batch_norm": (lambda x, w, b, d: F.batch_norm(x, None, None, w, b, training=True), [X4, _r(4), _r(4)]),
    "instance_norm": (lambda x, d: F.instance_norm(x), [X4]),
    "group_norm": (lambda x, w, b, d: F.group_norm(x, 2, w, b), [X4, _r(4), _r(4)]),
    "layer_norm": (lambda x, w, b, d: F.layer_norm(x, (6,), w, b), [X2, _r(6), _r(6)]),
    "rms_norm": (lambda x, d: F.rms_norm(x, (6,)), [X2]),
    "local_response_norm": (lambda x, d: F.local_response_norm(x, 3), [X4]),
    "normalize": (lambda x, d: F.normalize(x, p=1.0, dim=1), [X2]),
    "conv1d": (lambda x, w, d: F.conv1d(x, w, padding=1), [X3, _r(3, 4, 3)]),
    "conv2d": (lambda x, w, d: F.conv2d(x, w, stride=2, padding=1, groups=2), [X4, _r(4, 2, 3, 3)]),
    "conv3d": (lambda x, w, d: F.conv3d(x, w), [X5, _r(3, 2, 2, 2, 2)]),
    "conv_transpose1d": (lambda x, w, d: F.conv_transpose1d(x, w, stride=2), [X3, _r(4, 3, 3)]),
    "conv_transpose2d": (lambda x, w, d: F.conv_transpose2d(x, w, stride=2, padding=1), [X4, _r(4, 3, 3, 3)]),
    "conv_transpose3d": (lambda x, w, d: F.conv_transpose3d(x, w), [X5, _r(2, 3, 2, 2, 2)]),
    "linear": (lambda x, w, b, d: F.linear(x, w, b), [X2, _r(3, 6), _r(3)]),
    "embedding": (lambda w, d: F.embedding(_t([[1, 3], [0, 1]], d), w, padding_idx=0, max_norm=1.0), [_r(5, 3)]),
    "embedding_bag": (lambda w, d: F.embedding_bag(_t([0, 2, 1, 0, 3], d), w, _t([0, 2], d), mode="max"),
                      [_r(5, 3)]),
    "one_hot": (lambda x, d: F.one_hot(_t([1, 3, 0], d), 4).float() * x.sum(), [X2]),
    "pad": (lambda x, d: F.pad(x, (1, 2, 2, 1), mode="reflect") + F.pad(x, (1, 2, 2, 1), mode="circular"), [X4]),
    "dropout": (lambda x, d: F.dropout(x, 0.0), [X2]),
    "dropout2d": (lambda x, d: F.dropout2d(x, 0.0), [X4]),
    "channel_shuffle": (lambda x, d: F.channel_shuffle(x, 2), [X4]),
    "pixel_shuffle": (lambda x, d: F.pixel_shuffle(x, 2), [X4]),
    "pixel_unshuffle": (lambda x, d: F.pixel_unshuffle(x, 2), [X4]),
    "fold": (lambda x, d: F.fold(x, (4, 4), 2, stride=2), [_r(2, 8, 4)]),
    "unfold": (lambda x, d: F.unfold(x, 2, stride=2), [X4]),
    "interpolate": (lambda x, d: sum(F.interpolate(x, size=(9, 7), mode=m, **({} if m in ("nearest", "area") else
                                                                                  dict(align_corners=False))).sum()
                                     for m in ("nearest", "bilinear", "bicubic", "area")), [X4]),
    "upsample": (lambda x, d: F.upsample(x, scale_factor=2), [X4]),
    "upsample_bilinear": (lambda x, d: F.upsample_bilinear(x, scale_factor=2), [X4]),
    "upsample_nearest": (lambda x, d: F.upsample_nearest(x, scale_factor=2), [X4]),
    "scaled_dot_product_attention": (lambda q, k, v, d: F.scaled_dot_product_attention(q, k, v, is_causal=True),
                                     [_r(2, 3, 5, 4), _r(2, 3, 5, 4), _r(2, 3, 5, 4)]),
    "lstm_cell": (lambda x, h, c, wi, wh, d: F.lstm_cell(x, (h, c), wi, wh)[0],
                  [_r(2, 3), _r(2, 4), _r(2, 4), _r(16, 3), _r(16, 4)]),
    "gru_cell": (lambda x, h, wi, wh, d: F.gru_cell(x, h, wi, wh), [_r(2, 3), _r(2, 4), _r(12, 3), _r(12, 4)]),
    "rnn_tanh_cell": (lambda x, h, wi, wh, d: F.rnn_tanh_cell(x, h, wi, wh), [_r(2, 3), _r(2, 4), _r(4, 3), _r(4, 4)]),
    "rnn_relu_cell": (lambda x, h, wi, wh, d: F.rnn_relu_cell(x, h, wi, wh), [_r(2, 3), _r(2, 4), _r(4, 3), _r(4, 4)]),
    "glu": (lambda x, d: F.glu(x), [X2]),
    "softmax": (lambda x, d: F.softmax(x, 1), [X2]),
    "log_softmax": (lambda x, d: F.log_softmax(x, 1), [X2]),
    "softmin": (lambda x, d: F.softmin(x, 1), [X2]),
    "where": (lambda x, d: F.where(x > 0, x, x * 2), [X2]),
    "cross_entropy": (lambda z, d: F.cross_entropy(z, T6, label_smoothing=0.1), [X2]),
    "nll_loss": (lambda z, d: F.nll_loss(F.log_softmax(z, 1), T6), [X2]),
    "mse_loss": (lambda a, b, d: F.mse_loss(a, b), [X2, _r(4, 6)]),
    "l1_loss": (lambda a, b, d: F.l1_loss(a, b), [X2, _r(4, 6)]),
    "smooth_l1_loss": (lambda a, b, d: F.smooth_l1_loss(a, b), [X2, _r(4, 6)]),
    "binary_cross_entropy": (lambda a, b, d: F.binary_cross_entropy(F.sigmoid(a), F.sigmoid(b)), [X2, _r(4, 6)]),
    "binary_cross_entropy_with_logits": (lambda a, b, d: F.binary_cross_entropy_with_logits(a, F.sigmoid(b)),
                                         [X2, _r(4, 6)]),
}
for _name in ("celu", "elu", "gelu", "hardshrink", "hardsigmoid", "hardswish", "hardtanh", "leaky_relu", "logsigmoid",
              "mish", "relu", "relu6", "selu", "sigmoid", "silu", "softplus", "softshrink", "softsign", "tanh",
              "tanhshrink"):
    FUNCTIONAL[_name] = ((lambda f: lambda x, d: f(x))(getattr(F, _name)), [X2])
# not ops on tensors: classes, the array-module helper, argument parsing
FUNCTIONAL_HELPERS = {"SoftmaxCrossEntropy", "Tensor", "apply", "get_array_module", "pair"}

A = (RNG.random((3, 4)) + 0.2).astype(np.float32)
B = (RNG.random((3, 4)) + 0.2).astype(np.float32)
IDX = np.array([[0, 2], [1, 1], [3, 0]])
INTS = np.array([[5, 3], [6, 1]])


def _with_b(d):
    return (_t(B, d),)


# Tensor method -> function of the device giving its arguments (the tensor is A, float32, requires_grad
# unless the method works in place); "ints" methods run on INTS
TENSOR = {name: _with_b for name in (
    "add", "sub", "mul", "div", "divide", "true_divide", "maximum", "minimum", "fmax", "fmin", "atan2", "arctan2",
    "logaddexp", "eq", "ne", "lt", "le", "gt", "ge", "isclose", "inner", "add_", "sub_", "mul_", "div_", "copy_")}
TENSOR.update({
    "pow": lambda d: (2.0,), "pow_": lambda d: (2.0,), "fmod": lambda d: (0.3,), "remainder": lambda d: (0.3,),
    "floor_divide": lambda d: (0.3,), "copysign": lambda d: (_t(B - 0.5, d),), "lerp": lambda d: (_t(B, d), 0.3),
    "clamp": lambda d: (0.4, 0.8), "clip": lambda d: (0.4, 0.8), "clamp_": lambda d: (0.4, 0.8),
    "clip_": lambda d: (0.4, 0.8), "clamp_min": lambda d: (0.4,), "clamp_max": lambda d: (0.8,),
    "clamp_min_": lambda d: (0.4,), "clamp_max_": lambda d: (0.8,),
    "matmul": lambda d: (_t(B.T, d),), "mm": lambda d: (_t(B.T, d),), "mv": lambda d: (_t(B[0], d),),
    "gather": lambda d: (1, _t(IDX, d)), "take_along_dim": lambda d: (_t(IDX, d), 1),
    "take": lambda d: (_t(np.array([0, 5, 11]), d),), "index_select": lambda d: (0, _t(np.array([2, 0]), d)),
    "index_add": lambda d: (0, _t(np.array([2, 0]), d), _t(B[:2], d)),
    "index_add_": lambda d: (0, _t(np.array([2, 0]), d), _t(B[:2], d)),
    "scatter": lambda d: (1, _t(IDX, d), _t(B[:, :2], d)), "scatter_": lambda d: (1, _t(IDX, d), _t(B[:, :2], d)),
    "scatter_add": lambda d: (1, _t(IDX, d), _t(B[:, :2], d)),
    "scatter_reduce": lambda d: (1, _t(IDX, d), _t(B[:, :2], d), "amax"),
    "masked_fill": lambda d: (_t(A > 0.6, d), 0.0), "masked_fill_": lambda d: (_t(A > 0.6, d), 0.0),
    "masked_select": lambda d: (_t(A > 0.6, d),), "where": lambda d: (_t(A > 0.6, d), _t(B, d)),
    "logical_and": lambda d: (_t(B > 0.5, d),), "logical_or": lambda d: (_t(B > 0.5, d),),
    "logical_xor": lambda d: (_t(B > 0.5, d),),
    "topk": lambda d: (2, 1), "kthvalue": lambda d: (2, 1), "split": lambda d: (2, 1), "chunk": lambda d: (2, 1),
    "reshape": lambda d: (4, 3), "view": lambda d: (12,), "permute": lambda d: (1, 0), "transpose": lambda d: (0, 1),
    "swapaxes": lambda d: (0, 1), "swapdims": lambda d: (0, 1), "moveaxis": lambda d: (0, 1),
    "movedim": lambda d: (0, 1), "expand": lambda d: (2, 3, 4), "repeat": lambda d: (2, 1),
    "repeat_interleave": lambda d: (2,), "roll": lambda d: (1, 1), "flip": lambda d: (0,), "narrow": lambda d: (1, 1, 2),
    "select": lambda d: (1, 2), "unfold": lambda d: (1, 2, 1), "unflatten": lambda d: (1, (2, 2)),
    "unsqueeze": lambda d: (0,), "expand_as": lambda d: (_t(np.zeros((2, 3, 4), np.float32), d),),
    "view_as": lambda d: (_t(B.reshape(4, 3), d),), "type": lambda d: ("float64",), "fill_": lambda d: (1.0,),
    "allclose": _with_b,
})
for _name in ("max", "min", "amax", "amin", "argmax", "argmin", "sort", "argsort", "median", "mode", "cumsum",
              "cumprod", "cummax", "cummin", "logcumsumexp", "logsumexp", "softmax", "log_softmax", "sum", "mean",
              "prod"):
    TENSOR[_name] = lambda d: (1,)
for _name in ("bitwise_and", "bitwise_or", "bitwise_xor", "bitwise_left_shift", "bitwise_right_shift"):
    TENSOR[_name] = "ints"
TENSOR["bitwise_not"] = "ints0"
# methods that are not ops on the data, move data between devices on purpose, or need other shapes (their
# device paths are covered by tests/test_gpu_paths.py and tests/test_gpu.py)
TENSOR_NOT_AUDITED = {"backward", "register_hook", "register_post_accumulate_grad_hook", "retain_grad", "requires_grad_", "detach_", "to", "cuda", "cpu",
                      "numpy", "item", "tolist", "normal_", "uniform_", "bitcast", "dim", "numel", "size",
                      "is_inference", "addbmm", "addmm", "addmv", "addr", "baddbmm", "bmm", "cross", "dot", "ger",
                      "outer"}


def missing():
    """Public functions of minidl.nn.functional that the FUNCTIONAL table does not name."""
    f_names = {n for n in dir(F) if not n.startswith("_") and callable(getattr(F, n))}
    return sorted(f_names - set(FUNCTIONAL) - FUNCTIONAL_HELPERS)


def _host(value):
    if isinstance(value, (tuple, list)):
        value = value[0]
    if isinstance(value, minidl.Tensor):
        return value.numpy()
    return np.asarray(value)


def _functional(name, device):
    fn, arrays = FUNCTIONAL[name]
    inputs = [minidl.tensor(a, device=device, requires_grad=True) for a in arrays]
    out = fn(*inputs, device)
    out = out[0] if isinstance(out, tuple) else out
    if out.requires_grad:
        (out.float() * out.float()).sum().backward()
    return [out.numpy()] + [t.grad.numpy() for t in inputs if t.grad is not None]


def _tensor_method(name, device):
    spec = TENSOR.get(name, lambda d: ())
    if spec in ("ints", "ints0"):
        x = _t(INTS, device)
        return [_host(getattr(x, name)(*(() if spec == "ints0" else (_t(INTS[::-1] % 3 + 1, device),))))]
    in_place = name.endswith("_")
    x = minidl.tensor(A.copy(), device=device, requires_grad=not in_place)
    out = getattr(x, name)(*spec(device))
    first = out[0] if isinstance(out, (tuple, list)) else out
    results = [_host(first)]
    if isinstance(first, minidl.Tensor) and first.requires_grad:
        (first.float() * first.float()).sum().backward()
        results.append(x.grad.numpy())
    return results


def audit(names=None):
    """{("functional" or "Tensor", name): None when the device agrees with the CPU, else the error text}."""
    outcome = {}
    jobs = [("functional", n, _functional) for n in FUNCTIONAL] + [("Tensor", n, _tensor_method) for n in TENSOR]
    jobs += [("Tensor", n, _tensor_method) for n in sorted(
        {n for n in dir(minidl.Tensor) if not n.startswith("_") and callable(getattr(minidl.Tensor, n, None))}
        - set(TENSOR) - TENSOR_NOT_AUDITED)]
    for kind, name, run in jobs:
        if names and name not in names:
            continue
        try:
            cpu, gpu = run(name, "cpu"), run(name, "cuda")
            assert len(cpu) == len(gpu), f"{len(gpu)} results on the device, {len(cpu)} on the CPU"
            for a, b in zip(gpu, cpu):
                np.testing.assert_allclose(np.asarray(a, dtype=float), np.asarray(b, dtype=float), rtol=1e-4, atol=1e-5)
            outcome[(kind, name)] = None
        except Exception as exc:  # noqa: BLE001 - the audit reports every failure, whatever its kind
            outcome[(kind, name)] = f"{type(exc).__name__}: {str(exc)[:300]}"
    return outcome


def main(argv=None):
    outcome = audit(set(argv or sys.argv[1:]) or None)
    for (kind, name), error in sorted(outcome.items()):
        print(f"{'ok  ' if error is None else 'FAIL'} {kind:10s} {name}" + ("" if error is None else f": {error}"))
    failed = sum(error is not None for error in outcome.values())
    unlisted = missing()
    print(f"{len(outcome) - failed} of {len(outcome)} ops agree with the CPU on the device"
          + (f"; add to FUNCTIONAL: {unlisted}" if unlisted else ""))
    return failed + len(unlisted)


if __name__ == "__main__":
    sys.exit(main())
