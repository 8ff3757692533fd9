"""Region Proposal Network (Ren et al., Faster R-CNN, 2015, sec. 3.1), torchvision's structure.

- :class:`RPNHead`: a 3x3 convolution + ReLU shared by two 1x1 convolutions that give, per
  anchor, an objectness logit and 4 box deltas.
- :class:`RegionProposalNetwork`: the proposal layer (decode the deltas on the anchors, clip
  to the image, drop small boxes, keep the ``pre_nms_top_n`` best, NMS, keep ``post_nms_top_n``;
  separate train and test values) and, in training, the targets and losses: 256 anchors per
  image are sampled, positives are anchors with IoU >= 0.7 with a ground-truth box (plus each
  box's best anchors), negatives those < 0.3, at most half positive; binary cross-entropy on
  the objectness and smooth L1 (beta 1/9) on the positives' deltas, both divided by the number
  of sampled anchors.
"""
from __future__ import annotations

import numpy as np

from minidl import nn, ops
from minidl.models.detection._utils import like, match, sample_balanced, to_host
from minidl.models.detection.anchor_utils import AnchorGenerator
from minidl.nn import functional as F
from minidl.tensor import Tensor


class RPNHead(nn.Module):
    """3x3 conv -> ReLU -> (1x1 conv to A logits, 1x1 conv to 4A deltas)."""

    def __init__(self, in_channels, num_anchors):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, in_channels, kernel_size=3, stride=1, padding=1)
        self.cls_logits = nn.Conv2d(in_channels, num_anchors, kernel_size=1)
        self.bbox_pred = nn.Conv2d(in_channels, num_anchors * 4, kernel_size=1)
        for layer in (self.conv, self.cls_logits, self.bbox_pred):
            nn.init.normal_(layer.weight, std=0.01)
            nn.init.constant_(layer.bias, 0.0)

    def forward(self, x):
        t = F.relu(self.conv(x))
        return self.cls_logits(t), self.bbox_pred(t)  # (N, A, H, W), (N, 4A, H, W)


class RegionProposalNetwork(nn.Module):
    def __init__(self, in_channels, anchor_generator=None, fg_iou_thresh=0.7, bg_iou_thresh=0.3,
                 batch_size_per_image=256, positive_fraction=0.5, pre_nms_top_n=(2000, 1000),
                 post_nms_top_n=(2000, 300), nms_thresh=0.7, min_size=1e-3, seed=0):
        super().__init__()
        self.anchor_generator = anchor_generator or AnchorGenerator()
        self.head = RPNHead(in_channels, self.anchor_generator.num_anchors_per_location)
        self.fg_iou_thresh, self.bg_iou_thresh = float(fg_iou_thresh), float(bg_iou_thresh)
        self.batch_size_per_image, self.positive_fraction = int(batch_size_per_image), float(positive_fraction)
        # (train, test) pairs, as torchvision's dicts
        self.pre_nms_top_n = tuple(int(v) for v in pre_nms_top_n)
        self.post_nms_top_n = tuple(int(v) for v in post_nms_top_n)
        self.nms_thresh, self.min_size = float(nms_thresh), float(min_size)
        self.rng = np.random.default_rng(seed)

    def _top_n(self, values):
        return values[0] if self.training else values[1]

    def filter_proposals(self, anchors, objectness, deltas, image_size):
        """Proposals (P, 4) and their objectness (P,) for one image, from raw head outputs (numpy)."""
        k = min(self._top_n(self.pre_nms_top_n), objectness.shape[0])
        top = np.argpartition(-objectness, k - 1)[:k] if k < objectness.shape[0] else np.arange(k)
        boxes = ops.decode_boxes(deltas[top], anchors[top])  # (k, 4)
        boxes = ops.clip_boxes_to_image(boxes, image_size)
        scores = objectness[top]
        keep = ops.remove_small_boxes(boxes, self.min_size)
        boxes, scores = boxes[keep], scores[keep]
        keep = ops.nms(boxes, scores, self.nms_thresh).numpy()[: self._top_n(self.post_nms_top_n)]
        return boxes[keep], scores[keep]

    def assign_targets(self, anchors, gt_boxes):
        """Per anchor: label 1 / 0 / -1 (ignored) and the regression target (its matched box's deltas)."""
        matches, _ = match(gt_boxes, anchors, self.fg_iou_thresh, self.bg_iou_thresh, allow_low_quality_matches=True)
        labels = np.where(matches >= 0, 1, np.where(matches == -1, 0, -1)).astype(np.int64)
        matched = gt_boxes[np.clip(matches, 0, None)] if gt_boxes.shape[0] else np.zeros_like(anchors)
        return labels, matched

    def forward(self, features, image_size, targets=None):
        """Proposals per image (list of (P, 4) arrays) and, in training, ``{"loss_objectness", "loss_rpn_box_reg"}``."""
        logits, deltas = self.head(features)
        n, a, h, w = logits.shape
        anchors = self.anchor_generator.grid_anchors((h, w))  # (H*W*A, 4)
        logits = logits.permute(0, 2, 3, 1).reshape(n, h * w * a)  # (N, HWA), the anchors' order
        deltas = deltas.reshape(n, a, 4, h, w).permute(0, 3, 4, 1, 2).reshape(n, h * w * a, 4)  # (N, HWA, 4)
        objectness_np, deltas_np = to_host(logits.data), to_host(deltas.data)  # one read per batch on a GPU
        proposals, scores = [], []
        for i in range(n):
            boxes, s = self.filter_proposals(anchors, objectness_np[i], deltas_np[i], image_size)
            proposals.append(boxes)
            scores.append(s)
        losses = {}
        if self.training:
            if targets is None:
                raise ValueError("RegionProposalNetwork: targets are required in training mode")
            losses = self.loss(logits, deltas, anchors, targets)
        return proposals, scores, losses

    def loss(self, logits, deltas, anchors, targets):
        n, num_anchors = logits.shape
        flat_index, labels, regression = [], [], []
        pos_index = []
        for i in range(n):
            gt = np.asarray(targets[i]["boxes"], np.float32).reshape(-1, 4)
            image_labels, matched = self.assign_targets(anchors, gt)
            pos, neg = sample_balanced(image_labels, self.batch_size_per_image, self.positive_fraction, self.rng)
            chosen = np.concatenate([pos, neg])
            flat_index.append(chosen + i * num_anchors)
            labels.append((image_labels[chosen] > 0).astype(np.float32))
            pos_index.append(pos + i * num_anchors)
            if pos.size:
                regression.append(ops.encode_boxes(matched[pos], anchors[pos]))
        flat_index = np.concatenate(flat_index)
        pos_index = np.concatenate(pos_index)
        sampled = max(flat_index.size, 1)
        objectness = logits.reshape(-1)[like(flat_index, logits)]
        loss_obj = F.binary_cross_entropy_with_logits(
            objectness, Tensor(like(np.concatenate(labels).astype(logits.dtype), logits)))
        if pos_index.size:
            pred = deltas.reshape(-1, 4)[like(pos_index, deltas)]
            target = Tensor(like(np.concatenate(regression).astype(deltas.dtype), deltas))
            loss_box = F.smooth_l1_loss(pred, target, reduction="sum", beta=1.0 / 9) * (1.0 / sampled)
        else:
            loss_box = (deltas.reshape(-1)[:1] * 0.0).sum()
        return {"loss_objectness": loss_obj, "loss_rpn_box_reg": loss_box}
