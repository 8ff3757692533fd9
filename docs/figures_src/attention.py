"""Figure of docs/attention.md: one head's attention weights on a 6-token sequence, without and with a causal mask."""
import numpy as np


def make(outdir):
    import matplotlib.pyplot as plt

    import minidl
    from minidl import nn

    minidl.manual_seed(0)
    length, embed = 6, 8
    mha = nn.MultiheadAttention(embed, 1, batch_first=True)
    x = minidl.randn(1, length, embed) * 2
    causal = minidl.tensor(np.triu(np.ones((length, length), dtype=bool), 1))  # True: masked (MHA's convention)
    panels = {"no mask": mha(x, x, x)[1], "causal mask": mha(x, x, x, attn_mask=causal)[1]}
    fig, axes = plt.subplots(1, 2, figsize=(6.4, 3.0))
    for ax, (title, weights) in zip(axes, panels.items()):
        im = ax.imshow(weights.numpy()[0], cmap="viridis", vmin=0, vmax=1)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("key position")
    axes[0].set_ylabel("query position")
    fig.colorbar(im, ax=axes, shrink=0.8, label="weight")
    fig.savefig(outdir / "attention_weights.png", dpi=90)
    plt.close(fig)
