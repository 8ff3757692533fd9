"""Figure of docs/recurrent.md: |d h_T / d x_t| against the distance T - t, for an RNN, an LSTM and a GRU
(PyTorch's default initialisation, and an LSTM with 1 added to its forget-gate bias; hidden size 32, 60 steps, the mean over a batch of 16)."""
import numpy as np


def make(outdir):
    import matplotlib.pyplot as plt

    import minidl
    from minidl import nn

    steps, batch, size = 60, 16, 32
    fig, ax = plt.subplots(figsize=(5.5, 3.0))
    for cls, forget_bias in ((nn.RNN, 0), (nn.LSTM, 0), (nn.GRU, 0), (nn.LSTM, 1.0)):
        minidl.manual_seed(0)
        layer = cls(size, size)
        if forget_bias:  # the f quarter of b_ih (gate order i, f, g, o)
            layer.bias_ih_l0.data[size:2 * size] += forget_bias
        x = minidl.randn(steps, batch, size, requires_grad=True)
        out, _ = layer(x)
        out[-1].sum().backward()
        norms = np.linalg.norm(x.grad.numpy(), axis=2).mean(axis=1)  # (steps,)
        ax.semilogy(np.arange(steps)[::-1], norms, label=cls.__name__ + (f", forget bias +{forget_bias:g}" if forget_bias else ""))
    ax.set_xlabel("distance T - t (steps back in time)")
    ax.set_ylabel("|d h_T / d x_t|")
    ax.legend(fontsize=8)
    ax.grid(True, color="0.9")
    fig.tight_layout()
    fig.savefig(outdir / "recurrent_gradient.png", dpi=90)
    plt.close(fig)
