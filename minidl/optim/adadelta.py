"""Adadelta (Zeiler, 2012, "ADADELTA: An Adaptive Learning Rate Method"), as ``torch.optim.Adadelta``.

Two running averages per coordinate: of the squared gradient (``v``) and of the squared
update (``u``). Their ratio gives each coordinate a step in the units of the parameter,
so the rule needs no hand-tuned learning rate (``lr`` only scales the result, default 1).
With gradient ``g``::

    g = -g                              if maximize
    g = g + weight_decay * p            (L2 penalty)
    v = rho * v + (1 - rho) * g * g
    delta = sqrt(u + eps) / sqrt(v + eps) * g
    u = rho * u + (1 - rho) * delta * delta
    p = p - lr * delta
"""

from .optimizer import Optimizer, _grad_array, get_array_module

__all__ = ["Adadelta"]


class Adadelta(Optimizer):
    """Adadelta, with PyTorch's arguments and defaults.

    Args:
        params: iterable of Parameters or of parameter-group dicts.
        lr: scale of the update (default 1.0).
        rho: decay of the running averages (default 0.9).
        eps: added inside both square roots (default 1e-6).
        weight_decay: L2 penalty added to the gradient (default 0).
        maximize: ascend the objective instead of descending it.

    Per-parameter state: ``step``, ``square_avg`` (v), ``acc_delta`` (u).

    Example:
        >>> opt = Adadelta(model.parameters())   # doctest: +SKIP
    """

    def __init__(self, params, lr=1.0, rho=0.9, eps=1e-6, weight_decay=0, *, maximize=False):
        if not 0.0 <= lr:
            raise ValueError(f"Invalid learning rate: {lr} (expected lr >= 0)")
        if not 0.0 <= rho <= 1.0:
            raise ValueError(f"Invalid rho value: {rho} (expected 0 <= rho <= 1)")
        if not 0.0 <= eps:
            raise ValueError(f"Invalid epsilon value: {eps} (expected eps >= 0)")
        if not 0.0 <= weight_decay:
            raise ValueError(f"Invalid weight_decay value: {weight_decay} (expected weight_decay >= 0)")
        defaults = {"lr": lr, "rho": rho, "eps": eps, "weight_decay": weight_decay, "maximize": maximize}
        super().__init__(params, defaults)

    def _update_group(self, group, params):
        lr, rho, eps = group["lr"], group["rho"], group["eps"]
        for p in params:
            xp = get_array_module(p.data)
            state = self.state[p]
            if len(state) == 0:
                state["step"] = 0
                state["square_avg"] = xp.zeros_like(p.data)
                state["acc_delta"] = xp.zeros_like(p.data)
            state["step"] += 1
            grad = _grad_array(p)
            if group["maximize"]:
                grad = -grad
            if group["weight_decay"] != 0:
                grad = grad + group["weight_decay"] * p.data
            square_avg, acc_delta = state["square_avg"], state["acc_delta"]
            square_avg *= rho
            square_avg += (1 - rho) * grad * grad
            delta = xp.sqrt(acc_delta + eps) / xp.sqrt(square_avg + eps) * grad
            acc_delta *= rho
            acc_delta += (1 - rho) * delta * delta
            p.data -= lr * delta
