"""docs/batch_norm.md: one channel before and after batch norm, and the running variance."""
import matplotlib.pyplot as plt
import numpy as np

DPI = 90


def make(outdir):
    import minidl
    import minidl.nn as nn

    minidl.manual_seed(0)
    bn = nn.BatchNorm2d(1)
    x = minidl.randn(16, 1, 4, 4) * 3 + 5
    y = bn(x)
    fig, axes = plt.subplots(1, 2, figsize=(7, 2.8))
    axes[0].hist(x.numpy().ravel(), bins=30, alpha=0.7, label="x (mean 5, std 3)")
    axes[0].hist(y.numpy().ravel(), bins=30, alpha=0.7, label="y = BN(x)")
    axes[0].legend(fontsize=8)
    axes[0].set_title("training mode: batch statistics", fontsize=9)
    bn = nn.BatchNorm2d(1)
    variances, biased = [], []
    for _ in range(50):
        x = minidl.randn(2, 1, 1, 1) * 3 + 5  # M = 2 values per batch
        bn(x)
        variances.append(bn.running_var.item())
        biased.append(x.numpy().var())
    axes[1].plot(variances, label="running_var (unbiased updates)")
    axes[1].axhline(9, color="k", linestyle="--", linewidth=1, label="true variance 9")
    axes[1].plot(np.cumsum(biased) / np.arange(1, 51), label="mean of biased batch variances")
    axes[1].set_xlabel("step (batches of M = 2)", fontsize=8)
    axes[1].legend(fontsize=7)
    axes[1].set_title("running statistics, momentum 0.1", fontsize=9)
    fig.tight_layout()
    fig.savefig(f"{outdir}/batch_norm_stats.png", dpi=DPI)
    plt.close(fig)
