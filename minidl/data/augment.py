"""The training augmentations of ``minidl train --augment``: named presets and a comma list.

``--augment NAME`` picks a preset; ``--augment flip,rotate=15,zoom=0.1,perspective=0.2,color=0.2``
builds one from items. Each becomes an :class:`Augmentation`: image transforms applied after
``ToTensor`` (CHW float arrays) and a horizontal-flip probability. The flip is applied with the
label by :class:`minidl.data.flips.FlipLabels`, so a dataset's flip map (GTSRB's: a left-turn
sign mirrored becomes a right-turn sign; a stop sign is never mirrored) keeps every label true.

==========  ==================================================================================
preset      what it does
==========  ==================================================================================
light       rotate=5, shift=0.05; flip for RGB data
standard    rotate=10, shift=0.1, zoom=0.1; flip for RGB data (the former plain ``--augment``)
xray        flip, rotate=10, zoom=0.1, perspective=0.2, color=0.2: fastai's default
            ``aug_transforms`` (flip, rotation, zoom, warp, lighting), as the X-ray study used
signs       rotate=10, shift=0.1, zoom=0.1, shear=5, perspective=0.2, color=0.3, sharpness=2,
            erase=0.2; flip only through the dataset's flip map (none without one)
==========  ==================================================================================

Items of a comma list (a bare name takes the default in brackets):

``flip[=P]`` (0.5) horizontal flip, label-aware; ``vflip[=P]`` (0.5) vertical flip;
``rotate=DEG`` (15), ``shift=FRAC`` (0.1), ``zoom=FRAC`` (0.1, scale in 1 -/+ FRAC),
``shear=DEG`` (10): one ``RandomAffine``; ``perspective=S`` (0.2) ``RandomPerspective(S, p=0.5)``;
``color=A`` (0.2) ``ColorJitter`` of brightness, contrast (and saturation for RGB) by A;
``sharpness=F`` (2) ``RandomAdjustSharpness(F, p=0.5)``; ``erase=P`` (0.25) ``RandomErasing(p=P)``.

>>> aug = parse_augment("flip,rotate=15,zoom=0.1")
>>> aug.flip, [type(t).__name__ for t in aug.steps]
(0.5, ['RandomAffine'])
"""
from __future__ import annotations

from minidl.data import transforms as T
from minidl.data.flips import FlipLabels, check_flip_map

__all__ = ["PRESETS", "ITEMS", "Augmentation", "parse_augment"]

# preset -> (items, flip for RGB data only, flip only through a flip map)
PRESETS = {
    "light": ("flip,rotate=5,shift=0.05", "rgb", "always"),
    "standard": ("flip,rotate=10,shift=0.1,zoom=0.1", "rgb", "always"),
    "xray": ("flip,rotate=10,zoom=0.1,perspective=0.2,color=0.2", "any", "always"),
    "signs": ("flip,rotate=10,shift=0.1,zoom=0.1,shear=5,perspective=0.2,color=0.3,sharpness=2,erase=0.2", "any",
              "flip map"),
}

# item -> (default value, what it means)
ITEMS = {
    "flip": (0.5, "horizontal flip probability (labels follow the dataset's flip map)"),
    "vflip": (0.5, "vertical flip probability"),
    "rotate": (15.0, "rotation range in degrees (-/+)"),
    "shift": (0.1, "translation, fraction of the width and height (-/+)"),
    "zoom": (0.1, "scale range 1 -/+ this"),
    "shear": (10.0, "x-shear range in degrees (-/+)"),
    "perspective": (0.2, "RandomPerspective distortion_scale (p=0.5)"),
    "color": (0.2, "ColorJitter brightness, contrast and saturation"),
    "sharpness": (2.0, "RandomAdjustSharpness sharpness_factor (p=0.5)"),
    "erase": (0.25, "RandomErasing probability"),
}


class Augmentation:
    """Image transforms (``steps``, on CHW float arrays) and flip probabilities, with a description."""

    def __init__(self, name, values, channels=3, flip_rule="always"):
        self.name = name
        self.values = dict(values)
        self.flip_rule = flip_rule
        self.flip = float(self.values.get("flip", 0.0))
        self.vflip = float(self.values.get("vflip", 0.0))
        self.steps = _steps(self.values, channels)

    def wrap(self, dataset, flip_map=None):
        """``dataset`` with the flip (label-aware) after its transform; ``dataset`` itself without one."""
        if self.flip_rule == "flip map" and flip_map is None:
            return dataset
        if flip_map is not None:
            flip_map = check_flip_map(flip_map)
        return FlipLabels(dataset, flip_map, self.flip) if self.flip > 0 else dataset

    def describe(self, flip_map=None):
        """One line per step: what the augmentation does to each training image."""
        lines = []
        if self.flip > 0:
            if self.flip_rule == "flip map" and flip_map is None:
                lines.append("no horizontal flip (the dataset declares no flip map)")
            elif flip_map is None:
                lines.append(f"horizontal flip p={self.flip:g}, every class keeps its label")
            else:
                flip_map = check_flip_map(flip_map)
                pairs = sum(1 for c, m in enumerate(flip_map) if m is not None and m > c)
                same = sum(1 for c, m in enumerate(flip_map) if m == c)
                never = sum(1 for m in flip_map if m is None)
                lines.append(f"horizontal flip p={self.flip:g} through the dataset's flip map: {pairs} mirrored "
                             f"pair(s) swap labels, {same} symmetric class(es) keep theirs, {never} never flipped")
        if self.vflip > 0:
            lines.append(f"vertical flip p={self.vflip:g}")
        lines += [repr(t) for t in self.steps]
        return lines

    def __repr__(self):
        return f"Augmentation({self.name!r})"


def _number(item, text):
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"--augment: {item}={text!r} is not a number") from None


def _steps(values, channels):
    steps = []
    affine = {k: values[k] for k in ("rotate", "shift", "zoom", "shear") if k in values}
    if affine:
        shift, zoom = affine.get("shift"), affine.get("zoom")
        steps.append(T.RandomAffine(degrees=affine.get("rotate", 0.0),
                                    translate=None if shift is None else (shift, shift),
                                    scale=None if zoom is None else (1.0 - zoom, 1.0 + zoom),
                                    shear=affine.get("shear")))
    if "perspective" in values:
        steps.append(T.RandomPerspective(distortion_scale=values["perspective"], p=0.5))
    if "color" in values:
        a = values["color"]
        steps.append(T.ColorJitter(brightness=a, contrast=a, saturation=a if channels == 3 else 0))
    if "sharpness" in values:
        steps.append(T.RandomAdjustSharpness(values["sharpness"], p=0.5))
    if "erase" in values:
        steps.append(T.RandomErasing(p=values["erase"]))
    if values.get("vflip", 0) > 0:
        steps.append(T.RandomVerticalFlip(values["vflip"]))
    return steps


def _parse_items(spec):
    values = {}
    for raw in spec.split(","):
        item = raw.strip()
        if not item:
            continue
        name, _, text = item.partition("=")
        name = name.strip().lower()
        if name not in ITEMS:
            raise ValueError(f"--augment: unknown item {name!r}; valid presets: {', '.join(PRESETS)}; valid items: "
                             + ", ".join(f"{k}[={d:g}]" for k, (d, _) in ITEMS.items()))
        value = ITEMS[name][0] if not text.strip() else _number(name, text.strip())
        if value < 0 or (name in ("flip", "vflip", "erase", "perspective") and value > 1) or (
                name == "zoom" and value >= 1) or (name == "shift" and value > 1):
            raise ValueError(f"--augment: {name}={value:g} is out of range ({ITEMS[name][1]})")
        values[name] = value
    if not values:
        raise ValueError(f"--augment: expected a preset ({', '.join(PRESETS)}) or a comma list of items, got {spec!r}")
    return values


def parse_augment(spec, channels=3):
    """The :class:`Augmentation` of ``--augment SPEC``: a preset name or a comma list of items.

    ``channels``: the images' channels (presets flip RGB images only where they say so, and
    the colour jitter leaves saturation alone on grey images). Unknown items raise a
    ``ValueError`` naming the item and listing the valid ones.
    """
    spec = str(spec).strip()
    key = spec.lower()
    if key in PRESETS:
        items, flip_for, flip_rule = PRESETS[key]
        values = _parse_items(items)
        if flip_for == "rgb" and channels != 3:
            values.pop("flip")
        return Augmentation(key, values, channels, flip_rule)
    return Augmentation(spec, _parse_items(spec), channels)
