"""Where detection lives and which road it takes.

- The model sits with the zoo (``minidl.models.detection``) and never imports the application
  (``minidl.detection``); nothing in detection imports a kernels module: every box operation goes
  through ``minidl.ops``, which picks the kernels for the tensors' device (spied on here).
- Detection data take the common road: readers in ``minidl.datasets`` return NumPy samples, a
  joint flip moves the boxes with the pixels, ``collate_fn`` makes the batch a Tensor, and the
  detector trains through ``DataLoader``, ``LambdaLR`` and the ``Trainer``'s hooks.
"""
import ast
import os
import subprocess
import sys

import numpy as np
import pytest

import minidl
from minidl import nn, ops
from minidl.data import DataLoader, TensorDataset
from minidl.datasets import GTSDB, SceneConfig, SyntheticScenes
from minidl.detection import pipeline as P
from minidl.detection.engine import TimeBudget, WarmupCosine, train_detector
from minidl.detection.transforms import RandomHorizontalFlip, collate_fn
from minidl.metrics_detection import detection_map
from minidl.models.detection import FasterRCNN, build_backbone, images_to_tensor
from minidl.optim.lr_scheduler import LambdaLR
from minidl.train import Trainer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DETECTION_SOURCES = ["minidl/detection", "models/detection", "minidl/metrics_detection.py"]


def _python_files(rel):
    path = os.path.join(ROOT, rel)
    if os.path.isfile(path):
        return [path]
    return sorted(os.path.join(d, f) for d, _, files in os.walk(path) for f in files if f.endswith(".py"))


def _imported_modules(path, package):
    """Every module a file imports (top level and inside functions), relative imports resolved."""
    with open(path) as f:
        tree = ast.parse(f.read(), path)
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
            names.append(base)
            names += [f"{base}.{alias.name}" for alias in node.names]  # `from minidl import kernels`
    return names


def _package_of(path):
    rel = os.path.relpath(os.path.dirname(path), ROOT).split(os.sep)
    mapped = {"models": ["minidl", "models"], "datasets": ["minidl", "datasets"], "kernels": ["minidl", "kernels"]}
    return ".".join(mapped.get(rel[0], [rel[0]]) + rel[1:])


def test_the_ast_walk_sees_kernel_imports(tmp_path):
    """The checker itself: absolute, relative, `from minidl import kernels` and in-function imports."""
    source = ("from minidl.kernels.cpu.nms import nms\nfrom ..kernels import cpu\nfrom minidl import kernels\n"
              "def f():\n    import minidl.kernels.cuda.nms\n")
    probe = tmp_path / "probe.py"
    probe.write_text(source)
    names = _imported_modules(str(probe), "minidl.detection")
    hits = [n for n in names if n == "minidl.kernels" or n.startswith("minidl.kernels.")]
    assert {"minidl.kernels.cpu.nms", "minidl.kernels.cpu", "minidl.kernels", "minidl.kernels.cuda.nms"} <= set(hits)


def test_detection_never_imports_a_kernels_module():
    files = [p for rel in DETECTION_SOURCES for p in _python_files(rel)]
    assert len(files) >= 10  # the model's six files, the application's four, the metrics
    offenders = {}
    for path in files:
        names = _imported_modules(path, _package_of(path))
        bad = [n for n in names if n == "minidl.kernels" or n.startswith("minidl.kernels.") or n.startswith("kernels")]
        if bad:
            offenders[os.path.relpath(path, ROOT)] = bad
    assert not offenders, f"detection code must use minidl.ops, not kernels: {offenders}"


def test_models_never_import_the_detection_application():
    offenders = {}
    for path in _python_files("models"):
        names = _imported_modules(path, _package_of(path))
        bad = [n for n in names if n == "minidl.detection" or n.startswith("minidl.detection.")]
        if bad:
            offenders[os.path.relpath(path, ROOT)] = bad
    assert not offenders, f"models must not import minidl.detection (the application): {offenders}"
    code = "import sys, minidl.models; print(sorted(m for m in sys.modules if m.startswith('minidl.detection')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"
    assert minidl.models.get_model_builder("fasterrcnn") is minidl.models.detection.fasterrcnn


@pytest.fixture
def spies(monkeypatch):
    """Wrap minidl.ops.nms / batched_nms / box_iou / roi_align; count the calls that reach them."""
    calls = {}
    for name in ("nms", "batched_nms", "box_iou", "roi_align"):
        original = getattr(ops, name)
        calls[name] = 0

        def spy(*args, _name=name, _original=original, **kwargs):
            calls[_name] += 1
            return _original(*args, **kwargs)

        monkeypatch.setattr(ops, name, spy)
    return calls


def _scenes(n=2, seed=3, transforms=None):
    cfg = SceneConfig(128, 96, min_size=20, max_size=36, max_signs=2, noise=2.0, occlusion=0.0)
    return SyntheticScenes(n, seed=seed, config=cfg, transforms=transforms)


def test_rpn_roi_heads_pipeline_and_metrics_call_minidl_ops(spies):
    minidl.manual_seed(0)
    scenes = _scenes()
    images, targets = collate_fn([scenes[0], scenes[1]])
    model = FasterRCNN(build_backbone("tiny"), 7, box_batch_size_per_image=16, representation_size=32,
                       rpn_batch_size_per_image=32)
    model.train()
    losses = model(images, [{"boxes": t["boxes"], "labels": t["labels"] + 1} for t in targets])
    assert set(losses) == {"loss_objectness", "loss_rpn_box_reg", "loss_classifier", "loss_box_reg"}
    # training: proposal NMS (RPN), the matcher's IoU (RPN and RoI heads), RoI Align
    assert spies["nms"] >= 2 and spies["box_iou"] >= 4 and spies["roi_align"] == 1
    seen = dict(spies)
    model.eval()
    with minidl.no_grad():
        dets = model(images)
    # inference: proposal NMS per image, RoI Align, the class-aware NMS per image
    assert spies["nms"] == seen["nms"] + 2 and spies["roi_align"] == seen["roi_align"] + 1
    assert spies["batched_nms"] == 2
    dets = [{"boxes": np.array([[0.0, 0, 10, 10], [1, 1, 10, 10]]), "scores": np.array([0.9, 0.8]),
             "labels": np.array([1, 1])}]
    out = P.ClassNMS(0.5)(None, dets[0])
    assert spies["batched_nms"] == 3 and len(out["boxes"]) == 1
    before = spies["box_iou"]
    detection_map(dets, [{"boxes": np.array([[0.0, 0, 10, 10]]), "labels": np.array([1])}])
    assert spies["box_iou"] > before


def test_flip_moves_the_boxes_with_the_pixels():
    image, target = _scenes(1, seed=5)[0]
    with minidl.data.transforms.use_rng(np.random.default_rng(0)):
        flipped, moved = RandomHorizontalFlip(p=1.0)(image, target)
        same, kept = RandomHorizontalFlip(p=0.0)(image, target)
    assert same is image and kept is target
    np.testing.assert_array_equal(flipped, image[:, ::-1])
    w = image.shape[1]
    for (x1, y1, x2, y2), (f1, g1, f2, g2) in zip(target["boxes"].astype(int), moved["boxes"].astype(int)):
        assert (g1, g2) == (y1, y2) and (f1, f2) == (w - x2, w - x1)
        np.testing.assert_array_equal(flipped[y1:y2, f1:f2], image[y1:y2, x1:x2][:, ::-1])  # same sign, mirrored
    np.testing.assert_array_equal(moved["labels"], target["labels"])
    assert target["boxes"] is not moved["boxes"]  # the reader's cached target is left alone


def test_detection_batches_through_the_dataloader():
    scenes = _scenes(5, transforms=RandomHorizontalFlip(0.5))
    sample_image, sample_target = scenes[0]
    assert isinstance(sample_image, np.ndarray) and isinstance(sample_target["boxes"], np.ndarray)

    def batches():
        loader = DataLoader(scenes, batch_size=2, shuffle=True, seed=4, collate_fn=collate_fn)
        return [(x.numpy(), [t["boxes"] for t in y]) for x, y in loader]

    first, second = batches(), batches()
    assert [x.shape for x, _ in first] == [(2, 3, 96, 128), (2, 3, 96, 128), (1, 3, 96, 128)]
    for (xa, ba), (xb, bb) in zip(first, second):  # the seed fixes the order and every flip
        np.testing.assert_array_equal(xa, xb)
        for a, b in zip(ba, bb):
            np.testing.assert_array_equal(a, b)
    # without shuffling or flips, a batch is the model's normalised input of those samples
    plain = _scenes(5)
    x, y = next(iter(DataLoader(plain, batch_size=2, collate_fn=collate_fn)))
    assert isinstance(x, minidl.Tensor) and x.dtype == np.float32
    np.testing.assert_array_equal(x.numpy(), images_to_tensor([plain[0][0], plain[1][0]]).numpy())
    np.testing.assert_array_equal(y[1]["boxes"], plain[1][1]["boxes"])
    with pytest.raises(ValueError, match="empty"):
        collate_fn([])


def test_gtsdb_reader_takes_joint_transforms(tmp_path):
    from minidl.datasets.scenes import write_gtsdb

    write_gtsdb(_scenes(2), str(tmp_path))
    plain = GTSDB(str(tmp_path))
    flipped = GTSDB(str(tmp_path), transforms=RandomHorizontalFlip(p=1.0))
    image, target = plain[1]
    image_f, target_f = flipped[1]
    np.testing.assert_array_equal(image_f, image[:, ::-1])
    np.testing.assert_array_equal(target_f["boxes"][:, [0, 2]], image.shape[1] - target["boxes"][:, [2, 0]])
    with pytest.raises(TypeError, match="transforms"):
        GTSDB(str(tmp_path), transforms=3)


class _FakeBudget:
    def __init__(self):
        self.used = 0.0

    def fraction(self):
        return self.used


def test_warmup_cosine_follows_steps_or_the_time_budget():
    param = nn.Parameter(minidl.zeros(1))
    opt = minidl.optim.SGD([param], lr=1.0)
    budget = _FakeBudget()
    sched = LambdaLR(opt, WarmupCosine(total_steps=100, warmup_steps=4, budget=budget))
    lrs = [opt.param_groups[0]["lr"]]
    for _ in range(5):
        sched.step()
        lrs.append(opt.param_groups[0]["lr"])
    assert lrs[:4] == pytest.approx([0.25, 0.5, 0.75, 1.0])  # linear warm-up
    assert lrs[4] == pytest.approx(0.5 * (1 + np.cos(np.pi * 0.04)))  # cosine by steps
    budget.used = 0.5  # half the time spent after 5 steps: the cosine jumps to the middle
    sched.step()
    assert opt.param_groups[0]["lr"] == pytest.approx(0.5)
    budget.used = 1.2
    sched.step()
    assert opt.param_groups[0]["lr"] == pytest.approx(0.0)
    with pytest.raises(ValueError, match="clock"):
        TimeBudget(10, clock="gpu")
    assert not TimeBudget(1e6).spent() and TimeBudget(1e-9).fraction() > 0


def test_trainer_hooks_batch_loss_max_steps_and_should_stop():
    x = np.random.default_rng(0).normal(size=(40, 3)).astype(np.float32)
    y = x @ np.array([1.0, -2.0, 0.5], np.float32)
    model = nn.Linear(3, 1)
    seen = []

    def batch_loss(net, inputs, targets):
        seen.append(len(targets))
        diff = net(inputs).reshape(-1) - targets
        return (diff * diff).mean()

    loader = DataLoader(TensorDataset(x, y), batch_size=8, shuffle=True, seed=0)
    trainer = Trainer(model, minidl.optim.SGD(model.parameters(), lr=0.1), batch_loss=batch_loss, max_steps=7,
                      progress=False)
    history = trainer.fit(loader, epochs=5)
    # 5 batches per epoch: the 7th step ends training inside epoch 2
    assert trainer.global_step == 7 and trainer.halted and len(history) == 2 and seen == [8] * 7
    assert history.last["train_acc"] is None and history["train_loss"][1] < history["train_loss"][0]
    stops = Trainer(model, minidl.optim.SGD(model.parameters(), lr=0.1), batch_loss=batch_loss, progress=False,
                    should_stop=lambda t: t.global_step >= 3)
    stops.fit(loader, epochs=5)
    assert stops.global_step == 3 and stops.epoch == 1
    with pytest.raises(ValueError, match="max_steps"):
        Trainer(model, minidl.optim.SGD(model.parameters(), lr=0.1), max_steps=0)


def test_train_detector_runs_a_fixed_number_of_steps_and_learns():
    minidl.manual_seed(0)
    scenes = _scenes(2)
    model = FasterRCNN(build_backbone("tiny"), 7, box_batch_size_per_image=32, representation_size=64,
                       rpn_batch_size_per_image=64)
    losses = train_detector(model, scenes, epochs=100, batch_size=2, lr=3e-3, max_steps=30, progress=False,
                            log=None)
    assert len(losses) == 30  # max_steps, not the 100 epochs
    assert np.mean(losses[-5:]) < 0.5 * np.mean(losses[:5])
