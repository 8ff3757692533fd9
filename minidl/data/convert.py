"""``to_numpy``: the one door from anything array-like to a NumPy array on the host.

The data road keeps samples as NumPy arrays (or PIL images) from the reader to
``default_collate``; wherever a value has to come back to the host (a user's Tensor given
to a transform, labels and logits for metrics, weights for a checkpoint) it goes through
this function, so there is one rule for what "host array" means:

* ``minidl.Tensor``: its array, copied from the GPU for CUDA tensors (``Tensor.numpy()``);
* CuPy array: copied to the host (``cupy.ndarray.get()``);
* NumPy array: returned as it is (no copy);
* anything else NumPy understands (lists, Python and NumPy scalars, PIL images): ``np.asarray``.

``dtype`` casts the result (no copy when it already has that dtype).

Example::

    >>> import minidl
    >>> from minidl.data import to_numpy
    >>> to_numpy(minidl.tensor([1, 2, 3])).tolist()
    [1, 2, 3]
    >>> to_numpy(0.5, dtype="float32")
    array(0.5, dtype=float32)
"""

import numpy as np

from minidl.tensor import Tensor

__all__ = ["to_numpy"]


def is_tensor(x):
    """True for a ``minidl.Tensor``."""
    return isinstance(x, Tensor)


def _is_cupy(x):
    return type(x).__module__.split(".")[0] == "cupy"


def to_numpy(x, dtype=None):
    """A NumPy array on the host of a Tensor, a CuPy array, a NumPy array or an array-like."""
    if isinstance(x, Tensor):
        x = x.numpy()
    elif _is_cupy(x):
        x = x.get()
    return np.asarray(x, dtype=dtype)
