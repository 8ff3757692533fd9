"""The seed's final traffic-sign configuration as one preset (``minidl detect ... --preset seed``).

Every value is the seed's (report 000, section 4.3.2 "Final results", with 4.1, 4.2.1-4.2.4),
for GTSDB's 1360x800 frames:

- RPN: anchor ratios (0.8, 1.0, 1.2), sizes (32, 62, 112, 212, 252); 10000 boxes before and
  1500 after the proposal NMS at IoU 0.7 (the seed's ``TEST_PRE/POST_NMS_TOPK``: inference;
  training keeps the detector's own 2000/2000).
- Position filter: drop a box with two corners above row 85 or below row 470, or two corners
  in the road triangle in the middle of the frame. The seed drew the triangle on its heat map
  of sign positions (figure 12a, lost in the text): the vertices here are our reconstruction,
  the road wedge from the vanishing point, (680, 424), (1115, 800), (245, 800); redraw it with
  ``minidl detect heatmap DATA`` on the real data.
- Shape filter: sides from 16 to 130 pixels (the seed does not give its ratio limit: 1.6, ours).
- Background gate: MobileNet v2 at width 0.5 (Keras ``alpha``), background = boxes with
  IoU < 0.6 against every sign (and boxes with IoU >= 0.6 count as signs), the two classes
  balanced ("repeat until having 50.000 data for each class").
- Sign classifier: MobileNet v2 at width 0.7 trained with Adamax (Keras' default lr 0.001),
  "from ImageNet weights" (none exist at 0.7: Keras ships 0.35/0.5/0.75/1.0/1.3/1.4 and refuses
  other widths with ``weights="imagenet"``; torchvision ships 1.0), so here it starts at random.
- Score thresholds 0.999999 and 0.93; class-aware NMS at IoU 0.3; at most 6 boxes per image.

The seed's text contradicts itself on the two score thresholds: its final list says "Traffic
Sign CNN: 0.999999, Background CNN: 0.93", while every row of its tuning table (Table 8, "BG
CNN SCORE | TS CNN SCORE": 0.999999 | 0.945, 0.99 | 0.93, ...) has the ~0.99999 threshold on the
background gate and ~0.9 on the sign classifier. A 43-class softmax rarely reaches 0.999999, a
binary gate trained to 99% does, so the preset follows the table: gate 0.999999, sign
classifier 0.93 (``--gate-threshold`` / ``--sign-threshold`` override either).

MobileNet v2's channels at these widths are Keras' exactly: Keras rounds
``_make_divisible(int(c * alpha), 8)`` and torchvision ``_make_divisible(c * alpha, 8)``; the two
agree at 0.5 and 0.7 (they can only differ where the 10%-floor test falls between ``int(v)`` and
``v``), so ``models.mobilenet_v2(width_mult=0.7)`` has Keras' layers; Keras' ``count_params()``
adds the batch-norm moving mean and variance (non-trainable) to the same trainable count.

On the synthetic scenes the pixel geometry is the scenes' own (their sign region for the
position filter, their sign sizes for the shape filter, the ``synthetic`` anchors); every other
value is the seed's. :func:`seed_preset` returns the preset for a frame, ``lines()`` describes it.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

GTSDB_FRAME = (1360, 800)  # width, height
GTSDB_TRIANGLE = ((680.0, 424.0), (1115.0, 800.0), (245.0, 800.0))  # our reconstruction of figure 12a


@dataclass(frozen=True)
class DetectionPreset:
    """Every setting of the detection pipeline that the seed tuned, with where each value comes from."""

    name: str
    anchor_sizes: tuple = (32, 62, 112, 212, 252)
    anchor_ratios: tuple = (0.8, 1.0, 1.2)
    rpn_pre_nms_top_n: tuple = (2000, 10000)  # (train, test)
    rpn_post_nms_top_n: tuple = (2000, 1500)
    rpn_nms_thresh: float = 0.7
    y_min: float | None = 85.0
    y_max: float | None = 470.0
    polygons: tuple = (GTSDB_TRIANGLE,)
    min_corners: int = 2
    min_side: float = 16.0
    max_side: float = 130.0
    max_aspect: float = 1.6
    gate_width: float = 0.5
    gate_negative_iou: float = 0.6
    gate_balance: bool = True
    gate_threshold: float = 0.999999
    sign_width: float = 0.7
    sign_optimizer: str = "adamax"
    sign_lr: float = 1e-3
    sign_threshold: float = 0.93
    nms_iou: float = 0.3
    top_k: int = 6
    frame: tuple = GTSDB_FRAME
    adapted: tuple = field(default=())  # the settings replaced by a scene's own geometry

    def lines(self):
        """The preset as printed by ``minidl detect ... --preset seed``."""
        poly = "; ".join("(" + ", ".join(f"({x:g}, {y:g})" for x, y in p) + ")" for p in self.polygons)
        band = f"two corners above y={self.y_min:g} or below y={self.y_max:g}, or " if self.y_min is not None else ""
        out = [
            f"preset {self.name} (the seed's final traffic-sign configuration; frame {self.frame[0]}x{self.frame[1]})",
            f"  RPN anchors: sizes {tuple(self.anchor_sizes)}, ratios {tuple(self.anchor_ratios)}",
            f"  RPN proposals: pre-NMS top-n {self.rpn_pre_nms_top_n[1]}, post-NMS top-n "
            f"{self.rpn_post_nms_top_n[1]} at IoU {self.rpn_nms_thresh:g} (inference; training "
            f"{self.rpn_pre_nms_top_n[0]}/{self.rpn_post_nms_top_n[0]})",
            f"  position filter: drop boxes with {band}{self.min_corners} corners in {poly}",
            f"  shape filter: sides {self.min_side:g} to {self.max_side:g} px, aspect <= {self.max_aspect:g}",
            f"  background gate: MobileNet v2 x{self.gate_width:g}, negatives at IoU < {self.gate_negative_iou:g}"
            f"{', classes balanced' if self.gate_balance else ''}, keep p(sign) >= {self.gate_threshold:g}",
            f"  sign classifier: MobileNet v2 x{self.sign_width:g}, {self.sign_optimizer.capitalize()} lr "
            f"{self.sign_lr:g}, random init (no ImageNet weights exist at x{self.sign_width:g}), "
            f"keep p(class) >= {self.sign_threshold:g}",
            f"  class-aware NMS at IoU {self.nms_iou:g}, at most {self.top_k} boxes per image",
            "  score thresholds as the columns of the seed's Table 8 (its final list names them the other way round)",
        ]
        if self.adapted:
            out.append(f"  adapted to the scenes' geometry: {', '.join(self.adapted)}")
        return out


def seed_preset(scene_config=None):
    """The seed's preset for GTSDB frames, or, given a ``SceneConfig``, for those synthetic scenes."""
    preset = DetectionPreset(name="seed")
    if scene_config is None:
        return preset
    from minidl.models.detection import PRESETS

    return replace(
        preset,
        anchor_sizes=tuple(PRESETS["synthetic"]["sizes"]),
        y_min=None, y_max=None,
        polygons=tuple(tuple(tuple(pt) for pt in p) for p in scene_config.sign_region()),
        min_side=float(scene_config.min_size) * 0.75,  # the scenes' signs, less occlusion and box jitter
        max_side=float(scene_config.max_size) * 1.25,
        frame=(scene_config.width, scene_config.height),
        adapted=("anchor sizes", "position polygons", "size filter"),
    )


PRESETS = {"seed": seed_preset}

__all__ = ["DetectionPreset", "GTSDB_FRAME", "GTSDB_TRIANGLE", "PRESETS", "seed_preset"]
