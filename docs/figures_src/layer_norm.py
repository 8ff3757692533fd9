"""Figure of docs/layer_norm.md: which values batch, layer, instance and group normalisation normalise together."""
import numpy as np


def make(outdir):
    import matplotlib.pyplot as plt

    n, c = 4, 6  # samples (rows) x channels (columns); each cell stands for all H x W positions
    rows, cols = np.indices((n, c))
    groups = {
        "batch norm\n(per channel, over N, H, W)": cols,
        "layer norm\n(per sample, over C, H, W)": rows,
        "instance norm\n(per sample and channel)": rows * c + cols,
        "group norm, 2 groups\n(per sample and group)": rows * 2 + cols // 3,
    }
    from matplotlib.colors import ListedColormap

    palette = ListedColormap(np.vstack([plt.cm.tab20(np.arange(20)), plt.cm.tab20b(np.arange(20))]))  # 40 colours
    fig, axes = plt.subplots(1, 4, figsize=(9.0, 2.6))
    for ax, (title, ids) in zip(axes, groups.items()):
        ax.imshow(ids, cmap=palette, vmin=0, vmax=39)
        ax.set_xticks(np.arange(c) - 0.5, minor=True)
        ax.set_yticks(np.arange(n) - 0.5, minor=True)
        ax.grid(which="minor", color="white", lw=2)
        ax.tick_params(which="both", length=0, labelbottom=False, labelleft=False)
        ax.set_xlabel("channels C")
        ax.set_ylabel("samples N")
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(outdir / "layer_norm_axes.png", dpi=90)
    plt.close(fig)
