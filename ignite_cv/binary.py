"""Two-class decisions: which class is positive, the decision threshold, and the metrics at a threshold.

A two-class model emits one logit, the evidence for class index 1 (:mod:`ignite_cv.task`); a run puts
the positive class at index 1 (``--positive-class``, :func:`ignite_cv.data.classes.positive_last`), so
"positive" is always ``probs[:, 1]`` here. An image is called positive when ``P(positive) >= threshold``
(the rule of :mod:`ignite_cv.inference.decision`, which reads the threshold and the positive class from
the checkpoint's card).

``--threshold youden`` picks the threshold that maximises Youden's J = sensitivity + specificity - 1 on
the VALIDATION split (never the test split: the test numbers would then be optimistic). Among thresholds
with the same J the highest is kept (the fewest positive calls), so the choice is one value for given
predictions.

The metrics at a threshold (sensitivity, specificity, PPV, NPV, balanced accuracy), the precision-recall
curve and the average precision are scikit-learn's (``confusion_matrix``, ``balanced_accuracy_score``,
``precision_recall_curve``, ``average_precision_score``; the tests compare them), computed in NumPy:
importing ``sklearn.metrics`` (SciPy) took 1.25 s of every two-class run, for counts and a cumulative
sum. A ratio whose denominator is 0 (no positive calls: PPV) is NaN (``null`` in JSON), not a made-up 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ignite_cv.roc import ranked_counts, roc_points
from ignite_cv.utils.errors import UserError
from ignite_cv.utils.options import option

YOUDEN = "youden"
DEFAULT_THRESHOLD = 0.5
#: A chosen threshold is kept inside the open interval (0, 1) that a checkpoint's card accepts.
THRESHOLD_MARGIN = 1e-6


def parse_threshold(text: str) -> str:
    """``--threshold``'s text, checked: ``youden`` or a number strictly between 0 and 1."""
    text = str(text).strip().lower()
    if text == YOUDEN:
        return text
    try:
        value = float(text)
    except ValueError:
        raise UserError(
            f"--threshold {text!r} is neither 'youden' nor a number", "pass 0.5, youden or e.g. 0.3"
        ) from None
    if not (math.isfinite(value) and 0.0 < value < 1.0):
        raise UserError(
            f"--threshold {text} is not between 0 and 1", "pass a probability such as 0.3, or youden"
        )
    return text


@dataclass
class DecisionOptions:
    """How a two-class model decides (stored in its checkpoint card, read by evaluation and prediction)."""

    positive_class: str = option(
        "",
        "two classes: the class name the single logit, ROC, sensitivity and PPV are about, moved to index 1 "
        "(default: the second class in sorted order)",
    )
    threshold: str = option(
        "0.5",
        "two classes: P(positive) at and above which an image is called positive: 0.5, youden (Youden's J "
        "on the validation split, never test) or a number in (0, 1); stored in the checkpoint, used by "
        "the report, tools/evaluate.py and tools/predict.py",
        parse=parse_threshold,
    )


def fixed_threshold(spec: str) -> float | None:
    """The threshold a ``--threshold`` value names, or None for ``youden`` (chosen after training)."""
    spec = parse_threshold(spec)
    return None if spec == YOUDEN else float(spec)


def youden_threshold(labels: np.ndarray, positive_probs: np.ndarray) -> float:
    """The threshold maximising sensitivity + specificity - 1 over ``positive_probs`` (labels 0/1);
    ties go to the highest threshold. Raises UserError when ``labels`` lack a class."""
    y = np.asarray(labels).astype(np.int64)
    p = np.asarray(positive_probs, dtype=np.float64)
    if len(np.unique(y)) < 2:
        raise UserError(
            "--threshold youden needs both classes in the validation split, which has only "
            f"{'positives' if y.size and y[0] == 1 else 'negatives'}",
            "pass --threshold 0.5 (or a number), or use a larger --val-fraction",
        )
    fpr, tpr, thresholds = roc_points(y, p)
    finite = np.isfinite(thresholds)  # the first threshold is +inf: "nothing positive"
    j = (tpr - fpr)[finite]
    best = int(np.argmax(j))  # thresholds decrease: the first maximum is the highest threshold
    return float(np.clip(thresholds[finite][best], THRESHOLD_MARGIN, 1.0 - THRESHOLD_MARGIN))


def _ratio(numerator: int, denominator: int) -> float:
    return numerator / denominator if denominator else float("nan")


def metrics_at_threshold(labels: np.ndarray, positive_probs: np.ndarray, threshold: float) -> dict[str, Any]:
    """Sensitivity, specificity, PPV, NPV, balanced accuracy and the counts, calling ``p >= threshold``
    positive."""
    y = np.asarray(labels).astype(np.int64)
    called = np.asarray(positive_probs, dtype=np.float64) >= threshold
    positive = y == 1
    tp, fp = int(np.sum(called & positive)), int(np.sum(called & ~positive))
    fn, tn = int(np.sum(~called & positive)), int(np.sum(~called & ~positive))
    sensitivity, specificity = _ratio(tp, tp + fn), _ratio(tn, tn + fp)
    both = tp + fn > 0 and tn + fp > 0  # balanced accuracy: the mean recall of the two classes
    return {
        "threshold": float(threshold),
        "sensitivity": sensitivity,
        "specificity": specificity,
        "ppv": _ratio(tp, tp + fp),
        "npv": _ratio(tn, tn + fn),
        "balanced_accuracy": (sensitivity + specificity) / 2 if both else float("nan"),
        "tp": tp,
        "fp": fp,
        "tn": tn,
        "fn": fn,
    }


def precision_recall(labels: np.ndarray, positive_probs: np.ndarray) -> dict[str, Any]:
    """The precision-recall curve and average precision of the positive class, JSON-safe::

    {"average_precision": float | None, "precision": [...], "recall": [...], "thresholds": [...],
     "positives": n₊, "n": N}

    ``average_precision`` is None when the labels hold no positive (undefined)."""
    y = np.asarray(labels).astype(np.int64)
    p = np.asarray(positive_probs, dtype=np.float64)
    positives = int(y.sum())
    if positives == 0 or not np.all(np.isfinite(p)):
        return {
            "average_precision": None,
            "precision": [],
            "recall": [],
            "thresholds": [],
            "positives": positives,
            "n": int(y.size),
        }
    tps, fps, thresholds = ranked_counts(y, p)
    # Highest threshold last, as scikit-learn returns them, then the point (recall 0, precision 1).
    precision = np.r_[(tps / (tps + fps))[::-1], 1.0]  # tps + fps >= 1: every threshold calls one image
    recall = np.r_[(tps / tps[-1])[::-1], 0.0]
    thresholds = thresholds[::-1]
    average_precision = max(0.0, float(-np.sum(np.diff(recall) * precision[:-1])))  # the step integral
    return {
        "average_precision": average_precision,
        "precision": [float(v) for v in precision],
        "recall": [float(v) for v in recall],
        "thresholds": [float(v) for v in thresholds],
        "positives": positives,
        "n": int(y.size),
    }
