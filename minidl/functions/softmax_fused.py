"""Fused softmax over the last dimension: the row softmax attention runs on its scores.

``F.softmax`` (``minidl.functions.activation.Softmax``) is plain array code for any ``dim``
and a temperature; it has no fused kernel. Attention always normalises the last dimension
of a (batch * heads, L, S) score tensor, so this op calls one Numba (or CUDA) kernel per
direction instead: ``kernels/cpu/softmax.py`` and ``kernels/cuda/softmax.py``, with the
float64 reference and the derivation in ``kernels/reference/softmax.py``.

>>> import numpy as np
>>> fn = SoftmaxLastDim()
>>> fn(np.array([[0.0, np.log(3.0)]])).round(3).tolist()
[[0.25, 0.75]]
"""
from minidl.functions.function import Function


class SoftmaxLastDim(Function):
    """y = softmax(x) along the last dimension; backward dx = y * (g - sum(g * y)).

    ``safe=True``: a row that is -inf everywhere (a query with every key masked) gives zeros
    and a zero gradient instead of NaN, as PyTorch's scaled_dot_product_attention.
    """

    kernel_family = "softmax"

    def forward(self, x, safe=False):
        y = self.kernels.softmax_forward(x, safe)
        self.save_for_backward(y)  # the gradient needs only the output
        return y

    def backward(self, g):
        (y,) = self.saved
        return (self.kernels.softmax_backward(y, g),)
