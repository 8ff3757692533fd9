"""Numerical gradient checking by central differences, in float64.

For a function f of tensors x_1..x_k with a tensor output y, backward computes
for a random projection v the vector-Jacobian product d(v . y)/dx_i. The
numerical estimate perturbs one element at a time:

    d(v . y)/dx_i[j] ~ (v . f(x_i[j] + eps) - v . f(x_i[j] - eps)) / (2 eps)

with an error of O(eps^2). The two must agree within ``atol + rtol * |numeric|``.
"""
from __future__ import annotations

import numpy as np

from .tensor import Tensor


class GradcheckError(AssertionError):
    """Raised when an analytic gradient disagrees with the numerical one."""


def _outputs(fn, inputs):
    out = fn(*inputs)
    outs = out if isinstance(out, (tuple, list)) else (out,)
    return [o for o in outs if isinstance(o, Tensor) and o.dtype.kind == "f"]


def gradcheck(fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-3, raise_exception=True, seed=0):
    """Check ``fn``'s backward against central differences for every input that requires grad.

    ``inputs`` is a tensor or a sequence of tensors (float64 recommended; others are
    passed through unchanged). Returns True, or raises :class:`GradcheckError` naming
    the input, the element index, and the analytic and numeric values.

    >>> import minidl
    >>> x = minidl.randn(3, 4, dtype="float64", requires_grad=True)
    >>> minidl.gradcheck(lambda t: (t * t).sum(dim=1), [x])
    True
    """
    report = gradcheck_report(fn, inputs, eps=eps, seed=seed)
    for item in report:
        bad = item["abs_error"] > atol + rtol * np.abs(item["numeric"])
        if bad.any():
            j = int(np.flatnonzero(bad)[0])
            index = np.unravel_index(j, item["shape"])
            message = (
                f"gradcheck: gradient of input {item['input']} (shape {item['shape']}) is wrong at index "
                f"{tuple(int(i) for i in index)}: analytic {item['analytic'][j]:.8g}, numeric "
                f"{item['numeric'][j]:.8g} (|difference| {item['abs_error'][j]:.3g} > atol {atol} + rtol {rtol} * |numeric|)"
            )
            if raise_exception:
                raise GradcheckError(message)
            return False
    return True


def gradcheck_report(fn, inputs, eps=1e-6, seed=0):
    """Analytic and numeric gradients per input (flattened), for tables and messages."""
    if isinstance(inputs, Tensor):
        inputs = [inputs]
    inputs = list(inputs)
    checked = [i for i, t in enumerate(inputs) if isinstance(t, Tensor) and t.requires_grad]
    if not checked:
        raise ValueError("gradcheck: no input requires grad; pass tensors created with requires_grad=True")
    for i in checked:
        if inputs[i].dtype != np.float64:
            raise TypeError(f"gradcheck: input {i} has dtype {inputs[i].dtype}; use float64 for a meaningful check")

    rng = np.random.default_rng(seed)
    outs = _outputs(fn, inputs)
    projections = [rng.standard_normal(o.shape) for o in outs]

    saved_grads = {i: inputs[i].grad for i in checked}  # restored at the end: gradcheck leaves .grad as it was
    for i in checked:
        inputs[i].grad = None
    total = None
    for o, v in zip(outs, projections):
        term = (o * Tensor(v, dtype=o.dtype)).sum()
        total = term if total is None else total + term
    total.backward()

    def projected(values):
        return sum(float((o.data.astype(np.float64) * v).sum()) for o, v in zip(_outputs(fn, inputs), values))

    report = []
    for i in checked:
        x = inputs[i]
        if not x.data.flags.c_contiguous:
            x.data = np.ascontiguousarray(x.data)
        analytic = (x.grad.data if x.grad is not None else np.zeros(x.shape)).astype(np.float64).ravel()
        numeric = np.empty(x.data.size)
        flat = x.data.reshape(-1)  # a view: perturb in place
        for j in range(flat.size):
            original = flat[j]
            flat[j] = original + eps
            plus = projected(projections)
            flat[j] = original - eps
            minus = projected(projections)
            flat[j] = original
            numeric[j] = (plus - minus) / (2 * eps)
        report.append({
            "input": i,
            "shape": x.shape,
            "analytic": analytic,
            "numeric": numeric,
            "abs_error": np.abs(analytic - numeric),
        })
    for i, grad in saved_grads.items():
        inputs[i].grad = grad
    return report
