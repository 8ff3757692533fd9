"""Figure of docs/architectures.md: parameters against multiply-accumulates of the tour's models,
both computed by minidl (a build with initialisation skipped, and minidl.summary's forward pass)."""

TOUR = ["lenet5", "alexnet", "vgg16", "googlenet", "resnet18", "resnet50", "mobilenet_v1", "mobilenet_v2",
        "efficientnet_b0"]
OFFSETS = {"resnet18": (5, -10), "mobilenet_v2": (-62, -10), "mobilenet_v1": (5, -4)}  # keep labels apart


def make(outdir):
    import matplotlib.pyplot as plt

    from minidl.models import get_model_builder, get_model_card
    from minidl.nn.utils import skip_init
    from minidl.summary import summary

    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    for name in TOUR:
        model = skip_init(get_model_builder(name))
        for p in model.parameters():
            p.data[...] = 0
        s = summary(model, get_model_card(name).input_size)
        ax.loglog(s.total_macs, s.total_params, "o", color="tab:blue")
        ax.annotate(name, (s.total_macs, s.total_params), textcoords="offset points", xytext=OFFSETS.get(name, (5, 3)), fontsize=8)
    ax.set_xlabel("multiply-accumulates per image (at the model's input size)")
    ax.set_ylabel("parameters")
    ax.set_xlim(1e5, 1e11)
    ax.grid(True, which="major", color="0.9")
    fig.tight_layout()
    fig.savefig(outdir / "architectures_params_macs.png", dpi=90)
    plt.close(fig)
