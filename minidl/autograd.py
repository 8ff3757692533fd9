"""``minidl.autograd``: define-by-run automatic differentiation, the public face of the engine's floors.

How the pieces stack (see ARCHITECTURE.md):

* ``minidl.functions``: every differentiable op is an array-level :class:`Function` with
  ``forward``/``backward`` on raw arrays (NumPy, or CuPy on a GPU); it never sees a Tensor.
* ``minidl.tensor``: :func:`apply` runs a Function on the arrays inside Tensors and links
  the output into the graph; :func:`backward` walks the graph in reverse topological order.
* here: the same names in one place, and :class:`Function` with an ``apply`` classmethod
  for users who write their own op on arrays::

    >>> import minidl
    >>> from minidl.autograd import Function
    >>> class Square(Function):
    ...     def forward(self, x):
    ...         self.save_for_backward(x)
    ...         return x * x
    ...     def backward(self, g):
    ...         (x,) = self.saved
    ...         return (2 * x * g,)
    >>> x = minidl.tensor([3.0], requires_grad=True)
    >>> Square.apply(x).sum().backward()
    >>> x.grad.tolist()
    [6.0]
"""
from __future__ import annotations

from minidl.backend import get_array_module
from minidl.functions import function as _function
from minidl.functions.function import unbroadcast
from minidl.grad_mode import (detect_anomaly, enable_grad, is_anomaly_enabled, is_grad_enabled, no_grad,
                              set_detect_anomaly, set_grad_enabled)
from minidl.tensor import apply, backward


class Function(_function.Function):
    """An array-level Function (see :mod:`minidl.functions.function`) that Tensors can be passed to.

    ``MyOp.apply(*inputs, **options)`` is ``minidl.tensor.apply(MyOp, *inputs, **options)``.
    """

    @classmethod
    def apply(cls, *inputs, **options):
        return apply(cls, *inputs, **options)


__all__ = ["Function", "apply", "backward", "detect_anomaly", "enable_grad", "get_array_module",
           "is_anomaly_enabled", "is_grad_enabled", "no_grad", "set_detect_anomaly", "set_grad_enabled", "unbroadcast"]
