"""The Adam family: Adam, AdamW, Adamax, NAdam and RAdam.

All keep exponential moving averages of the gradient (first moment ``m``) and of
its square (second moment ``v``) and scale each coordinate's step by them. Each
class follows the single-tensor (``foreach=False``) path of the PyTorch 2.x
optimizer of the same name line by line, so that parameters agree with PyTorch's
to float32 rounding. With gradient ``g`` at step ``t`` (counted from 1):

    m = beta1 * m + (1 - beta1) * g        (written as a lerp: m += (1-beta1)*(g-m))
    v = beta2 * v + (1 - beta2) * g * g

and the bias corrections ``1 - beta1**t`` and ``1 - beta2**t`` undo the pull of
the zero initialisation towards 0 (Kingma & Ba, 2015, section 3).

Weight decay is either an L2 penalty added to the gradient (``g += wd * p``,
coupled to the adaptive scaling), or *decoupled* (Loshchilov & Hutter, 2019,
"Decoupled Weight Decay Regularization"): ``p *= 1 - lr * wd`` before the Adam step.
"""

import math

from .optimizer import Optimizer, _grad_array, get_array_module

__all__ = ["Adam", "AdamW", "Adamax", "NAdam", "RAdam"]


def _check_args(lr, betas, eps, weight_decay):
    """Validate the hyper-parameters shared by the family, with PyTorch's messages."""
    if not 0.0 <= lr:
        raise ValueError(f"Invalid learning rate: {lr} (expected lr >= 0)")
    if not 0.0 <= eps:
        raise ValueError(f"Invalid epsilon value: {eps} (expected eps >= 0)")
    if len(betas) != 2:
        raise ValueError(f"Invalid betas: {betas} (expected a pair (beta1, beta2))")
    if not 0.0 <= betas[0] < 1.0:
        raise ValueError(f"Invalid beta parameter at index 0: {betas[0]} (expected 0 <= beta1 < 1)")
    if not 0.0 <= betas[1] < 1.0:
        raise ValueError(f"Invalid beta parameter at index 1: {betas[1]} (expected 0 <= beta2 < 1)")
    if not 0.0 <= weight_decay:
        raise ValueError(f"Invalid weight_decay value: {weight_decay} (expected weight_decay >= 0)")


def _prepare_grad(p, maximize, weight_decay, decoupled, lr):
    """The gradient after sign flip and weight decay; applies decoupled decay to ``p``.

    Always returns a fresh array or the caller's gradient untouched: the update
    below never writes into it.
    """
    grad = _grad_array(p)
    if maximize:
        grad = -grad
    if weight_decay != 0:
        if decoupled:
            p.data *= 1 - lr * weight_decay  # AdamW: shrink the weights directly
        else:
            grad = grad + weight_decay * p.data  # L2 penalty through the gradient
    return grad


def _update_moments(exp_avg, exp_avg_sq, grad, beta1, beta2):
    """In place: m <- lerp(m, g, 1 - beta1) and v <- beta2 * v + (1 - beta2) * g^2."""
    exp_avg += (1 - beta1) * (grad - exp_avg)
    exp_avg_sq *= beta2
    exp_avg_sq += (1 - beta2) * grad * grad


class Adam(Optimizer):
    """Adam (Kingma & Ba, 2015), with the AMSGrad variant (Reddi et al., 2018).

    Update at step ``t``::

        m, v updated as in the module docstring
        v_max = max(v_max, v)                           if amsgrad
        denom = sqrt(v (or v_max)) / sqrt(1 - beta2**t) + eps
        p = p - lr / (1 - beta1**t) * m / denom

    Args:
        params: iterable of Parameters or of parameter-group dicts.
        lr: learning rate (default 1e-3).
        betas: decay rates of the first and second moments (default (0.9, 0.999)).
        eps: added to the denominator for numerical stability (default 1e-8).
        weight_decay: L2 penalty (or decoupled decay, see below; default 0).
        amsgrad: use the running maximum of ``v`` in the denominator.
        maximize: ascend the objective instead of descending it.
        decoupled_weight_decay: decay the weights directly, as AdamW.

    Per-parameter state: ``step``, ``exp_avg``, ``exp_avg_sq`` and, with amsgrad,
    ``max_exp_avg_sq``.

    Example:
        >>> opt = Adam(model.parameters(), lr=3e-4)   # doctest: +SKIP
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0,
                 amsgrad=False, *, maximize=False, decoupled_weight_decay=False):
        _check_args(lr, betas, eps, weight_decay)
        defaults = {
            "lr": lr,
            "betas": tuple(betas),
            "eps": eps,
            "weight_decay": weight_decay,
            "amsgrad": amsgrad,
            "maximize": maximize,
            "decoupled_weight_decay": decoupled_weight_decay,
        }
        super().__init__(params, defaults)

    def _update_group(self, group, params):
        lr = group["lr"]
        beta1, beta2 = group["betas"]
        eps = group["eps"]
        amsgrad = group["amsgrad"]

        for p in params:
            xp = get_array_module(p.data)
            state = self.state[p]
            if len(state) == 0:
                state["step"] = 0
                state["exp_avg"] = xp.zeros_like(p.data)
                state["exp_avg_sq"] = xp.zeros_like(p.data)
                if amsgrad:
                    state["max_exp_avg_sq"] = xp.zeros_like(p.data)
            state["step"] += 1
            step = state["step"]

            grad = _prepare_grad(p, group["maximize"], group["weight_decay"],
                                 group["decoupled_weight_decay"], lr)
            exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
            _update_moments(exp_avg, exp_avg_sq, grad, beta1, beta2)

            bias_correction1 = 1 - beta1**step
            bias_correction2 = 1 - beta2**step
            step_size = lr / bias_correction1
            bias_correction2_sqrt = bias_correction2**0.5

            if amsgrad:
                # Keep the largest second moment seen so far (AMSGrad's fix for
                # Adam's non-convergence: the effective step never grows).
                xp.maximum(state["max_exp_avg_sq"], exp_avg_sq, out=state["max_exp_avg_sq"])
                second_moment = state["max_exp_avg_sq"]
            else:
                second_moment = exp_avg_sq
            denom = xp.sqrt(second_moment) / bias_correction2_sqrt
            denom += eps
            p.data -= step_size * (exp_avg / denom)


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter, 2019), as ``torch.optim.AdamW``.

    Identical to ``Adam(..., decoupled_weight_decay=True)``, with a default
    ``weight_decay`` of 1e-2: each step first shrinks ``p *= 1 - lr * weight_decay``.

    Example:
        >>> opt = AdamW(model.parameters(), lr=1e-3, weight_decay=0.05)   # doctest: +SKIP
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2,
                 amsgrad=False, *, maximize=False):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad,
                         maximize=maximize, decoupled_weight_decay=True)

    def load_state_dict(self, state_dict):
        """Load a state; the groups stay decoupled even if the saved ones say otherwise."""
        super().load_state_dict(state_dict)
        for group in self.param_groups:
            group["decoupled_weight_decay"] = True


class Adamax(Optimizer):
    """Adamax: Adam with the infinity norm (Kingma & Ba, 2015, section 7.1).

    The second moment is replaced by an exponentially weighted maximum of
    ``|g|``, which needs no bias correction::

        m = lerp(m, g, 1 - beta1)
        u = max(beta2 * u, |g| + eps)
        p = p - lr / (1 - beta1**t) * m / u

    Args:
        params: iterable of Parameters or of parameter-group dicts.
        lr: learning rate (default 2e-3).
        betas, eps, weight_decay (L2), maximize: as :class:`Adam`.

    Per-parameter state: ``step``, ``exp_avg``, ``exp_inf``.
    """

    def __init__(self, params, lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0,
                 *, maximize=False):
        _check_args(lr, betas, eps, weight_decay)
        defaults = {
            "lr": lr,
            "betas": tuple(betas),
            "eps": eps,
            "weight_decay": weight_decay,
            "maximize": maximize,
        }
        super().__init__(params, defaults)

    def _update_group(self, group, params):
        lr = group["lr"]
        beta1, beta2 = group["betas"]
        eps = group["eps"]

        for p in params:
            xp = get_array_module(p.data)
            state = self.state[p]
            if len(state) == 0:
                state["step"] = 0
                state["exp_avg"] = xp.zeros_like(p.data)
                state["exp_inf"] = xp.zeros_like(p.data)
            state["step"] += 1
            step = state["step"]

            grad = _prepare_grad(p, group["maximize"], group["weight_decay"], False, lr)
            exp_avg, exp_inf = state["exp_avg"], state["exp_inf"]
            exp_avg += (1 - beta1) * (grad - exp_avg)
            exp_inf *= beta2
            xp.maximum(exp_inf, xp.abs(grad) + eps, out=exp_inf)

            clr = lr / (1 - beta1**step)
            p.data -= clr * (exp_avg / exp_inf)


class NAdam(Optimizer):
    """Adam with Nesterov momentum (Dozat, 2016), as ``torch.optim.NAdam``.

    The momentum coefficient follows a warm-up schedule
    ``mu_t = beta1 * (1 - 0.5 * 0.96**(t * momentum_decay))``, and the running
    product ``mu_product = mu_1 * ... * mu_t`` replaces ``beta1**t`` in the bias
    correction. The step looks one momentum step ahead::

        denom = sqrt(v / (1 - beta2**t)) + eps
        p = p - lr * (1 - mu_t) / (1 - mu_product_t) * g / denom
              - lr * mu_{t+1} / (1 - mu_product_t * mu_{t+1}) * m / denom

    Args:
        params: iterable of Parameters or of parameter-group dicts.
        lr: learning rate (default 2e-3).
        betas, eps, weight_decay, maximize: as :class:`Adam`.
        momentum_decay: the ``psi`` of the momentum schedule (default 4e-3).
        decoupled_weight_decay: AdamW-style decay (the NAdamW variant).

    Per-parameter state: ``step``, ``mu_product`` (a Python float), ``exp_avg``,
    ``exp_avg_sq``.
    """

    def __init__(self, params, lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0,
                 momentum_decay=4e-3, decoupled_weight_decay=False, *, maximize=False):
        _check_args(lr, betas, eps, weight_decay)
        if not 0.0 <= momentum_decay:
            raise ValueError(f"Invalid momentum_decay value: {momentum_decay} (expected >= 0)")
        defaults = {
            "lr": lr,
            "betas": tuple(betas),
            "eps": eps,
            "weight_decay": weight_decay,
            "momentum_decay": momentum_decay,
            "decoupled_weight_decay": decoupled_weight_decay,
            "maximize": maximize,
        }
        super().__init__(params, defaults)

    def _update_group(self, group, params):
        lr = group["lr"]
        beta1, beta2 = group["betas"]
        eps = group["eps"]
        momentum_decay = group["momentum_decay"]

        for p in params:
            xp = get_array_module(p.data)
            state = self.state[p]
            if len(state) == 0:
                state["step"] = 0
                state["mu_product"] = 1.0
                state["exp_avg"] = xp.zeros_like(p.data)
                state["exp_avg_sq"] = xp.zeros_like(p.data)
            state["step"] += 1
            step = state["step"]
            bias_correction2 = 1 - beta2**step

            grad = _prepare_grad(p, group["maximize"], group["weight_decay"],
                                 group["decoupled_weight_decay"], lr)

            # Momentum schedule at this step and the next one.
            mu = beta1 * (1.0 - 0.5 * (0.96 ** (step * momentum_decay)))
            mu_next = beta1 * (1.0 - 0.5 * (0.96 ** ((step + 1) * momentum_decay)))
            state["mu_product"] *= mu
            mu_product = state["mu_product"]
            mu_product_next = mu_product * mu_next

            exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
            _update_moments(exp_avg, exp_avg_sq, grad, beta1, beta2)
            denom = xp.sqrt(exp_avg_sq / bias_correction2)
            denom += eps

            # Two addcdiv's, as PyTorch: the current gradient's share, then the
            # look-ahead momentum's share.
            p.data += (-lr * (1.0 - mu) / (1.0 - mu_product)) * (grad / denom)
            p.data += ((-lr * mu_next) / (1.0 - mu_product_next)) * (exp_avg / denom)


class RAdam(Optimizer):
    """Rectified Adam (Liu et al., 2020, "On the Variance of the Adaptive Learning Rate").

    Early on, the variance of the adaptive learning rate is intractable; RAdam
    then takes an SGD-with-momentum step and switches to a rectified Adam step
    once the length of the approximated simple moving average exceeds 5::

        rho_inf = 2 / (1 - beta2) - 1
        rho_t   = rho_inf - 2 t beta2**t / (1 - beta2**t)
        m_hat   = m / (1 - beta1**t)
        if rho_t > 5:
            r = sqrt((rho_t - 4)(rho_t - 2) rho_inf / ((rho_inf - 4)(rho_inf - 2) rho_t))
            p = p - lr * m_hat * sqrt(1 - beta2**t) / (sqrt(v) + eps) * r
        else:
            p = p - lr * m_hat

    Args:
        params: iterable of Parameters or of parameter-group dicts.
        lr: learning rate (default 1e-3).
        betas, eps, weight_decay, maximize: as :class:`Adam`.
        decoupled_weight_decay: AdamW-style decay.

    Per-parameter state: ``step``, ``exp_avg``, ``exp_avg_sq``.
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0,
                 decoupled_weight_decay=False, *, maximize=False):
        _check_args(lr, betas, eps, weight_decay)
        defaults = {
            "lr": lr,
            "betas": tuple(betas),
            "eps": eps,
            "weight_decay": weight_decay,
            "maximize": maximize,
            "decoupled_weight_decay": decoupled_weight_decay,
        }
        super().__init__(params, defaults)

    def _update_group(self, group, params):
        lr = group["lr"]
        beta1, beta2 = group["betas"]
        eps = group["eps"]

        for p in params:
            xp = get_array_module(p.data)
            state = self.state[p]
            if len(state) == 0:
                state["step"] = 0
                state["exp_avg"] = xp.zeros_like(p.data)
                state["exp_avg_sq"] = xp.zeros_like(p.data)
            state["step"] += 1
            step = state["step"]

            grad = _prepare_grad(p, group["maximize"], group["weight_decay"],
                                 group["decoupled_weight_decay"], lr)
            exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
            _update_moments(exp_avg, exp_avg_sq, grad, beta1, beta2)

            bias_correction1 = 1 - beta1**step
            bias_correction2 = 1 - beta2**step
            bias_corrected_exp_avg = exp_avg / bias_correction1

            # Maximum and current length of the approximated simple moving average.
            rho_inf = 2 / (1 - beta2) - 1
            rho_t = rho_inf - 2 * step * (beta2**step) / bias_correction2

            if rho_t > 5.0:
                rect = math.sqrt(
                    (rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t)
                )
                adaptive_lr = (bias_correction2**0.5) / (xp.sqrt(exp_avg_sq) + eps)
                p.data -= bias_corrected_exp_avg * lr * adaptive_lr * rect
            else:
                # Variance not yet tractable: plain momentum step.
                p.data -= bias_corrected_exp_avg * lr
