"""The optimizer base class: parameter groups, per-parameter state, checkpoints.

An optimizer owns a list of *parameter groups*. Each group is a dict holding the
parameters (``"params"``) and the hyper-parameters that apply to them (``"lr"``,
``"momentum"``, ...); hyper-parameters a group does not name come from the
optimizer's ``defaults``. This is PyTorch's design (``torch.optim.Optimizer``) and
its checkpoint format is kept as well::

    {"state": {0: {"step": 3, "exp_avg": array, ...}, 1: {...}},
     "param_groups": [{"lr": 0.1, ..., "params": [0, 1]}, {"lr": 0.01, ..., "params": [2]}]}

where parameters are numbered in the order they appear in the groups. A trainer
saves ``optimizer.state_dict()`` and later calls ``load_state_dict`` on a fresh
optimizer built over the same parameters, and training resumes bit-exactly.

The update rules work on raw arrays only: ``p.data`` is updated *in place* (the
module holding ``p`` keeps the same array object) and no autograd graph is built.
The array module (NumPy or CuPy) is picked from the array type by
:func:`minidl.backend.get_array_module`, so the same code runs on CPU and GPU.
"""

import copy
from abc import ABC, abstractmethod
from collections.abc import MutableMapping

import numpy as np

from minidl.backend import get_array_module  # the one place numpy/cupy is chosen

__all__ = ["Optimizer"]


def _is_array(value):
    """True for a NumPy or CuPy ndarray (not for a minidl Tensor)."""
    return isinstance(value, np.ndarray) or type(value).__module__.startswith("cupy")


def _grad_array(param):
    """The gradient of ``param`` as a raw array, or None when it has none.

    ``param.grad`` is normally a Tensor (its array is ``.data``); a raw ndarray is
    accepted too. Note that ``np.ndarray`` also has a ``.data`` attribute (a
    memoryview), hence the explicit array test first.
    """
    grad = param.grad
    if grad is None or _is_array(grad):
        return grad
    return grad.data


def _copy_value(value):
    """Deep copy of a state value: arrays are copied, containers recursed into."""
    if _is_array(value):
        return value.copy()
    if isinstance(value, dict):
        return {k: _copy_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_copy_value(v) for v in value)
    return copy.deepcopy(value)


class _ParamState(MutableMapping):
    """Per-parameter state, keyed by the parameter object itself.

    Parameters are looked up by identity (``id``), like PyTorch's tensor keys, so
    this works whether or not the Tensor class is hashable (a Tensor that
    overloads ``==`` elementwise usually is not). A missing parameter gets a
    fresh empty dict, as with ``defaultdict(dict)``.
    """

    def __init__(self):
        self._items = {}  # id(param) -> (param, state dict)

    def __getitem__(self, param):
        key = id(param)
        if key not in self._items:
            self._items[key] = (param, {})
        return self._items[key][1]

    def __setitem__(self, param, value):
        self._items[id(param)] = (param, value)

    def __delitem__(self, param):
        del self._items[id(param)]

    def __contains__(self, param):
        return id(param) in self._items

    def __iter__(self):
        return (param for param, _ in self._items.values())

    def __len__(self):
        return len(self._items)

    def __repr__(self):
        return f"_ParamState({len(self)} parameters)"


class Optimizer(ABC):
    """Base class of all optimizers.

    Args:
        params: an iterable of Parameters, or an iterable of dicts (parameter
            groups) each with a ``"params"`` entry and optional per-group
            hyper-parameters.
        defaults: the hyper-parameters used by groups that do not set them.

    Subclasses implement :meth:`_update_group` (called by :meth:`step` for each
    group with the parameters that have a gradient), reading hyper-parameters from each group
    at every step (so a learning-rate scheduler can change ``group["lr"]``).

    Example:
        >>> import numpy as np
        >>> from minidl.optim import SGD
        >>> class P:  # anything with .data (an ndarray) and .grad
        ...     def __init__(self, a): self.data, self.grad = a, None
        >>> p = P(np.ones(3, dtype=np.float32))
        >>> opt = SGD([p], lr=0.5)
        >>> p.grad = np.full(3, 2.0, dtype=np.float32)
        >>> opt.step()
        >>> p.data
        array([0., 0., 0.], dtype=float32)
    """

    def __init__(self, params, defaults):
        self.defaults = defaults
        self.state = _ParamState()
        self.param_groups = []

        if hasattr(params, "data") and hasattr(params, "grad"):
            raise TypeError(
                "params argument given to the optimizer should be an iterable of "
                f"Parameters or dicts, but got a single {type(params).__name__}"
            )
        if isinstance(params, set):
            raise TypeError(
                "params must be an ordered collection (list), not a set: the order of "
                "parameters in a set changes between runs, which breaks checkpoints"
            )
        param_groups = list(params)
        if len(param_groups) == 0:
            raise ValueError("optimizer got an empty parameter list (params=[])")
        if not isinstance(param_groups[0], dict):
            param_groups = [{"params": param_groups}]
        for group in param_groups:
            self.add_param_group(group)

    def __repr__(self):
        lines = [f"{type(self).__name__} ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            for key in sorted(group):
                if key != "params":
                    lines.append(f"    {key}: {group[key]}")
        lines.append(")")
        return "\n".join(lines)

    # ------------------------------------------------------------------ groups
    def add_param_group(self, param_group):
        """Add a parameter group (a dict with ``"params"``) to ``param_groups``.

        Useful for fine-tuning: unfreeze layers and add them with their own lr.
        Missing hyper-parameters are filled from ``defaults``; a parameter may
        belong to one group only.
        """
        if not isinstance(param_group, dict):
            raise TypeError(f"param_group must be a dict, but got {type(param_group).__name__}")
        if "params" not in param_group:
            raise ValueError(f"param_group must have a 'params' entry, got keys {sorted(param_group)}")
        params = param_group["params"]
        if hasattr(params, "data") and hasattr(params, "grad"):
            params = [params]
        elif isinstance(params, set):
            raise TypeError(
                "optimizer parameters need to be organized in ordered collections (list), "
                "but got a set"
            )
        params = list(params)
        for p in params:
            if not (hasattr(p, "data") and hasattr(p, "grad")) or not _is_array(p.data):
                raise TypeError(
                    "optimizer can only optimize Parameters (objects with an ndarray .data "
                    f"and a .grad), but one of the params is {type(p).__name__}"
                )
        if len({id(p) for p in params}) != len(params):
            raise ValueError("a parameter group contains the same parameter more than once")

        seen = {id(p) for group in self.param_groups for p in group["params"]}
        if any(id(p) in seen for p in params):
            raise ValueError("some parameters appear in more than one parameter group")

        group = dict(param_group)  # do not mutate the caller's dict
        group["params"] = params
        for name, default in self.defaults.items():
            group.setdefault(name, default)
        self.param_groups.append(group)

    def zero_grad(self, set_to_none=True):
        """Reset the gradients of all parameters.

        ``set_to_none=True`` (the default) drops the gradient (``p.grad = None``):
        less memory, and a parameter that gets no gradient in the next backward
        pass is then skipped by :meth:`step` instead of being updated with zeros.
        ``set_to_none=False`` fills the existing gradient arrays with zeros.
        """
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                if set_to_none:
                    p.grad = None
                else:
                    _grad_array(p).fill(0)

    def step(self, closure=None):
        """Perform one optimization step over every parameter that has a gradient.

        ``closure``, if given, re-evaluates the model and returns the loss; it is
        called first and its value is returned.
        """
        loss = None
        if closure is not None:
            loss = closure()
        for group in self.param_groups:
            params_with_grad = [p for p in group["params"] if p.grad is not None]
            if params_with_grad:
                self._update_group(group, params_with_grad)
        return loss

    @abstractmethod
    def _update_group(self, group, params):
        """Apply the update rule to ``params`` (all have a gradient) of ``group``."""

    # ------------------------------------------------------------- checkpoints
    def state_dict(self):
        """Return the optimizer state as a dict, in PyTorch's layout.

        ``"state"`` maps the integer index of each parameter (counted through the
        groups in order) to a copy of its state; ``"param_groups"`` is the list of
        groups with ``"params"`` replaced by those indices. Arrays are copied, so
        the result does not change when training goes on.
        """
        index_of = {}
        packed_groups = []
        for group in self.param_groups:
            packed = {k: _copy_value(v) for k, v in group.items() if k != "params"}
            for p in group["params"]:
                index_of.setdefault(id(p), len(index_of))
            packed["params"] = [index_of[id(p)] for p in group["params"]]
            packed_groups.append(packed)
        packed_state = {
            index_of[id(p)]: _copy_value(s) for p, s in self.state._items.values()
        }
        return {"state": packed_state, "param_groups": packed_groups}

    def load_state_dict(self, state_dict):
        """Load a state produced by :meth:`state_dict` of an optimizer of the same kind.

        The groups must have the same number of parameters as when the state was
        saved; parameters are matched by position. Arrays are copied onto each
        parameter's device, and floating-point arrays cast to its dtype.
        Hyper-parameters (lr, betas, ...) are taken from the saved groups.
        Call it after creating any LR scheduler: a scheduler's constructor
        writes the group lrs.
        """
        if not isinstance(state_dict, dict) or "state" not in state_dict or "param_groups" not in state_dict:
            raise ValueError(
                "state_dict must be a dict with keys 'state' and 'param_groups', "
                f"got {type(state_dict).__name__}"
                + (f" with keys {sorted(state_dict)}" if isinstance(state_dict, dict) else "")
            )
        saved_groups = state_dict["param_groups"]
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(
                "loaded state dict has a different number of parameter groups: "
                f"expected {len(self.param_groups)}, got {len(saved_groups)}"
            )
        for i, (group, saved) in enumerate(zip(self.param_groups, saved_groups)):
            if len(group["params"]) != len(saved["params"]):
                raise ValueError(
                    f"loaded state dict parameter group {i} has {len(saved['params'])} "
                    f"parameters, the optimizer's group has {len(group['params'])}"
                )

        param_of = {}  # saved index -> current parameter
        for group, saved in zip(self.param_groups, saved_groups):
            for index, p in zip(saved["params"], group["params"]):
                param_of[index] = p

        new_state = _ParamState()
        for index, saved_state in state_dict["state"].items():
            index = int(index)  # JSON round trips turn integer keys into strings
            if index not in param_of:
                raise ValueError(f"loaded state dict has state for parameter index {index}, "
                                 f"which no parameter group lists")
            p = param_of[index]
            new_state[p] = {k: self._cast_state(p, v) for k, v in saved_state.items()}

        new_groups = []
        for group, saved in zip(self.param_groups, saved_groups):
            new_group = {k: _copy_value(v) for k, v in saved.items() if k != "params"}
            new_group["params"] = group["params"]
            new_groups.append(new_group)
        self.state = new_state
        self.param_groups = new_groups

    @staticmethod
    def _cast_state(param, value):
        """Copy one saved state value onto ``param``'s device (and dtype if floating).

        A 0-d array (a scalar such as a step count saved as an array) becomes a
        Python number: the optimizers keep scalars as Python numbers, in float64.
        A Tensor (what ``minidl.load`` returns, ``torch.save``'s 0-d float ``step``
        included) counts as its array.
        """
        if not _is_array(value) and hasattr(value, "requires_grad") and hasattr(value, "data"):
            value = value.data  # a minidl Tensor
        if _is_array(value) and value.ndim == 0:
            return value.item()
        if _is_array(value):
            xp = get_array_module(param.data)
            if xp is np and not isinstance(value, np.ndarray):
                value = value.get()  # CuPy checkpoint loaded onto a CPU parameter
            if np.issubdtype(value.dtype, np.floating):
                return xp.array(value, dtype=param.data.dtype, copy=True)
            return xp.array(value, copy=True)
        return _copy_value(value)
