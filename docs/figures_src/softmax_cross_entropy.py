"""Figure of docs/softmax_cross_entropy.md: the softmax of the course's three logits at four temperatures."""
import numpy as np


def make(outdir):
    import matplotlib.pyplot as plt

    import minidl
    import minidl.nn.functional as F

    logits = minidl.tensor([[11.5, 12.8, -2.4]], dtype="float64")
    names = ("butterfly", "candle", "car")
    temps = (0.5, 1.0, 2.0, 5.0)
    fig, ax = plt.subplots(figsize=(5.5, 2.6))
    width = 0.2
    for i, t in enumerate(temps):
        p = F.softmax(logits, dim=1, temperature=t).numpy()[0]
        ax.bar(np.arange(3) + (i - 1.5) * width, p, width, label=f"T = {t}")
    ax.set_xticks(np.arange(3), names)
    ax.set_ylabel("probability")
    ax.set_title("softmax(o / T), o = (11.5, 12.8, -2.4)", fontsize=10)
    ax.legend(fontsize=8, ncol=2)
    fig.tight_layout()
    fig.savefig(outdir / "softmax_temperature.png", dpi=90)
    plt.close(fig)
