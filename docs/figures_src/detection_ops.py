"""Figure of docs/detection_ops.md: boxes before and after NMS, and RoI Align's bins and samples."""
import numpy as np


def make(outdir):
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    import minidl
    from minidl import ops

    rng = np.random.default_rng(3)
    centres = np.array([[25.0, 30.0], [65.0, 60.0]])
    boxes, scores = [], []
    for cx, cy in centres:
        for _ in range(6):
            w, h = rng.uniform(25, 30, 2)
            dx, dy = rng.normal(0, 2, 2)
            boxes.append([cx + dx - w / 2, cy + dy - h / 2, cx + dx + w / 2, cy + dy + h / 2])
            scores.append(rng.uniform(0.3, 0.95))
    boxes = np.array(boxes, np.float32)
    scores = np.array(scores, np.float32)
    keep = set(ops.nms(minidl.tensor(boxes), minidl.tensor(scores), 0.5).tolist())

    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(8.0, 3.4))
    for i, (x1, y1, x2, y2) in enumerate(boxes):
        kept = i in keep
        ax.add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, lw=2 if kept else 0.8,
                               ec="tab:green" if kept else "0.6", ls="-" if kept else "--"))
        if kept:
            ax.text(x1, y1 - 1.5, f"{scores[i]:.2f}", color="tab:green", fontsize=8)
    ax.set_xlim(0, 90)
    ax.set_ylim(90, 0)
    ax.set_aspect("equal")
    ax.set_title("NMS at IoU 0.5: kept (green), suppressed (grey)", fontsize=9)

    # RoI Align: a 2x2 output over a box on an 8x8 feature map, 2x2 samples per bin.
    h = w = 8
    ax2.set_xlim(-0.5, w - 0.5)
    ax2.set_ylim(h - 0.5, -0.5)
    for k in range(w + 1):
        ax2.axvline(k - 0.5, color="0.85", lw=0.6)
        ax2.axhline(k - 0.5, color="0.85", lw=0.6)
    ax2.plot(*np.meshgrid(np.arange(w), np.arange(h)), ".", color="0.6", ms=3)
    x1, y1, x2, y2 = 1.3, 1.8, 6.1, 5.9
    ax2.add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, ec="tab:blue", lw=2))
    bin_w, bin_h = (x2 - x1) / 2, (y2 - y1) / 2
    for p in range(1, 2):
        ax2.plot([x1 + p * bin_w] * 2, [y1, y2], color="tab:blue", lw=1, ls="--")
        ax2.plot([x1, x2], [y1 + p * bin_h] * 2, color="tab:blue", lw=1, ls="--")
    for ph in range(2):
        for pw in range(2):
            for iy in range(2):
                for ix in range(2):
                    ax2.plot(x1 + pw * bin_w + (ix + 0.5) * bin_w / 2, y1 + ph * bin_h + (iy + 0.5) * bin_h / 2,
                             "o", color="tab:red", ms=4)
    ax2.set_aspect("equal")
    ax2.set_title("RoI Align: 2x2 bins, 2x2 bilinear samples each", fontsize=9)
    fig.tight_layout()
    fig.savefig(outdir / "detection_ops.png", dpi=90)
    plt.close(fig)
