"""Two-class decisions: the threshold's spelling, Youden's J, the metrics at a threshold, precision-recall."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import average_precision_score

from ignite_cv.binary import (
    THRESHOLD_MARGIN,
    fixed_threshold,
    metrics_at_threshold,
    parse_threshold,
    precision_recall,
    youden_threshold,
)
from ignite_cv.utils.errors import UserError


def test_a_threshold_is_youden_or_a_probability():
    assert parse_threshold(" Youden ") == "youden" and fixed_threshold("youden") is None
    assert fixed_threshold("0.5") == 0.5 and fixed_threshold("0.25") == 0.25
    for bad, message in (
        ("1", "not between 0 and 1"),
        ("0", "not between 0 and 1"),
        ("nan", "not between"),
        ("high", "neither 'youden' nor a number"),
    ):
        with pytest.raises(UserError, match=message):
            parse_threshold(bad)


def _brute_force_youden(y, p):
    """The highest J over every candidate threshold (each score), the highest threshold on a tie."""
    best, chosen = -math.inf, None
    for t in sorted(set(p.tolist()), reverse=True):
        called = p >= t
        j = called[y == 1].mean() - called[y == 0].mean()
        if j > best + 1e-12:
            best, chosen = j, t
    return chosen


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_youden_is_the_threshold_with_the_best_sensitivity_plus_specificity(seed):
    rng = np.random.default_rng(seed)
    y = (rng.random(200) < 0.3).astype(int)
    p = np.clip(rng.normal(0.35 + 0.3 * y, 0.2), 0.001, 0.999)
    assert youden_threshold(y, p) == pytest.approx(_brute_force_youden(y, p))


def test_youden_stays_inside_the_open_interval_a_card_accepts():
    y = np.array([0, 0, 1, 1])
    assert youden_threshold(y, np.array([0.0, 0.0, 1.0, 1.0])) == 1.0 - THRESHOLD_MARGIN


def test_youden_needs_both_classes():
    with pytest.raises(UserError, match="both classes in the validation split, which has only negatives"):
        youden_threshold(np.zeros(5, int), np.linspace(0.1, 0.9, 5))


def test_metrics_at_a_threshold_count_the_calls_at_and_above_it():
    y = np.array([1, 1, 1, 0, 0, 0, 0, 1])
    p = np.array([0.9, 0.6, 0.4, 0.6, 0.2, 0.1, 0.5, 0.5])
    m = metrics_at_threshold(y, p, 0.5)  # called positive: 0.9, 0.6, 0.6, 0.5, 0.5
    assert (m["tp"], m["fp"], m["tn"], m["fn"]) == (3, 2, 2, 1)
    assert (m["sensitivity"], m["specificity"], m["ppv"], m["npv"]) == (0.75, 0.5, 0.6, 2 / 3)
    assert m["balanced_accuracy"] == pytest.approx(0.625)
    nothing = metrics_at_threshold(y, p, 0.95)
    assert math.isnan(nothing["ppv"]) and nothing["specificity"] == 1.0 and nothing["sensitivity"] == 0.0


def test_precision_recall_and_average_precision_are_sklearns():
    rng = np.random.default_rng(4)
    y = (rng.random(100) < 0.2).astype(int)
    p = rng.random(100) * 0.5 + 0.4 * y
    curve = precision_recall(y, p)
    assert curve["average_precision"] == pytest.approx(average_precision_score(y, p))
    assert (curve["positives"], curve["n"]) == (int(y.sum()), 100)
    assert curve["recall"][0] == 1.0 and curve["recall"][-1] == 0.0
    assert precision_recall(np.zeros(4, int), np.full(4, 0.3))["average_precision"] is None


@pytest.mark.parametrize("decimals", [None, 1])  # 1: many tied scores
def test_the_numpy_curves_and_counts_equal_sklearns_also_with_ties(decimals):
    from sklearn.metrics import balanced_accuracy_score, confusion_matrix, precision_recall_curve, roc_curve

    rng = np.random.default_rng(7)
    y = (rng.random(300) < 0.3).astype(int)
    p = np.clip(rng.random(300) * 0.6 + 0.35 * y, 0, 1)
    if decimals is not None:
        p = np.round(p, decimals)
    curve = precision_recall(y, p)
    precision, recall, thresholds = precision_recall_curve(y, p)
    np.testing.assert_allclose(curve["precision"], precision)
    np.testing.assert_allclose(curve["recall"], recall)
    np.testing.assert_allclose(curve["thresholds"], thresholds)
    assert curve["average_precision"] == pytest.approx(average_precision_score(y, p), abs=1e-12)
    for threshold in (0.3, 0.5, 0.7):
        m = metrics_at_threshold(y, p, threshold)
        called = (p >= threshold).astype(int)
        assert [[m["tn"], m["fp"]], [m["fn"], m["tp"]]] == confusion_matrix(y, called).tolist()
        assert m["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(y, called))
    fpr, tpr, roc_thresholds = roc_curve(y, p)
    best = np.argmax((tpr - fpr)[1:]) + 1  # sklearn's first threshold is +inf
    expected = float(np.clip(roc_thresholds[best], THRESHOLD_MARGIN, 1 - THRESHOLD_MARGIN))
    assert youden_threshold(y, p) == expected
