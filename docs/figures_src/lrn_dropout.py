"""docs/lrn_dropout.md: LRN's divisor against the neighbours' activation; a dropout mask."""
import matplotlib.pyplot as plt
import numpy as np

DPI = 90


def make(outdir):
    import minidl
    import minidl.nn.functional as F

    fig, axes = plt.subplots(1, 2, figsize=(7.5, 2.8))
    neighbour = np.linspace(0, 10, 101)
    for alpha in (1e-2, 1e-1):
        x = np.ones((101, 5, 1, 1))
        x[:, [0, 1, 3, 4], 0, 0] = neighbour[:, None]  # channel 2 fixed at 1, its neighbours grow
        y = F.local_response_norm(minidl.tensor(x), 5, alpha=alpha, beta=0.75, k=2.0).numpy()[:, 2, 0, 0]
        axes[0].plot(neighbour, y, label=f"alpha={alpha}")
    axes[0].set_xlabel("neighbouring channels' activation", fontsize=8)
    axes[0].set_ylabel("y of a channel with x = 1", fontsize=8)
    axes[0].set_title("LRN (size 5, beta 0.75, k 2)", fontsize=9)
    axes[0].legend(fontsize=8)
    minidl.manual_seed(0)
    y = F.dropout(minidl.ones(8, 12), p=0.25).numpy()
    axes[1].imshow(y, cmap="Purples", vmin=0, vmax=1.6)
    axes[1].set_title("dropout p=0.25 on ones: 0 or 1/(1-p) = 1.33", fontsize=9)
    axes[1].set_xticks([])
    axes[1].set_yticks([])
    fig.tight_layout()
    fig.savefig(f"{outdir}/lrn_dropout.png", dpi=DPI)
    plt.close(fig)
