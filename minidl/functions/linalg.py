"""Einstein summation on arrays: the equation parser and the differentiable ``Einsum``.

The matrix products (mm, bmm, addmm, mv, dot, outer, ...) are built from ``MatMul``
in the Tensor floor; only einsum needs its own Function, because its backward is one
einsum per operand: the gradient of operand i is the output gradient contracted with
all the other operands, written with operand i's labels as the output.
"""
from __future__ import annotations

import string


from minidl.functions.function import Function


def parse_einsum(equation, shapes):
    """Turn ``equation`` into explicit labels: ``(input labels per operand, output labels, size per label)``.

    Spaces are dropped; ``...`` becomes fresh capital letters (right-aligned, so that the
    ellipsis dimensions of different operands broadcast); without ``->`` the output is the
    ellipsis labels followed by the labels seen exactly once, in alphabetical order (as PyTorch).
    Labels may repeat inside one operand (``'ii->i'`` takes a diagonal). Sizes of the same
    label must agree or be 1 (broadcast).
    """
    equation = equation.replace(" ", "")
    lhs, arrow, rhs = equation.partition("->")
    terms = lhs.split(",")
    if len(terms) != len(shapes):
        raise RuntimeError(f"einsum(): {len(terms)} operands in the equation, but {len(shapes)} were given")
    used = set(equation) - set(".,->")
    for label in used:
        if not label.isalpha():
            raise RuntimeError(f"einsum(): invalid subscript {label!r}: labels must be letters")
    free = [c for c in string.ascii_uppercase + string.ascii_lowercase if c not in used]
    n_ellipsis = 0
    for term, shape in zip(terms, shapes):
        if term.count("...") > 1 or term.count(".") not in (0, 3):
            raise RuntimeError(f"einsum(): more than one ellipsis (or a stray '.') in the subscripts {term!r}")
        n_plain = len(term.replace("...", ""))
        if ("..." in term and n_plain > len(shape)) or ("..." not in term and n_plain != len(shape)):
            raise RuntimeError(f"einsum(): the subscripts {term!r} do not match an operand with {len(shape)} dimensions")
        if "..." in term:
            n_ellipsis = max(n_ellipsis, len(shape) - n_plain)
    ellipsis = "".join(free[:n_ellipsis])
    inputs = []
    for term, shape in zip(terms, shapes):
        if "..." in term:
            k = len(shape) - len(term.replace("...", ""))
            term = term.replace("...", ellipsis[n_ellipsis - k:])
        inputs.append(term)
    sizes = {}
    for term, shape in zip(inputs, shapes):
        for label, n in zip(term, shape):
            if sizes.get(label, 1) not in (1, n) and n != 1:
                raise RuntimeError(f"einsum(): label {label!r} has sizes {sizes[label]} and {n}, "
                                   f"which cannot be broadcast together")
            sizes[label] = max(sizes.get(label, 1), n) if n != 0 else 0
    if arrow:
        if rhs.count("...") > 1:
            raise RuntimeError("einsum(): more than one ellipsis in the output")
        output = rhs.replace("...", ellipsis)
        for label in output:
            if label not in sizes:
                raise RuntimeError(f"einsum(): output label {label!r} does not appear in any input")
            if output.count(label) > 1:
                raise RuntimeError(f"einsum(): output label {label!r} appears more than once")
    else:
        counts = "".join(inputs)
        output = ellipsis + "".join(sorted(c for c in set(counts) if counts.count(c) == 1 and c not in ellipsis))
    return inputs, output, sizes


def _diagonal_of(a, term, unique, xp):
    """The array with each repeated label of ``term`` collapsed to one axis (labels ordered as ``unique``)."""
    if term == unique:
        return a
    return a[_repeat_index(a.shape, term, unique, xp)]


def _repeat_index(shape, term, unique, xp):
    """Index arrays over the axes of ``term`` that read (or write) the entries where repeated labels agree."""
    index = []
    for label, n in zip(term, shape):
        axis = unique.index(label)
        index.append(xp.arange(n).reshape([-1 if k == axis else 1 for k in range(len(unique))]))
    return tuple(index)


class Einsum(Function):
    """``einsum(inputs[0],...,inputs[n-1] -> output)`` on arrays, labels already explicit (see :func:`parse_einsum`).

    Forward: each operand's repeated labels are collapsed to their diagonal and its size-1
    dimensions are broadcast to the label's full size, then one ``einsum`` call.
    Backward, for operand i with labels L_i: grad_i = einsum(g, the other operands -> L_i),
    where a label of L_i that neither g nor another operand carries was summed in forward
    and its gradient is broadcast back; broadcast dimensions are summed back to size 1;
    repeated labels write the gradient back on the diagonal.
    """

    def forward(self, *arrays, inputs, output, sizes):
        xp = self.xp
        self.inputs, self.output, self.sizes = inputs, output, sizes
        self.shapes = [a.shape for a in arrays]
        self.unique = ["".join(dict.fromkeys(term)) for term in inputs]
        operands = []
        for a, term, unique in zip(arrays, inputs, self.unique):
            a = _diagonal_of(a, term, unique, xp)
            operands.append(xp.broadcast_to(a, tuple(sizes[c] for c in unique)))
        self.save_for_backward(*operands)
        spec = ",".join(self.unique) + "->" + output
        # optimize: contract pairwise through BLAS (tensordot) where it can, instead of one plain loop nest
        return xp.einsum(spec, *operands, optimize=len(operands) > 1)

    def backward(self, g):
        xp = self.xp
        operands = self.saved
        grads = []
        for i, (term, unique, shape) in enumerate(zip(self.inputs, self.unique, self.shapes)):
            if not self.needs_input_grad[i]:
                grads.append(None)
                continue
            others = [op for j, op in enumerate(operands) if j != i]
            other_labels = [u for j, u in enumerate(self.unique) if j != i]
            reachable = set(self.output).union(*other_labels)
            kept = "".join(c for c in unique if c in reachable)
            spec = ",".join([self.output] + other_labels) + "->" + kept
            grad = xp.einsum(spec, g, *others, optimize=bool(others))
            # labels only operand i had were summed in forward: each element got weight 1, broadcast back
            grad = grad.reshape([self.sizes[c] if c in reachable else 1 for c in unique])
            full = tuple(self.sizes[c] for c in unique)
            grad = xp.broadcast_to(grad, full)
            # size-1 dimensions that were broadcast: sum their gradient back
            diag_shape = _unique_shape(shape, term, unique)
            axes = tuple(k for k, n in enumerate(diag_shape) if n == 1 and full[k] != 1)
            if axes:
                grad = grad.sum(axis=axes, keepdims=True)
            if term != unique:  # repeated labels: the gradient goes back on the diagonal, zeros elsewhere
                out = xp.zeros(shape, dtype=g.dtype)
                out[_repeat_index(shape, term, unique, xp)] = grad
                grad = out
            grads.append(xp.ascontiguousarray(grad))
        return tuple(grads)


def _unique_shape(shape, term, unique):
    """The shape of an operand after its repeated labels were collapsed."""
    return tuple(shape[term.index(c)] for c in unique)
