"""docs/pooling.md: a 4x4 input, its 2x2 max-pool, and the arg-max positions."""
import matplotlib.pyplot as plt
import numpy as np

DPI = 90
X = np.array([[1, 3, 2, 0], [4, 2, 1, 5], [0, 1, 7, 7], [6, 2, 3, 1]], dtype=float)


def make(outdir):
    import minidl
    import minidl.nn.functional as F

    y, index = F.max_pool2d(minidl.tensor(X[None, None]), 2, return_indices=True)
    y, index = y.numpy()[0, 0], index.numpy()[0, 0]
    fig, axes = plt.subplots(1, 2, figsize=(5.5, 2.8))
    colours = np.zeros((4, 4))
    for i in range(2):
        for j in range(2):
            colours[2 * i:2 * i + 2, 2 * j:2 * j + 2] = 0.1 + 0.12 * (2 * i + j)
    for r, c in (divmod(int(k), 4) for k in index.ravel()):
        colours[r, c] = 1.0
    axes[0].imshow(colours, cmap="Greens", vmin=0, vmax=1.1)
    for r in range(4):
        for c in range(4):
            axes[0].text(c, r, f"{X[r, c]:.0f}", ha="center", va="center", fontsize=10)
    axes[0].set_title("input: windows shaded, arg-max dark\n(the tie 7, 7: the first wins)", fontsize=9)
    axes[1].imshow(y, cmap="Greens", vmin=0, vmax=10)
    for i in range(2):
        for j in range(2):
            axes[1].text(j, i, f"{y[i, j]:.0f}\nindex {index[i, j]}", ha="center", va="center", fontsize=9)
    axes[1].set_title("output and indices (r*W + c)", fontsize=9)
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    fig.savefig(f"{outdir}/pooling_argmax.png", dpi=DPI)
    plt.close(fig)
