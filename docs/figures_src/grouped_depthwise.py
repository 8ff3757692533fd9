"""docs/grouped_depthwise.md: the input channels each output channel sees."""
import matplotlib.pyplot as plt
import numpy as np

DPI = 90


def make(outdir):
    c = 8
    fig, axes = plt.subplots(1, 3, figsize=(7, 2.6))
    for ax, (title, groups) in zip(axes, [("dense (groups=1)", 1), ("groups=2", 2), ("depthwise (groups=8)", 8)]):
        per = c // groups
        mask = np.zeros((c, c))
        for k in range(c):
            g = k // per
            mask[k, g * per:(g + 1) * per] = 1
        ax.imshow(mask, cmap="Oranges", vmin=0, vmax=1.3)
        ax.set_xticks(range(c))
        ax.set_yticks(range(c))
        ax.tick_params(labelsize=7)
        ax.set_xlabel("input channel", fontsize=8)
        ax.set_ylabel("output channel", fontsize=8)
        ax.set_title(f"{title}: {int(mask.sum()) * 9} weights (3x3)", fontsize=9)
    fig.tight_layout()
    fig.savefig(f"{outdir}/grouped_connections.png", dpi=DPI)
    plt.close(fig)
