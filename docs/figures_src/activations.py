"""docs/activations.md: activations and their derivatives, computed by minidl's autograd."""
import matplotlib.pyplot as plt
import numpy as np

DPI = 90


def make(outdir):
    import minidl
    import minidl.nn.functional as F

    fns = {"relu": F.relu, "leaky_relu(0.1)": lambda t: F.leaky_relu(t, 0.1), "elu": F.elu,
           "sigmoid": F.sigmoid, "tanh": F.tanh, "silu": F.silu, "gelu": F.gelu, "hardswish": F.hardswish}
    grid = np.linspace(-4, 4, 401)
    fig, axes = plt.subplots(2, 1, figsize=(6.5, 5), sharex=True)
    for name, fn in fns.items():
        x = minidl.tensor(grid, requires_grad=True)
        y = fn(x)
        y.sum().backward()
        axes[0].plot(grid, y.detach().numpy(), label=name, linewidth=1.2)
        axes[1].plot(grid, x.grad.numpy(), linewidth=1.2)
    axes[0].set_ylim(-1.5, 4)
    axes[0].set_ylabel("f(x)")
    axes[1].set_ylabel("f'(x) (backward)")
    axes[1].set_xlabel("x")
    axes[0].legend(fontsize=7, ncol=2)
    for ax in axes:
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(f"{outdir}/activations.png", dpi=DPI)
    plt.close(fig)
