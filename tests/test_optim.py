"""Optimizers against PyTorch's single-tensor implementations, and checkpoint round trips.

The fixed problem: three parameters of different shapes, each pulled towards a
centre by a diagonal quadratic plus a quartic term, so gradients change from step
to step and every moment estimate matters:

    loss = sum_i 0.5 * h_i * (p_i - c_i)^2 + 0.025 * p_i^4,   grad = h (p - c) + 0.1 p^3

The gradient is computed in NumPy float32 from each side's own current
parameters, identically for minidl and torch.
"""

import numpy as np
import pytest

from minidl import optim

SHAPES = [(4, 3), (3,), (2, 2, 2)]
STEPS = 20
RTOL, ATOL = 1e-5, 1e-6


class _StandInTensor:
    """Minimal Tensor stand-in (``.data``) used when minidl.nn is not importable."""

    def __init__(self, data):
        self.data = data
        self.grad = None
        self.requires_grad = True


def _real_parameter_api():
    """(Parameter class, tensor factory) from minidl.nn when the core provides them."""
    try:
        import minidl
    except ImportError:
        return None
    parameter = getattr(minidl.nn, "Parameter", None)
    if parameter is None:  # the core may not re-export it from minidl.nn yet
        try:
            from minidl.nn.module import Parameter as parameter
        except ImportError:
            return None
    return parameter, minidl.tensor


def make_param(array):
    api = _real_parameter_api()
    if api is None:
        return _StandInTensor(array.copy())
    parameter, tensor = api
    return parameter(tensor(array.copy()))


def set_grad(param, grad):
    api = _real_parameter_api()
    if api is None or isinstance(param, _StandInTensor):
        param.grad = _StandInTensor(grad)
    else:
        param.grad = api[1](grad)


def make_problem(seed=0):
    rng = np.random.default_rng(seed)
    init = [rng.standard_normal(s).astype(np.float32) for s in SHAPES]
    centres = [rng.standard_normal(s).astype(np.float32) for s in SHAPES]
    curvature = [rng.uniform(0.5, 2.0, s).astype(np.float32) for s in SHAPES]
    return init, centres, curvature


def gradient(values, centres, curvature):
    """Gradient of the fixed loss in float32, for a list of parameter arrays."""
    return [(h * (p - c) + np.float32(0.1) * p**3).astype(np.float32)
            for p, c, h in zip(values, centres, curvature)]


def run_minidl(cls, kwargs, steps=STEPS, groups=None, seed=0):
    init, centres, curvature = make_problem(seed)
    params = [make_param(a) for a in init]
    opt = cls(groups(params) if groups else params, **kwargs)
    for _ in range(steps):
        for p, g in zip(params, gradient([p.data for p in params], centres, curvature)):
            set_grad(p, g)
        opt.step()
    return [p.data for p in params], opt


def run_torch(torch, cls_name, kwargs, steps=STEPS, groups=None, seed=0):
    init, centres, curvature = make_problem(seed)
    params = [torch.tensor(a.copy(), requires_grad=True) for a in init]
    cls = getattr(torch.optim, cls_name)
    opt = cls(groups(params) if groups else params, foreach=False, **kwargs)
    for _ in range(steps):
        grads = gradient([p.detach().numpy() for p in params], centres, curvature)
        for p, g in zip(params, grads):
            p.grad = torch.from_numpy(g)
        opt.step()
    return [p.detach().numpy().copy() for p in params], opt


# (optimizer name, kwargs) covering every option that changes the code path.
CONFIGS = [
    ("SGD", {"lr": 0.05}),
    ("SGD", {"lr": 0.05, "momentum": 0.9}),
    ("SGD", {"lr": 0.05, "momentum": 0.9, "dampening": 0.5}),
    ("SGD", {"lr": 0.05, "momentum": 0.9, "nesterov": True}),
    ("SGD", {"lr": 0.05, "momentum": 0.8, "weight_decay": 0.1}),
    ("SGD", {"lr": 0.01, "momentum": 0.5, "maximize": True}),
    ("Adam", {"lr": 0.05}),
    ("Adam", {"lr": 0.05, "betas": (0.8, 0.9), "amsgrad": True}),
    ("Adam", {"lr": 0.05, "weight_decay": 0.1}),
    ("Adam", {"lr": 0.05, "weight_decay": 0.1, "decoupled_weight_decay": True}),
    ("Adam", {"lr": 0.02, "maximize": True}),
    ("AdamW", {"lr": 0.05}),
    ("AdamW", {"lr": 0.05, "weight_decay": 0.2, "betas": (0.8, 0.9), "amsgrad": True}),
    ("Adamax", {"lr": 0.05}),
    ("Adamax", {"lr": 0.05, "weight_decay": 0.1, "eps": 1e-3}),
    ("Adamax", {"lr": 0.02, "maximize": True}),
    ("NAdam", {"lr": 0.05}),
    ("NAdam", {"lr": 0.05, "weight_decay": 0.1, "momentum_decay": 0.01}),
    ("NAdam", {"lr": 0.05, "weight_decay": 0.1, "decoupled_weight_decay": True}),
    ("RAdam", {"lr": 0.05}),
    ("RAdam", {"lr": 0.05, "weight_decay": 0.1, "betas": (0.9, 0.99)}),
    ("RAdam", {"lr": 0.05, "weight_decay": 0.1, "decoupled_weight_decay": True}),
]


def _config_id(config):
    name, kwargs = config
    return name + "-" + "-".join(f"{k}={v}" for k, v in kwargs.items())


@pytest.mark.parametrize("config", CONFIGS, ids=[_config_id(c) for c in CONFIGS])
def test_matches_torch(config):
    torch = pytest.importorskip("torch")
    name, kwargs = config
    ours, _ = run_minidl(getattr(optim, name), kwargs)
    theirs, _ = run_torch(torch, name, kwargs)
    init = make_problem()[0]
    for a, b, start in zip(ours, theirs, init):
        assert a.dtype == np.float32
        assert not np.allclose(a, start)  # the parameters really moved
        np.testing.assert_allclose(a, b, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("config", [c for c in CONFIGS if len(c[1]) > 1 or c[0] == "AdamW"],
                         ids=[_config_id(c) for c in CONFIGS if len(c[1]) > 1 or c[0] == "AdamW"])
def test_option_changes_the_result(config):
    """Each non-default option leads somewhere else than the plain optimizer (it is exercised)."""
    name, kwargs = config
    base = {"lr": kwargs["lr"]}
    if name == "AdamW":
        base = dict(kwargs)  # AdamW against Adam (coupled decay) with the same settings
        base.setdefault("weight_decay", 1e-2)
        base.pop("decoupled_weight_decay", None)
        ours, _ = run_minidl(optim.AdamW, kwargs)
        plain, _ = run_minidl(optim.Adam, base)
    else:
        ours, _ = run_minidl(getattr(optim, name), kwargs)
        plain, _ = run_minidl(getattr(optim, name), base)
    assert any(not np.allclose(a, b, rtol=1e-4, atol=1e-6) for a, b in zip(ours, plain))


def _two_groups(params):
    return [{"params": params[:2]}, {"params": params[2:], "lr": 0.01}]


@pytest.mark.parametrize("name, kwargs", [
    ("SGD", {"lr": 0.1, "momentum": 0.9}),
    ("Adam", {"lr": 0.05}),
    ("NAdam", {"lr": 0.05}),
])
def test_param_groups_with_different_lrs_match_torch(name, kwargs):
    torch = pytest.importorskip("torch")
    ours, opt = run_minidl(getattr(optim, name), kwargs, groups=_two_groups)
    theirs, _ = run_torch(torch, name, kwargs, groups=_two_groups)
    assert [g["lr"] for g in opt.param_groups] == [kwargs["lr"], 0.01]
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a, b, rtol=RTOL, atol=ATOL)


def test_group_lr_change_between_steps_is_used():
    """A scheduler changes group["lr"]; the next step must use the new value."""
    p = make_param(np.ones(3, dtype=np.float32))
    opt = optim.SGD([p], lr=1.0)
    set_grad(p, np.ones(3, dtype=np.float32))
    opt.step()
    opt.param_groups[0]["lr"] = 0.25
    opt.step()
    np.testing.assert_allclose(p.data, np.full(3, -0.25, dtype=np.float32))


@pytest.mark.parametrize("cls", [optim.SGD, optim.Adam, optim.Adamax, optim.NAdam, optim.RAdam])
def test_params_without_grad_are_skipped(cls):
    kwargs = {"lr": 0.1, "momentum": 0.9} if cls is optim.SGD else {"lr": 0.1}
    frozen_value = np.arange(4, dtype=np.float32)
    frozen = make_param(frozen_value)
    live = make_param(np.ones(4, dtype=np.float32))
    opt = cls([frozen, live], **kwargs)
    for _ in range(3):
        set_grad(live, np.ones(4, dtype=np.float32))
        opt.step()
    np.testing.assert_array_equal(frozen.data, frozen_value)
    assert frozen not in opt.state and live in opt.state
    assert not np.allclose(live.data, 1.0)


def test_update_is_in_place():
    """Modules keep a reference to p.data: the optimizer must write into that array."""
    for cls in (optim.SGD, optim.Adam, optim.AdamW, optim.Adamax, optim.NAdam, optim.RAdam):
        p = make_param(np.ones((2, 3), dtype=np.float32))
        array = p.data
        opt = cls([p], lr=0.1, weight_decay=0.1)
        grad = np.full((2, 3), 0.5, dtype=np.float32)
        set_grad(p, grad)
        opt.step()
        opt.step()
        assert p.data is array
        assert not np.allclose(array, 1.0)
        np.testing.assert_array_equal(grad, 0.5)  # the gradient itself is never modified


def test_zero_grad():
    a, b = make_param(np.ones(2, dtype=np.float32)), make_param(np.ones(2, dtype=np.float32))
    opt = optim.SGD([a, b], lr=0.1)
    set_grad(a, np.ones(2, dtype=np.float32))
    opt.zero_grad(set_to_none=False)
    assert b.grad is None
    np.testing.assert_array_equal(a.grad.data, 0.0)
    opt.zero_grad()
    assert a.grad is None and b.grad is None


def test_step_returns_closure_loss():
    p = make_param(np.ones(2, dtype=np.float32))
    opt = optim.SGD([p], lr=0.5)

    def closure():
        set_grad(p, 2 * p.data)  # loss = |p|^2
        return float((p.data**2).sum())

    assert opt.step(closure) == 2.0
    np.testing.assert_array_equal(p.data, 0.0)
    assert opt.step() is None


# ----------------------------------------------------------------- checkpoints
ROUND_TRIP = [
    (optim.SGD, {"lr": 0.05, "momentum": 0.9, "nesterov": True}),
    (optim.Adam, {"lr": 0.05, "amsgrad": True, "betas": (0.8, 0.9)}),
    (optim.AdamW, {"lr": 0.05}),
    (optim.Adamax, {"lr": 0.05}),
    (optim.NAdam, {"lr": 0.05, "weight_decay": 0.01}),
    (optim.RAdam, {"lr": 0.05}),
]


@pytest.mark.parametrize("cls, kwargs", ROUND_TRIP, ids=[c.__name__ for c, _ in ROUND_TRIP])
def test_state_dict_round_trip_resumes_bit_exactly(cls, kwargs):
    straight, _ = run_minidl(cls, kwargs, steps=20, groups=_two_groups)

    init, centres, curvature = make_problem()
    params = [make_param(a) for a in init]
    opt = cls(_two_groups(params), **kwargs)
    for _ in range(10):
        for p, g in zip(params, gradient([p.data for p in params], centres, curvature)):
            set_grad(p, g)
        opt.step()
    saved = opt.state_dict()
    saved_values = [p.data.copy() for p in params]

    # Keep training the original optimizer: the saved state must not change.
    snapshot = {i: {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in s.items()}
                for i, s in saved["state"].items()}
    opt.step()
    for i, s in saved["state"].items():
        for key, value in s.items():
            np.testing.assert_array_equal(value, snapshot[i][key])

    # A fresh optimizer (hyper-parameters differ on purpose: the checkpoint wins).
    resumed = [make_param(v) for v in saved_values]
    fresh = cls(_two_groups(resumed), **{**kwargs, "lr": 123.0})
    fresh.load_state_dict(saved)
    for _ in range(10):
        for p, g in zip(resumed, gradient([p.data for p in resumed], centres, curvature)):
            set_grad(p, g)
        fresh.step()
    for a, b in zip(resumed, straight):
        np.testing.assert_array_equal(a.data, b)


def test_state_dict_layout():
    _, opt = run_minidl(optim.Adam, {"lr": 0.05, "amsgrad": True}, steps=2, groups=_two_groups)
    sd = opt.state_dict()
    assert sorted(sd) == ["param_groups", "state"]
    assert [g["params"] for g in sd["param_groups"]] == [[0, 1], [2]]
    assert [g["lr"] for g in sd["param_groups"]] == [0.05, 0.01]
    assert sorted(sd["state"]) == [0, 1, 2]
    assert sorted(sd["state"][2]) == ["exp_avg", "exp_avg_sq", "max_exp_avg_sq", "step"]
    assert sd["state"][2]["step"] == 2
    assert sd["state"][0]["exp_avg"].shape == SHAPES[0]


@pytest.mark.parametrize("name, kwargs", [
    ("SGD", {"lr": 0.1, "momentum": 0.9}),
    ("Adam", {"lr": 0.1, "amsgrad": True}),
    ("AdamW", {"lr": 0.1}),
    ("Adamax", {"lr": 0.1}),
    ("NAdam", {"lr": 0.1}),
    ("RAdam", {"lr": 0.1}),
])
def test_state_dict_keys_match_torch(name, kwargs):
    torch = pytest.importorskip("torch")
    _, ours = run_minidl(getattr(optim, name), kwargs, steps=2, groups=_two_groups)
    _, theirs = run_torch(torch, name, kwargs, steps=2, groups=_two_groups)
    ours, theirs = ours.state_dict(), theirs.state_dict()
    assert sorted(ours["state"]) == sorted(theirs["state"])
    for i in ours["state"]:
        assert set(ours["state"][i]) == set(theirs["state"][i])
    for g_ours, g_theirs in zip(ours["param_groups"], theirs["param_groups"]):
        assert g_ours["params"] == g_theirs["params"]
        assert set(g_ours) <= set(g_theirs)  # torch has extra flags (foreach, fused, ...)
        for key in g_ours:
            assert g_ours[key] == g_theirs[key], key


def test_load_state_dict_accepts_torch_state():
    """A torch optimizer state converted to NumPy loads and continues like torch."""
    torch = pytest.importorskip("torch")
    kwargs = {"lr": 0.05}
    _, t_opt = run_torch(torch, "Adam", kwargs, steps=10)
    t_sd = t_opt.state_dict()
    converted = {
        "state": {i: {k: v.numpy().copy() for k, v in s.items()} for i, s in t_sd["state"].items()},
        "param_groups": [{k: v for k, v in g.items() if k not in ("foreach", "fused", "capturable",
                                                                   "differentiable")}
                         for g in t_sd["param_groups"]],
    }
    params = [make_param(p.detach().numpy()) for g in t_opt.param_groups for p in g["params"]]
    opt = optim.Adam(params, lr=1.0)
    opt.load_state_dict(converted)
    assert isinstance(opt.state[params[0]]["step"], float) and opt.state[params[0]]["step"] == 10
    assert opt.param_groups[0]["lr"] == 0.05
    centres, curvature = make_problem()[1:]
    for _ in range(10):
        for p, g in zip(params, gradient([p.data for p in params], centres, curvature)):
            set_grad(p, g)
        opt.step()
    theirs, _ = run_torch(torch, "Adam", kwargs, steps=20)
    for p, b in zip(params, theirs):
        np.testing.assert_allclose(p.data, b, rtol=RTOL, atol=ATOL)


def test_load_state_dict_rejects_mismatched_groups():
    _, opt = run_minidl(optim.SGD, {"lr": 0.1, "momentum": 0.9}, steps=1, groups=_two_groups)
    sd = opt.state_dict()
    other = optim.SGD([make_param(np.zeros(3, dtype=np.float32))], lr=0.1)
    with pytest.raises(ValueError, match="number of parameter groups"):
        other.load_state_dict(sd)
    three = [make_param(np.zeros(s, dtype=np.float32)) for s in SHAPES]
    swapped = optim.SGD([{"params": three[:1]}, {"params": three[1:]}], lr=0.1)
    with pytest.raises(ValueError, match="group 0 has 2 parameters"):
        swapped.load_state_dict(sd)


# --------------------------------------------------------------------- errors
@pytest.mark.parametrize("factory, message", [
    (lambda ps: optim.SGD(ps, lr=-0.1), "Invalid learning rate: -0.1"),
    (lambda ps: optim.SGD(ps, momentum=-0.5), "Invalid momentum value: -0.5"),
    (lambda ps: optim.SGD(ps, weight_decay=-1), "Invalid weight_decay value: -1"),
    (lambda ps: optim.SGD(ps, nesterov=True), "Nesterov momentum requires"),
    (lambda ps: optim.SGD(ps, momentum=0.9, dampening=0.1, nesterov=True), "dampening=0.1"),
    (lambda ps: optim.Adam(ps, lr=-1e-3), "Invalid learning rate"),
    (lambda ps: optim.Adam(ps, betas=(1.0, 0.999)), "beta parameter at index 0: 1.0"),
    (lambda ps: optim.AdamW(ps, betas=(0.9, -0.1)), "beta parameter at index 1: -0.1"),
    (lambda ps: optim.Adamax(ps, eps=-1.0), "Invalid epsilon value"),
    (lambda ps: optim.NAdam(ps, momentum_decay=-1.0), "Invalid momentum_decay value"),
    (lambda ps: optim.RAdam(ps, weight_decay=-0.1), "Invalid weight_decay value"),
    (lambda ps: optim.SGD([]), "empty parameter list"),
])
def test_invalid_arguments_raise_value_error(factory, message):
    params = [make_param(np.zeros(2, dtype=np.float32))]
    with pytest.raises(ValueError, match=message):
        factory(params)


def test_invalid_params_raise():
    p = make_param(np.zeros(2, dtype=np.float32))
    with pytest.raises(TypeError, match="single"):
        optim.SGD(p)
    with pytest.raises(TypeError, match="set"):
        optim.SGD({p})
    with pytest.raises(TypeError, match="can only optimize Parameters"):
        optim.SGD([np.zeros(2)])
    opt = optim.SGD([p], lr=0.1)
    with pytest.raises(ValueError, match="more than one parameter group"):
        opt.add_param_group({"params": [p]})
    with pytest.raises(TypeError, match="dict"):
        opt.add_param_group([p])


def test_add_param_group_fills_defaults():
    a, b = make_param(np.zeros(2, dtype=np.float32)), make_param(np.zeros(2, dtype=np.float32))
    opt = optim.SGD([a], lr=0.1, momentum=0.9)
    opt.add_param_group({"params": b, "lr": 0.01})
    assert len(opt.param_groups) == 2
    assert opt.param_groups[1]["momentum"] == 0.9 and opt.param_groups[1]["lr"] == 0.01
    assert opt.param_groups[1]["params"][0] is b


def test_trains_a_model_with_autograd_like_torch():
    """End to end with minidl's autograd: least squares, Adam + cosine schedule, vs torch."""
    torch = pytest.importorskip("torch")
    api = _real_parameter_api()
    if api is None:
        pytest.skip("minidl.nn.Parameter not available")
    import minidl

    rng = np.random.default_rng(1)
    x = rng.standard_normal((64, 3)).astype(np.float32)
    y = x @ np.array([[1.0], [-2.0], [0.5]], dtype=np.float32)

    w = make_param(np.zeros((3, 1), dtype=np.float32))
    opt = optim.Adam([w], lr=0.1)
    sched = optim.lr_scheduler.CosineAnnealingLR(opt, T_max=50)
    tw = torch.zeros((3, 1), requires_grad=True)
    t_opt = torch.optim.Adam([tw], lr=0.1, foreach=False)
    t_sched = torch.optim.lr_scheduler.CosineAnnealingLR(t_opt, T_max=50)
    xt, yt = minidl.tensor(x), minidl.tensor(y)
    for _ in range(50):
        opt.zero_grad()
        loss = ((xt @ w - yt) ** 2).mean()
        loss.backward()
        opt.step()
        sched.step()
        t_opt.zero_grad()
        t_loss = ((torch.from_numpy(x) @ tw - torch.from_numpy(y)) ** 2).mean()
        t_loss.backward()
        t_opt.step()
        t_sched.step()
    np.testing.assert_allclose(w.data, tw.detach().numpy(), rtol=1e-4, atol=1e-5)
    assert loss.item() < 1e-2


def test_load_state_dict_after_json_metadata():
    """Checkpoints keep arrays in npz and the rest in JSON: str keys and lists must load."""
    straight, _ = run_minidl(optim.Adam, {"lr": 0.05}, steps=6)
    init, centres, curvature = make_problem()
    params = [make_param(a) for a in init]
    opt = optim.Adam(params, lr=0.05)
    for _ in range(3):
        for p, g in zip(params, gradient([p.data for p in params], centres, curvature)):
            set_grad(p, g)
        opt.step()
    sd = opt.state_dict()
    as_json = {"state": {str(i): s for i, s in sd["state"].items()},
               "param_groups": [{k: (list(v) if isinstance(v, tuple) else v) for k, v in g.items()}
                                for g in sd["param_groups"]]}
    opt.load_state_dict(as_json)
    assert opt.param_groups[0]["betas"] == [0.9, 0.999]
    for _ in range(3):
        for p, g in zip(params, gradient([p.data for p in params], centres, curvature)):
            set_grad(p, g)
        opt.step()
    for p, b in zip(params, straight):
        np.testing.assert_array_equal(p.data, b)
