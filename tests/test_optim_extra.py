"""Adadelta, Adagrad, RMSprop and LBFGS against ``torch.optim``, state_dict round trips, and
``nn.utils.parameters_to_vector`` / ``vector_to_parameters`` against ``torch.nn.utils``."""
import numpy as np
import pytest

import minidl
from minidl import nn, optim
from minidl.nn.utils import parameters_to_vector, vector_to_parameters

torch = pytest.importorskip("torch")


def _problem(dtype):
    """Initial weights and fixed data of a small least-squares + tanh problem."""
    rng = np.random.default_rng(0)
    w = rng.standard_normal((3, 4)).astype(dtype)
    b = rng.standard_normal(3).astype(dtype)
    x = rng.standard_normal((6, 4)).astype(dtype)
    y = rng.standard_normal((6, 3)).astype(dtype)
    return w, b, x, y


def _loss_minidl(params, x, y):
    w, b = params
    out = (minidl.from_numpy(x) @ w.T + b).tanh()
    return ((out - minidl.from_numpy(y)) ** 2).mean()


def _loss_torch(params, x, y):
    w, b = params
    out = torch.tanh(torch.from_numpy(x) @ w.T + b)
    return ((out - torch.from_numpy(y)) ** 2).mean()


def _run(make_mine, make_theirs, steps, dtype=np.float32, closure_steps=False):
    """Run both optimizers ``steps`` times from the same start; return both parameter lists."""
    w, b, x, y = _problem(dtype)
    mine = [nn.Parameter(minidl.from_numpy(w.copy())), nn.Parameter(minidl.from_numpy(b.copy()))]
    theirs = [torch.tensor(w, requires_grad=True), torch.tensor(b, requires_grad=True)]
    opt_m, opt_t = make_mine(mine), make_theirs(theirs)
    for _ in range(steps):
        def closure_m():
            opt_m.zero_grad()
            loss = _loss_minidl(mine, x, y)
            loss.backward()
            return loss

        def closure_t():
            opt_t.zero_grad()
            loss = _loss_torch(theirs, x, y)
            loss.backward()
            return loss

        if closure_steps:
            lm, lt = opt_m.step(closure_m), opt_t.step(closure_t)
            assert float(lm) == pytest.approx(float(lt), rel=1e-5, abs=1e-7)
        else:
            closure_m()
            closure_t()
            opt_m.step()
            opt_t.step()
    return mine, theirs, opt_m, opt_t


def _assert_close(mine, theirs, tol=1e-6):
    for m, t in zip(mine, theirs):
        np.testing.assert_allclose(m.numpy(), t.detach().numpy(), rtol=tol, atol=tol)


CASES = {
    "adadelta": (lambda p: optim.Adadelta(p), lambda p: torch.optim.Adadelta(p)),
    "adadelta_wd_max": (lambda p: optim.Adadelta(p, lr=0.5, rho=0.8, eps=1e-5, weight_decay=0.1, maximize=True),
                        lambda p: torch.optim.Adadelta(p, lr=0.5, rho=0.8, eps=1e-5, weight_decay=0.1, maximize=True)),
    "adagrad": (lambda p: optim.Adagrad(p), lambda p: torch.optim.Adagrad(p)),
    "adagrad_options": (
        lambda p: optim.Adagrad(p, lr=0.1, lr_decay=0.05, weight_decay=0.01, initial_accumulator_value=0.3),
        lambda p: torch.optim.Adagrad(p, lr=0.1, lr_decay=0.05, weight_decay=0.01, initial_accumulator_value=0.3)),
    "rmsprop": (lambda p: optim.RMSprop(p), lambda p: torch.optim.RMSprop(p)),
    "rmsprop_momentum": (lambda p: optim.RMSprop(p, lr=0.01, momentum=0.9, weight_decay=0.01),
                         lambda p: torch.optim.RMSprop(p, lr=0.01, momentum=0.9, weight_decay=0.01)),
    "rmsprop_centered": (lambda p: optim.RMSprop(p, lr=0.005, alpha=0.9, momentum=0.5, centered=True, maximize=True),
                         lambda p: torch.optim.RMSprop(p, lr=0.005, alpha=0.9, momentum=0.5, centered=True,
                                                       maximize=True)),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_matches_torch(name):
    make_mine, make_theirs = CASES[name]
    mine, theirs, opt_m, opt_t = _run(make_mine, make_theirs, steps=6)
    _assert_close(mine, theirs)
    # the per-parameter state has PyTorch's names and values
    sd_m, sd_t = opt_m.state_dict(), opt_t.state_dict()
    assert sd_m["state"].keys() == sd_t["state"].keys()
    for index, state in sd_t["state"].items():
        assert set(sd_m["state"][index]) == set(state)
        for key, value in state.items():
            np.testing.assert_allclose(np.asarray(sd_m["state"][index][key], dtype=np.float64),
                                       value.detach().numpy().astype(np.float64), rtol=1e-5, atol=1e-6)
    groups_t = {k: v for k, v in sd_t["param_groups"][0].items() if k not in ("foreach", "capturable",
                                                                               "differentiable", "fused")}
    assert {k: sd_m["param_groups"][0][k] for k in groups_t} == groups_t


@pytest.mark.parametrize("name", ["adadelta", "adagrad_options", "rmsprop_centered"])
def test_state_dict_round_trip(name, tmp_path):
    """Stop after 3 steps, save, load into fresh objects, and 3 more steps equal 6 uninterrupted ones."""
    make_mine, _ = CASES[name]
    w, b, x, y = _problem(np.float32)
    straight = [nn.Parameter(minidl.from_numpy(w.copy())), nn.Parameter(minidl.from_numpy(b.copy()))]
    opt = make_mine(straight)
    for _ in range(6):
        opt.zero_grad()
        _loss_minidl(straight, x, y).backward()
        opt.step()

    first = [nn.Parameter(minidl.from_numpy(w.copy())), nn.Parameter(minidl.from_numpy(b.copy()))]
    opt = make_mine(first)
    for _ in range(3):
        opt.zero_grad()
        _loss_minidl(first, x, y).backward()
        opt.step()
    minidl.save({"params": [p.detach() for p in first], "optimizer": opt.state_dict()}, tmp_path / "ck.pt")
    ck = minidl.load(tmp_path / "ck.pt")
    second = [nn.Parameter(t) for t in ck["params"]]
    opt = make_mine(second)
    opt.load_state_dict(ck["optimizer"])
    for _ in range(3):
        opt.zero_grad()
        _loss_minidl(second, x, y).backward()
        opt.step()
    for a, b_ in zip(straight, second):
        np.testing.assert_allclose(a.numpy(), b_.numpy(), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("line_search_fn", [None, "strong_wolfe"])
def test_lbfgs_matches_torch(line_search_fn):
    kwargs = dict(lr=0.5 if line_search_fn is None else 1, max_iter=8, history_size=4, line_search_fn=line_search_fn)
    mine, theirs, opt_m, opt_t = _run(lambda p: optim.LBFGS(p, **kwargs), lambda p: torch.optim.LBFGS(p, **kwargs),
                                      steps=3, dtype=np.float64, closure_steps=True)
    _assert_close(mine, theirs, tol=1e-6)
    state_m, state_t = opt_m.state[mine[0]], opt_t.state[theirs[0]]
    assert state_m["func_evals"] == state_t["func_evals"] and state_m["n_iter"] == state_t["n_iter"]
    assert len(state_m["old_dirs"]) == len(state_t["old_dirs"]) <= 4


def test_lbfgs_float32_minimises_and_round_trips(tmp_path):
    # float32 rounding grows along L-BFGS iterations: compare a short run
    kwargs = dict(max_iter=3, line_search_fn="strong_wolfe")
    mine, theirs, opt_m, _ = _run(lambda p: optim.LBFGS(p, **kwargs), lambda p: torch.optim.LBFGS(p, **kwargs),
                                  steps=1, dtype=np.float32, closure_steps=True)
    _assert_close(mine, theirs, tol=1e-5)
    minidl.save({"optimizer": opt_m.state_dict()}, tmp_path / "lbfgs.pt")
    fresh = optim.LBFGS([nn.Parameter(minidl.from_numpy(p.numpy().copy())) for p in mine], **kwargs)
    fresh.load_state_dict(minidl.load(tmp_path / "lbfgs.pt")["optimizer"])
    state = fresh.state[fresh.param_groups[0]["params"][0]]
    assert state["n_iter"] == opt_m.state[mine[0]]["n_iter"] and len(state["old_dirs"]) == len(
        opt_m.state[mine[0]]["old_dirs"])


def test_argument_checks():
    p = [nn.Parameter(minidl.ones(2))]
    with pytest.raises(ValueError, match="rho"):
        optim.Adadelta(p, rho=1.5)
    with pytest.raises(ValueError, match="lr_decay"):
        optim.Adagrad(p, lr_decay=-1)
    with pytest.raises(ValueError, match="alpha"):
        optim.RMSprop(p, alpha=-0.1)
    with pytest.raises(ValueError, match="line_search_fn"):
        optim.LBFGS(p, line_search_fn="backtracking")
    with pytest.raises(ValueError, match="closure"):
        optim.LBFGS(p).step(None)
    assert optim.LBFGS(p).param_groups[0]["max_eval"] == 25


def test_parameters_to_vector_and_back():
    minidl.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2))
    ref = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Linear(4, 2))
    with torch.no_grad():
        for p, q in zip(model.parameters(), ref.parameters()):
            q.copy_(torch.from_numpy(p.numpy()))
    vec = parameters_to_vector(model.parameters())
    ref_vec = torch.nn.utils.parameters_to_vector(ref.parameters())
    assert vec.shape == tuple(ref_vec.shape) == (26,)
    np.testing.assert_array_equal(vec.numpy(), ref_vec.detach().numpy())
    # gradients flow back through the vector
    weights = np.arange(26, dtype=np.float32)
    (vec * minidl.from_numpy(weights)).sum().backward()
    (ref_vec * torch.from_numpy(weights)).sum().backward()
    for p, q in zip(model.parameters(), ref.parameters()):
        np.testing.assert_array_equal(p.grad.numpy(), q.grad.numpy())
    # and back: every parameter takes its slice
    new = np.linspace(-1, 1, 26).astype(np.float32)
    arrays_before = [p.data for p in model.parameters()]
    vector_to_parameters(minidl.from_numpy(new), model.parameters())
    torch.nn.utils.vector_to_parameters(torch.from_numpy(new), ref.parameters())
    for p, q, array in zip(model.parameters(), ref.parameters(), arrays_before):
        np.testing.assert_array_equal(p.numpy(), q.detach().numpy())
        assert p.data is array                      # copied in place: the module keeps its arrays
    with pytest.raises(ValueError, match="26"):
        vector_to_parameters(minidl.zeros(25), model.parameters())
    with pytest.raises(TypeError, match="Tensor"):
        vector_to_parameters(new, model.parameters())


def test_parameters_to_vector_gradcheck():
    a = minidl.randn(2, 3, dtype="float64", requires_grad=True)
    b = minidl.randn(4, dtype="float64", requires_grad=True)
    assert minidl.gradcheck(lambda x, y: parameters_to_vector([x, y]) ** 2, [a, b])
