"""Loss functions: fused softmax cross-entropy, NLL, MSE, L1, smooth L1, BCE with logits.

Cross-entropy with class-index targets is one fused Function: the kernel
computes log-sum-exp, the per-sample loss and, in backward, the gradient
``softmax(z) - onehot`` (with smoothing and weights) in one pass, instead of
composing log_softmax, gather and mean (five passes over the logits).
"""
from __future__ import annotations

import numpy as np

from minidl.functions.function import Function


class SoftmaxCrossEntropy(Function):
    """Cross-entropy of (N, C) logits against int64 class targets, reduced by ``reduction``."""

    kernel_family = "loss"

    def forward(self, logits, target, weight=None, ignore_index=-100, label_smoothing=0.0, reduction="mean"):
        per_sample, lse, sample_weight = self.kernels.softmax_cross_entropy_forward(
            logits, target, weight, ignore_index, label_smoothing)
        # backward needs the logits, their log-sum-exp and the targets
        self.save_for_backward(logits, lse, target, weight)
        self.options = (ignore_index, label_smoothing, reduction)
        if reduction == "none":
            return per_sample
        if reduction == "sum":
            return per_sample.sum()
        if reduction != "mean":
            raise ValueError(f"cross_entropy: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
        # PyTorch divides by the summed weights of the non-ignored targets
        self.denominator = sample_weight.sum()
        with np.errstate(invalid="ignore", divide="ignore"):  # an empty batch: 0/0 = NaN, as PyTorch, silently
            return per_sample.sum() / self.denominator

    def backward(self, g):
        logits, lse, target, weight = self.saved
        ignore_index, label_smoothing, reduction = self.options
        xp = self.xp
        n = logits.shape[0]
        if reduction == "none":
            per_sample_grad = g
        elif reduction == "sum":  # g may be a 0-d device array: broadcast it, never read it on the host
            per_sample_grad = xp.broadcast_to(xp.asarray(g, dtype=logits.dtype), (n,))
        else:
            per_sample_grad = xp.broadcast_to(xp.asarray(g / self.denominator, dtype=logits.dtype), (n,))
        grad = self.kernels.softmax_cross_entropy_backward(
            logits, lse, target, weight, ignore_index, label_smoothing, per_sample_grad.astype(logits.dtype))
        return grad, None, None
