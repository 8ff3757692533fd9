"""Training, inference and evaluation of the detector, the crop classifiers, and drawing.

The detector trains on the common road: a detection reader (``minidl.datasets.SyntheticScenes``
or ``GTSDB``) with the joint flip (:class:`minidl.detection.transforms.RandomHorizontalFlip`),
``minidl.data.DataLoader`` with the detection :func:`~minidl.detection.transforms.collate_fn`,
Adam with a ``LambdaLR`` warm-up/cosine schedule (:class:`WarmupCosine`, which also follows a
:class:`TimeBudget`), and :class:`minidl.train.Trainer` with the model's own losses
(:func:`detection_loss`).

Labels: datasets use 0..C-1; the detector reserves 0 for the background and predicts 1..C, so
targets get +1 on the way in (:func:`detection_loss`) and predictions -1 on the way out
(:func:`predict`).
"""
from __future__ import annotations

import math
import time

import numpy as np
from PIL import Image, ImageDraw

from minidl import nn, ops, optim
from minidl.grad_mode import no_grad
from minidl.data import DataLoader, Dataset
from minidl.data.flips import find_flip_map, flip_labels
from minidl.detection.pipeline import crop_boxes
from minidl.detection.transforms import RandomHorizontalFlip, collate_fn
from minidl.metrics_detection import coco_map, detection_map, rpn_recall
from minidl.models.detection import images_to_tensor
from minidl.nn import functional as F
from minidl.optim.lr_scheduler import LambdaLR
from minidl.tensor import Tensor
from minidl.train import Trainer


def _batches(indices, batch_size):
    for start in range(0, len(indices), batch_size):
        yield indices[start:start + batch_size]


class TimeBudget:
    """``seconds`` of training on a clock: ``"wall"`` (perf_counter) or ``"cpu"`` (this process).

    The clock starts when the budget is made. ``fraction()`` is the share used so far;
    ``spent()`` (usable as the Trainer's ``should_stop``) is True once it is all used.
    """

    def __init__(self, seconds, clock="wall"):
        if clock not in ("wall", "cpu"):
            raise ValueError(f"clock must be 'wall' or 'cpu', got {clock!r}")
        if not seconds > 0:
            raise ValueError(f"seconds must be positive, got {seconds!r}")
        self.seconds, self.clock = float(seconds), clock
        self._now = time.perf_counter if clock == "wall" else time.process_time
        self.start = self._now()

    def elapsed(self):
        return self._now() - self.start

    def fraction(self):
        return self.elapsed() / self.seconds

    def spent(self, trainer=None):
        return self.elapsed() > self.seconds


class WarmupCosine:
    """LR factor for ``LambdaLR``: linear warm-up over ``warmup_steps``, then a cosine to 0.

    The cosine follows the progress ``step / total_steps`` or, with a :class:`TimeBudget`, the
    share of the budget used when that is further, so that a time-limited run still ends with a
    small learning rate.

    >>> f = WarmupCosine(total_steps=100, warmup_steps=10)
    >>> [round(f(s), 3) for s in (0, 9, 10, 50, 100)]
    [0.1, 1.0, 0.976, 0.5, 0.0]
    """

    def __init__(self, total_steps, warmup_steps=0, budget=None):
        if total_steps < 1 or warmup_steps < 0:
            raise ValueError(f"expected total_steps >= 1 and warmup_steps >= 0, got {total_steps}, {warmup_steps}")
        self.total_steps, self.warmup_steps, self.budget = int(total_steps), int(warmup_steps), budget

    def __call__(self, step):
        if step < self.warmup_steps:
            return (step + 1) / self.warmup_steps
        progress = step / self.total_steps
        if self.budget is not None:
            progress = max(progress, self.budget.fraction())
        return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def detection_loss(model, images, targets):
    """The sum of Faster R-CNN's four losses on a batch (the Trainer's ``batch_loss``).

    ``targets`` carry dataset labels 0..C-1; the detector's are 1..C (0 is the background).
    """
    shifted = [{"boxes": t["boxes"], "labels": np.asarray(t["labels"]) + 1} for t in targets]
    losses = model(images, shifted)
    return losses["loss_objectness"] + losses["loss_rpn_box_reg"] + losses["loss_classifier"] + \
        losses["loss_box_reg"]


class _Transformed(Dataset):
    """``dataset`` with a joint ``transforms(image, target)`` on every sample (the reader is left as it is)."""

    def __init__(self, dataset, transforms):
        self.dataset, self.transforms = dataset, transforms

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, index):
        image, target = self.dataset[index]
        return self.transforms(image, target)


def train_detector(model, dataset, epochs=10, batch_size=4, lr=2e-3, weight_decay=1e-4, flip=True, seed=0,
                   time_budget=None, clock="wall", max_steps=None, progress=True, log=print):
    """Adam with a linear warm-up and cosine decay, through DataLoader and Trainer; returns the per-step losses.

    ``flip``: a random horizontal flip (boxes too) of half the samples, label-aware through the
    dataset's ``flip_map`` (:mod:`minidl.data.flips`). ``time_budget``
    (seconds) stops training when it is spent; the cosine then follows the elapsed share of the
    budget when that is ahead of the share of the steps. ``clock="cpu"`` measures the budget in
    this process's CPU seconds (all threads) instead of wall seconds: on a shared,
    oversubscribed machine that is the fair measure, and on an idle machine the wall time is at
    most the CPU time. ``max_steps`` stops after that many steps (the schedule then ends there),
    so that runs on a loaded machine can be compared step for step.
    """
    if clock not in ("wall", "cpu"):
        raise ValueError(f"clock must be 'wall' or 'cpu', got {clock!r}")
    # the dataset's flip map keeps mirrored signs' labels true and never flips a not-flippable one
    data = _Transformed(dataset, RandomHorizontalFlip(0.5, find_flip_map(dataset))) if flip else dataset
    loader = DataLoader(data, batch_size=batch_size, shuffle=True, seed=seed, collate_fn=collate_fn)
    total = max(1, epochs * len(loader))
    if max_steps is not None:
        total = max(1, min(total, int(max_steps)))
    budget = TimeBudget(time_budget, clock) if time_budget is not None else None
    opt = optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr, weight_decay=weight_decay)
    scheduler = LambdaLR(opt, WarmupCosine(total, min(100, total // 10), budget))
    history = []

    def batch_loss(net, images, targets):
        loss = detection_loss(net, images, targets)
        history.append(float(loss.item()))
        return loss

    trainer = Trainer(model, opt, scheduler, scheduler_interval="step", batch_loss=batch_loss, max_steps=max_steps,
                      should_stop=budget.spent if budget is not None else None, progress=progress)
    trainer.fit(loader, epochs=epochs)
    if log and trainer.halted:
        if max_steps is not None and trainer.global_step >= max_steps:
            log(f"epoch {trainer.epoch}: stopped after {trainer.global_step} steps (max_steps)")
        else:
            log(f"epoch {trainer.epoch}: {clock} time budget of {time_budget:.0f}s reached after "
                f"{trainer.global_step} steps")
    if log:
        last = trainer.history.last
        log(f"trained {trainer.global_step} steps in {trainer.epoch} epochs, last epoch's loss "
            f"{last['train_loss']:.4f}")
    return history


def predict(model, images, batch_size=8):
    """Detections per image (labels 0..C-1) and the RPN proposals per image."""
    model.eval()
    detections, proposals = [], []
    with no_grad():
        for start in range(0, len(images), batch_size):
            out = model(images_to_tensor(list(images[start:start + batch_size])))
            for d in out:
                detections.append({"boxes": d["boxes"], "scores": d["scores"], "labels": d["labels"] - 1})
            proposals += model.last_proposals
    return detections, proposals


def evaluate(model, dataset, pipeline=None, batch_size=8, iou_threshold=0.5, detections=None):
    """mAP (VOC at ``iou_threshold`` and COCO 0.5:0.95), per-class AP, RPN recall and timings.

    ``detections``/proposals from an earlier :func:`predict` can be passed as
    ``detections=(dets, proposals, seconds)`` to evaluate several pipelines on one inference.
    """
    images = [dataset[i][0] for i in range(len(dataset))]
    targets = [dataset[i][1] for i in range(len(dataset))]
    if detections is None:
        start = time.perf_counter()
        dets, proposals = predict(model, images, batch_size)
        seconds = time.perf_counter() - start
    else:
        dets, proposals, seconds = detections
    raw, pipe_seconds = dets, 0.0
    if pipeline is not None:
        pipeline.reset()
        start = time.perf_counter()
        dets = [pipeline(img, d) for img, d in zip(images, dets)]
        pipe_seconds = time.perf_counter() - start
    voc = detection_map(dets, targets, iou_threshold)
    return {"map": voc["map"], "ap": voc["ap"], "coco_map": coco_map(dets, targets)["map"],
            "rpn_recall": rpn_recall(proposals, [t["boxes"] for t in targets]), "detections": dets,
            "raw_detections": raw, "proposals": proposals,
            "detector_seconds": seconds, "pipeline_seconds": pipe_seconds,
            "stages": dict(pipeline.stats) if pipeline is not None else {}}


# ------------------------------------------------------------------------------ crop classifiers
def crop_dataset(dataset, kind, crop_size=32, negatives_per_image=4, detections=None, seed=0, negative_iou=0.3,
                 positive_iou=None, balance=False):
    """Crops (n, S, S, 3) uint8 and labels for a crop classifier, from detection scenes.

    ``kind="gate"``: label 1 for ground-truth signs (with a little box jitter), 0 for background
    boxes: the detector's false positives when ``detections`` are given (IoU < ``negative_iou``
    with every sign: the hard negatives the gate must reject, as the seed took its background
    from the RPN's boxes), else random square boxes that miss the signs. With ``positive_iou``,
    the detector's boxes at IoU >= ``positive_iou`` are signs too (the seed: T = 0.6 on both
    sides, ``negative_iou=positive_iou=0.6``). ``balance=True``
    repeats crops of the smaller class until both classes have as many (the seed: "50.000 data
    for each class"). ``kind="sign"``: the signs with their classes.
    """
    if kind not in ("gate", "sign"):
        raise ValueError(f"kind must be 'gate' or 'sign', got {kind!r}")
    if not 0.0 < negative_iou <= 1.0:
        raise ValueError(f"negative_iou must be in (0, 1], got {negative_iou}")
    rng = np.random.default_rng(seed)
    crops, labels = [], []
    for i in range(len(dataset)):
        image, target = dataset[i]
        h, w = image.shape[:2]
        gt = target["boxes"]
        if len(gt):
            size = (gt[:, 2:] - gt[:, :2]).max(axis=1, keepdims=True)
            jittered = gt + rng.uniform(-0.1, 0.1, gt.shape) * size
            crops.append(crop_boxes(image, jittered, crop_size))
            labels.append(np.ones(len(gt), np.int64) if kind == "gate" else target["labels"])
        if kind == "gate":
            negatives = []
            if detections is not None and len(detections[i]["boxes"]):
                b = np.asarray(detections[i]["boxes"], np.float32)
                best = ops.box_iou(b, gt).numpy().max(axis=1) if len(gt) else np.zeros(len(b))
                negatives.append(b[best < negative_iou][:negatives_per_image])
                if positive_iou is not None and (best >= positive_iou).any():
                    crops.append(crop_boxes(image, b[best >= positive_iou], crop_size))
                    labels.append(np.ones(int((best >= positive_iou).sum()), np.int64))
            sizes = rng.uniform(12, min(h, w) * 0.4, negatives_per_image)
            xy = rng.uniform(0, 1, (negatives_per_image, 2)) * (np.array([w, h]) - sizes[:, None])
            rand = np.concatenate([xy, xy + sizes[:, None]], axis=1).astype(np.float32)
            if len(gt):
                rand = rand[ops.box_iou(rand, gt).numpy().max(axis=1) < min(negative_iou, 0.3)]
            negatives.append(rand)
            negatives = np.concatenate(negatives)
            if len(negatives):
                crops.append(crop_boxes(image, negatives, crop_size))
                labels.append(np.zeros(len(negatives), np.int64))
    crops, labels = np.concatenate(crops), np.concatenate(labels)
    if balance:
        crops, labels = balance_classes(crops, labels, rng)
    return crops, labels


def balance_classes(crops, labels, rng):
    """Every class repeated (a random draw for the remainder) up to the count of the largest class."""
    classes, counts = np.unique(labels, return_counts=True)
    target = counts.max()
    index = []
    for cls in classes:
        members = np.flatnonzero(labels == cls)
        repeats, extra = divmod(target, len(members))
        index.append(np.concatenate([np.tile(members, repeats), rng.choice(members, extra, replace=False)]))
    index = np.concatenate(index)
    return crops[index], labels[index]


def gtsrb_crops(root, crop_size=32, split="train"):
    """Crops (n, S, S, 3) uint8 and labels from GTSRB (its ROI boxes), for the sign classifier.

    The seed trained its sign classifier on GTSRB, whose 43 classes are GTSDB's: use this with
    ``--data`` pointing at a GTSDB tree. Each published image is cut to its ROI and resized.
    """
    from PIL import Image

    from minidl.datasets import GTSRB

    ds = GTSRB(root, split=split, crop_roi=True)
    crops = np.empty((len(ds), crop_size, crop_size, 3), np.uint8)
    for i in range(len(ds)):
        image, _ = ds[i]
        crops[i] = np.asarray(image.convert("RGB").resize((crop_size, crop_size), Image.BILINEAR))
    return crops, np.asarray(ds.targets, np.int64)


def train_crop_classifier(model, crops, labels, epochs=5, batch_size=64, lr=2e-3, seed=0, log=print,
                          flip_map=None, optimizer="adam"):
    """Cross-entropy training of a crop classifier on uint8 crops; returns the final training accuracy.

    Half the crops are mirrored; ``flip_map`` (:mod:`minidl.data.flips`) relabels mirrored classes
    and keeps not-flippable ones unmirrored (``None``: every class is mirror-invariant, as the
    gate's sign/background). ``optimizer``: ``"adam"`` or ``"adamax"`` (the seed's sign classifier).
    """
    rng = np.random.default_rng(seed)
    if optimizer not in ("adam", "adamax"):
        raise ValueError(f"optimizer must be 'adam' or 'adamax', got {optimizer!r}")
    opt = (optim.Adam if optimizer == "adam" else optim.Adamax)([p for p in model.parameters() if p.requires_grad],
                                                                 lr=lr)
    acc = 0.0
    for epoch in range(epochs):
        model.train()
        order = rng.permutation(len(crops))
        correct, losses = 0, []
        for idx in _batches(order, batch_size):
            batch = crops[idx]
            flippable, mirrored = flip_labels(flip_map, labels[idx])
            flip = (rng.random(len(idx)) < 0.5) & flippable  # mirror half the crops that may be mirrored
            batch = np.where(flip[:, None, None, None], batch[:, :, ::-1], batch)
            target = np.where(flip, mirrored, labels[idx])
            logits = model(images_to_tensor(list(batch)))
            loss = F.cross_entropy(logits, Tensor(target))
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
            correct += int((logits.data.argmax(axis=1) == target).sum())
        acc = correct / len(crops)
        if log:
            log(f"  epoch {epoch + 1}/{epochs}  loss {np.mean(losses):.4f}  train accuracy {acc:.4f}")
    recalibrate_batchnorm(model, crops, batch_size)
    model.eval()
    return acc


def recalibrate_batchnorm(model, crops, batch_size=64):
    """Re-estimate every BatchNorm's running statistics with the final weights.

    After a short training run the running averages (momentum 0.1) still mix statistics of
    early, very different weights, and in eval mode a small classifier can then collapse onto
    one class. One pass over the training crops in train mode, without gradients, with a
    cumulative average (momentum None) gives the statistics of the trained network.
    """
    norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d) and m.running_mean is not None]
    saved = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None
    model.train()
    with no_grad():
        for idx in _batches(np.arange(len(crops)), batch_size):
            model(images_to_tensor(list(crops[idx])))
    for m, momentum in zip(norms, saved):
        m.momentum = momentum
    model.eval()


# ------------------------------------------------------------------------------------- drawing
_PALETTE = [(230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48), (145, 30, 180),
            (70, 240, 240), (240, 50, 230)]


def draw_detections(image, detections, target=None, class_names=None, path=None, scale=3):
    """An RGB image with true boxes (white, dashed look) and predicted boxes (class colour, score)."""
    pil = Image.fromarray(image).resize((image.shape[1] * scale, image.shape[0] * scale), Image.NEAREST)
    d = ImageDraw.Draw(pil)
    if target is not None:
        for box in np.asarray(target["boxes"]).reshape(-1, 4):
            d.rectangle([v * scale for v in box], outline=(255, 255, 255), width=1)
    for box, score, label in zip(detections["boxes"], detections["scores"], detections["labels"]):
        colour = _PALETTE[int(label) % len(_PALETTE)]
        d.rectangle([v * scale for v in box], outline=colour, width=2)
        name = class_names[int(label)] if class_names is not None and 0 <= int(label) < len(class_names) \
            else str(int(label))
        d.text((box[0] * scale + 2, max(0, box[1] * scale - 11)), f"{name} {score:.2f}", fill=colour)
    if path is not None:
        pil.save(path)
    return pil
