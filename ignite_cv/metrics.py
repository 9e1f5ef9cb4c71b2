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

import ignite.distributed as idist
import torch
from ignite.exceptions import NotComputableError
from ignite.metrics import (
    ConfusionMatrix,
    EpochMetric,
    Loss,
    Metric,
    MetricsLambda,
    TopKCategoricalAccuracy,
)
from ignite.metrics.confusion_matrix import cmAccuracy, cmPrecision, cmRecall
from ignite.metrics.metric import reinit__is_reduced, sync_all_reduce

from ignite_cv.config import TRAIN_METRICS
from ignite_cv.roc import roc_auc
from ignite_cv.task import ClassificationTask

#: Top-5 accuracy is reported when a task has more classes than this.
TOP5_MIN_CLASSES = 10
#: Evaluation metrics that are matrices (not logged as scalars or per-class curves).
MATRIX_METRICS = ("confusion_matrix",)


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


class ShardedEpochMetric(EpochMetric):
    """Ignite's EpochMetric for shards of different lengths (and empty ones).

    Exact distributed evaluation gives each rank an unpadded shard, so ranks hold different numbers of
    predictions; Ignite's ``all_gather`` needs equal shapes. Each rank pads its shard to the longest,
    gathers, and drops the padding, so every sample counts exactly once.
    """

    def __init__(self, compute_fn, num_classes: int, output_transform, device) -> None:
        super().__init__(compute_fn, output_transform=output_transform, check_compute_fn=False, device=device)
        self.num_classes = num_classes

    def compute(self) -> float:
        scores = torch.cat(self._predictions) if self._predictions else torch.zeros(0, self.num_classes)
        targets = torch.cat(self._targets) if self._targets else torch.zeros(0, dtype=torch.long)
        if idist.get_world_size() > 1:
            scores, targets = (
                gather_uneven(scores.to(self._device)),
                gather_uneven(targets.to(self._device)),
            )
        return self.compute_fn(scores, targets)


def gather_uneven(tensor: torch.Tensor) -> torch.Tensor:
    """Concatenate ``tensor`` (first dimension may differ) from every rank, in rank order."""
    length = torch.tensor([tensor.shape[0]], device=tensor.device)
    lengths = idist.all_gather(length).tolist()
    padded = torch.zeros((max(lengths), *tensor.shape[1:]), dtype=tensor.dtype, device=tensor.device)
    padded[: tensor.shape[0]] = tensor
    gathered = idist.all_gather(padded).reshape(len(lengths), max(lengths), *tensor.shape[1:])
    return torch.cat([gathered[rank, :n] for rank, n in enumerate(lengths)])


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
        "loss": Loss(task.evaluation_loss, output_transform=lambda o: (o["logits"], o["y"]), device=device),
        "accuracy": cmAccuracy(cm),
        "precision_macro": precision.mean(),
        "recall_macro": recall.mean(),
        "f1_macro": f1.mean(),
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "confusion_matrix": cm,
        "roc_auc": ShardedEpochMetric(_roc_auc_from_scores, task.num_classes, _scores_and_targets, device),
    }
    if task.num_classes > TOP5_MIN_CLASSES:
        metrics["top5"] = TopKCategoricalAccuracy(k=5, output_transform=_scores_and_targets, device=device)
    return metrics


class TrainingLossAccuracy(Metric):
    """Epoch loss (mean of the batch losses) and accuracy (per image) of the training batches, as
    ``state.metrics["loss"]`` and ``["accuracy"]``, accumulated on the device and summed over ranks.

    Why not Ignite's ``Average`` and ``Accuracy``: each runs its generic output checks and several
    tensor operations on every iteration, and right after a small CPU step (caches cold) a tensor
    operation costs tens of microseconds, a visible share of the step (``benchmarks/overhead.py``).
    This metric keeps the step outputs of up to ``fold_every`` iterations (references, no copy) and
    folds them into the sums with a handful of operations for all of them. The numbers are the same
    (``tests/test_metrics.py`` compares them with Ignite's).
    """

    def __init__(self, device: torch.device | str = "cpu", fold_every: int = 32) -> None:
        if fold_every < 1:
            raise ValueError(f"fold_every must be >= 1, got {fold_every}")
        self.fold_every = fold_every
        super().__init__(device=device, metrics_result_mode="flatten")

    @reinit__is_reduced
    def reset(self) -> None:  # noqa: D102
        self._loss_sum = torch.zeros((), device=self._device)
        self._correct = torch.zeros((), dtype=torch.long, device=self._device)
        self._batches = 0
        self._images = 0
        self._unfolded: list[dict] = []

    def iteration_completed(self, engine) -> None:
        """The trainer's output dict as it is: no transform, no unrolling."""
        self.update(engine.state.output)

    @reinit__is_reduced
    def update(self, output: dict) -> None:  # noqa: D102
        self._unfolded.append(output)
        if len(self._unfolded) >= self.fold_every:
            self._fold()

    def _fold(self) -> None:
        outputs, self._unfolded = self._unfolded, []
        if not outputs:
            return
        losses = torch.stack([o["loss"] for o in outputs])  # the step returns detached tensors
        steps = [o for o in outputs if "scores" in o]
        restored = [o for o in outputs if "scores" not in o]  # see load_partial_state
        self._loss_sum += losses.sum().to(self._device)
        if steps:
            scores = torch.cat([o["scores"] for o in steps])
            labels = torch.cat([o["y"] for o in steps])
            predicted = scores.argmax(dim=1)
            self._correct += (predicted == labels).sum().to(self._device)
            self._images += len(labels)
            self._fold_predictions(scores, predicted, labels)
        for entry in restored:
            self._correct += entry["correct"].to(self._device)
            self._images += entry["images"]
        self._batches += len(outputs)

    def _fold_predictions(self, scores: torch.Tensor, predicted: torch.Tensor, labels: torch.Tensor) -> None:
        """What a subclass keeps of a fold's predictions besides the loss and accuracy (here nothing)."""

    def partial_state(self) -> dict[str, torch.Tensor]:
        """The sums so far in this epoch, for a mid-epoch training state, without folding: the batches
        not yet folded are kept one by one (loss, correct count, images), so a resumed epoch folds the
        same losses in the same groups and its epoch loss is bitwise the uninterrupted run's."""
        pending = self._unfolded
        correct = [
            o["correct"] if "scores" not in o else (o["scores"].argmax(dim=1) == o["y"]).sum()
            for o in pending
        ]
        images = [o["images"] if "scores" not in o else len(o["y"]) for o in pending]
        return {
            "loss_sum": self._loss_sum.detach().clone(),
            "correct": self._correct.detach().clone(),
            "counts": torch.tensor([self._batches, self._images], dtype=torch.int64),
            "pending_loss": torch.stack([o["loss"] for o in pending]) if pending else torch.zeros(0),
            "pending_correct": torch.stack([c.to("cpu") for c in correct])
            if pending
            else torch.zeros(0, dtype=torch.int64),
            "pending_images": torch.tensor(images, dtype=torch.int64),
        }

    def load_partial_state(self, state: dict[str, torch.Tensor]) -> None:
        """Continue from :meth:`partial_state` (call right after the epoch's reset)."""
        self._loss_sum = state["loss_sum"].to(self._device).clone()
        self._correct = state["correct"].to(self._device).clone()
        self._batches, self._images = (int(v) for v in state["counts"])
        self._unfolded = [
            {"loss": loss, "correct": correct, "images": int(images)}
            for loss, correct, images in zip(
                state["pending_loss"].to(self._device), state["pending_correct"], state["pending_images"]
            )
        ]

    def compute(self) -> dict[str, float]:  # noqa: D102
        self._fold()
        return self._epoch_values()

    @sync_all_reduce("_loss_sum", "_correct", "_batches", "_images")
    def _epoch_values(self) -> dict[str, float]:
        if self._batches == 0:
            raise NotComputableError("TrainingLossAccuracy needs at least one batch")
        return {
            "loss": float(self._loss_sum) / self._batches,
            "accuracy": int(self._correct) / self._images,
        }


class TrainingClassificationMetrics(TrainingLossAccuracy):
    """``--train-metrics full``: :class:`TrainingLossAccuracy` plus, under the validation's names,
    per-class and macro precision, recall and F1, the confusion matrix and ROC-AUC of the training
    stream (the augmented batches as the model saw them while it trained).

    Still no host sync per batch: each fold adds its predictions to a ``num_classes²`` confusion
    matrix with one ``index_add_`` and keeps the scores (references, on the device) for the AUC, which
    is computed once per epoch with :func:`ignite_cv.roc.roc_auc` (the validation's definition; the
    scores of an epoch, ``N × C`` floats, stay on the device until then). Precision of a class never
    predicted, recall of a class absent from the labels and their F1 are 0 (scikit-learn's
    ``zero_division=0``; ``tests/test_metrics.py`` compares every value with scikit-learn's).
    An epoch resumed mid-way counts these from the resume point (a training state holds the loss and
    accuracy sums only); its loss and accuracy still cover the whole epoch.
    """

    def __init__(self, num_classes: int, device: torch.device | str = "cpu", fold_every: int = 32) -> None:
        if num_classes < 2:
            raise ValueError(f"num_classes must be >= 2, got {num_classes}")
        self.num_classes = num_classes
        super().__init__(device=device, fold_every=fold_every)

    @reinit__is_reduced
    def reset(self) -> None:  # noqa: D102
        super().reset()
        k = self.num_classes
        self._confusion = torch.zeros(k * k, dtype=torch.long, device=self._device)
        self._scores: list[torch.Tensor] = []
        self._labels: list[torch.Tensor] = []

    def _fold_predictions(self, scores: torch.Tensor, predicted: torch.Tensor, labels: torch.Tensor) -> None:
        cells = (self.num_classes * labels + predicted).to(self._device)
        self._confusion.index_add_(0, cells, torch.ones_like(cells))
        self._scores.append(scores)
        self._labels.append(labels)

    def compute(self) -> dict:  # noqa: D102
        values = super().compute()
        k = self.num_classes
        scores = torch.cat(self._scores) if self._scores else torch.zeros(0, k)
        labels = torch.cat(self._labels) if self._labels else torch.zeros(0, dtype=torch.long)
        if idist.get_world_size() > 1:
            scores, labels = gather_uneven(scores.to(self._device)), gather_uneven(labels.to(self._device))
        matrix = self._reduced_confusion().view(k, k)
        correct = matrix.diagonal().double()
        precision = torch.nan_to_num(correct / matrix.sum(dim=0).double(), nan=0.0)
        recall = torch.nan_to_num(correct / matrix.sum(dim=1).double(), nan=0.0)
        f1 = _f1(precision, recall)
        values.update(
            precision_macro=float(precision.mean()),
            recall_macro=float(recall.mean()),
            f1_macro=float(f1.mean()),
            precision=precision,
            recall=recall,
            f1=f1,
            confusion_matrix=matrix.cpu(),
            roc_auc=_roc_auc_from_scores(scores, labels),
        )
        return values

    @sync_all_reduce("_confusion")
    def _reduced_confusion(self) -> torch.Tensor:
        return self._confusion.clone()


def training_metrics(
    device: torch.device, num_classes: int | None = None, level: str = "basic"
) -> dict[str, Metric]:
    """The metrics of the (augmented) training batches: ``basic`` the epoch loss and accuracy
    (``state.metrics["loss"]``, ``["accuracy"]``); ``full`` also precision, recall, F1 (per class and
    macro), the confusion matrix and ROC-AUC, named as the validation's (needs ``num_classes``)."""
    if level not in TRAIN_METRICS:
        raise ValueError(f"level must be one of {TRAIN_METRICS}, got {level!r}")
    if level == "full":
        if num_classes is None:
            raise ValueError("full training metrics need num_classes")
        return {"training": TrainingClassificationMetrics(num_classes, device=device)}
    return {"training": TrainingLossAccuracy(device=device)}


def training_metric_names(level: str = "basic") -> tuple[str, ...]:
    """The scalar and per-class names :func:`training_metrics` reports at ``level`` (what TensorBoard
    logs; the confusion matrix goes to the history only)."""
    basic = ("loss", "accuracy")
    if level == "full":
        return (*basic, "precision_macro", "recall_macro", "f1_macro", "roc_auc", "precision", "recall", "f1")
    return basic


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


#: The validation metrics ``--monitor`` may name (``top5`` only for more than 10 classes): the scalar
#: entries of :func:`evaluation_metrics` (``tests/test_metrics.py`` checks they agree).
MONITORABLE_METRICS = ("loss", "accuracy", "precision_macro", "recall_macro", "f1_macro", "roc_auc", "top5")

#: Metrics where lower is better; everything else is maximised.
LOWER_IS_BETTER = frozenset({"loss"})
