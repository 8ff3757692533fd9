"""Faster R-CNN (Ren et al., 2015): backbone -> RPN -> RoI Align -> box head, trained end to end.

One feature map (no FPN). Backbones:

- ``"tiny"`` (the default, sized for 2 CPU cores): five 3x3 conv-BN-ReLU layers, stride 8,
  64 channels; ~0.09 GMAC per 256x160 image.
- ``"mobilenet_v2"``: ``minidl.models.mobilenet_v2(width_mult).features`` up to the 96-channel
  stage (stride 16).
- ``"resnet18"`` / ``"resnet34"``: the stem and ``layer1..layer3`` (stride 16, 256 channels).

Images go in as a float Tensor (N, 3, H, W), already normalised (:func:`images_to_tensor`);
in training the model returns a dict of the four losses, in eval one dict per image
``{"boxes", "scores", "labels"}`` (numpy; labels 1..num_classes-1, 0 is the background) and
keeps the RPN's proposals in ``last_proposals`` (for RPN recall). :func:`fasterrcnn` is the
zoo's builder (``minidl.models.fasterrcnn``, ``get_model("fasterrcnn", ...)``).
"""
from __future__ import annotations

import numpy as np

from minidl import nn
from minidl.models.detection.anchor_utils import PRESETS, AnchorGenerator
from minidl.models.detection.roi_heads import RoIHeads
from minidl.models.detection.rpn import RegionProposalNetwork
from minidl.models.mobilenet import mobilenet_v2
from minidl.models.registry import register_model
from minidl.models.resnet import resnet18, resnet34
from minidl.tensor import Tensor

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32)


def images_to_tensor(images):
    """A list of (H, W, 3) uint8 images (same size) -> normalised float32 Tensor (N, 3, H, W)."""
    if len(images) == 0:
        raise ValueError("images_to_tensor: expected at least one image, got an empty list")
    shape = images[0].shape
    for i, img in enumerate(images):
        if img.shape != shape or img.ndim != 3 or img.shape[2] != 3:
            raise ValueError(f"images[{i}] must be (H, W, 3) like images[0] {shape}, got {img.shape}")
    batch = np.stack(images).astype(np.float32) / 255.0  # (N, H, W, 3)
    batch = (batch - IMAGENET_MEAN) / IMAGENET_STD
    return Tensor(np.ascontiguousarray(batch.transpose(0, 3, 1, 2)))


def _conv_bn(cin, cout, stride):
    return [nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]


class TinyBackbone(nn.Module):
    """conv-BN-ReLU x 5: 3->16 (s2), 16->32 (s2), 32->48, 48->64 (s2), 64->64. Stride 8.

    Downsampling early keeps the cost at ~0.09 GMAC per 256x160 image (the full-resolution
    layers are the expensive ones on a CPU); the receptive field (~60 px) covers the largest signs.
    """

    # (out_channels, stride) per layer
    cfg = ((16, 2), (32, 2), (48, 1), (64, 2), (64, 1))

    def __init__(self, in_channels=3):
        super().__init__()
        layers, cin = [], in_channels
        for cout, stride in self.cfg:
            layers += _conv_bn(cin, cout, stride)
            cin = cout
        self.body = nn.Sequential(*layers)
        self.out_channels, self.stride = cin, 8
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x):
        return self.body(x)  # (N, 64, H/8, W/8)


class _Truncated(nn.Module):
    def __init__(self, body, out_channels, stride):
        super().__init__()
        self.body, self.out_channels, self.stride = body, out_channels, stride

    def forward(self, x):
        return self.body(x)


def build_backbone(name="tiny", width_mult=1.0):
    """A feature extractor with ``out_channels`` and ``stride`` attributes."""
    if name == "tiny":
        return TinyBackbone()
    if name == "mobilenet_v2":
        net = mobilenet_v2(width_mult=width_mult)
        # features[0] is the stem, then the inverted residual blocks of (t, c, n, s) rows; the
        # first 14 modules end with the 96-channel stage at stride 16.
        body = net.features[:14]
        out_channels = body[13].block[-1].num_features if hasattr(body[13], "block") else None
        if out_channels is None:
            out_channels = [m for m in body.modules() if isinstance(m, nn.BatchNorm2d)][-1].num_features
        return _Truncated(body, out_channels, 16)
    if name in ("resnet18", "resnet34"):
        net = resnet18() if name == "resnet18" else resnet34()
        body = nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool, net.layer1, net.layer2, net.layer3)
        return _Truncated(body, 256, 16)
    raise ValueError(f"backbone must be one of 'tiny', 'mobilenet_v2', 'resnet18', 'resnet34', got {name!r}")


class FasterRCNN(nn.Module):
    """Backbone, RPN and RoI heads; ``num_classes`` includes the background (class 0)."""

    def __init__(self, backbone, num_classes, anchor_sizes=None, aspect_ratios=None, rpn_pre_nms_top_n=(2000, 1000),
                 rpn_post_nms_top_n=(2000, 300), rpn_nms_thresh=0.7, rpn_fg_iou_thresh=0.7, rpn_bg_iou_thresh=0.3,
                 rpn_batch_size_per_image=256, rpn_positive_fraction=0.5, box_batch_size_per_image=128,
                 box_positive_fraction=0.25, box_fg_iou_thresh=0.5, box_bg_iou_thresh=0.5, box_score_thresh=0.05,
                 box_nms_thresh=0.5, box_detections_per_img=100, representation_size=256, roi_output_size=7,
                 seed=0):
        super().__init__()
        if num_classes < 2:
            raise ValueError(f"num_classes must count the background and at least one class (>= 2), got {num_classes}")
        self.backbone = backbone
        anchors = AnchorGenerator(anchor_sizes or PRESETS["synthetic"]["sizes"],
                                  aspect_ratios or PRESETS["synthetic"]["aspect_ratios"], backbone.stride)
        self.rpn = RegionProposalNetwork(backbone.out_channels, anchors, rpn_fg_iou_thresh, rpn_bg_iou_thresh,
                                         rpn_batch_size_per_image, rpn_positive_fraction, rpn_pre_nms_top_n,
                                         rpn_post_nms_top_n, rpn_nms_thresh, seed=seed)
        self.roi_heads = RoIHeads(backbone.out_channels, num_classes, 1.0 / backbone.stride, roi_output_size, 2,
                                  representation_size, box_fg_iou_thresh, box_bg_iou_thresh,
                                  box_batch_size_per_image, box_positive_fraction, box_score_thresh, box_nms_thresh,
                                  box_detections_per_img, seed=seed + 1)
        self.num_classes = num_classes
        self.last_proposals = None

    def forward(self, images, targets=None):
        if not isinstance(images, Tensor) or images.ndim != 4:
            raise TypeError(f"images must be a (N, 3, H, W) Tensor (see images_to_tensor), got "
                            f"{type(images).__name__} {getattr(images, 'shape', '')}")
        if self.training and (targets is None or len(targets) != images.shape[0]):
            raise ValueError(f"targets: expected one dict per image ({images.shape[0]}) in training mode, got "
                             f"{None if targets is None else len(targets)}")
        image_size = images.shape[2:]
        features = self.backbone(images)
        proposals, _, rpn_losses = self.rpn(features, image_size, targets)
        self.last_proposals = proposals
        detections, roi_losses = self.roi_heads(features, proposals, image_size, targets)
        if self.training:
            return {**rpn_losses, **roi_losses}
        return detections


@register_model(input_size=(3, 160, 256))
def fasterrcnn(backbone="tiny", num_classes=7, width_mult=1.0, **kwargs):
    """Faster R-CNN on one feature map; ``num_classes`` counts the background.

    ``backbone``: ``"tiny"`` (stride 8, for CPU training), ``"mobilenet_v2"`` (at ``width_mult``),
    ``"resnet18"`` or ``"resnet34"`` (stride 16). Other keyword arguments go to
    :class:`FasterRCNN` (anchor sizes and ratios, RPN and box thresholds and top-k values).

    >>> from minidl import models
    >>> net = models.fasterrcnn(backbone="tiny", num_classes=7)
    >>> net.backbone.stride, net.rpn.head.cls_logits.out_channels
    (8, 12)
    """
    return FasterRCNN(build_backbone(backbone, width_mult), num_classes, **kwargs)
