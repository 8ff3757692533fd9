"""RMSprop (Hinton, Coursera lecture 6e, 2012), with momentum and the centered variant
(Graves, 2013, "Generating Sequences With Recurrent Neural Networks", eq. 38), as
``torch.optim.RMSprop``.

The step of each coordinate is divided by the root of a running average of its squared
gradient. With gradient ``g``::

    g = -g                               if maximize
    g = g + weight_decay * p             (L2 penalty)
    v = alpha * v + (1 - alpha) * g * g
    m = alpha * m + (1 - alpha) * g      if centered (running mean of g)
    avg = sqrt(v - m * m) + eps          if centered (a running standard deviation)
    avg = sqrt(v) + eps                  otherwise
    b = momentum * b + g / avg           if momentum > 0, then p = p - lr * b
    p = p - lr * g / avg                 otherwise
"""

from .optimizer import Optimizer, _grad_array, get_array_module

__all__ = ["RMSprop"]


class RMSprop(Optimizer):
    """RMSprop, with PyTorch's arguments and defaults.

    Args:
        params: iterable of Parameters or of parameter-group dicts.
        lr: learning rate (default 1e-2).
        alpha: decay of the running averages (default 0.99).
        eps: added to the denominator (default 1e-8).
        weight_decay: L2 penalty added to the gradient (default 0).
        momentum: momentum factor (default 0).
        centered: divide by the running standard deviation of the gradient instead of its RMS.
        maximize: ascend the objective instead of descending it.

    Per-parameter state: ``step``, ``square_avg``, and ``momentum_buffer`` (momentum > 0),
    ``grad_avg`` (centered).

    Example:
        >>> opt = RMSprop(model.parameters(), lr=1e-3, momentum=0.9, centered=True)   # doctest: +SKIP
    """

    def __init__(self, params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0, momentum=0, centered=False,
                 *, maximize=False):
        if not 0.0 <= lr:
            raise ValueError(f"Invalid learning rate: {lr} (expected lr >= 0)")
        if not 0.0 <= eps:
            raise ValueError(f"Invalid epsilon value: {eps} (expected eps >= 0)")
        if not 0.0 <= momentum:
            raise ValueError(f"Invalid momentum value: {momentum} (expected momentum >= 0)")
        if not 0.0 <= weight_decay:
            raise ValueError(f"Invalid weight_decay value: {weight_decay} (expected weight_decay >= 0)")
        if not 0.0 <= alpha:
            raise ValueError(f"Invalid alpha value: {alpha} (expected alpha >= 0)")
        defaults = {"lr": lr, "momentum": momentum, "alpha": alpha, "eps": eps, "centered": centered,
                    "weight_decay": weight_decay, "maximize": maximize}
        super().__init__(params, defaults)

    def _update_group(self, group, params):
        lr, alpha, eps, momentum = group["lr"], group["alpha"], group["eps"], group["momentum"]
        for p in params:
            xp = get_array_module(p.data)
            state = self.state[p]
            if len(state) == 0:
                state["step"] = 0
                state["square_avg"] = xp.zeros_like(p.data)
                if momentum > 0:
                    state["momentum_buffer"] = xp.zeros_like(p.data)
                if group["centered"]:
                    state["grad_avg"] = xp.zeros_like(p.data)
            state["step"] += 1
            grad = _grad_array(p)
            if group["maximize"]:
                grad = -grad
            if group["weight_decay"] != 0:
                grad = grad + group["weight_decay"] * p.data
            square_avg = state["square_avg"]
            square_avg *= alpha
            square_avg += (1 - alpha) * grad * grad
            if group["centered"]:
                grad_avg = state["grad_avg"]
                grad_avg += (1 - alpha) * (grad - grad_avg)     # lerp towards g
                avg = xp.sqrt(square_avg - grad_avg * grad_avg)
            else:
                avg = xp.sqrt(square_avg)
            avg += eps
            if momentum > 0:
                buf = state["momentum_buffer"]
                buf *= momentum
                buf += grad / avg
                p.data -= lr * buf
            else:
                p.data -= lr * (grad / avg)
