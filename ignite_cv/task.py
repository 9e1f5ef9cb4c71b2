"""The classification task: how many logits the model emits, the loss, and class scores for metrics.

Two-class data uses one logit and ``BCEWithLogitsLoss`` (the usual choice for binary medical tasks,
where ROC-AUC is read off the single probability). Everything downstream (metrics, reports,
predictions) sees uniform ``(N, C)`` class scores: for one logit ``z`` the scores are ``[0, z]``,
whose softmax is ``[1 - σ(z), σ(z)]`` and whose argmax is ``z > 0``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class ClassificationTask(nn.Module):
    def __init__(self, num_classes: int, label_smoothing: float = 0.0) -> None:
        super().__init__()
        if num_classes < 2:
            raise ValueError(f"a classification task needs at least 2 classes, got {num_classes}")
        self.num_classes = num_classes
        self.label_smoothing = label_smoothing

    @property
    def binary(self) -> bool:
        return self.num_classes == 2

    @property
    def num_outputs(self) -> int:
        """Logits the model must emit: 1 for two classes, else one per class."""
        return 1 if self.binary else self.num_classes

    def loss(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """The training loss: mean over the batch, with ``label_smoothing`` (float32 even under autocast)."""
        return self._cross_entropy(logits, targets, self.label_smoothing)

    def evaluation_loss(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """The validation/test loss: plain cross-entropy, so that runs with and without label
        smoothing report comparable losses (and a saved model's loss needs no training setting)."""
        return self._cross_entropy(logits, targets, 0.0)

    def _cross_entropy(self, logits: torch.Tensor, targets: torch.Tensor, smoothing: float) -> torch.Tensor:
        logits = logits.float()
        if self.binary:
            return F.binary_cross_entropy_with_logits(logits.squeeze(1), targets.to(logits.dtype))
        return F.cross_entropy(logits, targets, label_smoothing=smoothing)

    def class_scores(self, logits: torch.Tensor) -> torch.Tensor:
        """``(N, C)`` scores whose softmax gives class probabilities and whose argmax is the prediction."""
        logits = logits.float()
        if self.binary:
            return torch.cat([torch.zeros_like(logits), logits], dim=1)
        return logits

    def probabilities(self, logits: torch.Tensor) -> torch.Tensor:
        return self.class_scores(logits).softmax(dim=1)
