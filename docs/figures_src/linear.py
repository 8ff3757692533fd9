"""docs/linear.md: activation std through 20 ReLU layers for three initialisations."""
import matplotlib.pyplot as plt

DPI = 90


def make(outdir):
    import minidl
    import minidl.nn as nn

    inits = {
        "kaiming_normal_(relu)": lambda w: nn.init.kaiming_normal_(w, nonlinearity="relu"),
        "xavier_normal_": nn.init.xavier_normal_,
        "nn.Linear default": None,
        "normal_(std=0.01)": lambda w: nn.init.normal_(w, std=0.01),
    }
    fig, ax = plt.subplots(figsize=(6, 3))
    for name, init in inits.items():
        minidl.manual_seed(0)
        x = minidl.randn(256, 256)
        stds = [x.std().item()]
        for _ in range(20):
            layer = nn.Linear(256, 256, bias=False)
            if init is not None:
                init(layer.weight)
            with minidl.no_grad():
                x = minidl.relu(layer(x))
            stds.append(x.std().item())
        ax.semilogy(range(21), stds, marker=".", label=name)
    ax.set_xlabel("layer")
    ax.set_ylabel("std of the activations")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(f"{outdir}/linear_init.png", dpi=DPI)
    plt.close(fig)
