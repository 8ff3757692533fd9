"""L-BFGS (Nocedal & Wright, "Numerical Optimization", 2nd ed., algorithms 7.4 and 7.5), as
``torch.optim.LBFGS``, with the optional strong-Wolfe line search (algorithms 3.5 and 3.6).

L-BFGS approximates Newton's step ``-H^-1 g`` from the last ``history_size`` pairs
``s = x_{k+1} - x_k`` (steps) and ``y = g_{k+1} - g_k`` (gradient changes), without ever
forming a matrix: the *two-loop recursion* applies the approximate inverse Hessian to ``-g``::

    q = -g
    for i = newest .. oldest:   a_i = rho_i * s_i.q;    q = q - a_i * y_i     (rho_i = 1 / y_i.s_i)
    r = gamma * q                                        (gamma = s.y / y.y of the newest pair)
    for i = oldest .. newest:   b = rho_i * y_i.r;      r = r + (a_i - b) * s_i
    direction d = r

A pair is kept only when ``y.s > 1e-10`` (the curvature condition that keeps the
approximation positive definite). Every parameter is treated as one long flat vector.

``step(closure)`` runs up to ``max_iter`` iterations and needs a ``closure`` that zeroes the
gradients, computes the loss, calls ``backward()`` and returns the loss.
"""

from minidl.grad_mode import enable_grad

from .optimizer import Optimizer, _grad_array, get_array_module

__all__ = ["LBFGS"]


def _cubic_minimum(x1, f1, g1, x2, f2, g2, bounds=None):
    """The minimiser of the cubic through (x1, f1) and (x2, f2) with slopes g1 and g2, clipped to ``bounds``.

    Nocedal & Wright, equation (3.59); without a real minimum, the middle of the bounds.
    """
    low, high = bounds if bounds is not None else (min(x1, x2), max(x1, x2))
    d1 = g1 + g2 - 3 * (f1 - f2) / (x1 - x2)
    d2_square = d1 * d1 - g1 * g2
    if d2_square < 0:
        return (low + high) / 2
    d2 = d2_square ** 0.5
    if x1 <= x2:
        x = x2 - (x2 - x1) * ((g2 + d2 - d1) / (g2 - g1 + 2 * d2))
    else:
        x = x1 - (x1 - x2) * ((g1 + d2 - d1) / (g1 - g2 + 2 * d2))
    return min(max(x, low), high)


def _strong_wolfe(evaluate, t, d, f, g, gtd, c1=1e-4, c2=0.9, tolerance_change=1e-9, max_ls=25):
    """Find a step ``t`` along ``d`` satisfying the strong Wolfe conditions.

    ``evaluate(t)`` returns ``(loss, flat gradient)`` at ``x + t * d``. Sufficient decrease:
    ``f(t) <= f + c1 * t * gtd``; curvature: ``|g(t).d| <= -c2 * gtd``. First a bracketing phase
    grows ``t`` (by cubic extrapolation) until an interval holding such a point is found, then a
    zoom phase shrinks the interval by cubic interpolation. Points are ``(t, f, g, g.d)``.
    Returns ``(loss, gradient, t, evaluations)``.
    """
    d_norm = float(abs(d).max())
    start = (0.0, f, g.copy(), gtd)
    f_new, g_new = evaluate(t)
    evals = 1
    new = (t, f_new, g_new, float(g_new.dot(d)))
    prev = start
    bracket = None
    done = False
    ls_iter = 0
    while ls_iter < max_ls:
        t, f_new, g_new, gtd_new = new
        if f_new > f + c1 * t * gtd or (ls_iter > 1 and f_new >= prev[1]):
            bracket = [prev, new]           # the decrease failed: a minimum lies between
            break
        if abs(gtd_new) <= -c2 * gtd:
            bracket, done = [new], True     # both conditions hold at t
            break
        if gtd_new >= 0:
            bracket = [prev, new]           # the slope turned: a minimum lies between
            break
        # extrapolate: the next t lies in [t + 0.01 (t - t_prev), 10 t]
        t_next = _cubic_minimum(prev[0], prev[1], prev[3], t, f_new, gtd_new,
                                bounds=(t + 0.01 * (t - prev[0]), t * 10))
        prev = new
        f_next, g_next = evaluate(t_next)
        evals += 1
        new = (t_next, f_next, g_next, float(g_next.dot(d)))
        ls_iter += 1
    if bracket is None:
        bracket = [start, new]

    # zoom: keep bracket[low] the point with the lower loss
    insufficient_progress = False
    low, high = (0, 1) if len(bracket) == 1 or bracket[0][1] <= bracket[1][1] else (1, 0)
    while not done and ls_iter < max_ls:
        (ta, fa, _, ga), (tb, fb, _, gb) = bracket
        if abs(tb - ta) * d_norm < tolerance_change:
            break
        t = _cubic_minimum(ta, fa, ga, tb, fb, gb)
        # a trial too close to an end of the interval makes little progress: move it inwards
        lo, hi = min(ta, tb), max(ta, tb)
        eps = 0.1 * (hi - lo)
        if min(hi - t, t - lo) < eps:
            if insufficient_progress or t >= hi or t <= lo:
                t = hi - eps if abs(t - hi) < abs(t - lo) else lo + eps
                insufficient_progress = False
            else:
                insufficient_progress = True
        else:
            insufficient_progress = False
        f_new, g_new = evaluate(t)
        evals += 1
        gtd_new = float(g_new.dot(d))
        ls_iter += 1
        point = (t, f_new, g_new, gtd_new)
        if f_new > f + c1 * t * gtd or f_new >= bracket[low][1]:
            bracket[high] = point           # not low enough: t becomes the high end
            low, high = (0, 1) if bracket[0][1] <= bracket[1][1] else (1, 0)
        else:
            if abs(gtd_new) <= -c2 * gtd:
                done = True
            elif gtd_new * (bracket[high][0] - bracket[low][0]) >= 0:
                bracket[high] = bracket[low]  # the minimum lies on the other side of t
            bracket[low] = point
    t, f_new, g_new, _ = bracket[low]
    return f_new, g_new, t, evals


class LBFGS(Optimizer):
    """Limited-memory BFGS, with PyTorch's arguments and defaults.

    Args:
        params: iterable of Parameters (one parameter group only).
        lr: step length along the L-BFGS direction (default 1), or the line search's first trial.
        max_iter: iterations per ``step`` (default 20).
        max_eval: closure evaluations per ``step`` (default ``max_iter * 5 // 4``).
        tolerance_grad: stop when the largest gradient element is at most this (default 1e-7).
        tolerance_change: stop when the loss or the step changes by less than this (default 1e-9).
        history_size: number of (s, y) pairs kept (default 100).
        line_search_fn: None (a fixed step ``lr``) or ``"strong_wolfe"``.

    State (kept between calls of ``step``, on the first parameter): ``func_evals``, ``n_iter``,
    ``d``, ``t``, ``old_dirs`` (the y's), ``old_stps`` (the s's), ``ro``, ``H_diag``,
    ``prev_flat_grad``, ``prev_loss``.

    Example:
        >>> opt = LBFGS(model.parameters(), line_search_fn="strong_wolfe")   # doctest: +SKIP
        >>> def closure():                                                  # doctest: +SKIP
        ...     opt.zero_grad(); loss = loss_fn(model(x), y); loss.backward(); return loss
        >>> opt.step(closure)                                               # doctest: +SKIP
    """

    def __init__(self, params, lr=1, max_iter=20, max_eval=None, tolerance_grad=1e-7, tolerance_change=1e-9,
                 history_size=100, line_search_fn=None):
        if not 0.0 <= lr:
            raise ValueError(f"Invalid learning rate: {lr} (expected lr >= 0)")
        if max_eval is None:
            max_eval = max_iter * 5 // 4
        if line_search_fn not in (None, "strong_wolfe"):
            raise ValueError(f"line_search_fn: expected None or 'strong_wolfe', got {line_search_fn!r}")
        defaults = {"lr": lr, "max_iter": max_iter, "max_eval": max_eval, "tolerance_grad": tolerance_grad,
                    "tolerance_change": tolerance_change, "history_size": history_size,
                    "line_search_fn": line_search_fn}
        super().__init__(params, defaults)
        if len(self.param_groups) != 1:
            raise ValueError("LBFGS doesn't support per-parameter options (parameter groups)")
        self._params = self.param_groups[0]["params"]

    def _update_group(self, group, params):
        raise RuntimeError("LBFGS updates through step(closure)")

    # -- the parameters as one flat vector -------------------------------------------------

    def _flat_grad(self):
        """Every gradient, flattened and concatenated (zeros for a parameter without one)."""
        xp = get_array_module(self._params[0].data)
        parts = []
        for p in self._params:
            grad = _grad_array(p)
            parts.append(xp.zeros(p.data.size, p.data.dtype) if grad is None else grad.reshape(-1))
        return xp.concatenate(parts)

    def _add_to_params(self, step, direction):
        """p = p + step * direction, ``direction`` flat over all parameters."""
        offset = 0
        for p in self._params:
            n = p.data.size
            p.data += (step * direction[offset:offset + n]).reshape(p.data.shape).astype(p.data.dtype, copy=False)
            offset += n

    def _set_params(self, values):
        for p, v in zip(self._params, values):
            p.data[...] = v

    def _evaluate(self, closure):
        with enable_grad():
            return float(closure())

    def step(self, closure):
        """Run up to ``max_iter`` L-BFGS iterations; returns the loss the closure gave first."""
        if closure is None:
            raise ValueError("LBFGS.step needs a closure that recomputes the loss and its gradients")
        group = self.param_groups[0]
        lr, max_iter, max_eval = group["lr"], group["max_iter"], group["max_eval"]
        tolerance_grad, tolerance_change = group["tolerance_grad"], group["tolerance_change"]
        history_size, line_search_fn = group["history_size"], group["line_search_fn"]

        state = self.state[self._params[0]]
        state.setdefault("func_evals", 0)
        state.setdefault("n_iter", 0)

        with enable_grad():
            orig_loss = closure()
        loss = float(orig_loss)
        current_evals = 1
        state["func_evals"] += 1
        flat_grad = self._flat_grad()
        if abs(flat_grad).max() <= tolerance_grad:     # already at a stationary point
            return orig_loss

        d, t = state.get("d"), state.get("t")
        old_dirs, old_stps, ro = state.get("old_dirs"), state.get("old_stps"), state.get("ro")
        H_diag = state.get("H_diag")
        prev_flat_grad, prev_loss = state.get("prev_flat_grad"), state.get("prev_loss")

        n_iter = 0
        while n_iter < max_iter:
            n_iter += 1
            state["n_iter"] += 1

            # the direction
            if state["n_iter"] == 1:
                d = -flat_grad                  # steepest descent to start
                old_dirs, old_stps, ro, H_diag = [], [], [], 1
            else:
                y = flat_grad - prev_flat_grad
                s = d * t
                ys = y.dot(s)
                if ys > 1e-10:                  # curvature condition: keep the pair
                    if len(old_dirs) == history_size:
                        old_dirs.pop(0)
                        old_stps.pop(0)
                        ro.pop(0)
                    old_dirs.append(y)
                    old_stps.append(s)
                    ro.append(1.0 / ys)
                    H_diag = ys / y.dot(y)      # gamma: scale of the initial inverse Hessian
                # the two-loop recursion (module docstring)
                alphas = [None] * len(old_dirs)
                q = -flat_grad
                for i in range(len(old_dirs) - 1, -1, -1):
                    alphas[i] = old_stps[i].dot(q) * ro[i]
                    q = q - alphas[i] * old_dirs[i]
                d = r = q * H_diag
                for i in range(len(old_dirs)):
                    beta = old_dirs[i].dot(r) * ro[i]
                    r += (alphas[i] - beta) * old_stps[i]

            prev_flat_grad = flat_grad.copy()
            prev_loss = loss

            # the step length: the first iteration ever is kept small (at most 1 / |g|_1)
            if state["n_iter"] == 1:
                t = min(1.0, 1.0 / float(abs(flat_grad).sum())) * lr
            else:
                t = lr
            gtd = float(flat_grad.dot(d))      # directional derivative
            if gtd > -tolerance_change:         # not a descent direction any more
                break

            ls_func_evals = 0
            if line_search_fn == "strong_wolfe":
                start = [p.data.copy() for p in self._params]

                def evaluate(step):
                    self._add_to_params(step, d)
                    value = self._evaluate(closure)
                    grad = self._flat_grad()
                    self._set_params(start)
                    return value, grad

                loss, flat_grad, t, ls_func_evals = _strong_wolfe(evaluate, t, d, loss, flat_grad, gtd)
                self._add_to_params(t, d)
                opt_cond = abs(flat_grad).max() <= tolerance_grad
            else:
                self._add_to_params(t, d)
                opt_cond = False
                if n_iter != max_iter:          # re-evaluate, unless this was the last iteration
                    loss = self._evaluate(closure)
                    flat_grad = self._flat_grad()
                    opt_cond = abs(flat_grad).max() <= tolerance_grad
                    ls_func_evals = 1
            current_evals += ls_func_evals
            state["func_evals"] += ls_func_evals

            # stopping rules
            if n_iter == max_iter or current_evals >= max_eval or opt_cond:
                break
            if abs(d * t).max() <= tolerance_change:
                break
            if abs(loss - prev_loss) < tolerance_change:
                break

        state.update(d=d, t=t, old_dirs=old_dirs, old_stps=old_stps, ro=ro, H_diag=H_diag,
                     prev_flat_grad=prev_flat_grad, prev_loss=prev_loss)
        return orig_loss
