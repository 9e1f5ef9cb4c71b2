"""ROC-AUC and ROC curves from class probabilities: one definition shared by the metric and the report.

Why one module: the test ROC-AUC the training loop reports and the ``"auc"`` written to ``roc.json`` must be
the same number. Both come from :func:`roc_auc`, so they are equal by construction.

Definitions (scores are the caller's probabilities, shape ``(N, C)``; for a 1-logit binary model the caller
passes ``[1 - p, p]``):

* ``C == 2``: the ordinary binary ROC-AUC of ``probs[:, 1]`` (probability of class 1) against ``y == 1``.
* ``C > 2``: the macro one-vs-rest ROC-AUC: for each class ``k`` the binary AUC of ``probs[:, k]`` against
  ``y == k``, averaged with equal weight over the classes that have both positives and negatives in
  ``y_true``. A class absent from ``y_true`` has no positives, so its AUC is undefined: it is left out of the
  mean (not an error, not counted as 0 or 0.5). When all classes are present this equals
  ``sklearn.metrics.roc_auc_score(y, probs, multi_class="ovr", average="macro")``.
* Undefined cases return ``float("nan")``: fewer than 2 distinct classes in ``y_true`` (binary: only one
  class), or non-finite probabilities (a diverged model). NaN is honest; a made-up 0.5 is not.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

__all__ = ["roc_auc", "roc_curves", "roc_points", "to_label_array", "to_prob_array"]


def to_label_array(y_true: np.ndarray | torch.Tensor | Sequence[int]) -> np.ndarray:
    """Return integer class indices as a 1-D int64 numpy array (accepts tensors on any device)."""
    if isinstance(y_true, torch.Tensor):
        y_true = y_true.detach().to("cpu", torch.int64).numpy()
    y = np.asarray(y_true)
    if y.ndim != 1:
        raise ValueError(f"y_true must be 1-D class indices, got shape {tuple(y.shape)}")
    if y.size and not np.issubdtype(y.dtype, np.integer) and not np.all(np.mod(y, 1) == 0):
        raise ValueError("y_true must hold integer class indices")
    return y.astype(np.int64, copy=False)


def to_prob_array(probs: np.ndarray | torch.Tensor) -> np.ndarray:
    """Return probabilities as a 2-D float64 numpy array ``(N, C)`` (accepts bf16/half tensors)."""
    if isinstance(probs, torch.Tensor):
        probs = probs.detach().to("cpu", torch.float64).numpy()
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] < 2:
        raise ValueError(
            f"probs must have shape (N, C) with C >= 2 (binary models pass [1 - p, p]), got {tuple(p.shape)}"
        )
    return p


def _checked(y_true: Any, probs: Any) -> tuple[np.ndarray, np.ndarray]:
    y = to_label_array(y_true)
    p = to_prob_array(probs)
    if p.shape[0] != y.shape[0]:
        raise ValueError(f"y_true has {y.shape[0]} samples but probs has {p.shape[0]} rows")
    if y.size and (y.min() < 0 or y.max() >= p.shape[1]):
        raise ValueError(
            f"y_true holds class indices outside [0, {p.shape[1]}): min {y.min()}, max {y.max()}"
        )
    return y, p


def _scored_classes(y: np.ndarray, p: np.ndarray) -> list[int]:
    """Classes whose one-vs-rest AUC is defined: binary → [1]; multi-class → present classes (if ≥ 2)."""
    present = np.unique(y)
    if len(present) < 2 or not np.all(np.isfinite(p)):
        return []
    if p.shape[1] == 2:
        return [1]
    return [int(k) for k in present]


def _class_aucs(y: np.ndarray, p: np.ndarray, classes: list[int]) -> np.ndarray:
    """One-vs-rest AUC of ``p[:, k]`` for ``y == k``, for every ``k`` in ``classes`` at once.

    The Mann-Whitney form: (sum of the positives' ranks − n₊(n₊+1)/2) / (n₊ n₋), with tied scores
    given their average rank — the same value as ``sklearn.metrics.roc_auc_score`` (the area under
    the ROC curve with ties as diagonal segments) in one vectorised pass instead of one call per class,
    which matters when validation runs every epoch. Callers ensure each class has both labels.
    """
    columns = np.asarray(classes)
    ranks = average_ranks(p[:, columns])
    positive = y[:, None] == columns[None, :]
    n_pos = positive.sum(axis=0).astype(np.float64)
    n_neg = len(y) - n_pos
    return ((ranks * positive).sum(axis=0) - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


def average_ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks down each column, tied values sharing the mean of their ranks (``rankdata``'s
    "average"), in NumPy: importing SciPy for it cost 1.5 s of every run's start-up.

    Average ranks do not depend on how a sort orders equal values, so the sort need not be stable
    (NumPy's default sort is several times faster), and columns without ties (the usual case for
    float scores) are ranked at once; only columns with ties are walked one by one.
    """
    n = values.shape[0]
    order = np.argsort(values, axis=0)
    ordered = np.take_along_axis(values, order, axis=0)
    ranks = np.empty(values.shape, dtype=np.float64)
    positions = np.broadcast_to(np.arange(1, n + 1, dtype=np.float64)[:, None], values.shape)
    np.put_along_axis(ranks, order, positions, axis=0)
    for j in np.flatnonzero((ordered[1:] == ordered[:-1]).any(axis=0)):
        column = ordered[:, j]
        starts = np.flatnonzero(np.r_[True, column[1:] != column[:-1]])
        ends = np.r_[starts[1:], n]  # tie group g holds sorted positions starts[g] .. ends[g] - 1
        ranks[order[:, j], j] = np.repeat((starts + ends + 1) / 2.0, ends - starts)
    return ranks


def roc_auc(y_true: np.ndarray | torch.Tensor, probs: np.ndarray | torch.Tensor) -> float:
    """ROC-AUC in [0, 1]: binary AUC of class 1's probability, or macro one-vs-rest AUC for C > 2.

    ``y_true``: ``(N,)`` integer class indices; ``probs``: ``(N, C)`` probabilities (rows need not sum to
    exactly 1). Classes absent from ``y_true`` are left out of the multi-class mean; returns NaN when fewer
    than 2 classes are present or any probability is non-finite. See the module docstring.
    """
    y, p = _checked(y_true, probs)
    classes = _scored_classes(y, p)
    if not classes:
        return float("nan")
    return float(np.mean(_class_aucs(y, p, classes)))


def ranked_counts(positive: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(tps, fps, thresholds)``: the true and false positives when calling every score at or above each
    distinct score positive, highest score first (float64; scikit-learn's binary-classifier curve, which
    its ROC and precision-recall curves are drawn from)."""
    order = np.argsort(scores, kind="stable")[::-1]
    ordered = scores[order]
    last = np.r_[np.flatnonzero(np.diff(ordered)), ordered.size - 1]  # the end of each run of equal scores
    tps = np.cumsum(positive[order].astype(np.float64))[last]
    fps = 1 + last.astype(np.float64) - tps
    return tps, fps, ordered[last].astype(np.float64)


def roc_points(positive: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(fpr, tpr, thresholds)`` of one binary ROC curve: ``sklearn.metrics.roc_curve(positive, scores)``
    (``drop_intermediate=True``), in NumPy, because importing ``sklearn.metrics`` cost about 1.1 s of every
    run that writes a report. The tests check it against scikit-learn.

    One point per distinct score (descending), after the first ``(0, 0)`` at threshold ``+inf``; points
    collinear with their neighbours are dropped (where neither the false- nor the true-positive count
    bends), which does not change the area. Needs both classes in ``positive``.
    """
    tps, fps, thresholds = ranked_counts(positive, scores)
    if fps.shape[0] > 2:
        keep = np.flatnonzero(np.r_[True, np.logical_or(np.diff(fps, 2), np.diff(tps, 2)), True])
        fps, tps, thresholds = fps[keep], tps[keep], thresholds[keep]
    tps, fps = np.r_[0.0, tps], np.r_[0.0, fps]
    return fps / fps[-1], tps / tps[-1], np.r_[np.inf, thresholds]


def _json_float(x: float) -> float | None:
    """JSON has no inf/NaN: map them to null."""
    return float(x) if math.isfinite(x) else None


def roc_curves(
    y_true: np.ndarray | torch.Tensor, probs: np.ndarray | torch.Tensor, class_names: Sequence[str]
) -> dict[str, Any]:
    """ROC curve points and AUCs as a JSON-safe dict (``json.dumps(..., allow_nan=False)`` succeeds).

    Layout::

        {"auc": float | None,            # == roc_auc(y_true, probs); None when NaN
         "average": "binary" | "macro_ovr",
         "curves": {"<class name>": {"fpr": [...], "tpr": [...], "thresholds": [...], "auc": float}},
         "classes_without_curve": ["<class name>", ...]}

    Binary: one curve, keyed by the positive class name ``class_names[1]``; its ``"auc"`` equals the top one.
    Multi-class: one one-vs-rest curve per class present in ``y_true``; classes absent from ``y_true`` have
    no curve and are listed in ``"classes_without_curve"``; the top ``"auc"`` is the mean of the per-class
    values, computed by :func:`roc_auc` itself. Thresholds are probabilities in decreasing order; the first
    one from sklearn is ``+inf`` ("predict nothing positive"), written as ``null`` because JSON has no
    infinity. Points are sklearn's ``roc_curve`` with ``drop_intermediate=True`` (collinear points dropped,
    which does not change the area), computed by :func:`roc_points`.
    """
    y, p = _checked(y_true, probs)
    names = [str(n) for n in class_names]
    if len(names) != p.shape[1]:
        raise ValueError(f"{len(names)} class names for {p.shape[1]} probability columns")
    binary = p.shape[1] == 2
    classes = _scored_classes(y, p)
    curves: dict[str, dict[str, Any]] = {}
    aucs = _class_aucs(y, p, classes) if classes else []
    for k, auc in zip(classes, aucs):
        fpr, tpr, thresholds = roc_points(y == k, p[:, k])
        curves[names[k]] = {
            "fpr": [float(v) for v in fpr],
            "tpr": [float(v) for v in tpr],
            "thresholds": [_json_float(v) for v in thresholds],
            "auc": float(auc),
        }
    expected = [1] if binary else list(range(p.shape[1]))
    return {
        "auc": _json_float(roc_auc(y, p)),
        "average": "binary" if binary else "macro_ovr",
        "curves": curves,
        "classes_without_curve": [names[k] for k in expected if k not in classes],
    }
