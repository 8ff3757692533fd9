"""docs/convolution.md: the input pixels one output reads, for four kinds of 3x3 convolution."""
import matplotlib.pyplot as plt
import numpy as np

DPI = 90


def make(outdir):
    cases = [("dense (s1 p0)", 1, 0, 1, (1, 1)), ("stride 2", 2, 0, 1, (1, 1)),
             ("padding 1", 1, 1, 1, (0, 0)), ("dilation 2", 1, 0, 2, (1, 1))]
    size = 7
    fig, axes = plt.subplots(1, 4, figsize=(8, 2.4))
    for ax, (title, s, p, d, (oh, ow)) in zip(axes, cases):
        grid = np.zeros((size + 2 * p, size + 2 * p))
        if p:
            grid[:p, :] = grid[-p:, :] = grid[:, :p] = grid[:, -p:] = 0.35  # padding
        for i in range(3):
            for j in range(3):
                grid[oh * s + i * d, ow * s + j * d] = 1.0
        ax.imshow(grid, cmap="Blues", vmin=0, vmax=1.2)
        ax.set_xticks(np.arange(-0.5, grid.shape[1], 1), minor=True)
        ax.set_yticks(np.arange(-0.5, grid.shape[0], 1), minor=True)
        ax.grid(which="minor", color="0.6", linewidth=0.5)
        ax.tick_params(which="both", length=0, labelbottom=False, labelleft=False)
        ax.set_title(f"{title}\noutput ({oh}, {ow})", fontsize=9)
    fig.suptitle("dark: the 9 pixels read; light: zero padding (7x7 input)", fontsize=9)
    fig.tight_layout()
    fig.savefig(f"{outdir}/convolution_windows.png", dpi=DPI)
    plt.close(fig)
