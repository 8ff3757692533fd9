"""docs/autograd.md: the graph of L = tanh(a*b + c) * f with forward values and gradients."""
import math

import matplotlib.pyplot as plt

DPI = 90


def _values():
    a, b, c, f = 2.0, -3.0, 10.0, -2.0
    e = a * b
    d = e + c
    t = math.tanh(d)
    L = t * f
    dt = f
    dd = dt * (1 - t * t)
    return {  # name: (x, y, label, value, gradient)
        "a": (0, 3.1, "a", a, dd * b), "b": (0, 1.9, "b", b, dd * a), "c": (2, 1, "c", c, dd),
        "f": (4, 0.5, "f", f, t), "e": (2, 2.5, "e = a*b", e, dd), "d": (4, 2, "d = e+c", d, dd),
        "t": (6, 2, "t = tanh d", t, dt), "L": (8, 1.5, "L = t*f", L, 1.0),
    }


EDGES = [("a", "e"), ("b", "e"), ("e", "d"), ("c", "d"), ("d", "t"), ("t", "L"), ("f", "L")]


def make(outdir):
    nodes = _values()
    fig, ax = plt.subplots(figsize=(7.5, 3.0))
    for src, dst in EDGES:
        (x0, y0), (x1, y1) = nodes[src][:2], nodes[dst][:2]
        ax.annotate("", xy=(x1 - 0.55, y1), xytext=(x0 + 0.55, y0),
                    arrowprops={"arrowstyle": "->", "color": "0.4"})
    for x, y, label, value, grad in nodes.values():
        leaf = len(label) == 1
        ax.text(x, y, label, ha="center", va="center", fontsize=9,
                bbox={"boxstyle": "round", "fc": "#dbe9f6" if leaf else "#fde2c4", "ec": "0.3"})
        ax.text(x, y + 0.38, f"{value:.4g}", ha="center", fontsize=8, color="#1f4e79")
        ax.text(x, y - 0.42, f"grad {grad:.3g}", ha="center", fontsize=8, color="#a0400b")
    ax.set_xlim(-0.8, 8.8)
    ax.set_ylim(0, 3.7)
    ax.axis("off")
    ax.set_title("forward values (blue) and dL/dnode (orange); leaves in blue boxes", fontsize=9)
    fig.tight_layout()
    fig.savefig(f"{outdir}/autograd_graph.png", dpi=DPI)
    plt.close(fig)
