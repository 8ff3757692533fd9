"""``minidl explain OP``: an op on a tiny input, step by step (reference, fast kernel, backward, gradcheck).

    minidl explain conv2d --shape 1x2x5x5 --kernel-size 3 --stride 2 --padding 1
    minidl explain max_pool2d --kernel-size 3 --stride 2
    minidl explain cross_entropy --shape 4x5 --label-smoothing 0.1
    minidl explain batch_norm --chapter          # the path of the docs chapter

The logic is :mod:`minidl.explain`; each option goes to the ops that take it.
"""
from __future__ import annotations

import argparse
import inspect

from . import UsageError

# option dest -> the keyword argument of minidl.explain's functions
_OPTIONS = {"shape": "shape", "out_channels": "out_channels", "out_features": "out_features",
            "kernel_size": "kernel_size", "stride": "stride", "padding": "padding", "dilation": "dilation",
            "groups": "groups", "multiplier": "multiplier", "bias": "bias", "ceil_mode": "ceil_mode",
            "count_include_pad": "count_include_pad", "eps": "eps", "momentum": "momentum",
            "label_smoothing": "label_smoothing", "iou_threshold": "iou_threshold", "output_size": "output_size",
            "spatial_scale": "spatial_scale", "sampling_ratio": "sampling_ratio", "aligned": "aligned",
            "seed": "seed", "precision": "precision"}


def add_parser(subparsers, command):
    p = subparsers.add_parser(command, help="an op on a tiny input, step by step: reference, fast kernel, "
                                            "backward, gradcheck")
    p.add_argument("op", help="the op to explain: conv2d, depthwise, max_pool2d, avg_pool2d, batch_norm, "
                              "cross_entropy, softmax, linear, relu, nms, roi_align")
    p.add_argument("--chapter", action="store_true", help="print the path of the op's docs chapter and stop")
    p.add_argument("--shape", type=_shape, help="input shape, e.g. 1x2x5x5 (NxCxHxW), 3x4 (N x classes), "
                                                "5x4 (5 boxes for nms)")
    p.add_argument("--kernel-size", type=_pair)
    p.add_argument("--stride", type=_pair)
    p.add_argument("--padding", type=_pair)
    p.add_argument("--dilation", type=_pair)
    p.add_argument("--out-channels", type=int, help="conv2d: output channels")
    p.add_argument("--groups", type=int, help="conv2d: groups (depthwise: groups = channels)")
    p.add_argument("--multiplier", type=int, help="depthwise: output channels per input channel")
    p.add_argument("--out-features", type=int, help="linear: output features")
    p.add_argument("--no-bias", dest="bias", action="store_false", default=None, help="conv2d, depthwise, linear")
    p.add_argument("--ceil-mode", action="store_true", default=None, help="pooling: ceil instead of floor")
    p.add_argument("--exclude-pad", dest="count_include_pad", action="store_false", default=None,
                   help="avg_pool2d: divide by the in-image elements only (count_include_pad=False)")
    p.add_argument("--eps", type=float, help="batch_norm")
    p.add_argument("--momentum", type=float, help="batch_norm")
    p.add_argument("--label-smoothing", type=float, help="cross_entropy")
    p.add_argument("--iou-threshold", type=float, help="nms")
    p.add_argument("--output-size", type=_pair, help="roi_align: bins per box, e.g. 2 or 2x3")
    p.add_argument("--spatial-scale", type=float, help="roi_align")
    p.add_argument("--sampling-ratio", type=int, help="roi_align: samples per bin side (<= 0: adaptive)")
    p.add_argument("--not-aligned", dest="aligned", action="store_false", default=None,
                   help="roi_align: aligned=False (no half-pixel offset)")
    p.add_argument("--seed", type=int, default=None, help="seed of the random inputs (default 0)")
    p.add_argument("--precision", type=int, default=None, help="decimals printed (default 4)")
    p.set_defaults(handler=run)


def _shape(text):
    try:
        shape = tuple(int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--shape must look like 1x2x5x5 (sizes joined by 'x'), got {text!r}") \
            from None
    if any(v < 1 for v in shape):
        raise argparse.ArgumentTypeError(f"--shape must hold positive sizes, got {text!r}")
    return shape


def _pair(text):
    """'3' -> 3, '2x3' or '2,3' -> (2, 3)."""
    parts = text.lower().replace(",", "x").split("x")
    try:
        values = tuple(int(v) for v in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer or a pair such as 2x3, got {text!r}") from None
    if len(values) not in (1, 2):
        raise argparse.ArgumentTypeError(f"expected an integer or a pair such as 2x3, got {text!r}")
    return values[0] if len(values) == 1 else values


def run(args):
    from minidl.explain import EXPLAINERS, chapter_path

    if args.op not in EXPLAINERS:
        raise UsageError(f"unknown op {args.op!r}; minidl explains {', '.join(EXPLAINERS)}")
    if args.chapter:
        print(chapter_path(args.op))
        return 0
    function = EXPLAINERS[args.op]
    accepted = inspect.signature(function).parameters
    options = {}
    for dest, keyword in _OPTIONS.items():
        value = getattr(args, dest)
        if value is None:
            continue
        if keyword not in accepted:
            flag = "--" + dest.replace("_", "-")
            usable = ", ".join("--" + k.replace("_", "-") for k in accepted if k != "op")
            raise UsageError(f"{flag} does not apply to {args.op}; its options are {usable}")
        options[keyword] = value
    print(function(**options))
    return 0
