"""Detection models, as torchvision's ``models/detection``: Faster R-CNN (Ren et al., 2015).

- ``faster_rcnn``: the backbones (``tiny``, ``mobilenet_v2``, ``resnet18``/``34``), the
  :class:`FasterRCNN` model and its zoo builder :func:`fasterrcnn`.
- ``rpn``: the RPN head, proposal layer (top-k, NMS, train/test values), targets and losses.
- ``roi_heads``: RoI Align, box head, per-class predictor, proposal sampling, Fast R-CNN losses,
  post-processing (score threshold, class-aware NMS, per-image maximum).
- ``anchor_utils``: :class:`AnchorGenerator` and the anchor presets (the seed's tuned GTSDB
  anchors, ratios (0.8, 1.0, 1.2) and sizes (32, 62, 112, 212, 252); smaller ones for the
  synthetic scenes).
- ``_utils``: the IoU matcher and the balanced positive/negative sampler.

Box operations (NMS, IoU, RoI Align, box coding) come from :mod:`minidl.ops`, which chooses the
kernels for the tensors' device. The application code (the seed's filter pipeline, training
and evaluation, ``minidl detect``) is ``minidl.detection``; the data readers are
``minidl.datasets.SyntheticScenes`` and ``minidl.datasets.GTSDB``.

>>> from minidl import models
>>> net = models.fasterrcnn(backbone="tiny", num_classes=7)
>>> type(net).__name__
'FasterRCNN'
"""
from minidl.models.detection.anchor_utils import PRESETS, AnchorGenerator
from minidl.models.detection.faster_rcnn import (
    FasterRCNN,
    TinyBackbone,
    build_backbone,
    fasterrcnn,
    images_to_tensor,
)
from minidl.models.detection.roi_heads import FastRCNNPredictor, RoIHeads, TwoMLPHead
from minidl.models.detection.rpn import RegionProposalNetwork, RPNHead

__all__ = [
    "PRESETS", "AnchorGenerator",
    "FasterRCNN", "TinyBackbone", "build_backbone", "fasterrcnn", "images_to_tensor",
    "RoIHeads", "TwoMLPHead", "FastRCNNPredictor",
    "RegionProposalNetwork", "RPNHead",
]
