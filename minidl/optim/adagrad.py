"""Adagrad (Duchi, Hazan & Singer, 2011, "Adaptive Subgradient Methods"), as ``torch.optim.Adagrad``.

Each coordinate's step is divided by the root of the sum of all its squared gradients so
far: coordinates with large or frequent gradients slow down, rare ones keep a large step.
With gradient ``g`` at step ``t`` (counted from 1)::

    g = -g                                   if maximize
    g = g + weight_decay * p                 (L2 penalty)
    clr = lr / (1 + (t - 1) * lr_decay)
    s = s + g * g                            (s starts at initial_accumulator_value)
    p = p - clr * g / (sqrt(s) + eps)
"""

from .optimizer import Optimizer, _grad_array, get_array_module

__all__ = ["Adagrad"]


class Adagrad(Optimizer):
    """Adagrad, with PyTorch's arguments and defaults.

    Args:
        params: iterable of Parameters or of parameter-group dicts.
        lr: learning rate (default 1e-2).
        lr_decay: the learning rate at step t is ``lr / (1 + (t - 1) * lr_decay)`` (default 0).
        weight_decay: L2 penalty added to the gradient (default 0).
        initial_accumulator_value: starting value of the sum of squares (default 0).
        eps: added to the denominator (default 1e-10).
        maximize: ascend the objective instead of descending it.

    Per-parameter state: ``step`` and ``sum``; as in PyTorch it exists from construction on.

    Example:
        >>> opt = Adagrad(model.parameters(), lr=0.1)   # doctest: +SKIP
    """

    def __init__(self, params, lr=1e-2, lr_decay=0, weight_decay=0, initial_accumulator_value=0,
                 eps=1e-10, *, maximize=False):
        if not 0.0 <= lr:
            raise ValueError(f"Invalid learning rate: {lr} (expected lr >= 0)")
        if not 0.0 <= lr_decay:
            raise ValueError(f"Invalid lr_decay value: {lr_decay} (expected lr_decay >= 0)")
        if not 0.0 <= weight_decay:
            raise ValueError(f"Invalid weight_decay value: {weight_decay} (expected weight_decay >= 0)")
        if not 0.0 <= initial_accumulator_value:
            raise ValueError(f"Invalid initial_accumulator_value value: {initial_accumulator_value} "
                             "(expected initial_accumulator_value >= 0)")
        if not 0.0 <= eps:
            raise ValueError(f"Invalid epsilon value: {eps} (expected eps >= 0)")
        defaults = {"lr": lr, "lr_decay": lr_decay, "eps": eps, "weight_decay": weight_decay,
                    "initial_accumulator_value": initial_accumulator_value, "maximize": maximize}
        super().__init__(params, defaults)   # add_param_group (below) makes each group's state

    def _init_state(self, p, group):
        xp = get_array_module(p.data)
        state = self.state[p]
        state["step"] = 0
        state["sum"] = xp.full_like(p.data, group["initial_accumulator_value"])

    def add_param_group(self, param_group):
        """Add a group; its parameters get their accumulators at once (as in PyTorch)."""
        super().add_param_group(param_group)
        group = self.param_groups[-1]
        for p in group["params"]:
            self._init_state(p, group)

    def _update_group(self, group, params):
        lr, lr_decay, eps = group["lr"], group["lr_decay"], group["eps"]
        for p in params:
            xp = get_array_module(p.data)
            state = self.state[p]
            if len(state) == 0:
                self._init_state(p, group)
            state["step"] += 1
            grad = _grad_array(p)
            if group["maximize"]:
                grad = -grad
            if group["weight_decay"] != 0:
                grad = grad + group["weight_decay"] * p.data
            clr = lr / (1 + (state["step"] - 1) * lr_decay)
            state["sum"] += grad * grad
            p.data -= clr * (grad / (xp.sqrt(state["sum"]) + eps))
