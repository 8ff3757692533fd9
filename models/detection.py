"""Detection models: ``fasterrcnn(backbone=..., num_classes=...)`` (Ren et al., Faster R-CNN, 2015).

The implementation lives in ``minidl.detection`` (anchors, RPN, RoI heads); this file registers
the builder in the model zoo.

>>> from minidl import models
>>> net = models.fasterrcnn(backbone="tiny", num_classes=7)
"""
from __future__ import annotations

from minidl.detection.faster_rcnn import FasterRCNN, build_backbone

from minidl.models.registry import register_model


@register_model(input_size=(3, 160, 256))
def fasterrcnn(backbone="tiny", num_classes=7, width_mult=1.0, **kwargs):
    """Faster R-CNN on one feature map; ``num_classes`` counts the background.

    ``backbone``: ``"tiny"`` (stride 8, for CPU training), ``"mobilenet_v2"`` (at ``width_mult``),
    ``"resnet18"`` or ``"resnet34"`` (stride 16). Other keyword arguments go to
    :class:`minidl.detection.faster_rcnn.FasterRCNN` (anchor sizes and ratios, RPN and box
    thresholds and top-k values).
    """
    return FasterRCNN(build_backbone(backbone, width_mult), num_classes, **kwargs)
