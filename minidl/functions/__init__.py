"""The Function floor: differentiable operations on raw arrays, one module per op family.

Each op is a :class:`Function` subclass with ``forward``/``backward`` on NumPy (or CuPy)
arrays, saving only what backward needs; ops with a fused kernel name their
``kernel_family`` and call the kernel module chosen once per call. Nothing here imports
the Tensor: :func:`minidl.tensor.apply` turns a Function's output into a Tensor, and
``minidl.nn.functional`` / ``minidl.ops`` hold the public Tensor-level wrappers.

Modules: ``arith`` (+ - * / pow exp log sqrt abs clamp matmul where max/min), ``math``
(trigonometry, exp/log variants, rounding, division modes, prod, logsumexp, norms), ``scan``
(cumsum/cumprod/logcumsumexp, and the index choices of sort, cummax, median, mode), ``activation``,
``reduce`` (sum mean var max/min), ``shape`` (reshape permute expand getitem cat stack pad),
``conv`` (and the conv path plan), ``pooling``, ``norm``, ``loss``, ``roi``, ``index`` (flip roll
tril/triu diagonals scatter index_add), ``linalg`` (einsum).
"""
from minidl.functions.function import Function, unbroadcast

__all__ = ["Function", "unbroadcast"]
