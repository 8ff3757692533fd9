"""``minidl.autograd``: define-by-run automatic differentiation, the public face of the engine's floors.

How the pieces stack (see ARCHITECTURE.md):

* ``minidl.functions``: every differentiable op is an array-level Function with
  ``forward``/``backward`` on raw arrays (NumPy, or CuPy on a GPU); it never sees a Tensor.
* ``minidl.tensor``: :func:`apply` runs a Function on the arrays inside Tensors and links
  the output into the graph; the backward walk goes through the graph in reverse
  topological order. ``Tensor.grad_fn`` shows a recorded Function as PyTorch does
  (``name()``, ``next_functions``, AccumulateGrad at the leaves).
* here: :class:`Function` for users who write their own op, :func:`grad`, :func:`backward`,
  :func:`gradcheck`, and the grad-mode switches.

:class:`Function` takes two styles, told apart by how ``forward`` is defined:

* **PyTorch's style** (``@staticmethod forward(ctx, ...)``), on Tensors. ``Function.apply``
  runs the static ``forward`` under ``no_grad`` on the Tensors themselves, then records one
  *array-level* node per output with the ordinary :func:`minidl.tensor.apply`; that node's
  array-level ``backward`` wraps the incoming gradient array in a Tensor, calls the static
  ``backward(ctx, grad)`` under ``no_grad``, and hands the arrays of the returned Tensors back
  to the walk. So a user's Function is one more node of the same graph, built on the same
  mechanism as minidl's own ops::

    >>> import minidl
    >>> from minidl.autograd import Function
    >>> class MyReLU(Function):
    ...     @staticmethod
    ...     def forward(ctx, input):
    ...         ctx.save_for_backward(input)
    ...         return input.clamp(min=0)
    ...     @staticmethod
    ...     def backward(ctx, grad_output):
    ...         input, = ctx.saved_tensors
    ...         grad_input = grad_output.clone()
    ...         grad_input[input < 0] = 0
    ...         return grad_input
    >>> x = minidl.tensor([-1.0, 2.0], requires_grad=True)
    >>> y = MyReLU.apply(x)
    >>> y.grad_fn.name()
    'MyReLUBackward'
    >>> y.sum().backward()
    >>> x.grad.tolist()
    [0.0, 1.0]

* **minidl's array style** (instance methods ``forward(self, *arrays)``, ``self.saved``), the
  style of ``minidl/functions``: ``MyOp.apply(*tensors, **options)`` is exactly
  ``minidl.tensor.apply(MyOp, ...)``::

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

import functools
import inspect
import sys
import types

from minidl.backend import get_array_module
from minidl.functions import function as _function
from minidl.functions.function import unbroadcast
from minidl.gradcheck import GradcheckError, gradcheck
from minidl.graphviz import to_dot
from minidl.grad_mode import (detect_anomaly, enable_grad, inference_mode, is_anomaly_enabled, is_grad_enabled,
                              no_grad, set_detect_anomaly, set_grad_enabled)
from minidl.tensor import AccumulateGrad, Node, Tensor, apply, run_backward


class FunctionCtx:
    """The ``ctx`` a ctx-style :class:`Function` receives: what its forward leaves for its backward.

    ``needs_input_grad[i]`` says whether the i-th argument of forward is a Tensor that requires
    grad. Any other attribute may be set freely (``ctx.constant = 2``).
    """

    def __init__(self, needs_input_grad):
        self.needs_input_grad = needs_input_grad
        self.materialize_grads = True
        self._saved = ()
        self._saved_versions = ()
        self._non_differentiable = set()  # ids of outputs
        self._dirty = ()

    def save_for_backward(self, *tensors):
        """Keep Tensors (or None) for backward; an in-place change to one of them is then an error."""
        for t in tensors:
            if t is not None and not isinstance(t, Tensor):
                raise TypeError(f"save_for_backward can only save variables, but argument is of type {type(t).__name__}")
        self._saved = tensors
        self._saved_versions = tuple(t._version if t is not None else 0 for t in tensors)

    @property
    def saved_tensors(self):
        """The Tensors given to ``save_for_backward``, checked against in-place changes since."""
        for i, (t, version) in enumerate(zip(self._saved, self._saved_versions)):
            if t is not None and t._version != version:
                raise RuntimeError(
                    "one of the variables needed for gradient computation has been modified by an inplace "
                    f"operation: [{t.dtype} {list(t.shape)}], which is saved tensor {i}, is at version "
                    f"{t._version}; expected version {version} instead.")
        return self._saved

    def mark_non_differentiable(self, *outputs):
        """These outputs get no gradient: they do not require grad, and backward sees zeros for them."""
        self._non_differentiable.update(id(t) for t in outputs)

    def mark_dirty(self, *tensors):
        """These inputs were modified in place by forward (and are returned as outputs)."""
        self._dirty = tensors

    def set_materialize_grads(self, value):
        """With False, backward receives None (not zeros) for outputs that got no gradient."""
        self.materialize_grads = bool(value)


class _CustomBackward(_function.Function):
    """The array-level node that a ctx-style Function records, one per differentiable output.

    ``forward`` only hands back the output the static forward already computed; ``backward``
    calls the user's static ``backward`` with this output's gradient (zeros, or None, for the
    other outputs: backward is linear in its gradients, so the walk's sum over the outputs'
    nodes is the full vector-Jacobian product).
    """

    def __init__(self, function, ctx, index, outputs, inputs):
        super().__init__()
        self.function, self.ctx, self.index = function, ctx, index
        self.output_shapes = [(o.shape, o.dtype) if isinstance(o, Tensor) else None for o in outputs]
        self.input_kinds = [isinstance(a, Tensor) for a in inputs]
        self.output = outputs[index].data
        self.backward_name = f"{function.__name__}Backward"
        # the arrays backward will read, so that the engine's in-place checks cover them too
        self.save_for_backward(*(t.data for t in ctx._saved if t is not None))

    @property
    def name(self):
        return self.function.__name__

    def forward(self, *arrays):
        out, self.output = self.output, None
        return out

    def backward(self, g):
        grads = []
        for i, spec in enumerate(self.output_shapes):
            if i == self.index:
                grads.append(Tensor._wrap(g))
            elif spec is not None and self.ctx.materialize_grads:
                grads.append(Tensor._wrap(self.xp.zeros(spec[0], dtype=spec[1])))
            else:
                grads.append(None)
        with no_grad():
            result = self.function.backward(self.ctx, *grads)
        if not isinstance(result, tuple):
            result = (result,)
        expected = len(self.input_kinds)
        if len(result) < expected or any(r is not None for r in result[expected:]):
            raise RuntimeError(f"function {self.backward_name} returned an incorrect number of gradients "
                               f"(expected {expected}, got {len(result)})")
        arrays = []
        for i, (r, is_tensor) in enumerate(zip(result, self.input_kinds)):
            if r is None:
                arrays.append(None)
            elif not is_tensor:
                raise RuntimeError(f"function {self.backward_name} returned a gradient different than None at "
                                   f"position {i + 1}, but the corresponding forward input was not a Variable")
            else:
                arrays.append(r.data if isinstance(r, Tensor) else r)
        return tuple(arrays)


def _is_ctx_style(cls):
    return isinstance(inspect.getattr_static(cls, "forward", None), staticmethod)


class Function(_function.Function):
    """A user-defined differentiable op: PyTorch's ctx style, or minidl's array style (see the module doc)."""

    @classmethod
    def apply(cls, *args, **kwargs):
        if not _is_ctx_style(cls):
            return apply(cls, *args, **kwargs)
        ctx = FunctionCtx(tuple(isinstance(a, Tensor) and a.requires_grad for a in args))
        with no_grad():
            if "setup_context" in _defined_below(cls):  # PyTorch 2's split: forward(*args), setup_context(ctx, ...)
                outputs = cls.forward(*args, **kwargs)
                cls.setup_context(ctx, args, outputs)
            else:
                outputs = cls.forward(ctx, *args, **kwargs)
        single = not isinstance(outputs, tuple)
        outputs = [outputs] if single else list(outputs)
        dirty = {id(t) for t in ctx._dirty}
        for i, out in enumerate(outputs):  # an input returned as it is, not modified: a new tensor
            if isinstance(out, Tensor) and id(out) not in dirty and any(out is a for a in args):
                outputs[i] = Tensor._wrap(out.data)
        if is_grad_enabled() and any(ctx.needs_input_grad):
            for i, out in enumerate(outputs):
                if (not isinstance(out, Tensor) or out.dtype.kind not in "fc"
                        or id(out) in ctx._non_differentiable):
                    continue
                recorded = apply(_CustomBackward(cls, ctx, i, outputs, args), *args)
                if id(out) in dirty:  # modified in place by forward: re-hung as an in-place op would be
                    out._check_inplace()
                    out._inplace(recorded)
                else:
                    out._ctx, out.requires_grad = recorded._ctx, True
        return outputs[0] if single else tuple(outputs)

    @staticmethod
    def setup_context(ctx, inputs, output):
        """PyTorch 2's optional split of forward: fill ``ctx`` from the inputs and the output."""


def _defined_below(cls):
    """Names defined by ``cls`` and its bases up to (not including) :class:`Function`."""
    names = set()
    for klass in cls.__mro__:
        if klass is Function:
            break
        names.update(vars(klass))
    return names


def once_differentiable(backward):
    """Accepted for PyTorch code: minidl's backward always runs without recording, so once is all there is."""

    @functools.wraps(backward)
    def wrapper(ctx, *grads):
        return backward(ctx, *grads)

    return wrapper


# PyTorch code reaches these through ``torch.autograd.function`` too
# (``from torch.autograd.function import once_differentiable``): the same names under minidl's,
# as a plain module object, since minidl.autograd is one file.
function = types.ModuleType(__name__ + ".function", "Function, FunctionCtx and once_differentiable (see minidl.autograd).")
function.Function, function.FunctionCtx, function.once_differentiable = Function, FunctionCtx, once_differentiable
sys.modules.setdefault(function.__name__, function)


def _as_tuple(x):
    return (x,) if isinstance(x, Tensor) else tuple(x)


def backward(tensors, grad_tensors=None, retain_graph=None, create_graph=False):
    """``minidl.autograd.backward``: ``sum(t.backward(g))`` over ``tensors``, in one walk of the graph."""
    if create_graph:
        raise NotImplementedError("backward: create_graph=True (double backward) is not supported by minidl")
    tensors = _as_tuple(tensors)
    grad_tensors = [None] * len(tensors) if grad_tensors is None else list(_as_tuple(grad_tensors))
    run_backward(list(tensors), grad_tensors, bool(retain_graph))


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False, allow_unused=None,
         materialize_grads=False):
    """The gradients of ``outputs`` with respect to ``inputs``, as a tuple, without touching any ``.grad``.

    ``grad_outputs`` holds one gradient per output (None: ones, for a scalar output). An input
    that the outputs do not depend on is an error unless ``allow_unused=True`` (then its
    gradient is None, or zeros with ``materialize_grads=True``). Double backward
    (``create_graph=True``) is not supported.

    >>> import minidl
    >>> x = minidl.tensor([1.0, 2.0], requires_grad=True)
    >>> (g,) = minidl.autograd.grad((x * x).sum(), x)
    >>> g.tolist(), x.grad
    ([2.0, 4.0], None)
    """
    if create_graph:
        raise NotImplementedError("grad: create_graph=True (double backward) is not supported by minidl; "
                                  "gradients are computed without recording a graph")
    if allow_unused is None:
        allow_unused = materialize_grads
    outputs, inputs = _as_tuple(outputs), _as_tuple(inputs)
    if grad_outputs is None:
        grad_outputs = [None] * len(outputs)
    else:
        grad_outputs = list(_as_tuple(grad_outputs))
        if len(grad_outputs) != len(outputs):
            raise RuntimeError(f"grad requires one grad_output per output: got {len(grad_outputs)} grad_outputs "
                               f"for {len(outputs)} outputs")
    for i, out in enumerate(outputs):
        if not out.requires_grad:
            raise RuntimeError(f"element {i} of tensors does not require grad and does not have a grad_fn")
    for i, x in enumerate(inputs):
        if not x.requires_grad:
            raise RuntimeError(f"One of the differentiated Tensors (input {i}) does not require grad")
    arrays = run_backward(list(outputs), grad_outputs, bool(retain_graph), inputs=inputs)
    result = []
    for i, (x, g) in enumerate(zip(inputs, arrays)):
        if g is None:
            if not allow_unused:
                raise RuntimeError(f"One of the differentiated Tensors (input {i}, of shape {list(x.shape)}) appears "
                                   "to not have been used in the graph. Set allow_unused=True if this is the "
                                   "desired behavior.")
            result.append(Tensor._wrap(get_array_module(x.data).zeros_like(x.data)) if materialize_grads else None)
        else:
            result.append(Tensor._wrap(g.copy() if any(g is o.data for o in outputs) else g))
    return tuple(result)


__all__ = ["AccumulateGrad", "Function", "FunctionCtx", "GradcheckError", "Node", "apply", "backward",
           "detect_anomaly", "enable_grad", "get_array_module", "grad", "gradcheck", "inference_mode",
           "is_anomaly_enabled", "is_grad_enabled", "no_grad", "once_differentiable", "set_detect_anomaly",
           "set_grad_enabled", "to_dot", "unbroadcast"]
