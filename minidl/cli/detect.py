"""``minidl detect train|eval|predict``: the Faster R-CNN traffic-sign detector and the seed's pipeline.

    minidl detect train --out runs/det                       # synthetic scenes, tiny backbone
    minidl detect train --out runs/det --gate --sign-classifier --time-budget 840
    minidl detect eval --checkpoint runs/det --ablation --draw 8
    minidl detect eval --checkpoint runs/det --data /data/FullIJCNN2013 --anchor-preset seed
    minidl detect predict --checkpoint runs/det scene.png --out-dir preds
    minidl detect train --preset seed --out runs/seed        # the seed's final configuration (printed)
    minidl detect eval --checkpoint runs/seed --preset seed --ablation
    minidl detect heatmap /data/FullIJCNN2013 --out heatmap.png   # sign positions, position filter drawn over

Data: ``synthetic`` (the default: seeded scenes, training split ``seed``, held-out split
``seed + 1``) or a directory in the GTSDB layout (PPM images and ``gt.txt``). Anchor, RPN, NMS
and filter settings are options, so the seed's tuning tables can be reproduced; eval prints
the mAP, per-class AP, COCO AP, RPN recall at IoU 0.5/0.7 and, with ``--ablation``, the mAP
and time with and without each pipeline stage.
"""
from __future__ import annotations

import json
import os
import sys
import time

import numpy as np

from . import UsageError
from .preflight import check_writable_folder, image_problem, make_folder, unreadable_summary

CHECKPOINT_FILES = {"detector": "detector.safetensors", "gate": "gate.safetensors", "sign": "sign.safetensors"}


def _floats(text):
    try:
        return tuple(float(v) for v in text.replace(" ", "").split(",") if v)
    except ValueError:
        raise UsageError(f"expected comma-separated numbers, got {text!r}") from None


def _ints(text):
    values = _floats(text)
    if len(values) != 2:
        raise UsageError(f"expected 'TRAIN,TEST' (two integers), got {text!r}")
    return tuple(int(v) for v in values)


def _size(text):
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise UsageError(f"--image-size: expected WIDTHxHEIGHT such as 256x160, got {text!r}") from None
    return w, h


def _add_data_options(p):
    p.add_argument("--data", default="synthetic", help="'synthetic' (default) or a GTSDB-layout directory")
    p.add_argument("--n-train", type=int, default=400, help="synthetic training scenes (default 400)")
    p.add_argument("--n-val", type=int, default=100, help="synthetic held-out scenes (default 100)")
    p.add_argument("--seed", type=int, default=0, help="synthetic scene seed (held-out split: seed + 1)")
    p.add_argument("--image-size", type=_size, default=(256, 160), help="synthetic scene size WxH (default 256x160)")
    p.add_argument("--split", type=int, default=600,
                   help="GTSDB: images before this index train, the rest are held out (default 600)")
    p.add_argument("--strict-data", action="store_true",
                   help="GTSDB: refuse images that do not open (default: skip them with one warning)")


def _add_model_options(p):
    p.add_argument("--backbone", default="tiny", help="tiny (default), mobilenet_v2, resnet18, resnet34")
    p.add_argument("--width-mult", type=float, default=1.0, help="MobileNet v2 width multiplier")
    p.add_argument("--anchor-preset", choices=["synthetic", "seed"], default=None,
                   help="seed: ratios (0.8, 1.0, 1.2), sizes (32, 62, 112, 212, 252)")
    p.add_argument("--anchor-sizes", type=_floats, default=None, help="e.g. 16,24,36,54")
    p.add_argument("--anchor-ratios", type=_floats, default=None, help="h/w ratios, e.g. 0.8,1.0,1.2")
    p.add_argument("--rpn-pre-nms-top-n", type=_ints, default=None, help="TRAIN,TEST (default 2000,1000)")
    p.add_argument("--rpn-post-nms-top-n", type=_ints, default=None, help="TRAIN,TEST (default 2000,300)")
    p.add_argument("--rpn-nms-thresh", type=float, default=None, help="proposal NMS IoU (default 0.7)")
    p.add_argument("--box-nms-thresh", type=float, default=None, help="detector's class-aware NMS IoU (0.5)")
    p.add_argument("--box-score-thresh", type=float, default=None, help="detector's score threshold (0.05)")


def _add_pipeline_options(p):
    p.add_argument("--no-position", action="store_true", help="leave out the position filter")
    p.add_argument("--no-shape", action="store_true", help="leave out the shape filter")
    p.add_argument("--no-gate", action="store_true", help="leave out the background-vs-sign gate")
    p.add_argument("--no-sign-classifier", action="store_true", help="leave out the sign classifier")
    p.add_argument("--min-side", type=float, default=None, help="shape filter: minimum side (default 12)")
    p.add_argument("--max-side", type=float, default=None, help="shape filter: maximum side (default 80)")
    p.add_argument("--max-aspect", type=float, default=None, help="shape filter: maximum aspect ratio (1.6)")
    p.add_argument("--gate-threshold", type=float, default=None, help="gate: minimum sign probability (0.5)")
    p.add_argument("--sign-threshold", type=float, default=None,
                   help="sign classifier: minimum class probability (default 0)")
    p.add_argument("--sign-mode", choices=["relabel", "rescore"], default="relabel",
                   help="sign classifier: take its label (the seed's, default) or only rescore the detector's")
    p.add_argument("--y-min", type=float, default=None, help="position filter: drop boxes with 2 corners above")
    p.add_argument("--y-max", type=float, default=None, help="position filter: drop boxes with 2 corners below")
    p.add_argument("--nms-iou", type=float, default=None, help="pipeline class-aware NMS IoU (default 0.3)")
    p.add_argument("--top-k", type=int, default=None, help="at most this many detections per image (default 6)")
    p.add_argument("--ablation", action="store_true", help="mAP and time with and without each stage")


def _add_preset_option(p):
    p.add_argument("--preset", choices=["seed"], default=None,
                   help="seed: the seed's final configuration (printed; options given explicitly still win)")


def add_parser(subparsers, command):
    parser = subparsers.add_parser(command, help="train, evaluate and run the traffic-sign detector",
                                   description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="detect_command", required=True)
    train = sub.add_parser("train", help="train Faster R-CNN (and optionally the crop classifiers)")
    _add_data_options(train)
    _add_model_options(train)
    _add_pipeline_options(train)
    train.add_argument("--epochs", type=int, default=12)
    train.add_argument("--batch-size", type=int, default=4)
    train.add_argument("--lr", type=float, default=2e-3)
    train.add_argument("--time-budget", type=float, default=None, help="stop detector training after SECONDS")
    train.add_argument("--max-steps", type=int, default=None,
                       help="stop detector training after STEPS batches (the schedule ends there)")
    train.add_argument("--budget-clock", choices=["wall", "cpu"], default="wall",
                       help="measure --time-budget in wall seconds (default) or process CPU seconds")
    train.add_argument("--gate", action="store_true", help="also train the background-vs-sign gate")
    train.add_argument("--sign-classifier", action="store_true", help="also train the sign classifier")
    train.add_argument("--classifier-epochs", type=int, default=4)
    train.add_argument("--sign-crops", default=None, metavar="GTSRB_ROOT",
                       help="train the sign classifier on GTSRB's crops (as the seed) instead of the scenes' signs")
    train.add_argument("--gate-width", type=float, default=None, help="gate's MobileNet v2 width (default 0.5)")
    train.add_argument("--sign-width", type=float, default=None,
                       help="sign classifier's MobileNet v2 width (default 0.75; the seed's 0.7 with --preset seed)")
    _add_preset_option(train)
    train.add_argument("--out", default="runs/detect", help="checkpoint directory (default runs/detect)")
    train.add_argument("--draw", type=int, default=4, help="PNGs of held-out detections to write (default 4)")
    train.set_defaults(handler=run_train)
    ev = sub.add_parser("eval", help="mAP of a trained detector on the held-out split")
    ev.add_argument("--checkpoint", required=True, help="directory written by `minidl detect train`")
    _add_data_options(ev)
    _add_model_options(ev)
    _add_pipeline_options(ev)
    ev.add_argument("--draw", type=int, default=4, help="PNGs of detections to write (default 4)")
    ev.add_argument("--out-dir", default=None, help="where PNGs go (default CHECKPOINT/eval)")
    _add_preset_option(ev)
    ev.set_defaults(handler=run_eval)
    pr = sub.add_parser("predict", help="detect signs in image files and draw them")
    pr.add_argument("--checkpoint", required=True)
    pr.add_argument("images", nargs="+", help="image files (PNG, JPEG, PPM)")
    _add_pipeline_options(pr)
    pr.add_argument("--out-dir", default="detections", help="where the PNGs go (default detections/)")
    pr.set_defaults(handler=run_predict)
    hm = sub.add_parser("heatmap", help="heat map of the ground-truth sign positions (PNG), position filter drawn over")
    hm.add_argument("data", help="'synthetic' or a GTSDB-layout directory (gt.txt and PPM images)")
    hm.add_argument("--out", default="heatmap.png", help="PNG to write (default heatmap.png)")
    hm.add_argument("--n", type=int, default=400, help="synthetic scenes to draw (default 400)")
    hm.add_argument("--seed", type=int, default=0, help="synthetic scene seed (default 0)")
    hm.add_argument("--image-size", type=_size, default=(256, 160), help="synthetic scene size WxH (default 256x160)")
    hm.set_defaults(handler=run_heatmap)


# ------------------------------------------------------------------------------------- helpers
def _datasets(args):
    from minidl.datasets import GTSDB, SceneConfig, SyntheticScenes
    from minidl.datasets.scenes import CLASS_NAMES

    if args.data == "synthetic":
        w, h = args.image_size
        cfg = SceneConfig(w, h, max_size=min(56, int(0.35 * h)))
        train = SyntheticScenes(args.n_train, seed=args.seed, config=cfg)
        val = SyntheticScenes(args.n_val, seed=args.seed + 1, config=cfg)
        return train, val, list(CLASS_NAMES), cfg.sign_region()
    if not os.path.isdir(args.data):
        raise UsageError(f"--data: no directory {args.data!r} (use 'synthetic' or a GTSDB directory)")
    full = GTSDB(args.data)
    # every image is decoded once before training: unreadable ones are skipped (one warning) or refused
    problems = {name: image_problem(os.path.join(args.data, name)) for name in full.files}
    summary = unreadable_summary(problems, args.data)
    if summary and args.strict_data:
        raise UsageError(f"--strict-data: {summary}")
    if summary:
        print(f"warning: skipping {summary}", file=sys.stderr, flush=True)
    train = GTSDB(args.data, files=[f for f in full.files[: args.split] if problems[f] is None])
    val = GTSDB(args.data, files=[f for f in full.files[args.split:] if problems[f] is None])
    return train, val, [str(i) for i in range(full.num_classes)], []


def _model_config(args, num_classes, previous=None):
    from minidl.models.detection import PRESETS

    cfg = dict(previous or {"backbone": "tiny", "width_mult": 1.0, "num_classes": num_classes + 1, "kwargs": {}})
    kw = dict(cfg["kwargs"])
    if getattr(args, "backbone", None) and previous is None:
        cfg["backbone"], cfg["width_mult"] = args.backbone, args.width_mult
    if args.anchor_preset:
        kw["anchor_sizes"] = list(PRESETS[args.anchor_preset]["sizes"])
        kw["aspect_ratios"] = list(PRESETS[args.anchor_preset]["aspect_ratios"])
    for opt, key in (("anchor_sizes", "anchor_sizes"), ("anchor_ratios", "aspect_ratios"),
                     ("rpn_pre_nms_top_n", "rpn_pre_nms_top_n"), ("rpn_post_nms_top_n", "rpn_post_nms_top_n"),
                     ("rpn_nms_thresh", "rpn_nms_thresh"), ("box_nms_thresh", "box_nms_thresh"),
                     ("box_score_thresh", "box_score_thresh")):
        value = getattr(args, opt, None)
        if value is not None:
            kw[key] = list(value) if isinstance(value, tuple) else value
    kw.setdefault("box_batch_size_per_image", 64)
    kw.setdefault("representation_size", 128)
    cfg["kwargs"] = kw
    return cfg


def _build(cfg):
    from minidl import models

    return models.fasterrcnn(backbone=cfg["backbone"], num_classes=cfg["num_classes"], width_mult=cfg["width_mult"],
                             **cfg["kwargs"])


def _crop_model(num_classes, width_mult):
    from minidl import models

    return models.get_model("mobilenet_v2", width_mult=width_mult, num_classes=num_classes, dropout=0.0)


def _load_checkpoint(directory):
    from ..serialization import load_checkpoint

    path = os.path.join(directory, "config.json")
    if not os.path.isfile(path):
        raise UsageError(f"--checkpoint: {directory!r} has no config.json (train with `minidl detect train`)")
    with open(path) as f:
        config = json.load(f)
    model = _build(config["model"])
    model.load_state_dict(load_checkpoint(os.path.join(directory, CHECKPOINT_FILES["detector"])))
    extra = {}
    widths = config.get("crop_widths", {"gate": 0.5, "sign": 0.75})  # older checkpoints: the former fixed widths
    for key, classes in (("gate", 2), ("sign", len(config["class_names"]))):
        width = widths[key]
        file = os.path.join(directory, CHECKPOINT_FILES[key])
        if os.path.isfile(file):
            net = _crop_model(classes, width)
            net.load_state_dict(load_checkpoint(file))
            net.eval()
            extra[key] = net
    return config, model, extra


# the pipeline options' values without a preset (their parser default is None, so that a preset can tell them apart)
PLAIN_DEFAULTS = {"min_side": 12.0, "max_side": 80.0, "max_aspect": 1.6, "gate_threshold": 0.5, "sign_threshold": 0.0,
                  "nms_iou": 0.3, "top_k": 6, "gate_width": 0.5, "sign_width": 0.75}


def _apply_preset(args, train_set):
    """Put ``--preset``'s values into every option not given, print the preset, then fill the remaining
    options with ``PLAIN_DEFAULTS``; returns the preset (None without ``--preset``)."""
    from ..detection.presets import PRESETS

    preset = None
    if getattr(args, "preset", None):
        preset = PRESETS[args.preset](getattr(train_set, "config", None))  # synthetic scenes: their own geometry
        _fill(args, _preset_values(args, preset))
        if args.detect_command == "train":
            args.gate = args.sign_classifier = True
        print("\n".join(preset.lines()))
    _fill(args, PLAIN_DEFAULTS)
    return preset


def _fill(args, values):
    for name, value in values.items():
        if hasattr(args, name) and getattr(args, name) is None:
            setattr(args, name, value)


def _preset_values(args, preset):
    """The options a preset sets, by their argparse names."""
    values = {"rpn_pre_nms_top_n": preset.rpn_pre_nms_top_n, "rpn_post_nms_top_n": preset.rpn_post_nms_top_n,
              "rpn_nms_thresh": preset.rpn_nms_thresh, "min_side": preset.min_side, "max_side": preset.max_side,
              "max_aspect": preset.max_aspect, "gate_threshold": preset.gate_threshold,
              "sign_threshold": preset.sign_threshold, "nms_iou": preset.nms_iou, "top_k": preset.top_k,
              "y_min": preset.y_min, "y_max": preset.y_max, "gate_width": preset.gate_width,
              "sign_width": preset.sign_width}
    if args.detect_command == "train":  # anchors are fixed when the detector is built
        values.update(anchor_sizes=preset.anchor_sizes, anchor_ratios=preset.anchor_ratios)
    return values


def _pipeline(args, region, extra):
    from ..detection import pipeline as P

    stages = []
    if not args.no_position and (region or args.y_min is not None or args.y_max is not None):
        stages.append(P.PositionFilter(region, min_corners=2, y_min=args.y_min, y_max=args.y_max))
    if not args.no_shape:
        stages.append(P.ShapeFilter(args.min_side, args.max_side, args.max_aspect))
    if "gate" in extra and not args.no_gate:
        stages.append(P.ClassifierGate(extra["gate"], args.gate_threshold))
    if "sign" in extra and not args.no_sign_classifier:
        stages.append(P.SignClassifier(extra["sign"], args.sign_threshold, mode=args.sign_mode))
    stages += [P.ClassNMS(args.nms_iou), P.TopK(args.top_k)]
    return P.Pipeline(stages)


def _report(result, class_names, title):
    print(f"{title}: mAP@0.5 {result['map']:.4f}  COCO AP@[.5:.95] {result['coco_map']:.4f}  "
          f"RPN recall@0.5 {result['rpn_recall'][0.5]:.4f} @0.7 {result['rpn_recall'][0.7]:.4f}")
    for cls, ap in sorted(result["ap"].items()):
        name = class_names[cls] if 0 <= cls < len(class_names) else str(cls)
        print(f"  AP {name:>14s}: {ap:.4f}")
    for name, st in result["stages"].items():
        print(f"  stage {name:>10s}: boxes {st['in']:6d} -> {st['out']:6d}  {st['seconds']:.3f}s")


def _ablation(model, val, pipeline):
    """One inference, then the pipeline with every stage, without each stage, and none."""
    from ..detection.engine import evaluate

    base = evaluate(model, val, None)
    cached = (base["detections"], base["proposals"], base["detector_seconds"])
    full = evaluate(model, val, pipeline, detections=cached)
    rows = [("detector only", base), ("full pipeline", full)]
    for stage in [s.name for s in pipeline.stages]:
        rows.append((f"without {stage}", evaluate(model, val, pipeline.without(stage), detections=cached)))
    print(f"\ndetector inference: {base['detector_seconds']:.2f}s for {len(val)} images")
    print("| configuration | mAP@0.5 | COCO AP | pipeline time (s) |")
    print("| --- | --- | --- | --- |")
    for name, res in rows:
        print(f"| {name} | {res['map']:.4f} | {res['coco_map']:.4f} | {res['pipeline_seconds']:.3f} |")
    print()
    return full


def _draw(val, result, class_names, out_dir, n):
    from ..detection.engine import draw_detections

    os.makedirs(out_dir, exist_ok=True)
    for i in range(min(n, len(val))):
        image, target = val[i]
        draw_detections(image, result["detections"][i], target, class_names, os.path.join(out_dir, f"det_{i:03d}.png"))
    if n:
        print(f"wrote {min(n, len(val))} PNGs to {out_dir}")


def _evaluate_and_print(model, val, args, region, extra, class_names, out_dir):
    from ..detection.engine import evaluate

    pipeline = _pipeline(args, region, extra)
    start = time.perf_counter()
    result = _ablation(model, val, pipeline) if args.ablation else evaluate(model, val, pipeline)
    _report(result, class_names, f"held-out ({len(val)} images, {time.perf_counter() - start:.1f}s)")
    _draw(val, result, class_names, out_dir, args.draw)
    return result


# ------------------------------------------------------------------------------------ commands
def run_train(args):
    from .. import manual_seed
    from ..detection.engine import crop_dataset, gtsrb_crops, predict, train_crop_classifier, train_detector
    from ..serialization import save
    from minidl.data.flips import find_flip_map
    from minidl.datasets.gtsrb import GTSRB_FLIP_MAP

    check_writable_folder(args.out, "--out")  # before any training: a file in the way, a read-only folder
    manual_seed(args.seed)
    train, val, class_names, region = _datasets(args)
    preset = _apply_preset(args, train)
    if preset is not None:
        region = [list(p) for p in preset.polygons]
    config = {"model": _model_config(args, len(class_names)), "class_names": class_names, "data": args.data,
              "image_size": list(args.image_size), "seed": args.seed, "preset": args.preset,
              "crop_widths": {"gate": args.gate_width, "sign": args.sign_width}}
    model = _build(config["model"])
    make_folder(args.out, "--out")
    start, cpu_start = time.perf_counter(), time.process_time()
    print(f"training Faster R-CNN ({config['model']['backbone']}) on {len(train)} images, {args.epochs} epochs")
    train_detector(model, train, args.epochs, args.batch_size, args.lr, seed=args.seed, time_budget=args.time_budget,
                   clock=args.budget_clock, max_steps=args.max_steps)
    detector_seconds, detector_cpu = time.perf_counter() - start, time.process_time() - cpu_start
    save(model.state_dict(), os.path.join(args.out, CHECKPOINT_FILES["detector"]))
    extra = {}
    if args.gate or args.sign_classifier:
        images = [train[i][0] for i in range(len(train))]
        dets, _ = predict(model, images)
        for key, enabled, classes, width in (("gate", args.gate, 2, args.gate_width),
                                             ("sign", args.sign_classifier, len(class_names), args.sign_width)):
            if not enabled:
                continue
            if key == "sign" and args.sign_crops:
                crops, labels = gtsrb_crops(args.sign_crops)
                if labels.max() >= classes:
                    raise UsageError(f"GTSRB crops have classes up to {labels.max()}, but the detector has {classes} "
                                     f"classes: use --sign-crops with GTSDB data (43 classes)")
            elif key == "gate" and preset is not None:  # the seed's background: IoU < 0.6, classes balanced
                crops, labels = crop_dataset(train, "gate", detections=dets, seed=args.seed,
                                             negative_iou=preset.gate_negative_iou,
                                             positive_iou=preset.gate_negative_iou, balance=preset.gate_balance)
            else:
                crops, labels = crop_dataset(train, "gate" if key == "gate" else "sign", detections=dets,
                                             seed=args.seed)
            print(f"training the {key} classifier (MobileNet v2 x{width}) on {len(crops)} crops"
                  + (f" ({np.bincount(labels)[0]} background, {np.bincount(labels)[1]} signs)" if key == "gate" else ""))
            net = _crop_model(classes, width)
            # the sign classifier's flips follow the classes' flip map (GTSRB's for GTSRB/GTSDB data);
            # the gate's two classes (sign, background) are mirror-invariant
            flip_map = None if key == "gate" else (GTSRB_FLIP_MAP if args.sign_crops else find_flip_map(train))
            seed_sign = key == "sign" and preset is not None  # the seed's sign classifier: Adamax
            train_crop_classifier(net, crops, labels, epochs=args.classifier_epochs, seed=args.seed,
                                  flip_map=flip_map, optimizer=preset.sign_optimizer if seed_sign else "adam",
                                  lr=preset.sign_lr if seed_sign else 2e-3)
            save(net.state_dict(), os.path.join(args.out, CHECKPOINT_FILES[key]))
            extra[key] = net
    total, total_cpu = time.perf_counter() - start, time.process_time() - cpu_start
    config.update(detector_train_seconds=detector_seconds, detector_train_cpu_seconds=detector_cpu,
                  train_seconds=total, train_cpu_seconds=total_cpu)
    with open(os.path.join(args.out, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
    print(f"trained in {total:.0f}s wall, {total_cpu:.0f}s CPU (detector {detector_seconds:.0f}s wall, "
          f"{detector_cpu:.0f}s CPU); checkpoint in {args.out}")
    _evaluate_and_print(model, val, args, region, extra, class_names, os.path.join(args.out, "eval"))
    return 0


def run_eval(args):
    if args.anchor_preset or args.anchor_sizes or args.anchor_ratios:
        raise UsageError("anchor settings are fixed when the detector is trained: pass them to `minidl detect train`")
    if args.draw:
        check_writable_folder(args.out_dir or os.path.join(args.checkpoint, "eval"), "--out-dir")
    config, model, extra = _load_checkpoint(args.checkpoint)
    if args.data == "synthetic" and config.get("image_size"):
        args.image_size = tuple(config["image_size"])
    _, val, class_names, region = _datasets(args)
    preset = _apply_preset(args, val)
    if preset is not None:
        region = [list(p) for p in preset.polygons]
    overrides = _model_config(args, len(class_names), previous=config["model"])["kwargs"]
    for key in ("rpn_pre_nms_top_n", "rpn_post_nms_top_n", "rpn_nms_thresh", "box_nms_thresh", "box_score_thresh"):
        if key in overrides:  # inference settings can change without retraining
            value = overrides[key]
            if key.startswith("rpn_") and key.endswith("top_n"):
                setattr(model.rpn, key[4:], tuple(value))
            elif key == "rpn_nms_thresh":
                model.rpn.nms_thresh = float(value)
            else:
                setattr(model.roi_heads, key[4:], float(value))
    _evaluate_and_print(model, val, args, region, extra, class_names,
                        args.out_dir or os.path.join(args.checkpoint, "eval"))
    return 0


def run_predict(args):
    from PIL import Image

    from ..detection.engine import draw_detections, predict

    check_writable_folder(args.out_dir, "--out-dir")
    config, model, extra = _load_checkpoint(args.checkpoint)
    _apply_preset(args, None)
    pipeline = _pipeline(args, [], extra)
    make_folder(args.out_dir, "--out-dir")
    for path in args.images:
        if not os.path.isfile(path):
            raise UsageError(f"no image file {path!r}")
        with Image.open(path) as img:
            image = np.asarray(img.convert("RGB"))
        dets, _ = predict(model, [image])
        dets = pipeline(image, dets[0])
        out = os.path.join(args.out_dir, os.path.splitext(os.path.basename(path))[0] + "_det.png")
        draw_detections(image, dets, None, config["class_names"], out)
        print(f"{path}: {len(dets['boxes'])} detections -> {out}")
        for box, score, label in zip(dets["boxes"], dets["scores"], dets["labels"]):
            print(f"  {config['class_names'][int(label)]:>14s} {score:.3f}  "
                  f"({box[0]:.0f}, {box[1]:.0f}, {box[2]:.0f}, {box[3]:.0f})")
    return 0


def run_heatmap(args):
    from minidl.datasets import GTSDB, SceneConfig, SyntheticScenes
    from PIL import Image

    from ..detection.heatmap import boxes_dropped, draw_heatmap, sign_heatmap
    from ..detection.pipeline import PositionFilter
    from ..detection.presets import seed_preset

    check_writable_folder(os.path.dirname(os.path.abspath(args.out)), "--out")
    if args.data == "synthetic":
        w, h = args.image_size
        cfg = SceneConfig(w, h, max_size=min(56, int(0.35 * h)))
        scenes = SyntheticScenes(args.n, seed=args.seed, config=cfg)
        targets = [scenes[i][1] for i in range(len(scenes))]
        preset = seed_preset(cfg)
        where = f"{len(targets)} synthetic {w}x{h} scenes"
    else:
        if not os.path.isdir(args.data):
            raise UsageError(f"no directory {args.data!r} (use 'synthetic' or a GTSDB directory with gt.txt)")
        try:
            ds = GTSDB(args.data)
        except FileNotFoundError as exc:
            raise UsageError(str(exc)) from None
        if not ds.files:
            raise UsageError(f"{args.data!r} has no .ppm images")
        with Image.open(os.path.join(args.data, ds.files[0])) as img:  # GTSDB frames share one size
            w, h = img.size
        targets = [{"boxes": ds.gt[f][0]} for f in ds.files if f in ds.gt]
        preset = seed_preset()
        where = f"{len(ds.files)} GTSDB {w}x{h} frames"
    flt = PositionFilter(preset.polygons, min_corners=preset.min_corners, y_min=preset.y_min, y_max=preset.y_max)
    heat = sign_heatmap(targets, (w, h))
    dropped, total = boxes_dropped(targets, flt)
    draw_heatmap(heat, args.out, flt, images=len(targets) or None,
                 title=f"sign positions: {total} boxes in {where}; preset seed's position filter in cyan")
    rows = np.flatnonzero(heat.sum(axis=1))
    print(f"{total} ground-truth boxes in {where}; signs cover rows {rows.min() if len(rows) else '-'} to "
          f"{rows.max() if len(rows) else '-'}")
    print(f"position filter of preset seed drops {dropped} of {total} ground-truth boxes "
          f"({100.0 * dropped / max(total, 1):.2f}%)")
    print(f"wrote {args.out}")
    return 0
