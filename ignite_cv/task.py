"""The classification task: how many logits the model emits, the loss, and class scores for metrics.

Two-class data uses one logit and ``BCEWithLogitsLoss`` (the usual choice for binary medical tasks,
where ROC-AUC is read off the single probability); the logit is the evidence for class index 1, the
positive class (``--positive-class`` moves it there, :mod:`ignite_cv.data.classes`). Everything
downstream (metrics, reports, predictions) sees uniform ``(N, C)`` class scores: for one logit ``z``
the scores are ``[0, z]``, whose softmax is ``[1 - σ(z), σ(z)]`` and whose argmax is ``z > 0``.

The training loss (:class:`LossOptions`) is cross-entropy (BCE for one logit), optionally weighted by
inverse class frequency (``--class-weights balanced``: cross-entropy's ``weight`` N / (C·n_c), BCE's
``pos_weight`` n_neg / n_pos), or the focal loss of Lin et al. (``--loss focal``): torchvision's
``sigmoid_focal_loss`` for one logit, kornia's ``focal_loss`` for several. Validation and test always
report plain, unweighted cross-entropy, so runs with different training losses report comparable losses
(and the plateau schedule and early stopping on ``loss`` see the same quantity).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ignite_cv.utils.errors import UserError
from ignite_cv.utils.options import option

LOSSES = ("ce", "focal")
CLASS_WEIGHTS = ("none", "balanced")


@dataclass
class LossOptions:
    """The training loss and how it weighs the classes."""

    loss: str = option(
        "ce",
        "training loss: ce (cross-entropy; BCE for two classes) or focal (torchvision's sigmoid focal loss "
        "for one logit, kornia's focal loss for several classes)",
        choices=LOSSES,
    )
    focal_gamma: float = option(2.0, "--loss focal: focusing parameter γ (0 = cross-entropy)", minimum=0.0)
    focal_alpha: float = option(
        -1.0,
        "--loss focal: class weight α: two classes, the positive class's (negatives get 1 - α); several "
        "classes, kornia's (class 0 gets 1 - α, the others α); -1 = none",
        minimum=-1.0,
        maximum=1.0,
    )
    class_weights: str = option(
        "none",
        "weight the training loss by inverse class frequency in the training split: balanced = "
        "cross-entropy weight N/(C*n_c), BCE pos_weight n_neg/n_pos (focal, two classes: α = n_neg/N)",
        choices=CLASS_WEIGHTS,
    )


def balanced_class_weights(counts: Sequence[int]) -> list[float]:
    """``N / (C * n_c)`` per class (scikit-learn's "balanced"); a class without samples is a UserError."""
    empty = [c for c, n in enumerate(counts) if n == 0]
    if empty:
        raise UserError(
            f"--class-weights balanced: class {empty[0]} has no training samples",
            "drop --class-weights, or add samples of every class to the training split",
        )
    total = sum(counts)
    return [total / (len(counts) * n) for n in counts]


class ClassificationTask(nn.Module):
    """``class_weights``: one training-loss weight per class (None: unweighted); with one logit only their
    ratio counts (BCE's ``pos_weight`` is ``w1 / w0``). ``loss`` is ``ce`` or ``focal``."""

    def __init__(
        self,
        num_classes: int,
        label_smoothing: float = 0.0,
        loss: str = "ce",
        class_weights: Sequence[float] | None = None,
        focal_gamma: float = 2.0,
        focal_alpha: float = -1.0,
    ) -> None:
        super().__init__()
        if num_classes < 2:
            raise ValueError(f"a classification task needs at least 2 classes, got {num_classes}")
        if loss not in LOSSES:
            raise ValueError(f"unknown loss {loss!r}; choose one of {', '.join(LOSSES)}")
        if class_weights is not None and len(class_weights) != num_classes:
            raise ValueError(f"{len(class_weights)} class weights for {num_classes} classes")
        self.num_classes = num_classes
        self.label_smoothing = label_smoothing
        self.loss_name = loss
        self.focal_gamma = focal_gamma
        self.focal_alpha = focal_alpha
        weights = None if class_weights is None else torch.tensor(list(class_weights), dtype=torch.float32)
        if weights is not None and self.binary:
            if loss == "focal":  # the positive class's share of the weight: sigmoid_focal_loss's alpha
                self.focal_alpha = float(weights[1] / weights.sum())
                weights = None
            else:
                weights = (weights[1] / weights[0]).reshape(1)  # BCE's pos_weight
        self.register_buffer("class_weight", weights, persistent=False)

    @property
    def binary(self) -> bool:
        return self.num_classes == 2

    @property
    def num_outputs(self) -> int:
        """Logits the model must emit: 1 for two classes, else one per class."""
        return 1 if self.binary else self.num_classes

    def loss(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """The training loss: mean over the batch (float32 even under autocast)."""
        logits = logits.float()
        if self.loss_name == "focal":
            return self._focal(logits, targets)
        if self.binary:
            return F.binary_cross_entropy_with_logits(
                logits.squeeze(1), targets.to(logits.dtype), pos_weight=self.class_weight
            )
        return F.cross_entropy(
            logits, targets, weight=self.class_weight, label_smoothing=self.label_smoothing
        )

    def _focal(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        if self.binary:
            from torchvision.ops import sigmoid_focal_loss

            return sigmoid_focal_loss(
                logits.squeeze(1),
                targets.to(logits.dtype),
                alpha=self.focal_alpha,
                gamma=self.focal_gamma,
                reduction="mean",
            )
        from kornia.losses import focal_loss

        alpha = None if self.focal_alpha < 0 else self.focal_alpha
        # kornia's "mean" also divides by the number of classes; "sum" / N is the mean per image.
        total = focal_loss(logits, targets, alpha, self.focal_gamma, "sum", weight=self.class_weight)
        return total / max(len(targets), 1)

    def evaluation_loss(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """The validation/test loss: plain cross-entropy, so that runs with and without label
        smoothing, class weights or the focal loss report comparable losses (and a saved model's loss
        needs no training setting)."""
        logits = logits.float()
        if self.binary:
            return F.binary_cross_entropy_with_logits(logits.squeeze(1), targets.to(logits.dtype))
        return F.cross_entropy(logits, targets)

    def class_scores(self, logits: torch.Tensor) -> torch.Tensor:
        """``(N, C)`` scores whose softmax gives class probabilities and whose argmax is the prediction."""
        logits = logits.float()
        if self.binary:
            return torch.cat([torch.zeros_like(logits), logits], dim=1)
        return logits

    def probabilities(self, logits: torch.Tensor) -> torch.Tensor:
        return self.class_scores(logits).softmax(dim=1)


def task_from_config(config, num_classes: int, train_counts: Sequence[int]) -> ClassificationTask:
    """The training task a config asks for (``LossOptions`` and label smoothing), with class weights
    from the training split's ``train_counts`` under ``--class-weights balanced``."""
    balanced = getattr(config, "class_weights", "none") == "balanced"
    return ClassificationTask(
        num_classes,
        label_smoothing=getattr(config, "label_smoothing", 0.0),
        loss=getattr(config, "loss", "ce"),
        class_weights=balanced_class_weights(train_counts) if balanced else None,
        focal_gamma=getattr(config, "focal_gamma", 2.0),
        focal_alpha=getattr(config, "focal_alpha", -1.0),
    )
