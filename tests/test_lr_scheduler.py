"""Learning-rate schedulers: lr (and momentum) sequences equal PyTorch's, checkpoints resume exactly.

Each scheduler is built twice from the same spec, once over a minidl optimizer
and once over a torch optimizer, both with two parameter groups (lr 0.1 and
0.03); after every ``optimizer.step(); scheduler.step()`` the lrs must agree.
The arithmetic is the same Python float arithmetic, so the tolerance is 1e-12.
"""

import json
import math

import numpy as np
import pytest

from minidl import optim
from minidl.optim import lr_scheduler

STEPS = 40
LRS = (0.1, 0.03)


class _StandInTensor:
    def __init__(self, data):
        self.data = data
        self.grad = None
        self.requires_grad = True


def _minidl_optimizer(kind="SGD"):
    params = [_StandInTensor(np.zeros(2, dtype=np.float32)) for _ in LRS]
    groups = [{"params": [p], "lr": lr} for p, lr in zip(params, LRS)]
    return optim.SGD(groups, lr=LRS[0]) if kind == "SGD" else optim.Adam(groups, lr=LRS[0])


def _torch_optimizer(torch, kind="SGD"):
    params = [torch.zeros(2, requires_grad=True) for _ in LRS]
    groups = [{"params": [p], "lr": lr} for p, lr in zip(params, LRS)]
    return torch.optim.SGD(groups, lr=LRS[0]) if kind == "SGD" else torch.optim.Adam(groups, lr=LRS[0])


class WarmupThenDecay:
    """A callable object for LambdaLR: its attributes go into the state_dict."""

    def __init__(self, warmup):
        self.warmup = warmup
        self.calls = 0

    def __call__(self, epoch):
        self.calls += 1
        return (epoch + 1) / self.warmup if epoch < self.warmup else 0.9 ** (epoch - self.warmup)


# name -> (optimizer kind, steps, factory(module, optimizer)); the module is
# minidl.optim.lr_scheduler or torch.optim.lr_scheduler.
SPECS = {
    "StepLR": ("SGD", STEPS, lambda m, o: m.StepLR(o, step_size=7, gamma=0.5)),
    "MultiStepLR": ("SGD", STEPS, lambda m, o: m.MultiStepLR(o, milestones=[5, 12, 12, 30], gamma=0.3)),
    "ExponentialLR": ("SGD", STEPS, lambda m, o: m.ExponentialLR(o, gamma=0.93)),
    "CosineAnnealingLR": ("SGD", 50, lambda m, o: m.CosineAnnealingLR(o, T_max=15, eta_min=0.001)),
    "CosineAnnealingLR-eta0": ("SGD", STEPS, lambda m, o: m.CosineAnnealingLR(o, T_max=10)),
    "LinearLR-warmup": ("SGD", STEPS, lambda m, o: m.LinearLR(o, start_factor=0.1, total_iters=8)),
    "LinearLR-decay": ("SGD", STEPS, lambda m, o: m.LinearLR(o, start_factor=1.0, end_factor=0.2,
                                                            total_iters=10)),
    "LambdaLR": ("SGD", STEPS, lambda m, o: m.LambdaLR(o, lambda e: 0.95**e)),
    "LambdaLR-per-group": ("SGD", STEPS, lambda m, o: m.LambdaLR(
        o, [lambda e: 1.0 / (1 + e), WarmupThenDecay(5)])),
    "SequentialLR-warmup-cosine": ("SGD", STEPS, lambda m, o: m.SequentialLR(
        o, [m.LinearLR(o, start_factor=0.1, total_iters=5), m.CosineAnnealingLR(o, T_max=20)],
        milestones=[5])),
    "SequentialLR-three": ("SGD", STEPS, lambda m, o: m.SequentialLR(
        o, [m.LinearLR(o, start_factor=0.25, total_iters=4), m.StepLR(o, step_size=3, gamma=0.5),
            m.ExponentialLR(o, gamma=0.9)], milestones=[6, 15])),
    "OneCycleLR-cos-sgd": ("SGD", STEPS, lambda m, o: m.OneCycleLR(o, max_lr=0.5, total_steps=STEPS)),
    "OneCycleLR-linear": ("SGD", STEPS, lambda m, o: m.OneCycleLR(
        o, max_lr=[0.5, 0.2], epochs=4, steps_per_epoch=10, anneal_strategy="linear", pct_start=0.25)),
    "OneCycleLR-three-phase-adam": ("Adam", STEPS, lambda m, o: m.OneCycleLR(
        o, max_lr=0.01, total_steps=STEPS, three_phase=True, base_momentum=0.8, max_momentum=0.9)),
    "OneCycleLR-no-momentum": ("Adam", 30, lambda m, o: m.OneCycleLR(
        o, max_lr=0.01, total_steps=30, cycle_momentum=False, div_factor=10.0, final_div_factor=100.0)),
}


def _momenta(optimizer):
    return [g["betas"][0] if "betas" in g else g["momentum"] for g in optimizer.param_groups]


def _trace(optimizer, scheduler, steps):
    """lrs and momenta after construction and after each step."""
    trace = [(scheduler.get_last_lr(), _momenta(optimizer))]
    for _ in range(steps):
        optimizer.step()
        scheduler.step()
        lrs = scheduler.get_last_lr()
        assert lrs == [g["lr"] for g in optimizer.param_groups]
        trace.append((lrs, _momenta(optimizer)))
    return trace


@pytest.mark.parametrize("name", list(SPECS))
def test_schedule_matches_torch(name):
    torch = pytest.importorskip("torch")
    kind, steps, factory = SPECS[name]
    opt = _minidl_optimizer(kind)
    ours = _trace(opt, factory(lr_scheduler, opt), steps)
    t_opt = _torch_optimizer(torch, kind)
    theirs = _trace(t_opt, factory(torch.optim.lr_scheduler, t_opt), steps)
    assert len(ours) == len(theirs) == steps + 1
    for epoch, ((lr_a, mom_a), (lr_b, mom_b)) in enumerate(zip(ours, theirs)):
        assert lr_a == pytest.approx(lr_b, rel=1e-12, abs=1e-15), f"lr at epoch {epoch}"
        assert mom_a == pytest.approx(mom_b, rel=1e-12, abs=1e-15), f"momentum at epoch {epoch}"
    # The schedule really moves (not a constant sequence).
    assert len({round(lrs[0], 12) for lrs, _ in ours}) > 2


def test_cosine_follows_recursive_form_after_t_max():
    """Up to T_max the closed form; after it PyTorch's recursion climbs back up."""
    opt = _minidl_optimizer()
    sched = lr_scheduler.CosineAnnealingLR(opt, T_max=10, eta_min=0.0)
    lrs = [sched.get_last_lr()[0]]
    for _ in range(20):
        opt.step()
        sched.step()
        lrs.append(sched.get_last_lr()[0])
    closed = [0.1 * (1 + math.cos(math.pi * e / 10)) / 2 for e in range(21)]
    np.testing.assert_allclose(lrs[:11], closed[:11], rtol=1e-12, atol=1e-15)
    assert lrs[10] == pytest.approx(0.0, abs=1e-15)
    assert lrs[20] == pytest.approx(0.1, rel=1e-9)  # back at the top after 2 * T_max
    assert lrs[15] > lrs[12]


def test_onecycle_phases():
    opt = _minidl_optimizer()
    sched = lr_scheduler.OneCycleLR(opt, max_lr=1.0, total_steps=20, pct_start=0.25)
    lrs, momenta = [sched.get_last_lr()[0]], [_momenta(opt)[0]]
    for _ in range(19):
        opt.step()
        sched.step()
        lrs.append(sched.get_last_lr()[0])
        momenta.append(_momenta(opt)[0])
    assert lrs[0] == pytest.approx(1.0 / 25) and momenta[0] == pytest.approx(0.95)
    assert lrs[4] == pytest.approx(1.0) and momenta[4] == pytest.approx(0.85)  # peak at 0.25 * 20 - 1
    assert lrs[19] == pytest.approx(1.0 / 25 / 1e4)
    assert momenta[19] == pytest.approx(0.95)
    opt.step()
    sched.step()  # step 20 == total_steps is still allowed, as PyTorch
    with pytest.raises(ValueError, match="Tried to step 21 times"):
        sched.step()


# ----------------------------------------------------------- ReduceLROnPlateau
def _metrics():
    """A fixed loss curve: improvement, plateaus with noise, a late improvement."""
    rng = np.random.default_rng(3)
    curve = np.concatenate([np.linspace(1.0, 0.5, 8), np.full(12, 0.5), np.linspace(0.5, 0.3, 5),
                            np.full(15, 0.3)])
    return list(curve + rng.normal(0, 0.002, curve.size))


PLATEAU_SPECS = [
    {"patience": 4},
    {"patience": 2, "factor": 0.5},
    {"patience": 1, "factor": 0.5, "cooldown": 3, "threshold": 0.01},
    {"patience": 2, "threshold_mode": "abs", "threshold": 0.005, "min_lr": [0.02, 0.001]},
    {"mode": "max", "patience": 3, "factor": 0.2},
    {"mode": "max", "threshold_mode": "abs", "patience": 0, "factor": 0.7, "min_lr": 0.01},
    {"patience": 1, "factor": 0.9, "eps": 0.005},
]


@pytest.mark.parametrize("kwargs", PLATEAU_SPECS, ids=[str(k) for k in PLATEAU_SPECS])
def test_reduce_on_plateau_matches_torch(kwargs):
    torch = pytest.importorskip("torch")
    metrics = _metrics()
    if kwargs.get("mode") == "max":
        metrics = [-m for m in metrics]
    opt, t_opt = _minidl_optimizer(), _torch_optimizer(torch)
    ours = lr_scheduler.ReduceLROnPlateau(opt, **kwargs)
    theirs = torch.optim.lr_scheduler.ReduceLROnPlateau(t_opt, **kwargs)
    changes = 0
    for metric in metrics:
        opt.step()
        t_opt.step()
        before = ours.get_last_lr()
        ours.step(metric)
        theirs.step(metric)
        changes += ours.get_last_lr() != before
        assert ours.get_last_lr() == pytest.approx(theirs.get_last_lr(), rel=1e-12, abs=0)
        assert (ours.num_bad_epochs, ours.cooldown_counter, ours.best, ours.last_epoch) == (
            theirs.num_bad_epochs, theirs.cooldown_counter, theirs.best, theirs.last_epoch)
    assert changes >= 1


def test_reduce_on_plateau_accepts_array_metric():
    opt = _minidl_optimizer()
    sched = lr_scheduler.ReduceLROnPlateau(opt, patience=0)
    sched.step(np.float32(1.0))
    sched.step(np.array(2.0))
    assert sched.get_last_lr() == pytest.approx([0.01, 0.003])


# ------------------------------------------------------------------ checkpoints
ROUND_TRIP = ["MultiStepLR", "CosineAnnealingLR", "LinearLR-warmup", "LambdaLR-per-group",
              "SequentialLR-warmup-cosine", "OneCycleLR-cos-sgd", "OneCycleLR-three-phase-adam"]


@pytest.mark.parametrize("name", ROUND_TRIP)
def test_state_dict_round_trip(name):
    kind, steps, factory = SPECS[name]
    opt = _minidl_optimizer(kind)
    straight = _trace(opt, factory(lr_scheduler, opt), steps)

    opt = _minidl_optimizer(kind)
    sched = factory(lr_scheduler, opt)
    first = _trace(opt, sched, 15)
    saved_sched, saved_opt = sched.state_dict(), opt.state_dict()
    assert "optimizer" not in saved_sched

    # Resume as a trainer does: new optimizer and scheduler, then load both
    # (the optimizer last, since the scheduler's constructor writes group lrs).
    new_opt = _minidl_optimizer(kind)
    new_sched = factory(lr_scheduler, new_opt)
    new_sched.load_state_dict(saved_sched)
    new_opt.load_state_dict(saved_opt)
    if name == "LambdaLR-per-group":
        assert new_sched.lr_lambdas[1].calls == sched.lr_lambdas[1].calls  # object state restored
    rest = _trace(new_opt, new_sched, steps - 15)
    assert first + rest[1:] == straight


@pytest.mark.parametrize("name", ["MultiStepLR", "SequentialLR-three", "OneCycleLR-three-phase-adam"])
def test_state_dict_survives_json(name):
    """Trainers store scheduler state as JSON metadata: int keys become str, tuples lists."""
    kind, steps, factory = SPECS[name]
    opt = _minidl_optimizer(kind)
    straight = _trace(opt, factory(lr_scheduler, opt), steps)
    opt = _minidl_optimizer(kind)
    sched = factory(lr_scheduler, opt)
    first = _trace(opt, sched, 10)
    saved_sched = json.loads(json.dumps(sched.state_dict()))
    saved_opt = json.loads(json.dumps(opt.state_dict()))  # no arrays: plain SGD/Adam before any grad
    new_opt = _minidl_optimizer(kind)
    new_sched = factory(lr_scheduler, new_opt)
    new_sched.load_state_dict(saved_sched)
    new_opt.load_state_dict(saved_opt)
    rest = _trace(new_opt, new_sched, steps - 10)
    assert first + rest[1:] == straight


def test_reduce_on_plateau_round_trip():
    metrics = _metrics()
    opt = _minidl_optimizer()
    sched = lr_scheduler.ReduceLROnPlateau(opt, patience=2, factor=0.5, cooldown=1)
    straight = []
    for m in metrics:
        sched.step(m)
        straight.append(sched.get_last_lr())

    opt = _minidl_optimizer()
    sched = lr_scheduler.ReduceLROnPlateau(opt, patience=2, factor=0.5, cooldown=1)
    resumed = []
    for m in metrics[:12]:
        sched.step(m)
        resumed.append(sched.get_last_lr())
    saved_sched, saved_opt = sched.state_dict(), opt.state_dict()
    opt = _minidl_optimizer()
    sched = lr_scheduler.ReduceLROnPlateau(opt)  # other settings: the checkpoint restores them
    sched.load_state_dict(saved_sched)
    opt.load_state_dict(saved_opt)
    for m in metrics[12:]:
        sched.step(m)
        resumed.append(sched.get_last_lr())
    assert resumed == straight


def test_scheduler_sets_initial_lr_and_base_lrs():
    opt = _minidl_optimizer()
    sched = lr_scheduler.StepLR(opt, step_size=2)
    assert [g["initial_lr"] for g in opt.param_groups] == list(LRS)
    assert sched.base_lrs == list(LRS) and sched.last_epoch == 0
    with pytest.raises(ValueError, match="initial_lr"):
        lr_scheduler.StepLR(_minidl_optimizer(), step_size=2, last_epoch=5)


# ----------------------------------------------------------------------- errors
@pytest.mark.parametrize("factory, error, message", [
    (lambda o: lr_scheduler.StepLR(object(), step_size=2), TypeError, "Optimizer"),
    (lambda o: lr_scheduler.StepLR(o, step_size=0), ValueError, "step_size"),
    (lambda o: lr_scheduler.LinearLR(o, start_factor=0.0), ValueError, "start_factor=0.0"),
    (lambda o: lr_scheduler.LinearLR(o, end_factor=1.5), ValueError, "end_factor=1.5"),
    (lambda o: lr_scheduler.CosineAnnealingLR(o, T_max=0), ValueError, "T_max"),
    (lambda o: lr_scheduler.LambdaLR(o, [lambda e: 1.0]), ValueError, "Expected 2 lr_lambdas"),
    (lambda o: lr_scheduler.OneCycleLR(o, max_lr=1.0), ValueError, "total_steps"),
    (lambda o: lr_scheduler.OneCycleLR(o, max_lr=1.0, total_steps=10, pct_start=1), ValueError, "pct_start"),
    (lambda o: lr_scheduler.OneCycleLR(o, max_lr=1.0, total_steps=10, anneal_strategy="exp"),
     ValueError, "anneal_strategy"),
    (lambda o: lr_scheduler.OneCycleLR(o, max_lr=[1.0], total_steps=10), ValueError, "max_lr"),
    (lambda o: lr_scheduler.ReduceLROnPlateau(o, factor=1.0), ValueError, "factor=1.0"),
    (lambda o: lr_scheduler.ReduceLROnPlateau(o, mode="up"), ValueError, "mode"),
    (lambda o: lr_scheduler.ReduceLROnPlateau(o, threshold_mode="pct"), ValueError, "threshold_mode"),
    (lambda o: lr_scheduler.SequentialLR(o, [lr_scheduler.StepLR(o, 2)], milestones=[3]),
     ValueError, "one milestone fewer"),
    (lambda o: lr_scheduler.SequentialLR(o, [lr_scheduler.StepLR(_minidl_optimizer(), 2),
                                             lr_scheduler.StepLR(o, 2)], milestones=[3]),
     ValueError, "same optimizer"),
])
def test_invalid_arguments(factory, error, message):
    with pytest.raises(error, match=message):
        factory(_minidl_optimizer())
