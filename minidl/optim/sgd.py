"""Stochastic gradient descent with momentum, dampening, Nesterov and weight decay.

The update of PyTorch's ``torch.optim.SGD`` (single-tensor path), for a
parameter ``p`` with gradient ``g`` at step ``t``::

    g = -g                          if maximize
    g = g + weight_decay * p        (L2 penalty folded into the gradient)
    if momentum != 0:
        b = g                       at t = 1
        b = momentum * b + (1 - dampening) * g   afterwards
        g = g + momentum * b        if nesterov   (Sutskever et al., 2013)
        g = b                       otherwise
    p = p - lr * g

Note the first step copies the gradient into the buffer without dampening, and
that this "velocity" form differs from Sutskever's ``v = mu*v - lr*g`` when the
learning rate changes during training.
"""

from .optimizer import Optimizer, _grad_array

__all__ = ["SGD"]


class SGD(Optimizer):
    """Stochastic gradient descent (optionally with momentum), as ``torch.optim.SGD``.

    Args:
        params: iterable of Parameters or of parameter-group dicts.
        lr: learning rate (default 1e-3).
        momentum: momentum factor (default 0: plain SGD).
        dampening: dampening of the momentum, applied from the second step on.
        weight_decay: L2 penalty coefficient added to the gradient.
        nesterov: Nesterov momentum; needs ``momentum > 0`` and ``dampening == 0``.
        maximize: ascend the objective instead of descending it.

    Per-parameter state: ``"momentum_buffer"`` (only when momentum is used).

    Example:
        >>> opt = SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True)  # doctest: +SKIP
        >>> opt.zero_grad(); loss.backward(); opt.step()                        # doctest: +SKIP
    """

    def __init__(self, params, lr=1e-3, momentum=0, dampening=0, weight_decay=0,
                 nesterov=False, *, maximize=False):
        if lr < 0.0:
            raise ValueError(f"Invalid learning rate: {lr} (expected lr >= 0)")
        if momentum < 0.0:
            raise ValueError(f"Invalid momentum value: {momentum} (expected momentum >= 0)")
        if weight_decay < 0.0:
            raise ValueError(f"Invalid weight_decay value: {weight_decay} (expected weight_decay >= 0)")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError(
                "Nesterov momentum requires a momentum and zero dampening: "
                f"expected momentum > 0 and dampening == 0, got momentum={momentum}, "
                f"dampening={dampening}"
            )
        defaults = {
            "lr": lr,
            "momentum": momentum,
            "dampening": dampening,
            "weight_decay": weight_decay,
            "nesterov": nesterov,
            "maximize": maximize,
        }
        super().__init__(params, defaults)

    def _update_group(self, group, params):
        lr = group["lr"]
        momentum = group["momentum"]
        dampening = group["dampening"]
        weight_decay = group["weight_decay"]
        nesterov = group["nesterov"]
        maximize = group["maximize"]

        for p in params:
            grad = _grad_array(p)
            # New arrays from here on: the caller's gradient is never modified.
            if maximize:
                grad = -grad
            if weight_decay != 0:
                grad = grad + weight_decay * p.data

            if momentum != 0:
                state = self.state[p]
                buf = state.get("momentum_buffer")
                if buf is None:
                    buf = grad.copy()
                    state["momentum_buffer"] = buf
                else:
                    buf *= momentum
                    buf += (1 - dampening) * grad
                if nesterov:
                    grad = grad + momentum * buf
                else:
                    grad = buf

            p.data -= lr * grad

