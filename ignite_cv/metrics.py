"""The metric set of validation and test engines, built from Ignite's metrics.

Per-class and macro precision/recall/F1 and accuracy are derived (``cmPrecision``, ``cmRecall``,
``cmAccuracy``) from one confusion matrix, so a batch costs one scatter-add on the device and no
host synchronisation; the values are computed once per evaluation. ROC-AUC (binary, or macro
one-vs-rest for many classes, which Ignite's ``ROC_AUC`` does not do) is an ``EpochMetric`` over the
collected probabilities, computed with :func:`ignite_cv.roc.roc_auc` so the test report's ROC JSON
gives the same number. Engine outputs are dicts with ``logits``, ``scores`` ((N, C) class scores,
see :mod:`ignite_cv.task`) and ``y``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from ignite.metrics import (
    Average,
    ConfusionMatrix,
    EpochMetric,
    Loss,
    Metric,
    MetricsLambda,
    TopKCategoricalAccuracy,
)
from ignite.metrics.confusion_matrix import cmAccuracy, cmPrecision, cmRecall

from ignite_cv.roc import roc_auc
from ignite_cv.task import ClassificationTask

#: Top-5 accuracy is reported when a task has more classes than this.
TOP5_MIN_CLASSES = 10


class DeviceConfusionMatrix(ConfusionMatrix):
    """Ignite's ConfusionMatrix, updated with ``index_add_`` instead of boolean masking and ``bincount``.

    Both of those synchronise with the host on CUDA every batch; labels here are always valid
    class indices, so the mask is not needed.
    """

    def update(self, output) -> None:  # noqa: D102 - same contract as ConfusionMatrix.update
        y_pred, y = output[0].detach(), output[1].detach()
        self._num_examples += y_pred.shape[0]
        indices = self.num_classes * y.flatten() + y_pred.argmax(dim=1).flatten()
        flat = self.confusion_matrix.view(-1)
        flat.index_add_(
            0, indices.to(flat.device), torch.ones_like(indices, dtype=flat.dtype, device=flat.device)
        )


def _scores_and_targets(output: dict) -> tuple[torch.Tensor, torch.Tensor]:
    return output["scores"], output["y"]


def _f1(precision: torch.Tensor, recall: torch.Tensor) -> torch.Tensor:
    return torch.nan_to_num(2 * precision * recall / (precision + recall), nan=0.0)


def _roc_auc_from_scores(scores: torch.Tensor, targets: torch.Tensor) -> float:
    return roc_auc(targets.cpu().numpy(), scores.float().softmax(dim=1).cpu().numpy())


def evaluation_metrics(task: ClassificationTask, device: torch.device) -> dict[str, Metric]:
    """Loss, accuracy, per-class and macro P/R/F1, confusion matrix, ROC-AUC (and top-5 for many classes)."""
    cm = DeviceConfusionMatrix(task.num_classes, output_transform=_scores_and_targets, device=device)
    precision = cmPrecision(cm, average=False)
    recall = cmRecall(cm, average=False)
    f1 = MetricsLambda(_f1, precision, recall)
    metrics: dict[str, Metric] = {
        "loss": Loss(task.loss, output_transform=lambda o: (o["logits"], o["y"]), device=device),
        "accuracy": cmAccuracy(cm),
        "precision_macro": precision.mean(),
        "recall_macro": recall.mean(),
        "f1_macro": f1.mean(),
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "confusion_matrix": cm,
        "roc_auc": EpochMetric(
            _roc_auc_from_scores, output_transform=_scores_and_targets, check_compute_fn=False, device=device
        ),
    }
    if task.num_classes > TOP5_MIN_CLASSES:
        metrics["top5"] = TopKCategoricalAccuracy(k=5, output_transform=_scores_and_targets, device=device)
    return metrics


def training_metrics(task: ClassificationTask, device: torch.device) -> dict[str, Metric]:
    """Epoch loss and accuracy of the (augmented) training batches, accumulated on the device."""
    cm = DeviceConfusionMatrix(task.num_classes, output_transform=_scores_and_targets, device=device)
    loss: Callable = lambda o: o["loss"]  # noqa: E731
    return {"loss": Average(output_transform=loss, device=device), "accuracy": cmAccuracy(cm)}


def scalar_metrics(metrics: dict) -> dict[str, float]:
    """The scalar entries of an engine's ``state.metrics`` as floats (for logs, histories, summaries)."""
    out: dict[str, float] = {}
    for name, value in metrics.items():
        if isinstance(value, torch.Tensor):
            if value.numel() != 1:
                continue
            value = value.item()
        if isinstance(value, (int, float)):
            out[name] = float(value)
    return out


#: Metrics where lower is better; everything else is maximised.
LOWER_IS_BETTER = frozenset({"loss"})
