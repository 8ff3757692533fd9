"""Figure of docs/optimizers.md: paths of SGD, momentum, Nesterov, Adam and RAdam on an
ill-conditioned bowl, and RAdam's rectification factor r_t."""
import numpy as np


def _path(make, steps=30, start=(-4.0, 1.5)):
    import minidl
    from minidl.nn import Parameter

    p = Parameter(minidl.tensor(start, dtype="float64"))
    opt = make([p])
    path = [p.numpy().copy()]
    for _ in range(steps):
        opt.zero_grad()
        (0.5 * (p[0] * p[0] + 25.0 * p[1] * p[1])).backward()
        opt.step()
        path.append(p.numpy().copy())
    return np.array(path)


def make(outdir):
    import matplotlib.pyplot as plt

    from minidl import optim

    methods = {
        "SGD": lambda ps: optim.SGD(ps, lr=0.035),
        "momentum 0.9": lambda ps: optim.SGD(ps, lr=0.035, momentum=0.9),
        "Nesterov 0.9": lambda ps: optim.SGD(ps, lr=0.035, momentum=0.9, nesterov=True),
        "Adam lr 0.3": lambda ps: optim.Adam(ps, lr=0.3),
        "RAdam lr 0.05": lambda ps: optim.RAdam(ps, lr=0.05),
    }
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(8.5, 3.0), gridspec_kw={"width_ratios": [1.6, 1]})
    xs, ys = np.meshgrid(np.linspace(-4.5, 1.5, 120), np.linspace(-2, 2, 80))
    ax.contour(xs, ys, 0.5 * (xs ** 2 + 25 * ys ** 2), levels=[0.5, 2, 5, 10, 20, 40], colors="0.8", linewidths=0.7)
    for name, make_opt in methods.items():
        path = _path(make_opt)
        ax.plot(path[:, 0], path[:, 1], ".-", ms=3, lw=1, label=name)
    ax.set_xlim(-4.5, 1.5)
    ax.set_ylim(-2, 2)
    ax.set_title("30 steps on f = (x² + 25 y²) / 2", fontsize=10)
    ax.legend(fontsize=7, loc="lower right")

    beta2 = 0.999
    rho_inf = 2 / (1 - beta2) - 1
    t = np.arange(1, 20001)
    rho = rho_inf - 2 * t * beta2 ** t / (1 - beta2 ** t)
    ok = rho > 5
    r = np.sqrt((rho[ok] - 4) * (rho[ok] - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho[ok]))
    ax2.semilogx(t[ok], r)
    ax2.axvline(t[ok][0], color="0.6", ls="--", lw=0.8)
    ax2.set_xlabel("step t")
    ax2.set_title("RAdam's r_t (beta2 = 0.999)", fontsize=10)
    ax2.set_ylim(0, 1.05)
    fig.tight_layout()
    fig.savefig(outdir / "optimizers_paths.png", dpi=90)
    plt.close(fig)
