"""``minidl.linalg``: PyTorch's ``torch.linalg`` norms (the maths is in :mod:`minidl.tensor`)."""
from __future__ import annotations

from .tensor import matrix_norm, vector_norm


def norm(A, ord=None, dim=None, keepdim=False, dtype=None):
    """``vector_norm`` for a vector (or when ``dim`` is one int), ``matrix_norm`` for two dims."""
    if isinstance(dim, int) or (dim is None and ord is None):
        return vector_norm(A, 2 if ord is None else ord, dim=dim, keepdim=keepdim, dtype=dtype)
    if dim is None and A.ndim == 1:
        return vector_norm(A, ord, keepdim=keepdim, dtype=dtype)
    return matrix_norm(A, "fro" if ord is None else ord, dim=(-2, -1) if dim is None else dim,
                       keepdim=keepdim, dtype=dtype)


__all__ = ["norm", "vector_norm", "matrix_norm"]
