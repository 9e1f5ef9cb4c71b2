"""A run's two-class decisions: the positive class before anything is built, the threshold at the end.

* :func:`put_positive_last` orders the classes so that ``--positive-class`` is index 1 (the single
  logit's class, :mod:`ignite_cv.data.classes`), says which class is positive, and refuses decision
  options that cannot work on this data before the run folder exists.
* :func:`card_extra` is what every checkpoint of the run carries for evaluation and prediction
  (:mod:`ignite_cv.inference.decision` reads it): ``positive_class``, a fixed ``threshold``,
  ``center_crop``.
* :func:`decide_threshold` is ``--threshold``: a fixed number, or Youden's J on the validation
  predictions of the model the run reports (never the test split), written into that model's
  checkpoint; :func:`at_threshold` is the summary's test metrics at it.
"""

from __future__ import annotations

from typing import Any

import torch

from ignite_cv.binary import fixed_threshold, metrics_at_threshold, youden_threshold
from ignite_cv.data.classes import class_counts, positive_last, reorder_classes
from ignite_cv.data.splits import DataBundle
from ignite_cv.evaluation import run_evaluation
from ignite_cv.utils.distributed import say
from ignite_cv.utils.errors import UserError


def put_positive_last(config: Any, bundle: DataBundle) -> DataBundle:
    """``bundle`` with the positive class at index 1 (two classes), after checking the decision options."""
    bundle = reorder_classes(bundle, positive_last(bundle.class_names, getattr(config, "positive_class", "")))
    threshold = getattr(config, "threshold", "0.5")
    if bundle.num_classes != 2:
        if fixed_threshold(threshold) != 0.5:
            raise UserError(
                f"--threshold {threshold} is for two classes; the data has {bundle.num_classes}",
                "drop --threshold (several classes take the most probable one)",
            )
        return bundle
    if fixed_threshold(threshold) is None and min(class_counts(bundle.val, 2)) == 0:
        only = bundle.class_names[class_counts(bundle.val, 2).index(len(bundle.val))]
        raise UserError(
            f"--threshold youden needs both classes in the validation split, which holds only {only!r}",
            "pass --threshold 0.5 (or a number), or a larger --val-fraction",
        )
    negative, positive = bundle.class_names
    counts = class_counts(bundle.train, 2)
    say(
        f"positive class: {positive!r} (the single logit's, {counts[1]} of {len(bundle.train)} training "
        f"images; the other is {negative!r}; --positive-class changes it)"
    )
    return bundle


def check_watched_metrics(config: Any, metric_names) -> None:
    """``--monitor`` and, where a phase uses the plateau schedule, ``--plateau-monitor`` name validation
    metrics (checked before the run folder exists, not after the first epoch)."""
    names = sorted(metric_names)
    watched = []
    if getattr(config, "monitor", "auto") != "auto":
        watched.append(("--monitor", config.monitor))
    schedules = {getattr(config, "scheduler", "none"), getattr(config, "head_scheduler", "none")}
    if "plateau" in schedules:
        watched.append(("--plateau-monitor", config.plateau_monitor))
    for flag, name in watched:
        if name not in names:
            raise UserError(f"{flag} {name!r} is not a validation metric", f"use one of: {', '.join(names)}")


def card_extra(config: Any, class_names: list[str]) -> dict[str, Any]:
    """What every checkpoint card of the run records for evaluation and prediction."""
    extra: dict[str, Any] = {"center_crop": bool(getattr(config, "center_crop", False))}
    if len(class_names) == 2:
        extra["positive_class"] = class_names[1]
        fixed = fixed_threshold(getattr(config, "threshold", "0.5"))
        if fixed is not None:
            extra["threshold"] = fixed
    return extra


def decide_threshold(
    config: Any, net, task, pipeline, device: torch.device, val_loader, step
) -> float | None:
    """The decision threshold of a two-class run (None for several classes): ``--threshold``'s number,
    or Youden's J on ``net``'s predictions of the validation split (every rank gets the same value).
    The run writes it into the best checkpoint's card (``update_card``) after the test."""
    if not task.binary:
        return None
    threshold = fixed_threshold(config.threshold)
    if threshold is None:
        _, (scores, labels, _) = run_evaluation(
            net, task, pipeline, device, val_loader, step, keep_images=False
        )
        threshold = youden_threshold(labels.numpy(), scores.softmax(dim=1)[:, 1].numpy())
        say(f"threshold {threshold:.4g}: Youden's J on the validation split ({len(labels)} images)")
    return threshold


def at_threshold(labels: torch.Tensor, scores: torch.Tensor, threshold: float | None) -> dict:
    """Two classes: ``{"test_at_threshold": metrics}`` of ``(N, 2)`` class scores at ``threshold``."""
    if threshold is None:
        return {}
    positive = scores.softmax(dim=1)[:, 1].numpy()
    return {"test_at_threshold": metrics_at_threshold(labels.numpy(), positive, threshold)}
