"""The second stage (Girshick, Fast R-CNN, 2015), torchvision's ``RoIHeads`` structure.

Each proposal is pooled from the backbone features with RoI Align to a fixed (7 x 7) grid,
passed through a two-layer MLP (the box head) and a predictor giving ``num_classes + 1``
class logits (0 = background) and per-class box deltas (``4 * (num_classes + 1)``).

Training: the ground-truth boxes are added to the proposals; proposals with IoU >= 0.5 with a
ground-truth box take its class, the others are background; ``batch_size_per_image`` are
sampled with at most 25% positive. Losses: cross-entropy over the classes, and smooth L1
(beta 1/9) on the deltas of the true class for the positives, divided by the number of
sampled proposals. Deltas use the weights (10, 10, 5, 5).

Inference: softmax scores, per-class decoded and clipped boxes, then per class a score
threshold, removal of tiny boxes, class-aware NMS and at most ``detections_per_img``.
"""
from __future__ import annotations

import numpy as np

from minidl import nn, ops
from minidl.models.detection._utils import like, match, sample_balanced, to_host
from minidl.nn import functional as F
from minidl.tensor import Tensor

BOX_WEIGHTS = (10.0, 10.0, 5.0, 5.0)


class TwoMLPHead(nn.Module):
    """flatten -> fc6 -> ReLU -> fc7 -> ReLU."""

    def __init__(self, in_channels, representation_size):
        super().__init__()
        self.fc6 = nn.Linear(in_channels, representation_size)
        self.fc7 = nn.Linear(representation_size, representation_size)

    def forward(self, x):
        x = x.reshape(x.shape[0], -1)  # (K, C*PH*PW)
        return F.relu(self.fc7(F.relu(self.fc6(x))))


class FastRCNNPredictor(nn.Module):
    """Class logits (K, C+1) and per-class box deltas (K, 4(C+1))."""

    def __init__(self, in_channels, num_classes):
        super().__init__()
        self.cls_score = nn.Linear(in_channels, num_classes)
        self.bbox_pred = nn.Linear(in_channels, num_classes * 4)
        nn.init.normal_(self.cls_score.weight, std=0.01)
        nn.init.normal_(self.bbox_pred.weight, std=0.001)
        nn.init.constant_(self.cls_score.bias, 0.0)
        nn.init.constant_(self.bbox_pred.bias, 0.0)

    def forward(self, x):
        return self.cls_score(x), self.bbox_pred(x)


class RoIHeads(nn.Module):
    def __init__(self, in_channels, num_classes, spatial_scale, output_size=7, sampling_ratio=2,
                 representation_size=256, fg_iou_thresh=0.5, bg_iou_thresh=0.5, batch_size_per_image=128,
                 positive_fraction=0.25, score_thresh=0.05, nms_thresh=0.5, detections_per_img=100, seed=1):
        super().__init__()
        self.num_classes = int(num_classes)  # including the background
        self.spatial_scale, self.output_size, self.sampling_ratio = float(spatial_scale), int(output_size), \
            int(sampling_ratio)
        self.box_head = TwoMLPHead(in_channels * output_size * output_size, representation_size)
        self.box_predictor = FastRCNNPredictor(representation_size, self.num_classes)
        self.fg_iou_thresh, self.bg_iou_thresh = float(fg_iou_thresh), float(bg_iou_thresh)
        self.batch_size_per_image, self.positive_fraction = int(batch_size_per_image), float(positive_fraction)
        self.score_thresh, self.nms_thresh = float(score_thresh), float(nms_thresh)
        self.detections_per_img = int(detections_per_img)
        self.rng = np.random.default_rng(seed)

    def select_training_samples(self, proposals, targets):
        """Sampled proposals per image with their class labels (0 = background) and box targets."""
        sampled, labels, regression = [], [], []
        for props, target in zip(proposals, targets):
            gt = np.asarray(target["boxes"], np.float32).reshape(-1, 4)
            gt_labels = np.asarray(target["labels"], np.int64).reshape(-1)
            props = np.concatenate([props, gt], axis=0)  # the ground truth is a proposal too
            matches, _ = match(gt, props, self.fg_iou_thresh, self.bg_iou_thresh, allow_low_quality_matches=False)
            image_labels = np.where(matches >= 0, gt_labels[np.clip(matches, 0, None)] if gt.shape[0] else 0, 0)
            image_labels = np.where(matches == -2, -1, image_labels).astype(np.int64)  # ignored (none by default)
            pos, neg = sample_balanced(image_labels, self.batch_size_per_image, self.positive_fraction, self.rng)
            chosen = np.concatenate([pos, neg])
            sampled.append(props[chosen])
            labels.append(image_labels[chosen])
            reg = np.zeros((chosen.size, 4), np.float32)
            if pos.size:
                reg[: pos.size] = ops.encode_boxes(gt[matches[pos]], props[pos], BOX_WEIGHTS)
            regression.append(reg)
        return sampled, labels, regression

    def pooled_features(self, features, boxes):
        return ops.roi_align(features, [b.astype(np.float32) for b in boxes], self.output_size, self.spatial_scale,
                         self.sampling_ratio)  # (K, C, 7, 7)

    def forward(self, features, proposals, image_size, targets=None):
        if self.training:
            if targets is None:
                raise ValueError("RoIHeads: targets are required in training mode")
            proposals, labels, regression = self.select_training_samples(proposals, targets)
        x = self.box_head(self.pooled_features(features, proposals))
        class_logits, box_regression = self.box_predictor(x)
        if self.training:
            return [], self.loss(class_logits, box_regression, labels, regression)
        return self.postprocess(to_host(class_logits.data), to_host(box_regression.data), proposals, image_size), {}

    def loss(self, class_logits, box_regression, labels, regression):
        labels = np.concatenate(labels)
        regression = np.concatenate(regression)
        loss_cls = F.cross_entropy(class_logits, Tensor(like(labels, class_logits)))
        pos = np.nonzero(labels > 0)[0]
        if pos.size:
            per_class = box_regression.reshape(labels.size, self.num_classes, 4)
            # (P, 4): the deltas of each positive's true class
            pred = per_class[like(pos, per_class), like(labels[pos], per_class)]
            target = Tensor(like(regression[pos].astype(box_regression.dtype), box_regression))
            loss_box = F.smooth_l1_loss(pred, target, reduction="sum", beta=1.0 / 9) * (1.0 / labels.size)
        else:
            loss_box = (box_regression.reshape(-1)[:1] * 0.0).sum()
        return {"loss_classifier": loss_cls, "loss_box_reg": loss_box}

    def postprocess(self, class_logits, box_regression, proposals, image_size):
        """Per image ``{"boxes", "scores", "labels"}`` numpy arrays, labels in 1..num_classes-1."""
        logits = class_logits - class_logits.max(axis=1, keepdims=True)
        scores = np.exp(logits)
        scores /= scores.sum(axis=1, keepdims=True)  # (K, C+1) softmax
        results, start = [], 0
        for props in proposals:
            k = props.shape[0]
            s = scores[start:start + k]
            boxes = ops.decode_boxes(box_regression[start:start + k], props.astype(box_regression.dtype),
                                 BOX_WEIGHTS)  # (k, 4(C+1))
            start += k
            boxes = ops.clip_boxes_to_image(boxes.reshape(k, self.num_classes, 4), image_size)
            labels = np.broadcast_to(np.arange(self.num_classes), (k, self.num_classes))
            # drop the background column, flatten to one candidate per (proposal, class)
            boxes, s, labels = boxes[:, 1:].reshape(-1, 4), s[:, 1:].reshape(-1), labels[:, 1:].reshape(-1)
            keep = np.nonzero(s > self.score_thresh)[0]
            boxes, s, labels = boxes[keep], s[keep], labels[keep]
            keep = ops.remove_small_boxes(boxes, 1e-2)
            boxes, s, labels = boxes[keep], s[keep], labels[keep]
            keep = ops.batched_nms(boxes, s, labels, self.nms_thresh).numpy()[: self.detections_per_img]
            results.append({"boxes": boxes[keep], "scores": s[keep], "labels": labels[keep]})
        return results
